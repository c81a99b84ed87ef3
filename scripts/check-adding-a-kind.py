#!/usr/bin/env python3
"""Follows README's "Adding a target kind" checklist to add a throwaway HTTP chat kind, and proves
the checklist is accurate: the kind builds, passes its own tests and every check script, is
accepted by `config check` and delivered end to end by the real binary to its sink emulation,
and the files it had to touch are exactly the places the checklist names. Everything it wrote is
removed at the end, also on failure.

    scripts/check-adding-a-kind.py            # needs a clean tree where it writes
    scripts/check-adding-a-kind.py --keep     # leave the throwaway kind in place to look at it

It builds incrementally in the repository's own .build (the debug build the tests use), so run
it after the tests, never beside another build. Everything runs on 127.0.0.1. Exits 1 if a
check fails, 2 if the tree is not clean where it would write.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from patchbay_harness import ROOT, Checks, Server, Sink, free_port, post_event

KIND = "scaffoldchat"
TYPE = "ScaffoldChatTarget"
FOLDER = "ScaffoldChat"
TOKEN = "scaffold-token-0123456789abcdef"

NEW_FILES = {
    f"Sources/PatchbayTargets/{FOLDER}/{TYPE}.swift": f'''import Foundation
import PatchbayCore

/// A throwaway HTTP chat kind written by scripts/check-adding-a-kind.py: one JSON message per
/// event, `{{"text": …}}`, posted to the configured URL.
public struct {TYPE}: MessageTarget, RegisteredTarget {{
    public static let kind = "{KIND}"
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 1, burst: 5))
    public static let traits = TargetKindTraits(kind: kind, isChat: true)

    public let name: String
    public let url: Secret
    public var kind: String {{ Self.kind }}
    public var secrets: [Secret] {{ [url] }}

    public init(name: String, url: Secret) {{
        self.name = name
        self.url = url
    }}

    public init?(name: String, section: ConfigSection) {{
        section.allowOnly(TargetRegistry.commonKeys.union(["url"]))
        guard let url = section.secretURL("url") else {{ return nil }}
        self.init(name: name, url: url)
    }}

    public var pacingKey: String {{ "{KIND}:" + Data(url.reveal().utf8).sha256Hex.prefix(16) }}

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {{
        let text = "\\(MessageText.title(for: event)): \\(event.systemName)"
        let body = try JSONEncoder.encodePayload(["text": text], kind: "{KIND}")
        return OutboundRequest(
            method: "POST", url: url, displayURL: OutboundRequest.displayForm(of: url.reveal()),
            headers: [HTTPHeader("Content-Type", "application/json")], body: body)
    }}
}}
''',
    f"Sources/PatchbaySink/Emulation/{FOLDER}Emulation.swift": f'''import Foundation
import PatchbayCore

/// The throwaway kind's vendor: takes a POSTed JSON object with a string `text`, refuses the rest.
enum {FOLDER}Emulation: VendorEmulation {{
    static let pathPrefix = "{KIND}"
    static let keepsObjects = false

    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {{
        guard request.method == "POST" else {{ return Sink.Answer(vendor: pathPrefix, status: 405, body: #"{{"error":"POST only"}}"#) }}
        guard case .string? = (try? JSONValue.parse(Data(request.body.utf8)))?["text"] else {{
            return Sink.Answer(vendor: pathPrefix, status: 400, body: #"{{"error":"text is required"}}"#)
        }}
        return Sink.Answer(vendor: pathPrefix, status: 200, body: #"{{"ok":true}}"#)
    }}
}}
''',
    f"Tests/PatchbayTargetsTests/{TYPE}Tests.swift": f'''import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

@Suite("{KIND} (scaffolded)")
struct {TYPE}Tests {{
    @Test func theRegistryKnowsTheKindAndItRendersText() throws {{
        #expect(TargetRegistry.kinds.contains("{KIND}"))
        #expect(TargetRegistry.traits(of: "{KIND}")?.isChat == true)
        let target = {TYPE}(name: "s", url: Secret("http://127.0.0.1:9/{KIND}/hook"))
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.completed))
        let context = RenderContext(displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: Date())
        guard case .send(let request) = try target.plan(event, context: context) else {{
            Issue.record("nothing to send")
            return
        }}
        let text = try JSONValue.parse(request.body)["text"]?.stringValue ?? ""
        #expect(text.contains(event.systemName), "\\(text)")
    }}
}}
''',
}

# The places the checklist names, as the script finds them: (checklist path, file it edits or writes).
CHECKLIST_FILES = [
    ("Sources/PatchbayTargets/Example/", f"Sources/PatchbayTargets/{FOLDER}/{TYPE}.swift"),
    ("Sources/PatchbayTargets/TargetRegistry.swift", "Sources/PatchbayTargets/TargetRegistry.swift"),
    ("Sources/PatchbaySink/Emulation/ExampleEmulation.swift", f"Sources/PatchbaySink/Emulation/{FOLDER}Emulation.swift"),
    ("Emulation/VendorEmulationRegistry.swift", "Sources/PatchbaySink/Emulation/VendorEmulationRegistry.swift"),
    ("Schemas/config.schema.json", "Schemas/config.schema.json"),
    ("Schemas/openapi.yaml", "Schemas/openapi.yaml"),
    ("examples/patchbay.yaml", "examples/patchbay.yaml"),
    ("Tests/PatchbayServerTests/ConfigurationTests.swift", "Tests/PatchbayServerTests/ConfigurationTests.swift"),
    ("Tests/PatchbayTargetsTests/", f"Tests/PatchbayTargetsTests/{TYPE}Tests.swift"),
]
EDITED = [path for _, path in CHECKLIST_FILES if path not in NEW_FILES]


def replace_once(path, old, new):
    full = ROOT / path
    text = full.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"check-adding-a-kind: expected one '{old.strip()[:60]}' in {path}; the checklist's step changed")
    full.write_text(text.replace(old, new))


def edit_schema():
    path = ROOT / "Schemas/config.schema.json"
    schema = json.loads(path.read_text())
    targets = schema["properties"]["targets"]["additionalProperties"]["oneOf"]
    targets.append({"$ref": f"#/$defs/{KIND}Target"})
    definition = json.loads(json.dumps(schema["$defs"]["googlechatTarget"]))
    definition["properties"]["kind"] = {"const": KIND}
    definition["properties"]["url"] = {"type": "string", "description": "Webhook URL (secret)."}
    schema["$defs"][f"{KIND}Target"] = definition
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")


def scaffold():
    for path, text in NEW_FILES.items():
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(text)
    # Last in the list, whichever kind is last today.
    replace_once("Sources/PatchbayTargets/TargetRegistry.swift", ".self,\n    ]\n", f".self,\n        {TYPE}.self,\n    ]\n")
    replace_once("Sources/PatchbaySink/Emulation/VendorEmulationRegistry.swift", "DatadogEmulation.self,\n",
                 f"DatadogEmulation.self,\n        {FOLDER}Emulation.self,\n")
    edit_schema()
    replace_once("Schemas/openapi.yaml", "targetKind: {type: string, enum: [", f"targetKind: {{type: string, enum: [{KIND}, ")
    replace_once("examples/patchbay.yaml", "  changes-mail:\n",
                 f"  scaffold-chat:\n    kind: {KIND}\n    url: \"http://127.0.0.1:9090/{KIND}/hook\"\n  changes-mail:\n")
    replace_once("examples/patchbay.yaml", "targets: [ops-chat, ops-discord, changes-mail, audit-hook]",
                 "targets: [ops-chat, ops-discord, scaffold-chat, changes-mail, audit-hook]")
    replace_once("Tests/PatchbayServerTests/ConfigurationTests.swift", '"ops-chat", "ops-discord", "changes-mail"',
                 '"ops-chat", "ops-discord", "scaffold-chat", "changes-mail"')


def restore():
    """Removes the new files first, then checks the edited ones out again, so one failing step
    leaves as little behind as possible; says so when git cannot restore."""
    for path in NEW_FILES:
        try:
            os.remove(ROOT / path)
        except FileNotFoundError:
            pass
    folder = ROOT / f"Sources/PatchbayTargets/{FOLDER}"
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    result = subprocess.run(["git", "checkout", "--", *EDITED], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"check-adding-a-kind: could not restore {', '.join(EDITED)}: {result.stderr.strip()}")


def checklist_paths():
    """The paths README's checklist names in backticks, in its numbered steps."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Adding a target kind", 1)[1].split("\n`scripts/check-target-kinds.py`", 1)[0]
    return set(re.findall(r"`((?:Sources|Schemas|Tests|examples|Emulation)/[^`\s]*)`", section))


def run(check, what, arguments, timeout=1800):
    started = time.time()
    result = subprocess.run(arguments, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    check(result.returncode == 0, f"{what} ({time.time() - started:.0f} s)")
    if result.returncode != 0:
        print(result.stdout[-4000:])
    return result.returncode == 0


def end_to_end(check, binary, workdir):
    """The real binary delivers an event to the kind's sink emulation, which accepts it."""
    sink = Sink(binary, workdir)
    config = os.path.join(workdir, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
store: {{sqlite: ./queue.db}}
delivery: {{pollInterval: 250ms}}
targets:
  scaffolded: {{kind: {KIND}, url: "http://127.0.0.1:{sink.port}/{KIND}/hook"}}
routes:
  - targets: [scaffolded]
    reminders: []
    announceStart: false
""")
    checked = subprocess.run([binary, "config", "check", "--config", config], capture_output=True, text=True)
    check(checked.returncode == 0, f"config check accepts kind: {KIND} ({checked.stdout.strip()[:120]})")
    server = Server(binary, workdir, config, free_port())
    try:
        server.start()
        body = {"type": "patch.completed", "app": "App1", "environment": "Production",
                "instance": {"id": "i-1", "name": "web-1"},
                "window": {"id": "mw-scaffold", "start": "2026-12-04T08:30:00Z", "end": "2026-12-04T09:30:00Z"}}
        status = post_event(server.port, TOKEN, json.dumps(body).encode(), "scaffold-1")
        check(status == 202, f"the event is accepted ({status})")
        deadline = time.time() + 30
        while time.time() < deadline and not [r for r in sink.requests() if r["vendor"] == KIND]:
            time.sleep(0.25)
        sent = [r for r in sink.requests() if r["vendor"] == KIND]
        check(len(sent) == 1 and sent[0]["status"] == 200 and "Patching Complete: App1" in sent[0]["body"],
              f"delivered once to the {KIND} emulation, answered 200: {[(r['status'], r['body'][:80]) for r in sent]}")
    finally:
        server.stop()
        sink.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the scaffolded kind in the tree")
    args = parser.parse_args()

    dirty = subprocess.run(["git", "status", "--porcelain", "--", *EDITED, *NEW_FILES], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    if dirty:
        print(f"check-adding-a-kind: these files have changes or exist; commit or move them first:\n{dirty}")
        sys.exit(2)

    check = Checks()
    named = checklist_paths()
    listed = {place for place, _ in CHECKLIST_FILES}
    check(named == listed, f"README's checklist names the places this script touches: "
                           f"missing from README {sorted(listed - named)}, not followed here {sorted(named - listed)}")
    def changed():
        def names(*arguments):
            return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
        return set(names("diff", "--name-only", "HEAD")) | set(names("ls-files", "--others", "--exclude-standard"))

    # A cancelled job (SIGTERM) or a closed terminal (SIGHUP) still removes the kind.
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    workdir = tempfile.mkdtemp(prefix="patchbay-scaffold-")

    before = changed()
    try:
        scaffold()
        touched = sorted(changed() - before)
        expected = sorted(path for _, path in CHECKLIST_FILES)
        check(touched == expected, f"{len(touched)} files make a new HTTP chat kind, as the checklist says: {', '.join(touched)}")
        if run(check, "swift build --build-tests", ["swift", "build", "--build-tests"]):
            # Every unit and component test, not a chosen few: a test that lists the kinds somewhere
            # the checklist does not name fails here. The end-to-end suites (the real binary, minutes
            # of maintenance clock) name no kinds by list; this script's own end to end stands in.
            run(check, "swift test: its tests and every other non-end-to-end test pass with the new kind",
                ["swift", "test", "--skip-build", "--skip", "EndToEndTests"])
            for script in ["check-target-kinds.py", "check-schemas.py", "check-openapi.py"]:
                run(check, f"scripts/{script}", [sys.executable, str(ROOT / "scripts" / script)])
            end_to_end(check, str(ROOT / ".build/debug/patchbay"), workdir)
    finally:
        if not args.keep:
            restore()
    check.finish("adding a kind", workdir)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Copies agents/patchbay-report, agents/lib/imds.sh and agents/lib/patchrun.sh into the heredocs of
agents/ssm/patchbay-patch-baseline.yaml (between `<<'MARKER'` and the line `MARKER`).

    python3 agents/ssm/embed.py          # rewrite the document
    python3 agents/ssm/embed.py --check  # exit 1 when the embedded copies are stale
"""
import pathlib
import sys

AGENTS = pathlib.Path(__file__).resolve().parent.parent
DOCUMENT = AGENTS / "ssm" / "patchbay-patch-baseline.yaml"
EMBEDS = {
    "PATCHBAY_REPORT_EOF": AGENTS / "patchbay-report",
    "PATCHBAY_IMDS_EOF": AGENTS / "lib" / "imds.sh",
    "PATCHBAY_PATCHRUN_EOF": AGENTS / "lib" / "patchrun.sh",
}


def embedded(text):
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        marker = next((m for m in EMBEDS if f"<<'{m}'" in line), None)
        i += 1
        if marker is None:
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        end = i
        while end < len(lines) and lines[end].strip() != marker:
            end += 1
        if end == len(lines):
            raise SystemExit(f"{DOCUMENT}: no closing {marker}")
        content = EMBEDS[marker].read_text()
        if marker in content.split("\n") or "{{" in content:
            raise SystemExit(f"{EMBEDS[marker]} may not contain a line '{marker}' or '{{{{' (SSM interpolation)")
        for body_line in content.rstrip("\n").split("\n"):
            out.append(indent + body_line if body_line else "")
        i = end
    return "\n".join(out)


def main():
    current = DOCUMENT.read_text()
    updated = embedded(current)
    if "--check" in sys.argv[1:]:
        if updated != current:
            print(f"{DOCUMENT} is stale: run python3 agents/ssm/embed.py", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        DOCUMENT.write_text(updated)
        print(f"updated {DOCUMENT}")
    size = len(updated.encode())
    print(f"{DOCUMENT.name}: {size} bytes (SSM limit 65536)")
    return 0 if size < 65536 else 1


if __name__ == "__main__":
    sys.exit(main())

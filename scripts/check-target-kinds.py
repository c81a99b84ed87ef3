#!/usr/bin/env python3
"""Checks that target kinds are self-contained: PatchbayCore and PatchbayServer name no kind.

Adding a target kind must touch only its folder under Sources/PatchbayTargets/, the registry,
the sink's emulation, the config schema and its tests (README, "Adding a target kind"). This
script finds every kind from the folders (their `static let kind = "..."`, their type names and
the route keys they declare) and fails when Core or the server mentions one in code: a string
literal such as "pingdom", a route key such as "statuspage", or a type such as `SlackTarget`.
Comments may name vendors; code may not. Core must not import PatchbayTargets at all.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = ROOT / "Sources" / "PatchbayTargets"
GUARDED = [ROOT / "Sources" / "PatchbayCore", ROOT / "Sources" / "PatchbayServer"]


def kind_specific_names():
    """(string literals, identifiers) that belong to one kind."""
    literals, identifiers = set(), set()
    for folder in sorted(p for p in TARGETS.iterdir() if p.is_dir() and p.name != "Common"):
        for source in folder.glob("*.swift"):
            text = source.read_text()
            literals.update(re.findall(r'static let kind = "([^"]+)"', text))
            literals.update(re.findall(r'RouteResourceKey\(routeKey: "([^"]+)"', text))
            identifiers.update(re.findall(r'^(?:public )?(?:struct|enum|final class|class|protocol) (\w+)', text, re.M))
    return literals, identifiers


def code_only(line):
    """The line without a trailing // comment (string literals holding // are rare enough here)."""
    stripped = line.strip()
    if stripped.startswith("//") or stripped.startswith("*") or stripped.startswith("/*"):
        return ""
    return re.sub(r'\s//.*$', "", line)


def violations(path, text, literals, identifiers, forbid_import):
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = code_only(line)
        if forbid_import and re.match(r'\s*import PatchbayTargets\b', code):
            found.append((path, number, "imports PatchbayTargets"))
        for literal in re.findall(r'"([^"\\]*)"', code):
            if literal.lower() in literals:
                found.append((path, number, f'names the kind "{literal}"'))
        for word in re.findall(r'\b[A-Z]\w+\b', code):
            if word in identifiers:
                found.append((path, number, f"uses the kind-specific type {word}"))
    return found


def main():
    literals, identifiers = kind_specific_names()
    if not literals or not identifiers:
        sys.exit("check-target-kinds: found no target kinds under Sources/PatchbayTargets; is the layout unchanged?")
    # The detector must be able to fail: a planted line naming a kind is caught.
    planted = 'let kind = "%s"; _ = %s.self' % (sorted(literals)[0], sorted(identifiers)[0])
    if len(violations("planted", planted, literals, identifiers, True)) != 2:
        sys.exit("check-target-kinds: self-check failed: a planted kind name went unnoticed")
    found = []
    for root in GUARDED:
        for source in sorted(root.rglob("*.swift")):
            found += violations(source.relative_to(ROOT), source.read_text(), literals, identifiers,
                                forbid_import=root.name == "PatchbayCore")
    for path, number, what in found:
        print(f"{path}:{number}: {what}; declare it through the target registry instead", file=sys.stderr)
    if found:
        sys.exit(1)
    print(f"check-target-kinds: PatchbayCore and PatchbayServer name none of {len(literals)} kind names "
          f"and {len(identifiers)} kind-specific types")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes patchbay(1) in troff from the command definitions.

    patchbay --experimental-dump-help | scripts/manpage.py [--date YYYY-MM-DD] [--version V] > patchbay.1

The input is swift-argument-parser's tool-info JSON (serializationVersion 0), the same data its
`generate-manual` plugin reads; running that plugin would compile Swift, so this renders it here.
One page: the root command, then every subcommand (depth first) with its arguments, plus the
FILES, ENVIRONMENT and EXIT STATUS a packaged installation adds.
"""

import argparse
import datetime
import json
import os
import re
import sys


def escape(text):
    """Escapes text for a troff body: backslashes, hyphens of options, leading dots/quotes."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def inline(text):
    """Escapes text and renders `code` spans in bold."""
    parts = re.split(r"`([^`]*)`", text)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append("\\fB" + escape(part) + "\\fR")
        else:
            out.append(escape(part))
    return "".join(out)


def paragraphs(text):
    """Splits a discussion into paragraphs (blank lines): (True, lines) for a block laid out by
    hand (an indented line or a run of spaces: examples), else (False, the block as one line)."""
    result = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        lines = block.splitlines()
        if any(line.startswith((" ", "\t")) or "   " in line.strip() for line in lines):
            result.append((True, [line.rstrip() for line in lines]))
        else:
            joined = " ".join(line.strip() for line in lines)
            if joined:
                result.append((False, joined))
    return result


def render_paragraph(out, paragraph):
    verbatim, body = paragraph
    if verbatim:
        out.append(".nf")
        out.extend(inline(line) for line in body)
        out.append(".fi")
    else:
        out.append(inline(body))


def name_of(name):
    prefix = "-" if name["kind"] in ("short", "shortWithSingleDash") else "--"
    if name["kind"] == "longWithSingleDash":
        prefix = "-"
    return prefix + name["name"]


def synopsis_item(argument):
    value = argument.get("valueName") or "value"
    if argument["kind"] == "positional":
        item = "\\fI" + escape(value) + "\\fR"
    else:
        item = "\\fB" + escape(name_of(argument["preferredName"])) + "\\fR"
        if argument["kind"] == "option":
            item += " \\fI" + escape(value) + "\\fR"
    if argument.get("isRepeating"):
        item += " ..."
    if argument.get("isOptional"):
        item = "[" + item + "]"
    return item


def visible_arguments(command):
    return [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]


def visible_subcommands(command):
    return [c for c in command.get("subcommands", []) if c.get("shouldDisplay", True)]


def render_arguments(out, command):
    for argument in visible_arguments(command):
        out.append(".TP")
        if argument["kind"] == "positional":
            out.append("\\fI" + escape(argument.get("valueName") or "value") + "\\fR")
        else:
            names = ", ".join("\\fB" + escape(name_of(n)) + "\\fR" for n in argument.get("names", []))
            if argument["kind"] == "option":
                names += " \\fI" + escape(argument.get("valueName") or "value") + "\\fR"
            out.append(names)
        text = inline(argument.get("abstract", ""))
        if argument.get("allValues"):
            text += " (one of: " + ", ".join(escape(v) for v in argument["allValues"]) + ")"
        if argument.get("defaultValue") not in (None, ""):
            text += " Default: \\fB" + escape(str(argument["defaultValue"])) + "\\fR."
        out.append(text)
        if isinstance(argument.get("discussion"), str) and argument["discussion"]:
            out.append(".IP")
            out.append(inline(argument["discussion"]))


def render_command(out, command, path):
    full = " ".join(path)
    out.append(".SS " + escape(full))
    if command.get("abstract"):
        out.append(inline(command["abstract"]))
    items = [synopsis_item(a) for a in visible_arguments(command)
             if a["kind"] == "positional" or a["preferredName"]["name"] not in ("help", "version")]
    if visible_subcommands(command):
        items.append("\\fIsubcommand\\fR")
    out.append(".PP")
    out.append(".ad l")
    out.append(".nh")
    out.append(".in +4n")
    out.append(".ti -4n")
    out.append("\\fB" + escape(full) + "\\fR " + " ".join(items))
    out.append(".in")
    out.append(".hy")
    out.append(".ad")
    for paragraph in paragraphs(command.get("discussion", "")):
        out.append(".PP")
        render_paragraph(out, paragraph)
    if visible_arguments(command):
        out.append(".RS")
        render_arguments(out, command)
        out.append(".RE")
    for sub in visible_subcommands(command):
        if sub["commandName"] == "help":
            continue
        render_command(out, sub, path + [sub["commandName"]])


def render(info, date, version):
    root = info["command"]
    name = root["commandName"]
    out = [
        '.\\" Generated by scripts/manpage.py from `%s --experimental-dump-help`; do not edit.' % name,
        '.TH "%s" "1" "%s" "%s %s" "User Commands"' % (name.upper(), date, name, version),
        ".SH NAME",
        "%s \\- %s" % (name, inline(root.get("abstract", "")).rstrip(".")),
        ".SH SYNOPSIS",
        ".nf",
    ]
    for sub in visible_subcommands(root):
        if sub["commandName"] == "help":
            continue
        suffix = " \\fIsubcommand\\fR" if visible_subcommands(sub) else " [\\fIoptions\\fR]"
        out.append("\\fB%s %s\\fR%s" % (name, escape(sub["commandName"]), suffix))
    out.append("\\fB%s\\fR [\\fB\\-\\-version\\fR] [\\fB\\-\\-help\\fR]" % name)
    out.append(".fi")
    out.append(".SH DESCRIPTION")
    for index, paragraph in enumerate(paragraphs(root.get("discussion", ""))):
        if index:
            out.append(".PP")
        render_paragraph(out, paragraph)
    out.append(".PP")
    out.append("Every command has \\fB\\-\\-help\\fR; \\fB%s help\\fR \\fIsubcommand\\fR prints the same." % name)
    out.append(".SH OPTIONS")
    render_arguments(out, root)
    out.append(".SH COMMANDS")
    for sub in visible_subcommands(root):
        if sub["commandName"] == "help":
            continue
        render_command(out, sub, [name, sub["commandName"]])
    out += [
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBPATCHBAY_CONFIG\\fR",
        "The configuration file when \\fB\\-\\-config\\fR is not given (else \\fI./patchbay.yaml\\fR).",
        ".TP",
        "\\fBLOG_LEVEL\\fR",
        "The least severe log level written to standard error when \\fB\\-\\-log\\-level\\fR is not given.",
        ".TP",
        "\\fBPATCHBAY_TOKEN\\fR",
        "The bearer token \\fB%s send\\fR uses when \\fB\\-\\-token\\fR is not given." % name,
        ".TP",
        "\\fBhttps_proxy\\fR, \\fBhttp_proxy\\fR",
        "Proxy for the vendors' APIs.",
        ".PP",
        "Any configuration value may read the environment as \\fB${VAR}\\fR or \\fB${VAR:\\-default}\\fR.",
        ".SH FILES",
        ".TP",
        "\\fI/etc/patchbay/patchbay.yaml\\fR",
        "The configuration of the packaged service.",
        ".TP",
        "\\fI/etc/patchbay/patchbay.env\\fR",
        "Its secrets, as \\fIKEY\\fR=\\fIvalue\\fR lines (the unit's \\fBEnvironmentFile=\\fR).",
        ".TP",
        "\\fI/var/lib/patchbay/patchbay.db\\fR",
        "The SQLite queue (with its \\fI\\-wal\\fR, \\fI\\-shm\\fR and \\fI.lock\\fR files).",
        ".TP",
        "\\fI/lib/systemd/system/patchbay.service\\fR",
        "The systemd unit: \\fBsystemctl restart patchbay\\fR after a change (there is no reload).",
        ".SH EXIT STATUS",
        "0 on success; 1 when the configuration, the store or a request fails; 64 on a usage error.",
        ".SH SEE ALSO",
        "\\fI/usr/share/doc/patchbay/README.md.gz\\fR, \\fI/usr/share/doc/patchbay/examples/patchbay.yaml\\fR,",
        "\\fBsystemctl\\fR(1), \\fBsystemd.exec\\fR(5)",
    ]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="the JSON file (default: standard input)")
    parser.add_argument("--date", help="the page's date (default: SOURCE_DATE_EPOCH, else today)")
    parser.add_argument("--version", default="", help="the version shown in the footer")
    args = parser.parse_args()
    data = open(args.input, encoding="utf-8").read() if args.input else sys.stdin.read()
    info = json.loads(data)
    if info.get("serializationVersion") != 0:
        sys.exit("manpage.py: unknown serializationVersion %r" % info.get("serializationVersion"))
    date = args.date
    if not date:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else datetime.datetime.now(datetime.timezone.utc)
        date = moment.strftime("%Y-%m-%d")
    sys.stdout.write(render(info, date, args.version))


if __name__ == "__main__":
    main()

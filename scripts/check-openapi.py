#!/usr/bin/env python3
"""Checks Schemas/openapi.yaml against the server's code, statically (nothing is built or run):

- routes: every `router.<method>("<path>")` registered in Sources/PatchbayServer (but the web
  console's HTML pages under /console, which are not an API) is an operation
  of the spec (Hummingbird's `:param` and `{param}` read as OpenAPI's `{param}`), and every
  operation of the spec is such a route;
- error codes: every `APIError(.<status>, code: "<code>")` (or `self.init(…)` in APIError) in Sources/PatchbayServer and
  every `RelayRejection.Code` (its raw value and status) in Sources/PatchbayRelay is documented as an `error`
  value of some operation's response with that status;
- the spec's external `$ref`s (./patch-event.schema.json) resolve to JSON Schemas, and the spec
  is valid OpenAPI 3.1 (with openapi-spec-validator, when it is installed).

Prints each difference and `openapi: N passed, M failed`; exits 1 on any failure.
Usage: scripts/check-openapi.py [--spec PATH] [--sources DIR]
"""
import argparse
import json
import pathlib
import re
import sys
import urllib.parse

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--spec", type=pathlib.Path, default=root / "Schemas/openapi.yaml")
parser.add_argument("--sources", type=pathlib.Path, default=root / "Sources",
                    help="the Swift sources (PatchbayServer/ and PatchbayRelay/ are read)")
args = parser.parse_args()

METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
# Hummingbird's HTTPResponse.Status names, as the code spells them.
STATUS_NAMES = {
    "ok": 200, "created": 201, "accepted": 202, "noContent": 204, "badRequest": 400, "unauthorized": 401,
    "forbidden": 403, "notFound": 404, "methodNotAllowed": 405, "requestTimeout": 408, "conflict": 409,
    "gone": 410, "contentTooLarge": 413, "unsupportedMediaType": 415, "unprocessableContent": 422,
    "tooManyRequests": 429, "internalServerError": 500, "serviceUnavailable": 503,
}

passed = 0
failures: list[str] = []


def check(ok: bool, failure: str) -> None:
    global passed
    if ok:
        passed += 1
    else:
        failures.append(failure)


def swift_text(path: pathlib.Path) -> str:
    """The file without comments, so commented-out routes and codes do not count."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def openapi_path(route: str) -> str:
    parts = [p for p in route.strip().split("/") if p]
    converted = []
    for part in parts:
        if part.startswith(":"):
            converted.append("{" + part[1:] + "}")
        elif part.startswith("${") and part.endswith("}"):
            converted.append("{" + part[2:-1] + "}")
        else:
            converted.append(part)
    return "/" + "/".join(converted)


# --- The code's routes -------------------------------------------------------------------------
server_dir = args.sources / "PatchbayServer"
relay_dir = args.sources / "PatchbayRelay"
if not server_dir.is_dir():
    sys.exit(f"check-openapi: no {server_dir}")
code_routes: dict[tuple[str, str], str] = {}
for path in sorted(server_dir.rglob("*.swift")):
    text = swift_text(path)
    where = str(path.relative_to(args.sources.parent)) if args.sources.parent in path.parents else str(path)
    # Route groups: `let pages = router.group("/console")…`, `let admin = pages.group()…`; each
    # group's routes are its prefix plus their own path (none for the group's root).
    prefixes = {"router": ""}
    read_groups = set()
    for match in re.finditer(r"\blet\s+(\w+)\s*=\s*(\w+)\.group\(\s*(?:\"([^\"]*)\")?\s*\)", text):
        if match.group(2) in prefixes:
            prefixes[match.group(1)] = prefixes[match.group(2)].rstrip("/") + "/" + (match.group(3) or "").strip("/")
            read_groups.add(match.start(0) + match.group(0).index(".group("))
    for name, prefix in prefixes.items():
        registrations = r"\b" + name + r"\.(" + "|".join(METHODS) + r")(?:\(\s*\"([^\"]*)\"|\s*\{)"
        for match in re.finditer(registrations, text):
            route = "/" + "/".join(part for part in (prefix + "/" + (match.group(2) or "")).split("/") if part)
            if route == "/console" or route.startswith("/console/"):
                continue  # the web console: HTML pages for people, not API operations
            if "*" in route:
                failures.append(f"route {match.group(1).upper()} {route} ({where}): wildcard paths have no OpenAPI form")
                continue
            code_routes[(match.group(1), openapi_path(route))] = where
    for match in re.finditer(r"\brouter\.on\(\s*\"([^\"]*)\"\s*,\s*method:\s*\.(\w+)", text):
        code_routes[(match.group(2).lower(), openapi_path(match.group(1)))] = where
    # Registrations this script cannot read would otherwise be missed silently.
    for match in re.finditer(r"\.group\(|\bRouteCollection\b|\baddRoutes\(", text):
        if match.start(0) in read_groups:
            continue
        failures.append(f"{where}: routes registered through {match.group(0).strip('(')} are not read by this check; extend it")
if not code_routes:
    failures.append(f"no router.<method>(\"...\") registrations found under {server_dir}")

# --- The spec ----------------------------------------------------------------------------------
spec = yaml.safe_load(args.spec.read_text())
spec_routes = {(method, path) for path, item in (spec.get("paths") or {}).items()
               for method in METHODS if isinstance(item, dict) and method in item}

for method, path in sorted(code_routes.keys() | spec_routes, key=lambda r: (r[1], r[0])):
    if (method, path) in code_routes and (method, path) in spec_routes:
        check(True, "")
    elif (method, path) in code_routes:
        check(False, f"route {method.upper()} {path} ({code_routes[(method, path)]}) is not in {args.spec.name}")
    else:
        check(False, f"operation {method.upper()} {path} of {args.spec.name} is not registered in {server_dir.name}")


# --- External $refs and validity ----------------------------------------------------------------
def pointer(document, fragment: str):
    node = document
    for token in [t for t in fragment.lstrip("/").split("/") if t] if fragment else []:
        token = urllib.parse.unquote(token).replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def external_refs(node):
    if isinstance(node, list):
        for item in node:
            yield from external_refs(item)
    elif isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield ref
        for value in node.values():
            yield from external_refs(value)


try:
    import jsonschema
except ImportError:
    jsonschema = None
for ref in sorted(set(external_refs(spec))):
    location, _, fragment = ref.partition("#")
    target = (args.spec.parent / location).resolve()
    try:
        text = target.read_text()
        document = json.loads(text) if target.suffix == ".json" else yaml.safe_load(text)
        schema = pointer(document, fragment)
        if jsonschema is not None:
            jsonschema.Draft202012Validator.check_schema(schema)
        check(True, "")
    except Exception as error:  # unreadable, unparsable, a missing pointer or an invalid schema
        check(False, f"$ref {ref}: does not resolve to a JSON Schema from {args.spec.name} "
                     f"({error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''})")

# openapi-spec-validator checks the spec itself; it does not fail on an external $ref it cannot
# read, hence the check above.
try:
    from openapi_spec_validator import validate
except ImportError:
    print("check-openapi: openapi-spec-validator is not installed; skipping the OpenAPI 3.1 validation "
          "(pip install openapi-spec-validator to run it)", file=sys.stderr)
else:
    try:
        validate(spec, base_uri=args.spec.resolve().as_uri())
        check(True, "")
    except Exception as error:  # the validator's errors have no common public base
        check(False, f"{args.spec.name} is not valid OpenAPI 3.1: {str(error).splitlines()[0]}")


# --- Error codes by status ---------------------------------------------------------------------
def resolve_local(node):
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        node = pointer(spec, node["$ref"][1:])
    return node


def error_values(schema, seen=()):
    """Values the schema allows for the `error` property of an error body."""
    schema = resolve_local(schema)
    if not isinstance(schema, dict) or id(schema) in seen:
        return set()
    seen = (*seen, id(schema))
    values = set()
    error = (schema.get("properties") or {}).get("error")
    if isinstance(error, dict):
        error = resolve_local(error)
        if "const" in error:
            values.add(error["const"])
        values.update(error.get("enum") or [])
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key) or []:
            values |= error_values(part, seen)
    return values


documented: set[tuple[int, str]] = set()
for path, item in (spec.get("paths") or {}).items():
    for method in METHODS:
        for status, response in ((item.get(method) or {}).get("responses") or {}).items():
            response = resolve_local(response)
            for media in (response.get("content") or {}).values():
                for value in error_values(media.get("schema") or {}):
                    if str(status).isdigit():
                        documented.add((int(status), value))

thrown: dict[tuple[int, str], str] = {}
for directory in (server_dir, relay_dir):
    if not directory.is_dir():
        continue
    for path in sorted(directory.rglob("*.swift")):
        text = swift_text(path)
        where = path.name
        # `APIError(.status, code: "…")` anywhere, and `self.init(.status, code: "…")` in the
        # initializers that turn IntakeError and QueryProblem into answers.
        for match in re.finditer(r"\b(?:APIError|self\.init)\(\s*\.(\w+)\s*,\s*code:\s*\"([a-z_]+)\"", text):
            status = STATUS_NAMES.get(match.group(1))
            if status is None:
                failures.append(f"{where}: APIError status .{match.group(1)} is unknown to this check; add it to STATUS_NAMES")
                continue
            thrown.setdefault((status, match.group(2)), where)
        # `RelayRejection.Code`: each case's raw value, answered with the status its `status`
        # switch gives it (`case .bodyTooLarge: 413`).
        if path.name == "RelayRejection.swift":
            raw = {m.group(1): m.group(2) or m.group(1) for m in re.finditer(r"^\s*case (\w+)(?: = \"([a-z_]+)\")?\s*$", text, re.M)}
            statuses = dict(re.findall(r"case \.(\w+): (\d{3})", text))
            if not raw or set(raw) != set(statuses):
                failures.append(f"{where}: cannot read RelayRejection.Code (cases {sorted(raw)}, statuses {sorted(statuses)})")
            for case, code in raw.items():
                if case in statuses:
                    thrown.setdefault((int(statuses[case]), code), where)
for (status, code), where in sorted(thrown.items()):
    check((status, code) in documented,
          f"error {status} {code!r} ({where}) is not documented as a {status} `error` value in {args.spec.name}")

for failure in failures:
    print(f"check-openapi: {failure}")
print(f"openapi: {passed} passed, {len(failures)} failed "
      f"({len(code_routes)} routes, {len(spec_routes)} operations, {len(thrown)} error codes)")
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
"""Checks Schemas/ against the examples: every example event and example config is valid, and
known-bad events are refused. The Swift validator enforces the same rules (EventValidatorTests)."""
import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(__file__).resolve().parent.parent
event_schema = json.loads((root / "Schemas/patch-event.schema.json").read_text())
config_schema = json.loads((root / "Schemas/config.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(event_schema)
jsonschema.Draft202012Validator.check_schema(config_schema)
events = jsonschema.Draft202012Validator(event_schema)
configs = jsonschema.Draft202012Validator(config_schema)

failures = []
examples = sorted((root / "Schemas/examples").glob("*.json"))
for path in examples:
    errors = [e.message for e in events.iter_errors(json.loads(path.read_text()))]
    if errors:
        failures.append(f"{path.name}: {errors}")

base = json.loads((root / "Schemas/examples/patch.started.json").read_text())
bad = {
    "unknown type": {**base, "type": "patch.exploded"},
    "missing app": {k: v for k, v in base.items() if k != "app"},
    "unknown field": {**base, "enviroment": "typo"},
    "window without end": {**base, "window": {"start": "2026-12-04T00:30:00Z"}},
    "abbreviated zone": {**base, "window": {**base["window"], "timezone": "PST"}},
    "number app": {**base, "app": 42},
    "date only": {**base, "window": {**base["window"], "start": "2026-12-04"}},
}
for name, event in bad.items():
    if events.is_valid(event):
        failures.append(f"bad event accepted by the schema: {name}")

for path in [root / "examples/patchbay.yaml", root / "examples/cluster.yaml"]:
    errors = [f"{list(e.path)}: {e.message}" for e in configs.iter_errors(yaml.safe_load(path.read_text()))]
    if errors:
        failures.append(f"{path.name}: {errors}")

checked = len(examples) + len(bad) + 2
if failures:
    print("\n".join(failures))
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    sys.exit(1)
print(f"schemas: {checked} passed, 0 failed")

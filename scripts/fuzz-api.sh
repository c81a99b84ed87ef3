#!/usr/bin/env bash
# Fuzzes a live `patchbay serve` with schemathesis against Schemas/openapi.yaml: every operation
# gets a bounded number of generated requests (positive and negative), and each answer must not
# be a 5xx and must match the description (status code, content type, required headers, body
# schema). Everything runs on 127.0.0.1 and is bounded in time; the server (with its in-process
# sink standing in for the vendors) is stopped on exit. The defaults suit CI (about 30 s on two
# cores); raise FUZZ_MAX_EXAMPLES for a deeper run. Ends with `fuzz: N passed, M failed`: one per
# API operation and one for the stateful scenarios, from schemathesis' JUnit report, plus one for
# the server still answering afterwards. Exits non-zero on any failure. schemathesis 4 is installed with pip if missing.
#
# Usage: scripts/fuzz-api.sh [extra schemathesis run options; give paths in them as absolute paths]
# Environment: PATCHBAY_BIN (default .build/debug/patchbay), FUZZ_MAX_EXAMPLES (default 20),
#              FUZZ_TIMEOUT seconds for the schemathesis run (default 240; a hang guard),
#              FUZZ_SEED, FUZZ_REPORT_DIR (keep the JUnit report and the server, sink and
#              schemathesis logs there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${PATCHBAY_BIN:-$root/.build/debug/patchbay}
max_examples=${FUZZ_MAX_EXAMPLES:-20}
time_limit=${FUZZ_TIMEOUT:-240}
report_dir=""
if [[ -n ${FUZZ_REPORT_DIR:-} ]]; then report_dir=$(realpath -m "$FUZZ_REPORT_DIR"); fi

for value in "$max_examples" "$time_limit"; do
    if [[ ! $value =~ ^[1-9][0-9]*$ ]]; then
        echo "fuzz-api: FUZZ_MAX_EXAMPLES and FUZZ_TIMEOUT must be positive whole numbers, got '$value'" >&2
        exit 2
    fi
done
if [[ ! -x $bin ]]; then
    echo "fuzz-api: no patchbay binary at $bin (run swift build first, or set PATCHBAY_BIN)" >&2
    exit 1
fi

work=$(mktemp -d)
server_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n $report_dir ]]; then
        mkdir -p "$report_dir" || true
        cp "$work/server.log" "$work/sink.log" "$work/schemathesis.log" "$report_dir/" 2>/dev/null || true
        cp "$work/report/"*.xml "$report_dir/" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "fuzz-api: schemathesis is missing; installing it with pip" >&2
    if ! python3 -m pip install -q --disable-pip-version-check 'schemathesis>=4,<5' >"$work/pip.log" 2>&1; then
        cat "$work/pip.log" >&2
        echo "fuzz-api: could not install schemathesis" >&2
        exit 1
    fi
    PATH="$(python3 -m site --user-base)/bin:$PATH"   # where a --user install puts it
    if ! command -v schemathesis >/dev/null 2>&1; then
        echo "fuzz-api: schemathesis was installed but is not on PATH" >&2
        exit 1
    fi
fi

random() { python3 -c 'import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

event_token="fuzz-event-$(random 12)"
admin_token="fuzz-admin-$(random 12)"
relay_token="fuzz-relay-$(random 12)"
whsec() { python3 -c 'import base64, secrets; print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())'; }
sink_port=$(free_port)
unused_port=$(free_port)   # nothing listens here: deliveries to it stay pending and retry
sink="http://127.0.0.1:$sink_port"

cat >"$work/patchbay.yaml" <<EOF
server:
  listen: 127.0.0.1:0
  tokens: ["$event_token"]
  adminTokens: ["$admin_token"]
  drainDelay: 0s
store:
  sqlite: $work/fuzz.db
delivery:
  timeout: 5s
  connectTimeout: 1s
targets:
  chat: {kind: slack, url: "$sink/slack/T0/B0/fuzz"}
  cards: {kind: teams, url: "$sink/teams/fuzz"}
  refused: {kind: webhook, url: "$sink/status/400", secret: "$(whsec)", allowPrivateNetworks: true}
  offline: {kind: slack, url: "http://127.0.0.1:$unused_port/slack/offline"}
  status: {kind: statuspage, page: fuzzpage, apiKey: "fuzz-statuspage-key", baseURL: "$sink/statuspage"}
  uptime: {kind: pingdom, token: "fuzz-pingdom-token", baseURL: "$sink/pingdom/api/3.1"}
sources:
  tickets: {kind: json, bearer: "$relay_token"}
  ci: {kind: standard-webhooks, secret: "$(whsec)"}
  gh: {kind: github, secret: "fuzz-github-secret-$(random 8)"}
  slack: {kind: slack, secret: "fuzz-slack-secret-$(random 8)"}
  aws-events: {kind: eventbridge, apiKeyHeader: X-Patchbay-Key, apiKey: "fuzz-eventbridge-$(random 8)"}
routes:
  - targets: [chat, cards, refused, offline]
    statuspage: {target: status, components: [cmp-web]}
    pingdom: {target: uptime, checks: [1001]}
    timezone: America/Los_Angeles
EOF

cat >"$work/schemathesis.toml" <<EOF
[auth.openapi.eventToken]
bearer = "$event_token"

[auth.openapi.adminToken]
bearer = "$admin_token"

[auth.openapi.relayBearer]
bearer = "$relay_token"

# Relay requests mostly name a configured source, so they reach its checks rather than a 404.
[dictionaries.relay-sources]
values = ["tickets", "ci", "gh", "slack", "aws-events"]

[parameters]
"path.source" = { dictionary = "relay-sources", probability = 0.8 }
EOF

# A private copy, so a rebuild during the run neither breaks nor changes the server under test.
cp "$bin" "$work/patchbay"
bin=$work/patchbay
"$bin" config check --config "$work/patchbay.yaml" >/dev/null
(cd "$work" && exec "$bin" serve --config "$work/patchbay.yaml" --sink "127.0.0.1:$sink_port" --log-level notice \
    >"$work/sink.log" 2>"$work/server.log") &
server_pid=$!

port=""
for _ in $(seq 150); do
    port=$(sed -n 's#.*patchbay listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*#\1#p' "$work/server.log" | tail -n 1)
    [[ -n $port ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.2
done
if [[ -z $port ]]; then
    echo "fuzz-api: the server did not start" >&2
    cat "$work/server.log" >&2
    exit 1
fi
base="http://127.0.0.1:$port"
echo "fuzz-api: patchbay on $base, sink on $sink"

# Seed the queue so the admin operations have deliveries and maintenances to read and replay: the
# example events, with the window moved to the next days so it is ahead (reminders, vendor objects).
python3 - "$base" "$event_token" "$root/Schemas/examples" <<'PY'
import datetime, json, pathlib, sys, urllib.request
base, token, folder = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=1)
for n, path in enumerate(sorted(folder.glob("*.json"))):
    event = json.loads(path.read_text())
    event["window"] = {"id": f"mw-fuzz-{n % 2}", "start": start.isoformat(), "end": (start + datetime.timedelta(hours=1)).isoformat()}
    request = urllib.request.Request(f"{base}/v1/events", data=json.dumps(event).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202, (path.name, answer.status)
PY
sleep 3   # let the dispatcher deliver, refuse (dead) or retry the seeded deliveries

seed_option=()
if [[ -n ${FUZZ_SEED:-} ]]; then seed_option=(--seed "$FUZZ_SEED"); fi

# schemathesis keeps a cache in ./.schemathesis: run it from the scratch folder, not the repository.
status=0
cd "$work"
started=$SECONDS
timeout --kill-after=10 "$time_limit" \
    schemathesis --config-file "$work/schemathesis.toml" run "$root/Schemas/openapi.yaml" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$max_examples" \
    --request-timeout 10 \
    --max-failures 100 \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$work/report" \
    "${seed_option[@]}" "$@" 2>&1 | tee "$work/schemathesis.log" || status=$?
elapsed=$((SECONDS - started))
if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "fuzz-api: schemathesis did not finish within FUZZ_TIMEOUT=${time_limit}s" >&2
fi

alive=1
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "fuzz-api: the server died during the run; its log ends:" >&2
    tail -n 40 "$work/server.log" >&2
    alive=0
elif ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=5)' "$base" 2>/dev/null; then
    echo "fuzz-api: /healthz does not answer after the run" >&2
    alive=0
fi
if [[ $alive -eq 0 ]]; then status=1; fi
if [[ $status -ne 0 ]]; then
    echo "fuzz-api: FAILED (exit $status); server log tail:" >&2
    grep -Eiv ' (info|notice) |send failed; will retry|delivery is dead|relay request refused' "$work/server.log" | tail -n 20 >&2 || true
fi

# The count is what the JUnit report says (one test case per operation, one for the stateful
# scenarios) plus the health check above; without a complete report there is nothing to count, and no count is printed.
if summary=$(python3 - "$work/report" "$alive" <<'PY'
import pathlib, sys
import xml.etree.ElementTree as ET
reports = sorted(pathlib.Path(sys.argv[1]).glob("junit*.xml"))
try:
    cases = list(ET.parse(reports[-1]).getroot().iter("testcase"))
except (IndexError, OSError, ET.ParseError):
    sys.exit(1)
failed = [c.get("name", "?") for c in cases if c.find("failure") is not None or c.find("error") is not None]
skipped = sum(1 for c in cases if c.find("skipped") is not None and c.get("name", "?") not in failed)
passed = len(cases) - len(failed) - skipped
if passed + len(failed) == 0:
    sys.exit(1)
if sys.argv[2] == "1":
    passed += 1
else:
    failed.append("server alive after the run")
for name in failed:
    print(f"fuzz-api: failed: {name}", file=sys.stderr)
print(f"{passed} passed, {len(failed)} failed" + (f", {skipped} skipped" if skipped else ""))
PY
); then
    tests=$(awk '/^ *Test cases:/ { getline; sub(/^ +/, ""); line = $0 } END { print line }' "$work/schemathesis.log")
    echo "fuzz: $summary (${tests:-test cases not reported}; ${elapsed}s)"
else
    echo "fuzz-api: no summary: schemathesis wrote no complete JUnit report (exit $status)" >&2
    if [[ $status -eq 0 ]]; then status=1; fi
fi
exit "$status"

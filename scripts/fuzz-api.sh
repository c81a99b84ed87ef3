#!/usr/bin/env bash
# Fuzzes a live `patchbay serve` with schemathesis against Schemas/openapi.yaml: every operation
# gets a bounded number of generated requests (positive and negative), and each answer must not
# be a 5xx and must match the description (status code, content type, required headers, body
# schema). Everything runs on 127.0.0.1 and is bounded in time; the server (with its in-process
# sink standing in for the vendors) is stopped on exit. Exits non-zero on any failure.
#
# Usage: scripts/fuzz-api.sh [extra schemathesis run options; give paths in them as absolute paths]
# Environment: PATCHBAY_BIN (default .build/debug/patchbay), FUZZ_MAX_EXAMPLES (default 50),
#              FUZZ_TIMEOUT seconds (default 600), FUZZ_SEED, FUZZ_REPORT_DIR (keep a JUnit report
#              and the server and sink logs there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${PATCHBAY_BIN:-$root/.build/debug/patchbay}
max_examples=${FUZZ_MAX_EXAMPLES:-50}
time_limit=${FUZZ_TIMEOUT:-600}
report_dir=""
if [[ -n ${FUZZ_REPORT_DIR:-} ]]; then report_dir=$(realpath -m "$FUZZ_REPORT_DIR"); fi

if [[ ! -x $bin ]]; then
    echo "fuzz-api: no patchbay binary at $bin (run swift build first, or set PATCHBAY_BIN)" >&2
    exit 1
fi
if ! command -v schemathesis >/dev/null 2>&1 || ! python3 -c 'import schemathesis' 2>/dev/null; then
    echo "fuzz-api: installing schemathesis" >&2
    python3 -m pip install -q schemathesis
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
        cp "$work/server.log" "$work/sink.log" "$report_dir/" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
report_options=()
if [[ -n $report_dir ]]; then report_options=(--report junit --report-dir "$report_dir"); fi

# schemathesis keeps a cache in ./.schemathesis: run it from the scratch folder, not the repository.
status=0
cd "$work"
timeout --kill-after=10 "$time_limit" \
    schemathesis --config-file "$work/schemathesis.toml" run "$root/Schemas/openapi.yaml" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$max_examples" \
    --request-timeout 10 \
    --max-failures 100 \
    --generation-database none \
    --no-color \
    "${seed_option[@]}" "${report_options[@]}" "$@" || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "fuzz-api: the server died during the run; its log ends:" >&2
    tail -n 40 "$work/server.log" >&2
    status=1
elif ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=5)' "$base"; then
    echo "fuzz-api: /healthz does not answer after the run" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "fuzz-api: FAILED (exit $status); server log tail:" >&2
    grep -Eiv ' (info|notice) |send failed; will retry|delivery is dead' "$work/server.log" | tail -n 20 >&2 || true
fi
exit "$status"

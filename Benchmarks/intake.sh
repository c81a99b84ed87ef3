#!/usr/bin/env bash
# Intake throughput: how many events per second POST /v1/events commits (SQLite WAL,
# synchronous=FULL, group commit), with wrk on loopback. Deliveries go to the local sink.
#   Benchmarks/intake.sh [seconds] [connections] [debug|release]
# INTAKE_ONLY=1 routes nothing, to measure the intake commit path without the dispatcher's writes.
# Prints wrk's figures. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
configuration=${3:-debug}
command -v wrk >/dev/null || { echo "intake.sh: install wrk first (apt-get install wrk)" >&2; exit 1; }
swift build -c "$configuration" --product patchbay >/dev/null
binary="$(swift build -c "$configuration" --show-bin-path)/patchbay"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sink=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/patchbay.yaml" <<YAML
server: {listen: "127.0.0.1:$port", tokens: ["bench-token-0123456789abcdef"], drainDelay: 0s}
store: {sqlite: $work/queue.db}
targets:
  bench: {kind: slack, url: "http://127.0.0.1:$sink/slack/bench", rate: {perSecond: 10000, burst: 100}}
routes:
  - match: {app: ${INTAKE_ONLY:+NoSuchApp}${INTAKE_ONLY:-Bench}}
    targets: [bench]
YAML
"$binary" serve --config "$work/patchbay.yaml" --sink "127.0.0.1:$sink" --log-level error >"$work/serve.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token-0123456789abcdef"
wrk.body = '{"type":"patch.completed","app":"Bench","environment":"Production","instance":{"id":"i-1","name":"web-1"},"window":{"id":"mw-bench","start":"2030-01-01T00:30:00Z","end":"2030-01-01T00:45:00Z"},"packages":["openssl-3.0.8-1.amzn2023.0.14.x86_64"]}'
LUA
echo "intake ($configuration build${INTAKE_ONLY:+, intake only}): wrk -t2 -c$connections -d${seconds}s, SQLite synchronous=FULL"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/events"
"$binary" deliveries list --state pending --limit 1 --json --config "$work/patchbay.yaml" >/dev/null
echo "events committed: $(sqlite3 "$work/queue.db" 'SELECT COUNT(*) FROM events')"

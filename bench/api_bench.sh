#!/usr/bin/env bash
# SendMessage benchmark with ghz: a dedicated API server (127.0.0.1, rate limit raised) on the
# running local stack, then fixed request rates, each a bounded number of calls.
#
#   bench/api_bench.sh                  # rates 250 500 1000 2000 msg/s, 10 s each, 50 concurrent workers over 4 connections
#   RATES="500" DURATION=20 bench/api_bench.sh
#
# Results (ghz summaries, the API log) go to bench/results/api-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
GHZ="$(command -v ghz || echo "$(go env GOPATH)/bin/ghz")"
[ -x "$GHZ" ] || { echo "ghz not found: run scripts/install_go_tools.sh" >&2; exit 1; }
RATES="${RATES:-250 500 1000 2000}"
DURATION="${DURATION:-10}"          # seconds per rate
CONCURRENCY="${CONCURRENCY:-50}"    # ghz workers
OUT="bench/results/api-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); METRICS_PORT=$(free_port)
export CHAT4ALL_API_HOST=127.0.0.1 CHAT4ALL_API_PORT=$PORT CHAT4ALL_API_METRICS_PORT=$METRICS_PORT
export CHAT4ALL_JWT_SECRET="${CHAT4ALL_JWT_SECRET:-bench-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export CHAT4ALL_RATE_LIMIT_PER_SECOND=1000000 CHAT4ALL_RATE_LIMIT_BURST=1000000   # the benchmark measures the API, not the limiter
export CHAT4ALL_LOG_LEVEL=WARNING
# Topics of its own (the same ones every run): the benchmark's messages never reach the
# default app's worker (`make run`) on this stack.
export CHAT4ALL_TOPIC_PREFIX="${CHAT4ALL_TOPIC_PREFIX:-bench-api.}"
.venv/bin/chat4all stack bootstrap > "$OUT/bootstrap.log" 2>&1

.venv/bin/chat4all api > "$OUT/api.log" 2>&1 &
API_PID=$!
trap 'kill -TERM $API_PID 2>/dev/null; wait $API_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$PY" - "$PORT" 2>/dev/null <<'PY' && break || sleep 0.3
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
ch = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
ok = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1
sys.exit(0 if ok else 1)
PY
done
eval "$("$PY" bench/api_setup.py "127.0.0.1:$PORT")"

echo "API pid $API_PID on 127.0.0.1:$PORT; results in $OUT"
for RATE in $RATES; do
  TOTAL=$((RATE * DURATION))
  echo "=== SendMessage at $RATE req/s, $TOTAL calls, concurrency $CONCURRENCY ==="
  "$GHZ" --insecure \
    --proto protos/chat4all/v1/messages.proto --import-paths protos \
    --call chat4all.v1.MessageService.SendMessage \
    -m "{\"authorization\":\"Bearer $TOKEN\"}" \
    -d "{\"conversation_id\":\"$CONVERSATION_ID\",\"content\":\"bench message {{.RequestNumber}}\"}" \
    --rps "$RATE" -n "$TOTAL" -c "$CONCURRENCY" --connections 4 --timeout 10s \
    --format summary "127.0.0.1:$PORT" | tee "$OUT/rate-$RATE.txt"
done
grep -h "chat4all_api_messages_published_total " <(curl -s "http://127.0.0.1:$METRICS_PORT/metrics") || true

#!/usr/bin/env bash
# SendMessage benchmark: a dedicated API server (127.0.0.1, every setting at its default, the rate
# limit included) on the running local stack, driven by ghz's runner through bench/sendload, which
# gives each request the token and conversation of the next of USERS senders (ghz's own command
# line sends one metadata set, so one user, whose 20 msg/s limit would cap the run).
#
#   bench/api_bench.sh                  # 200 senders; rates 1000 2000 3000 msg/s, 10 s each; then sequential sends
#   RATES="1000" DURATION=20 USERS=100 bench/api_bench.sh
#   RATES="0" bench/api_bench.sh        # 0 = as fast as the server answers (TOTAL calls, default 20000)
#
# A warm-up of 3 calls per sender comes first (not reported). Then SEQ calls one at a time
# (concurrency 1), with and without a client_message_id.
# Results (ghz summaries, API CPU per call, the API log, results.md and api-bench.png from
# bench/api_report.py) go to bench/results/api-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
command -v go >/dev/null || { echo "Go is needed to build bench/sendload (ghz's runner)" >&2; exit 1; }
RATES="${RATES:-1000 2000 3000}"
DURATION="${DURATION:-10}"          # seconds per rate
TOTAL="${TOTAL:-20000}"             # calls at rate 0 (unthrottled)
CONCURRENCY="${CONCURRENCY:-50}"    # ghz workers
CONNECTIONS="${CONNECTIONS:-4}"
USERS="${USERS:-200}"               # senders, each in its own conversation; at least 100 for issue 9
SEQ="${SEQ:-500}"                   # sequential calls, with and without client_message_id
OUT="bench/results/api-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

SENDLOAD=bench/results/.bin/sendload
if [ ! -x "$SENDLOAD" ] || [ -n "$(find bench/sendload -newer "$SENDLOAD" -type f)" ]; then
  (cd bench/sendload && go build -o ../results/.bin/sendload .)
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); METRICS_PORT=$(free_port)
export CHAT4ALL_API_HOST=127.0.0.1 CHAT4ALL_API_PORT=$PORT CHAT4ALL_API_METRICS_PORT=$METRICS_PORT
export CHAT4ALL_WEBSOCKET_PORT=$(free_port)   # the gateway runs in the API process: not make run's 8765
export CHAT4ALL_JWT_SECRET="${CHAT4ALL_JWT_SECRET:-bench-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export CHAT4ALL_LOG_LEVEL=WARNING
# Topics of its own (the same ones every run): the benchmark's messages never reach the
# default app's worker (`make run`) on this stack. No worker reads them, so the admission
# control's lag check has no reading and sheds nothing.
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
# Senders are registered once and kept (see bench/api_setup.py); their tokens use this run's secret.
"$PY" bench/api_setup.py "127.0.0.1:$PORT" --users "$USERS" --out "$OUT/users.txt" > /dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$API_PID/stat"; }
TICK=$(getconf CLK_TCK)
run() {  # run NAME CALLS SENDLOAD-ARGS...: one ghz run, its summary and the API's CPU per call
  local name=$1 calls=$2; shift 2
  local before after
  before=$(cpu_ticks)
  "$SENDLOAD" -users "$OUT/users.txt" -n "$calls" -timeout 10s "$@" "127.0.0.1:$PORT" > "$OUT/$name.txt"
  after=$(cpu_ticks)
  echo "API CPU per call: $("$PY" -c "print(f'{($after - $before) * 1000 / $TICK / $calls:.3f} ms')")" >> "$OUT/$name.txt"
  grep -E "Count|Total|Requests/sec|Average|50 % in|95 % in|99 % in|\[[A-Z].*\]|API CPU" "$OUT/$name.txt"
}

echo "API pid $API_PID on 127.0.0.1:$PORT, $USERS senders, rate limit at its default; results in $OUT"
# Warm-up, not reported: each sender's first call reads its conversation from Cassandra (then
# cached) and its token is verified once; a long-running server has done both long ago.
"$SENDLOAD" -users "$OUT/users.txt" -n $((USERS * 3)) -c 10 -connections 2 "127.0.0.1:$PORT" > "$OUT/warmup.txt"
for RATE in $RATES; do
  CALLS=$(( RATE > 0 ? RATE * DURATION : TOTAL ))
  echo "=== SendMessage at ${RATE/#0/max} req/s, $CALLS calls, concurrency $CONCURRENCY over $CONNECTIONS connections ==="
  run "rate-$RATE" "$CALLS" -rps "$RATE" -c "$CONCURRENCY" -connections "$CONNECTIONS"
done
echo "=== sequential SendMessage, $SEQ calls, no client_message_id ==="
run sequential "$SEQ" -c 1 -connections 1
echo "=== sequential SendMessage, $SEQ calls, a new client_message_id each ==="
run sequential-cmid "$SEQ" -c 1 -connections 1 -cmid
grep -h "^chat4all_api_messages_published_total \|^chat4all_api_shed_total\|^chat4all_api_rate_limited_total " \
  <(curl -s "http://127.0.0.1:$METRICS_PORT/metrics") || true
echo "=== $OUT/results.md (and api-bench.png) ==="
"$PY" bench/api_report.py "$OUT"

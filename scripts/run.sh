#!/usr/bin/env bash
# `make run`: the local stack, then one Faust worker (all roles) and the gRPC API in the foreground.
# Ctrl-C stops the worker and the API gracefully; the stack keeps running (`make down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/chat4all" stack up

pids=()
stop() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
}
trap stop EXIT INT TERM

"$BIN/chat4all" worker --role all & pids+=($!)
"$BIN/chat4all" api & pids+=($!)
echo "Chat4All running: gRPC API 127.0.0.1:${CHAT4ALL_API_PORT:-50051}," \
     "table inspector http://127.0.0.1:${CHAT4ALL_WEB_PORT:-6066}/ui/ (health: /health, metrics: /metrics)," \
     "traces in Jaeger http://127.0.0.1:${CHAT4ALL_JAEGER_QUERY_PORT:-16686}/ (OTLP 127.0.0.1:${CHAT4ALL_JAEGER_OTLP_GRPC_PORT:-4317})," \
     "Prometheus http://127.0.0.1:${CHAT4ALL_PROMETHEUS_PORT:-9090}/ (Debian builds its classic UI: /classic/alerts, /classic/targets)." \
     "Ctrl-C stops them; 'make down' stops the stack." >&2
wait -n "${pids[@]}"

#!/usr/bin/env bash
# `make test`: start the stack if needed, run pytest, stop whatever this run started.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started_file=$(mktemp)
cleanup() {
  # Stop exactly the servers this run started, never a stack the developer had running.
  "$BIN/chat4all" stack down --only-file "$started_file" || true
  rm -f "$started_file"
}
trap cleanup EXIT
"$BIN/chat4all" stack up --started-file "$started_file" || exit 1

"$BIN/pytest" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here, not a pass" >&2
  exit 1
fi
exit "$rc"

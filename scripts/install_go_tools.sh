#!/usr/bin/env bash
# Installs the Go command-line tools the API tests and benchmark use (grpcurl, ghz)
# into $(go env GOPATH)/bin, pinned. Idempotent: skips a tool that is already there.
set -euo pipefail
command -v go >/dev/null || { echo "go is not installed: https://go.dev/dl/" >&2; exit 1; }
bin="$(go env GOPATH)/bin"
install_tool() {
  local name="$1" module="$2"
  if [ -x "$bin/$name" ]; then
    echo "$name already in $bin"
  else
    echo "installing $name from $module"
    go install "$module"
  fi
}
install_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
install_tool ghz github.com/bojand/ghz/cmd/ghz@v0.93.0

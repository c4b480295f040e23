#!/usr/bin/env bash
# Regenerates the Python code for protos/chat4all/v1/*.proto into chat4all/v1/ (committed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. protos/chat4all/v1/*.proto

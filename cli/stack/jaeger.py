"""Jaeger, built from the Go module proxy (its version pinned in stack/jaeger/tools/go.mod), keeping traces in memory."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from cli.stack.exceptions import StackError
from cli.stack.process import port_in_use
from cli.stack.server import CONFIG_DIR, Server, lib_dir

logger = logging.getLogger(__name__)

# The tool module whose go.mod/go.sum pin Jaeger and everything it links.
TOOL_MODULE = CONFIG_DIR / "jaeger" / "tools"
PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
BUILD_TIMEOUT_SECONDS = 3600


def pinned_version(go_mod: Path = TOOL_MODULE / "go.mod") -> str:
    """The Jaeger module version the tool module requires (e.g. v1.76.0)."""
    found = re.search(r"^\s*github\.com/jaegertracing/jaeger (v\S+)", go_mod.read_text(), re.MULTILINE)
    if found is None:
        raise StackError(f"{go_mod} does not require github.com/jaegertracing/jaeger")
    return found.group(1)


class Jaeger(Server):
    """Jaeger's all-in-one binary: OTLP on the jaeger_otlp_*_port settings, queries on jaeger_query_port."""

    name = "jaeger"

    @property
    def port(self) -> int:
        """The query API's port (what `stack status` shows and the probe asks)."""
        return self.settings.jaeger_query_port

    @property
    def binary(self) -> Path:
        """Where the built binary is cached, one folder per version (shared by stack instances)."""
        return lib_dir(self.settings, "jaeger") / pinned_version() / "jaeger"

    def install(self) -> None:
        """Build the pinned Jaeger with `go build` in the tool module, once (minutes cold; skipped when cached)."""
        target = self.binary
        if target.exists():
            return
        go = shutil.which("go")
        if go is None:
            raise StackError("Go is not installed: it builds Jaeger from the Go module proxy")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        logger.info(
            "building %s@%s into %s (several minutes the first time)", PACKAGE, pinned_version(), target
        )
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), PACKAGE],
            cwd=TOOL_MODULE,
            capture_output=True,
            text=True,
            # go.sum is the pin: fail rather than update it (the machine's own GOFLAGS kept).
            env={**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip()},
            timeout=BUILD_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise StackError(f"go build of {PACKAGE} failed:\n{result.stderr[-3000:]}")
        partial.rename(target)  # whole or not at all: a killed build leaves no binary behind

    def prepare(self) -> None:
        """Write its config: ports and the in-memory trace limit from settings (the query's gRPC port is any free one)."""
        settings = self.settings
        self.render(
            "jaeger/jaeger.yaml",
            self.home / "conf" / "jaeger.yaml",
            query_port=settings.jaeger_query_port,
            query_grpc_port=0,
            otlp_grpc_port=settings.jaeger_otlp_grpc_port,
            otlp_http_port=settings.jaeger_otlp_http_port,
            max_traces=settings.jaeger_max_traces,
        )

    def command(self) -> list[str]:
        """The binary with the rendered config."""
        return [str(self.binary), "--config", f"file:{self.home / 'conf' / 'jaeger.yaml'}"]

    def healthy(self) -> bool:
        """The query API lists services and the OTLP/gRPC port accepts connections."""
        url = f"http://127.0.0.1:{self.settings.jaeger_query_port}/api/services"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError):
            return False
        return isinstance(body, dict) and "data" in body and port_in_use(self.settings.jaeger_otlp_grpc_port)

"""Logging set-up shared by every process: text or JSON lines, ids carried as `extra` fields."""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry import trace

from chat4all import tracing
from chat4all.redact import TokenRedactor
from chat4all.settings import get_settings

# Fields that callers pass in `extra=` (or TraceIds adds) and that every line shows when present.
CONTEXT_FIELDS = (
    "message_id",
    "conversation_id",
    "user_id",
    "recipient_id",
    "channel",
    "upload_id",
    "trace_id",
    "span_id",
)


class TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as Jaeger shows them) to a record logged inside a sampled span."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only annotates it."""
        if tracing.ENABLED:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid and ctx.trace_flags.sampled:
                record.trace_id = format(ctx.trace_id, "032x")
                record.span_id = format(ctx.span_id, "016x")
        return True


class _ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k))
        return f"{line} {ctx}" if ctx else line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: str(getattr(record, k)) for k in CONTEXT_FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)  # exc_text: redacted
        return json.dumps(out)


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once, from settings (CHAT4ALL_LOG_LEVEL, CHAT4ALL_LOG_FORMAT)."""
    settings = get_settings()
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TokenRedactor())  # tokens never reach a log line, at any level
    handler.addFilter(TraceIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or settings.log_level)

"""Keeps access tokens out of log lines: a logging filter that redacts them, whoever logs them."""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# The places a token travels (the WebSocket library logs the request line and headers at DEBUG),
# and any JWT-shaped string wherever it appears (an exception's text, a URL in a warning).
_PATTERNS = (
    (re.compile(r"(access_token=)[^&\s\"'#]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    (re.compile(r"(bearer\s+)[^\s\"',;]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    (re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every access token replaced by [redacted]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class TokenRedactor(logging.Filter):
    """On a handler: rewrites each record's message (and exception text) without tokens.

    A handler's filters see every record it handles, the libraries' included (a logger's
    filters would see only that logger's own records).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip tokens from the record's message, exception text and stack; never drops the record."""
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

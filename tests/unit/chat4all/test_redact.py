"""Access tokens never reach a log line: the redacting filter on the log handler."""

from __future__ import annotations

import io
import logging

from chat4all.redact import TokenRedactor, redact

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXBhcnQtZm9yLXRlc3Q"


def test_redact_query_header_and_bare_jwt() -> None:
    assert (
        redact(f"< GET /v1/events?x=1&access_token={JWT}&y=2 HTTP/1.1")
        == "< GET /v1/events?x=1&access_token=[redacted]&y=2 HTTP/1.1"
    )
    assert redact("< Authorization: Bearer not-a-jwt-but-secret") == "< Authorization: Bearer [redacted]"
    assert JWT not in redact(f"failed: {JWT!r}")


def test_filter_covers_args_and_exception_text_of_any_logger() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(TokenRedactor())
    log = logging.getLogger("some.library")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("< GET %s HTTP/1.1", f"/v1/events?access_token={JWT}")
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert JWT not in text
    assert "access_token=[redacted]" in text and "bad token [redacted]" in text

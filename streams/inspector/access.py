"""Who may read the inspector pages: the operator token when it is set (Bearer, or Basic with the token as password).

The pages show message metadata (ids, participants, receipt times), so they follow the
operator endpoints' rule (streams/operator_auth.py): with ``CHAT4ALL_OPERATOR_TOKEN`` set
every page needs it; unset, the pages are open in dev mode and off in any other mode.
Browsers cannot send a Bearer header by themselves, so HTTP Basic with any user name and
the token as password is accepted too (the browser asks for it once per session).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from faust.web import Request, Response, View

from chat4all.settings import Settings

logger = logging.getLogger(__name__)


def given_token(request: Request) -> str | None:
    """The token a request carries: a Bearer token, or the password of HTTP Basic credentials."""
    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def read_refusal(view: View, request: Request, *, settings: Settings) -> Response | None:
    """None if ``request`` may read the inspector, else the 401/403 response that refuses it."""
    expected = settings.operator_token.get_secret_value() if settings.operator_token is not None else ""
    if not expected:
        if settings.dev_mode:
            return None
        return view.json({"error": "the inspector is off: set CHAT4ALL_OPERATOR_TOKEN"}, status=403)
    given = given_token(request)
    if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    logger.warning("inspector page %s refused: missing or wrong token", request.url.path)
    return view.json(
        {"error": "operator token required: Authorization: Bearer <CHAT4ALL_OPERATOR_TOKEN>"},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="chat4all-inspector"'},
    )

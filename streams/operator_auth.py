"""The operator check of the worker's web endpoints that change what the worker does (POST /connectors/faults)."""

from __future__ import annotations

import hmac
import logging

from faust.web import Request, Response, View

from chat4all.settings import Settings

logger = logging.getLogger(__name__)


def refusal(view: View, request: Request, *, settings: Settings) -> Response | None:
    """None if ``request`` may use an operator endpoint, else the response that refuses it.

    With ``CHAT4ALL_OPERATOR_TOKEN`` set, the request needs ``Authorization: Bearer <token>``
    (compared in constant time), in dev mode too. Without it, dev mode (the local stack) lets
    every request through and any other mode refuses every request: an operator endpoint is
    never open by accident in production.
    """
    expected = settings.operator_token.get_secret_value() if settings.operator_token is not None else ""
    if not expected:
        if settings.dev_mode:
            return None
        return view.json({"error": "operator endpoints are off: set CHAT4ALL_OPERATOR_TOKEN"}, status=403)
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return None
    # Neither the token given nor the expected one goes into the log.
    logger.warning(
        "operator endpoint %s %s refused: missing or wrong token", request.method, request.url.path
    )
    return view.json(
        {"error": "operator token required: Authorization: Bearer <CHAT4ALL_OPERATOR_TOKEN>"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="chat4all-worker"'},
    )

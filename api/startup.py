"""What the API refuses to start with: a weak JWT secret, the local stack's S3 secret or plain TCP outside dev mode."""

from __future__ import annotations

import logging

from api.tls import TlsConfigError, load_server_tls
from api.tokens import resolve_secret
from chat4all.settings import Settings

logger = logging.getLogger(__name__)


class UnsafeSettings(RuntimeError):
    """A setting that must not reach production; the message names it and says what to do."""


def _local_s3_secret() -> str:
    # The default of the setting is the local stack's S3Proxy credential (cli/stack).
    return Settings.model_fields["s3_secret_key"].default.get_secret_value()


def check_settings(settings: Settings) -> None:
    """Raise (MissingSecret, UnsafeSettings) on the first setting the API must not run with.

    Always: a JWT secret under 32 bytes, TLS files that are unreadable or do not match. Outside
    dev mode also: no JWT secret, the local stack's S3 secret, no TLS certificate and key.
    """
    resolve_secret(settings)  # MissingSecret: none outside dev mode, or a short one anywhere
    if not settings.dev_mode and settings.s3_secret_key.get_secret_value() == _local_s3_secret():
        raise UnsafeSettings(
            "CHAT4ALL_S3_SECRET_KEY is the local stack's default and CHAT4ALL_DEV_MODE is false: set the secret"
            " of your object store (refusing to start)"
        )
    try:
        tls = load_server_tls(settings=settings)
    except TlsConfigError as exc:
        raise UnsafeSettings(f"{exc} (refusing to start)") from None
    if tls is None and not settings.dev_mode:
        raise UnsafeSettings(
            "CHAT4ALL_TLS_CERT_FILE and CHAT4ALL_TLS_KEY_FILE are required when CHAT4ALL_DEV_MODE is false:"
            " tokens must not cross the network in clear (refusing to start)"
        )
    if tls is None:
        logger.warning("dev mode: the gRPC API and the WebSocket gateway serve without TLS (plain TCP)")

"""TLS of the API process: gRPC server credentials and the WebSocket gateway's ssl context, from one certificate and key."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from chat4all.settings import Settings


class TlsConfigError(RuntimeError):
    """The TLS settings name files that are missing, unreadable, or not a certificate and its key."""


@dataclass(frozen=True, kw_only=True)
class ServerTls:
    """A certificate (chain) and its private key, both PEM, as read at start-up."""

    cert_file: Path
    key_file: Path
    cert_pem: bytes
    key_pem: bytes


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{setting}={path}: cannot read it ({exc.strerror or exc})") from None


def load_server_tls(*, settings: Settings) -> ServerTls | None:
    """The configured certificate and key, checked to belong together; None when TLS is off."""
    cert_file, key_file = settings.tls_cert_file, settings.tls_key_file
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise TlsConfigError("set both CHAT4ALL_TLS_CERT_FILE and CHAT4ALL_TLS_KEY_FILE, or neither")
    tls = ServerTls(
        cert_file=cert_file,
        key_file=key_file,
        cert_pem=_read(cert_file, "CHAT4ALL_TLS_CERT_FILE"),
        key_pem=_read(key_file, "CHAT4ALL_TLS_KEY_FILE"),
    )
    _ssl_context(tls)  # OpenSSL checks that the key is the certificate's: refuse now, not at the first client
    return tls


def _ssl_context(tls: ServerTls) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=tls.cert_file, keyfile=tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"CHAT4ALL_TLS_CERT_FILE={tls.cert_file} and CHAT4ALL_TLS_KEY_FILE={tls.key_file} are not a PEM certificate"
            f" and its unencrypted private key ({exc})"
        ) from None
    return context


def grpc_server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """Credentials for ``server.add_secure_port`` (no client certificates asked)."""
    return grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)])


def server_ssl_context(*, settings: Settings) -> ssl.SSLContext | None:
    """The WebSocket gateway's ssl context (TLS 1.2 or later), or None when TLS is off."""
    tls = load_server_tls(settings=settings)
    return _ssl_context(tls) if tls is not None else None

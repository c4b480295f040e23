"""MinIO SDK client for the configured S3-compatible server."""

from __future__ import annotations

from minio import Minio

from chat4all.settings import Settings


def s3_client(settings: Settings, *, secret_key: str | None = None) -> Minio:
    """A client for the S3 endpoint in settings (``secret_key`` overrides, for tests of bad credentials)."""
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=secret_key if secret_key is not None else settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
    )

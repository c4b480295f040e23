"""The API's start-up refusals of unsafe settings outside dev mode."""

from __future__ import annotations

import pytest

from api.startup import UnsafeSettings, check_settings
from chat4all.settings import Settings

GOOD_SECRET = "s" * 40


def test_start_up_refusals_outside_dev_mode(tmp_path) -> None:
    base = {"jwt_secret": GOOD_SECRET, "stack_dir": tmp_path}
    check_settings(Settings(dev_mode=True, **base))  # the local stack: its S3 secret, no TLS
    with pytest.raises(UnsafeSettings, match="CHAT4ALL_S3_SECRET_KEY"):
        check_settings(Settings(dev_mode=False, **base))
    with pytest.raises(UnsafeSettings, match="CHAT4ALL_TLS_CERT_FILE and CHAT4ALL_TLS_KEY_FILE are required"):
        check_settings(Settings(dev_mode=False, s3_secret_key="another-secret", **base))
    with pytest.raises(UnsafeSettings, match="set both"):
        check_settings(Settings(dev_mode=True, tls_key_file=tmp_path / "k.pem", **base))

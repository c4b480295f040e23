"""streams.operator_auth without servers: which requests an operator endpoint lets through in each mode."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from chat4all.settings import Settings
from streams.operator_auth import refusal

TOKEN = "operator-token-for-the-unit-test"


class _View:
    def json(
        self, value: Any, *, status: int = 200, headers: dict | None = None
    ) -> tuple[int, Any, dict | None]:
        return status, value, headers


def _request(authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return SimpleNamespace(headers=headers, method="POST", url=SimpleNamespace(path="/connectors/faults"))


@pytest.mark.parametrize("dev_mode", [True, False])
def test_with_a_token_only_the_right_bearer_passes(dev_mode: bool) -> None:
    settings = Settings(dev_mode=dev_mode, operator_token=SecretStr(TOKEN))
    assert refusal(_View(), _request(f"Bearer {TOKEN}"), settings=settings) is None
    assert refusal(_View(), _request(f"bearer {TOKEN}"), settings=settings) is None
    for header in (None, "", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer ", TOKEN):
        status, _, headers = refusal(_View(), _request(header), settings=settings)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")


def test_without_a_token_dev_mode_is_open_and_production_is_off() -> None:
    assert refusal(_View(), _request(None), settings=Settings(dev_mode=True)) is None
    for token in (None, SecretStr("")):
        status, body, _ = refusal(
            _View(), _request(f"Bearer {TOKEN}"), settings=Settings(dev_mode=False, operator_token=token)
        )
        assert status == 403 and "CHAT4ALL_OPERATOR_TOKEN" in body["error"]

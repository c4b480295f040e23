"""The API serves exactly the services the protos declare: one left out or misnamed stops start-up."""

from __future__ import annotations

import pytest

from api.deps import build_deps
from api.registration import ServiceFactory, ServiceRegistration
from api.server import MissingService, check_services, declared_services, serve
from api.services import files
from chat4all.settings import Settings
from cli.api import SERVICES


def _settings() -> Settings:
    # Dev mode: the API may generate its JWT secret and serve plain TCP; nothing here binds a port.
    return Settings(dev_mode=True)


async def test_the_list_serves_every_declared_service_once() -> None:
    deps = build_deps(_settings())
    try:
        names = [registration(deps).name for registration in SERVICES]
    finally:
        await deps.close()
    assert len(names) == len(declared_services()) >= 6
    check_services(names)  # raises on any difference


async def test_a_service_left_out_fails_start_up() -> None:
    without_files = [s for s in SERVICES if s is not files.registration]
    with pytest.raises(MissingService, match=r"not served: chat4all\.v1\.FileService"):
        await serve(_settings(), services=without_files)


async def test_a_misnamed_service_fails_start_up() -> None:
    def misnamed(deps) -> ServiceRegistration:
        real = files.registration(deps)
        return ServiceRegistration(add_fn=real.add_fn, servicer=real.servicer, name="chat4all.v1.FileServce")

    services: list[ServiceFactory] = [s for s in SERVICES if s is not files.registration] + [misnamed]
    with pytest.raises(
        MissingService, match=r"not served: chat4all\.v1\.FileService; not declared: chat4all\.v1\.FileServce"
    ):
        await serve(_settings(), services=services)


def test_a_service_registered_twice_is_refused() -> None:
    names = sorted(declared_services())
    with pytest.raises(MissingService, match=f"registered twice: {names[0]}"):
        check_services([*names, names[0]])

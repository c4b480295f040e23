"""TLS and start-up refusals on a real API.

gRPC and WebSocket over TLS with the CA (and not without), the CLI's --ca-file, and the secrets
and missing certificates the API refuses to start with.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from chat4all.settings import Settings
from chat4all.v1 import auth_pb2, auth_pb2_grpc, users_pb2
from cli.harness.api_client import ApiClient
from cli.harness.api_process import TEST_JWT_SECRET, chat4all_executable
from cli.harness.ports import free_port
from tests.integration.api.tls_files import TlsFiles, make_tls_files
from tests.integration.gateway.presence import wait_presence

pytestmark = pytest.mark.integration

# Outside dev mode the API refuses the local stack's S3 secret: this one is wrong for S3Proxy,
# so files do not work on this server, which these tests do not use.
PRODUCTION_ENV = {
    "CHAT4ALL_DEV_MODE": "false",
    "CHAT4ALL_S3_SECRET_KEY": "not-the-local-stack-secret-0123456789",
}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_api(api_factory, tls_files: TlsFiles) -> ApiClient:
    """An API outside dev mode, serving TLS with the test CA's certificate."""
    return api_factory(
        {**PRODUCTION_ENV, **tls_files.server_env()}, wait_serving=False, ca_file=tls_files.ca_file
    )


def _health(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_grpc_over_tls_with_the_ca_works_and_without_it_does_not(
    tls_api: ApiClient, tls_files: TlsFiles, tmp_path
) -> None:
    user = tls_api.register_and_login("tls")
    me = tls_api.users.GetMe(users_pb2.GetMeRequest(), metadata=user.md, timeout=10)
    assert me.user_id == user.user_id

    # Plain TCP to a TLS port: the handshake never completes.
    with grpc.insecure_channel(tls_api.server.target) as plain:
        with pytest.raises(grpc.RpcError) as err:
            _health(plain)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE

    # TLS without the CA (the system roots) or with another CA: the certificate is not trusted.
    other = make_tls_files(tmp_path / "other", name="other")
    for roots in (None, other.ca_file.read_bytes()):
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        with grpc.secure_channel(tls_api.server.target, credentials) as channel:
            with pytest.raises(grpc.RpcError) as err:
                auth_pb2_grpc.AuthServiceStub(channel).Login(
                    auth_pb2.LoginRequest(username=user.username, password=user.password), timeout=5
                )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_websocket_over_wss_with_the_ca(
    tls_api: ApiClient, tls_files: TlsFiles, stack: Settings
) -> None:
    user = tls_api.register_and_login("wss")
    port = tls_api.server.env["CHAT4ALL_WEBSOCKET_PORT"]
    trusted = ssl.create_default_context(cafile=str(tls_files.ca_file))
    headers = {"Authorization": f"Bearer {user.token}"}
    async with connect(f"wss://127.0.0.1:{port}/v1/events", ssl=trusted, additional_headers=headers):
        # Authenticated and subscribed: the live session is in Redis.
        await wait_presence(stack, user.user_id, online=True, timeout=10, what="no session for a wss client")

    # A forged token is still refused over TLS (the HTTP 401 travels inside it).
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"wss://127.0.0.1:{port}/v1/events", ssl=trusted, additional_headers={"Authorization": "Bearer x"}
        ):
            pass
    assert refused.value.response.status_code == 401

    # Without the CA the server's certificate is refused; plain ws:// gets no WebSocket either.
    with pytest.raises(ssl.SSLCertVerificationError):
        async with connect(
            f"wss://127.0.0.1:{port}/v1/events", ssl=ssl.create_default_context(), additional_headers=headers
        ):
            pass
    with pytest.raises(InvalidMessage):  # the TLS server answers a plain HTTP request with no HTTP response
        async with connect(f"ws://127.0.0.1:{port}/v1/events", additional_headers=headers, open_timeout=5):
            pass


def test_cli_connects_with_its_ca_file(tls_api: ApiClient, tls_files: TlsFiles, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "home"),
        "CHAT4ALL_API_TARGET": tls_api.server.target,
    }
    env.pop("CHAT4ALL_TLS_CA_FILE", None)
    name, password = f"cli-{uuid.uuid4().hex[:8]}", "cli-tls-password"

    def cli(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [chat4all_executable(), *args],
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )

    without = cli("register", name, "--password", password)
    assert without.returncode != 0 and "UNAVAILABLE" in without.stderr
    registered = cli("register", name, "--password", password, "--ca-file", str(tls_files.ca_file))
    assert registered.returncode == 0, registered.stderr
    # The setting works as well as the option; the login remembers the CA for later commands.
    logged_in = cli(
        "login", name, "--password", password, extra={"CHAT4ALL_TLS_CA_FILE": str(tls_files.ca_file)}
    )
    assert logged_in.returncode == 0, logged_in.stderr
    me = cli("me")
    assert me.returncode == 0 and name in me.stdout, me.stderr


def _start(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {
        **os.environ,
        "CHAT4ALL_JWT_SECRET": TEST_JWT_SECRET,
        "CHAT4ALL_API_PORT": str(free_port()),
        "CHAT4ALL_API_METRICS_PORT": str(free_port()),
        "CHAT4ALL_WEBSOCKET_PORT": str(free_port()),
        "CHAT4ALL_STACK_DIR": str(tmp_path),
        **env,
    }
    for name in ("CHAT4ALL_TLS_CERT_FILE", "CHAT4ALL_TLS_KEY_FILE"):
        if name not in env:
            full.pop(name, None)
    done = subprocess.run(
        [chat4all_executable(), "api"], env=full, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0, f"the API started with {env}"
    return done


def test_api_refuses_to_start_with_weak_secrets_or_without_tls(tls_files: TlsFiles, tmp_path: Path) -> None:
    # A short JWT secret, in dev mode too.
    short = _start({"CHAT4ALL_DEV_MODE": "true", "CHAT4ALL_JWT_SECRET": "x"}, tmp_path)
    assert "CHAT4ALL_JWT_SECRET is shorter than 32 bytes" in short.stderr
    # Outside dev mode: the local stack's S3 secret (the default), even with TLS set.
    local_s3 = _start(
        {
            "CHAT4ALL_DEV_MODE": "false",
            "CHAT4ALL_S3_SECRET_KEY": "chat4all-local-secret",
            **tls_files.server_env(),
        },
        tmp_path,
    )
    assert "CHAT4ALL_S3_SECRET_KEY is the local stack's default" in local_s3.stderr
    # Outside dev mode: no certificate and key.
    no_tls = _start(PRODUCTION_ENV, tmp_path)
    assert "CHAT4ALL_TLS_CERT_FILE and CHAT4ALL_TLS_KEY_FILE are required" in no_tls.stderr
    # In any mode: half a TLS configuration, a missing file, a key that is not the certificate's.
    half = _start({"CHAT4ALL_DEV_MODE": "true", "CHAT4ALL_TLS_CERT_FILE": str(tls_files.cert_file)}, tmp_path)
    assert "set both CHAT4ALL_TLS_CERT_FILE and CHAT4ALL_TLS_KEY_FILE" in half.stderr
    missing = _start(
        {**tls_files.server_env(), "CHAT4ALL_TLS_KEY_FILE": str(tmp_path / "nope.key")}, tmp_path
    )
    assert "cannot read it" in missing.stderr and "nope.key" in missing.stderr
    other = make_tls_files(tmp_path / "other", name="other")
    mismatched = _start({**tls_files.server_env(), "CHAT4ALL_TLS_KEY_FILE": str(other.key_file)}, tmp_path)
    assert "not a PEM certificate and its unencrypted private key" in mismatched.stderr
    for done in (short, local_s3, no_tls, half, missing, mismatched):
        assert "Traceback" not in done.stderr
        assert TEST_JWT_SECRET not in done.stderr + done.stdout

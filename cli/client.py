"""The `chat4all` client commands: register, login, logout, me, conversation, send, history, read."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chat4all.retry import retry
from cli.safe import shown

SESSION_FILE = "session.json"
_RETRIES = 3


def config_dir() -> Path:
    """Where the CLI keeps its session (the user's config dir, e.g. ~/.config/chat4all)."""
    return Path(click.get_app_dir("chat4all"))


def save_session(data: dict[str, Any]) -> Path:
    """Write the token file with mode 0600 (dir 0700): it is a credential."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / SESSION_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.chmod(tmp, 0o600)  # in case the file existed with a wider mode
    os.replace(tmp, path)
    return path


def load_session() -> dict[str, Any]:
    """The saved login (server, token, user); a ClickException when nobody is logged in."""
    path = config_dir() / SESSION_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise click.ClickException("not logged in: run `chat4all login <username>` first") from None


def default_server() -> str:
    """The API address from the settings, ``api_host:api_port``."""
    from chat4all.settings import get_settings

    settings = get_settings()
    return f"{settings.api_host}:{settings.api_port}"


def _keep_ca_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    ctx.meta["chat4all.ca_file"] = value


def server_option(fn: Callable) -> Callable:
    """``--server`` (passed to the command) and ``--ca-file`` (kept for ``Client``).

    Every command that talks to the API takes ``--ca-file`` without a parameter of its own.
    """
    fn = click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=_keep_ca_file,
        help="PEM CA certificate of the API: connect with TLS (default: CHAT4ALL_TLS_CA_FILE, or the login's).",
    )(fn)
    return click.option(
        "--server",
        envvar="CHAT4ALL_API_TARGET",
        default=None,
        help="API address host:port (default: from settings).",
    )(fn)


def ca_file(session: dict[str, Any]) -> Path | None:
    """The CA to verify the API with: --ca-file, else CHAT4ALL_TLS_CA_FILE, else the one the login used."""
    from chat4all.settings import get_settings

    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get("chat4all.ca_file") if ctx is not None else None
    chosen = given or get_settings().tls_ca_file or session.get("ca_file")
    return Path(chosen) if chosen else None


def open_channel(target: str, ca: Path | None, options: list | None = None) -> Any:
    """A gRPC channel to ``target``: TLS verified against ``ca`` when given, plain TCP otherwise."""
    import grpc

    if ca is None:
        return grpc.insecure_channel(target, options=options)
    try:
        roots = ca.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read the CA file {ca}: {exc.strerror or exc}") from None
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options=options)


def grpc_errors(fn: Callable) -> Callable:
    """Turn a gRPC error into a one-line CLI error with its status code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import grpc

        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as exc:
            raise click.ClickException(f"{exc.code().name}: {shown(exc.details())}") from None

    return wrapper


class Client:
    """Stubs on one channel, with the saved token as call metadata."""

    def __init__(self, server: str | None, *, authenticated: bool = True) -> None:
        from chat4all.v1 import auth_pb2_grpc, conversations_pb2_grpc, messages_pb2_grpc, users_pb2_grpc

        self.session = load_session() if authenticated else {}
        self.target = server or self.session.get("server") or default_server()
        self.ca_file = ca_file(self.session)
        self.channel = open_channel(self.target, self.ca_file)
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.users = users_pb2_grpc.UserServiceStub(self.channel)
        self.conversations = conversations_pb2_grpc.ConversationServiceStub(self.channel)
        self.messages = messages_pb2_grpc.MessageServiceStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        """The call metadata that authenticates as the logged-in user."""
        return (("authorization", f"Bearer {self.session['access_token']}"),)


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _parse_channels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, handle = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r}: use CHANNEL=HANDLE, e.g. whatsapp=+5511999999999")
        out[name] = handle
    return out


@click.command()
@click.argument("username")
@click.password_option(envvar="CHAT4ALL_PASSWORD", help="Password (prompted if not given).")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    metavar="CHANNEL=HANDLE",
    help="Link a channel, e.g. whatsapp=+551199...",
)
@server_option
@grpc_errors
def register(username: str, password: str, channels: tuple[str, ...], server: str | None) -> None:
    """Create an account."""
    from chat4all.v1 import auth_pb2

    client = Client(server, authenticated=False)
    reply = client.auth.Register(
        auth_pb2.RegisterRequest(username=username, password=password, channels=_parse_channels(channels)),
        timeout=15,
    )
    click.echo(f"registered {username}: user_id {reply.user_id}")


@click.command()
@click.argument("username")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    envvar="CHAT4ALL_PASSWORD",
    help="Password (prompted if not given).",
)
@server_option
@grpc_errors
def login(username: str, password: str, server: str | None) -> None:
    """Log in and keep the access token in the user's config dir (mode 0600)."""
    from chat4all.v1 import auth_pb2

    client = Client(server, authenticated=False)
    reply = client.auth.Login(auth_pb2.LoginRequest(username=username, password=password), timeout=15)
    path = save_session(
        {
            "server": client.target,
            "ca_file": str(client.ca_file.resolve()) if client.ca_file else None,
            "username": username,
            "user_id": reply.user_id,
            "access_token": reply.access_token,
            "expires_at": reply.expires_at.seconds,
        }
    )
    click.echo(f"logged in as {username} ({reply.user_id}) until {_when(reply.expires_at)}; token in {path}")


@click.command()
@server_option
@grpc_errors
def logout(server: str | None) -> None:
    """Revoke the saved token and forget it."""
    from chat4all.v1 import auth_pb2

    client = Client(server)
    client.auth.RevokeToken(auth_pb2.RevokeTokenRequest(), metadata=client.md, timeout=15)
    (config_dir() / SESSION_FILE).unlink(missing_ok=True)
    click.echo("logged out")


@click.command()
@server_option
@grpc_errors
def me(server: str | None) -> None:
    """Show who is logged in and the linked channels."""
    from chat4all.v1 import users_pb2

    client = Client(server)
    reply = client.users.GetMe(users_pb2.GetMeRequest(), metadata=client.md, timeout=15)
    channels = (
        ", ".join(f"{shown(k)}={shown(v)}" for k, v in sorted(reply.channels.items())) or "none (native only)"
    )
    click.echo(f"{shown(reply.username)} ({shown(reply.user_id)}); channels: {channels}")


@click.group()
def conversation() -> None:
    """Create and list conversations."""


@conversation.command("create")
@click.argument("participant_ids", nargs=-1, required=True)
@click.option("--group", is_flag=True, help="A GROUP conversation (default: PRIVATE with one other user).")
@click.option("--title", default="", help="Title (groups).")
@server_option
@grpc_errors
def conversation_create(
    participant_ids: tuple[str, ...], group: bool, title: str, server: str | None
) -> None:
    """Create a conversation with the given user ids (you are added)."""
    from chat4all.v1 import conversations_pb2 as pb

    client = Client(server)
    kind = pb.CONVERSATION_TYPE_GROUP if group else pb.CONVERSATION_TYPE_PRIVATE
    reply = client.conversations.CreateConversation(
        pb.CreateConversationRequest(type=kind, participant_ids=list(participant_ids), title=title),
        metadata=client.md,
        timeout=15,
    )
    click.echo(f"{'created' if reply.created else 'existing'} conversation {reply.conversation_id}")


@conversation.command("list")
@click.option("--page-size", type=int, default=50, show_default=True)
@server_option
@grpc_errors
def conversation_list(page_size: int, server: str | None) -> None:
    """List your conversations."""
    from chat4all.v1 import conversations_pb2 as pb

    client = Client(server)
    token = ""
    while True:
        reply = client.conversations.ListConversations(
            pb.ListConversationsRequest(page_size=page_size, page_token=token), metadata=client.md, timeout=15
        )
        for c in reply.conversations:
            kind = pb.ConversationType.Name(c.type).removeprefix("CONVERSATION_TYPE_")
            participants = ", ".join(shown(p) for p in c.participant_ids)
            click.echo(
                f"{shown(c.conversation_id)}  {kind:<7}  {shown(c.title) or '-'}  participants: {participants}"
            )
        token = reply.next_page_token
        if not token:
            break


@click.command()
@click.argument("conversation_id")
@click.argument("text", required=False, default="")
@click.option("--file-id", default="", help="Attach an uploaded file.")
@click.option(
    "--channel", "channels", multiple=True, help="Only these channels (whatsapp, instagram, native)."
)
@click.option(
    "--client-message-id", default=None, help="Idempotency key (default: a new UUID, reused on retries)."
)
@server_option
@grpc_errors
def send(
    conversation_id: str,
    text: str,
    file_id: str,
    channels: tuple[str, ...],
    client_message_id: str | None,
    server: str | None,
) -> None:
    """Send a message; retries on UNAVAILABLE with the same idempotency key (never sent twice)."""
    import grpc

    from chat4all.v1 import messages_pb2 as pb

    client = Client(server)
    request = pb.SendMessageRequest(
        conversation_id=conversation_id,
        content=text,
        file_id=file_id,
        channels=list(channels),
        client_message_id=client_message_id or str(uuid.uuid4()),
    )

    def retryable(exc: Exception) -> bool:
        return isinstance(exc, grpc.RpcError) and exc.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )

    def wait(exc: Exception, attempt: int) -> float:
        # The server's retry-after when it sheds load, else half a second more each time.
        return float(dict(exc.trailing_metadata() or ()).get("retry-after", str(0.5 * attempt)))  # type: ignore[attr-defined]

    reply = retry(
        lambda _: client.messages.SendMessage(request, metadata=client.md, timeout=15),
        attempts=_RETRIES,
        retryable=retryable,
        delay=wait,
    )
    click.echo(f"sent {reply.message_id} at {_when(reply.timestamp)}")


@click.command()
@click.argument("conversation_id")
@click.option("--page-size", type=int, default=50, show_default=True)
@click.option("--all", "all_pages", is_flag=True, help="Follow the cursor to the end.")
@click.option("--page-token", default="", help="Continue from a previous page.")
@server_option
@grpc_errors
def history(
    conversation_id: str, page_size: int, all_pages: bool, page_token: str, server: str | None
) -> None:
    """Show a conversation's messages, oldest first."""
    from chat4all.v1 import messages_pb2 as pb

    client = Client(server)
    token = page_token
    while True:
        reply = client.messages.GetMessages(
            pb.GetMessagesRequest(conversation_id=conversation_id, page_size=page_size, page_token=token),
            metadata=client.md,
            timeout=15,
        )
        for m in reply.messages:
            who = "me" if m.sender_id == client.session.get("user_id") else shown(m.sender_id[:8])
            status = pb.MessageStatus.Name(m.status).removeprefix("MESSAGE_STATUS_")
            attachment = (
                f"  [file {shown(m.file.filename)} {m.file.size} B {shown(m.file_id)}]" if m.file_id else ""
            )
            # Content is another user's text: escaped, so it stays on its own line and cannot
            # forge history lines or send the terminal escape sequences.
            click.echo(
                f"{_when(m.timestamp)}  {who:<8}  {status:<9}  {shown(m.message_id)}  {shown(m.content)}{attachment}"
            )
        token = reply.next_page_token
        if not token or not all_pages:
            break
    if token:
        click.echo(f"more: --page-token {shown(token)}")


@click.command()
@click.argument("conversation_id")
@click.argument("message_ids", nargs=-1, required=True)
@server_option
@grpc_errors
def read(conversation_id: str, message_ids: tuple[str, ...], server: str | None) -> None:
    """Mark messages as read."""
    from chat4all.v1 import messages_pb2 as pb

    client = Client(server)
    client.messages.MarkRead(
        pb.MarkReadRequest(conversation_id=conversation_id, message_ids=list(message_ids)),
        metadata=client.md,
        timeout=15,
    )
    click.echo(f"marked {len(message_ids)} message(s) read")

"""Hostile input against a real API, and the CLI printing other users' text inertly.

Forged and altered page tokens, oversized fields, control and bidirectional characters,
undecodable bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
import uuid6
from cassandra.cluster import Session

from api.pagination import Cursors, cursor_key
from chat4all.settings import Settings
from chat4all.v1 import auth_pb2, files_pb2, files_pb2_grpc, users_pb2
from chat4all.v1 import conversations_pb2 as cpb
from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient, TestUser, expect_status
from cli.harness.api_process import TEST_JWT_SECRET, chat4all_executable
from tests.integration.api.kafka_probe import TopicProbe

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode
KIB100 = "u" * 100 * 1024
HOSTILE = {
    "ESC": "\x1b[2J\x1b[1;1H",
    "BEL": "ding\x07",
    "NUL": "nul\x00byte",
    "CR": "over\rwrite",
    "C1 CSI": "csi\x9b31m",
    "DEL": "del\x7f",
    "RLO": "\u202egnp.exe",
    "isolate": "\u2066x\u2069",
}


def unsigned(cursor: object) -> str:
    """A page token as the API wrote them before they were signed: base64 of JSON."""
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def the_servers_cursors() -> Cursors:
    """The cursor key the test API derives from its JWT secret (no CHAT4ALL_API_CURSOR_SECRET)."""
    return Cursors(key=cursor_key(settings=Settings(api_cursor_secret=None), jwt_secret=TEST_JWT_SECRET))


@pytest.fixture
def pair(api: ApiClient) -> tuple[TestUser, TestUser, str]:
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    return alice, bob, api.private_conversation(alice, bob)


def assert_no_trace_in_log(api: ApiClient, before: int) -> None:
    tail = api.server.log()[before:]
    assert "Traceback" not in tail and " failed" not in tail, tail[-3000:]


# --- page tokens ------------------------------------------------------------------------------


def test_forged_page_tokens_are_invalid_argument_without_a_stack_trace(api: ApiClient, pair) -> None:
    alice, _bob, cid = pair
    before = len(api.server.log())
    forged = [
        unsigned({"k": "messages", "ts": 1700000000000, "id": 12345}),
        unsigned({"k": "messages", "ts": 1e30, "id": str(uuid.uuid4())}),
        base64.urlsafe_b64encode(nested(20_000).encode()).decode(),
        unsigned({"k": "messages", "ts": True, "id": None}),
        "not.a.token",
        ".",
        "a" * 511,
        "%%%%",
    ]
    for token in forged:
        err = expect_status(
            CODE.INVALID_ARGUMENT,
            api.messages.GetMessages,
            pb.GetMessagesRequest(conversation_id=cid, page_token=token),
            metadata=alice.md,
            timeout=10,
        )
        assert "page_token" in err.details()
    for token in (
        unsigned({"k": "conversations", "after": 7}),
        unsigned({"k": "conversations", "after": nested(50)}),
    ):
        expect_status(
            CODE.INVALID_ARGUMENT,
            api.conversations.ListConversations,
            cpb.ListConversationsRequest(page_token=token),
            metadata=alice.md,
            timeout=10,
        )
    assert_no_trace_in_log(api, before)


def test_a_signed_cursor_with_bad_fields_is_still_invalid_argument(api: ApiClient, pair) -> None:
    """Behind the signature the fields are type- and range-checked (a leaked or mis-issued key)."""
    alice, _bob, cid = pair
    cursors = the_servers_cursors()
    good_id = str(uuid.uuid4())
    for fields in (
        {"ts": 1e30, "id": good_id},
        {"ts": 10**20, "id": good_id},
        {"ts": -5, "id": good_id},
        {"ts": 1700000000000, "id": 12345},
        {"ts": 1700000000000},
        {"ts": [[[]]], "id": good_id},
    ):
        expect_status(
            CODE.INVALID_ARGUMENT,
            api.messages.GetMessages,
            pb.GetMessagesRequest(conversation_id=cid, page_token=cursors.encode("messages", fields)),
            metadata=alice.md,
            timeout=10,
        )
    # The same key and a well-formed position: accepted (an empty page past the end).
    fine = cursors.encode("messages", {"ts": 1700000000000, "id": good_id})
    page = api.messages.GetMessages(
        pb.GetMessagesRequest(conversation_id=cid, page_token=fine), metadata=alice.md, timeout=10
    )
    assert list(page.messages) == []


def three_conversations(api: ApiClient) -> tuple[TestUser, list[str]]:
    me = api.register_and_login("pager")
    ids = [api.private_conversation(me, api.register_and_login("peer")) for _ in range(3)]
    return me, ids


def list_page(api: ApiClient, user: TestUser, token: str = "") -> cpb.ListConversationsResponse:
    return api.conversations.ListConversations(
        cpb.ListConversationsRequest(page_size=1, page_token=token), metadata=user.md, timeout=10
    )


def test_an_altered_cursor_is_refused_and_a_genuine_one_pages_on(api: ApiClient) -> None:
    me, ids = three_conversations(api)
    first = list_page(api, me)
    token = first.next_page_token
    assert token and "." in token
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload["k"] == "conversations"
    # Point the cursor elsewhere, keep the MAC: refused.
    payload["after"] = str(uuid.UUID(int=0))
    moved = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (f"{moved}.{mac}", flipped, body, token + "x"):
        err = expect_status(
            CODE.INVALID_ARGUMENT,
            api.conversations.ListConversations,
            cpb.ListConversationsRequest(page_size=1, page_token=bad),
            metadata=me.md,
            timeout=10,
        )
        assert "page_token" in err.details()
    # A genuine conversations cursor is not a messages cursor.
    expect_status(
        CODE.INVALID_ARGUMENT,
        api.messages.GetMessages,
        pb.GetMessagesRequest(conversation_id=ids[0], page_token=token),
        metadata=me.md,
        timeout=10,
    )
    seen = [c.conversation_id for c in first.conversations]
    while token:
        page = list_page(api, me, token)
        seen += [c.conversation_id for c in page.conversations]
        token = page.next_page_token
    assert sorted(seen) == sorted(ids)


def test_api_processes_with_one_jwt_secret_accept_each_others_cursors(api: ApiClient, api_factory) -> None:
    me, ids = three_conversations(api)
    token = list_page(api, me).next_page_token
    other = api_factory()  # another process, the same JWT secret, no cursor secret
    assert list_page(other, me, token).conversations[0].conversation_id in ids
    own_key = api_factory({"CHAT4ALL_API_CURSOR_SECRET": "a-cursor-key-of-its-own-32-bytes-long"})
    expect_status(
        CODE.INVALID_ARGUMENT,
        own_key.conversations.ListConversations,
        cpb.ListConversationsRequest(page_size=1, page_token=token),
        metadata=me.md,
        timeout=10,
    )
    assert list_page(own_key, me).next_page_token != token  # signed under its own key


def test_a_short_cursor_secret_stops_the_api(api_factory) -> None:
    with pytest.raises(RuntimeError, match="CHAT4ALL_API_CURSOR_SECRET is shorter than 32 bytes"):
        api_factory({"CHAT4ALL_API_CURSOR_SECRET": "short"})


# --- lengths ----------------------------------------------------------------------------------


def test_a_100_kib_username_at_login_is_invalid_argument_not_unavailable(api: ApiClient) -> None:
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.auth.Login,
        auth_pb2.LoginRequest(username=KIB100, password="whatever-pw"),
        timeout=10,
    )
    assert "username is 102400 characters; the limit is 32" in err.details()


def test_a_100_kib_upload_id_is_invalid_argument_not_unavailable(api: ApiClient, pair) -> None:
    alice, _bob, _cid = pair
    files = api.stub(files_pb2_grpc.FileServiceStub)
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        files.GetUploadStatus,
        files_pb2.GetUploadStatusRequest(upload_id=KIB100),
        metadata=alice.md,
        timeout=10,
    )
    assert "upload_id is 102400 characters; the limit is 128" in err.details()


def oversized_calls(api: ApiClient, cid: str) -> list[tuple[str, object, object]]:
    """(the field named in the error, the stub method, the request) for one oversized field per RPC."""
    long_id = "0" * 65
    return [
        ("password", api.auth.Register, auth_pb2.RegisterRequest(username="someone", password="p" * 257)),
        (
            "channels key",
            api.auth.Register,
            auth_pb2.RegisterRequest(username="someone", password="p" * 12, channels={"w" * 17: "x"}),
        ),
        ("password", api.auth.Login, auth_pb2.LoginRequest(username="someone", password="p" * 257)),
        ("handle", api.users.LinkChannel, users_pb2.LinkChannelRequest(channel="whatsapp", handle="h" * 129)),
        ("channel", api.users.UnlinkChannel, users_pb2.UnlinkChannelRequest(channel="c" * 17)),
        (
            "title",
            api.conversations.CreateConversation,
            cpb.CreateConversationRequest(type=2, title="t" * 201),
        ),
        (
            "participant_ids[0]",
            api.conversations.CreateConversation,
            cpb.CreateConversationRequest(type=1, participant_ids=[long_id]),
        ),
        (
            "participant_ids has 501 entries",
            api.conversations.CreateConversation,
            cpb.CreateConversationRequest(type=2, participant_ids=[str(uuid.uuid4()) for _ in range(501)]),
        ),
        (
            "conversation_id",
            api.conversations.GetConversation,
            cpb.GetConversationRequest(conversation_id=long_id),
        ),
        (
            "page_token",
            api.conversations.ListConversations,
            cpb.ListConversationsRequest(page_token="t" * 513),
        ),
        ("content", api.messages.SendMessage, pb.SendMessageRequest(conversation_id=cid, content="c" * 4097)),
        (
            "client_message_id",
            api.messages.SendMessage,
            pb.SendMessageRequest(conversation_id=cid, content="x", client_message_id="k" * 129),
        ),
        ("file_id", api.messages.SendMessage, pb.SendMessageRequest(conversation_id=cid, file_id=long_id)),
        (
            "channels has 9 entries",
            api.messages.SendMessage,
            pb.SendMessageRequest(conversation_id=cid, content="x", channels=["native"] * 9),
        ),
        (
            "page_token",
            api.messages.GetMessages,
            pb.GetMessagesRequest(conversation_id=cid, page_token="t" * 513),
        ),
        (
            "message_ids[1]",
            api.messages.MarkRead,
            pb.MarkReadRequest(conversation_id=cid, message_ids=[str(uuid.uuid4()), long_id]),
        ),
        (
            "file_id",
            api.stub(files_pb2_grpc.FileServiceStub).GetDownloadUrl,
            files_pb2.GetDownloadUrlRequest(file_id=long_id),
        ),
    ]


def test_every_rpc_refuses_an_oversized_string_field_before_any_query(api: ApiClient, pair) -> None:
    alice, _bob, cid = pair
    before = len(api.server.log())
    for field, call, request in oversized_calls(api, cid):
        err = expect_status(CODE.INVALID_ARGUMENT, call, request, metadata=alice.md, timeout=10)
        assert err.details().startswith(field), (field, err.details())
    assert_no_trace_in_log(api, before)


def upload(api: ApiClient, user: TestUser, info: files_pb2.FileInfo) -> grpc.RpcError:
    files = api.stub(files_pb2_grpc.FileServiceStub)
    stream = iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=b"x")])
    return expect_status(CODE.INVALID_ARGUMENT, files.UploadFile, stream, metadata=user.md, timeout=10)


def test_upload_file_info_fields_are_limited_and_checked(api: ApiClient, pair) -> None:
    alice, _bob, cid = pair
    base = {
        "conversation_id": cid,
        "filename": "a.txt",
        "size": 1,
        "sha256": "0" * 64,
        "upload_id": str(uuid.uuid4()),
    }
    for field, value in (
        ("filename", "f" * 256),
        ("upload_id", KIB100),
        ("mime_type", "m" * 256),
        ("sha256", "0" * 65),
    ):
        err = upload(api, alice, files_pb2.FileInfo(**{**base, field: value}))
        assert err.details().startswith(f"info.{field} is "), err.details()
    err = upload(api, alice, files_pb2.FileInfo(**{**base, "filename": "\u202etxt.exe"}))
    assert err.details().startswith("info.filename contains the control or bidirectional character U+202E")


def test_fields_at_their_limit_pass(api: ApiClient, pair) -> None:
    alice, bob, cid = pair
    title = "T" * 200
    group = api.conversations.CreateConversation(
        cpb.CreateConversationRequest(type=2, participant_ids=[bob.user_id], title=title),
        metadata=alice.md,
        timeout=10,
    )
    assert group.conversation.title == title
    api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="c" * 4096), metadata=alice.md, timeout=10
    )
    name = f"n{uuid.uuid4().hex}"[:32]
    api.auth.Register(
        auth_pb2.RegisterRequest(username=name, password="p" * 256, channels={"whatsapp": "h" * 128}),
        timeout=15,
    )
    api.auth.Login(auth_pb2.LoginRequest(username=name, password="p" * 256), timeout=15)


def test_undecodable_request_bytes_are_invalid_argument(api: ApiClient, pair) -> None:
    alice, _bob, _cid = pair
    before = len(api.server.log())
    raw = {"request_serializer": None, "response_deserializer": None}
    bad_utf8 = b"\x0a\x03\xff\xfe\xfd"  # field 1 (a string), three bytes that are not UTF-8
    for method, md in (
        ("/chat4all.v1.AuthService/Login", ()),
        ("/chat4all.v1.MessageService/GetMessages", alice.md),
        ("/chat4all.v1.FileService/GetUploadStatus", alice.md),
    ):
        call = api.channel.unary_unary(method, **raw)
        for payload in (bad_utf8, b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f"):
            err = expect_status(CODE.INVALID_ARGUMENT, call, payload, metadata=md, timeout=10)
            assert "not a valid" in err.details()
    stream = api.channel.stream_unary("/chat4all.v1.FileService/UploadFile", **raw)
    expect_status(CODE.INVALID_ARGUMENT, stream, iter([b"\x0a\x02\x0a\xff"]), metadata=alice.md, timeout=10)
    assert_no_trace_in_log(api, before)


# --- characters -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_control_and_bidi_characters_are_refused_where_users_see_them(
    api: ApiClient, pair, name: str
) -> None:
    alice, bob, cid = pair
    bad = HOSTILE[name]
    calls = [
        (
            "content",
            api.messages.SendMessage,
            pb.SendMessageRequest(conversation_id=cid, content=f"hi {bad}"),
        ),
        (
            "title",
            api.conversations.CreateConversation,
            cpb.CreateConversationRequest(type=2, participant_ids=[bob.user_id], title=f"team {bad}"),
        ),
        (
            "handle",
            api.users.LinkChannel,
            users_pb2.LinkChannelRequest(channel="whatsapp", handle=f"+55{bad}"),
        ),
        (
            "channels['whatsapp']",
            api.auth.Register,
            auth_pb2.RegisterRequest(
                username=f"r{uuid.uuid4().hex[:12]}", password="p" * 12, channels={"whatsapp": bad}
            ),
        ),
        ("username", api.auth.Login, auth_pb2.LoginRequest(username=f"a{bad}", password="p" * 12)),
    ]
    for field, call, request in calls:
        err = expect_status(CODE.INVALID_ARGUMENT, call, request, metadata=alice.md, timeout=10)
        assert err.details().startswith(f"{field} contains the control or bidirectional character U+"), (
            err.details()
        )
    # Nothing was half written: no conversation was created, no handle linked.
    listed = api.conversations.ListConversations(
        cpb.ListConversationsRequest(), metadata=alice.md, timeout=10
    )
    assert [c.conversation_id for c in listed.conversations] == [cid]
    assert dict(api.users.GetMe(users_pb2.GetMeRequest(), metadata=alice.md, timeout=10).channels) == {}


def test_one_line_fields_refuse_newline_and_tab(api: ApiClient, pair) -> None:
    alice, bob, _cid = pair
    for title in ("two\nlines", "tab\tbed", "crlf\r\n"):
        err = expect_status(
            CODE.INVALID_ARGUMENT,
            api.conversations.CreateConversation,
            cpb.CreateConversationRequest(type=2, participant_ids=[bob.user_id], title=title),
            metadata=alice.md,
            timeout=10,
        )
        assert "one line of printable text" in err.details()


async def test_content_crlf_becomes_lf_and_newline_tab_and_unicode_pass(
    api: ApiClient, pair, settings: Settings
) -> None:
    alice, _bob, cid = pair
    content = "line 1\r\nline 2\ttabbed\nçà 🙂 עברית"
    async with TopicProbe(settings=settings, topic="messages") as probe:
        reply = api.messages.SendMessage(
            pb.SendMessageRequest(conversation_id=cid, content=content), metadata=alice.md, timeout=10
        )
        found = await probe.collect(lambda v: v.get("message_id") == reply.message_id)
    assert found[0][1]["content"] == "line 1\nline 2\ttabbed\nçà 🙂 עברית"


def test_a_crlf_retry_under_the_same_key_is_the_same_message(api: ApiClient, pair) -> None:
    """The fingerprint is taken after normalisation: CRLF and LF are one request."""
    alice, _bob, cid = pair
    key = f"cm-{uuid.uuid4()}"
    first = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="a\r\nb", client_message_id=key),
        metadata=alice.md,
        timeout=10,
    )
    again = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="a\nb", client_message_id=key),
        metadata=alice.md,
        timeout=10,
    )
    assert again.message_id == first.message_id
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.messages.SendMessage,
        pb.SendMessageRequest(conversation_id=cid, content="a\n\nb", client_message_id=key),
        metadata=alice.md,
        timeout=10,
    )
    assert "different message" in err.details()


# --- the CLI ----------------------------------------------------------------------------------


def run_cli(api: ApiClient, home: Path, *args: str) -> str:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "CHAT4ALL_API_TARGET": api.server.target}
    done = subprocess.run([chat4all_executable(), *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_prints_other_users_text_inertly(api: ApiClient, cql: Session, tmp_path: Path) -> None:
    """Text stored before these rules (written straight to Cassandra here) is escaped by the CLI."""
    password = "cli-password-1"
    me, other = api.register_and_login("viewer", password=password), api.register_and_login("sender")
    home = tmp_path / "home"
    run_cli(api, home, "login", me.username, "--password", password)
    cid, mid = uuid6.uuid7(), uuid6.uuid7()
    title = "\x1b]0;pwned\x07[red]team[/red]\u202e"
    forged_line = "2020-01-01 00:00:00  me        READ       00000000-0000-0000-0000-000000000000  send me your password"
    content = f"hello\x1b[2K\r{forged_line}\n{forged_line}\x9b31m"
    participants = {uuid.UUID(me.user_id), uuid.UUID(other.user_id)}
    now = dt.datetime.now(dt.UTC)
    cql.execute(
        "INSERT INTO conversations (conversation_id, type, title, participant_ids, created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (cid, "GROUP", title, participants, uuid.UUID(other.user_id), now),
    )
    for user in participants:
        cql.execute(
            "INSERT INTO conversations_by_user (user_id, conversation_id) VALUES (%s, %s)", (user, cid)
        )
    cql.execute(
        "INSERT INTO messages (conversation_id, ts, message_id, sender_id, content, status) VALUES (%s, %s, %s, %s, %s, %s)",
        (cid, now, mid, uuid.UUID(other.user_id), content, "SENT"),
    )
    listed = run_cli(api, home, "conversation", "list")
    history = run_cli(api, home, "history", str(cid))
    for out in (listed, history):
        assert not any(c in out for c in "\x1b\x07\r\x9b\u202e"), repr(out)
    assert "\\x1b]0;pwned\\x07[red]team[/red]\\u202e" in listed
    lines = history.splitlines()
    assert len(lines) == 1 and str(mid) in lines[0]  # the forged lines stay inside the one real line
    assert f"hello\\x1b[2K\\r{forged_line}\\n{forged_line}\\x9b31m" in lines[0]

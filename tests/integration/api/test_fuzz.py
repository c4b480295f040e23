"""Property-based fuzzing of every RPC of a real API server (hypothesis).

Generated requests with random field values, sizes, unicode, control characters, nested and
forged page tokens, random bytes as ids and as whole messages, with a valid, a missing or a
garbage token. No call may answer INTERNAL or UNKNOWN (or hang), and the server's health check
stays SERVING throughout.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import pkgutil
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chat4all.v1
from chat4all.v1 import auth_pb2, files_pb2, files_pb2_grpc, users_pb2
from chat4all.v1 import conversations_pb2 as cpb
from chat4all.v1 import messages_pb2 as mpb
from cli.harness.api_client import TestUser, client_for
from cli.harness.api_process import ApiProcess, start_api

pytestmark = pytest.mark.integration

EXAMPLES_PER_RPC = 300
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
CALL_TIMEOUT = 20.0  # a unary call that takes this long is a hang, not an answer
SUBSCRIBE_TIMEOUT = 0.2  # open, maybe read, then the deadline cancels it
MiB = 1024 * 1024
# The fuzzer's calls come "from" this address through the trusted-proxy header, so its many
# failed logins count against it and not against 127.0.0.1, which the other tests log in from.
FUZZ_ADDRESS = "198.51.100.77"
ASCII = string.ascii_letters + string.digits + string.punctuation + " "

HOSTILE = [
    "",
    " ",
    "\x1b[2J",
    "\x07",
    "\x00",
    "\r",
    "\r\n",
    "\n",
    "\t",
    "\x7f",
    "\x9b",
    "\u202e",
    "\u2066",
    "\u2069",
    "\ufeff",
    "\U0010ffff",
    "🙂" * 50,
    "'; DROP TABLE users; --",
    "%s%n",
    "../../etc/passwd",
    "null",
    "-1",
    "0" * 36,
    "{" + str(uuid.UUID(int=1)) + "}",
    "urn:uuid:" + str(uuid.UUID(int=2)),
    "00000000-0000-0000-0000-00000000000g",
]


def all_methods() -> list[MethodDescriptor]:
    methods = []
    for info in pkgutil.iter_modules(chat4all.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"chat4all.v1.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                methods += list(service.methods)
    return methods


METHODS = {f"{m.containing_service.name}/{m.name}": m for m in all_methods()}


@dataclass(kw_only=True)
class Known:
    """Real ids and tokens of the fuzzed server, so generated requests also reach deep code paths."""

    users: list[TestUser]
    ids: list[str] = field(default_factory=list)
    page_tokens: list[str] = field(default_factory=list)
    upload_ids: list[str] = field(default_factory=list)
    revocable: list[TestUser] = field(default_factory=list)  # tokens RevokeToken may revoke
    conversation_id: str = ""
    message_id: str = ""
    file_id: str = ""


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["k", "ts", "id", "after", "x"]), inner, max_size=4)
    ),
    max_leaves=20,
)


def cursor_like(known: Known) -> st.SearchStrategy[str]:
    """Page tokens: forged JSON (typed wrong, huge numbers, deep nesting), genuine ones, altered ones."""
    forged_fields = st.fixed_dictionaries(
        {"k": st.sampled_from(["messages", "conversations", "other"])},
        optional={"ts": json_values, "id": json_values, "after": json_values},
    )
    deep = st.integers(1, 30_000).map(lambda n: "[" * n + "]" * n)
    genuine = st.sampled_from(known.page_tokens)
    return st.one_of(
        forged_fields.map(lambda d: b64(json.dumps(d).encode())),
        st.tuples(forged_fields, st.binary(min_size=0, max_size=40)).map(
            lambda t: f"{b64(json.dumps(t[0]).encode())}.{b64(t[1])}"
        ),
        deep.map(lambda s: b64(s.encode())),
        deep.map(lambda s: f"{b64(s.encode())}.{b64(b'x' * 32)}"),
        genuine,
        st.tuples(genuine, st.integers(0, 300), st.sampled_from("AB_-.=x")).map(
            lambda t: t[0][: t[1] % max(len(t[0]), 1)] + t[2] + t[0][t[1] % max(len(t[0]), 1) + 1 :]
        ),
        st.binary(max_size=100).map(b64),
    )


def strings(known: Known) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=60),
        st.sampled_from(known.ids),
        st.uuids().map(str),
        st.sampled_from(HOSTILE),
        st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=6).map("".join),
        st.integers(0, 200 * 1024).map(lambda n: "x" * n),
        st.tuples(st.sampled_from(["a", "é", "🙂", "\x1b"]), st.integers(0, 70_000)).map(
            lambda t: t[0] * t[1]
        ),
        st.binary(max_size=64).map(lambda b: b.decode("latin-1")),  # random bytes as an id
        st.sampled_from(["whatsapp", "instagram", "native", "sms", "WHATSAPP"]),
        st.sampled_from(known.upload_ids),
        cursor_like(known),
    )


def scalar(fd: FieldDescriptor, known: Known) -> st.SearchStrategy[Any]:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        return strings(known)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64 * 1024), st.sampled_from([b"", b"\0", b"x" * (4 * MiB + 1)]))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        return st.one_of(
            st.sampled_from([v.number for v in fd.enum_type.values]), st.integers(-(2**31), 2**31 - 1)
        )
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.integers(-5, 600), st.integers(-(2**31), 2**31 - 1))
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.integers(-5, 10 * MiB), st.integers(-(2**63), 2**63 - 1))
    raise AssertionError(f"no strategy for field {fd.full_name} of type {t}")


def messages(descriptor: Any, known: Known, depth: int = 0, template: Any = None) -> st.SearchStrategy[Any]:
    """Instances of the message type ``descriptor`` with a random subset of its fields set.

    From ``template`` (a valid request), about a third of its fields replaced, the rest kept.
    """
    cls = GetMessageClass(descriptor)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        msg = cls()
        if template is not None:
            msg.CopyFrom(template)
        oneofs_done: set[str] = set()
        for fd in descriptor.fields:
            if template is not None:
                if draw(st.integers(0, 2)):
                    continue
                msg.ClearField(fd.name)
            elif fd.containing_oneof is not None:
                if fd.containing_oneof.name in oneofs_done or not draw(st.booleans()):
                    continue
                oneofs_done.add(fd.containing_oneof.name)
            elif not draw(st.integers(0, 3)):  # leave a field unset a quarter of the time
                continue
            if fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
                key_fd, value_fd = (
                    fd.message_type.fields_by_name["key"],
                    fd.message_type.fields_by_name["value"],
                )
                entries = draw(st.dictionaries(scalar(key_fd, known), scalar(value_fd, known), max_size=12))
                getattr(msg, fd.name).update(entries)
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                if depth < 3:
                    getattr(msg, fd.name).CopyFrom(draw(messages(fd.message_type, known, depth + 1)))
            elif fd.is_repeated:
                count = draw(st.one_of(st.integers(0, 12), st.sampled_from([0, 501, 2000])))
                if count > 12:  # many entries: one drawn value, repeated (keeps examples small)
                    getattr(msg, fd.name).extend([draw(scalar(fd, known))] * count)
                else:
                    getattr(msg, fd.name).extend(
                        draw(st.lists(scalar(fd, known), min_size=count, max_size=count))
                    )
            else:
                setattr(msg, fd.name, draw(scalar(fd, known)))
        return msg

    return build()


def metadata(known: Known, users: list[TestUser]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Mostly a valid token of ``users``; sometimes none, another scheme, a garbage or a forged-looking one."""
    valid = st.sampled_from(users).map(lambda u: (("authorization", f"Bearer {u.token}"),))
    garbage = st.one_of(
        st.text(alphabet=ASCII, max_size=200).map(lambda t: (("authorization", f"Bearer {t}"),)),
        st.text(alphabet=ASCII, max_size=80).map(lambda t: (("authorization", t),)),
        st.sampled_from(known.users).map(lambda u: (("authorization", f"Bearer {u.token[:-3]}abc"),)),
        st.just(()),
    )
    # One draw decides (hypothesis's one_of is far from uniform): a valid token 4 times in 5.
    chosen = st.tuples(st.integers(0, 4), valid, garbage).map(lambda t: t[1] if t[0] else t[2])
    return chosen.map(lambda md: (*md, ("x-forwarded-for", FUZZ_ADDRESS)))


@dataclass(kw_only=True)
class Fuzzed:
    server: ApiProcess
    channel: grpc.Channel
    known: Known
    health: health_pb2_grpc.HealthStub
    calls: dict[str, dict[str, int]] = field(default_factory=dict)


def _setup_known(client: Any) -> Known:
    """Users, conversations, messages, a finished upload and a page token of the fuzzed server."""
    alice, bob, carol = (client.register_and_login(p) for p in ("fza", "fzb", "fzc"))
    known = Known(users=[alice, bob, carol])
    cid = client.private_conversation(alice, bob)
    group = client.conversations.CreateConversation(
        cpb.CreateConversationRequest(
            type=cpb.CONVERSATION_TYPE_GROUP, participant_ids=[bob.user_id, carol.user_id], title="fuzz"
        ),
        metadata=alice.md,
        timeout=15,
    ).conversation_id
    third = client.private_conversation(alice, carol)
    known.ids += [alice.user_id, bob.user_id, carol.user_id, cid, group, third]
    known.ids += [u.username for u in known.users] + [u.password for u in known.users]
    for i in range(3):
        sent = client.messages.SendMessage(
            mpb.SendMessageRequest(conversation_id=cid, content=f"m{i}"), metadata=alice.md, timeout=15
        )
        known.ids.append(sent.message_id)
    known.conversation_id, known.message_id = cid, sent.message_id
    page = client.conversations.ListConversations(
        cpb.ListConversationsRequest(page_size=1), metadata=alice.md, timeout=15
    )
    known.page_tokens.append(page.next_page_token)
    data = b"fuzz attachment"
    upload_id = f"fuzz-{uuid.uuid4()}"
    info = files_pb2.FileInfo(
        conversation_id=cid,
        filename="f.txt",
        mime_type="text/plain",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=upload_id,
    )
    stored = files_pb2_grpc.FileServiceStub(client.channel).UploadFile(
        iter([files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data)]),
        metadata=alice.md,
        timeout=30,
    )
    known.ids.append(stored.file_id)
    known.file_id = stored.file_id
    known.upload_ids.append(upload_id)
    # RevokeToken revokes what it is given: it gets tokens of its own, so the others stay valid.
    revoker = client.register_and_login("fzr")
    tokens = [revoker.token] + [
        client.auth.Login(
            auth_pb2.LoginRequest(username=revoker.username, password=revoker.password), timeout=15
        ).access_token
        for _ in range(4)
    ]
    known.revocable = [
        TestUser(user_id=revoker.user_id, username=revoker.username, password=revoker.password, token=t)
        for t in tokens
    ]
    return known


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """An API process of its own (its log is checked), trusting x-forwarded-for for the client address."""
    server = start_api(
        {"CHAT4ALL_TRUSTED_PROXY_HEADER": "x-forwarded-for"}, log_dir=Path(tmp_path_factory.mktemp("fuzz"))
    )
    client = client_for(server)
    try:
        known = _setup_known(client)
        yield Fuzzed(
            server=server,
            channel=client.channel,
            known=known,
            health=health_pb2_grpc.HealthStub(client.channel),
        )
    finally:
        client.channel.close()
        server.stop()


def _raw(channel: grpc.Channel, method: MethodDescriptor) -> Any:
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.client_streaming:
        return channel.stream_unary(path)
    if method.server_streaming:
        return channel.unary_stream(path)
    return channel.unary_unary(path)


def _typed(channel: grpc.Channel, method: MethodDescriptor) -> Any:
    path = f"/{method.containing_service.full_name}/{method.name}"
    req, resp = GetMessageClass(method.input_type), GetMessageClass(method.output_type)
    ser = {"request_serializer": req.SerializeToString, "response_deserializer": resp.FromString}
    if method.client_streaming:
        return channel.stream_unary(path, **ser)
    if method.server_streaming:
        return channel.unary_stream(path, **ser)
    return channel.unary_unary(path, **ser)


def _call(fz: Fuzzed, method: MethodDescriptor, payload: Any, md: tuple, *, raw: bool) -> grpc.StatusCode:
    """Make one call; its status code (OK for a success)."""
    stub = (_raw if raw else _typed)(fz.channel, method)
    try:
        if method.server_streaming:
            responses = stub(payload, metadata=md, timeout=SUBSCRIBE_TIMEOUT)
            try:
                next(iter(responses), None)
            finally:
                responses.cancel()  # open and cancel quickly
            return grpc.StatusCode.OK
        stub(iter(payload) if method.client_streaming else payload, metadata=md, timeout=CALL_TIMEOUT)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
        if method.server_streaming and code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            return code  # the stream ended because we ended it
        assert code not in FORBIDDEN, f"{method.full_name} answered {code.name}: {exc.details()}"
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, (
            f"{method.full_name} did not answer in {CALL_TIMEOUT} s"
        )
        return code


def templates(known: Known) -> dict[str, list[Any]]:
    """A valid request per RPC (the first message of a stream), for mutations near the valid path."""
    alice, bob = known.users[0], known.users[1]
    cid, mid, file_id = known.conversation_id, known.message_id, known.file_id
    data = b"fuzz"
    return {
        "Register": [
            auth_pb2.RegisterRequest(
                username=f"fz{uuid.uuid4().hex[:12]}", password="p" * 12, channels={"whatsapp": "+5511999"}
            )
        ],
        "Login": [auth_pb2.LoginRequest(username=alice.username, password=alice.password)],
        "LinkChannel": [users_pb2.LinkChannelRequest(channel="instagram", handle="@fuzz")],
        "UnlinkChannel": [users_pb2.UnlinkChannelRequest(channel="instagram")],
        "CreateConversation": [
            cpb.CreateConversationRequest(
                type=cpb.CONVERSATION_TYPE_GROUP, participant_ids=[bob.user_id], title="t"
            )
        ],
        "GetConversation": [cpb.GetConversationRequest(conversation_id=cid)],
        "ListConversations": [cpb.ListConversationsRequest(page_size=1, page_token=known.page_tokens[0])],
        "SendMessage": [
            mpb.SendMessageRequest(
                conversation_id=cid, content="hi", client_message_id=str(uuid.uuid4()), channels=["native"]
            )
        ],
        "GetMessages": [mpb.GetMessagesRequest(conversation_id=cid, page_size=2)],
        "MarkRead": [mpb.MarkReadRequest(conversation_id=cid, message_ids=[mid])],
        "UploadFile": [
            files_pb2.UploadFileRequest(
                info=files_pb2.FileInfo(
                    conversation_id=cid,
                    filename="a.bin",
                    mime_type="application/octet-stream",
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    upload_id=f"fz-{uuid.uuid4()}",
                )
            )
        ],
        "GetUploadStatus": [files_pb2.GetUploadStatusRequest(upload_id=known.upload_ids[0])],
        "GetDownloadUrl": [files_pb2.GetDownloadUrlRequest(file_id=file_id)],
    }


def request_payloads(method: MethodDescriptor, known: Known) -> st.SearchStrategy[tuple[Any, bool]]:
    """(payload, raw): a generated message (a stream of them for client streaming), or random bytes."""
    typed = messages(method.input_type, known)
    near = [messages(method.input_type, known, template=t) for t in templates(known).get(method.name, [])]
    if near:
        typed = st.one_of(typed, *near)
    raw_bytes = st.binary(max_size=2048)
    if method.client_streaming:
        chunk = st.binary(max_size=64).map(lambda b: files_pb2.UploadFileRequest(chunk=b))
        return st.one_of(
            st.lists(typed, min_size=0, max_size=4).map(lambda ms: (ms, False)),
            st.tuples(typed, st.lists(chunk, max_size=3)).map(lambda t: ([t[0], *t[1]], False)),
            st.lists(raw_bytes, min_size=1, max_size=3).map(lambda bs: (bs, True)),
        )
    return st.one_of(
        typed.map(lambda m: (m, False)), typed.map(lambda m: (m, False)), raw_bytes.map(lambda b: (b, True))
    )


def assert_serving(fz: Fuzzed) -> None:
    assert fz.server.proc.poll() is None, f"the API exited:\n{fz.server.log()[-4000:]}"
    status = fz.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING, f"health is {status}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_generated_request_answers_internal_or_unknown(fuzzed: Fuzzed, name: str) -> None:
    method = METHODS[name]
    counts: dict[str, int] = {}
    started = time.monotonic()
    users = fuzzed.known.revocable if method.name == "RevokeToken" else fuzzed.known.users

    @settings(
        max_examples=EXAMPLES_PER_RPC,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
        ],
    )
    @given(request=request_payloads(method, fuzzed.known), md=metadata(fuzzed.known, users))
    def one_call(request: tuple[Any, bool], md: tuple) -> None:
        payload, raw = request
        code = _call(fuzzed, method, payload, md, raw=raw)
        counts[code.name] = counts.get(code.name, 0) + 1
        assert_serving(fuzzed)

    one_call()
    assert sum(counts.values()) >= EXAMPLES_PER_RPC
    print(f"{name}: {sum(counts.values())} calls in {time.monotonic() - started:.1f} s: {counts}")
    tail = fuzzed.server.log()
    assert "Traceback" not in tail, tail[tail.index("Traceback") - 500 :][:4000]

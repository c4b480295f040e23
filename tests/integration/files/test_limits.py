"""Attacks on the upload limits of a real API: idle streams, too many streams or sessions of one user, another user's upload_id."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from chat4all.v1 import files_pb2, files_pb2_grpc
from tests.integration.files.conftest import make_room
from tests.integration.files.helpers import CutStream, MiB, info_for, status_code

pytestmark = pytest.mark.integration


def trailer(exc: grpc.RpcError, key: str) -> str | None:
    return dict(exc.trailing_metadata() or ()).get(key)


def whole(info: files_pb2.FileInfo, data: bytes) -> list[files_pb2.UploadFileRequest]:
    return [files_pb2.UploadFileRequest(info=info), files_pb2.UploadFileRequest(chunk=data)]


def hold_streams(stub, md, room, count: int) -> list[tuple[CutStream, grpc.Future]]:
    """``count`` upload streams that send their info and then nothing, each under its own upload_id."""
    held = []
    for _ in range(count):
        data = b"i" * MiB
        stream = CutStream(info_for(room, data), data, cut_at=0, hold=True)
        held.append((stream, stub.UploadFile.future(iter(stream), metadata=md)))
    deadline = time.monotonic() + 30
    # Each is either refused (the client then stops reading its messages) or open and holding.
    while not all(stream.reached.is_set() or future.done() for stream, future in held):
        assert time.monotonic() < deadline, "streams neither refused nor open"
        time.sleep(0.05)
    return held


def refused(future: grpc.Future, timeout: float = 10) -> grpc.RpcError | None:
    """The call's error if it ended within ``timeout``, None while it is still open."""
    try:
        future.result(timeout=timeout)
    except grpc.FutureTimeoutError:
        return None
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("an idle stream completed an upload")


def release(held: list[tuple[CutStream, grpc.Future]]) -> None:
    for stream, future in held:
        stream.release.set()
        future.cancel()


@pytest.fixture
def fresh_api(api_factory):  # an API whose stream slots no other test uses
    return api_factory()


def test_48_idle_streams_of_one_user_do_not_lock_out_another(fresh_api) -> None:
    stub = fresh_api.stub(files_pb2_grpc.FileServiceStub)
    mallory_room, alice_room = make_room(fresh_api), make_room(fresh_api)
    held = hold_streams(stub, mallory_room.alice.md, mallory_room, 48)
    try:
        outcomes = [refused(f, timeout=5 if i == 0 else 0.2) for i, (_, f) in enumerate(held)]
        errors = [e for e in outcomes if e is not None]
        # Four stay open (the per-user cap); the other 44 are told to come back later.
        assert len(errors) == 44 and {e.code() for e in errors} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert all(float(trailer(e, "retry-after")) > 0 for e in errors)
        assert "4 upload streams open" in errors[0].details()

        # Another user uploads, four streams at once, while mallory's four are still open.
        data = [bytes([i]) * (2 * MiB) for i in range(4)]
        infos = [info_for(alice_room, d) for d in data]
        futures = [
            stub.UploadFile.future(iter(whole(i, d)), metadata=alice_room.alice.md, timeout=60)
            for i, d in zip(infos, data, strict=True)
        ]
        done = [f.result() for f in futures]
        assert [d.sha256 for d in done] == [i.sha256 for i in infos]
        assert sum(refused(f, timeout=0.1) is None for _, f in held) == 4  # mallory's are still open
    finally:
        release(held)


def test_the_fifth_concurrent_stream_of_a_user_is_resource_exhausted(fresh_api) -> None:
    stub = fresh_api.stub(files_pb2_grpc.FileServiceStub)
    room = make_room(fresh_api)
    held = hold_streams(stub, room.alice.md, room, 4)
    try:
        time.sleep(0.5)
        assert all(refused(f, timeout=0.1) is None for _, f in held)
        fifth = info_for(room, b"fifth")
        with pytest.raises(grpc.RpcError) as exc:
            stub.UploadFile(iter(whole(fifth, b"fifth")), metadata=room.alice.md, timeout=10)
        assert status_code(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert float(trailer(exc.value, "retry-after")) > 0
        # Bob, in the same conversation, is not affected.
        assert (
            stub.UploadFile(
                iter(whole(info_for(room, b"bob"), b"bob")), metadata=room.bob.md, timeout=10
            ).size
            == 3
        )

        stream, future = held.pop()  # one stream ends: its slot is free again
        stream.release.set()
        assert refused(future, timeout=10) is not None
        assert stub.UploadFile(iter(whole(fifth, b"fifth")), metadata=room.alice.md, timeout=10).size == 5
    finally:
        release(held)


def test_the_seventeenth_open_session_is_resource_exhausted(fresh_api) -> None:
    stub = fresh_api.stub(files_pb2_grpc.FileServiceStub)
    room = make_room(fresh_api)
    data = b"o" * 1000
    started = []
    for _ in range(16):  # sixteen unfinished uploads: each stream ends after 10 of 1000 bytes
        info = info_for(room, data)
        with pytest.raises(grpc.RpcError) as exc:
            stub.UploadFile(iter(whole(info, data[:10])), metadata=room.alice.md, timeout=10)
        assert status_code(exc) == grpc.StatusCode.ABORTED
        started.append(info)

    seventeenth = info_for(room, data)
    with pytest.raises(grpc.RpcError) as exc:
        stub.UploadFile(iter(whole(seventeenth, data)), metadata=room.alice.md, timeout=10)
    assert status_code(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "16 unfinished uploads" in exc.value.details()
    # Retry after the oldest one expires (a day from now, nothing being done).
    assert 23 * 3600 < float(trailer(exc.value, "retry-after")) <= 24 * 3600
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=seventeenth.upload_id), metadata=room.alice.md
        )
    assert status_code(missing) == grpc.StatusCode.NOT_FOUND  # nothing was created

    # Resuming one of the sixteen is still allowed; once it is finished, a new one may start.
    first = started[0]
    first.offset = 10
    resumed = [files_pb2.UploadFileRequest(info=first), files_pb2.UploadFileRequest(chunk=data[10:])]
    assert stub.UploadFile(iter(resumed), metadata=room.alice.md, timeout=10).size == 1000
    assert stub.UploadFile(iter(whole(seventeenth, data)), metadata=room.alice.md, timeout=10).size == 1000
    # Another user is not limited by alice's sessions.
    assert (
        stub.UploadFile(iter(whole(info_for(room, data), data)), metadata=room.bob.md, timeout=10).size
        == 1000
    )


def test_an_idle_stream_is_closed_and_resumes(api_factory) -> None:
    api = api_factory({"CHAT4ALL_UPLOAD_IDLE_SECONDS": "2"})
    stub = api.stub(files_pb2_grpc.FileServiceStub)
    room = make_room(api)
    data = bytes(range(256)) * (10 * MiB // 256)
    info = info_for(room, data)
    stream = CutStream(info, data, cut_at=3 * MiB, hold=True)
    t0 = time.monotonic()
    future = stub.UploadFile.future(iter(stream), metadata=room.alice.md)
    try:
        exc = refused(future, timeout=20)
        assert exc is not None, "the idle stream was not closed"
        assert exc.code() == grpc.StatusCode.ABORTED
        assert "no data for 2 s" in exc.details() and "resume" in exc.details()
        assert trailer(exc, "bytes-received") == str(3 * MiB)
        assert 2 <= time.monotonic() - t0 < 15
    finally:
        stream.release.set()
    status = stub.GetUploadStatus(
        files_pb2.GetUploadStatusRequest(upload_id=info.upload_id), metadata=room.alice.md
    )
    assert status.bytes_received == 3 * MiB

    # Idle streams free their slots: four more idle ones are closed, then a fifth stream gets in.
    held = hold_streams(stub, room.alice.md, room, 4)
    try:
        assert all(
            (e := refused(f, timeout=20)) is not None and e.code() == grpc.StatusCode.ABORTED for _, f in held
        )
    finally:
        release(held)

    info.offset = 3 * MiB
    rest = [files_pb2.UploadFileRequest(info=info)] + [
        files_pb2.UploadFileRequest(chunk=data[i : i + MiB]) for i in range(3 * MiB, len(data), MiB)
    ]
    done = stub.UploadFile(iter(rest), metadata=room.alice.md, timeout=60)
    assert done.sha256 == hashlib.sha256(data).hexdigest() and done.size == len(data)


def test_a_stream_that_never_sends_its_info_is_closed(api_factory) -> None:
    api = api_factory({"CHAT4ALL_UPLOAD_IDLE_SECONDS": "1"})
    stub = api.stub(files_pb2_grpc.FileServiceStub)
    room = make_room(api)
    gate = threading.Event()

    def nothing() -> Iterator[files_pb2.UploadFileRequest]:
        gate.wait(30)
        return
        yield  # a generator that sends no message

    try:
        with pytest.raises(grpc.RpcError) as exc:
            stub.UploadFile(nothing(), metadata=room.alice.md, timeout=15)
        assert (
            status_code(exc) == grpc.StatusCode.ABORTED
            and "no info message within 1 s" in exc.value.details()
        )
    finally:
        gate.set()


def test_upload_ids_are_per_uploader_and_a_foreign_one_is_not_found(api, files, room) -> None:
    """Bob claims alice's upload_id first: alice's upload goes on undisturbed.

    To anyone but its uploader an upload_id answers NOT_FOUND, as one nobody used does.
    """
    bobs, alices = b"b" * (3 * MiB), b"a" * (2 * MiB)
    upload_id = f"shared-{time.time_ns()}"
    bob_info = info_for(room, bobs, upload_id=upload_id)
    with pytest.raises(grpc.RpcError) as exc:
        files.UploadFile(iter(whole(bob_info, bobs[:MiB])), metadata=room.bob.md, timeout=10)
    assert status_code(exc) == grpc.StatusCode.ABORTED  # bob's session holds 1 MiB

    alice_info = info_for(room, alices, upload_id=upload_id)
    done = files.UploadFile(iter(whole(alice_info, alices)), metadata=room.alice.md, timeout=30)
    assert done.sha256 == alice_info.sha256

    def status(user, uid: str = upload_id):
        return files.GetUploadStatus(
            files_pb2.GetUploadStatusRequest(upload_id=uid), metadata=user.md, timeout=10
        )

    assert status(room.alice).bytes_received == 2 * MiB and status(room.alice).size == 2 * MiB
    assert status(room.bob).bytes_received == MiB and status(room.bob).size == 3 * MiB
    with pytest.raises(grpc.RpcError) as foreign:
        status(room.eve)
    with pytest.raises(grpc.RpcError) as missing:
        status(room.eve, "never-used-by-anyone")
    assert status_code(foreign) == status_code(missing) == grpc.StatusCode.NOT_FOUND
    assert foreign.value.details().replace(upload_id, "X") == missing.value.details().replace(
        "never-used-by-anyone", "X"
    )

    # Bob finishes his own upload under the same id: another file.
    bob_info.offset = MiB
    rest = [files_pb2.UploadFileRequest(info=bob_info), files_pb2.UploadFileRequest(chunk=bobs[MiB:])]
    bob_done = files.UploadFile(iter(rest), metadata=room.bob.md, timeout=30)
    assert bob_done.file_id != done.file_id and bob_done.sha256 == bob_info.sha256
    # Alice repeating her finished upload still gets her file back.
    again = files.UploadFile(iter(whole(alice_info, alices)), metadata=room.alice.md, timeout=30)
    assert again.file_id == done.file_id

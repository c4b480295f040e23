"""The uploader without servers: parts in flight against in-memory S3 and session stores, and its part size.

Several parts upload at once, but the session row records them in order, an unrecorded part's
bytes are never lost, and no more than ``parts_in_flight`` parts are buffered for S3 at a time.
A part size below S3's minimum is refused.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from api.files.errors import SessionConflict, UploadIncomplete
from api.files.sessions import RECEIVING, UploadSession
from api.files.uploader import Uploader
from api.files.validation import UploadRequest

MiB = 1024 * 1024
PART = 5 * MiB


class FakeStore:
    """S3 in memory; ``hold[n]`` delays part n until set, ``fail`` makes those part numbers raise."""

    bucket = "fake"

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.hold: dict[int, asyncio.Event] = {}
        self.fail: set[int] = set()
        self.concurrent = self.max_concurrent = 0
        self.reread: list[str] = []

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        return "mpu-1"

    async def upload_part(self, key: str, *, s3_upload_id: str, part_number: int, data) -> str:
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if part_number in self.hold:
                await self.hold[part_number].wait()
            await asyncio.sleep(0)
            if part_number in self.fail:
                self.fail.discard(part_number)
                raise ConnectionError(f"part {part_number} lost")
            self.parts[part_number] = bytes(data)
            return f"etag-{part_number}-{hashlib.md5(data).hexdigest()}"
        finally:
            self.concurrent -= 1

    async def complete_multipart(self, key: str, *, s3_upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.objects[key] = b"".join(self.parts[n] for n, _ in parts)

    async def abort_multipart(self, key: str, *, s3_upload_id: str) -> None:
        self.parts.clear()

    async def put(self, key: str, data, *, content_type: str = "") -> None:
        self.objects[key] = bytes(data)

    async def read(self, key: str, *, length: int) -> bytes:
        return self.objects[key][:length]

    async def sha256_of(self, key: str) -> str:
        self.reread.append(key)
        return hashlib.sha256(self.objects[key]).hexdigest()

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for k in doomed:
            del self.objects[k]
        return len(doomed)


class FakeSessions:
    """The `upload_sessions` rows in memory, with the real store's compare-and-set on bytes_received."""

    def __init__(self) -> None:
        self.rows: dict[tuple, UploadSession] = {}
        self.committed: list[int] = []

    def _check(self, s: UploadSession) -> UploadSession:
        row = self.rows[s.key]
        if row.bytes_received != s.bytes_received or row.state != RECEIVING:
            raise SessionConflict(s.upload_id)
        return row

    async def get(self, uploader_id, upload_id: str) -> UploadSession | None:
        return copy.deepcopy(self.rows.get((uploader_id, upload_id)))

    async def open_sessions(self, uploader_id, *, now) -> list:
        return [s.expires_at for (u, _), s in self.rows.items() if u == uploader_id and s.state == RECEIVING]

    async def create(self, s: UploadSession) -> bool:
        if s.key in self.rows:
            return False
        self.rows[s.key] = copy.deepcopy(s)
        return True

    async def set_s3_upload(self, s: UploadSession, s3_upload_id: str) -> None:
        self._check(s).s3_upload_id = s3_upload_id
        s.s3_upload_id = s3_upload_id

    async def commit_part(self, s: UploadSession, part: tuple[int, str, int], *, expires_at) -> None:
        self._check(s)
        await asyncio.sleep(0)
        s.parts.append(part)
        s.tail_bytes, s.bytes_received = 0, s.parts_bytes
        self.rows[s.key] = copy.deepcopy(s)
        self.committed.append(part[0])

    async def commit_tail(self, s: UploadSession, tail_bytes: int, *, expires_at) -> None:
        self._check(s)
        s.tail_bytes, s.bytes_received = tail_bytes, s.parts_bytes + tail_bytes
        self.rows[s.key] = copy.deepcopy(s)

    async def mark_complete(self, s: UploadSession) -> None:
        self._check(s)
        s.state, s.bytes_received, s.parts, s.tail_bytes = "complete", s.size, [], 0
        self.rows[s.key] = copy.deepcopy(s)

    async def delete(self, s: UploadSession) -> None:
        self.rows.pop(s.key, None)


class FakeFiles:
    def __init__(self) -> None:
        self.records: list = []

    async def insert(self, record) -> None:
        self.records.append(record)


def make_uploader(store: FakeStore, sessions: FakeSessions, *, parts_in_flight: int = 2) -> Uploader:
    return Uploader(
        sessions=sessions,
        records=FakeFiles(),
        objects=store,
        max_file_bytes=2 * 1024**3,  # type: ignore[arg-type]
        part_bytes=PART,
        max_chunk_bytes=4 * MiB,
        session_ttl_seconds=3600,
        parts_in_flight=parts_in_flight,
    )


def request(data: bytes, upload_id: str, *, offset: int | None = None) -> UploadRequest:
    return UploadRequest(
        uploader_id=UPLOADER,
        conversation_id=CONVERSATION,
        filename="f.bin",
        mime_type="",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=upload_id,
        offset=offset,
    )


UPLOADER, CONVERSATION = uuid.uuid4(), uuid.uuid4()


async def stream(
    data: bytes, *, start: int = 0, end: int | None = None, chunk: int = MiB
) -> AsyncIterator[bytes]:
    end = len(data) if end is None else end
    for i in range(start, end, chunk):
        yield data[i : min(i + chunk, end)]


async def test_parts_finishing_out_of_order_are_recorded_in_order() -> None:
    store, sessions = FakeStore(), FakeSessions()
    store.hold[1] = asyncio.Event()  # part 1 is slow: part 2 is written before it
    data = os.urandom(3 * PART + 123)
    up = make_uploader(store, sessions)

    async def release() -> None:
        while 2 not in store.parts:
            await asyncio.sleep(0.001)
        store.hold[1].set()

    releaser = asyncio.create_task(release())
    stored = await up.upload(request(data, "u-order"), stream(data))
    await releaser
    assert sessions.committed == [1, 2, 3]
    assert store.objects[next(k for k in store.objects if not k.startswith("staging/"))] == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.max_concurrent == 2


async def test_in_flight_parts_are_bounded() -> None:
    store, sessions = FakeStore(), FakeSessions()
    data = os.urandom(8 * PART)
    await make_uploader(store, sessions, parts_in_flight=3).upload(request(data, "u-bound"), stream(data))
    assert store.max_concurrent == 3
    store2 = FakeStore()
    await make_uploader(store2, FakeSessions(), parts_in_flight=1).upload(
        request(data, "u-one"), stream(data)
    )
    assert store2.max_concurrent == 1


async def test_a_failed_part_keeps_its_bytes_and_those_of_later_parts() -> None:
    store, sessions = FakeStore(), FakeSessions()
    store.fail.add(1)  # part 1 fails after part 2 may have been written
    data = os.urandom(3 * PART + 777)
    up = make_uploader(store, sessions)
    cut = 2 * PART + 100
    with pytest.raises(UploadIncomplete) as err:
        await up.upload(request(data, "u-fail"), stream(data, end=cut))
    assert err.value.bytes_received == cut  # the parts' bytes were put back, not dropped
    row = sessions.rows[(UPLOADER, "u-fail")]
    # Part 2 was written but is not recorded after the failed part 1: every byte is in the staged tail.
    assert 2 in store.parts and row.parts == [] and row.bytes_received == row.tail_bytes == cut
    assert store.objects[row.tail_key] == data[:cut]

    # The resumed stream (same process: it continues the hash) completes with the right bytes.
    stored = await up.upload(
        request(data, "u-fail", offset=row.bytes_received), stream(data, start=row.bytes_received)
    )
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.objects[row.object_key] == data
    assert not [k for k in store.objects if k.startswith("staging/")]


async def test_a_failed_part_seen_while_receiving_stops_the_stream_and_keeps_every_byte() -> None:
    store, sessions = FakeStore(), FakeSessions()
    store.fail.add(1)
    data = os.urandom(5 * PART)
    with pytest.raises(ConnectionError):  # the servicer maps S3 outages to UNAVAILABLE
        await make_uploader(store, sessions).upload(request(data, "u-stop"), stream(data))
    row = sessions.rows[(UPLOADER, "u-stop")]
    assert row.parts == [] and row.bytes_received == row.tail_bytes >= 3 * PART
    assert store.objects[row.tail_key] == data[: row.bytes_received]


async def test_an_early_end_stages_the_tail_after_the_recorded_parts() -> None:
    store, sessions = FakeStore(), FakeSessions()
    data = os.urandom(4 * PART)
    up = make_uploader(store, sessions)
    cut = 2 * PART + 3 * MiB
    with pytest.raises(UploadIncomplete) as err:
        await up.upload(request(data, "u-early"), stream(data, end=cut))
    assert err.value.bytes_received == cut
    row = sessions.rows[(UPLOADER, "u-early")]
    assert [n for n, _, _ in row.parts] == [1, 2] and row.tail_bytes == 3 * MiB
    # A resume in a new process (no hash in memory) still completes; the caller re-reads to verify.
    fresh = make_uploader(store, sessions)
    stored = await fresh.upload(request(data, "u-early", offset=cut), stream(data, start=cut))
    assert stored.size == len(data) and store.objects[row.object_key] == data
    assert store.reread == [row.object_key]


async def test_part_n_always_holds_the_same_bytes_so_a_resume_rewrites_unrecorded_parts() -> None:
    store, sessions = FakeStore(), FakeSessions()
    data = os.urandom(4 * PART + 12345)
    up = make_uploader(store, sessions)
    odd = 3 * MiB + 17  # chunks straddle part boundaries
    store.fail.add(2)  # part 2 fails; part 3 is stored but never recorded
    with pytest.raises(ConnectionError):
        await up.upload(request(data, "u-bounds"), stream(data, chunk=odd))
    stale_3 = store.parts.get(3)
    row = sessions.rows[(UPLOADER, "u-bounds")]
    assert [(n, size) for n, _, size in row.parts] == [(1, PART)]
    await up.upload(
        request(data, "u-bounds", offset=row.bytes_received),
        stream(data, start=row.bytes_received, chunk=odd),
    )
    # Every part, the stale one included, was (re)written at its fixed offset.
    for n in range(1, 5):
        assert store.parts[n] == data[(n - 1) * PART : n * PART]
    assert stale_3 is None or stale_3 == store.parts[3]
    assert store.objects[row.object_key] == data


async def test_a_long_staged_tail_is_cut_into_parts_on_resume_and_a_failure_then_keeps_every_byte() -> None:
    store, sessions = FakeStore(), FakeSessions()
    data = os.urandom(6 * PART + 999)
    store.fail.add(1)  # with 3 parts in flight, the failure of part 1 is seen at the 4th cut
    with pytest.raises(ConnectionError):
        await make_uploader(store, sessions, parts_in_flight=3).upload(
            request(data, "u-long"), stream(data, end=5 * PART)
        )
    row = sessions.rows[(UPLOADER, "u-long")]
    first = row.bytes_received
    assert row.parts == [] and row.tail_bytes == first == 4 * PART

    # Another process resumes: it cuts parts 1-4 out of the tail as it loads it; part 1 is
    # recorded, part 2 fails, which shows while the tail is still loading.
    store.fail.add(2)
    up = make_uploader(store, sessions)
    with pytest.raises(ConnectionError):
        await up.upload(request(data, "u-long", offset=first), stream(data, start=first))
    row = sessions.rows[(UPLOADER, "u-long")]
    assert [n for n, _, _ in row.parts] == [1]
    assert row.bytes_received == first  # part 1 recorded, the rest staged again: nothing forgotten
    assert store.objects[row.tail_key][: row.tail_bytes] == data[PART:first]

    stored = await up.upload(request(data, "u-long", offset=first), stream(data, start=first))
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and store.objects[row.object_key] == data
    assert store.reread == [row.object_key]  # a resume in another process verifies by re-reading


def test_part_size_below_s3_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        Uploader(
            sessions=None,
            records=None,
            objects=None,
            max_file_bytes=1,
            part_bytes=4 * 1024**2,  # type: ignore[arg-type]
            max_chunk_bytes=1,
            session_ttl_seconds=1,
        )

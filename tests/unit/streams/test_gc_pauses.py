"""streams/gc_pauses.py: every collection timed (per thread, and in the histogram), the start-up heap frozen."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from streams.gc_pauses import PAUSES, GcPauses, freeze_heap, gc_pause_seconds
from streams.inspector.loop_hold import LoopHold


def make_cycles(count: int) -> None:
    for _ in range(count):
        a: list[object] = []
        a.append(a)


def collections_of(generation: int) -> float:
    for metric in gc_pause_seconds.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["generation"] == str(generation):
                return sample.value
    return 0.0


@pytest.fixture
def pauses() -> Iterator[GcPauses]:
    timed = GcPauses()
    timed.install()
    yield timed
    timed.uninstall()


def test_a_collection_counts_for_the_thread_that_ran_it_and_in_the_histogram(pauses: GcPauses) -> None:
    before, counted = pauses.thread_seconds(), collections_of(2)
    make_cycles(50_000)
    gc.collect()
    assert pauses.thread_seconds() > before
    assert collections_of(2) >= counted + 1
    other: list[float] = []
    thread = threading.Thread(target=lambda: other.append(pauses.thread_seconds()))
    thread.start()
    thread.join()
    assert other == [0.0]  # the collection ran on this thread, not that one


def test_install_twice_hooks_once_and_uninstall_unhooks(pauses: GcPauses) -> None:
    pauses.install()
    assert gc.callbacks.count(pauses._callback) == 1
    pauses.uninstall()
    assert pauses._callback not in gc.callbacks


def test_loop_hold_reports_the_collection_inside_its_longest_step() -> None:
    PAUSES.install()
    hold = LoopHold()

    def step() -> None:
        make_cycles(100_000)
        gc.collect()

    hold.measure(lambda: None)
    hold.measure(step)
    assert 0 < hold.gc <= hold.cpu
    assert f"loop-gc;dur={hold.gc * 1000:.2f};" in hold.server_timing()


def test_freeze_moves_the_surviving_heap_out_of_the_collections() -> None:
    try:
        frozen = freeze_heap()
        assert frozen == gc.get_freeze_count() > 10_000  # at least the modules imported so far
    finally:
        gc.unfreeze()

"""chat4all.clock: the one time helper (epoch milliseconds, aware UTC datetimes, Cassandra's naive UTC)."""

from __future__ import annotations

import datetime as dt
import time

from chat4all.clock import as_utc, now_ms, to_ms, utc_now

MS = 1_700_000_000_123  # 2023-11-14 22:13:20.123 UTC
AWARE = dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC)
NAIVE = AWARE.replace(tzinfo=None)  # what the Cassandra driver returns


def test_now_ms_is_int_epoch_milliseconds() -> None:
    before = int(time.time() * 1000)
    value = now_ms()
    after = int(time.time() * 1000)
    assert type(value) is int
    assert before <= value <= after


def test_utc_now_is_aware_utc_truncated_to_milliseconds() -> None:
    before = dt.datetime.now(dt.UTC)
    value = utc_now()
    assert value.tzinfo is dt.UTC
    assert value.microsecond % 1000 == 0
    assert before - dt.timedelta(milliseconds=1) < value <= dt.datetime.now(dt.UTC)


def test_as_utc_reads_a_naive_datetime_as_utc() -> None:
    value = as_utc(NAIVE)
    assert value == AWARE and value.tzinfo is dt.UTC


def test_as_utc_keeps_an_aware_datetime() -> None:
    assert as_utc(AWARE) is AWARE
    other_zone = AWARE.astimezone(dt.timezone(dt.timedelta(hours=-3)))
    assert as_utc(other_zone) is other_zone  # already aware: the same instant, untouched


def test_as_utc_turns_epoch_milliseconds_into_an_aware_datetime() -> None:
    value = as_utc(MS)
    assert value == AWARE and value.tzinfo is dt.UTC
    assert as_utc(0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_as_utc_of_none_is_none() -> None:
    assert as_utc(None) is None


def test_to_ms_of_naive_aware_and_int() -> None:
    assert to_ms(NAIVE) == MS
    assert to_ms(AWARE) == MS
    assert to_ms(AWARE.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))) == MS
    assert to_ms(MS) == MS
    assert type(to_ms(NAIVE)) is int


def test_to_ms_of_none_is_none() -> None:
    assert to_ms(None) is None


def test_to_ms_drops_sub_millisecond_precision() -> None:
    assert to_ms(AWARE.replace(microsecond=123999)) == MS


def test_round_trips() -> None:
    assert to_ms(as_utc(MS)) == MS
    assert as_utc(to_ms(NAIVE)) == AWARE
    now = now_ms()
    assert to_ms(as_utc(now)) == now

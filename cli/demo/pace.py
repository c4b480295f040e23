"""How long the demo waits and how much it sends: a lecture's pace by default, or ``--fast`` (tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cli.harness.worker_process import FAST_RECEIPTS


@dataclass(frozen=True, kw_only=True)
class Pace:
    """The demo's timings and volumes, and the settings of the workers it starts."""

    fast: bool
    pause: float  # seconds after an explanation, to read it
    rooms: int  # group conversations the traffic of steps 3-5 spreads over
    flow_messages: int  # step 3: messages sent across the kill
    flow_rate: float  # step 3: messages per second
    pending_messages: int  # step 4: messages whose READ is pending at the kill
    outage_messages: int  # step 5: messages sent into the outage
    outage_hold: float  # step 5: seconds the outage lasts once a breaker is open
    settle_timeout: float  # longest wait for messages to reach READ
    worker_timeout: float  # longest wait for a worker to be ready
    commit_wait: float  # step 4: longest wait for B's offset commit (faust commits every 2.8 s), well below the READ delay
    worker_env: dict[str, str] = field(default_factory=dict)  # every worker the demo starts
    pending_read_delay_ms: tuple[int, int] = (20000, 25000)  # step 4: READ delay of the worker killed


def pace_for(*, fast: bool) -> Pace:
    """The lecture pace, or the fast one (under two minutes once the stack is up)."""
    if fast:
        return Pace(
            fast=True,
            pause=0.0,
            rooms=6,
            flow_messages=120,
            flow_rate=20.0,
            pending_messages=30,
            outage_messages=30,
            outage_hold=1.0,
            settle_timeout=60.0,
            worker_timeout=60.0,
            commit_wait=8.0,
            worker_env={
                **FAST_RECEIPTS,
                # A killed worker's partitions move after this (6 s is the broker's minimum).
                "CHAT4ALL_BROKER_SESSION_TIMEOUT": "6",
                "CHAT4ALL_BROKER_HEARTBEAT_INTERVAL": "2",
                "CHAT4ALL_BREAKER_RESET_TIMEOUT": "2",
            },
            # Long enough to outlast the wait for B's commit and B's restart under load.
            pending_read_delay_ms=(14000, 15000),
        )
    return Pace(
        fast=False,
        pause=2.0,
        rooms=6,
        flow_messages=300,
        flow_rate=15.0,
        pending_messages=40,
        outage_messages=40,
        outage_hold=8.0,
        settle_timeout=180.0,
        worker_timeout=120.0,
        commit_wait=12.0,
        worker_env={},
        pending_read_delay_ms=(20000, 25000),
    )

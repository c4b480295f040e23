"""Consistency levels: the settings reach the driver's execution profiles, every statement runs in one, bad names stop start-up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, NoHostAvailable
from cassandra.query import SimpleStatement

from chat4all.cassandra import WRITE_PROFILE, aexecute, connect, profile_for
from chat4all.settings import REPO_ROOT, Settings
from cli.harness.api_process import chat4all_executable

pytestmark = pytest.mark.integration

CL = ConsistencyLevel


def _levels(session, profile) -> tuple[int, int]:
    p = session.get_execution_profile(profile)
    return p.consistency_level, p.serial_consistency_level


def test_defaults_are_local_quorum_and_local_serial(stack: Settings) -> None:
    session = connect(stack)
    try:
        assert _levels(session, EXEC_PROFILE_DEFAULT) == (CL.LOCAL_QUORUM, CL.LOCAL_SERIAL)
        assert _levels(session, WRITE_PROFILE) == (CL.LOCAL_QUORUM, CL.LOCAL_SERIAL)
    finally:
        session.cluster.shutdown()


def test_the_session_profiles_carry_the_configured_levels(stack: Settings) -> None:
    configured = stack.model_copy(
        update={
            "cassandra_read_consistency": "ONE",
            "cassandra_write_consistency": "QUORUM",
            "cassandra_serial_consistency": "SERIAL",
        }
    )
    session = connect(configured)
    try:
        assert _levels(session, EXEC_PROFILE_DEFAULT) == (CL.ONE, CL.SERIAL)
        assert _levels(session, WRITE_PROFILE) == (CL.QUORUM, CL.SERIAL)
    finally:
        session.cluster.shutdown()


def test_statements_run_in_the_profile_of_their_kind(stack: Settings) -> None:
    """At replication factor 1, a level of TWO cannot be met.

    Cassandra answers Unavailable for exactly the statements that run at it, which shows which level
    each statement really used.
    """
    reads_at_two = stack.model_copy(
        update={"cassandra_read_consistency": "TWO", "cassandra_write_consistency": "ONE"}
    )
    writes_at_two = stack.model_copy(
        update={"cassandra_read_consistency": "ONE", "cassandra_write_consistency": "TWO"}
    )
    user = uuid.uuid4()

    async def run(settings: Settings) -> dict[str, str]:
        session = await asyncio.to_thread(connect, settings)
        try:
            insert = session.prepare("INSERT INTO users (user_id, username) VALUES (?, ?)")
            select = session.prepare("SELECT username FROM users WHERE user_id = ?")
            claim = session.prepare(
                "INSERT INTO users_by_username (username, user_id) VALUES (?, ?) IF NOT EXISTS"
            )
            outcome: dict[str, str] = {}
            for name, stmt, params in (
                ("insert", insert, (user, "consistency-test")),
                ("select", select, (user,)),
                ("lwt", claim, (f"consistency-test-{user}", user)),
                ("simple select", SimpleStatement("SELECT user_id FROM users WHERE user_id = %s"), (user,)),
            ):
                try:
                    await aexecute(session, stmt, params)
                    outcome[name] = "ok"
                except Unavailable:
                    outcome[name] = "unavailable"
                except NoHostAvailable as exc:  # the driver wraps the replica's Unavailable
                    assert all(isinstance(e, Unavailable) for e in exc.errors.values()), exc
                    outcome[name] = "unavailable"
            return outcome
        finally:
            await asyncio.to_thread(session.cluster.shutdown)

    try:
        assert asyncio.run(run(writes_at_two)) == {
            "insert": "unavailable",
            "select": "ok",
            "lwt": "unavailable",
            "simple select": "ok",
        }
        assert asyncio.run(run(reads_at_two)) == {
            "insert": "ok",
            "select": "unavailable",
            "lwt": "ok",
            "simple select": "unavailable",
        }
    finally:
        session = connect(stack)
        session.execute("DELETE FROM users WHERE user_id = %s", (user,))
        session.execute("DELETE FROM users_by_username WHERE username = %s", (f"consistency-test-{user}",))
        session.cluster.shutdown()


def test_profile_for_tells_reads_from_everything_else() -> None:
    assert profile_for("  select * from users") == EXEC_PROFILE_DEFAULT
    assert profile_for("INSERT INTO users (user_id) VALUES (%s)") == WRITE_PROFILE
    assert profile_for(SimpleStatement("DELETE FROM users WHERE user_id = %s")) == WRITE_PROFILE
    assert (
        profile_for(SimpleStatement("UPDATE users SET username = 'x' WHERE user_id = %s IF EXISTS"))
        == WRITE_PROFILE
    )


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["api"], "CHAT4ALL_CASSANDRA_READ_CONSISTENCY"),
        (["worker", "--web-port", "0"], "CHAT4ALL_CASSANDRA_WRITE_CONSISTENCY"),
        (["api"], "CHAT4ALL_CASSANDRA_SERIAL_CONSISTENCY"),
    ],
)
def test_a_bad_level_name_stops_start_up(command: list[str], variable: str) -> None:
    env = {**os.environ, variable: "QUORUMM"}
    done = subprocess.run(
        [chat4all_executable(), *command], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert variable.removeprefix("CHAT4ALL_").lower() in done.stderr and "QUORUMM" in done.stderr

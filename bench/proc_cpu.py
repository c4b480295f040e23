"""CPU time of processes from /proc (utime + stime), for per-message cost figures in the benchmarks.

A process is counted with its live descendants (a launcher script that forks the real server
counts as the server), except descendants that are measured under a name of their own (the
benchmark's own process is the parent of the API and worker it starts). Threads are part of
their process's utime/stime already.

    from bench.proc_cpu import CpuMeter, stack_pids
    meter = CpuMeter({"api": api_pid, **stack_pids(settings.stack_dir)})
    before = meter.sample()
    ...                                   # the step
    used = meter.since(before)            # {"api": 1.23, "kafka": 0.81, ...} CPU seconds
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The local stack's servers; each keeps its pid in <stack_dir>/<name>/<name>.pid (cli/stack/server.py).
STACK_SERVERS = ("kafka", "cassandra", "redis", "s3proxy")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (utime + stime) of one process, all its threads; None if it does not exist."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state(3) ppid(4) ... utime(14) stime(15), numbered as in proc(5); index = n - 3.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_map() -> dict[int, list[int]]:
    """The pids of every process visible in /proc, by parent pid."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(
    pid: int, tree: Mapping[int, list[int]] | None = None, *, exclude: Collection[int] = ()
) -> list[int]:
    """``pid`` and every live descendant of it, leaving out the subtrees of the pids in ``exclude``."""
    tree = children_map() if tree is None else tree
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(child for child in tree.get(current, ()) if child not in exclude)
    return found


def tree_cpu_seconds(
    pid: int, tree: Mapping[int, list[int]] | None = None, *, exclude: Collection[int] = ()
) -> float | None:
    """CPU seconds of ``pid`` plus its live descendants (but not the subtrees of ``exclude``).

    None if ``pid`` does not exist.
    """
    own = process_cpu_seconds(pid)
    if own is None:
        return None
    rest = (process_cpu_seconds(child) for child in descendants(pid, tree, exclude=exclude)[1:])
    return own + sum(s for s in rest if s is not None)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (every state of /proc/stat but idle and iowait)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice; guest is already in user.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def stack_pids(stack_dir: Path, servers: tuple[str, ...] = STACK_SERVERS) -> dict[str, int]:
    """Pids of the local stack's running servers, from their pid files (missing or dead ones left out)."""
    pids: dict[str, int] = {}
    for name in servers:
        pid_file = stack_dir / name / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            logger.warning("no pid file for %s at %s", name, pid_file)
            continue
        if process_cpu_seconds(pid) is None:
            logger.warning("%s: pid %d from %s is not running", name, pid, pid_file)
            continue
        pids[name] = pid
    return pids


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds per named process at one moment, and the machine's busy seconds then."""

    per_process: dict[str, float | None]
    machine: float


class CpuMeter:
    """Samples the CPU seconds of named processes; ``since`` gives what each used in between."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)

    def sample(self) -> CpuSample:
        tree = children_map()
        measured = set(self.pids.values())
        return CpuSample(
            per_process={
                name: tree_cpu_seconds(pid, tree, exclude=measured - {pid}) for name, pid in self.pids.items()
            },
            machine=machine_busy_seconds(),
        )

    def since(self, before: CpuSample, after: CpuSample | None = None) -> dict[str, float | None]:
        """CPU seconds per process between two samples (None where a process was missing).

        Plus ``"machine"``: all cores' busy seconds, whoever used them.
        """
        after = after or self.sample()
        used: dict[str, float | None] = {}
        for name in self.pids:
            start, end = before.per_process.get(name), after.per_process.get(name)
            used[name] = None if start is None or end is None else max(0.0, end - start)
        used["machine"] = after.machine - before.machine
        return used

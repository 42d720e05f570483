"""Processes the bench starts: pinned, in their own process group, always killed.

Figures are read from /proc so that a gateway's workers and helper processes count too:
CPU time (utime+stime of the whole process tree) and resident memory (sum of the tree).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
GATEWAY_CORE = 0
LOAD_CORE = 1


def free_port() -> int:
    """A free TCP port on loopback (bind to 0 and let the kernel pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    """`argv` run under `taskset -c core` (no pinning when the machine has one core)."""
    if core is None or (os.cpu_count() or 1) < 2:
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


@dataclass
class Proc:
    """A started process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.perf_counter)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


class Registry:
    """Every process the bench starts; all of them are killed on exit, error or Ctrl-C."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        atexit.register(self.stop_all)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_all()
        raise KeyboardInterrupt(f"signal {signum}")

    def start(self, name: str, argv: Sequence[str], log: Path, core: int | None,
              env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
        """Start `argv` pinned to `core`, in a new session (its own process group)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                pinned(argv, core), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds."""
        if proc in self.procs:
            self.procs.remove(proc)
        pgid = proc.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # stragglers in the group, or the leader itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc, grace=3.0)


def start_upstream(registry: Registry, work: Path, *options: str) -> tuple[Proc, int]:
    """The simulated vendor (`overhead/upstream.py`, `options` added to its command line) on
    a free port, pinned to LOAD_CORE; returns it and its port once it says READY."""
    port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("upstream.py")), "--port", str(port),
            *options]
    up = registry.start("upstream", argv, work / "upstream.log", LOAD_CORE)
    deadline = time.monotonic() + 20
    while f"READY {port}" not in up.log_tail():
        if time.monotonic() > deadline or not up.alive():
            raise RuntimeError(f"upstream did not start:\n{up.log_tail()}")
        time.sleep(0.02)
    return up, port


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (workers, helper processes)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of the process tree rooted at `pid` (all threads)."""
    ticks = 0
    for p in tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident memory of the process tree rooted at `pid`."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


def cpu_times() -> dict[str, tuple[int, int]]:
    """Per-core (busy, total) jiffies from /proc/stat, to see other load on the cores."""
    out: dict[str, tuple[int, int]] = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *vals = line.split()
            nums = [int(v) for v in vals[:8]]
            idle = nums[3] + nums[4]  # idle + iowait
            out[name] = (sum(nums) - idle, sum(nums))
    return out


def busy_share(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
               ) -> dict[str, float]:
    """Share of each core that was busy between two `cpu_times()` readings."""
    share = {}
    for name, (busy, total) in after.items():
        b0, t0 = before.get(name, (busy, total))
        share[name] = (busy - b0) / (total - t0) if total > t0 else 0.0
    return share


@contextlib.contextmanager
def measured(pid: int | None) -> Iterator[dict[str, float]]:
    """CPU seconds of `pid`'s tree and per-core busy share over the `with` block."""
    out: dict[str, float] = {}
    c0 = cpu_seconds(pid) if pid else 0.0
    t0 = cpu_times()
    w0 = time.perf_counter()
    yield out
    out["wall_s"] = time.perf_counter() - w0
    out["cpu_s"] = (cpu_seconds(pid) - c0) if pid else 0.0
    for name, share in busy_share(t0, cpu_times()).items():
        out[f"{name}_busy"] = share

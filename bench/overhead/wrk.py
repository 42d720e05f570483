"""Load with `wrk`: one C process with one thread, on the load core, never the bottleneck.

A Lua script sets the POST body and headers; its `done` hook prints the exact latency
percentiles and error counts as one JSON line, so nothing is scraped from wrk's text output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from overhead.procs import LOAD_CORE, pinned

_DONE_HOOK = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def _lua_string(s: str) -> str:
    """A Lua long-bracket literal that cannot be closed by `s`."""
    level = 0
    while f"]{'=' * level}]" in s:
        level += 1
    eq = "=" * level
    return f"[{eq}[{s}]{eq}]"


def lua_script(body: bytes, headers: dict[str, str], pace_ms: float | None = None) -> str:
    """The wrk script: POST `body` with `headers`, JSON summary at the end.

    `pace_ms`: each connection waits a random 0..2×pace_ms before each request (mean
    pace_ms), so that N connections offer about N/pace_ms requests per millisecond: a fixed
    load below saturation, whose latency shows stalls rather than queueing.
    """
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    for name, value in {"Content-Type": "application/json", **headers}.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    if pace_ms:
        lines.append(f"delay = function() return math.random() * {2 * pace_ms:.3f} end")
    return "\n".join(lines) + "\n" + _DONE_HOOK


@dataclass
class WrkResult:
    """One wrk run; latencies in milliseconds."""

    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    error_detail: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed (the bench installs it: apt-get install wrk)")
    return path


def run_wrk(url: str, script: Path, connections: int, duration: float,
            timeout_s: float = 10.0, core: int | None = LOAD_CORE) -> WrkResult:
    """Run wrk once at `connections` for `duration` seconds and parse its JSON line."""
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"loopback only: {url}")
    secs = max(1, round(duration))
    argv = [wrk_binary(), "-t1", f"-c{connections}", f"-d{secs}s", f"--timeout={timeout_s:g}s",
            "-s", str(script), url]
    done = subprocess.run(pinned(argv, core), capture_output=True, text=True,
                          timeout=secs + timeout_s + 30, check=False)
    if done.stderr.strip():  # a Lua error still lets wrk run, with a default GET
        raise RuntimeError(f"wrk: {done.stderr.strip()[:500]}")
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            raw = json.loads(line[len("BENCHJSON "):])
            break
    else:
        raise RuntimeError(f"wrk gave no result (rc {done.returncode}):\n{done.stdout}\n"
                           f"{done.stderr}")
    errors = {k[4:]: int(v) for k, v in raw.items() if k.startswith("err_")}
    dur = raw["duration_us"] / 1e6
    return WrkResult(
        connections=connections, duration_s=round(dur, 3), requests=raw["requests"],
        rps=raw["requests"] / dur if dur > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1000, p90_ms=raw["p90_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000, mean_ms=raw["mean_us"] / 1000,
        errors=sum(errors.values()), error_detail=errors,
    )

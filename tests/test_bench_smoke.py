"""The overhead bench runs: its own upstream, one ~1 s wrk run, the streaming client.

No timing is asserted (speed is measured by `make bench`, never by tests); this only checks
that the harness starts, loads, parses and cleans up. LiteLLM, Portkey and nginx are not
installed or started in smoke mode; wrk is installed by the bench if missing (root only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_smoke(tmp_path: Path) -> None:
    if shutil.which("wrk") is None and os.geteuid() != 0:
        pytest.skip("wrk is not installed and the bench cannot install it without root")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--results-dir",
         str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = list(tmp_path.glob("overhead-*-smoke.json"))
    assert len(files) == 1, done.stderr
    results = json.loads(files[0].read_text())
    direct = results["targets"]["direct"]
    assert "error" not in direct, direct
    run = direct["nonstream"]["16"]
    assert run["requests"] > 0 and run["errors"] == 0
    # the latency percentiles were parsed (their values are the bench's to report, not ours)
    assert all(isinstance(run[p], (int, float)) for p in ("p50_ms", "p90_ms", "p99_ms"))
    assert direct["stream"]["requests"] > 0 and direct["stream"]["errors"] == 0
    assert direct["ttfb"]["events"] == 22  # 20 content chunks, the final chunk, [DONE]
    assert "| upstream (direct) |" in done.stdout
    # Nothing the bench started is left behind.
    leftover = subprocess.run(["pgrep", "-f", str(REPO / "bench" / "overhead" / "upstream.py")],
                              capture_output=True, text=True, check=False)
    assert leftover.stdout.strip() == ""

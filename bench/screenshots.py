"""Regenerate the dashboard screenshots in docs/img from the end-to-end browser test.

    python bench/screenshots.py [--router FILE]

Runs tests/test_dashboard.py (a real gateway on a seeded ledger, Debian's Chromium through
Playwright) with EMANCIPATE_SCREENSHOTS_DIR=docs/img. With --router (a file written by
`emancipate router train`), the what-if chart shows that router's real calibration curve
instead of the test's small synthetic one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--router", type=Path, default=None, help="a trained router file")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    env = {**os.environ, "EMANCIPATE_SCREENSHOTS_DIR": str(args.out.resolve())}
    if args.router is not None:
        env["EMANCIPATE_DASHBOARD_ROUTER"] = str(args.router.resolve())
    cmd = [sys.executable, "-m", "pytest", "-q", "tests/test_dashboard.py", "-k", "end_to_end"]
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    if rc == 0:
        for png in sorted(args.out.glob("dashboard-*.png")):
            print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

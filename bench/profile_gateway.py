"""Profile emancipate under the overhead bench's load, to see where its CPU per request goes.

Starts the bench's upstream and one emancipate variant (pinned like in `bench/run.py`), loads
it with wrk, and samples it with py-spy meanwhile. Prints the functions with the most samples
(self and inclusive) and writes the collapsed stacks (flamegraph input) and a speedscope file.

    .venv/bin/pip install py-spy     # once
    .venv/bin/python bench/profile_gateway.py [--variant emancipate] [--stream] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import client  # noqa: E402
from overhead.procs import LOAD_CORE, Registry, free_port, pinned, start_upstream  # noqa: E402
from overhead.targets import (  # noqa: E402
    BENCH,
    CHAT_PATH,
    EMANCIPATE_VARIANTS,
    Ctx,
    Emancipate,
)
from overhead.upstream import request_body  # noqa: E402
from overhead.wrk import lua_script, run_wrk  # noqa: E402


def summarize(collapsed: Path, top: int) -> str:
    """Top functions by self and by inclusive samples, from py-spy's raw (collapsed) output."""
    self_s: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_s[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    out = [f"{total} samples", "", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_s.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    names = [v.name for v in EMANCIPATE_VARIANTS]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default=names[0], choices=names)
    p.add_argument("--stream", action="store_true", help="profile streaming requests")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out", type=Path, default=BENCH / ".work" / "profiles")
    args = p.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("py-spy is missing: .venv/bin/pip install py-spy")
    registry = Registry()
    with tempfile.TemporaryDirectory(prefix="emancipate-profile-") as tmp:
        work = Path(tmp)
        try:
            _, up_port = start_upstream(registry, work)
            ctx = Ctx(work, up_port, lambda m: print(m, file=sys.stderr))
            target = Emancipate(next(v for v in EMANCIPATE_VARIANTS if v.name == args.variant))
            port = free_port()
            launch = target.launch(ctx, port)
            gw = registry.start(target.name, launch.argv, work / "gateway.log", target.core,
                                launch.env, launch.cwd)
            url = f"http://127.0.0.1:{port}{CHAT_PATH}"
            asyncio.run(client.wait_first_answer(url, request_body(), target.headers(ctx), 60,
                                                 gw.alive))
            script = work / "load.lua"
            script.write_text(lua_script(request_body(stream=args.stream), target.headers(ctx)))
            run_wrk(url, script, args.connections, 3)  # warm-up
            args.out.mkdir(parents=True, exist_ok=True)
            stem = f"{args.variant}-{'stream' if args.stream else 'plain'}"
            raw, speedscope = args.out / f"{stem}.collapsed", args.out / f"{stem}.speedscope"
            common = ["record", "-p", str(gw.pid), "-d", str(args.seconds + 1),
                      "-r", str(args.rate), "--nonblocking"]
            spies = [subprocess.Popen(pinned([py_spy, *common, "-f", fmt, "-o", str(out)],
                                             LOAD_CORE),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for fmt, out in (("raw", raw), ("speedscope", speedscope))]
            time.sleep(0.5)
            res = run_wrk(url, script, args.connections, args.seconds)
            for spy in spies:
                spy.wait(timeout=args.seconds + 30)
            print(f"{res.rps:,.0f} req/s, p50 {res.p50_ms:.2f} ms (profiled, so slower)")
            print(summarize(raw, args.top))
            print(f"\ncollapsed stacks: {raw}\nspeedscope: {speedscope}")
        finally:
            registry.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())

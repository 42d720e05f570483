"""What "scan everything that will be sent, normalised" costs on top of the detectors.

For each body: µs of CPU per KB for `Guard.scan_request(body)` (the walk over every field,
the normalised view, decoded payloads, split tokens, separator-free terms, the detectors)
against the detectors alone on the same text (`Guard._scan` of the strings joined), best
of 3 runs. Inputs: ordinary prose, prose as a word processor writes it (curly quotes, dashes),
prose in Russian (other-script path), number-dense
and token-dense text (the split-token pass), base64 blobs, text full of `\\u` escapes and
zero-width characters (the slow path of the view), and a body of many tools.

    .venv/bin/python bench/guard_view.py [--kb 128]
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable
from typing import Any

from emancipate.guard import Guard, GuardConfig

PROSE = ("The quarterly review covers the migration of the billing service, the latency "
         "budget of the search tier and the hiring plan for the data team. ")

# the same as a word processor writes it: a curly apostrophe, a dash, curly quotes
TYPOGRAPHY = (PROSE.replace("the migration", "the team\u2019s move")
              .replace(" and the hiring", " \u2014 and the \u201chiring\u201d"))


def bodies(kb: int) -> dict[str, dict[str, Any]]:
    n = kb * 1024

    def fill(unit: str) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    def chat(text: str) -> dict[str, Any]:
        return {"model": "m", "messages": [{"role": "user", "content": text}]}

    blob = base64.b64encode(fill(PROSE).encode()[: n * 3 // 4]).decode()
    tools = [{"type": "function", "function": {
        "name": f"tool_{i}", "description": PROSE,
        "parameters": {"type": "object", "properties": {
            f"arg_{k}": {"type": "string", "description": "an argument"} for k in range(8)}}}}
        for i in range(n // 1200)]
    return {
        "prose": chat(fill(PROSE)),
        "prose, typography": chat(fill(TYPOGRAPHY)),
        "prose, Russian": chat(fill("Квартальный обзор охватывает миграцию платёжной службы. ")),
        "spaced digit pairs": chat(fill("12 34 56 78 90 ")),
        "token-like words": chat(fill("v2 AB12 x9Z7 ID42 K8s GPT4 ")),
        "base64 blob": chat(blob),
        "\\u escapes, zero-width": chat(fill("\\u0041\\u0042 a\u200bb\u00adc ")),
        "many tools": {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                       "tools": tools},
    }


def best(fn: Callable[[], object], runs: int = 3) -> float:
    out = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return min(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=int, default=128)
    args = parser.parse_args()
    guard = Guard.from_config(GuardConfig())
    print(f"| body ({args.kb} KB) | scan_request µs/KB | detectors alone µs/KB | ratio |")
    print("|---|---:|---:|---:|")
    for name, body in bodies(args.kb).items():
        view = guard.view(body)
        text = "\n".join(s.text for s in view.segments)
        kb = max(1, len(text)) / 1024
        full = best(lambda b=body: guard.scan_request(b)) * 1e6 / kb
        # the detectors' own pass (`Guard.scan` reads the normalised view too)
        alone = best(lambda t=text: guard._scan(t)) * 1e6 / kb
        print(f"| {name} | {full:.0f} | {alone:.0f} | {full / alone:.2f} |")


if __name__ == "__main__":
    main()

"""The embedded in-house model through the gateway vs llama-cpp-python called directly.

Same GGUF, same prompt, same greedy settings, in one run: what the gateway's thread, queue
and HTTP/SSE layers cost on top of the model itself. Prints tokens/s for both and the ratio.

    .venv/bin/python bench/embedded_model.py [--runs 5] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROMPT = "Explain in a few sentences why an organisation would run its own language models."


def direct(runs: int, max_tokens: int) -> list[float]:
    """Tokens/s of llama-cpp-python alone (the peer), after one warm-up call."""
    from llama_cpp import Llama

    from emancipate.providers.embedded import default_model_path

    llm = Llama(model_path=default_model_path(), n_ctx=2048, verbose=False)
    rates = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
            temperature=0, seed=1)
        dt = time.perf_counter() - t0
        if i:
            rates.append(out["usage"]["completion_tokens"] / dt)
    return rates


def through_gateway(runs: int, max_tokens: int) -> list[float]:
    """Tokens/s seen by an HTTP client of `emancipate serve` on its embedded defaults."""
    port = 18000 + os.getpid() % 1000
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emancipate", "serve", "--port", str(port)],
            cwd=tmp, env={**os.environ, "EMANCIPATE_CONFIG": ""},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            rates = []
            for i in range(runs + 1):
                t0 = time.perf_counter()
                r = httpx.post(url + "/v1/chat/completions", timeout=120, json={
                    "model": "in-house", "max_tokens": max_tokens, "temperature": 0, "seed": 1,
                    "messages": [{"role": "user", "content": PROMPT}]})
                dt = time.perf_counter() - t0
                r.raise_for_status()
                if i:
                    rates.append(r.json()["usage"]["completion_tokens"] / dt)
            return rates
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    peer = statistics.median(direct(args.runs, args.max_tokens))
    ours = statistics.median(through_gateway(args.runs, args.max_tokens))
    print(f"embedded model, {args.max_tokens} tokens, median of {args.runs} "
          f"(machine: {os.cpu_count()} cores)")
    print(f"  llama-cpp-python direct : {peer:8.1f} tokens/s")
    print(f"  through emancipate      : {ours:8.1f} tokens/s")
    print(f"  ratio emancipate/direct : {ours / peer:8.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    main()

"""Regex engines for the secret rules, side by side: `re`, `regex`, RE2, Hyperscan.

    .venv/bin/python bench/guard_engines.py

gitleaks' rules are RE2 patterns. This prints, for its `generic-api-key` rule (the costliest
kind, with the unanchored lead-in `[\\w.-]{0,50}?`), µs per search on 300 characters of a
secret-free line and ms on 20 KB / 80 KB of `api_key = ` repeated (the adversarial case),
for each engine that compiles it; then Hyperscan as a one-pass prefilter over every rule
(compile time, scan of 2 KB). RE2 comes with the guard, `regex` if installed; Hyperscan is
measured only if installed (`pip install hyperscan`), it is not a dependency. Some gitleaks
rules do not compile under `re` at all (flags in mid-pattern, POSIX classes).
"""

from __future__ import annotations

import re
import sys
import time
import timeit
import tomllib
from collections.abc import Callable
from pathlib import Path

import re2

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "src" / "emancipate" / "guard" / "rules"


def _raw_rules() -> dict[str, str]:
    out = {}
    for name in ("emancipate.toml", "gitleaks.toml"):
        for t in tomllib.loads((RULES / name).read_text())["rules"]:
            if "regex" in t and not t.get("path"):
                out[t["id"]] = t["regex"]
    return out


def _compilers() -> dict[str, Callable[[str], object]]:
    out: dict[str, Callable[[str], object]] = {"re": re.compile, "re2": re2.compile}
    try:
        import regex

        out["regex"] = lambda p: regex.compile(p, regex.V1)
    except ImportError:
        pass
    return out


def engines(pattern: str) -> None:
    line = ("The quarterly report shows our api usage grew and the token budget held. " * 5)
    line = line[:300]
    print("| engine | 300 chars (µs) | 20 KB adversarial (ms) | 80 KB adversarial (ms) |")
    print("|---|---:|---:|---:|")
    adv = "api_key = " * 8000
    for name, compile_ in _compilers().items():
        try:
            c = compile_(pattern)
        except Exception as exc:  # an engine that cannot compile the RE2 pattern
            print(f"| {name} | does not compile ({type(exc).__name__}) | | |")
            continue
        small = timeit.timeit(lambda c=c: list(c.finditer(line)), number=200) / 200 * 1e6
        t20 = timeit.timeit(lambda c=c: list(c.finditer(adv[:20000])), number=2) / 2 * 1e3
        t80 = timeit.timeit(lambda c=c: list(c.finditer(adv)), number=2) / 2 * 1e3
        print(f"| {name} | {small:.1f} | {t20:.1f} | {t80:.1f} |")


def hyperscan_prefilter(patterns: list[str]) -> None:
    try:
        import hyperscan
    except ImportError:
        print("\nHyperscan: not installed (pip install hyperscan) — skipped")
        return
    db = hyperscan.Database()
    flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH
    t = time.perf_counter()
    db.compile(expressions=[p.encode() for p in patterns], ids=list(range(len(patterns))),
               flags=[flags] * len(patterns))
    compile_s = time.perf_counter() - t
    sys.path.insert(0, str(HERE))
    import guard_bench

    dense = "\n".join(r["text"] for r in guard_bench.load_corpus())[:2100].encode()
    prose = ("Our customers liked the new dashboard and the quarterly plan. " * 40)[:2100]
    hits: list[int] = []

    def on_match(rule: int, start: int, end: int, flags: int, ctx: object) -> None:
        hits.append(rule)

    for name, text in (("2 KB secret-dense", dense), ("2 KB prose", prose.encode())):
        us = timeit.timeit(lambda t=text: db.scan(t, match_event_handler=on_match),
                           number=200) / 200 * 1e6
        hits.clear()
        db.scan(text, match_event_handler=on_match)
        print(f"Hyperscan prefilter, {len(patterns)} rules: compile {compile_s:.2f} s; "
              f"{name}: {us:.1f} µs, {len(set(hits))} rules may match")


def main() -> None:
    raw = _raw_rules()
    print("gitleaks generic-api-key:\n")
    engines(raw["generic-api-key"])
    hyperscan_prefilter(list(raw.values()))


if __name__ == "__main__":
    main()

"""Leak-guard bench: detection quality on the labelled corpus, and latency per request.

    .venv/bin/python bench/guard_bench.py            # full run (about a minute)
    .venv/bin/python bench/guard_bench.py --quick    # fewer latency iterations

Quality: every prompt of `bench/data/guard/corpus.jsonl` (English and French, positives and
hard negatives) is scanned with `Guard.scan`; a finding is a true positive when it overlaps
a labelled value of the same class, a false positive otherwise; a labelled value no finding
of its class overlaps is a false negative. Domains are judged per prompt. The guard runs
with the corpus' confidential terms plus 10,000 synthetic ones (the size the issue asks
to be fast for).

Latency: `Guard.scan_request` on chat bodies of 2 KB and 32 KB built from the corpus' own
prompts: "prose" (ordinary paragraphs, English and French), "lookalikes" (the hard
negatives only: dates, amounts, invalid checksums, prose about keys: every line makes the
validators work) and "mixed" (any prompts, so findings, validators and redaction run).
Then the full guard + policy
path: scan, plan for an external and an in-house target, and the redacted body. p50/p99 in
microseconds over many runs on one core; no other work in the process. The process's
garbage collector is set as the gateway sets its own once started (`settle_collector`:
start-up objects frozen, young collections every 10,000 allocations), since that is how the
guard runs; before 2026-12-05 the benches ran under Python's defaults (the 1 MB scan ~10 %
slower, 2 KB scans unchanged: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import string
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "guard"
sys.path.insert(0, str(HERE.parent / "src"))

from emancipate.context import ANONYMOUS, Target  # noqa: E402
from emancipate.guard import Guard, GuardConfig  # noqa: E402
from emancipate.guard.names import DETECTORS  # noqa: E402

CHECKSUM_IDS = ("iban", "card", "fr_nir", "fr_siren", "fr_siret", "fr_vat", "us_ssn")
CLASSES = ("secret", "personal", "confidential", "code", "domain")


def load_corpus(path: Path = DATA / "corpus.jsonl") -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def synthetic_terms(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ra", "ven", "tor", "zu", "quel", "bri", "sta", "nox", "dri"]
    out = set()
    while len(out) < n:
        word = "".join(rng.choice(syll) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.3:
            word += "-" + "".join(rng.choice(string.digits) for _ in range(2))
        if rng.random() < 0.2:
            word += " " + rng.choice(["Labs", "Holding", "Corp", "Systems", "Group"])
        out.add(word.capitalize())
    return sorted(out)


def bench_guard(n_terms: int = 10_000) -> Guard:
    terms = [t for t in (DATA / "terms.txt").read_text(encoding="utf-8").splitlines()
             if t and not t.startswith("#")]
    guard = Guard(GuardConfig(), terms + synthetic_terms(n_terms))
    settle_collector()
    return guard


def settle_collector() -> None:
    """The collector as the gateway sets it once started (`emancipate.api.app`); for a
    checkout from before that had a name (`speed_compare.py` runs older ones), its values."""
    try:
        from emancipate.api.app import settle_collector as settle
    except ImportError:
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        return
    settle()


def evaluate(guard: Guard, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-class and per-detector TP/FP/FN; domains per prompt."""
    stats = {c: {"tp": 0, "fp": 0, "fn": 0} for c in CLASSES}
    per_det: dict[str, dict[str, int]] = {}
    errors: list[dict[str, Any]] = []
    for rec in records:
        text = rec["text"]
        findings = guard.scan(text)
        labels = []
        for lab in rec["labels"]:
            start = text.find(lab["value"])
            labels.append((lab["class"], lab["detector"], start, start + len(lab["value"])))
        matched = [False] * len(labels)
        for f in findings:
            if f.cls == "domain":
                continue
            hit = False
            for i, (c, _d, s, e) in enumerate(labels):
                if c == f.cls and f.start < e and s < f.end:
                    matched[i] = hit = True
            if not hit:
                stats[f.cls]["fp"] += 1
                per_det.setdefault(f.detector, {"tp": 0, "fp": 0, "fn": 0})["fp"] += 1
                errors.append({"id": rec["id"], "error": "fp", "class": f.cls,
                               "detector": f.detector, "span": text[f.start:f.end][:60]})
        for (c, d, _s, _e), ok in zip(labels, matched, strict=True):
            stats[c]["tp" if ok else "fn"] += 1
            per_det.setdefault(d, {"tp": 0, "fp": 0, "fn": 0})["tp" if ok else "fn"] += 1
            if not ok:
                errors.append({"id": rec["id"], "error": "fn", "class": c, "detector": d})
        found = {f.domain for f in findings if f.cls == "domain"}
        want = set(rec.get("domains") or ())
        stats["domain"]["tp"] += len(found & want)
        stats["domain"]["fp"] += len(found - want)
        stats["domain"]["fn"] += len(want - found)
        for d in found - want:
            errors.append({"id": rec["id"], "error": "fp", "class": "domain", "detector": d})
        for d in want - found:
            errors.append({"id": rec["id"], "error": "fn", "class": "domain", "detector": d})
    checksum = {"tp": 0, "fp": 0, "fn": 0}
    for d in CHECKSUM_IDS:
        for k in checksum:
            checksum[k] += per_det.get(d, {}).get(k, 0)
    return {"classes": stats, "detectors": per_det, "checksum_ids": checksum,
            "errors": errors}


def pr(s: dict[str, int]) -> tuple[float, float]:
    p = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 1.0
    r = s["tp"] / (s["tp"] + s["fn"]) if s["tp"] + s["fn"] else 1.0
    return p, r


def build_body(records: list[dict[str, Any]], size: int, kind: str, seed: int) -> dict:
    """A chat body of about `size` characters made of corpus prompts: `prose` (ordinary
    clean paragraphs), `lookalikes` (the hard negatives: numbers, dates, keys that are not
    secrets) or `mixed` (any prompt, so findings and validators run)."""
    rng = random.Random(seed)
    if kind == "prose":
        pool = [r["text"] for r in records if r.get("note") == "prose"]
    elif kind == "lookalikes":
        pool = [r["text"] for r in records if r["kind"] == "hard_negative"]
    else:
        pool = [r["text"] for r in records]
    messages: list[dict[str, str]] = [{"role": "system", "content":
                                       "You are a helpful assistant for the operations team. "
                                       "Answer precisely and cite the figures you use."}]
    total = len(messages[0]["content"])
    per_message = 2048 if size > 4096 else size
    current: list[str] = []
    cur_len = 0
    while total < size:
        t = rng.choice(pool)
        current.append(t)
        cur_len += len(t) + 1
        total += len(t) + 1
        if cur_len >= per_message:
            messages.append({"role": "user" if len(messages) % 2 else "assistant",
                             "content": "\n".join(current)})
            current, cur_len = [], 0
    if current:
        messages.append({"role": "user", "content": "\n".join(current)})
    return {"model": "bench", "messages": messages}


def timeit(fn: Any, n: int) -> tuple[float, float, float]:
    """p50 and p99 of the CPU time of one call (the thread's own clock, so time the shared
    machine gives to other processes is not counted), and the p50 of wall time."""
    for _ in range(min(50, n)):
        fn()
    cpu, wall = [], []
    for _ in range(n):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - w0)
    cpu.sort()
    wall.sort()
    return (cpu[len(cpu) // 2] / 1000, cpu[int(len(cpu) * 0.99) - 1] / 1000,
            wall[len(wall) // 2] / 1000)


def latency(guard: Guard, records: list[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    from emancipate.policy import Policy
    from emancipate.policy.config import PolicyConfig

    policy = Policy(PolicyConfig(), {})
    targets = [Target("vendor", "m", "vendor", "external"),
               Target("local", "m", "in-house", "in-house")]
    rows = []
    for size, n in ((2048, 500 if quick else 5000), (32768, 40 if quick else 400)):
        for kind in ("prose", "lookalikes", "mixed"):
            body = build_body(records, size, kind, seed=size + len(kind))
            chars = sum(len(m["content"]) for m in body["messages"])
            findings = guard.scan_request(body)
            p50, p99, w50 = timeit(lambda body=body: guard.scan_request(body), n)

            def full(body: dict = body) -> None:
                fs = guard.scan_request(body)
                plan = policy.plan(body, fs, targets, ANONYMOUS)
                for t in plan.targets:
                    plan.body_for(t, body)

            f50, f99, _ = timeit(full, n)
            rows.append({"size": size, "chars": chars, "messages": len(body["messages"]),
                         "kind": kind, "findings": len(findings),
                         "runs": n, "guard_p50_us": round(p50, 1), "guard_p99_us": round(p99, 1),
                         "guard_wall_p50_us": round(w50, 1),
                         "guard_policy_p50_us": round(f50, 1),
                         "guard_policy_p99_us": round(f99, 1)})
    return rows


def dense_megabyte(guard: Guard, seed: int = 1) -> tuple[int, float]:
    """One scan of 1 MB of text holding 16,000 secrets of four kinds (GitHub, AWS, Slack
    tokens, passwords): the issue's "linear in findings" case. Returns (secrets, CPU s)."""
    rnd = random.Random(seed)
    alnum = string.ascii_letters + string.digits

    def rand(n: int, alphabet: str = alnum) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(n))

    digits = "123456789"
    makers = (lambda: "ghp_" + rand(36),
              lambda: "AKIA" + rand(16, string.ascii_uppercase + "234567"),
              lambda: "password=" + rand(12),
              lambda: "xoxb-" + rand(10, digits) + "-" + rand(12, digits) + "-" + rand(24))
    parts = [rnd.choice(makers)() for _ in range(16_000)]  # the case: 16,000 in 1 MB
    filler = " and some ordinary words between them. "
    pad = max(0, 1_000_000 - sum(map(len, parts))) // len(parts) - 2
    parts = [p + (filler * (pad // len(filler) + 1))[:pad] + ". " for p in parts]
    text = "".join(parts)
    t = time.process_time()
    guard.scan(text)
    return len(parts), time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer latency iterations")
    ap.add_argument("--errors", action="store_true", help="list every miss and false alarm")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()

    records = load_corpus()
    t0 = time.perf_counter()
    guard = bench_guard()
    build_ms = (time.perf_counter() - t0) * 1000
    quality = evaluate(guard, records)
    langs = {lang: sum(r["lang"] == lang for r in records) for lang in ("en", "fr")}
    negatives = sum(r["kind"] == "hard_negative" for r in records)
    print(f"# Leak guard bench — {time.strftime('%Y-%m-%d %H:%M')} — Python "
          f"{platform.python_version()} on {platform.machine()}")
    print(f"\nCorpus: {len(records)} prompts ({langs['en']} English, {langs['fr']} French; "
          f"{len(records) - negatives} with labelled values, {negatives} hard negatives). "
          f"Guard built with {guard.term_count} confidential terms in {build_ms:.0f} ms.\n")
    print("| class | TP | FP | FN | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for c in CLASSES:
        s = quality["classes"][c]
        p, r = pr(s)
        print(f"| {c} | {s['tp']} | {s['fp']} | {s['fn']} | {p:.3f} | {r:.3f} |")
    s = quality["checksum_ids"]
    p, r = pr(s)
    print(f"| *checksum-bearing ids* ({', '.join(CHECKSUM_IDS)}) | {s['tp']} | {s['fp']} | "
          f"{s['fn']} | {p:.3f} | {r:.3f} |")
    print("\n| detector | TP | FP | FN |")
    print("|---|---:|---:|---:|")
    for d in sorted(quality["detectors"], key=lambda d: (DETECTORS.get(d, "z"), d)):
        s = quality["detectors"][d]
        print(f"| {d} | {s['tp']} | {s['fp']} | {s['fn']} |")
    if args.errors or quality["errors"]:
        print("\nMisses and false alarms:")
        for e in quality["errors"]:
            print("  ", json.dumps(e, ensure_ascii=False))

    heldout = load_corpus(DATA / "heldout.jsonl")
    hq = evaluate(guard, heldout)
    print(f"\nHeld-out set ({len(heldout)} prompts written after the detectors, "
          "bench/data/guard/heldout.jsonl):\n")
    print("| class | TP | FP | FN | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for c in CLASSES[:4]:
        st = hq["classes"][c]
        p, r = pr(st)
        print(f"| {c} | {st['tp']} | {st['fp']} | {st['fn']} | {p:.3f} | {r:.3f} |")
    for e in hq["errors"]:
        print("  ", json.dumps(e, ensure_ascii=False))

    import guard_eval  # the independent public corpus, split by family (headline figures)

    print("\nPublic data nobody here wrote (bench/guard_eval.py; held-out families are the "
          "headline):\n")
    print(guard_eval.render(guard_eval.evaluate(baseline=False), show_heldout_families=False))
    n_secrets, seconds = dense_megabyte(guard)
    print(f"\n1 MB holding {n_secrets:,} secrets: {seconds:.2f} s of CPU for one scan "
          "(findings resolved in O(n log n)).")

    rows = latency(guard, records, args.quick)
    print("\nLatency per request (µs of CPU time on one core; wall p50 for reference), "
          "`Guard.scan_request`, then scan + policy plan + redacted bodies:\n")
    print("| body | chars | messages | findings | runs | guard p50 | guard p99 | "
          "guard wall p50 | guard+policy p50 | guard+policy p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size'] // 1024} KB {r['kind']} | {r['chars']} | {r['messages']} | "
              f"{r['findings']} | {r['runs']} | {r['guard_p50_us']} | {r['guard_p99_us']} | "
              f"{r['guard_wall_p50_us']} | "
              f"{r['guard_policy_p50_us']} | {r['guard_policy_p99_us']} |")
    if args.json:
        args.json.write_text(json.dumps({"quality": quality, "heldout": hq, "latency": rows},
                                        indent=1))


if __name__ == "__main__":
    main()

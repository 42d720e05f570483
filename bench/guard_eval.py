"""Leak-guard evaluation on public data nobody here wrote (issue 12), guard vs detect-secrets.

    .venv/bin/python bench/guard_eval.py                          # both splits, both scanners
    .venv/bin/python bench/guard_eval.py --json                   # the figures as JSON
    .venv/bin/python bench/guard_eval.py --show-heldout-families  # only when judging, not tuning
    GUARD_EVAL_CONFIG='{"rules_files": ["mine.toml"]}' .venv/bin/python bench/guard_eval.py
                                                   # a `guard:` configuration (JSON) to try

Corpora (`bench/data/guard/public/`, built by `bench/data/guard/build_public.py`, sources and
licences in `SOURCES.md`): secrets from CredSweeper, detect-secrets and gitleaks test data,
and generated English personal data, each split by family into `dev` (rule authors may read
it) and `heldout` (they may not: its per-family figures are hidden unless asked for).

Secrets: a positive is caught when a finding of class `secret` overlaps one of its spans; a
negative is flagged when the guard reports any secret in it. detect-secrets (default
plugins and filters, each text scanned as a file) catches or flags a text when it reports
anything for it: it does not always say where, so it gets the benefit of the doubt.

Personal data: a labelled span is found when a finding of class `personal` from the
labelled detector overlaps it; a personal finding that overlaps no labelled span is a false
positive of its detector; one that overlaps a span of another label is counted as
`mislabelled` (a false positive in the overall precision, not in the per-label one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PUBLIC = HERE / "data" / "guard" / "public"
sys.path.insert(0, str(HERE.parent / "src"))

from emancipate.guard import Guard, GuardConfig  # noqa: E402

SPLITS = ("dev", "heldout")
PII_LABELS = ("email", "phone", "card", "iban", "us_ssn")
Record = dict[str, Any]


def load(name: str) -> list[Record]:
    with (PUBLIC / f"{name}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def detect_secrets_hits(texts: list[str]) -> list[bool]:
    """Whether detect-secrets (default plugins and filters) reports anything in each text,
    scanned as `detect-secrets scan` scans a file (each text a `.txt` file). Its ad-hoc
    `scan_line` is not used: it searches eagerly and reports almost every line."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with tempfile.TemporaryDirectory() as tmp, default_settings():
        paths = []
        for i, text in enumerate(texts):
            path = Path(tmp) / f"snippet_{i}.txt"
            path.write_text(text + "\n", encoding="utf-8")
            paths.append(str(path))
        found = SecretsCollection()
        for path in paths:  # scan_files would start a process pool and key files by relpath
            found.scan_file(path)
        reported = set(found.files)
        return [path in reported for path in paths]


def _overlaps(start: int, end: int, spans: list[list[Any]]) -> bool:
    return any(start < s[1] and s[0] < end for s in spans)


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 3) if total else None


def secrets_eval(guard: Guard, records: list[Record], baseline: bool) -> dict[str, Any]:
    """Recall and negatives flagged, overall, per source and per family, for both scanners."""
    ds = detect_secrets_hits([r["text"] for r in records]) if baseline else [False] * len(
        records)
    groups: dict[str, dict[str, dict[str, int]]] = {"total": {}, "source": {}, "family": {}}
    for rec, ds_hit in zip(records, ds, strict=True):
        found = [f for f in guard.scan(rec["text"]) if f.cls == "secret"]
        positive = rec["kind"] == "positive"
        hit = any(_overlaps(f.start, f.end, rec["spans"]) for f in found) if positive else (
            bool(found))
        for group, key in (("total", "all"), ("source", rec["source"]),
                           ("family", rec["family"])):
            row = groups[group].setdefault(key, defaultdict(int))
            kind = "pos" if positive else "neg"
            row[kind] += 1
            row[f"{kind}_guard"] += hit
            row[f"{kind}_ds"] += ds_hit
    return {group: {key: _secret_row(row, baseline) for key, row in rows.items()}
            for group, rows in groups.items()}


def _secret_row(row: dict[str, int], baseline: bool) -> dict[str, Any]:
    out = {"positives": row["pos"], "negatives": row["neg"],
           "recall": _rate(row["pos_guard"], row["pos"]),
           "negatives_flagged": _rate(row["neg_guard"], row["neg"])}
    if baseline:
        out["ds_recall"] = _rate(row["pos_ds"], row["pos"])
        out["ds_negatives_flagged"] = _rate(row["neg_ds"], row["neg"])
    return out


def pii_eval(guard: Guard, records: list[Record]) -> dict[str, Any]:
    counts = {label: defaultdict(int) for label in PII_LABELS}
    mislabelled = 0
    for rec in records:
        found = [f for f in guard.scan(rec["text"]) if f.cls == "personal"]
        for start, end, label in rec["spans"]:
            ok = any(f.detector == label and f.start < end and start < f.end for f in found)
            counts[label]["tp" if ok else "fn"] += 1
        for f in found:
            over = [s for s in rec["spans"] if f.start < s[1] and s[0] < f.end]
            if not over:
                counts.setdefault(f.detector, defaultdict(int))["fp"] += 1
            elif all(s[2] != f.detector for s in over):
                mislabelled += 1
    per_label = {label: _pr(row) for label, row in sorted(counts.items())}
    tp = sum(r["tp"] for r in counts.values())
    fn = sum(r["fn"] for r in counts.values())
    fp = sum(r["fp"] for r in counts.values())
    return {"labels": per_label, "mislabelled": mislabelled,
            "recall": _rate(tp, tp + fn), "precision": _rate(tp, tp + fp + mislabelled),
            "spans": tp + fn, "false_positives": fp}


def _pr(row: dict[str, int]) -> dict[str, Any]:
    return {"tp": row["tp"], "fn": row["fn"], "fp": row["fp"],
            "recall": _rate(row["tp"], row["tp"] + row["fn"]),
            "precision": _rate(row["tp"], row["tp"] + row["fp"])}


def evaluate(baseline: bool = True) -> dict[str, Any]:
    guard = Guard.from_config(GuardConfig(**json.loads(os.environ.get("GUARD_EVAL_CONFIG", "{}"))))
    return {split: {"secrets": secrets_eval(guard, load(split), baseline),
                    "pii": pii_eval(guard, load(f"pii_{split}"))} for split in SPLITS}


def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.3f}"


def _secret_line(name: str, row: dict[str, Any]) -> str:
    ds = (f"  {_fmt(row.get('ds_recall'))}  {_fmt(row.get('ds_negatives_flagged'))}"
          if "ds_recall" in row else "")
    return (f"  {name[:48]:<48} {row['positives']:>4} {row['negatives']:>4}  "
            f"{_fmt(row['recall'])}  {_fmt(row['negatives_flagged'])}{ds}")


def render(result: dict[str, Any], show_heldout_families: bool) -> str:
    out = []
    head = (f"  {'':<48} {'pos':>4} {'neg':>4}  recall  flagd   ds-rec ds-flg")
    for split in SPLITS:
        sec, pii = result[split]["secrets"], result[split]["pii"]
        out += [f"== {split}: secrets (guard recall / negatives flagged; detect-secrets)", head,
                _secret_line("all", sec["total"]["all"])]
        out += [_secret_line(f"source {k}", v) for k, v in sorted(sec["source"].items())]
        if split == "dev" or show_heldout_families:
            fams = sorted(sec["family"].items(),
                          key=lambda kv: (kv[1]["recall"] if kv[1]["recall"] is not None
                                          else 2.0, -(kv[1]["negatives_flagged"] or 0), kv[0]))
            out += ["  per family, worst first:"] + [_secret_line(k, v) for k, v in fams]
        out.append(f"== {split}: personal data (recall / precision)")
        for label, row in pii["labels"].items():
            out.append(f"  {label:<10} tp {row['tp']:>4} fn {row['fn']:>4} fp {row['fp']:>4}"
                       f"  recall {_fmt(row['recall'])}  precision {_fmt(row['precision'])}")
        out.append(f"  all        recall {_fmt(pii['recall'])}  precision "
                   f"{_fmt(pii['precision'])}  (mislabelled {pii['mislabelled']})")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--no-baseline", action="store_true", help="skip detect-secrets")
    ap.add_argument("--show-heldout-families", action="store_true",
                    help="per-family figures of the held-out split (for judging, not tuning)")
    args = ap.parse_args()
    result = evaluate(baseline=not args.no_baseline)
    if not args.show_heldout_families:
        for split in SPLITS:
            if split != "dev":
                result[split]["secrets"].pop("family")
    print(json.dumps(result, indent=1) if args.json else render(result,
                                                                args.show_heldout_families))


if __name__ == "__main__":
    main()

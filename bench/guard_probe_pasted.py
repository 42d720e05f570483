"""What users paste into a chat, written by hand for issue 12's seventh session: 80 texts
that hold no secret (lockfiles, `go.sum`, HTML with integrity hashes, API responses, SSH
fingerprints, kubeconfig certificates, code that handles secrets) and 85 that hold one
(a password or key in prose, config files, command lines, URLs, encoded forms, French and
other languages). Written alongside the fixes they led to: a regression and coverage
measure, not a quality figure (that is `bench/guard_eval.py`'s held-out one).

    .venv/bin/python bench/guard_probe_pasted.py [--show]

Files: `bench/data/guard/pasted/{negatives,positives}.txt`, texts separated by `%%` lines.
A negative counts when any secret is reported in it; a positive when none is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from emancipate.guard import Guard, GuardConfig  # noqa: E402

DATA = HERE / "data" / "guard" / "pasted"


def texts(name: str, data: Path = DATA) -> list[str]:
    """The texts of `data/name.txt`, separated by `%%` lines."""
    return (data / f"{name}.txt").read_text(encoding="utf-8").rstrip("\n").split("\n%%\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", action="store_true", help="print the texts counted")
    args = ap.parse_args()
    guard = Guard.from_config(GuardConfig())
    for name, want in (("negatives", False), ("positives", True)):
        wrong = [t for t in texts(name)
                 if any(f.cls == "secret" for f in guard.scan(t)) != want]
        what = "flagged" if not want else "missed"
        print(f"{name}: {len(wrong)} of {len(texts(name))} {what}")
        if args.show:
            for t in wrong:
                print(f"    {t[:120]!r}")


if __name__ == "__main__":
    main()

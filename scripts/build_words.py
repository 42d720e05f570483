"""Build `src/emancipate/guard/rules/words.txt`: the words names are made of.

The leak guard tells a name (`PGresult_ptr`, `s3_credentials`, `Ed448PrivateKey`) from a
random value by whether its letters form words. The words are those of the identifiers,
comments and strings of the Python standard library this script runs on (CPython, PSF
licence; only word frequencies are kept): every run of letters split at camelCase and
`_`, lower-cased, 3 to 20 letters, kept when it appears in at least 2 files.

    .venv/bin/python scripts/build_words.py   # rewrites the file; same Python, same output
"""

from __future__ import annotations

import re
import sys
import sysconfig
from collections import Counter
from pathlib import Path

RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
OUT = Path(__file__).resolve().parents[1] / "src/emancipate/guard/rules/words.txt"
MIN_FILES = 2


def main() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    seen: Counter[str] = Counter()
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        seen.update({w.lower() for w in RUNS.findall(text) if 3 <= len(w) <= 20})
    words = sorted(w for w, n in seen.items() if n >= MIN_FILES)
    head = (f"# Words of names, from the Python {sys.version.split()[0]} standard library "
            f"(scripts/build_words.py): {len(words)} words\n")
    OUT.write_text(head + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(words)} words")


if __name__ == "__main__":
    main()

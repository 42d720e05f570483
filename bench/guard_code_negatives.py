"""Secrets the guard reports in real code that holds none: lines of the installed third-party
packages (this venv's site-packages, test directories left out) that mention a secret word
(`pass`, `pwd`, `secret`, `token`, `auth`, `credential`, `key`). Nearly every such line
handles a secret without holding one (`password = getpass()`, `skip_auth=skip_auth`), so
the share flagged estimates false alarms on code users paste. Independent of the rules:
nobody tuned on these packages' lines except to read the flagged ones, and the word list
the guard uses to tell names from values comes from the standard library, not from here.

    .venv/bin/python bench/guard_code_negatives.py [--lines 60000] [--show]
    .venv/bin/python bench/guard_code_negatives.py --data-files [--show]
    .venv/bin/python bench/guard_code_negatives.py --help-texts [--show]

`--data-files` scans whole data and web files instead (every `.json`, `.js`, `.html`,
`.css`, `.svg`, `.xml`, `.yaml`/`.yml`, `.map`, `.ipynb` under 400 KB, tests included):
API examples and responses (botocore's), bundled scripts, notebooks — what users paste
into a chat besides code. Nearly all of it holds no secret (a few documentation samples
under `Password` names do), so each finding is worth reading.

`--help-texts` scans help texts instead: the paragraphs of this machine's manual pages
that name a password flag and the strings of its French message catalogs (`--password
PASSWORD`, `-W, --password   force la saisie d'un mot de passe`). None holds a password.
"""

from __future__ import annotations

import argparse
import gettext
import gzip
import random
import re
import sysconfig
import time
from pathlib import Path

from emancipate.guard import Guard, GuardConfig

WORD = re.compile(r"(?i)pass|pwd|secret|token|auth|credential|key")
SUFFIXES = (".py", ".cfg", ".ini", ".toml", ".yaml", ".yml", ".json", ".md", ".rst", ".txt",
            ".sh")


def code_lines(root: Path, limit: int, seed: int = 1) -> list[str]:
    lines: set[str] = set()
    for path in root.rglob("*"):
        if path.suffix not in SUFFIXES or "test" in str(path.parent).lower():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="ignore")
        except OSError:
            continue
        lines.update(s for s in (raw.strip() for raw in text.splitlines())
                     if 8 < len(s) < 300 and WORD.search(s))
    out = sorted(lines)
    random.Random(seed).shuffle(out)
    return out[:limit]


DATA_SUFFIXES = (".json", ".js", ".html", ".css", ".svg", ".xml", ".yaml", ".yml", ".map",
                 ".ipynb")


def data_files(root: Path, max_bytes: int = 400_000) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.suffix in DATA_SUFFIXES and p.is_file() and p.stat().st_size < max_bytes)


def scan_data_files(guard: Guard, show: bool) -> None:
    files = data_files(Path(sysconfig.get_paths()["purelib"]))
    t = time.process_time()
    size = 0
    flagged = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        size += len(text)
        for f in guard.scan(text):
            if f.cls == "secret":
                a, b = max(0, f.start - 40), min(len(text), f.end + 20)
                flagged.append((path.name, f.detector, text[a:b].replace("\n", " ")))
    cpu = time.process_time() - t
    print(f"{len(files):,} data and web files ({size / 1e6:.1f} MB) of third-party packages: "
          f"{len(flagged)} secrets reported, {cpu:.1f} s of CPU")
    if show:
        for name, detector, around in flagged:
            print(f"  {name}: {detector} {around[:140]!r}")


# a password flag, as a help text names it: `--password`, `--proxy-pass`, `-passphrase`
PASSWORD_FLAG = re.compile(r"(?i)-(?:\w+-){0,3}(?:password|passwd|pass|pwd|psk|passphrase)\b")
ROFF = re.compile(r"\\f[BIRP]|\\\(..|\\&")


def help_texts() -> list[str]:
    """Paragraphs of this machine's manual pages (sections 1 and 8) that name a password
    flag, and the French message catalogs' strings (`--password  force la saisie d'un mot
    de passe`): help texts users paste to ask what a flag does. Empty where not installed."""
    out = []
    for path in sorted(Path("/usr/share/man").glob("man[18]/*.gz")):
        with gzip.open(path) as fh:
            text = ROFF.sub("", fh.read().decode("utf-8", "replace").replace("\\-", "-"))
        if PASSWORD_FLAG.search(text):
            out.extend(p for p in text.split("\n.") if PASSWORD_FLAG.search(p))
    for path in sorted(Path("/usr/share/locale/fr/LC_MESSAGES").glob("*.mo")):
        try:
            with path.open("rb") as fh:
                catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        except (OSError, ValueError):
            continue
        out.extend(v for v in catalog.values() if isinstance(v, str) and v)
    return out


# each flagged text with its findings' (detector, value) pairs
Flagged = list[tuple[str, list[tuple[str, str]]]]


def scan_texts(guard: Guard, texts: list[str]) -> tuple[Flagged, float]:
    """The texts with a secret finding, each with its (detector, value) pairs, and the CPU
    seconds the scans took."""
    t = time.process_time()
    flagged = []
    for text in texts:
        found = [(f.detector, text[f.start:f.end]) for f in guard.scan(text) if f.cls == "secret"]
        if found:
            flagged.append((text, found))
    return flagged, time.process_time() - t


def show_flagged(flagged: Flagged) -> None:
    for text, found in flagged:
        print(f"  {text[:140]!r} {found}")


def scan_help_texts(guard: Guard, show: bool) -> None:
    texts = help_texts()
    flagged, cpu = scan_texts(guard, texts)
    print(f"{len(texts):,} help texts (manual pages naming a password flag, French message "
          f"catalogs): {len(flagged)} flagged, {cpu:.1f} s of CPU")
    if show:
        show_flagged(flagged)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=60_000)
    ap.add_argument("--data-files", action="store_true",
                    help="scan whole data and web files instead of code lines")
    ap.add_argument("--help-texts", action="store_true",
                    help="scan manual pages and French message catalogs instead")
    ap.add_argument("--show", action="store_true", help="print the flagged lines")
    args = ap.parse_args()
    guard = Guard.from_config(GuardConfig())
    if args.help_texts:
        scan_help_texts(guard, args.show)
        return
    if args.data_files:
        scan_data_files(guard, args.show)
        return
    lines = code_lines(Path(sysconfig.get_paths()["purelib"]), args.lines)
    flagged, cpu = scan_texts(guard, lines)
    print(f"{len(lines):,} lines of third-party code near a secret word: {len(flagged)} "
          f"flagged ({len(flagged) / max(1, len(lines)):.2%}), {cpu:.1f} s of CPU")
    if args.show:
        show_flagged(flagged)


if __name__ == "__main__":
    main()

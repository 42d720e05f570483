"""Leak-guard worst case: scan time of adversarial inputs at growing sizes.

    .venv/bin/python bench/guard_adversarial.py             # 8 KB .. 512 KB, and 1 MB of prose
    .venv/bin/python bench/guard_adversarial.py --quick     # 8 KB and 32 KB only

Each input is built to make a detector work: long runs of digits and number separators
(a table of numbers is one run), look-alikes of phone numbers, IBANs and card numbers whose
checksums fail, decimals, counted lists, colon-hex and `@` look-alikes; then lists of real
phone, card and IBAN numbers (a finding every 20-30 characters). Every one is
scanned with `Guard.from_config(GuardConfig()).scan(text)` (all classes, default regions)
and the best of a few runs is printed in microseconds per KB: a linear scan prints the
same figure at every size. A size is skipped once the previous one took longer than
`--give-up` seconds (the pre-fix guard needed minutes at 128 KB).
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from stdnum import iban, luhn  # noqa: E402

from emancipate.guard import Guard, GuardConfig, Unscannable  # noqa: E402

KB = 1024


def _repeat(piece: Callable[[random.Random], str], size: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    n = 0
    while n < size:
        p = piece(rng)
        parts.append(p)
        n += len(p)
    return "".join(parts)[:size]


def _digits(rng: random.Random, k: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(k))


def _card(rng: random.Random) -> str:
    body = "4" + _digits(rng, 14)
    number = body + luhn.calc_check_digit(body)
    return " ".join(number[k:k + 4] for k in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "WEST" + _digits(rng, 14)
    number = "GB" + iban.calc_check_digits("GB00" + bban) + bban
    return " ".join(number[k:k + 4] for k in range(0, len(number), 4))


def _prose(rng: random.Random) -> str:
    words = ("the", "invoice", "was", "sent", "on", "Monday", "and", "le", "client", "a",
             "payé", "order", "shipped", "to", "Lyon", "version", "total", "items", "ticket")
    sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))
    return (f"{sentence.capitalize()} {rng.randint(1, 999)} items for "
            f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d} EUR on 2024-0{rng.randint(1, 9)}-1"
            f"{rng.randint(0, 9)}, ref {rng.randint(10000, 99999)}.\n")


INPUTS: dict[str, Callable[[random.Random], str]] = {
    "spaced digit pairs": lambda r: _digits(r, 2) + " ",
    "counted list": lambda r: f"{r.randint(1, 9999)} ",
    "space-grouped 3-digit": lambda r: _digits(r, 3) + " ",
    "decimals": lambda r: f"{r.randint(0, 9)}.{_digits(r, 2)} ",
    "dashed digit pairs": lambda r: _digits(r, 2) + "-",
    "dotted digit pairs": lambda r: _digits(r, 2) + ".",
    "phone look-alikes (FR)": lambda r: "0" + " ".join(_digits(r, 2) for _ in range(5))[1:] + " ",
    "phone look-alikes (+intl)": lambda r: f"+{r.randint(1, 99)} {_digits(r, 3)} "
                                           f"{_digits(r, 3)} {_digits(r, 4)} ",
    "phone look-alikes (NANP)": lambda r: f"({_digits(r, 3)}) {_digits(r, 3)}-{_digits(r, 4)} ",
    "numbers after a phone word": lambda r: f"call {_digits(r, 9)} ",
    "card look-alikes": lambda r: "4" + " ".join(_digits(r, 4) for _ in range(4))[1:] + " ",
    "IBAN look-alikes": lambda r: "GB" + _digits(r, 2) + " WEST " + " ".join(
        _digits(r, 4) for _ in range(3)) + " " + _digits(r, 2) + " ",
    "IBAN look-alikes (plain)": lambda r: "FR76" + _digits(r, 23) + " ",
    "colon-hex (IPv6/MAC)": lambda r: ":".join(f"{r.randint(0, 255):02x}" for _ in range(6)) + " ",
    "colon runs": lambda r: ":".join(_digits(r, r.randint(1, 2)) for _ in range(40)) + " ",
    "at-signs (e-mail)": lambda r: f"a{r.randint(0, 9)}@b{r.randint(0, 9)}.c ",
    "document words": lambda r: r.choice(("passport no ", "Driver's license ", "PASSEPORT ",
                                          "permis de conduire ")) + _digits(r, 3) + " ",
    # a table header on every line (each would read the rows below it), and a table whose
    # rows are headers and values in turn
    "password table headers": lambda r: f"user{r.randint(0, 9)},password\n",
    "password headers and rows": lambda r: f"a,password\n{_digits(r, 2)},x\n",
    # real numbers, one finding each: linear in findings
    "phone numbers listed (FR)": lambda r: f"0{r.choice('67')} " + " ".join(
        _digits(r, 2) for _ in range(4)) + ", ",
    "phone numbers listed (+44)": lambda r: f"+44 20 7946 {_digits(r, 4)}, ",
    "card numbers listed": lambda r: _card(r) + ", ",
    "IBANs listed": lambda r: _iban(r) + ", ",
    "password tables (50 rows)": lambda r: "user,password\n" + "".join(
        f"user{_digits(r, 3)},Pw{_digits(r, 5)}x!\n" for _ in range(50)) + "\n",
    "prose with digits": _prose,
    # session 7's rules: a key word at every step, and values built to backtrack
    "flag names (--x-key)": lambda r: f"--k{r.randint(0, 9)}-key --api-key x{r.randint(0, 9)} ",
    "base64 keys on one line": lambda r: base64.b64encode(r.randbytes(32)).decode() + " ",
    # blocks wrapped over lines of one width: read as one run, then line by line
    "base64 lines of one width": lambda r: base64.b64encode(r.randbytes(57)).decode() + "\n",
    "hex lines of one width (xxd -p)": lambda r: r.randbytes(30).hex() + "\n",
    "base64 text lines of one width": lambda r: base64.b64encode(
        f"row {r.randint(0, 999):03d} of the export, nothing secret in it".encode()
        ).decode()[:76] + "\n",
    "dashed digit blocks": lambda r: "-".join(_digits(r, 6) for _ in range(3)) + " ",
    "user:pass@host": lambda r: f"u{r.randint(0, 9)}:Pw{_digits(r, 4)}x!@h{r.randint(0, 9)}.io ",
    # a chain of single characters: joined and scanned again by the split-token pass
    "characters spelt out one at a time": lambda r: r.choice("abcdefghijklmnopqrstuvwxyzABZ019_")
    + " ",
    "letter runs with dashes": lambda r: '"' + "".join(r.choice("abcdefghijklmnopqrstuvwxyz")
                                                       for _ in range(30)) + 'Q12-x-y+" ',
    # a secret word, then a value with brackets (read by `_TAIL_BRACKETS`), glued together
    "brackets after a secret word": lambda r: f"token=a{r.randint(0, 9)}(",
    # session 12: a secret word, its operator, then blanks (the default-after-an-expression
    # reader first backtracked over them: ~5 ms for one word and 100 blanks)
    "blanks after a secret word": lambda r: "password = " + " " * r.randint(60, 120) + "\n",
    # a password table's header, then a row of blanks (the Markdown rule test was quadratic
    # in them before session 12: 15 ms per KB); a secret word between runs of blanks
    "blank rows under a password header": lambda r: "| user | password |\n"
                                                    + "\t" * r.randint(600, 900) + "\n",
    "a secret word between blank runs": lambda r: "key" + " " * r.randint(3, 5),
    # a flood of secret words: every one is a place to read a value after (`pwd` between
    # them: twelve of BIP39's words in a row may pass the seed-phrase checksum)
    "a secret word repeated": lambda r: r.choice(("key", "token", "auth", "secret")) + " pwd ",
    "secret words joined by marks": lambda r: "key" + r.choice("_.-'"),
    "secret words before an operator word": lambda r: "auth " + r.choice(("is", "to", "a")) + " ",
    # session 18's access-code rules: a code's word, a lock's, a copula and short numbers at
    # every step; a chat's answers after a password's name; licence words (their rule's
    # regex first ran out of DFA memory on 32 KB of them and fell back to the slow NFA)
    "code words, locks and numbers": lambda r: r.choice(
        ("code ", "the door code is ", "kod do bramy ", "PIN which is ", "koodi on ")
    ) + _digits(r, 3) + " ",
    "chat answers after a password word": lambda r: f"password\nBob: its x{r.randint(0, 9)} ",
    "licence words": lambda r: r.choice(
        ("license ", "Lizenzschlüssel ", "llicència ", "ライセンス ")),
}

SIZES = (8 * KB, 32 * KB, 128 * KB, 512 * KB)


def us_per_kb(guard: Guard, text: str, repeat: int) -> tuple[float, bool]:
    """Best time per KB of a scan, and whether it ended on its budget (`Unscannable`: the
    text is refused or kept in-house; the time to get there is what counts)."""
    best, refused = float("inf"), False
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            guard.scan(text)
        except Unscannable:
            refused = True
        best = min(best, time.perf_counter() - t0)
    return best * 1e6 / (len(text) / KB), refused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 KB and 32 KB only")
    ap.add_argument("--only", default=None, help="the inputs whose name holds this text")
    ap.add_argument("--give-up", type=float, default=5.0,
                    help="skip larger sizes once a scan took longer than this (s)")
    args = ap.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    guard = Guard.from_config(GuardConfig())
    print(f"{'input':36}" + "".join(f"{s // KB:>9} KB" for s in sizes)
          + "   (µs per KB; r: refused, the scan's budget ran out)")
    for name, piece in INPUTS.items():
        if args.only and args.only not in name:
            continue
        row: list[str] = []
        slow = False
        for size in sizes:
            if slow:
                row.append(f"{'skipped':>12}")
                continue
            text = _repeat(piece, size)
            figure, refused = us_per_kb(guard, text, 3 if size <= 32 * KB else 1)
            slow = figure * size / KB / 1e6 > args.give_up
            row.append(f"{figure:>11,.0f}{'r' if refused else ' '}")
        print(f"{name:36}" + "".join(row), flush=True)
    if not args.quick and not args.only:
        text = _repeat(_prose, 1024 * KB, seed=2)
        figure, refused = us_per_kb(guard, text, 1)
        print(f"{'prose with digits, 1 MB':36}{figure:>11,.0f}{'r' if refused else ''}")


if __name__ == "__main__":
    main()

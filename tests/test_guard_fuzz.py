"""The guard never raises on what a client sends: texts stitched at random from every keyword
that arms a detector, the operators and quotes around values, arrays of bytes, numbers in
every format, machine-written tokens and awkward Unicode (seeded, so a failure reproduces).

A scan that raises would turn a request into a 500 or, worse, let a caller learn which text
breaks the guard; this found `key = [01, 02, …]` (a zero-padded byte array) raising.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import re

import pytest

from emancipate.guard import Guard, GuardConfig
from emancipate.guard.engine import builtin_rules
from emancipate.guard.secrets import GENERIC_KEYWORDS
from tests.regex_lint import nested_repetitions

GUARD = Guard.from_config(GuardConfig())
KEYWORDS = sorted(GENERIC_KEYWORDS) + sorted({k for r in builtin_rules() for k in r.keywords})
OPERATORS = ["=", ":", " = ", ": ", ":=", "=>", " is ", '"', "'", "`", "[", "]", "{", "}",
             "(", ")", ",", ";", "\n", "\r\n", "\t", "|", "@", "://", "/", "\\", "-", "_",
             ".", "#", "%", "$", "${", "{{", "<", ">", "&", "?", "!", "*", "**", " ", "\\n",
             '\\"', "0x", "+", "~"]
ODD = ["é", "ü", "中文", "🔑", "\u200b", "\u202e", "ß", "Ω", "ﬁ", "\x00", "\ufeff", "İ", "ǅ",
       "٣", "²", "Ⅻ", "\U0001f600"]
ALPHABETS = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
             "abcdefABCDEF0123456789",
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-"]


def _text(rnd: random.Random) -> str:
    def number() -> str:
        k = rnd.random()
        if k < 0.3:
            return str(rnd.randint(0, 999)).zfill(rnd.choice([1, 2, 3]))
        if k < 0.5:
            return hex(rnd.randint(0, 255)).replace("0x", rnd.choice(["0x", "0X"]))
        if k < 0.7:
            return str(rnd.randint(0, 10 ** rnd.randint(1, 25)))
        return "".join(rnd.choice("0123456789 -.+()") for _ in range(rnd.randint(1, 20)))

    def byte() -> str:
        b = rnd.randint(0, 255)
        return hex(b) if rnd.random() < 0.3 else str(b).zfill(rnd.choice([1, 2, 3]))

    def fragment() -> str:
        k = rnd.random()
        if k < 0.05:  # a secret's name given an array
            return (rnd.choice(KEYWORDS) + rnd.choice(["=", ": ", " = ", " ", '"'])
                    + rnd.choice(["[", "{", "(", '"', "'"])
                    + ", ".join(byte() for _ in range(rnd.randint(10, 30))))
        if k < 0.25:
            return rnd.choice(KEYWORDS)
        if k < 0.5:
            return rnd.choice(OPERATORS)
        if k < 0.62:
            return number()
        if k < 0.65:
            return (rnd.choice("[{(") + ", ".join(number() for _ in range(rnd.randint(10, 30)))
                    + rnd.choice(["]", "}", ")", ""]))
        if k < 0.9:
            alphabet = rnd.choice(ALPHABETS)
            return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 70)))
        return rnd.choice(ODD)

    text = "".join(fragment() for _ in range(rnd.randint(1, 60)))
    return text.upper() if rnd.random() < 0.3 else text


@pytest.mark.parametrize("seed", range(4))
def test_no_text_makes_the_scan_raise(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(500):
        text = _text(rnd)
        findings = GUARD.scan(text)
        for f in findings:  # (findings of two views may overlap: the policy joins them)
            assert 0 <= f.start < f.end <= len(text), (text, f)
        GUARD.scan_request({"messages": [{"role": "user", "content": text}]})


def _backtracking_bait() -> list[str]:
    """Values shaped to make a regex with nested repetition backtrack exponentially: long
    runs of one letter class, joined by separators, ending in a character that makes the
    match fail (the value checks read such values with Python's `re`, which backtracks)."""
    runs = ["qwertyuiopasdfghjklzxcvbnm", "abcdefghij" * 4, "AbCdEfGhIjKlMnOpQrStUvWx",
            "a1b2c3d4e5f6g7h8i9j0" * 2]
    out = []
    for run in runs:
        for sep in "-_./+":
            for tail in ("Q12" + sep + "x" + sep + "y+", sep * 3 + "!", "+" + run[::-1]):
                value = run + tail
                out += [f'token = "{value}"', f"secret: {value}", f"key={value}",
                        f"password = '{value}'", f'"k": "{value * 3}"', f"--api-key {value}"]
    return out


def test_values_built_to_backtrack_are_scanned_alike_every_time() -> None:
    """The bait values give findings inside the text, the same on a second scan (what
    keeps them from freezing the guard is the structural test below)."""
    for text in _backtracking_bait():
        found = GUARD.scan(text)
        assert all(0 <= f.start < f.end <= len(text) for f in found), text
        assert GUARD.scan(text) == found, text


def _guard_patterns() -> list[tuple[str, re.Pattern[str]]]:
    import emancipate.guard as guard
    out = []
    for info in pkgutil.iter_modules(guard.__path__):
        module = importlib.import_module(f"emancipate.guard.{info.name}")
        out += [(f"{info.name}.{name}", v) for name, v in vars(module).items()
                if isinstance(v, re.Pattern)]
    return out


def test_no_guard_regex_nests_a_repetition_nothing_delimits() -> None:
    """One request must not freeze the guard. `random_token`'s joined-name regex once
    nested `(?:[A-Z]?[a-z]+)+` in a repetition: 3.7 s on a 33-character value, doubling with
    each letter more (Python's `re` backtracks). Every regex the guard's modules compile
    for `re` is read for such nesting (`tests/regex_lint.py`); no time is measured."""
    patterns = _guard_patterns()
    assert len(patterns) > 100
    assert [name for name, p in patterns if nested_repetitions(p)] == []


def test_the_nesting_check_finds_the_regex_that_froze_the_guard() -> None:
    letters = r"(?:[A-Z]?[a-z]+|[A-Z]+(?![a-z]))+"
    frozen = re.compile(rf"(?:{letters}\d*|\d+)(?:[-_.](?:{letters}\d*|\d+)){{2,}}")
    fixed = re.compile(r"(?:[A-Za-z]+[0-9]*|[0-9]+)(?:[-_.](?:[A-Za-z]+[0-9]*|[0-9]+)){2,}")
    assert nested_repetitions(frozen)
    assert nested_repetitions(fixed) == []
    assert nested_repetitions(re.compile(r"(?:\w+\.)+\w+")) == []  # `.` ends each part
    assert nested_repetitions(re.compile(r"(?:a+b?)+c"))  # nothing required but `a+`

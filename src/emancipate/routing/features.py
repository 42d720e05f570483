"""Prompt features of the independence router that carry across subjects and data sets.

Pure Python over the prompt (no numpy on this path), built from C-level string operations
and two regular expressions so that a decision stays well under 0.2 ms:

* the prior features: a few numbers measured on any prompt — its length, how much of it is
  numbers, maths or code, its question format, its language (share of non-ASCII bytes) and
  two lexical statistics. These are the priors a router can carry to data it never saw.
* the words: the lower-cased prompt split on white space and punctuation, for the optional
  word model, the online estimate and a prompt's distance to the training data.

Everything but the length reads at most `MAX_CHARS` characters: a 100 kB prompt costs what a
2 kB one does. The length is the whole prompt's.
"""

from __future__ import annotations

import math
import re
import string

MAX_CHARS = 2_000
# An answer option's line (`A. …`, `(B) …`): the first line, then every line after a newline
# (led by the `\n` literal, which `re` searches for; `(?m)^` tried every position: 11 µs
# on a 2,000-character prompt instead of 1).
_OPTION_FIRST = re.compile(r"[ \t]*\(?[A-J][.)][ \t]?([^\n]*)")
_OPTION_NEXT = re.compile(r"\n[ \t]*\(?[A-J][.)][ \t]?([^\n]*)")
# Punctuation becomes a space, then str.split: three times faster than a token regex. One
# `str.replace` per punctuation mark present, not `str.translate`: translate leaves CPython's
# ASCII fast path on a text holding one character outside ASCII (a curly quote, an accent):
# 180 µs instead of 20 µs for 2,000 characters; replace costs the same on both.
_PUNCTUATION = string.punctuation + "“”‘’–—…«»¿¡·"
# Counted in the prompt's UTF-8 bytes, not in the str: on a text holding one character
# outside ASCII, `str.count` and a `str` regex leave CPython's one-byte fast path (2-3x
# slower); counting a character's UTF-8 bytes gives the same count. Numbers are runs of
# ASCII digits (a `str` regex's `\d` also takes other scripts' digits). Each count is
# one C pass over the bytes (`bytes.count` of a 2,000-byte prompt costs ~1.5 µs, a regex's
# `findall` of the digit runs ~20 µs on a prompt full of numbers): digits become b"1" and
# everything else b"0", so the runs of digits are the b"01" pairs; the ASCII maths and code
# characters are counted by deleting them all at once; a word is counted only when a
# character it needs is there (b"": always).
_DIGIT_MARKS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_MATHS_ASCII = b"=+*/^<>%$\\"
_MATHS_OTHER = tuple(c.encode() for c in "≤≥√∫∑πθ∞")
_CODE_ASCII = b"{};"
_CODE_WORDS = ((b"==", b"="), (b"!=", b"!"), (b"->", b">"), (b"print(", b"("),
               (b"```", b"`"), (b"def ", b""), (b"return", b""), (b"import ", b""))


def _digit_runs(raw: bytes) -> int:
    """The number of runs of ASCII digits in `raw`."""
    marks = raw.translate(_DIGIT_MARKS)
    return marks.count(b"01") + (marks[:1] == b"1")


def _maths(raw: bytes, ascii_only: bool) -> int:
    found = len(raw) - len(raw.translate(None, _MATHS_ASCII))
    return found if ascii_only else found + sum(raw.count(c) for c in _MATHS_OTHER)


def _code(raw: bytes) -> int:
    found = len(raw) - len(raw.translate(None, _CODE_ASCII))
    return found + sum(raw.count(w) for w, need in _CODE_WORDS if need in raw)


# name -> family; the order is the feature vector's
FEATURES: dict[str, str] = {
    "log_chars": "length",
    "log_question_chars": "length",
    "log_option_chars": "length",
    "log_lines": "length",
    "number_share": "numbers-maths-code",
    "log_numbers": "numbers-maths-code",
    "maths_share": "numbers-maths-code",
    "log_code": "numbers-maths-code",
    "two_statements": "format",
    "negation": "format",
    "which_of_following": "format",
    "question_mark": "format",
    "blank": "format",
    "options": "format",
    "non_ascii_share": "language",
    "word_length": "lexical",
    "distinct_word_share": "lexical",
}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(FEATURES.values()))
OPTIONS = list(FEATURES).index("options")  # the answer format: the number of options


def rare_format(shares: dict[str, float], options: float, rare: float) -> bool:
    """An answer format (number of options) held by fewer than `rare` of the training
    prompts (`shares`: the share per number of options): one the router has not learned."""
    return shares.get(str(int(options)), 0.0) < rare


def _spaced(text: str) -> str:
    """`text` with every punctuation mark replaced by a space."""
    for c in _PUNCTUATION:
        if c in text:
            text = text.replace(c, " ")
    return text


def _options(head: str) -> list[tuple[int, int]]:
    """(where its line starts, the length of its text) of each answer option of `head`."""
    first = _OPTION_FIRST.match(head)
    found = [(0, len(first.group(1)))] if first else []
    found.extend((m.start() + 1, len(m.group(1))) for m in _OPTION_NEXT.finditer(head))
    return found


def view(prompt: str) -> tuple[list[float], list[str]]:
    """(prior features in `FEATURES` order, lower-cased words) of one prompt."""
    head = prompt[:MAX_CHARS]
    low = head.lower()
    words = _spaced(low).split()
    n, n_words = len(head), len(words)
    found = _options(head)
    question = head[: found[0][0]] if found else head
    option_chars = sum(k for _, k in found) / len(found) if found else 0.0
    raw = head.encode("utf-8", "surrogatepass")
    numbers = _digit_runs(raw)
    maths = _maths(raw, len(raw) == n)
    code = _code(raw)
    features = [
        math.log1p(len(prompt)),
        math.log1p(len(question)),
        math.log1p(option_chars),
        math.log1p(head.count("\n")),
        numbers / (1 + n_words),
        math.log1p(numbers),
        100.0 * maths / (1 + n),
        math.log1p(code),
        1.0 if "statement 1" in low else 0.0,
        1.0 if ("NOT" in head or "EXCEPT" in head or "LEAST" in head) else 0.0,
        1.0 if "which of the following" in low else 0.0,
        1.0 if question.rstrip().endswith("?") else 0.0,
        1.0 if "__" in head else 0.0,
        float(min(len(found), 10)),
        (len(raw) - n) / (1 + n),
        sum(map(len, words)) / n_words if n_words else 0.0,
        len(set(words)) / (1 + n_words),
    ]
    return features, words

"""The normalised view the detectors read, and the way back to the original offsets.

A value written to slip past a pattern is still the value: `AKIA` with a zero-width space
inside, full-width `ＡＫＩＡ`, Cyrillic `АКІА`, `\\u0041KIA` inside JSON arguments,
`%41KIA` in a URL, the whole prompt in base64, `jeanne (at) example (dot) fr`. `view_of`
rewrites a string into what it means:

* NFKC per character (full-width and compatibility forms), then Cyrillic and Greek letters
  that look Latin folded to Latin (`CONFUSABLES`, only the look-alikes);
* removed: format characters (zero-width spaces and joiners, soft hyphen, bidi marks, BOM),
  control characters but tab and newlines (NUL…), combining marks;
* decoded: JSON `\\uXXXX` escapes (surrogate pairs too), runs of `%XX`, `\\xXX` and octal
  `\\ooo` that decode to printable UTF-8, and HTML character references (`&quot;`);
* removed whole: terminal colour codes (`ESC[94m`), so a coloured log reads as its text;
* e-mails spelt out: `(at)`, `[at]`, `{at}` and `(dot)`…, and `name at host dot tld`.

`Offsets` maps a view offset back to the original: one-for-one stretches exactly, a
rewritten chunk (an escape, `(at)`) as a whole, so a finding in the view redacts the
original characters that wrote it.

`decoded_of` finds base64 and hex spans (16+ characters, decoding to mostly printable text)
and returns their text as extra views whose every finding maps to the whole encoded span.

Cost: ASCII text with none of `\\u`, `%XX`, control characters, `(at)`/` at … dot ` is
returned as is after one regex search (the fast path); otherwise work is linear in the
text (every regex here is anchored so that no position is read twice per match attempt).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

# Letters of other scripts drawn like Latin ones (Unicode's confusables.txt, cut to the
# Cyrillic and Greek letters whose glyph is a Latin letter's in common fonts).
CONFUSABLES = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q",
    "Ԝ": "W", "Ү": "Y", "Ӏ": "I", "а": "a", "е": "e", "о": "o", "р": "p", "с": "c",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ү": "y", "ɡ": "g", "ӏ": "l",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v",
    "α": "a", "ι": "i", "κ": "k", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c",
    "ϳ": "j",
}

# What a view rewrites, one regex each: one regex with alternatives reads every position
# through each branch (0.15 s per MB of prose); a single class or a literal-led pattern is
# scanned in C at ~100 MB/s, and most are skipped after a substring test.
# Latin-1 letters and Latin Extended-A are left alone (French, German, Spanish… text stays
# cheap); every other non-ASCII character is looked at.
_OTHER = r"[^\t\n\r\x20-\x7e\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e]+"
# A run of other-script words with the spaces and punctuation between them: one run per
# sentence of Russian or Greek, not one per word.
_CHARS = re.compile(_OTHER + r"(?:[ ,.;:!?'\"()-]+" + _OTHER + ")*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
# Led by a literal, not by a group (`(?:%[0-9A-Fa-f]{2})+`): `re` then finds the literal
# first with a fast search instead of trying the pattern at every position (2 KB: 1 µs, not
# 30 µs: prose with a percentage paid that).
_ESC = re.compile(r"\\u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4})*")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")
# C, Python, shell and JavaScript byte escapes: `\x41\x4b\x49\x41` (two or more: a lone
# `\x1b` is a control code), and their octal form (`printf '\101\113'`)
_HEX_ESC = re.compile(r"\\x[0-9A-Fa-f]{2}(?:\\x[0-9A-Fa-f]{2})+")
_OCT_ESC = re.compile(r"\\[0-3][0-7]{2}(?:\\[0-3][0-7]{2})+")
# A terminal colour or cursor code (`\x1b[94m`), removed whole: a log pasted from a terminal
# writes `\x1b[94msq0csp-…`, and with only the ESC removed `m` would stick to the token.
_ANSI = re.compile(r"\x1b\[[0-9;?]{0,16}[ -/]{0,2}[@-~]")
# Escapes of escapes before a quote: JSON written into a JSON string twice or more
# (`{\\\"api_key\\\":\\\"…\\\"}`); the readers take one `\"` themselves, so a run
# of two or more backslashes is dropped from the view. (Two literal backslashes lead the
# pattern, so `re` finds them with a fast search: `\\{2,}` was tried at every position,
# ~15 µs per 2 KB of text holding a Windows path.)
_ESCAPED_QUOTE = re.compile(r"\\\\\\*(?=[\"'])")
# HTML character references (`token=&quot;…&quot;` in a page's source), decoded.
_ENTITY = re.compile(r"&(?:quot|apos|amp|lt|gt|nbsp|#[0-9]{2,5}|#[xX][0-9a-fA-F]{2,4});")
_ENTITIES = {"quot": '"', "apos": "'", "amp": "&", "lt": "<", "gt": ">", "nbsp": " "}
_AT = re.compile(r"[(\[{<][ \t]?(?i:at|dot)[ \t]?[)\]}>]")
_DOT = re.compile(r"(?i) dot ")  # what `_SPELT` needs (lowering the text costs twice this)
_SPELT = re.compile(
    r"(?<![\w.+-])[\w.+-]++[ \t]+(?i:at)[ \t]+[\w-]++(?:[ \t]+(?i:dot)[ \t]+[\w-]++)+")
_SPELT_AT = re.compile(r"[ \t]+(?i:at)[ \t]+")
_SPELT_DOT = re.compile(r"[ \t]+(?i:dot)[ \t]+")
# A base64 run, as a regex: what `_b64_runs` finds faster (the tests hold it to this).
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_REMOVED_CATEGORIES = frozenset({"Cf", "Cc", "Mn", "Me", "Cs", "Co"})
_NOT_PRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def _removal_table() -> dict[int, str | None]:
    """str.translate table: removed characters to None, confusables to their Latin letter
    (the Basic Multilingual Plane is scanned once at import, ~20 ms; tags and variation
    selectors of the other planes are added by range)."""
    table: dict[int, str | None] = {}
    for cp in range(0x80, 0x10000):
        if unicodedata.category(chr(cp)) in _REMOVED_CATEGORIES:
            table[cp] = None
    for cp in (*range(0xE0000, 0xE0080), *range(0xE0100, 0xE01F0), 0x1D173, 0x1D174,
               0x1D175, 0x1D176, 0x1D177, 0x1D178, 0x1D179, 0x1D17A):
        table[cp] = None
    for k in (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0E, 0x0F,
              *range(0x10, 0x20), 0x7F):
        table[k] = None
    table.update({ord(k): v for k, v in CONFUSABLES.items()})
    return table


_TABLE = _removal_table()
# Capitals drawn like a Latin letter whose small letter is not drawn like its small letter
# (Cyrillic `Н` is `H`, `н` is not `h`; Greek `Ν` is `N`, `ν` is `v`): in a word of that
# script written in capitals (`ПИН`, `КОД`) they would make it another word than in lower
# case, which the word lists hold. A run of such a script keeps them unless it touches a
# Latin letter or digit (`ТОKEN`, `АКІА…`); a word of look-alikes only (`КЕУ`, a series
# `КХО`) spells a Latin word.
_ONE_CASE = {k for k, v in CONFUSABLES.items()
             if k.isupper() and CONFUSABLES.get(k.lower()) != v.lower()}
_TABLE_CASED = {cp: v for cp, v in _TABLE.items() if chr(cp) not in _ONE_CASE}
_ONE_CASE_CHAR = re.compile("[" + "".join(sorted(_ONE_CASE)) + "]")
# a word of look-alikes only, once the others are Latin (`КХО` is `КXO`): it spells Latin
_LOOKALIKE_WORD = re.compile(r"(?<!\w)[A-Za-z" + "".join(sorted(CONFUSABLES)) + r"]+(?!\w)")


def _spelt_latin(m: re.Match[str]) -> str:
    return m.group().translate(_TABLE)


MAX_DEPTH = 2  # base64 inside base64: read twice, no more


class Offsets:
    """View offsets to original offsets. `runs`: (view start, original start, original end,
    one-for-one); offsets inside a rewritten chunk map to the chunk's start (or end)."""

    __slots__ = ("_starts", "_runs", "_span")

    def __init__(self, runs: list[tuple[int, int, int, bool]] | None = None,
                 span: tuple[int, int] | None = None) -> None:
        self._runs = runs or []
        self._starts = [r[0] for r in self._runs]
        self._span = span  # every offset maps to this span (decoded text)

    def start(self, v: int) -> int:
        if self._span is not None:
            return self._span[0]
        if not self._runs:
            return v
        r = self._runs[max(0, bisect.bisect_right(self._starts, v) - 1)]
        return r[1] + (v - r[0]) if r[3] else r[1]

    def end(self, v: int) -> int:
        if self._span is not None:
            return self._span[1]
        if not self._runs:
            return v
        r = self._runs[max(0, bisect.bisect_right(self._starts, v - 1) - 1)]
        return r[1] + (v - r[0]) if r[3] else r[2]

    def then(self, inner: Offsets) -> Offsets:
        """`inner` maps a text derived from this view: compose them (decoded spans)."""
        if inner._span is not None:
            return Offsets(span=(self.start(inner._span[0]), self.end(inner._span[1])))
        return inner if not self._runs and self._span is None else _Composed(self, inner)


class _Composed(Offsets):
    __slots__ = ("_outer", "_inner")

    def __init__(self, outer: Offsets, inner: Offsets) -> None:
        super().__init__()
        self._outer, self._inner = outer, inner

    def start(self, v: int) -> int:
        return self._outer.start(self._inner.start(v))

    def end(self, v: int) -> int:
        return self._outer.end(self._inner.end(v))


IDENTITY = Offsets()


@dataclass(slots=True)
class View:
    """A normalised text and how to map its offsets back (`IDENTITY`: the text itself)."""

    text: str
    offsets: Offsets


class _Builder:
    __slots__ = ("parts", "runs", "length")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.runs: list[tuple[int, int, int, bool]] = []
        self.length = 0

    def add(self, text: str, start: int, end: int, exact: bool) -> None:
        if not text:
            return
        if exact and self.runs and self.runs[-1][3]:
            vs, os_, oe, _ = self.runs[-1]
            if oe == start and vs + (oe - os_) == self.length:  # extends the exact run
                self.runs[-1] = (vs, os_, end, True)
                self.parts.append(text)
                self.length += len(text)
                return
        self.runs.append((self.length, start, end, exact))
        self.parts.append(text)
        self.length += len(text)


# Substring tests that rule a regex out (C speed, ~0.1 µs per 2 KB each): `re` reads a
# character class at ~6 ns a character, 12 µs for 2 KB of prose.
_PRINTABLE_ASCII = bytes([9, 10, 13, *range(32, 127)])
# A one-character needle is a memchr (~0.05 µs per 2 KB); a longer one whose characters
# are frequent in prose costs ~1.5 µs. So: one character first, the regex only if present.
_CLOSERS = ")]}>"
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_B64_MASK = bytes(0x61 if b in _B64_ALPHABET else 0x20 for b in range(256))
_SIXTEEN = b"a" * 16
_HEX_DIGITS = b"0123456789abcdefABCDEF"
# the Latin-1 bytes `_OTHER` leaves alone: tab, line breaks, printable ASCII, letters
_LATIN_KEPT = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0xC0, 0xD7), *range(0xD8, 0xF7),
                     *range(0xF8, 0x100)])

Special = tuple[int, int, str]  # start, end, kind of rewrite


def _specials(text: str) -> list[Special]:
    """What `view_of` rewrites: (start, end, kind), sorted, not overlapping."""
    found: list[tuple[int, int, str]] = []
    if not text.isascii():
        if not _latin_letters_only(text):
            found.extend((m.start(), m.end(), "chars") for m in _CHARS.finditer(text))
    elif text.encode("ascii").translate(None, _PRINTABLE_ASCII):
        found.extend((m.start(), m.end(), "chars") for m in _CONTROL.finditer(text))
    backslash = "\\" in text  # one character: a memchr; a pair is ~1.8 µs per 2 KB
    if backslash and "\\u" in text:
        found.extend((m.start(), m.end(), "esc") for m in _ESC.finditer(text))
    if "%" in text:
        found.extend((m.start(), m.end(), "pct") for m in _PCT.finditer(text)
                     if not _literal_percent(text, m.start(), m.end()))
    if backslash and "\\x" in text:
        found.extend((m.start(), m.end(), "hexesc") for m in _HEX_ESC.finditer(text))
    if backslash:
        found.extend((m.start(), m.end(), "octesc") for m in _OCT_ESC.finditer(text))
    if "\x1b" in text and "\x1b[" in text:
        found.extend((m.start(), m.end(), "removed") for m in _ANSI.finditer(text))
    if backslash and "\\\\" in text:
        found.extend((m.start(), m.end(), "removed") for m in _ESCAPED_QUOTE.finditer(text))
    if "&" in text and ";" in text:
        found.extend((m.start(), m.end(), "entity") for m in _ENTITY.finditer(text))
    if any(c in text for c in _CLOSERS):
        for m in _AT.finditer(text):  # with the spaces around: `jeanne (at) example`
            s, e = m.span()
            s -= 1 if s > 0 and text[s - 1] in " \t" else 0
            e += 1 if e < len(text) and text[e] in " \t" else 0
            found.append((s, e, "at"))
    if _DOT.search(text):
        found.extend((m.start(), m.end(), "spelt") for m in _SPELT.finditer(text))
    if len(found) > 1:
        found.sort(key=lambda f: (f[0], -f[1]))  # the longer of two at one place: the code
        kept = [found[0]]
        for f in found[1:]:
            if f[0] >= kept[-1][1]:
                kept.append(f)
        found = kept
    if text.isascii():
        return found
    # A short run of other characters that the view writes as it is (typography: `’`, `—`,
    # `« »`, `“ ”`) is not rewritten: it stays in the text around it, and a text holding no
    # other rewrite is read as it is (dropped after the overlaps are settled, so that it
    # still wins the ones it won). Long runs (a sentence of another script) are left to
    # `_chars`: testing them would cost as much as rewriting them.
    return [f for f in found if f[2] != "chars" or f[1] - f[0] > _SHORT_RUN
            or _rewritten(text[f[0]:f[1]])]


_SHORT_RUN = 8


@functools.lru_cache(maxsize=4096)
def _rewritten(run: str) -> bool:
    """`_chars` writes `run` otherwise than as it is. (Cached: typography is a few short
    runs, `’`, `—`, `“`, repeated all over a text.)"""
    return not unicodedata.is_normalized("NFKC", run) or run.translate(_TABLE) != run


def _latin_letters_only(text: str) -> bool:
    """Nothing `_CHARS` finds: every character printable ASCII, a line break or a Latin-1
    letter (French, German, Spanish text). Two C calls, where `_CHARS` reads ~10 ns a
    character (~20 µs per 2 KB of French); a character past Latin-1 (`’`, `œ`) answers False
    and `_CHARS` decides."""
    try:
        return not text.encode("latin-1").translate(None, _LATIN_KEPT)
    except UnicodeEncodeError:
        return False


def specials_each(texts: list[str]) -> list[list[Special]]:
    """What `view_of` rewrites in each of `texts`, found in one pass over them joined by
    newlines (a request's strings: a pass costs ~5 µs on ASCII, ~25–50 µs per 2 KB on other
    text, and tiny strings would each pay its fixed cost). No rewrite spans a newline and
    none looks past one, so each text's share is what `_specials` finds in it alone; but
    for control characters an ASCII text is read with `_CONTROL`, not `_CHARS`, so such a
    text is read again alone."""
    found = _specials("\n".join(texts))
    out: list[list[Special]] = []
    i, base = 0, 0
    for t in texts:
        end = base + len(t)
        mine: list[Special] = []
        while i < len(found) and found[i][0] < end:
            s, e, kind = found[i]
            mine.append((s - base, e - base, kind))
            i += 1
        if mine and t.isascii() and any(kind == "chars" for _, _, kind in mine):
            mine = _specials(t)
        out.append(mine)
        base = end + 1
    return out


def maybe_base64(text: str) -> bool:
    """A run of 16 base64 characters somewhere in `text` (two C calls)."""
    return _maybe_base64(text)


def view_of(text: str, found: list[Special] | None = None) -> View:
    """The normalised view of `text` (the text itself on the fast path); `found`: its
    `specials_each` share, when already known."""
    if found is None:
        found = _specials(text)
    if not found:
        return View(text, IDENTITY)
    out = _Builder()
    pos = 0
    for s, e, kind in found:
        out.add(text[pos:s], pos, s, True)
        raw = text[s:e]
        if kind == "chars":
            _chars(raw, s, out, (s > 0 and text[s - 1].isascii() and text[s - 1].isalnum())
                   or (e < len(text) and text[e].isascii() and text[e].isalnum()))
        elif kind == "esc":
            folded = _folded(_unescape(raw))
            out.add(folded, s, e, False)
        elif kind in _BYTE_ESCAPES:
            decoded = _unquote(raw, *_BYTE_ESCAPES[kind])
            if decoded is None:
                out.add(raw, s, e, True)
            else:
                out.add(_folded(decoded), s, e, False)
        elif kind == "removed":
            pass  # a colour code, escapes of escapes: the next run maps back to the
            # original after it
        elif kind == "entity":
            out.add(_entity(raw[1:-1]), s, e, False)
        elif kind == "at":
            word = raw.strip(" \t")[1:-1].strip(" \t").lower()
            out.add("@" if word == "at" else ".", s, e, False)
        else:  # spelt-out e-mail: `jeanne at example dot fr`
            out.add(_SPELT_DOT.sub(".", _SPELT_AT.sub("@", raw, count=1)), s, e, False)
        pos = e
    out.add(text[pos:], pos, len(text), True)
    return View("".join(out.parts), Offsets(out.runs))


def _fold_char(ch: str) -> str:
    """One character: removed (invisible, control, combining), or NFKC then confusables."""
    if ch in "\t\n\r":
        return ch
    if unicodedata.category(ch) in _REMOVED_CATEGORIES:
        return ""
    nk = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
    if len(nk) == 1:
        return CONFUSABLES.get(nk, nk)
    return "".join(CONFUSABLES.get(c, c) for c in nk
                   if unicodedata.category(c) not in _REMOVED_CATEGORIES)


def _folded(text: str) -> str:
    if text.isascii() and _NOT_PRINTABLE.search(text) is None:
        return text
    return "".join(map(_fold_char, text))


def _chars(run: str, start: int, out: _Builder, latin_beside: bool) -> None:
    """A run of special characters: in two C calls when NFKC leaves it alone and nothing in
    it is removed (another script, emoji, symbols), else one by one. `latin_beside`: a Latin
    letter or digit touches the run (`_ONE_CASE`)."""
    if unicodedata.is_normalized("NFKC", run):
        if latin_beside:
            folded = run.translate(_TABLE)
        else:
            folded = run.translate(_TABLE_CASED)
            if _ONE_CASE_CHAR.search(folded) is not None:
                folded = _LOOKALIKE_WORD.sub(_spelt_latin, folded)
        if len(folded) == len(run):
            out.add(folded, start, start + len(run), True)
            return
    for k, ch in enumerate(run):
        folded = _fold_char(ch)
        if folded == ch:
            out.add(ch, start + k, start + k + 1, True)
        elif folded:
            out.add(folded, start + k, start + k + 1, len(folded) == 1)


def _entity(name: str) -> str:
    if name[0] != "#":
        return _ENTITIES[name]
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    return _folded(chr(code)) if 0x20 <= code < 0x110000 and not 0xD800 <= code < 0xE000 else ""


_URL_BEFORE = re.compile(r"[/?=&][^\s/?=&]*$")
_URL_MARKS = frozenset("=&/?#:+%;,")


def _literal_percent(text: str, s: int, e: int) -> bool:
    """One `%XX` inside a word that would decode to a mark, not a letter or a digit, nor one
    a URL is built of (`spedizioni%60q`, `p%40ss`): a password's own characters, left as
    written (an obfuscated key spells its letters: `%41KIA`)."""
    if e - s != 3 or s == 0 or e == len(text):
        return False
    ch = chr(int(text[s + 1:e], 16))
    if not text[s - 1].isalnum() or not text[e].isalnum() or ch.isalnum() or ch in _URL_MARKS:
        return False  # (`token%3Dh1d3…`, `%2FFb9w…`: a query string's or a path's marks, decoded)
    # an encoded blank is decoded in a URL (`…:a%20secret@host`), not in a word of prose
    # (`mot de passe provisoire Marelle%2010`)
    return not ch.isspace() or _URL_BEFORE.search(text, max(0, s - 64), s) is None


def _unescape(escapes: str) -> str:
    units = [int(escapes[i + 2:i + 6], 16) for i in range(0, len(escapes), 6)]
    return b"".join(u.to_bytes(2, "big") for u in units).decode("utf-16-be",
                                                                errors="replace")


# kind -> (width of one escape, digits of its byte at its end, base)
_BYTE_ESCAPES = {"pct": (3, 2, 16), "hexesc": (4, 2, 16), "octesc": (4, 3, 8)}


def _unquote(run: str, width: int, digits: int, base: int) -> str | None:
    """The text of a run of byte escapes `width` characters long each (`%4B`, `\\x4b`,
    `\\113`), the byte's `digits` last in each; None unless it is printable UTF-8."""
    raw = bytes(int(run[i + width - digits:i + width], base)
                for i in range(0, len(run), width))
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if _printable(decoded) else None


def _printable(text: str) -> bool:
    """Mostly text: at least 95 % printable characters or whitespace."""
    if not text:
        return False
    if text.count("\ufffd") * 20 > len(text):  # bytes that are not UTF-8: one C call
        return False
    return len(_NOT_PRINTABLE.findall(text)) * 20 <= len(text)


def viewed_words(words: Iterable[str]) -> tuple[str, ...]:
    """Words (of a word list matched against scanned text) as the view writes them, in lower
    case: it drops combining marks (Thai and Devanagari words lose their vowel signs and
    viramas: `มือถือ` is `มอถอ`) and writes Cyrillic and Greek letters drawn like Latin ones
    as Latin (`κράτησης` is `kpάtησης`); each once."""
    return tuple(dict.fromkeys(view_of(w).text.lower() for w in words))


def decoded_of(view: View, depth: int = 1, budget: int | None = None) -> list[View]:
    """Base64 and hex spans of `view` that decode to text, each as a normalised view whose
    offsets map to the encoded span in the original (nested once: `MAX_DEPTH`). `budget`
    bounds the characters decoded in total (default: the text's own length)."""
    out: list[View] = []
    left = len(view.text) if budget is None else budget
    if left <= 0:
        return out
    for start, end, text in _decoded_runs(view.text):
        if text is None:
            continue
        span = Offsets(span=(view.offsets.start(start), view.offsets.end(end)))
        inner = view_of(text)
        out.append(View(inner.text, span))
        if depth < MAX_DEPTH:
            for nested in decoded_of(inner, depth + 1, end - start):
                out.append(View(nested.text, span))
        left -= end - start
        if left <= 0:
            break
    return out


def _b64_runs(text: str, mask: bytes | None = None) -> Iterator[tuple[int, int]]:
    """The spans of `_B64_RUN.finditer(text)`: runs of 16 base64 characters or more and up to
    two `=` after them. Found in the text's mask (`base64_mask`) with `bytes.find`: the regex
    reads every position (~25 µs per 2 KB), the searches skip along at C speed."""
    mask = base64_mask(text) if mask is None else mask
    start = mask.find(_SIXTEEN)
    while start != -1:  # a maximal run: the search starts after the previous one's end
        end = _run_end(text, mask, start)
        yield start, end
        start = mask.find(_SIXTEEN, end)


def _run_end(text: str, mask: bytes, start: int) -> int:
    """The end of the base64 run at `start`, with up to two `=` after it."""
    end = mask.find(b" ", start)
    end = len(mask) if end == -1 else end
    stop = end
    while stop < end + 2 and text.startswith("=", stop):
        stop += 1
    return stop


def _decoded_runs(text: str) -> Iterator[tuple[int, int, str | None]]:
    """The base64 and hex runs of `text` (`_b64_runs`) and what they decode to
    (`decoded_text`), a run wrapped over lines of one width decoded as one run without its
    line breaks: `base64` wraps at 76 characters, `xxd -p` at 60, PEM at 64 (each line
    decoded alone would cut a secret in two, or not decode at all). Every line but the last
    is as long as the first; the last may be shorter than 16 characters (or a word after
    the block: then the block is tried without it). Lines that do not decode together (a
    list of keys of one length) are decoded one by one."""
    mask = base64_mask(text)
    consumed = 0
    for start, end in _b64_runs(text, mask):
        if start < consumed:
            continue  # a line of the previous run
        width = end - start
        lines = [(start, end)]
        while text[end - 1] != "=":  # padding ends an encoding
            if end < len(text) and text[end] == "\n":
                nxt = end + 1
            elif text.startswith("\r\n", end):
                nxt = end + 2
            else:
                break
            if nxt >= len(text) or mask[nxt] == 0x20:
                break
            stop = _run_end(text, mask, nxt)
            if stop - nxt > width:
                break
            lines.append((nxt, stop))
            end = stop
            if stop - nxt < width:
                break
        consumed = end
        if len(lines) == 1:
            yield start, end, decoded_text(text[start:end])
            continue
        joined = decoded_text("".join(text[a:b] for a, b in lines))
        if joined is not None:
            yield start, end, joined
            continue
        if len(lines) > 2 and lines[-1][1] - lines[-1][0] < width:  # a word after the block
            joined = decoded_text("".join(text[a:b] for a, b in lines[:-1]))
            if joined is not None:
                yield start, lines[-2][1], joined
                a, b = lines[-1]
                if b - a >= 16:
                    yield a, b, decoded_text(text[a:b])
                continue
        for a, b in lines:
            if b - a >= 16:
                yield a, b, decoded_text(text[a:b])


def base64_mask(text: str) -> bytes:
    """One byte per character of `text`: `a` for a base64 character, a blank for any other
    (outside ASCII included: encoded as `?`). Two C calls."""
    return text.encode("ascii", "replace").translate(_B64_MASK)


def _maybe_base64(text: str) -> bool:
    """A run of 16 base64 characters somewhere."""
    return _SIXTEEN in base64_mask(text)


def decoded_text(run: str) -> str | None:
    """The text `run` encodes in hex (`xxd -p`, `0x…`) or else in base64 (standard or
    URL-safe), if it is text: the first 48 characters are tried before the whole run, so
    binary data (a hash, an image) costs little."""
    digits = run[2:] if run[:2] in ("0x", "0X") else run
    if not digits.encode("ascii", "replace").translate(None, _HEX_DIGITS):
        # base64 of text is never all hex digits; an odd count is not bytes
        return None if len(digits) % 2 else _text_of(bytes.fromhex, digits, 1)
    if run.isalpha() and (run.islower() or run.isupper()):
        return None  # a long word, not base64
    return _text_of(_b64decode, run, 2)


def _text_of(decode: Callable[[str], bytes | None], run: str, cut: int) -> str | None:
    """What `decode` makes of `run` if it is UTF-8 text of 8 characters or more: its first
    48 characters are decoded first (less the `cut` last characters, where a character may
    be cut in two), so binary data costs little."""
    head = decode(run[:48])
    if head is None or not _printable(head.decode("utf-8", errors="replace")[:-cut] or "x"):
        return None
    raw = decode(run)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if len(text) >= 8 and _printable(text) else None


def _b64decode(run: str) -> bytes | None:
    body = run.rstrip("=")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def base64_only(text: str) -> bool:
    """Only base64 characters (and `=` padding): a payload, not text (two C calls)."""
    return not text.encode("utf-8", "surrogatepass").translate(
        None, _B64_ALPHABET + b"=")


def payload_views(text: str, header: bool) -> list[View]:
    """A `data:` URL (`header`) or a base64 field: the header as text, the payload decoded
    if it is text (an image is not read: no OCR here). A payload that is not base64 is not
    a payload: the whole string is read as text."""
    comma = text.find(",") if header else -1
    if (header and comma < 0) or not base64_only(text[comma + 1:]):
        return [view_of(text)]
    out = [View(text[:comma + 1], IDENTITY)] if header else []
    payload = decoded_text(text[comma + 1:])
    if payload is not None:
        inner = view_of(payload)
        out.append(View(inner.text, Offsets(span=(comma + 1, len(text)))))
    return out

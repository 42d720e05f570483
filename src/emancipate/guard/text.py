"""The text of a chat message, and the folded form the keyword automaton reads.

`message_text` is the single definition of "the text of a message" that the guard scans
and the policy redacts: finding offsets are offsets into it, so both must agree.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from typing import Any

SEPARATOR = "\n"  # between the pieces of one message (content parts, tool-call arguments)


def message_segments(message: Any) -> list[tuple[tuple[Any, ...], str]]:
    """The message's text pieces in order, each with where it lives in the message.

    Locations: ("content",), ("part", j), ("tool_call", k), ("function_call",).
    """
    if not isinstance(message, dict):
        return []
    out: list[tuple[tuple[Any, ...], str]] = []
    content = message.get("content")
    if isinstance(content, str):
        out.append((("content",), content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    out.append((("part", j), text))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for k, call in enumerate(calls):
            fn = call.get("function") if isinstance(call, dict) else None
            args = fn.get("arguments") if isinstance(fn, dict) else None
            if isinstance(args, str):
                out.append((("tool_call", k), args))
    fc = message.get("function_call")
    if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
        out.append((("function_call",), fc["arguments"]))
    return out


def message_text(message: Any) -> str:
    """All the text of one chat message: content (string or text parts), then tool-call
    arguments, joined by a newline. Finding offsets index into this string."""
    if isinstance(message, dict):
        content = message.get("content")
        if isinstance(content, str) and not message.get("tool_calls") and (
            "function_call" not in message
        ):
            return content  # the common case, without building lists
    return SEPARATOR.join(text for _, text in message_segments(message))


# --- folding for the keyword automaton ------------------------------------------------------
#
# The automaton reads a *folded* copy of the text: lower case, accents removed, one character
# for one character so that offsets need no mapping. Western European text (everything
# Windows-1252 encodes: French, Spanish, German, typographic quotes, €, œ) is folded by two C
# calls, `str.encode("cp1252")` and `bytes.translate`; anything else (decomposed accents,
# other scripts) takes a slower per-character path.

def _fold_table() -> bytes:
    table = bytearray(range(256))
    for b in range(256):
        ch = bytes([b]).decode("cp1252", errors="replace")
        if ch == "\ufffd":
            continue
        base = unicodedata.normalize("NFD", ch.lower())[:1]
        if ch in "\u2018\u2019\u201a\u2032":
            base = "'"
        elif ch in "\u201c\u201d\u201e":
            base = '"'
        elif ch in "\u2013\u2014":
            base = "-"
        elif ch in "\u00a0":
            base = " "
        elif ch in "\u0153\u0152":
            base = "o"
        elif ch in "\u00e6\u00c6":
            base = "a"
        elif ch == "\u00df":
            base = "s"
        elif ch in "\u00f8\u00d8":
            base = "o"
        with contextlib.suppress(UnicodeEncodeError):
            table[b] = base.encode("cp1252")[0] if len(base) == 1 else b
    return bytes(table)


_FOLD = _fold_table()
_CP1252 = bytes(range(256)).decode("cp1252", errors="ignore")
_NOT_CP1252 = re.compile("[^" + re.escape(_CP1252) + "]+")
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def replace_each(text: str, chars: str, by: str) -> str:
    """`text` with each of `chars` replaced by `by`: one `str.replace` per character present.
    On a text outside ASCII, `str.translate` leaves CPython's one-byte fast path and reads
    ~20x slower (90-180 µs for 2 KB of French against 4-10 µs)."""
    for c in chars:
        if c in text:
            text = text.replace(c, by)
    return text


@functools.lru_cache(maxsize=4096)
def fold_char(ch: str) -> str:
    """One character folded: the table for Windows-1252, else lower case without marks.
    Cached: its `cache_info()` counts the characters that took the per-character path."""
    try:
        return ch.encode("cp1252").translate(_FOLD).decode("latin-1")
    except UnicodeEncodeError:
        lower = ch.lower()
        low = _MARKS.sub("", unicodedata.normalize("NFD", lower))
        if len(low) == 1:
            return low
        # decomposed into more than a letter and its marks (a Hangul syllable into its
        # jamo: keeping the first would fold `부분` and `비번` alike): the letter itself
        return lower if len(lower) == 1 else ch


def fold(text: str) -> str:
    """Lower-case and strip accents, one character for one: `Élysée` -> `elysee`.
    The same function folds the terms and the text."""
    if text.isascii():
        return text.lower()
    try:
        return text.encode("cp1252").translate(_FOLD).decode("latin-1")
    except UnicodeEncodeError:
        pass
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    # Only the characters Windows-1252 lacks (an emoji, another script) take the
    # per-character path; the runs between them keep the two C calls. One emoji in 100 KB
    # used to send all 100 KB through Python, character by character (4-5x the scan).
    out: list[str] = []
    pos = 0
    for m in _NOT_CP1252.finditer(text):
        out.append(text[pos:m.start()].encode("cp1252").translate(_FOLD).decode("latin-1"))
        out.append("".join(map(fold_char, m.group())))
        pos = m.end()
    out.append(text[pos:].encode("cp1252").translate(_FOLD).decode("latin-1"))
    return "".join(out)


def fold_with_map(text: str) -> tuple[str, list[int] | None]:
    """`fold(text)` for the automaton and, when a folded index is not the original index
    (decomposed accents in the input), the original index of every folded character."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return fold(text), None
    folded = fold(text)  # of the NFC text: composed characters, so maybe shorter
    index: list[int] = []
    for i, ch in enumerate(text):
        if index and unicodedata.combining(ch):
            continue
        index.append(i)
    index.append(len(text))
    if len(index) != len(folded) + 1:  # marks NFC could not compose: scale the offsets
        n, m = len(text), max(1, len(folded))
        index = [min(n, round(k * n / m)) for k in range(len(folded) + 1)]
    return folded, index

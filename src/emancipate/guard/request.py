"""A whole request scanned: every string that will be sent, normalised, joined, decoded.

`scan_segments` is what `Guard.scan_request` runs:

1. each segment (`view.segments_of`) becomes its normalised view (`normalize.view_of`),
   plus the base64 and `data:` payloads that decode to text (extra views whose findings
   map to the whole encoded span);
2. all views are scanned as one text, separated by `JOIN` (two lines no detector reads
   across), so topic domains are decided on the whole request; each finding maps back to
   its segment's path and original offsets;
3. *split tokens*: runs of token-like words (holding a digit, an inner capital, `_`)
   separated by one or two blanks, within a segment or across adjacent segments (two
   messages), are scanned once more with the blanks removed; a secret found there that
   spans a removed blank is reported on every segment it touches;
4. confidential terms are matched once more on a separator-free copy (`TermMatcher`):
   `Project Phoenix`, `project-phoenix`, `PROJECT_PHOENIX`, `ProjectPhoenix`,
   `Project\\n\\tPhoenix` are one term.

Every step is linear in the text; steps 3 and 4 cost a C regex pass and a C translate
when the text has no candidate.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Any

import re2

from emancipate.context import Finding
from emancipate.guard.engine import byte_spans, match_automaton
from emancipate.guard.normalize import (
    IDENTITY,
    Special,
    View,
    decoded_of,
    maybe_base64,
    payload_views,
    specials_each,
    view_of,
)
from emancipate.guard.text import fold, replace_each
from emancipate.guard.view import Segment

JOIN = "\n\x00\n\x00\n"

Raw = tuple[int, int, str, str, str | None]  # start, end, class, detector, domain
Scan = Callable[[str], list[Raw]]

# Detectors that read a keyword's context (`password is …`): glued prose would feed them
# invented assignments, so split tokens only report token formats.
_CONTEXT_DETECTORS = frozenset({"password", "generic_secret", "bearer_token", "url_password"})


def _token_pattern() -> str:
    """A token-like word of 2+ characters holding a digit or `_` or an inner capital
    (`AK`, `W7`, `AKIA`, `ghp_`), written out per position of that feature so that RE2
    can run it as one automaton (no lookahead in RE2)."""
    x = "[A-Za-z0-9+/=_-]"
    alts = []
    for feature, width in (("[0-9_]", 1), ("[A-Za-z0-9][A-Z]", 2)):
        need = max(0, 2 - width)
        alts += [f"{x}{{{p}}}{feature}{x}{{{need - p},}}" for p in range(need)]
        alts.append(f"{x}{{{need},}}{feature}{x}*")
    return "(?:" + "|".join(alts) + ")"


_TOKEN = _token_pattern()
# What may cut a token: one or two blanks, or string literals joined in code (`"ghp_4fK9" +
# "sLq2…"`, Python's adjacent literals over two lines, PHP's `.`, VB's `&`, SQL's `||`).
_GAP_PATTERN = (r"(?:[ \t\r\n]{1,2}|[\"'`][ \t]{0,4}(?:\+|\.|&|\|\|)?[ \t\r\n]{0,16}"
                r"[\"'`])")
# RE2: linear whatever the input (a run of tokens is read once).
# On bytes: the `re2` wrapper converts str offsets from the start of the text for every
# match (quadratic on a long text); chains are ASCII, so byte spans convert once, in order.
# A chain is tokens cut by gaps, or a value spelt out one character at a time (`g h p _ R 8
# …`: twelve characters or more, one blank between them), one alternative of one automaton.
# No capture group: RE2 then finds a match's bounds with its DFAs alone (with one, it runs a
# slower matcher over every match for the group: ~2.5x the time on 2 KB holding a PEM key);
# the chain is the match less the one non-token character it may have read at each end.
_CHAIN = re2.compile(rb"(?:^|[^A-Za-z0-9+/=_-])(?:" + _TOKEN.encode()
                     + rb"(?:" + _GAP_PATTERN.encode() + _TOKEN.encode()
                     + rb")+|(?:[A-Za-z0-9+/=_-][ \t]){11,}[A-Za-z0-9+/=_-])"
                     + rb"(?:$|[^A-Za-z0-9+/=_-])")
_GAP = re.compile(_GAP_PATTERN)
_TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
# A case-fixed token glued to the next word (`AKIA…MVthanks`): the run of capitals and
# digits before the first lower-case letter is scanned alone, so that the rule's closing
# word boundary holds.
_GLUED = re2.compile(rb"(?:^|[^A-Za-z0-9])([A-Z0-9]{12,})[a-z]")
# A long chain is joined in windows of 512 characters overlapping by 168 (longer than the
# longest token formats, sk-ant-api03-…): ~1.5x its length, wherever a secret sits in it.
_CHAIN_MAX, _OVERLAP = 512, 168
_PREFIX = re.compile(r"[a-z0-9_-]+")


def scan_segments(scan: Scan, segments: list[Segment], terms: TermMatcher | None = None,
                  split_starts: SplitStarts | None = None,
                  scan_secrets: Scan | None = None) -> list[Finding]:
    """Findings of every segment, offsets into the segment's own text. `scan_secrets` (a
    scan of the secret class alone) serves the split-secret pass, which keeps nothing else."""
    pieces: list[tuple[int, View]] = []
    mains: list[tuple[int, View]] = []
    texts = [s.text for s in segments if s.encoding == "text"]
    rewrites = iter(specials_each(texts))
    encoded = maybe_base64("\n".join(texts))
    for k, seg in enumerate(segments):
        rewritten = next(rewrites) if seg.encoding == "text" else []
        for v, main in _views(seg, rewritten, encoded):
            pieces.append((k, v))
            if main:
                mains.append((k, v))
    if not pieces:
        return []
    texts = [v.text for _, v in pieces]
    big = texts[0] if len(texts) == 1 else JOIN.join(texts)
    starts = _starts(texts)
    found: list[Finding] = []
    main_index = {id(v): j for j, (_, v) in enumerate(mains)}
    covered: list[tuple[int, int, int]] = []  # found in a main view: (view, start, end)
    for s, e, c, d, dom in scan(big):
        _place(pieces, texts, starts, segments, s, e, c, d, dom, found)
        if c in ("secret", "personal"):  # a validated IBAN, phone or card holds no token
            i = bisect.bisect_right(starts, s) - 1
            j = main_index.get(id(pieces[i][1]))
            if j is not None:
                covered.append((j, s - starts[i], e - starts[i]))
    if terms is not None:
        for s, e in terms.find(big):
            _place(pieces, texts, starts, segments, s, e, "confidential", "term", None, found)
    found.extend(_split_tokens(scan_secrets or scan, mains, segments, split_starts, covered))
    return _unique(found)


def _views(seg: Segment, found: list[Special], encoded: bool) -> list[tuple[View, bool]]:
    """The views of one segment; True for the segment's own text (not a decoded payload).
    `found`: what its view rewrites (`specials_each`); `encoded`: a text segment may hold
    base64."""
    if seg.encoding != "text":  # a data: URL or a base64 field
        return [(v, False) for v in payload_views(seg.text, seg.encoding == "data_url")]
    main = view_of(seg.text, found)  # (the text itself when `found` is empty)
    if not encoded:
        return [(main, True)]
    return [(main, True)] + [(d, False) for d in decoded_of(main)]


def _starts(texts: list[str]) -> list[int]:
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + len(JOIN)
    return starts


def _place(pieces: list[tuple[int, View]], texts: list[str], starts: list[int],
           segments: list[Segment], s: int, e: int, cls: str, det: str, dom: str | None,
           out: list[Finding]) -> None:
    """A finding in the joined text, mapped to its segment's original offsets."""
    i = bisect.bisect_right(starts, s) - 1
    base = starts[i]
    local_end = min(e - base, len(texts[i]))
    if s - base >= local_end:
        return
    k, v = pieces[i]
    seg = segments[k]
    out.append(Finding(cls, det, v.offsets.start(s - base), v.offsets.end(local_end),
                       seg.message, dom, seg.path))


def _split_tokens(scan: Scan, mains: list[tuple[int, View]], segments: list[Segment],
                  split_starts: SplitStarts | None,
                  covered: list[tuple[int, int, int]] | None = None) -> list[Finding]:
    """Secrets cut by blanks or across segments, found with the blanks removed. A chain
    inside a secret or personal value the ordinary scan found (a PEM key's base64 lines, an
    IBAN's groups) is not joined again: that finding already covers whatever it holds."""
    if not mains:
        return []
    text = "\n".join(v.text for _, v in mains)
    chains = _spans(_CHAIN, text, numbers=False)
    glued = _spans(_GLUED, text, numbers=False)
    if not chains and not glued:
        return []
    main_starts = []
    pos = 0
    for _, v in mains:
        main_starts.append(pos)
        pos += len(v.text) + 1
    if covered:
        spans = _merged(sorted((main_starts[j] + s, main_starts[j] + e) for j, s, e in covered))
        chains = [c for c in chains if not _inside(c, spans)]
    compact_parts: list[str] = []
    maps: list[list[tuple[int, int]]] = []  # per part: (compact offset, text offset) runs
    for a, b in _windows(chains):
        tokens = _tokens(text, a, b)
        cuts = [i for i in range(1, len(tokens)) if split_starts is not None
                and split_starts.begins(text, *tokens[i])]
        # the window whole, then (if a token in it may start a secret) cut before those
        for first, last in [(0, len(tokens))] + (
                list(zip([0, *cuts], [*cuts, len(tokens)], strict=True)) if cuts else []):
            if last - first >= 2:
                part, runs = _compact(text, tokens[first:last])
                compact_parts.append(part)
                maps.append(runs)
    joined_parts = len(compact_parts)
    for a, b in glued:  # one run, no blank: offsets shift by `a`
        compact_parts.append(text[a:b])
        maps.append([(0, a)])
    starts = _starts(compact_parts)
    joined = JOIN.join(compact_parts)
    out: list[Finding] = []
    for s, e, cls, det, _dom in scan(joined):
        if cls != "secret" or det in _CONTEXT_DETECTORS:
            continue
        i = bisect.bisect_right(starts, s) - 1
        runs = maps[i]
        ls, le = s - starts[i], min(e - starts[i], len(compact_parts[i]))
        r0 = bisect.bisect_right([r[0] for r in runs], ls) - 1
        r1 = bisect.bisect_right([r[0] for r in runs], le - 1) - 1
        if r0 == r1 and (i < joined_parts or le != len(compact_parts[i])):
            continue  # no blank inside / not up to the glue: the ordinary scan saw it
        ts = runs[r0][1] + (ls - runs[r0][0])
        te = runs[r1][1] + (le - runs[r1][0])
        out.extend(_on_segments(ts, te, cls, det, mains, main_starts, segments))
    return out


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans made disjoint (overlapping ones joined)."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _inside(chain: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """`chain` lies within one of the sorted, disjoint `spans`."""
    i = bisect.bisect_right(spans, (chain[0], 1 << 62)) - 1
    return i >= 0 and chain[1] <= spans[i][1]


def _tokens(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """The tokens of the chain text[a:b] (split at its blanks)."""
    out, last = [], a
    for g in _GAP.finditer(text, a, b):
        out.append((last, g.start()))
        last = g.end()
    out.append((last, b))
    return out


def _compact(text: str, tokens: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """The tokens joined without their blanks, and the map back (compact offset, text
    offset) of each token."""
    runs: list[tuple[int, int]] = []
    pieces: list[str] = []
    c = 0
    for s, e in tokens:
        runs.append((c, s))
        pieces.append(text[s:e])
        c += e - s
    return "".join(pieces), runs


class SplitStarts:
    """Tokens a secret may start with: the secret rules' keywords that read like a token
    prefix (`akia`, `ghp_`, `xoxb-`, `sk-ant-`), matched case-insensitively at a token's
    start. A chain joined whole glues a secret to the token before it (`ZZ11AKIA…` has no
    word boundary before `AKIA`), so a chain is also joined in parts cut before these."""

    def __init__(self, keywords: list[str]) -> None:
        by_length: dict[int, set[str]] = {}
        for kw in keywords:
            kw = kw.lower()
            if 3 <= len(kw) <= 16 and _PREFIX.fullmatch(kw):
                by_length.setdefault(len(kw), set()).add(kw)
        self._by_length = sorted(by_length.items())
        # the first two characters of every keyword: most tokens are turned away on these
        self._heads = frozenset(kw[:2] for kws in by_length.values() for kw in kws)

    def begins(self, text: str, s: int, e: int) -> bool:
        if text[s:s + 2].lower() not in self._heads:
            return False
        head = text[s:s + 16].lower()
        return any(head[:n] in kws for n, kws in self._by_length if n <= e - s)


def _windows(chains: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for a, b in chains:
        start = a
        while True:
            out.append((start, min(b, start + _CHAIN_MAX)))
            if start + _CHAIN_MAX >= b:
                break
            start += _CHAIN_MAX - _OVERLAP
    return out


def _spans(pattern: Any, text: str, numbers: bool) -> list[tuple[int, int]]:
    """Spans (str offsets) of group 1 of an ASCII `pattern` run on the UTF-8 bytes of
    `text` (of a pattern with no group, the match less a character outside tokens at each
    end: `_CHAIN`); unless `numbers`, a span of digits, blanks and signs only (`2024 1999`,
    `+44 20 7946 0123`) is skipped: no secret format is made of digits alone."""
    raw = text.encode("utf-8")
    ascii_text = len(raw) == len(text)
    out: list[tuple[int, int]] = []
    byte_pos = char_pos = 0
    for spans in byte_spans(pattern, raw):
        if len(spans) > 1:
            bs, be = spans[1]
        else:
            bs, be = spans[0]
            while raw[bs] not in _TOKEN_BYTES:  # (one character, of up to 4 bytes)
                bs += 1
            while raw[be - 1] not in _TOKEN_BYTES:
                be -= 1
        if not numbers and raw[bs:be].translate(None, b" \t\r\n+-/=").isdigit():
            continue
        if ascii_text:
            out.append((bs, be))
            continue
        char_pos += len(raw[byte_pos:bs].decode("utf-8"))
        out.append((char_pos, char_pos + be - bs))  # the chain itself is ASCII
        char_pos += be - bs
        byte_pos = be
    return out


def _on_segments(ts: int, te: int, cls: str, det: str, mains: list[tuple[int, View]],
                 main_starts: list[int], segments: list[Segment]) -> list[Finding]:
    """A span of the newline-joined main views, one finding per segment it touches."""
    out = []
    first = bisect.bisect_right(main_starts, ts) - 1
    last = bisect.bisect_right(main_starts, te - 1) - 1
    for j in range(first, last + 1):
        k, v = mains[j]
        base = main_starts[j]
        s = max(ts - base, 0)
        e = min(te - base, len(v.text))
        if s < e:
            seg = segments[k]
            out.append(Finding(cls, det, v.offsets.start(s), v.offsets.end(e), seg.message,
                               None, seg.path))
    return out


def _unique(found: list[Finding]) -> list[Finding]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for f in found:
        key = (f.path, f.start, f.end, f.cls, f.detector)
        if key not in seen:
            seen.add(key)
            out.append(f)
    out.sort(key=lambda f: (f.message_index if f.message_index >= 0 else 1 << 30,
                            _path_order(f.path), f.start, -f.end))
    return out


def _path_order(path: tuple[object, ...]) -> str:
    return repr(path)


# --- separator-insensitive terms ---------------------------------------------------------

_SEPARATORS = " \t\r\n-_"
_STRIP = str.maketrans("", "", _SEPARATORS)
_CHUNK = 4096


def _strip(chunk: str) -> str:
    """`chunk` without separators (`str.translate` only on ASCII: see `replace_each`)."""
    return chunk.translate(_STRIP) if chunk.isascii() else replace_each(chunk, _SEPARATORS, "")


class TermMatcher:
    """Confidential terms matched with their separators removed, on a copy of the text
    without spaces, tabs, newlines, hyphens and underscores; the original's word boundaries
    decide. Built once; `find` is linear (the copy is made by `str.translate` per 4 KB
    chunk, offsets are recovered only around a match)."""

    def __init__(self, terms: list[str]) -> None:
        self._automaton: Any = None
        keys = {_strip(fold(t)) for t in terms}
        keys = {k for k in keys if len(k) >= 4}
        if keys:
            self._automaton = match_automaton(sorted(keys))

    def find(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every term in `text` (original offsets), word-bounded."""
        if self._automaton is None:
            return []
        folded = fold(text)
        if len(folded) != len(text):
            return []  # decomposed accents: the ordinary term match covers these
        chunks = [folded[a:a + _CHUNK] for a in range(0, len(folded), _CHUNK)]
        stripped_chunks = [_strip(c) for c in chunks]
        offsets = _starts_plain(stripped_chunks)
        stripped = "".join(stripped_chunks)
        out = []
        for _, start, stop in self._automaton.find_matches_as_indexes(stripped, overlapping=True):
            end = stop - 1
            s = _original(start, offsets, chunks, stripped_chunks, False)
            e = _original(end, offsets, chunks, stripped_chunks, True)
            if (s > 0 and _word(folded[s - 1])) or (e < len(folded) and _word(folded[e])):
                continue
            if "\x00" in folded[s:e]:  # the separator between two messages
                continue
            out.append((s, e))
        return out


def _starts_plain(chunks: list[str]) -> list[int]:
    starts, pos = [], 0
    for c in chunks:
        starts.append(pos)
        pos += len(c)
    return starts


def _original(k: int, offsets: list[int], chunks: list[str], stripped: list[str],
              last: bool) -> int:
    """Original offset of stripped character `k` (its end if `last`)."""
    c = bisect.bisect_right(offsets, k) - 1
    want = k - offsets[c]
    seen = -1
    for i, ch in enumerate(chunks[c]):
        if ch not in _SEPARATORS:
            seen += 1
            if seen == want:
                return c * _CHUNK + i + (1 if last else 0)
    return c * _CHUNK + len(chunks[c])


def _word(ch: str) -> bool:
    return ch.isalnum()


__all__ = ["IDENTITY", "JOIN", "SplitStarts", "TermMatcher", "scan_segments"]

"""Source code: fenced blocks and runs of code-like lines.

No parser can tell every language apart from prose in a few microseconds, so this is a
line classifier: a line is *strongly* code-like when it has a construct prose never has
(`def f(`, `#include <`, `const x =`, `SELECT … FROM`, a line of closing brackets…) and
*weakly* when it ends with `;` or `{`, assigns, calls, or uses `=>`, `::`, `==`. A block
of at least `min_lines` code-like lines whose score exceeds its length is code. A fenced
block (```) is code when its language tag is a programming language, or, untagged, when
it holds a code-like line. Data blocks (json, yaml, csv, text, logs) are not code.
"""

from __future__ import annotations

import re

Hit = tuple[int, int, str]

_STRONG = re.compile(
    r"""[ \t]*(?:
      (?:async[ \t]+)?def[ \t]+\w+[ \t]*\(
    | class[ \t]+\w+(?:[ \t]*[(:{<]|[ \t]+(?:extends|implements)\b)
    | from[ \t]+[\w.]+[ \t]+import[ \t]+\S
    | import[ \t]+[\w.*{}, ]+(?:[ \t]+from[ \t]+['"].+['"])?;?[ \t]*$
    | \#include[ \t]*[<"]
    | \#(?:define|ifndef|ifdef|endif|pragma)\b
    | (?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?function\*?[ \t]*\w*[ \t]*\(
    | (?:export[ \t]+)?(?:const|let|var)[ \t]+[\w{}\[\], ]+[ \t]*=
    | (?:public|private|protected|internal)[ \t]+(?:static[ \t]+)?[\w<>\[\],.]+
      (?:[ \t]+\w+)?[ \t]*[({=;]
    | (?:pub[ \t]+)?(?:fn|struct|enum|impl|trait)[ \t]+\w+.*[{;(<]
    | func[ \t]+(?:\([^)]*\)[ \t]*)?\w+[ \t]*\(
    | package[ \t]+[\w.]+;?[ \t]*$
    | using[ \t]+[\w.]+;[ \t]*$
    | (?:if|while|for|switch|catch)[ \t]*\(.*\)[ \t]*\{?[ \t]*$
    | for[ \t]+\w+(?:[ \t]*,[ \t]*\w+)*[ \t]+in[ \t]+\S.*:[ \t]*$
    | (?:try|else|finally)[ \t]*:[ \t]*$
    | except(?:[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?)?[ \t]*:[ \t]*$
    | (?:SELECT|FROM|WHERE|(?:(?:LEFT|RIGHT|INNER|OUTER|FULL|CROSS)[ \t]+)?JOIN|GROUP[ \t]+BY
       |ORDER[ \t]+BY|HAVING|LIMIT|UNION|VALUES|INSERT[ \t]+INTO|UPDATE|DELETE[ \t]+FROM
       |CREATE[ \t]+(?:TABLE|INDEX|VIEW|FUNCTION)|ALTER[ \t]+TABLE|DROP[ \t]+TABLE)[ \t]+\S
    | \#!/
    | (?:for|while|until)[ \t].*;[ \t]*do[ \t]*$
    | (?:done|fi|esac)[ \t]*;?[ \t]*$
    | if[ \t]+\[.*\][ \t]*;[ \t]*then[ \t]*$
    | set[ \t]+-[euxo]+\b
    | export[ \t]+[A-Z_][A-Z0-9_]*=
    | @\w+(?:\(.*\))?[ \t]*$
    | [}\])]+[;,)]*[ \t]*$
    | </?[a-zA-Z][\w:-]*(?:[ \t][^>]*)?/?>
    | (?://|/\*|\*/|<!--)
    )""",
    re.X,
)
# What a line code usually has (a weak sign): it ends with `;` or `{` or `):`, assigns, is a
# `return`/`await`/`raise`/`throw` or a call alone, or uses `=>`, `->`, `::`, `&&`, `||`,
# `!=`, `==`. (The ends are tested with `str` methods and the starts with one anchored match:
# one regex searching all of them tried its alternatives at every position, ~3 µs a line.)
_WEAK_START = re.compile(
    r"""[ \t]*(?:(?:self\.|this\.)?[\w\[\]'".]+[ \t]*(?:[+\-*/%|&]?=|:=)[ \t]*[^=\s]
    | (?:return|await|raise|throw)\b[^.!?]*$
    | [\w.]+\(.*\)[ \t]*;?[ \t]*$
    )""",
    re.X,
)
_WEAK_OPS = re.compile(r"=>|->|::|&&|\|\||!=|==")


def _weak(line: str) -> bool:
    tail = (line[:-1] if line.endswith("\n") else line).rstrip(" \t")  # as `$` reads it
    return (tail.endswith((";", "{"))
            or (tail.endswith(":") and tail[:-1].rstrip(" \t").endswith(")"))
            or _WEAK_START.match(line) is not None or _WEAK_OPS.search(line) is not None)


_FENCE = re.compile(r"^[ \t]{0,3}(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*$", re.M)


def _fences(text: str) -> list[re.Match[str]]:
    """`_FENCE`'s matches, in order. Tried only on the lines holding a fence's marks: `re`
    tries a multi-line `^` at every character (11 µs on 2 KB; 4 this way)."""
    found: dict[int, re.Match[str] | None] = {}
    for mark in ("```", "~~~"):
        i = text.find(mark)
        while i >= 0:
            line = text.rfind("\n", 0, i) + 1
            if line not in found:
                found[line] = _FENCE.match(text, line)
            end = text.find("\n", i)
            i = -1 if end < 0 else text.find(mark, end)
    return [m for _, m in sorted(found.items()) if m is not None]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DATA_LANGS = _words(
    "json json5 jsonl yaml yml toml ini csv tsv text txt plain plaintext log logs output "
    "console markdown md xml mermaid diff patch"
)
_CODE_CHARS = (";", "{", "(", "=")
_LEADING = _words(
    "def class import from return raise yield async await function const let var export "
    "public private protected internal static pub fn struct enum impl trait func package "
    "using if for while switch catch try else elif except finally select insert update "
    "delete create alter drop SELECT INSERT UPDATE DELETE CREATE ALTER DROP FROM WHERE "
    "JOIN GROUP ORDER WHERE HAVING LIMIT UNION VALUES set unset echo done do then fi "
    "esac export"
)


_ENDINGS = frozenset(";{}()[]:,=>")
_MARKERS = re.compile(r"[=(<@#$]|//|/\*|::|->|&&|\|\|")
# a character every marker holds: `re` finds one in a class much faster than in alternatives
_MARKER_CHARS = re.compile(r"[=(<@#$/:&|-]")


# How every `_STRONG` alternative starts (after blanks): a line starting otherwise is not
# tried against its 27 alternatives (~0.5 µs a line; `key = value` lines are most of them)
_STRONG_STARTS = (
    "async", "def", "class", "from", "import", "#", "export", "default", "function", "const",
    "let", "var", "public", "private", "protected", "internal", "pub", "fn", "struct", "enum",
    "impl", "trait", "func", "package", "using", "if", "while", "for", "switch", "catch", "try",
    "else", "finally", "except", "SELECT", "FROM", "WHERE", "LEFT", "RIGHT", "INNER", "OUTER",
    "FULL", "CROSS", "JOIN", "GROUP", "ORDER", "HAVING", "LIMIT", "UNION", "VALUES", "INSERT",
    "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "until", "done", "fi", "esac", "set", "@",
    "}", "]", ")", "<", "/", "*")


def line_score(line: str) -> int:
    """2 for a line only code has, 1 for a line code usually has, 0 otherwise."""
    stripped = line.strip()
    if not stripped:
        return 0
    if stripped[-1] not in _ENDINGS and not (_MARKER_CHARS.search(stripped)
                                             and _MARKERS.search(stripped)):
        first = stripped.split(None, 1)[0]
        if first not in _LEADING:
            return 0  # prose: no code punctuation, no keyword first
    if stripped.startswith(_STRONG_STARTS) and _STRONG.match(line):
        return 2
    return 1 if _weak(line) else 0


def _line_blocks(text: str, lo: int, hi: int, min_lines: int, out: list[Hit]) -> None:
    pos = lo
    block_start = block_end = -1
    positives = score = gap = 0

    def close() -> None:
        if block_start >= 0 and positives >= min_lines and score > positives:
            out.append((block_start, block_end, "code_lines"))

    for line in text[lo:hi].split("\n"):
        end = pos + len(line)
        s = line_score(line)
        if s:
            if block_start < 0:
                block_start, positives, score = pos + (len(line) - len(line.lstrip())), 0, 0
            positives += 1
            score += s
            block_end = end
            gap = 0
        elif block_start >= 0 and not line.isspace() and line:
            gap += 1
            if gap > 1:  # two prose lines in a row end the block
                close()
                block_start = -1
        pos = end + 1
    close()


def scan_code(text: str, min_lines: int, out: list[Hit]) -> None:
    """Code findings of one text."""
    if "```" in text or "~~~" in text:
        fences = _fences(text)
        covered: list[tuple[int, int]] = []
        k = 0
        while k + 1 < len(fences):
            opening, closing = fences[k], fences[k + 1]
            if closing.group(1)[0] != opening.group(1)[0]:
                k += 1
                continue
            lang = opening.group(2).lower()
            body = text[opening.end():closing.start()]
            if lang and lang not in _DATA_LANGS:
                is_code = True
            elif lang:
                is_code = False
            else:
                is_code = any(line_score(line) for line in body.split("\n"))
            if is_code:
                out.append((opening.start(), closing.end(), "fenced_code"))
            covered.append((opening.start(), closing.end()))
            k += 2
        # lines outside the fences
        prev = 0
        for s, e in covered:
            if s > prev:
                _scan_lines(text, prev, s, min_lines, out)
            prev = e
        if prev < len(text):
            _scan_lines(text, prev, len(text), min_lines, out)
        return
    _scan_lines(text, 0, len(text), min_lines, out)


def _scan_lines(text: str, lo: int, hi: int, min_lines: int, out: list[Hit]) -> None:
    part = text[lo:hi] if (lo, hi) != (0, len(text)) else text
    if part.count("\n") < min_lines - 1:
        return
    if sum(part.count(c) for c in _CODE_CHARS) < min_lines:
        return
    _line_blocks(text, lo, hi, min_lines, out)

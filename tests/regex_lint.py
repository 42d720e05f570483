"""Find the regular expressions that Python's `re` can backtrack on exponentially: an
unbounded repetition inside an unbounded repetition, when nothing in the outer body marks
where one iteration ends and the next begins. `(?:[A-Z]?[a-z]+)+` splits a run of letters
in exponentially many ways; `(?:[-_.][a-z]+)+` does not (each iteration starts with a
separator the inner repetition cannot read).

A structural test, not a timing one: it reads the parsed pattern (`re._parser`), so a test
using it fails on the pattern itself, however fast the machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]
from typing import Any

Seq = list[tuple[Any, Any]]
ALL = frozenset(range(257))  # 256 stands for every character outside Latin-1
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)


def _category(cat: Any) -> frozenset[int]:
    tests = {"DIGIT": str.isdigit, "WORD": lambda c: c.isalnum() or c == "_",
             "SPACE": str.isspace}
    for name, test in tests.items():
        chars = frozenset(i for i in range(256) if test(chr(i)))
        if cat.name.endswith("NOT_" + name):
            return ALL - chars
        if cat.name.endswith("_" + name):
            return chars | {256}
    return ALL


def _class(items: Seq) -> frozenset[int]:
    out: set[int] = set()
    negate = False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            out.add(min(av, 256))
        elif op is C.RANGE:
            out.update(range(min(av[0], 256), min(av[1], 256) + 1))
        elif op is C.CATEGORY:
            out |= _category(av)
    return ALL - out if negate else frozenset(out)


def chars(seq: Seq) -> frozenset[int]:
    """Every character a match of `seq` may read."""
    out: set[int] = set()
    for op, av in seq:
        if op is C.LITERAL:
            out.add(min(av, 256))
        elif op in (C.NOT_LITERAL, C.ANY, C.GROUPREF):
            out |= ALL
        elif op is C.IN:
            out |= _class(av)
        elif op in _REPEATS:
            out |= chars(av[2])
        elif op is C.SUBPATTERN:
            out |= chars(av[3])
        elif op is C.ATOMIC_GROUP:
            out |= chars(av)
        elif op is C.BRANCH:
            for alt in av[1]:
                out |= chars(alt)
    return frozenset(out)


def _alternatives(seq: Seq) -> list[Seq]:
    """`seq` as flat alternatives (groups and branches of one item opened)."""
    if len(seq) == 1:
        op, av = seq[0]
        if op is C.SUBPATTERN:
            return _alternatives(list(av[3]))
        if op is C.BRANCH:
            return [a for alt in av[1] for a in _alternatives(list(alt))]
    return [list(seq)]


def _required(seq: Seq) -> list[frozenset[int]]:
    """For each item every match of `seq` reads, the characters it may read."""
    out: list[frozenset[int]] = []
    for op, av in seq:
        if op is C.LITERAL:
            out.append(frozenset({min(av, 256)}))
        elif op is C.IN:
            out.append(_class(av))
        elif op in _REPEATS and av[0] >= 1:
            out.append(chars(av[2]))
        elif op in (C.SUBPATTERN, C.BRANCH):
            alts = _alternatives([(op, av)])
            if len(alts) == 1:
                out.extend(_required(alts[0]))
            elif all(_required(a) for a in alts):  # every alternative reads something
                out.append(chars([(op, av)]))
    return out


def _unbounded(seq: Seq) -> Iterator[Any]:
    for op, av in seq:
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            if av[1] == C.MAXREPEAT:
                yield av
            yield from _unbounded(av[2])
        elif op is C.SUBPATTERN:
            yield from _unbounded(av[3])
        elif op is C.BRANCH:
            for alt in av[1]:
                yield from _unbounded(alt)


def nested_repetitions(pattern: re.Pattern[str]) -> list[Seq]:
    """The bodies of unbounded repetitions that hold an unbounded repetition with nothing
    required beside it that the inner one cannot read (empty: no such nesting)."""
    found: list[Seq] = []

    def walk(seq: Seq) -> None:
        for op, av in seq:
            if op in (C.MAX_REPEAT, C.MIN_REPEAT):
                if av[1] == C.MAXREPEAT:
                    for alt in _alternatives(list(av[2])):
                        for inner in _unbounded(alt):
                            reads = chars(inner[2])
                            if not any(r.isdisjoint(reads) for r in _required(alt)
                                       if r != reads):
                                found.append(alt)
                walk(av[2])
            elif op is C.SUBPATTERN:
                walk(av[3])
            elif op is C.BRANCH:
                for alt in av[1]:
                    walk(alt)
            elif op in (C.ASSERT, C.ASSERT_NOT):
                walk(av[1])
            elif op is C.ATOMIC_GROUP:
                walk(av)

    walk(list(P.parse(pattern.pattern, pattern.flags)))
    return found

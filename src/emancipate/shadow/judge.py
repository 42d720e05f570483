"""Comparing two answers: exact match for short or choice answers, else a pairwise judge.

Pure functions (no I/O) so that the verdict logic can be tested on its own; the stage in
`shadow.stage` does the calls.

A verdict is always from the in-house model's point of view: `inhouse_better`, `tie`,
`external_better` or `error`; the in-house answer is "ok" on the first two.
"""

from __future__ import annotations

import re
from typing import Any, Literal

Verdict = Literal["inhouse_better", "tie", "external_better", "error"]
Pick = Literal["A", "B", "TIE"]

MAX_JUDGE_CHARS = 6000  # per part (request, each answer): keeps the judge prompt bounded

JUDGE_SYSTEM = (
    "You are an impartial judge. Two assistants answered the same request. Compare the two "
    "answers for correctness first, then helpfulness and completeness. Ignore differences of "
    "length or style that do not change the quality, and ignore the order in which the "
    "answers are shown. Reply with one word only: A if answer A is better, B if answer B is "
    "better, TIE if they are equally good or equally bad."
)

_SPACE = re.compile(r"\s+")
_EDGE = "\"'`*_.,;:!?()[]{} \n\t"
# "B", "(b)", "B.", "B)" alone: the whole answer is a choice letter (any case).
_ALONE = re.compile(r"^\(?([a-j])\)?[.):]?$", re.I)
# "Answer: C", "The correct answer is (C)", "answer is c."
_STATED = re.compile(
    r"^(?:the\s+)?(?:correct\s+|right\s+|final\s+)?answer\s*(?:is|would be)?\s*[:\-]?\s*"
    r"\(?([A-J])\)?(?:$|[.):,\s])", re.I)
# "B) Paris", "C. 42", "(D) none": a capital choice letter leading an option text.
_LEADING = re.compile(r"^\(?([A-J])[.)]\s")


def normalise(text: str) -> str:
    """Case-folded, whitespace-collapsed, without surrounding punctuation or markdown."""
    return _SPACE.sub(" ", text.casefold()).strip(_EDGE)


def choice_letter(text: str) -> str | None:
    """The choice letter (A-J) a short multiple-choice answer gives, or None."""
    t = text.strip().strip("*_`")
    for pattern in (_ALONE, _STATED, _LEADING):
        m = pattern.match(t)
        if m:
            return m.group(1).upper()
    return None


def exact_applies(external: str, inhouse: str, max_chars: int) -> bool:
    """Is there a reference to match against: both choice letters, or both answers short?"""
    if choice_letter(external) is not None and choice_letter(inhouse) is not None:
        return True
    return max_chars > 0 and max(len(normalise(external)), len(normalise(inhouse))) <= max_chars


def exact_verdict(external: str, inhouse: str) -> tuple[Verdict, bool]:
    """The external answer is the reference: agreeing is a tie, anything else loses.

    This measures agreement, not correctness: it is meant for routes whose answers are
    labels, choices, numbers or short extractions.
    """
    a, b = choice_letter(external), choice_letter(inhouse)
    same = a == b if a is not None and b is not None else normalise(external) == normalise(inhouse)
    return ("tie", True) if same else ("external_better", False)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_JUDGE_CHARS else text[:MAX_JUDGE_CHARS] + " […]"


def judge_messages(request: str, answer_a: str, answer_b: str) -> list[dict[str, Any]]:
    """The pairwise prompt: request, answer A, answer B; the judge replies A, B or TIE."""
    user = (f"[Request]\n{_clip(request)}\n\n[Answer A]\n{_clip(answer_a)}\n\n"
            f"[Answer B]\n{_clip(answer_b)}\n\nWhich answer is better? Reply A, B or TIE.")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


_BRACKETED = re.compile(r"\[\[\s*(A|B|C|TIE)\s*\]\]", re.I)  # MT-Bench style; [[C]] is a tie
_FIRST = re.compile(r"^[\W_]*(A|B|TIE)[\W_]*(?:$|\n|IS\b|WINS\b|IS BETTER\b)")
_NAMED = re.compile(
    r"(?:VERDICT|WINNER|BETTER ANSWER|BETTER|CHOICE|ANSWER)\W*(?:IS\W*|WOULD BE\W*)?"
    r"(?:ANSWER\W*)?"
    r"\(?(A|B|TIE)\)?(?![A-Z])")
_TIE_WORDS = re.compile(
    r"\b(TIE|TIED|EQUALLY (?:GOOD|BAD|CORRECT|WRONG|HELPFUL)|BOTH (?:ARE )?(?:EQUALLY|"
    r"EQUIVALENT|THE SAME|CORRECT|WRONG)|NEITHER IS BETTER|NO DIFFERENCE)\b")
_LONE = re.compile(r"(?<![A-Za-z'])(A|B)(?![A-Za-z'])")


def parse_verdict(reply: str) -> Pick | None:
    """The judge's pick from free text, or None when it cannot be read unambiguously.

    Tried in order: `[[A]]`-style brackets, a reply that starts with the verdict,
    "verdict/winner/answer: X", tie phrases, then a single capital A or B standing alone.
    """
    text = reply.strip()
    if not text:
        return None
    m = _BRACKETED.search(text)
    if m:
        pick = m.group(1).upper()
        return "TIE" if pick in ("C", "TIE") else pick  # type: ignore[return-value]
    upper = text.upper()
    m = _FIRST.match(upper)
    if m:
        return m.group(1)  # type: ignore[return-value]
    m = _NAMED.search(upper)
    if m:
        return m.group(1)  # type: ignore[return-value]
    if _TIE_WORDS.search(upper):
        return "TIE"
    lone = set(_LONE.findall(text))
    if len(lone) == 1:
        return lone.pop()
    return None


def pairwise_verdict(pick: Pick | None, inhouse_is_a: bool) -> tuple[Verdict, bool]:
    """Map the judge's A/B/TIE back to the in-house model's verdict and `inhouse_ok`."""
    if pick is None:
        return "error", False
    if pick == "TIE":
        return "tie", True
    if (pick == "A") == inhouse_is_a:
        return "inhouse_better", True
    return "external_better", False


def answer_text(body: dict[str, Any]) -> str:
    """The first choice's text of a chat completion body ('' for a tool call or nothing)."""
    choices = body.get("choices") or ()
    if not choices:
        return ""
    msg = choices[0].get("message") or {}
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""

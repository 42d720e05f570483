"""The public evaluation corpus of the leak guard is well formed and split by family, and the
guard does not fall below today's figures on it (`bench/guard_eval.py`, issue 12).

The floors below are regression floors read off a run of the guard as it was when the
corpus was built (2026-12-02): they say "no worse than then", not "good enough". The quality
goals are in issue 12 and the current figures in docs/benchmarks.md; raise a floor when the
guard improves, never lower one to make a change pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC = REPO / "bench" / "data" / "guard" / "public"
sys.path.insert(0, str(REPO / "bench" / "data" / "guard"))

from build_public import split_of  # noqa: E402

SECRET_FILES = ("dev", "heldout")
PII_FILES = ("pii_dev", "pii_heldout")
PII_LABELS = {"email", "phone", "card", "iban", "us_ssn"}
SOURCES = {"credsweeper", "detect-secrets", "gitleaks", "generated"}

# Regression floors (not quality claims): secret recall and PII recall/precision may not go
# below them; the share of negatives flagged may not go above its ceiling.
FLOORS: dict[str, dict[str, float]] = {
    "dev": {"recall": 0.89, "negatives_flagged_max": 0.14,
            "pii_recall": 0.98, "pii_precision": 0.98},
    "heldout": {"recall": 0.79, "negatives_flagged_max": 0.06,
                "pii_recall": 0.97, "pii_precision": 0.98},
}


def _records(name: str) -> list[dict[str, Any]]:
    with (PUBLIC / f"{name}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _assert_well_formed(rec: dict[str, Any], pii: bool) -> None:
    assert set(rec) == {"text", "spans", "family", "source", "kind"}, rec
    text = rec["text"]
    assert isinstance(text, str) and text.strip() and len(text) <= 2048, rec["family"]
    assert rec["source"] in SOURCES and rec["family"].split(":", 1)[1], rec["family"]
    assert rec["kind"] == ("positive" if rec["spans"] else "negative"), rec
    for span in rec["spans"]:
        start, end = span[0], span[1]
        assert 0 <= start < end <= len(text), (rec["family"], span)
        assert text[start:end].strip(), (rec["family"], span)
        if pii:
            assert len(span) == 3 and span[2] in PII_LABELS, span
        else:
            assert len(span) == 2, span


@pytest.mark.parametrize("name", SECRET_FILES + PII_FILES)
def test_every_record_is_well_formed_and_in_the_split_of_its_family(name: str) -> None:
    records = _records(name)
    assert len(records) >= 500
    split = name.removeprefix("pii_")
    for rec in records:
        _assert_well_formed(rec, pii=name.startswith("pii_"))
        assert split_of(rec["family"]) == split, rec["family"]
    kinds = {rec["kind"] for rec in records}
    assert kinds == {"positive", "negative"}


@pytest.mark.parametrize("dev, heldout", [SECRET_FILES, PII_FILES])
def test_dev_and_heldout_share_no_family(dev: str, heldout: str) -> None:
    dev_families = {rec["family"] for rec in _records(dev)}
    heldout_families = {rec["family"] for rec in _records(heldout)}
    assert not dev_families & heldout_families
    # about half the families on each side, and every gitleaks family on the dev side
    assert min(len(dev_families), len(heldout_families)) >= 40
    assert not any(f.startswith("gitleaks:") for f in heldout_families)


def test_the_guard_meets_the_regression_floors_on_both_splits() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "guard_eval.py"), "--json", "--no-baseline"],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for split, floor in FLOORS.items():
        secrets = result[split]["secrets"]["total"]["all"]
        pii = result[split]["pii"]
        assert secrets["recall"] >= floor["recall"], (split, secrets)
        assert secrets["negatives_flagged"] <= floor["negatives_flagged_max"], (split, secrets)
        assert pii["recall"] >= floor["pii_recall"], (split, pii)
        assert pii["precision"] >= floor["pii_precision"], (split, pii)
    # the held-out per-family figures stay hidden unless asked for
    assert "family" in result["dev"]["secrets"]
    assert "family" not in result["heldout"]["secrets"]


# Regression floors on the blind probes (`bench/guard_probe_blind.py`), read off the end of
# the sessions that wrote them (2026-12-04, 2026-12-05 six times, 2026-12-06 eight times,
# 2026-12-07 once): the texts now measure regressions, not quality.
BLIND_FLOORS = {"first round": (165, 1), "second round": (163, 3), "third round": (144, 5),
                "fourth round": (150, 2), "fifth round": (119, 2), "sixth round": (98, 0),
                "seventh round": (79, 1), "eighth round": (86, 2), "ninth round": (80, 3),
                "tenth round": (80, 3), "eleventh round": (77, 1), "twelfth round": (90, 2),
                "thirteenth round": (74, 2), "fourteenth round": (74, 2),
                "fifteenth round": (77, 0), "sixteenth round": (79, 0),
                "seventeenth round": (78, 0), "eighteenth round": (78, 0),
                "nineteenth round": (79, 0), "twentieth round": (80, 1),
                "twenty-first round": (77, 0), "twenty-second round": (80, 0),
                "twenty-third round": (79, 0), "twenty-fourth round": (79, 0),
                "twenty-fifth round": (78, 0), "twenty-sixth round": (77, 0),
                "twenty-seventh round": (78, 2), "twenty-eighth round": (77, 0),
                "twenty-ninth round": (78, 1), "thirtieth round": (77, 0),
                "thirty-first round": (79, 1), "thirty-second round": (78, 0),
                "thirty-third round": (80, 0), "thirty-fourth round": (79, 0),
                "thirty-fifth round": (79, 0), "thirty-sixth round": (80, 0),
                "thirty-seventh round": (79, 0), "thirty-eighth round": (80, 0),
                "thirty-ninth round": (77, 0), "fortieth round": (77, 1),
                "forty-first round": (79, 0), "forty-second round": (80, 0),
                "forty-third round": (79, 0), "forty-fourth round": (80, 0),
                "forty-fifth round": (79, 0), "forty-sixth round": (77, 0),
                "forty-seventh round": (79, 0), "forty-eighth round": (78, 1),
                "forty-ninth round": (80, 1), "fifty-second round": (80, 1),
                "fifty-third round": (79, 0), "fifty-fourth round": (79, 0),
                "fifty-fifth round": (79, 1), "fifty-sixth round": (78, 1),
                "fifty-seventh round": (75, 0), "sixtieth round": (80, 1),
                "sixty-first round": (77, 0), "sixty-second round": (80, 0),
                "sixty-third round": (77, 0), "sixty-fifth round": (77, 0),
                "sixty-sixth round": (79, 0), "sixty-seventh round": (80, 0),
                "fiftieth round": (80, 2), "fifty-first round": (76, 0),
                "fifty-eighth round": (76, 2), "fifty-ninth round": (78, 1),
                "sixty-fourth round": (79, 0), "sixty-eighth round": (78, 0),
                "seventieth round": (79, 0), "seventy-first round": (80, 0),
                "seventy-third round": (79, 0), "seventy-fourth round": (75, 0),
                "seventy-sixth round": (78, 0), "seventy-ninth round": (77, 0),
                "eightieth round": (79, 0), "eighty-second round": (76, 0),
                "seventy-seventh round": (80, 0), "eighty-third round": (78, 0),
                "eighty-fourth round": (80, 1), "eighty-fifth round": (77, 1),
                "eighty-seventh round": (80, 0), "eighty-eighth round": (77, 0),
                "ninetieth round": (78, 0), "ninety-first round": (79, 1),
                "ninety-second round": (78, 0), "ninety-fourth round": (80, 0),
                "ninety-fifth round": (77, 0), "ninety-seventh round": (79, 0),
                "ninety-eighth round": (78, 0), "hundredth round": (79, 0),
                "hundred-and-second round": (79, 1), "hundred-and-third round": (78, 0),
                "hundred-and-fifth round": (80, 1), "hundred-and-sixth round": (80, 0),
                "hundred-and-eighth round": (80, 1), "hundred-and-tenth round": (80, 1),
                "hundred-and-eleventh round": (79, 0), "hundred-and-thirteenth round": (79, 0),
                "hundred-and-fourteenth round": (79, 0), "hundred-and-sixteenth round": (77, 0),
                "hundred-and-eighteenth round": (78, 0), "hundred-and-nineteenth round": (77, 1),
                "hundred-and-twenty-first round": (76, 0),
                "hundred-and-twenty-second round": (79, 0),
                "hundred-and-twenty-fourth round": (80, 0),
                "hundred-and-twenty-sixth round": (78, 0),
                "hundred-and-twenty-seventh round": (80, 0),
                "hundred-and-twenty-ninth round": (79, 1), "hundred-and-thirtieth round": (77, 0),
                "hundred-and-thirty-second round": (80, 0),
                "hundred-and-thirty-fourth round": (79, 0),
                "hundred-and-thirty-fifth round": (80, 1),
                "hundred-and-thirty-seventh round": (80, 1),
                "hundred-and-thirty-eighth round": (80, 2), "hundred-and-fortieth round": (79, 1),
                "hundred-and-forty-second round": (80, 1),
                "hundred-and-forty-third round": (79, 0), "hundred-and-forty-fifth round": (79, 1),
                "hundred-and-forty-sixth round": (80, 0),
                "hundred-and-forty-eighth round": (80, 0), "hundred-and-fiftieth round": (79, 1),
                "hundred-and-fifty-first round": (79, 1), "hundred-and-fifty-third round": (79, 0),
                "hundred-and-fifty-fourth round": (80, 0),
                "hundred-and-fifty-sixth round": (79, 0),
                "hundred-and-fifty-eighth round": (80, 0),
                "hundred-and-fifty-ninth round": (80, 0), "hundred-and-sixty-first round": (78, 0),
                "hundred-and-sixty-second round": (79, 1),
                "hundred-and-sixty-fourth round": (79, 1),
                "hundred-and-sixty-sixth round": (80, 0),
                "hundred-and-sixty-seventh round": (80, 0),
                "hundred-and-sixty-ninth round": (79, 0), "hundred-and-seventieth round": (80, 0),
                "hundred-and-seventy-second round": (80, 0),
                "hundred-and-seventy-fourth round": (79, 0),
                "hundred-and-seventy-fifth round": (76, 3),
                "hundred-and-seventy-seventh round": (80, 1),
                "hundred-and-seventy-eighth round": (78, 0),
                "hundred-and-eighty-third round": (79, 0),
                "hundred-and-eighty-fifth round": (76, 0), "hundred-and-eightieth round": (78, 0),
                "hundred-and-eighty-second round": (79, 1),
                "hundred-and-eighty-sixth round": (80, 0),
                "hundred-and-eighty-eighth round": (78, 0), "hundred-and-ninetieth round": (79, 0),
                "hundred-and-ninety-first round": (79, 0),
                "hundred-and-ninety-third round": (78, 0),
                "hundred-and-ninety-fourth round": (79, 0),
                "hundred-and-ninety-sixth round": (77, 1),
                "hundred-and-ninety-eighth round": (78, 1),
                "hundred-and-ninety-ninth round": (79, 0), "two-hundred-and-first round": (79, 1),
                "two-hundred-and-second round": (80, 1), "two-hundred-and-fourth round": (80, 1),
                "two-hundred-and-sixth round": (79, 2), "two-hundred-and-seventh round": (79, 0),
                "two-hundred-and-ninth round": (79, 1), "two-hundred-and-tenth round": (80, 0),
                "two-hundred-and-twelfth round": (73, 1),
                "two-hundred-and-fourteenth round": (80, 1),
                "two-hundred-and-fifteenth round": (77, 1),
                "two-hundred-and-seventeenth round": (77, 1),
                "two-hundred-and-eighteenth round": (77, 1),
                "two-hundred-and-twentieth round": (79, 1),
                "two-hundred-and-twenty-second round": (80, 0),
                "two-hundred-and-twenty-third round": (80, 2),
                "two-hundred-and-twenty-fifth round": (80, 0),
                "two-hundred-and-twenty-sixth round": (78, 1),
                "two-hundred-and-twenty-eighth round": (77, 0),
                "two-hundred-and-thirtieth round": (78, 1),
                "two-hundred-and-thirty-first round": (78, 1),
                "two-hundred-and-thirty-third round": (79, 0),
                "two-hundred-and-thirty-fourth round": (79, 0),
                "two-hundred-and-thirty-sixth round": (77, 1),
                "two-hundred-and-thirty-eighth round": (78, 0),
                "two-hundred-and-thirty-ninth round": (75, 1),
                "two-hundred-and-forty-first round": (76, 0),
                "two-hundred-and-forty-second round": (78, 2),
                "two-hundred-and-forty-fourth round": (77, 2),
                "two-hundred-and-forty-sixth round": (75, 2),
                "two-hundred-and-forty-seventh round": (76, 0),
                "two-hundred-and-forty-ninth round": (78, 1),
                "two-hundred-and-fiftieth round": (78, 1),
                "two-hundred-and-fifty-second round": (74, 2),
                "two-hundred-and-fifty-fourth round": (78, 0),
                "two-hundred-and-fifty-fifth round": (75, 3),
                "two-hundred-and-fifty-seventh round": (74, 1),
                "two-hundred-and-fifty-eighth round": (78, 0),
                "two-hundred-and-sixtieth round": (72, 0),
                "two-hundred-and-sixty-second round": (70, 2),
                "two-hundred-and-sixty-third round": (76, 2),
                "two-hundred-and-sixty-fifth round": (76, 2),
                "two-hundred-and-sixty-sixth round": (75, 1),
                "two-hundred-and-sixty-eighth round": (75, 2),
                "two-hundred-and-seventieth round": (77, 2),
                "two-hundred-and-seventy-first round": (75, 2),
                "two-hundred-and-seventy-third round": (74, 0),
                "two-hundred-and-seventy-fourth round": (76, 0), "sixty-ninth round": (78, 0),
                "seventy-second round": (76, 1), "seventy-fifth round": (78, 1),
                "seventy-eighth round": (79, 1), "eighty-first round": (79, 0),
                "eighty-sixth round": (74, 0), "eighty-ninth round": (78, 0),
                "ninety-third round": (80, 1), "ninety-sixth round": (78, 0),
                "ninety-ninth round": (77, 1), "hundred-and-first round": (78, 0),
                "hundred-and-fourth round": (77, 0), "hundred-and-seventh round": (77, 0),
                "hundred-and-ninth round": (78, 1), "hundred-and-twelfth round": (78, 0),
                "hundred-and-fifteenth round": (77, 0), "hundred-and-seventeenth round": (78, 0),
                "hundred-and-twentieth round": (79, 1), "hundred-and-twenty-third round": (80, 1),
                "hundred-and-twenty-fifth round": (79, 0),
                "hundred-and-twenty-eighth round": (80, 0),
                "hundred-and-thirty-first round": (78, 0),
                "hundred-and-thirty-third round": (80, 0),
                "hundred-and-thirty-sixth round": (78, 0),
                "hundred-and-thirty-ninth round": (79, 1),
                "hundred-and-forty-first round": (80, 1),
                "hundred-and-forty-fourth round": (77, 1),
                "hundred-and-forty-seventh round": (78, 2),
                "hundred-and-forty-ninth round": (78, 1),
                "hundred-and-fifty-second round": (77, 1),
                "hundred-and-fifty-fifth round": (74, 0),
                "hundred-and-fifty-seventh round": (78, 1), "hundred-and-sixtieth round": (80, 2),
                "hundred-and-sixty-third round": (79, 0), "hundred-and-sixty-fifth round": (77, 1),
                "hundred-and-sixty-eighth round": (78, 0),
                "hundred-and-seventy-first round": (80, 0),
                "hundred-and-seventy-third round": (77, 0),
                "hundred-and-seventy-sixth round": (75, 0),
                "hundred-and-seventy-ninth round": (80, 1),
                "hundred-and-eighty-first round": (78, 1),
                "hundred-and-eighty-fourth round": (77, 3),
                "hundred-and-eighty-seventh round": (79, 0),
                "hundred-and-eighty-ninth round": (79, 1),
                "hundred-and-ninety-second round": (78, 0),
                "hundred-and-ninety-fifth round": (76, 0),
                "hundred-and-ninety-seventh round": (78, 0), "two-hundredth round": (79, 0),
                "two-hundred-and-third round": (78, 2), "two-hundred-and-fifth round": (80, 0),
                "two-hundred-and-eighth round": (80, 1), "two-hundred-and-eleventh round": (79, 0),
                "two-hundred-and-thirteenth round": (79, 0),
                "two-hundred-and-sixteenth round": (78, 0),
                "two-hundred-and-nineteenth round": (77, 2),
                "two-hundred-and-twenty-first round": (76, 0),
                "two-hundred-and-twenty-fourth round": (76, 0),
                "two-hundred-and-twenty-seventh round": (77, 1),
                "two-hundred-and-twenty-ninth round": (78, 0),
                "two-hundred-and-thirty-second round": (79, 2),
                "two-hundred-and-thirty-fifth round": (74, 3),
                "two-hundred-and-thirty-seventh round": (76, 1),
                "two-hundred-and-fortieth round": (71, 1),
                "two-hundred-and-forty-third round": (76, 4),
                "two-hundred-and-forty-fifth round": (77, 0),
                "two-hundred-and-forty-eighth round": (66, 1),
                "two-hundred-and-fifty-first round": (76, 3),
                "two-hundred-and-fifty-third round": (78, 1),
                "two-hundred-and-fifty-sixth round": (77, 2),
                "two-hundred-and-fifty-ninth round": (73, 1),
                "two-hundred-and-sixty-first round": (75, 1),
                "two-hundred-and-sixty-fourth round": (77, 4),
                "two-hundred-and-sixty-seventh round": (71, 1),
                "two-hundred-and-sixty-ninth round": (79, 0),
                "two-hundred-and-seventy-second round": (76, 1),
                "two-hundred-and-seventy-fifth round": (73, 3), "personal": (396, 0),
                "personal, fourth round": (157, 0), "personal, fifth round": (171, 0),
                "personal, sixth round": (135, 0), "personal, seventh round": (72, 1),
                "personal, ninth round": (128, 2), "personal, tenth round": (160, 1),
                "personal, eleventh round": (154, 1), "personal, thirteenth round": (162, 3),
                "personal, fourteenth round": (153, 2), "personal, fifteenth round": (106, 5),
                "personal, sixteenth round": (121, 2), "personal, seventeenth round": (123, 2),
                "personal, eighteenth round": (123, 1), "personal, nineteenth round": (133, 1),
                "personal, twentieth round": (122, 7), "personal, twenty-first round": (105, 1),
                "personal, twenty-second round": (151, 2),
                "personal, twenty-third round": (124, 6),
                "personal, twenty-fourth round": (132, 5),
                "personal, twenty-fifth round": (120, 1), "personal, twenty-sixth round": (131, 1),
                "personal, twenty-seventh round": (113, 3),
                "personal, twenty-eighth round": (145, 7),
                "personal, twenty-ninth round": (118, 7), "personal, thirtieth round": (139, 9),
                "personal, thirty-first round": (106, 2),
                "personal, thirty-second round": (118, 3),
                "personal, thirty-third round": (103, 2),
                "personal, thirty-fourth round": (130, 3),
                "personal, thirty-fifth round": (161, 2), "personal, thirty-sixth round": (130, 4),
                "personal, thirty-seventh round": (108, 4),
                "personal, thirty-eighth round": (129, 7),
                "personal, thirty-ninth round": (130, 3), "personal, fortieth round": (137, 3),
                "personal, forty-first round": (100, 6), "personal, forty-second round": (107, 1),
                "personal, forty-third round": (105, 2), "personal, forty-fourth round": (118, 3),
                "personal, forty-fifth round": (140, 1), "personal, forty-sixth round": (137, 3),
                "personal, forty-seventh round": (146, 5),
                "personal, forty-eighth round": (131, 5), "personal, forty-ninth round": (109, 5),
                "personal, fifty-second round": (114, 3), "personal, fifty-third round": (123, 6),
                "personal, fifty-fourth round": (144, 2), "personal, fifty-fifth round": (135, 3),
                "personal, fifty-sixth round": (132, 4), "personal, fifty-seventh round": (118, 4),
                "personal, sixtieth round": (129, 5), "personal, sixty-first round": (112, 5),
                "personal, sixty-second round": (135, 4), "personal, sixty-third round": (110, 3),
                "personal, sixty-fifth round": (132, 2), "personal, sixty-sixth round": (130, 6),
                "personal, sixty-seventh round": (135, 4), "personal, fiftieth round": (129, 5),
                "personal, fifty-first round": (103, 5), "personal, fifty-eighth round": (127, 2),
                "personal, fifty-ninth round": (107, 4), "personal, sixty-fourth round": (115, 3),
                "personal, sixty-eighth round": (126, 2), "personal, seventieth round": (130, 5),
                "personal, seventy-first round": (121, 5),
                "personal, seventy-third round": (133, 5),
                "personal, seventy-fourth round": (107, 2),
                "personal, seventy-sixth round": (136, 2),
                "personal, seventy-ninth round": (108, 1), "personal, eightieth round": (129, 2),
                "personal, eighty-second round": (131, 12),
                "personal, seventy-seventh round": (122, 4),
                "personal, eighty-third round": (100, 5),
                "personal, eighty-fourth round": (113, 5),
                "personal, eighty-fifth round": (144, 1),
                "personal, eighty-seventh round": (109, 3),
                "personal, eighty-eighth round": (117, 4), "personal, ninetieth round": (109, 2),
                "personal, ninety-first round": (127, 5),
                "personal, ninety-second round": (126, 5),
                "personal, ninety-fourth round": (131, 4),
                "personal, ninety-fifth round": (130, 3),
                "personal, ninety-seventh round": (135, 2),
                "personal, ninety-eighth round": (127, 3), "personal, hundredth round": (127, 2),
                "personal, hundred-and-second round": (137, 3),
                "personal, hundred-and-third round": (130, 5),
                "personal, hundred-and-fifth round": (131, 5),
                "personal, hundred-and-sixth round": (129, 3),
                "personal, hundred-and-eighth round": (128, 4),
                "personal, hundred-and-tenth round": (126, 3),
                "personal, hundred-and-eleventh round": (130, 2),
                "personal, hundred-and-thirteenth round": (132, 5),
                "personal, hundred-and-fourteenth round": (133, 3),
                "personal, hundred-and-sixteenth round": (132, 4),
                "personal, hundred-and-eighteenth round": (128, 4),
                "personal, hundred-and-nineteenth round": (126, 1),
                "personal, hundred-and-twenty-first round": (133, 3),
                "personal, hundred-and-twenty-second round": (115, 2),
                "personal, hundred-and-twenty-fourth round": (130, 3),
                "personal, hundred-and-twenty-sixth round": (130, 2),
                "personal, hundred-and-twenty-seventh round": (129, 5),
                "personal, hundred-and-twenty-ninth round": (128, 3),
                "personal, hundred-and-thirtieth round": (126, 4),
                "personal, hundred-and-thirty-second round": (130, 3),
                "personal, hundred-and-thirty-fourth round": (126, 2),
                "personal, hundred-and-thirty-fifth round": (131, 2),
                "personal, hundred-and-thirty-seventh round": (133, 6),
                "personal, hundred-and-thirty-eighth round": (130, 1),
                "personal, hundred-and-fortieth round": (124, 2),
                "personal, hundred-and-forty-second round": (128, 3),
                "personal, hundred-and-forty-third round": (129, 4),
                "personal, hundred-and-forty-fifth round": (131, 2),
                "personal, hundred-and-forty-sixth round": (124, 1),
                "personal, hundred-and-forty-eighth round": (132, 6),
                "personal, hundred-and-fiftieth round": (120, 3),
                "personal, hundred-and-fifty-first round": (129, 4),
                "personal, hundred-and-fifty-third round": (131, 2),
                "personal, hundred-and-fifty-fourth round": (129, 4),
                "personal, hundred-and-fifty-sixth round": (131, 4),
                "personal, hundred-and-fifty-eighth round": (130, 2),
                "personal, hundred-and-fifty-ninth round": (129, 3),
                "personal, hundred-and-sixty-first round": (138, 4),
                "personal, hundred-and-sixty-second round": (132, 5),
                "personal, hundred-and-sixty-fourth round": (140, 4),
                "personal, hundred-and-sixty-sixth round": (137, 3),
                "personal, hundred-and-sixty-seventh round": (130, 4),
                "personal, hundred-and-sixty-ninth round": (131, 3),
                "personal, hundred-and-seventieth round": (128, 3),
                "personal, hundred-and-seventy-second round": (132, 2),
                "personal, hundred-and-seventy-fourth round": (133, 4),
                "personal, hundred-and-seventy-fifth round": (133, 2),
                "personal, hundred-and-seventy-seventh round": (130, 4),
                "personal, hundred-and-seventy-eighth round": (125, 3),
                "personal, hundred-and-eighty-third round": (128, 0),
                "personal, hundred-and-eighty-fifth round": (131, 3),
                "personal, hundred-and-eightieth round": (128, 3),
                "personal, hundred-and-eighty-second round": (132, 2),
                "personal, hundred-and-eighty-sixth round": (121, 2),
                "personal, hundred-and-eighty-eighth round": (138, 2),
                "personal, hundred-and-ninetieth round": (139, 4),
                "personal, hundred-and-ninety-first round": (128, 3),
                "personal, hundred-and-ninety-third round": (127, 1),
                "personal, hundred-and-ninety-fourth round": (128, 1),
                "personal, hundred-and-ninety-sixth round": (134, 4),
                "personal, hundred-and-ninety-eighth round": (133, 4),
                "personal, hundred-and-ninety-ninth round": (128, 1),
                "personal, two-hundred-and-first round": (128, 5),
                "personal, two-hundred-and-second round": (134, 2),
                "personal, two-hundred-and-fourth round": (130, 2),
                "personal, two-hundred-and-sixth round": (131, 1),
                "personal, two-hundred-and-seventh round": (126, 2),
                "personal, two-hundred-and-ninth round": (127, 0),
                "personal, two-hundred-and-tenth round": (125, 5),
                "personal, two-hundred-and-twelfth round": (125, 4),
                "personal, two-hundred-and-fourteenth round": (134, 3),
                "personal, two-hundred-and-fifteenth round": (136, 2),
                "personal, two-hundred-and-seventeenth round": (124, 3),
                "personal, two-hundred-and-eighteenth round": (130, 3),
                "personal, two-hundred-and-twentieth round": (128, 3),
                "personal, two-hundred-and-twenty-second round": (127, 4),
                "personal, two-hundred-and-twenty-third round": (133, 1),
                "personal, two-hundred-and-twenty-fifth round": (126, 5),
                "personal, two-hundred-and-twenty-sixth round": (129, 5),
                "personal, two-hundred-and-twenty-eighth round": (125, 6),
                "personal, two-hundred-and-thirtieth round": (122, 4),
                "personal, two-hundred-and-thirty-first round": (123, 5),
                "personal, two-hundred-and-thirty-third round": (129, 6),
                "personal, two-hundred-and-thirty-fourth round": (128, 1),
                "personal, two-hundred-and-thirty-sixth round": (140, 0),
                "personal, two-hundred-and-thirty-eighth round": (137, 1),
                "personal, two-hundred-and-thirty-ninth round": (126, 4),
                "personal, two-hundred-and-forty-first round": (139, 1),
                "personal, two-hundred-and-forty-second round": (128, 1),
                "personal, two-hundred-and-forty-fourth round": (135, 1),
                "personal, two-hundred-and-forty-sixth round": (135, 0),
                "personal, two-hundred-and-forty-seventh round": (127, 3),
                "personal, two-hundred-and-forty-ninth round": (127, 2),
                "personal, two-hundred-and-fiftieth round": (132, 2),
                "personal, two-hundred-and-fifty-second round": (134, 3),
                "personal, two-hundred-and-fifty-fourth round": (128, 1),
                "personal, two-hundred-and-fifty-fifth round": (139, 0),
                "personal, two-hundred-and-fifty-seventh round": (127, 5),
                "personal, two-hundred-and-fifty-eighth round": (140, 0),
                "personal, two-hundred-and-sixtieth round": (129, 1),
                "personal, two-hundred-and-sixty-second round": (135, 5),
                "personal, two-hundred-and-sixty-third round": (135, 2),
                "personal, two-hundred-and-sixty-fifth round": (133, 3),
                "personal, two-hundred-and-sixty-sixth round": (136, 2),
                "personal, two-hundred-and-sixty-eighth round": (128, 3),
                "personal, two-hundred-and-seventieth round": (141, 2),
                "personal, two-hundred-and-seventy-first round": (130, 1),
                "personal, two-hundred-and-seventy-third round": (135, 1),
                "personal, two-hundred-and-seventy-fourth round": (130, 1),
                "personal, sixty-ninth round": (117, 4),
                "personal, seventy-second round": (117, 1),
                "personal, seventy-fifth round": (135, 4),
                "personal, seventy-eighth round": (115, 4),
                "personal, eighty-first round": (125, 4), "personal, eighty-sixth round": (109, 3),
                "personal, eighty-ninth round": (134, 3), "personal, ninety-third round": (127, 4),
                "personal, ninety-sixth round": (131, 2), "personal, ninety-ninth round": (127, 3),
                "personal, hundred-and-first round": (133, 2),
                "personal, hundred-and-fourth round": (125, 4),
                "personal, hundred-and-seventh round": (130, 1),
                "personal, hundred-and-ninth round": (137, 2),
                "personal, hundred-and-twelfth round": (133, 0),
                "personal, hundred-and-fifteenth round": (126, 5),
                "personal, hundred-and-seventeenth round": (132, 3),
                "personal, hundred-and-twentieth round": (132, 4),
                "personal, hundred-and-twenty-third round": (131, 1),
                "personal, hundred-and-twenty-fifth round": (131, 2),
                "personal, hundred-and-twenty-eighth round": (129, 2),
                "personal, hundred-and-thirty-first round": (134, 5),
                "personal, hundred-and-thirty-third round": (129, 2),
                "personal, hundred-and-thirty-sixth round": (128, 3),
                "personal, hundred-and-thirty-ninth round": (124, 4),
                "personal, hundred-and-forty-first round": (130, 3),
                "personal, hundred-and-forty-fourth round": (120, 3),
                "personal, hundred-and-forty-seventh round": (128, 3),
                "personal, hundred-and-forty-ninth round": (134, 3),
                "personal, hundred-and-fifty-second round": (131, 3),
                "personal, hundred-and-fifty-fifth round": (120, 3),
                "personal, hundred-and-fifty-seventh round": (133, 3),
                "personal, hundred-and-sixtieth round": (128, 7),
                "personal, hundred-and-sixty-third round": (122, 0),
                "personal, hundred-and-sixty-fifth round": (132, 3),
                "personal, hundred-and-sixty-eighth round": (132, 5),
                "personal, hundred-and-seventy-first round": (124, 5),
                "personal, hundred-and-seventy-third round": (124, 3),
                "personal, hundred-and-seventy-sixth round": (128, 5),
                "personal, hundred-and-seventy-ninth round": (121, 6),
                "personal, hundred-and-eighty-first round": (132, 3),
                "personal, hundred-and-eighty-fourth round": (125, 2),
                "personal, hundred-and-eighty-seventh round": (120, 5),
                "personal, hundred-and-eighty-ninth round": (129, 2),
                "personal, hundred-and-ninety-second round": (132, 5),
                "personal, hundred-and-ninety-fifth round": (129, 4),
                "personal, hundred-and-ninety-seventh round": (133, 4),
                "personal, two-hundredth round": (128, 3),
                "personal, two-hundred-and-third round": (137, 3),
                "personal, two-hundred-and-fifth round": (135, 2),
                "personal, two-hundred-and-eighth round": (129, 3),
                "personal, two-hundred-and-eleventh round": (122, 3),
                "personal, two-hundred-and-thirteenth round": (130, 2),
                "personal, two-hundred-and-sixteenth round": (128, 1),
                "personal, two-hundred-and-nineteenth round": (128, 3),
                "personal, two-hundred-and-twenty-first round": (130, 9),
                "personal, two-hundred-and-twenty-fourth round": (127, 5),
                "personal, two-hundred-and-twenty-seventh round": (130, 1),
                "personal, two-hundred-and-twenty-ninth round": (121, 3),
                "personal, two-hundred-and-thirty-second round": (127, 3),
                "personal, two-hundred-and-thirty-fifth round": (130, 4),
                "personal, two-hundred-and-thirty-seventh round": (126, 3),
                "personal, two-hundred-and-fortieth round": (132, 2),
                "personal, two-hundred-and-forty-third round": (130, 3),
                "personal, two-hundred-and-forty-fifth round": (127, 3),
                "personal, two-hundred-and-forty-eighth round": (134, 4),
                "personal, two-hundred-and-fifty-first round": (128, 2),
                "personal, two-hundred-and-fifty-third round": (136, 2),
                "personal, two-hundred-and-fifty-sixth round": (136, 1),
                "personal, two-hundred-and-fifty-ninth round": (133, 1),
                "personal, two-hundred-and-sixty-first round": (130, 1),
                "personal, two-hundred-and-sixty-fourth round": (135, 4),
                "personal, two-hundred-and-sixty-seventh round": (133, 2),
                "personal, two-hundred-and-sixty-ninth round": (137, 2),
                "personal, two-hundred-and-seventy-second round": (129, 1),
                "personal, two-hundred-and-seventy-fifth round": (139, 2)}


def test_the_guard_meets_the_regression_floors_on_the_blind_probes() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "guard_probe_blind.py"), "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for name, (found, flagged) in BLIND_FLOORS.items():
        assert result[name]["found"] >= found, (name, result[name])
        assert result[name]["flagged"] <= flagged, (name, result[name])
    assert result["personal"]["extra"] == 0, result["personal"]
    assert result["personal, fourth round"]["extra"] == 0, result["personal, fourth round"]

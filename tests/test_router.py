"""The independence router: CLI forms end to end on small fixtures, scoring, metrics, calibration.

The fixture is built so the answer is known: prompts about "hard" topics are ones the weak
model gets wrong and the strong one right; "easy" ones both get right. A working router must
rank the hard ones first, and the RouteLLM metrics must say so.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emancipate.routing.cli import app
from emancipate.routing.learned import IndependenceRouter, RouterFileError, train_router
from emancipate.routing.learned_data import Dataset, read_csvs
from emancipate.routing.learned_metrics import (
    apgr,
    cpt,
    evaluate_scores,
    fine_curve,
    random_baseline,
    routellm_curve,
)

STRONG, WEAK = "vendor/big-model", "inhouse-small"
HARD = ["integral", "eigenvalue", "theorem", "derivative", "proof", "tensor"]
EASY = ["capital", "colour", "animal", "fruit", "weekday", "planet"]
FILLER = ["which", "option", "is", "right", "about", "the", "following", "statement", "in", "a"]

runner = CliRunner()


def _prompt(rng: random.Random, word: str, i: int) -> str:
    words = rng.sample(FILLER, 5) + [word] + rng.sample(FILLER, rng.randint(1, 5))
    return f"Q{i}: {' '.join(words)}?\nA. one\nB. two\nC. three\nD. four\nAnswer:"


def _write_fixture(root: Path, files: int = 6, rows: int = 40, seed: int = 1) -> Path:
    """`files` subject CSVs; hard prompts: strong right, weak wrong (90% of the time)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    i = 0
    for f in range(files):
        with (root / f"subject_{f}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["prompt", WEAK, STRONG, "extra"])  # extra column must be ignored
            for _ in range(rows):
                hard = rng.random() < 0.4
                word = rng.choice(HARD if hard else EASY)
                noisy = rng.random() < 0.1
                strong_ok = True
                weak_ok = (not hard) if not noisy else hard
                w.writerow([_prompt(rng, word, i), str(weak_ok), "1" if strong_ok else "0", "x"])
                i += 1
    return root


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_fixture(tmp_path_factory.mktemp("routing") / "data")


@pytest.fixture(scope="module")
def router_file(fixture_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("router") / "router.json"
    res = runner.invoke(app, ["train", "--data", str(fixture_dir), "--strong", STRONG,
                              "--weak", WEAK, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


# ---- CLI forms --------------------------------------------------------------------------


def test_train_writes_a_json_router_file(router_file: Path) -> None:
    doc = json.loads(router_file.read_text())
    assert doc["format"] == "emancipate-router" and doc["version"] == 2
    words = doc["model"]["words"]
    assert "integral" in words["vocab"] and "extra" not in words["vocab"]
    assert len(words["vocab"]) == len(words["idf"]) == len(words["coef"])
    assert len(words["centroids"]) == 6  # one per training file
    assert doc["model"]["prior"]["features"][0] == "log_chars"
    held = doc["meta"]["heldout"]
    assert held["apgr"] > held["length_apgr"]  # the fixture's words carry across files
    assert held["words_weight"] > 0
    cal = doc["calibration"]
    assert cal["method"].startswith("5-fold by file")
    assert len(cal["threshold"]) == len(cal["inhouse_share"]) == len(cal["gap_recovered"])
    assert doc["meta"]["n_prompts"] == 240 and doc["meta"]["n_files"] == 6


def test_train_accepts_several_paths_after_data(fixture_dir: Path, tmp_path: Path) -> None:
    files = sorted(fixture_dir.glob("*.csv"))
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["train", "--data", str(files[0]), str(files[1]), str(files[2]),
                              "--strong", STRONG, "--weak", WEAK, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "trained on 120 prompts from 3 file(s)" in res.output
    assert "held out (3-fold by file (unseen files)): APGR" in res.output
    assert "prompt-length rule APGR" in res.output and "feature families kept: length" in res.output
    # three files: three folds, each holding one file out (never prompts of a seen file)
    assert IndependenceRouter.load(out).calibration["method"] == "3-fold by file (unseen files)"
    res = runner.invoke(app, ["train", "--data", str(files[0]), "--strong", STRONG,
                              "--weak", WEAK, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert IndependenceRouter.load(out).calibration["method"].startswith("5-fold shuffled")


def test_train_from_ledger_without_verdicts_says_what_is_missing(tmp_path: Path) -> None:
    # The end-to-end form (verdicts from a gateway's shadow traffic) is in test_shadow.py.
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"server: {{database_url: 'sqlite:///{tmp_path / 'ledger.db'}'}}\n")
    res = runner.invoke(app, ["train", "--from-ledger", "--config", str(cfg),
                              "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 2
    assert "0 shadow verdicts" in res.output and "keep_prompts" in res.output
    assert not (tmp_path / "r.json").exists()


def test_train_names_a_missing_column(fixture_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "--data", str(fixture_dir), "--strong", "nope",
                              "--weak", WEAK, "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 2
    assert "missing column(s) 'nope'" in res.output and "subject_0.csv" in res.output


def test_train_rejects_bad_labels(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"prompt,{STRONG},{WEAK}\nhello,True,maybe\n")
    res = runner.invoke(app, ["train", "--data", str(bad), "--strong", STRONG, "--weak", WEAK,
                              "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 2
    assert "row 2" in res.output and "'maybe'" in res.output


def test_train_survives_a_fold_with_one_class(tmp_path: Path) -> None:
    """Few positives: some calibration folds see none; training must still finish."""
    rng = random.Random(11)
    root = tmp_path / "few"
    root.mkdir()
    for f in range(5):
        with (root / f"s{f}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["prompt", STRONG, WEAK])
            for i in range(8):
                hard = f == 0 and i < 3  # all three "strong wins" rows sit in one file
                w.writerow([_prompt(rng, rng.choice(HARD if hard else EASY), i), "1",
                            "0" if hard else "1"])
    res = runner.invoke(app, ["train", "--data", str(root), "--strong", STRONG, "--weak", WEAK,
                              "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert 0.0 <= IndependenceRouter.load(tmp_path / "r.json").score("x") <= 1.0


def test_score_writes_one_row_per_input_in_order(router_file: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    prompts = [_prompt(rng, w, 1000 + i) for i, w in enumerate(HARD + EASY)]
    prompts.append('a prompt with "quotes", commas\nand a newline')
    inp = tmp_path / "in.csv"
    with inp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt"])
        w.writerows([[i, p] for i, p in enumerate(prompts)])
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["score", "--router", str(router_file), "--input", str(inp),
                              "--output", str(out)])
    assert res.exit_code == 0, res.output
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["prompt", "score"]
    assert [r[0] for r in rows[1:]] == prompts
    scores = [float(r[1]) for r in rows[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    hard, easy = scores[: len(HARD)], scores[len(HARD): len(HARD) + len(EASY)]
    assert min(hard) > max(easy), (hard, easy)


def test_score_of_an_empty_csv_writes_the_header_only(router_file: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("prompt\n")
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["score", "--router", str(router_file), "--input", str(inp),
                              "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text().strip() == "prompt,score"


def test_score_rejects_a_file_that_is_not_a_router(tmp_path: Path) -> None:
    bogus = tmp_path / "r.json"
    bogus.write_text('{"hello": 1}')
    res = runner.invoke(app, ["score", "--router", str(bogus), "--input", str(bogus),
                              "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "not an emancipate-router file" in res.output


def test_eval_json_has_the_metrics_and_beats_the_baselines(
    router_file: Path, tmp_path: Path
) -> None:
    fresh = _write_fixture(tmp_path / "unseen", files=2, rows=60, seed=99)
    png = tmp_path / "curve.png"
    res = runner.invoke(app, ["eval", "--router", str(router_file), "--data", str(fresh),
                              "--strong", STRONG, "--weak", WEAK, "--json", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "NaN" not in res.stdout  # strict JSON: undefined values are null
    doc = json.loads(res.stdout)
    assert doc["prompts"] == 120
    by_name = {r["name"]: r for r in doc["routers"]}
    assert set(by_name) == {"router", "random", "prompt-length"}
    for r in by_name.values():
        assert {"apgr", "cpt50", "cpt80", "curve"} <= set(r)
        assert len(r["curve"]) == 11
    router = by_name["router"]
    assert router["apgr"] > 0.65 and router["apgr"] > by_name["random"]["apgr"] + 0.15
    assert router["cpt50"] < 0.4 < by_name["random"]["cpt50"]
    shares = [p["strong_share"] for p in router["curve"]]
    assert shares[0] == 1.0 and shares[-1] == 0.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_table_and_in_sample_note(router_file: Path, fixture_dir: Path) -> None:
    res = runner.invoke(app, ["eval", "--router", str(router_file), "--data", str(fixture_dir),
                              "--strong", STRONG, "--weak", WEAK])
    assert res.exit_code == 0, res.output
    for needle in ("APGR", "CPT(50%)", "CPT(80%)", "random", "prompt-length", "in-sample"):
        assert needle in res.output


def test_the_gateway_cli_mounts_the_router_commands() -> None:
    from emancipate.cli import app as main_app

    res = runner.invoke(main_app, ["router", "--help"])
    assert res.exit_code == 0
    for cmd in ("train", "score", "eval"):
        assert cmd in res.output


# ---- scoring --------------------------------------------------------------------------


def test_request_path_words_match_the_training_tfidf(fixture_dir: Path) -> None:
    """The request path re-implements TF-IDF and the centroid distance by hand; they must
    equal what training computed with scipy."""
    from emancipate.routing.features import view
    from emancipate.routing.training import build_vocab, centroids, distances, tfidf

    ds = read_csvs([fixture_dir], STRONG, WEAK)
    words = [view(p)[1] for p in ds.prompts]
    vocab, idf = build_vocab(words, 500)
    M = tfidf(words, vocab, idf)
    coef = np.random.default_rng(0).normal(size=len(vocab))
    cents = centroids(M, np.array(ds.groups))
    r = IndependenceRouter.length_rule({})
    r._vocab, r._idf, r._coef, r._centroids = ({t: i for i, t in enumerate(vocab)}, idf,
                                              coef, cents)
    r._by_term = np.ascontiguousarray(cents.T)
    r._text_w = 1.0
    probe = ds.prompts[:30]
    got = [r._words(view(p)[1]) for p in probe]
    P = tfidf([view(p)[1] for p in probe], vocab, idf)
    assert np.allclose([g[0] for g in got], P @ coef, atol=1e-9)
    assert np.allclose([g[1] for g in got], distances(P, cents), atol=1e-9)


def test_number_maths_code_and_option_counts_are_the_plain_definitions() -> None:
    """The feature pass counts digit runs, maths and code marks with byte tricks (one C pass
    each) and finds answer options with a newline-led regex; they must equal the plain
    definitions on any text: runs of ASCII digits, the number of (non-overlapping)
    occurrences of each mark, the answer option lines (`A. …`, `(B) …`, at a line start, A to J)."""
    import re

    from emancipate.routing.features import FEATURES, view

    names = list(FEATURES)
    maths = "=+*/^<>≤≥√∫∑πθ∞%$\\"
    code = ("{", "}", ";", "==", "!=", "->", "def ", "return", "import ", "print(", "```")
    option = re.compile(r"(?m)^[ \t]*\(?[A-J][.)][ \t]?(.*)$")
    pieces = ["0", "42", " ", "a", "é", "’", "\n", "def ", "return", "import ", "print(",
              "`", "```", "!", "-", ">", "===", "A. ", "\n(B) ", "\n  C)", "J.", "K.", "\t",
              *maths, *code]
    rng = random.Random(5)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        feats = dict(zip(names, view(text)[0], strict=True))
        assert feats["log_numbers"] == math.log1p(len(re.findall(r"[0-9]+", text))), text
        assert feats["maths_share"] == 100.0 * sum(map(text.count, maths)) / (1 + len(text))
        assert feats["log_code"] == math.log1p(sum(map(text.count, code))), text
        found = list(option.finditer(text))
        question = text[:found[0].start()] if found else text
        assert feats["options"] == min(len(found), 10), text
        assert feats["log_question_chars"] == math.log1p(len(question)), text
        assert feats["log_option_chars"] == math.log1p(
            sum(len(m.group(1)) for m in found) / len(found) if found else 0.0), text


def test_fixed_effects_keep_subject_base_rates_out_of_word_weights() -> None:
    """A word that only marks a file whose prompts are all hard must not get the credit."""
    from emancipate.routing.features import view
    from emancipate.routing.training import build_vocab, fit_words, tfidf

    rng = random.Random(3)
    prompts, groups, y = [], [], []
    for i in range(100):  # file a: every prompt says "zebra" and is hard
        prompts.append(_prompt(rng, "zebra", i))
        groups.append("a")
        y.append(1)
    for i in range(100, 200):  # file b: hard words are hard, easy words are easy
        hard = i % 2 == 0
        prompts.append(_prompt(rng, rng.choice(HARD if hard else EASY), i))
        groups.append("b")
        y.append(1 if hard else 0)
    words = [view(p)[1] for p in prompts]
    vocab, idf = build_vocab(words, 1000)
    coef = dict(zip(vocab, fit_words(tfidf(words, vocab, idf), np.array(y), np.array(groups)),
                    strict=True))
    assert coef["integral"] > 0.5 and abs(coef["zebra"]) < 0.5 * coef["integral"]


def _subject_words_dataset(seed: int = 5) -> Dataset:
    """Eight subjects, each with its own vocabulary and its own hard share; hard prompts are
    longer (a prior that carries), and apart from that hardness is random within a subject:
    the words only tell the subject, which does not carry to a subject never seen."""
    rng = random.Random(seed)
    prompts, strong, weak, groups = [], [], [], []
    for f in range(8):
        topic = [f"topic{f}word{k}" for k in range(6)]
        hard_share = 0.2 + 0.08 * f
        for i in range(60):
            hard = rng.random() < hard_share
            words = rng.sample(FILLER, 5 + (4 if hard else 0)) + rng.sample(topic, 3)
            prompts.append(f"Q{f}-{i}: {' '.join(words)}?\nA. one\nB. two\nAnswer:")
            strong.append(1.0)
            weak.append(0.0 if hard else 1.0)
            groups.append(f"subject_{f}")
    return Dataset(prompts, np.array(strong), np.array(weak), groups)


def test_words_that_only_name_the_subject_are_not_admitted() -> None:
    router = train_router(_subject_words_dataset())
    held = router.heldout
    assert held["words_weight"] == 0.0, held
    assert router.model["combine"]["text"] == 0.0
    assert held["method"].startswith("5-fold by file")


def test_a_prompt_unlike_the_training_data_is_scored_by_the_length_rule(
        router_file: Path) -> None:
    r = IndependenceRouter.load(router_file)
    c = r.model["combine"]
    rng = random.Random(2)
    near = [r.parts(_prompt(rng, w, 5000 + i)) for i, w in enumerate(HARD + EASY)]
    assert sum(p["shrink"] for p in near) < 0.5 * len(near)  # like training: not shrunk
    for far_prompt in ("Écris un poème sur la mer, s'il te plaît, en douze vers.",
                       "def reverse(xs):\n    return xs[::-1]\n" * 20):
        p = r.parts(far_prompt)
        assert p["distance"] > c["far"] and p["shrink"] == 1.0
        assert p["logit"] == pytest.approx(c["bias"] + c["scale"] * p["length"])
    # the length rule is monotone: a longer far-away prompt is more likely sent out
    short, long = r.score("zzz qqq"), r.score("zzz qqq " * 200)
    assert long > short


def test_an_answer_format_the_training_data_lacks_is_scored_by_the_length_rule(
        router_file: Path) -> None:
    """Training words, but no options (a maths word problem, a chat message): the format
    was not learned, so the length rule routes it whatever the words say."""
    r = IndependenceRouter.load(router_file)
    c = r.model["combine"]
    assert c["formats"] == {"4": 1.0} and c["rare_format"] == 0.01
    rng = random.Random(3)
    for i, word in enumerate(HARD + EASY):
        mc = _prompt(rng, word, 6000 + i)
        bare = mc.split("\n")[0]  # the same question without its options
        assert r.parts(bare)["shrink"] == 1.0
        assert r.parts(bare)["logit"] == pytest.approx(c["bias"] + c["scale"]
                                                         * r.parts(bare)["length"])
    # a multiple-choice prompt is unaffected, and so is an older file without `formats`
    older = IndependenceRouter({**r.model, "combine": {k: v for k, v in c.items()
                                                       if k not in ("formats", "rare_format")}},
                               r.calibration, r.meta)
    mc = _prompt(random.Random(9), HARD[0], 7000)
    assert older.parts(mc)["shrink"] == r.parts(mc)["shrink"] < 1.0


def test_save_load_round_trip_and_version_check(router_file: Path, tmp_path: Path) -> None:
    r = IndependenceRouter.load(router_file)
    copy = tmp_path / "copy.json"
    r.save(copy)
    r2 = IndependenceRouter.load(copy)
    for p in ["what is the integral of the tensor", "name the capital", ""]:
        assert r2.score(p) == pytest.approx(r.score(p), abs=1e-5)
    doc = json.loads(copy.read_text())
    doc["version"] = 99
    copy.write_text(json.dumps(doc))
    with pytest.raises(RouterFileError, match="version 99 is not supported"):
        IndependenceRouter.load(copy)
    doc["version"] = 1  # a file from before the held-out-group router: refused, with why
    copy.write_text(json.dumps(doc))
    with pytest.raises(RouterFileError, match="version 1 .* retrain it with `emancipate router"):
        IndependenceRouter.load(copy)
    with pytest.raises(RouterFileError, match="no such router file"):
        IndependenceRouter.load(tmp_path / "missing.json")


# ---- calibration ------------------------------------------------------------------------


def _hand_router(gap_recovered: list[float], strong_q: float = 0.9,
                 weak_q: float = 0.7) -> IndependenceRouter:
    n = len(gap_recovered)
    cal = {
        "threshold": [i / (n - 1) for i in range(n)],
        "inhouse_share": [i / (n - 1) for i in range(n)],
        "gap_recovered": gap_recovered,
        "quality": [weak_q + g * (strong_q - weak_q) for g in gap_recovered],
        "strong_quality": strong_q, "weak_quality": weak_q,
    }
    return IndependenceRouter.length_rule(cal)


def test_quality_floor_picks_the_largest_safe_inhouse_share() -> None:
    # a noisy curve: recovered drops to 0.93 at share 0.4, then bounces back to 0.96
    r = _hand_router([1.0, 0.99, 0.97, 0.955, 0.93, 0.96, 0.8, 0.6, 0.4, 0.2, 0.0])
    assert r.threshold_for(quality_floor=0.95) == pytest.approx(0.3)  # not 0.5: conservative
    assert r.threshold_for(quality_floor=0.9) == pytest.approx(0.5)
    assert r.threshold_for(quality_floor=1.0) == pytest.approx(0.0)  # everything external
    assert r.threshold_for(quality_floor=0.0) == math.inf  # everything in-house
    assert r.threshold_for() == r.threshold_for(quality_floor=0.95)  # the default floor
    assert r.threshold_for(quality_floor=0.9) <= r.threshold_for(quality_floor=0.8)


def test_inhouse_share_interpolates_and_bounds() -> None:
    r = _hand_router([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    assert r.threshold_for(inhouse_share=0.25) == pytest.approx(0.25)
    assert r.threshold_for(inhouse_share=0.0) == 0.0
    assert r.threshold_for(inhouse_share=1.0) == math.inf
    with pytest.raises(ValueError, match="not both"):
        r.threshold_for(quality_floor=0.9, inhouse_share=0.5)
    with pytest.raises(ValueError, match="within 0..1"):
        r.threshold_for(inhouse_share=1.5)


def test_no_gap_means_everything_in_house() -> None:
    r = _hand_router([1.0, 0.5, 0.0], strong_q=0.7, weak_q=0.7)
    assert r.threshold_for(quality_floor=0.99) == math.inf


def test_trained_calibration_delivers_the_share_it_promises(router_file: Path) -> None:
    r = IndependenceRouter.load(router_file)
    cal = r.calibration
    assert cal["inhouse_share"][0] == 0.0 and cal["inhouse_share"][-1] == 1.0
    assert cal["gap_recovered"][0] == pytest.approx(1.0)
    for share in (0.2, 0.5, 0.8):
        est = r.estimate(r.threshold_for(inhouse_share=share))
        assert est["inhouse_share"] == pytest.approx(share, abs=0.02)
    # on this separable fixture most easy prompts can stay home at a 90% floor
    assert r.estimate(r.threshold_for(quality_floor=0.9))["inhouse_share"] > 0.4


# ---- metrics (RouteLLM's method) -----------------------------------------------------------


def test_routellm_curve_and_metrics_on_a_known_case() -> None:
    # 10 prompts; the strong model wins on the 3 highest-scored ones
    strong = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], dtype=float)
    weak = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], dtype=float)
    scores = np.arange(10, dtype=float)
    curve = routellm_curve(scores, strong, weak)
    assert [p.strong_share for p in curve] == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4,
                                                              0.3, 0.2, 0.1, 0.0])
    assert curve[-1].quality == pytest.approx(0.7) and curve[0].quality == pytest.approx(1.0)
    # quality rises 0.1 per 10% of strong calls up to 30%, then stays at 1.0
    auc = 0.7 + 0.3 * 0.3 / 2 + 0.3 * 0.7
    assert apgr(curve, 1.0, 0.7) == pytest.approx((auc - 0.7) / 0.3)
    assert cpt(curve, 1.0, 0.7, 0.5) == pytest.approx(0.15)
    assert cpt(curve, 1.0, 0.7, 0.8) == pytest.approx(0.24)
    reverse = evaluate_scores("worst", -scores, strong, weak)
    assert reverse.apgr < 0.2 and reverse.cpt50 > 0.8


def test_random_router_sits_near_half() -> None:
    rng = np.random.default_rng(5)
    strong = (rng.random(2000) < 0.85).astype(float)
    weak = (rng.random(2000) < 0.65).astype(float)
    r = random_baseline(strong, weak)
    assert 0.4 < r.apgr < 0.6 and 0.35 < r.cpt50 < 0.65


def test_fine_curve_counts_inhouse_share_and_gap() -> None:
    strong = np.array([1, 1, 1, 1], dtype=float)
    weak = np.array([1, 1, 0, 0], dtype=float)
    c = fine_curve(np.array([0.1, 0.2, 0.8, 0.9]), strong, weak, points=5)
    assert c["inhouse_share"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert c["gap_recovered"] == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.0])


# ---- the held-out-group bench ----------------------------------------------------------------


def test_router_eval_quick_reports_both_held_out_families_with_intervals(
        fixture_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "eval"
    done = subprocess.run(
        [sys.executable, str(repo / "bench" / "router_eval.py"), "--quick", "--data",
         str(fixture_dir), "--strong", STRONG, "--weak", WEAK, "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=repo, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [f["family"] for f in doc["families"]] == ["leave-one-subject-out",
                                                      "leave-domain-out"]
    for fam in doc["families"]:
        by_name = {r["name"]: r for r in fam["results"]}
        assert set(by_name) == {"random", "length", "router"}
        for name in ("random", "length", "router", "router - length"):
            for metric in ("apgr", "cpt50", "cpt80"):
                lo, hi = fam["bootstrap"][name][metric]
                assert lo <= hi
        lo, hi = fam["bootstrap"]["router"]["apgr"]
        assert lo <= by_name["router"]["apgr"] <= hi
        # on this fixture the words carry to unseen files: the router must beat the length rule
        assert by_name["router"]["apgr"] > by_name["length"]["apgr"] + 0.1
        assert len(fam["fold_summaries"]) == fam["groups"] == 6
    # the decision's latency is reported (its size belongs to bench/, not to a test)
    assert isinstance(doc["decision"]["router"]["cpu_p50_us"], (int, float))
    assert "leave-domain-out (6 groups)" in done.stdout and "router - length" in done.stdout

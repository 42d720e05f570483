"""The secret rule engine: every rule's own examples, rule files as config, stable labels."""

from __future__ import annotations

import random
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from emancipate.guard import Guard, GuardConfig
from emancipate.guard.engine import RULES_DIR, builtin_rules, load_rules

GUARD = Guard.from_config(GuardConfig(classes=["secret"]))
RULES = builtin_rules()
EXAMPLES = [(r.id, r.detector, t) for r in RULES for t in r.examples]
NEGATIVES = [(r.id, r.detector, t) for r in RULES for t in r.negatives]


def test_the_builtin_files_hold_our_rules_and_gitleaks_rules() -> None:
    ids = {r.id for r in RULES}
    assert len(RULES) > 200
    assert {"1password-secret-key", "doppler-api-token", "connection-string-password"} <= ids
    assert "generic-api-key" not in ids  # the keyword-local detectors read those assignments
    assert (RULES_DIR / "LICENSE-gitleaks").read_text().startswith("MIT License")


@pytest.mark.parametrize(("rule_id", "detector", "text"), EXAMPLES,
                         ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(EXAMPLES)])
def test_every_rule_finds_its_own_examples(rule_id: str, detector: str, text: str) -> None:
    assert detector in {f.detector for f in GUARD.scan(text)}, rule_id


@pytest.mark.parametrize(("rule_id", "detector", "text"), NEGATIVES,
                         ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(NEGATIVES)])
def test_no_rule_fires_on_its_own_negatives(rule_id: str, detector: str, text: str) -> None:
    assert detector not in {f.detector for f in GUARD.scan(text)}, rule_id


def test_an_operator_rule_file_adds_a_rule(tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text("[[rules]]\nid = 'acme-internal-token'\ndetector = 'vendor_token'\n"
                    "regex = '''\\bacme_[a-z0-9]{24}\\b'''\nkeywords = ['acme_']\n")
    guard = Guard.from_config(GuardConfig(classes=["secret"], rules_files=[str(path)]))
    text = "use acme_q3vb8xk2lm9pz7rt4yw1nc6h to log in"
    assert [(f.detector, text[f.start:f.end]) for f in guard.scan(text)] == [
        ("vendor_token", "acme_q3vb8xk2lm9pz7rt4yw1nc6h")]
    assert not GUARD.scan(text)


def test_a_rules_keywords_match_as_the_text_is_folded(tmp_path: Path) -> None:
    """The keyword automaton reads the folded text (`Schlüssel` as `schlussel`): a keyword
    written with accents or capitals is folded the same way, or it would never match."""
    path = tmp_path / "acme.toml"
    path.write_text("[[rules]]\nid = 'acme-schluessel'\ndetector = 'vendor_token'\n"
                    "regex = '''(?i)schl(?:ü|ue)ssel: (acme[0-9]{6})'''\n"
                    "keywords = ['Schlüssel']\n", encoding="utf-8")
    guard = Guard.from_config(GuardConfig(classes=["secret"], rules_files=[str(path)]))
    assert [f.detector for f in guard.scan("Der Schlüssel: acme739152")] == ["vendor_token"]


def test_a_rules_words_in_other_scripts_match_as_the_view_writes_them(tmp_path: Path) -> None:
    """The scan reads the view, which writes Greek and Cyrillic letters drawn like Latin
    ones as Latin and drops Thai vowel signs: a rule's regex written with the words people
    write (`κωδικός`, `пароль`, `รหัสประตู`) is read the same way, or it would never match
    (every rule in another script missed its own text before)."""
    path = tmp_path / "acme.toml"
    path.write_text("[[rules]]\nid = 'acme-other-scripts'\ndetector = 'password'\n"
                    "regex = \'\'\'(?i)(?:κωδικός|пароль|รหัสประตู)[ \\t]*:[ \\t]*(\\d{6})\'\'\'\n"
                    "keywords = ['κωδικός', 'пароль', 'รหัสประตู']\n", encoding="utf-8")
    guard = Guard.from_config(GuardConfig(classes=["secret"], rules_files=[str(path)]))
    for text in ("Κωδικός: 581374", "пароль: 581374", "รหัสประตู: 581374"):
        assert [text[f.start:f.end] for f in guard.scan(text)] == ["581374"], text


def test_a_rule_with_no_keyword_reads_only_texts_holding_what_it_requires(
        tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text("[[rules]]\nid = 'acme-env'\ndetector = 'vendor_token'\nkeywords = []\n"
                    "requires = '='\nregex = '''\\b(acme[0-9]{6})\\b'''\n")
    guard = Guard.from_config(GuardConfig(classes=["secret"], rules_files=[str(path)]))
    assert guard.scan("the id acme739152 alone") == []
    assert [f.detector for f in guard.scan("ACME=acme739152")] == ["vendor_token"]


def test_a_rule_file_names_word_lists_and_patterns_its_rules_use(tmp_path: Path) -> None:
    """`[words]` lists and `[patterns]` fragments, used as `%{name}` in a regex, an
    allowlist and the keywords: a lock's name in many languages stays a list."""
    path = tmp_path / "acme.toml"
    path.write_text(
        "[words]\nlocks = ['zorb hatch', 'kwelp', \"l'ambry\"]\n"
        "[patterns]\nfour = \'\'\'(\\d{4})\\b\'\'\'\n"
        "[[rules]]\nid = 'acme-lock'\ndetector = 'password'\n"
        "regex = \'\'\'(?i)%{locks},? code %{four}\'\'\'\nkeywords = ['%{locks}']\n"
        "allowlists = [{ regexTarget = 'match', regexes = [\'\'\'(?i)kwelp,? code 0\'\'\'] }]\n",
        encoding="utf-8")
    guard = Guard.from_config(GuardConfig(classes=["secret"], rules_files=[str(path)]))
    texts = ("the zorb hatch code 5820", "the kwelp, code 7316", "l’ambry code 4417",
             "the kwelp, code 0316")
    assert [[t[f.start:f.end] for f in guard.scan(t)] for t in texts] == [
        ["5820"], ["7316"], ["4417"], []]
    assert not any(GUARD.scan(t) for t in texts)  # (the built-in rules find none of them)


def test_an_unknown_word_list_is_named_with_the_file_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text("[words]\nlocks = ['door']\n[[rules]]\nid = 'acme-lock'\n"
                    "detector = 'password'\nregex = \'\'\'%{lock} (\\d{4})\'\'\'\n"
                    "keywords = ['door']\n")
    with pytest.raises(ValidationError, match=r"acme\.toml, rule acme-lock: unknown %\{lock\}"):
        GuardConfig(classes=["secret"], rules_files=[str(path)])


def test_a_rules_entropy_floor_is_lowered_for_hex_digits(tmp_path: Path) -> None:
    """Hex holds 4 bits a character at most: a random 32-digit hex key falls under a rule's
    3.5 bits 18% of the time. For a value of hex digits only the floor is 3.2."""
    path = tmp_path / "acme.toml"
    path.write_text("[[rules]]\nid = 'acme-hex'\ndetector = 'vendor_token'\nentropy = 3.5\n"
                    "regex = '''acme_key=([0-9a-z]{32})\\b'''\nkeywords = ['acme_key=']\n")
    guard = Guard.from_config(GuardConfig(classes=["secret"], rules_files=[str(path)]))
    random_hex = "3c3a30f47c123c50a303f99217331a52"  # 3.26 bits
    assert [f.detector for f in guard.scan(f"acme_key={random_hex}")] == ["vendor_token"]
    assert guard.scan("acme_key=" + "ab" * 16) == []  # 1 bit
    assert guard.scan("acme_key=" + "3c3a30f47czz3c50a303fzz217331a52") == []  # not hex: 3.5


def test_a_broken_rule_file_names_the_file_the_rule_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[rules]]\nid = 'bad'\nregex = '''(unclosed'''\nkeywords = ['x']\n")
    with pytest.raises(ValidationError, match=r"bad\.toml, rule bad: the regex does not compile"):
        GuardConfig(rules_files=[str(path)])
    path.write_text("[[rules]]\nid = 'odd'\ndetector = 'nope'\nregex = 'x'\n")
    with pytest.raises(ValidationError, match="unknown detector 'nope'"):
        GuardConfig(rules_files=[str(path)])
    # two rules of one id: `disabled_rules` and the rule tests could not tell them apart
    rule = "[[rules]]\nid = 'acme-pin'\ndetector = 'password'\nregex = 'pin (\\d{4})'\n"
    path.write_text(rule + rule.replace("'pin", "'PIN"))
    with pytest.raises(ValidationError,
                       match=r"bad\.toml, rule acme-pin: another rule of this file has that id"):
        GuardConfig(rules_files=[str(path)])


def test_a_rule_can_be_switched_off_by_id() -> None:
    text = "my_client_api_key = 'q3Vb8Xk2Lm9Pz7Rt4Yw1'"
    assert GUARD.scan(text)
    quiet = Guard.from_config(GuardConfig(classes=["secret"], disabled_detectors=[
        "generic_secret"], disabled_rules=["generic-api-key"]))
    assert not [f for f in quiet.scan(text) if f.detector == "generic_secret"]
    with pytest.raises(ValidationError, match="unknown rule id 'no-such-rule'"):
        GuardConfig(disabled_rules=["no-such-rule"])


LABEL_PROBE = """
import json
from emancipate.guard import Guard, GuardConfig
g = Guard.from_config(GuardConfig())
text = open(%r).read()
print(json.dumps([(f.detector, f.start, f.end) for f in g.scan(text)]))
"""


def test_labels_are_the_same_in_every_process(tmp_path: Path) -> None:
    """A policy rule on a detector name must fire every time: labels may not depend on
    hash seeds or set order (a legacy OpenAI key was once `openai_api_key` or
    `model_api_key` at random)."""
    text = ("key sk-" + "Ab3dE5fG7hJ9kL1mN2pQ" + "T3BlbkFJ" + "q3Vb8Xk2Lm9Pz7Rt4Yw1"
            + "\n" + "\n".join(r.examples[0] for r in RULES if r.examples))
    path = tmp_path / "text.txt"
    path.write_text(text)
    outputs = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run([sys.executable, "-c", LABEL_PROBE % str(path)], check=True,
                             capture_output=True, text=True, env={"PYTHONHASHSEED": seed})
        outputs.add(out.stdout)
    assert len(outputs) == 1
    assert '"openai_api_key", 4,' in outputs.pop()


def test_rule_work_is_linear_and_an_emoji_does_not_change_it() -> None:
    """Counted work (characters RE2 reads), not time: windows around keywords are merged,
    so a text full of keywords costs each rule at most one read of the text."""
    from emancipate.guard.engine import run_rule

    rule = next(r for r in load_rules(RULES_DIR / "gitleaks.toml") if r.id == "generic-api-key")
    for unit in ("api_key = x ", "token: é ", "secret 😀 "):
        small, big = unit * 1000, unit * 4000
        work_small = run_rule(rule, small, range(0, len(small), len(unit)), [])
        work_big = run_rule(rule, big, range(0, len(big), len(unit)), [])
        assert work_small <= len(small) and work_big <= len(big)
    ascii_text = "word " * 2000 + "password = hunter2hunter2 "
    emoji_text = "w😀rd " + "word " * 1999 + "password = hunter2hunter2 "
    pos = ascii_text.index("password")
    assert run_rule(rule, ascii_text, [pos], []) == run_rule(rule, emoji_text, [pos], [])


def test_the_code_rules_read_a_text_full_of_their_words_once() -> None:
    """Counted work: a text made of code and lock words and short numbers (every position a
    keyword) costs each code rule at most one read of the text; a window with no code's
    digits in it (`window_needs`) is not read at all."""
    from emancipate.guard.engine import builtin_rules, run_rule

    rules = {r.id: r for r in builtin_rules()}
    for rule_id in ("access-code-told", "pin-told"):
        rule = rules[rule_id]
        for unit in ("code 12 ", "the door code is 4 ", "PIN which is 7 "):
            for n in (1000, 4000):
                text = unit * n
                assert run_rule(rule, text, range(0, len(text), len(unit)), []) <= len(text)
    text = "the code review is done. " * 40
    assert run_rule(rules["access-code-told"], text, [text.index("code")], []) == 0


def test_match_spans_agree_with_re2s_finditer_on_any_characters(tmp_path: Path) -> None:
    """`match_spans` calls RE2's binding directly on UTF-8 bytes and counts characters
    itself; its spans must be the public `finditer`'s on the str, group by group, whatever
    the characters (accents, CJK, emoji) and wherever the matches are."""
    from emancipate.guard.engine import match_spans

    rnd = random.Random(7)
    extras = ["é", "日本", "😀", "ß", "\u00a0", " ", "\n", "ï", "—"]
    checked = 0
    for rule in RULES:
        for example in rule.examples[:2]:
            pieces = list(example)
            for _ in range(rnd.randint(1, 6)):
                pieces.insert(rnd.randint(0, len(pieces)), rnd.choice(extras))
            for text in (example, "".join(pieces), rnd.choice(extras) + example * 2):
                want = [[m.span(g) for g in range(rule.pattern.groups + 1)]
                        for m in rule.pattern.finditer(text)]
                assert [list(s) for s in match_spans(rule, text)] == want, (rule.id, text)
                checked += bool(want)
    assert checked > 500  # most of them match
    # an empty match steps over a whole character, as `finditer` does
    path = tmp_path / "empty.toml"
    path.write_text("[[rules]]\nid = 'empty'\nregex = '''x*'''\n")
    [empty] = load_rules(path)
    for text in ("", "aé😀b", "😀😀", "xé"):
        want = [[m.span()] for m in empty.pattern.finditer(text)]
        assert [list(s) for s in match_spans(empty, text)] == want, text


def test_case_random_counts_flips_as_a_walk_over_the_letters_does() -> None:
    """`case_random` counts case flips of an ASCII value with `translate` and `count`, and
    walks over the letters of any other: a character outside ASCII that is no letter (`€`)
    sends a value down the walk without changing its answer, so the two must agree."""
    from emancipate.guard.engine import case_random

    rnd = random.Random(3)
    alphabets = ["aA", "abAB01", "aAbB_-.", "xyzXYZ 9", "abcdefABCDEF0123456789+/="]
    answers = {True: 0, False: 0}
    for _ in range(20000):
        v = "".join(rnd.choice(rnd.choice(alphabets)) for _ in range(rnd.randint(0, 48)))
        assert case_random(v) == case_random(v + "€"), v
        answers[case_random(v)] += 1
    assert min(answers.values()) > 1000  # both answers were tried
    assert case_random("YXNkZmZmZmZm_HARDcoded") and not case_random("XMLHttpRequest")


PROSE = (
    "Thanks for the summary of last quarter's results. As discussed, the issue with the "
    "supplier is usually resolved within a week, but this time the support team had to "
    "escalate it twice before the customer accepted the proposal. Could you suggest a "
    "subject line for the follow-up email, and summarise the risks we should ask legal to "
    "review? Our task list also includes the survey results, the budget, the sustainability "
    "report and the resources we still need for the launch in September. Success depends on "
    "the suppliers delivering on time; several of them said they would submit revised "
    "quotes, which we must compare against last year's figures before Tuesday's meeting. "
) * 4


def test_ordinary_prose_wakes_few_keyed_rules() -> None:
    """Counted work (characters RE2 reads): a keyword found inside common words (`su` in
    `result`, `issue`, `summary`) wakes its rule all over ordinary prose. On English prose
    the rules woken by their keywords read under a fifth of it in all (the keywordless
    rules, which read every text they may match, aside)."""
    from emancipate.guard.engine import run_rule
    from emancipate.guard.text import fold

    folded = fold(PROSE)
    work = 0
    for rule in GUARD.rules:
        at = sorted({m.start() for kw in rule.keywords
                     for m in re.finditer(f"(?={re.escape(kw)})", folded)})
        if at:
            work += run_rule(rule, PROSE, at, [])
    assert work < len(PROSE) / 5, work


def test_load_rules_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[[rules]]\nid = 'only-paths'\npath = '''\\.p12$'''\n")
    assert load_rules(path) == []  # a rule about file names has nothing to find in a prompt


def test_one_emoji_does_not_send_the_whole_text_through_the_slow_fold() -> None:
    """Counted work: the characters folded one by one (`fold_char`'s cache counts calls)."""
    from emancipate.guard.text import fold, fold_char

    text = "Mot de passe: Hélène_2024 " * 4000 + "😀" + " Ça marche. " * 4000
    before = fold_char.cache_info()
    folded = fold(text)
    after = fold_char.cache_info()
    assert (after.hits + after.misses) - (before.hits + before.misses) == 1
    assert len(folded) == len(text)
    assert folded.startswith("mot de passe: helene_2024 ") and folded.endswith(" ca marche. ")


def test_a_rule_with_no_keyword_reads_the_whole_text() -> None:
    """`quoted-random-string` has no keyword: it once read only its window from offset 0."""
    token = "'7rBynGo0b1cXq2ZkLm9c72L3T6rQK51mB5a06ijnwRG91deTxvSqdZNAlxq8pZ'"
    for pad in (0, 300, 5000):
        found = GUARD.scan("x " * pad + "var g = " + token)
        assert [f.detector for f in found] == ["generic_secret"], pad


def test_the_seed_phrase_checksum_agrees_with_the_reference_implementation() -> None:
    """`engine._bip39_phrase` computes BIP39's checksum from an index of the word list;
    `mnemonic.Mnemonic.check` is BIP39's reference code (slow: it searches the list)."""
    from mnemonic import Mnemonic

    from emancipate.guard.engine import _bip39, _bip39_index, _bip39_phrase

    ref = Mnemonic("english")
    index = _bip39_index()
    rnd = random.Random(12)
    agree = valid = 0
    for size in (12, 15, 18, 21, 24):
        for _ in range(400):
            words = [rnd.choice(ref.wordlist) for _ in range(size)]
            ours = _bip39_phrase([index[w] for w in words])
            agree += ours == ref.check(" ".join(words))
            valid += ours
        phrase = ref.generate(strength=size * 32 // 3)
        assert _bip39(phrase) == (0, len(phrase))
        assert _bip39(f"restore from: {phrase}. thanks") == (14, 14 + len(phrase))
    assert agree == 2000
    assert 0 < valid < 400  # about 1 in 16 to 1 in 256 random phrases checks out


def test_a_seed_phrase_is_reported_without_the_words_around_it() -> None:
    # the rule's regex reads any run of short lower-case words; the finding is the phrase
    # (a text of lower-case words around it was once reported whole)
    from mnemonic import Mnemonic

    phrase = Mnemonic("english").to_mnemonic(bytes(range(16)))  # a fixed valid phrase
    words = "the next words were typed into the wallet app when the phone was reset and"
    text = f"{words} {phrase} then the app said done and that was the end of that day"
    found = [(text[f.start:f.end], f.detector)
             for f in Guard.from_config(GuardConfig()).scan(text) if f.cls == "secret"]
    assert found == [(phrase, "private_key")]


def secrets_in(text: str) -> list[str]:
    return [text[f.start:f.end] for f in GUARD.scan(text) if f.cls == "secret"]


def test_what_the_blind_probe_found_missing_is_read() -> None:
    """Forms the blind probe (bench/guard_probe_blind.py, written by a session that saw no
    rule) held and the guard missed; each rule's own examples hold the rest."""
    # a label ending a line of prose, the value alone on a later line
    assert secrets_in("voici le jeton d'accès API pour la production :\n\n"
                      "    hervzAiLJQWeReOtFt5mFUn7tbC6nNYQY1sg7PNG\n\nCordialement,") == [
        "hervzAiLJQWeReOtFt5mFUn7tbC6nNYQY1sg7PNG"]
    # FileZilla's site manager: `<Pass>` alone, base64 under an attribute
    assert secrets_in('<User>acme_upload</User>\n<Pass encoding="base64">I1ZlbHZldDUyNA=='
                      "</Pass>") == ["I1ZlbHZldDUyNA=="]


def test_placeholders_between_marks_and_other_options_are_not_values() -> None:
    for text in ('password = "***REMOVED***"', 'password = "(hidden)"', "password=***masked***",
                 "login failed user=bob password=[REDACTED] attempts=3",
                 "gcloud secrets versions access latest --secret=db-password "
                 "--project=ledgerline-prod-4821"):
        assert secrets_in(text) == [], text
    # a value with marks inside or around it is still one
    assert secrets_in('password = "Kd8m**Q2vX9z"') == ["Kd8m**Q2vX9z"]
    assert secrets_in("password: -Kd8mQ2vX9z-") == ["-Kd8mQ2vX9z-"]
    # a dash inside the name is not an option
    assert secrets_in("db-password-prod: Kd8mQ2vX9z") == ["Kd8mQ2vX9z"]


def test_values_public_by_design_are_not_secrets() -> None:
    import base64

    rng = random.Random(7)
    point = bytes([4]) + bytes(rng.randrange(256) for _ in range(64))
    vapid = base64.urlsafe_b64encode(point).decode().rstrip("=")
    not_a_point = base64.urlsafe_b64encode(bytes([7]) + point[1:]).decode().rstrip("=")
    assert secrets_in(f'const key = urlBase64ToUint8Array("{vapid}");') == []
    assert secrets_in(f'const key = urlBase64ToUint8Array("{not_a_point}");') == [not_a_point]
    for text in ('<div class="g-recaptcha" data-sitekey="6LfCIT0Ifbj6cuPYOGxHy7u6HwbBZ1V-X1Gz">'
                 "</div>", 'etag: W/"9dd7-F_9oN4HZ6ymjI5KbktuCd84JpB1"'):
        assert secrets_in(text) == [], text
    # the same value under a name that is not an identifier's is read
    assert secrets_in('token = "9dd7F_9oN4HZ6ymjI5KbktuCd84JpB1"') == [
        "9dd7F_9oN4HZ6ymjI5KbktuCd84JpB1"]
    # a JSON Web Key's public members (an IdP's `jwks.json`), not its private `d`
    jwk = ('{"kty": "EC", "crv": "P-256", "x": "8Kd8W_GaEh5shxAjs2M75D4SBqg_O3U8Vn0PV33D4uc",'
           ' "y": "GjzsomEI7lcR2kNotOuZcX1Z_Y4fC0kAMz4KNMdlGIY"')
    assert secrets_in(jwk + "}") == []
    assert secrets_in(jwk + ', "d": "Hq2vBz8LmXc4Rt7kPw9sNd3fGy6JaQ1bZe5Uo0Ti3Rw"}') == [
        "Hq2vBz8LmXc4Rt7kPw9sNd3fGy6JaQ1bZe5Uo0Ti3Rw"]


def test_names_of_secrets_and_template_pipes_are_not_values() -> None:
    """From the second blind probe: an AWS resource name holds `secret` and a name after
    it (`…:secret:app/prod-uIox0A`), a Helm template pipes the value on to functions, a
    WireGuard interface prints its public key under `public key:`."""
    arn = 'arn = "arn:aws:secretsmanager:eu-west-3:624370816295:secret:app/prod-uIox0A"'
    assert secrets_in(arn) == []
    helm = "password: {{ required \"x\" .Values.db.password | b64enc | quote }}"
    assert secrets_in(helm) == []
    # a literal default in the pipe is still read
    assert secrets_in('value: {{ .Values.db.password | default "Kd8mQ2vX9z" }}') == [
        "Kd8mQ2vX9z"]
    wg = ("interface: wg0\n  public key: pZPyO6Lvuge/xkBnbNtEugtXyy2QIKEq0BqLh3eKWSs=\n"
          "  private key: uZPyO6Lvuge/xkBnbNtEugtXyy2QIKEq0BqLh3eKWSs=\n")
    assert secrets_in(wg) == ["uZPyO6Lvuge/xkBnbNtEugtXyy2QIKEq0BqLh3eKWSs="]
    assert secrets_in('stripePublishableKey: "pk_live_51vtIDty3mnQ0oLi1zkFODofR3HwbS4Pke"') == []


def test_every_builtin_rule_names_a_known_detector() -> None:
    """A detector name no policy knows would be dropped at start-up without a word (an
    operator's rule file is refused for it; the built-in files are checked here)."""
    from emancipate.guard.names import DETECTORS

    unknown = {r.id: r.detector for r in builtin_rules() if r.detector not in DETECTORS}
    assert unknown == {}


def test_a_new_rule_does_not_reuse_an_id() -> None:
    """Ids name rules in `disabled_rules` and audit records. Six ids are held by our rule
    and gitleaks' of the same name, both loaded (older than this test; a `disabled_rules`
    entry turns both off); no other id may be held twice (within one file the loader
    refuses it)."""
    seen: dict[str, int] = {}
    for r in RULES:
        seen[r.id] = seen.get(r.id, 0) + 1
    twice = {i for i, n in seen.items() if n > 1}
    assert twice <= {"gcp-api-key", "azure-ad-client-secret", "openai-api-key",
                     "anthropic-api-key", "private-key", "mailchimp-api-key"}


def test_what_the_third_blind_probe_found_missing_is_read() -> None:
    """Forms of the third blind round the guard missed (its rules' examples hold the
    protocol transcripts and the sentences in more languages): a value that starts with
    `!` (a YAML tag is `!` and letters only), an Ansible variable named `vault_…`, a
    password after `pw` in a chat, a long `0x…` secret, "key" in other languages."""
    assert secrets_in("Agent: New password: !k8MuB2PJO3T\nAgent: change it") == [
        "!k8MuB2PJO3T"]
    assert secrets_in("password: !Ref DbPassword") == []  # CloudFormation's tag
    assert secrets_in('vault_mysql_root_password: "obmDv12ZO0uQTE-I*oWTLw"') == [
        "obmDv12ZO0uQTE-I*oWTLw"]
    assert secrets_in("[20:12:51] Sam: pw Copper*lantern33*\n[20:13:02] Jake: thx") == [
        "Copper*lantern33*"]
    assert secrets_in("the pw reset flow sends a link") == []
    assert secrets_in('TURNSTILE_SECRET_KEY = "0x4AAAAAAA7d3e01bc95aa4f8e2c61d0b9e8f3a5c7"')
    assert secrets_in("secret_key = 0xdeadbeef") == []  # a constant, not a key
    assert secrets_in("Der API-Schlüssel lautet 9fK2mQx7Lp3vZt8Rw1Yc") == [
        "9fK2mQx7Lp3vZt8Rw1Yc"]
    assert secrets_in("la clave del éxito es la constancia") == []


def test_placeholders_and_ciphertext_parts_of_the_third_blind_probe_are_not_secrets() -> None:
    """Symfony's `!ChangeMe!` in a database URL, a `.netrc` template's `YOUR_…`, the
    authentication tag of an AES-GCM ciphertext (`auth_tag:`)."""
    assert secrets_in('DATABASE_URL="postgresql://app:!ChangeMe!@127.0.0.1:5432/app"') == []
    assert secrets_in("machine github.com\n  login YOUR_USER\n  password YOUR_GH_TOKEN") == []
    assert secrets_in("  auth_tag:       Kq3v+TYj1nZLvo4GpQyGJ/==\n  cipher: aes-256-gcm") == []


def test_what_the_fourth_blind_probe_found_missing_is_read() -> None:
    """Forms of the fourth blind round the guard missed (its new rules' examples hold
    LDIF, wpa_supplicant, parameter-store JSON, `cookies.set`, `$pat`): a CSV cell quoted
    around the separator, a table row that leaves out its last empty cells."""
    csv = ("folder,type,name,notes,login_uri,login_username,login_password\n"
           'Infra,login,NAS,"NAS du bureau, accès admin",https://nas.lan,admin,Qv7#pL2mXz9\n')
    assert secrets_in(csv) == ["Qv7#pL2mXz9"]
    tsv = ("host\tip\trole\tadmin user\tadmin password\tnotes\n"
           "sw-core-01\t10.0.0.2\tswitch\tnetadmin\tsee vault\n"
           "ilo-db-03\t10.0.8.33\tBMC\tAdministrator\tTt&I_=hBOn9!0@\tfrom sticker\n")
    assert secrets_in(tsv) == ["Tt&I_=hBOn9!0@"]


def test_public_keys_markers_and_data_of_the_fourth_blind_probe_are_not_secrets() -> None:
    """Public by design: a Sentry DSN's key, a PostHog project key, Supabase's `anon` JWT;
    not a value: an idempotency key, a shell variable in a connection string, base64 of
    JSON, a signed timestamp, a `Sleep/Wake UUID` (`p/w` starts a word)."""
    assert secrets_in('dsn: "https://7e3b9bfd538652053561542ce7b18b09@o29456.ingest.de.sentry.io/99"'
                      ) == []
    assert secrets_in("posthog.init('phc_5HrMjgTt17FQux2XxwEyeq9bb6Cq0MLOsI3mCjYNnNp', {") == []
    anon = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIn0."
            "7i0zcCiZBOSaWtlWXeff_DHAu2icUD0uHduXHdFhJlA")
    assert secrets_in(f"createClient('https://x.supabase.co', '{anon}')") == []
    service = anon.replace("eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIn0",
                           "eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJzZXJ2aWNlX3JvbGUifQ")
    assert secrets_in(f"createClient('https://x.supabase.co', '{service}')")  # service_role
    assert secrets_in("Idempotency-Key: fa82ae19-f829-416a-8b90-7c439bf423c6 -> 200") == []
    assert secrets_in('pg_dump "host=db user=backup password=$DB_PASS" -Fc') == []
    assert secrets_in('"data": "eyJvcmRlcklkIjogIk9SRC00ODE0MDAwIiwgInN0YXR1cyI6ICJTSElQUEVEIn0="'
                      ) == []
    assert secrets_in('{"SignedEntryTimestamp":"MEUCIQDx7yJFvu9JPUnqvxGIGe4VL9mGWCdjswM+Xcz5"}'
                      ) == []
    assert secrets_in("Sleep/Wake UUID:       CDDF42C6-38B1-4883-BECE-9D66A2F46719") == []


def test_what_the_fifth_blind_probe_found_missing_is_read() -> None:
    """The fifth blind round, measured untuned and then fixed (rule examples hold CDK's
    `unsafePlainText`, Mollie keys, app passwords in groups, recovery codes named in French
    and Spanish, `mysqldump -p-…`): a JWK's key id, an algorithm named after `password
    hashing to`, Supabase's anon key under a `…AnonKey` name are not secrets."""
    jwks = '{"keys": [{"kty": "RSA", "kid": "h-989t9xLFBXamJQ6y3mgu7F5LBP4AWYK0WNw5ebIGR"}]}'
    assert secrets_in(jwks) == []
    assert secrets_in("Rotate password hashing to argon2id (keeps bcrypt verify)") == []
    anon = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIn0."
            "YdgWjwKjhUBPjBL2WY7LpiLWvHTlRwEH6Qn7bzGPEIc")
    assert secrets_in(f"const supabaseAnonKey = '{anon}'") == []


def test_what_the_sixth_blind_probe_found_missing_is_read() -> None:
    """The sixth blind round, measured untuned and then fixed (the Wi-Fi QR rule's examples
    hold `WIFI:…;P:…;;`): a table's header may hold digits and apostrophes (`m365_login`,
    `Date d'arrivée`, `2FA`); a Wi-Fi or VPN shared key is a password."""
    csv = ("employee_id,full_name,m365_login,initial_password,manager\n"
           "E-2291,Priya Raman,p.raman@acme.com,set via SSO invite,G. Holt\n"
           "E-2292,Marcus Feld,m.feld@acme.com,seagullSUN83$,D. Okafor\n")
    assert secrets_in(csv) == ["seagullSUN83$"]
    md = ("| Nom | Date d'arrivée | Identifiant | Mot de passe provisoire |\n|---|---|---|---|\n"
          "| Yanis Benali | 09/09 | y.benali | tartine316- |\n")
    assert secrets_in(md) == ["tartine316-"]
    tsv = ("Outil\tIdentifiant\tMot de passe\t2FA\n"
           "impots.gouv\tcabinet.roux.pro\tbretagneGOE50?\tNon\n")
    assert secrets_in(tsv) == ["bretagneGOE50?"]
    assert secrets_in("WLAN: Akademie-Seminar\nWLAN-Schlüssel: wolkeAPF79-\nMittagessen") == [
        "wolkeAPF79-"]
    assert secrets_in("Authentication Method Pre-shared key, Pre-shared key jYDs+YO=zJETQ1PUv0o7, "
                      "then XAuth") == ["jYDs+YO=zJETQ1PUv0o7"]
    # a row of values holding the word is no header
    assert secrets_in("alice,password123,admin\nbob,Summer2024!,user\n") == []


def test_what_the_fifteenth_blind_probe_found_missing_is_read() -> None:
    """The fifteenth blind round (Asia-Pacific, the Middle East and Africa), measured untuned
    and then fixed: password words in Thai, Afrikaans, Swahili, Malay; "is" or a topic marker
    written right after the name (`密碼係`, `パスワードは`, `비밀번호는`) or as a word (`ni`,
    `adalah`, `là`); a Turkish possessive (`şifresi`); a hash's secret; an option's value in
    an argument list; a UUID under a secret key's name; Windows product keys; Naver's client
    secret; LINE's webhook handler; a PIN given in Swahili."""
    for text, value in (
            ("- รหัสผ่าน: Nong615!bkk", "Nong615!bkk"),
            ("2. Wagwoord: Karoo21#45", "Karoo21#45"),
            ("Nenosiri la muda: Elimu3818!", "Elimu3818!"),
            ("kata laluan adalah Rahsia2024x", "Rahsia2024x"),
            ("admin 密碼係 Mongkok029#ep，IT 同事走咗", "Mongkok029#ep"),
            ("APIv3 密钥是：G29r6cfomcr8NFtmRPhG86Ors4FzD9AC", "G29r6cfomcr8NFtmRPhG86Ors4FzD9AC"),
            ("パスワードは Sakura2024!x です", "Sakura2024!x"),
            ("비밀번호는 Hangang99!q 입니다", "Hangang99!q"),
            ("mật khẩu là Matkhau99x", "Matkhau99x"),
            ("Ben giriş yaptım, şifresi Simit5880! idi", "Simit5880!"),
            ("vnp_HashSecret=KV6MWHWWV7WZ0FWWJFSSJAV412RDXHKY", "KV6MWHWWV7WZ0FWWJFSSJAV412RDXHKY"),
            ('command: ["redis-server", "--requirepass", "tsvr1h7ub76aorgxc789"]',
             "tsvr1h7ub76aorgxc789"),
            ("API Secret Key: 8e36b6b6-924a-4596-84ab-c6ba23884a0a",
             "8e36b6b6-924a-4596-84ab-c6ba23884a0a"),
            ("مفتاح الترخيص من الفاتورة: FXXXC-84HQV-J6DCF-RDV7T-23J2V",
             "FXXXC-84HQV-J6DCF-RDV7T-23J2V"),
            ('-H "X-Naver-Client-Secret: DvBVdOVx7H"', "DvBVdOVx7H"),
            ('handler = WebhookHandler("deebb0c2defe3bc0aba3f9c936e87f2a")',
             "deebb0c2defe3bc0aba3f9c936e87f2a"),
            ("PIN ya M-Pesa ya simu hiyo ni 3586.", "3586"),
            ("Login unchanged, password is now Thunder&Summer71 – Gareth", "Thunder&Summer71")):
        assert secrets_in(text) == [value], text
    for text in ('fields = ("username", "password", "email2")',
                 '"request_id": "8e36b6b6-924a-4596-84ab-c6ba23884a0a"',
                 "secret_id: 8e36b6b6-924a-4596-84ab-c6ba23884a0a",
                 "password_hash = 5f4dcc3b5aa765d61d8327deb882cf99",
                 "login failed user=admin password=******** ip=45.32.231.29"):
        assert secrets_in(text) == [], text


def test_what_the_sixteenth_blind_probe_found_missing_is_read() -> None:
    """The sixteenth blind round (Eastern Europe, the Caucasus, Central and South Asia,
    Latin America, Africa), measured untuned and then fixed: password words in Persian,
    Amharic (and its colon), Swahili; keys named in one lower-case word; session cookies;
    names aligned in a column; a password holding `&b_=` outside a query string; Django's
    generated key; Google's app password on its own line; UPI PINs, SIM PUKs; Kavenegar,
    Bitrix24 and MinIO's client; backup codes in Romanian."""
    session = ("eyJpdiI6Ib1qty/iCPRr1RyVxdt7hMFYSMPeSn23HP779gAiSwXBKTULw91hxrN7F/JdNwiqBe"
               "P6EuBlna7lBKdNFJst1AYmnQXtpW2r2Q9lucYpJvmohdzphRP1JQE9qjd65EeY3cZoW%3D%3D")
    for text, value in (
            ("رمز عبور: H$h@6_&b_=Ez", "H$h@6_&b_=Ez"),
            ("የይለፍ ቃል፦ Abyssinia0940@", "Abyssinia0940@"),
            ("    'storekey'   => 'kkMEJ5xsmPA09k10',", "kkMEJ5xsmPA09k10"),
            ("    'secret_key'       => 'OMAlKP3YY6lwyk',", "OMAlKP3YY6lwyk"),
            (f'cookies = {{"laravel_session": "{session}"}}', session),
            ("SECRET_KEY = '*(z3@mh_l#fc&&wp4(s3rufc$1u((g4r500$sh^l$a!91&7)fb'",
             "*(z3@mh_l#fc&&wp4(s3rufc$1u((g4r500$sh^l$a!91&7)fb"),
            ("Gmail चा App Password बनवला. Google ने हा दाखवला:\n\navgb oeyv nyab zwmt\n\nहा",
             "avgb oeyv nyab zwmt"),
            ("मी त्याला दुकानाच्या खात्याचा UPI PIN 764328 सांगितला आहे.", "764328"),
            ("কাস্টমার কেয়ার থেকে PUK কোড দিয়েছে: 81936337", "81936337"),
            ("https://api.kavenegar.com/v1/F662E332C0939AA978CACAAF6C3CB3388C2E0C686A5F9F922"
             "92D7208AD43CD94/sms/send.json",
             "F662E332C0939AA978CACAAF6C3CB3388C2E0C686A5F9F92292D7208AD43CD94"),
            ("https://mebel-tash.bitrix24.ru/rest/1/90xglpu2p9fmylea/crm.lead.add.json",
             "90xglpu2p9fmylea"),
            ("mc alias set coop https://s3.bogbon.uz fermer-upload uwx7qkCr8M+hrlz25alwWQFEEKGr",
             "uwx7qkCr8M+hrlz25alwWQFEEKGr")):
        assert secrets_in(text) == [value], text
    found = secrets_in("foaia cu codurile de rezervă; a rămas doar unul nefolosit:\n\n9508 1119\n")
    assert [v.strip() for v in found] == ["9508 1119"]
    for text in ("file:/Users/k/.gitconfig    user.signingkey=AFCF266609513B96",
                 "Product Key: XXXXX-XXXXX-XXXXX-XXXXX-3V66T (restul e șters)",
                 "Never share your UPI PIN with anyone.",
                 "  -W, --password          force password prompt (should happen automatically)"):
        assert secrets_in(text) == [], text
    # in a query string the next parameter still ends the value
    assert secrets_in('curl "https://api.x.io/v1?api_key=Hx7pLq2W9zK3mN4b&format=json"') == [
        "Hx7pLq2W9zK3mN4b"]


def test_what_the_seventeenth_blind_probe_found_missing_is_read() -> None:
    """The seventeenth blind round (a global mix), measured once as the held-out round of
    rounds 15 and 16's fixes, then fixed: codes of doors, gates, key boxes, padlocks,
    alarms and tills told in a sentence; PINs with `MPIN`, Tagalog's `ay`, or four digits
    right after the word; Indonesian backup codes; Catalan, Bengali password words; Romanian
    `este`; a value glued to a bracket before another script; Gmail's app password run
    together or passed to `login()`; a Terraform variable's default. A sentence in a script
    written without blanks is no value; nor is a Greek booking code."""
    for text, value in (
            ("the key is in the key box beside the door of the woodshed, the code is 8010.",
             "8010"),
            ("the combination of the padlock is 6408. Please close it again", "6408"),
            ("To get in: use the garage keypad, 0506 then Enter, the door is unlocked.", "0506"),
            ("le nouveau code du portail côté rue sera le 4519A.", "4519A"),
            ("voids after 11 need the manager override on the till, code is 3456 - lead only",
             "3456"),
            ("Buksan mo yung e-wallet app, MPIN ay 325286, tapos Bills", "325286"),
            ("ukiangalia salio tumia PIN 6805 kwenye simu ya dukani tu", "6805"),
            ("Saya masih punya satu kode cadangan yang dulu dicatat di buku: 4954 7134",
             "4954 7134"),
            ("Pots entrar amb el meu usuari jmasferrer i la contrasenya fzsl_sskf21 fins",
             "fzsl_sskf21"),
            ("পাসওয়ার্ড: pbrhob300@", "pbrhob300@"),
            ("Arhiva este parolată, parola este JCF805khd. Vă rog", "JCF805khd"),
            ("ログインID：kobayashi.m　パスワード：etqi0151（私のアカウント", "etqi0151"),
            ("MAIL_USERNAME=admin@gmail.com\nMAIL_PASSWORD=frohaddsxxcnxkeh\nMAIL_PORT=587",
             "frohaddsxxcnxkeh"),
            ('    s.login("gyandeep.coaching@gmail.com", "sejo liao eoce aovh")',
             "sejo liao eoce aovh"),
            ('variable "db_password" {\n  type = string\n  default = "T-jvt_esyw2rpxNuKD"\n}',
             "T-jvt_esyw2rpxNuKD")):
        found = secrets_in(text)
        assert [v.strip() for v in found] == [value], text
    for text in ("パスワードは別のメールでお送りしますので、ご確認ください。",
                 "Κωδικός κράτησης: 85CDT0\nΑριθμός εισιτηρίου: 2217248024039",
                 "DB_PASSWORD=defaultpassword", "connect PIN 13 to ground", "PIN 560001 Bangalore",
                 "the padlock is rated IP67, 40 mm shackle",
                 'variable "region" {\n  default = "eu-west-3"\n}'):
        assert secrets_in(text) == [], text


def test_what_the_eighteenth_blind_probe_found_missing_is_read() -> None:
    """The eighteenth blind round (a random day at a multinational's gateway), measured
    once as the held-out round of rounds 15 to 17's fixes, then fixed: a lock's or an
    alarm's code named in one word (`Türcode`, `alarmcode`, `Installatørkode`, `Kode til …`);
    `PIN1 on`, `PIN it's`; Croatian and Serbian password words; a name closed by a bracket
    (`暗号化キー(KEY):`); backup codes with one digit; product keys named in Korean. A quoted
    pair of plain words after `password is` is a quotation, not a passphrase."""
    for text, value in (
            ("ab Montag gilt für den Seiteneingang der neue Türcode 323727#. Der alte", "323727"),
            ("bij het paneel naast de kantine de alarmcode 2755 intoetsen", "2755"),
            ("Alarm: Texecom panel i baglokalet. Installatørkode 6701. Brugerkoder", "6701"),
            ("- Kode til medisinrommet: 2811, skal ikke deles", "2811"),
            ("Ta kirjutas mulle, et PIN1 on 7644 ja küsis", "7644"),
            ("if it asks for the store PIN it's 6836", "6836"),
            ("korisničko ime je ana.kovac1 a lozinka Galeb9135&, probala sam", "Galeb9135&"),
            ("暗号化キー(KEY): 835a9f8437179", "835a9f8437179"),
            ("my backup codes and I have exactly one left that isn't crossed out: zz5q-toiq",
             "zz5q-toiq"),
            ("제품: ArchiDraft 2023 (영구 라이선스)\n라이선스 키: V2RB7-P6KXB-YBY6Q-4KM8Y-FPV6W",
             "V2RB7-P6KXB-YBY6Q-4KM8Y-FPV6W")):
        found = secrets_in(text)
        assert [v.strip() for v in found] == [value], text
    for text in ('The author says the password is "not committed" but I am not sure.',
                 "Ich kann das Problem nicht lösen: Schritt 3 schlägt fehl",
                 "Der Türcode wird am Montag geändert.", "alarmcode 2024 update"):
        assert secrets_in(text) == [], text


def test_what_the_nineteenth_to_twenty_eighth_blind_probes_found_missing_is_read() -> None:
    """Rounds 19 and 20 (session 17's held-out rounds), then 21 (secrets told in everyday
    prose) and 22 (technical work), each measured once before these fixes: a password in
    Urdu, Arabic as spoken, Armenian (`գաղտնաբառը … է`), Indonesian (`passwordnya`), Dutch
    `ww`; an aside in parentheses in another script after the value; a session cookie's
    `…SESSID`; a key named in katakana; a JSON Web Key's public members are not secrets.
    Round 24: Indonesian `sandinya`, Czech `heslo je`, Bengali `হলো`, Hungarian `kulcs`.
    Round 26: Persian `رمز:`, Serbian `кључ`, Hindi `पासकोड`, a Danish pre-shared key on the next
    line, a keypad's spaced digits, a parcel locker's pickup code, a manager's code.
    Round 28: a hand-typed table of two names and one pipe (not a shell's pipe), Ethiopic's
    wordspace as a colon, Spanish `contrasenia`, `the pin … is it still …`, a digicode with a
    letter inside. Round 27: Greek `είναι` as the view writes it, a settings row of an SQL
    insert (`('smtp.password', '…', NOW())`); Laravel's `_token` field is not a secret."""
    for text, value in (
            ("وائی فائی کا نام Sukoon_Guest ہے اور پاس ورڈ Rahat5521nest ہے۔", "Rahat5521nest"),
            ("Գրասենյակի փոստի գաղտնաբառը Sevan2231@ է, խնդրում եմ", "Sevan2231@"),
            ("Login pakai email toko, passwordnya kuehlapis88!Manis. Pesanan", "kuehlapis88!Manis"),
            ('Op een geeltje: "HIS inlog: gebruikersnaam invaller2, ww Tulp4410!". Daar',
             "Tulp4410!"),
            ("・共有メールボックスのパスワード：Sakura4471!mx（3か月ごとに変更）", "Sakura4471!mx"),
            ("-H 'cookie: lang=en-GB; BLSESSID=kdjp0r0ftuugzwjt0q6h6p1n1k64pihl' \\",
             "kdjp0r0ftuugzwjt0q6h6p1n1k64pihl"),
            ("アカウント名：keiri\nキー：FGOKVN34HNWL7TNREHEZJF66PIPUK437\n種類：時間ベース",
             "FGOKVN34HNWL7TNREHEZJF66PIPUK437"),
            # round 24 (public services), measured once before these
            ("Emailnya yang bankpangan itu, sandinya nasigoreng2646! . Jangan", "nasigoreng2646!"),
            ("Jméno mi nadiktovala a heslo je Radnice714*uhr, prý ho", "Radnice714*uhr"),
            ("জিমেইল। পাসওয়ার্ড হলো sahay6234! — এটা কাউকে দেবেন না", "sahay6234!"),
            ("Technikai felhasználó: 7kx2mqpt1bnvyrd\n"
             "XML aláírókulcs: 80-caf6-62e79312d5937LYAHIZVZ3",
             "80-caf6-62e79312d5937LYAHIZVZ3"),
            # round 26 (freelancers, small shops, households), measured once before these
            ("ایمیل اکانت همان ایمیل قدیمی است.\nرمز: filmkhune2742\nلطفاً", "filmkhune2742"),
            ("API кључ: bk_prod_brqx7qute038uajjhst60814r7jjpl88mzrmnkwg",
             "bk_prod_brqx7qute038uajjhst60814r7jjpl88mzrmnkwg"),
            ("मीटिंग आईडी: 188 5442 3442\nपासकोड: HcBz4i\nबच्चे कैमरा ऑन रखें", "HcBz4i"),
            ("Foruddelt nøgle (PSK):\nt2XJ0wytfM85v90hQQznHx51hBLw\nIKE-version: IKEv2",
             "t2XJ0wytfM85v90hQQznHx51hBLw"),
            ("- front door keypad: 6 1 9 0 6 then the tick button", "6 1 9 0 6"),
            ("paczkomat przy Biedronce, kod odbioru 572995, ważny do jutra", "572995"),
            ("si un client veut annuler un ticket il faut le code gérant 423615 puis valider",
             "423615"),
            # round 28 (office and field staff), measured once before these
            ("HubSpot seat for trainees\nusername | password\ntrainee.sales@bw.co | Quota34!",
             "Quota34!"),
            ("የቢሮው ዋይፋይ ስም፡ Addis_Office\nየይለፍ ቃል፡ fvwh1741\nእባካችሁ", "fvwh1741"),
            ("usuario: mostrador1\ncontrasenia: Pxiexr486\n(ojo q distingue mayusc.)", "Pxiexr486"),
            ("whats the pin again, is it still 2361", "2361"),
            ("Le digicode de la porte cochère c'est 7A750, ensuite l'interphone", "7A750"),
            # round 27 (engineers and operators), measured once before these
            ("Μου είπε ότι ο νέος του κωδικός είναι Sundial2838! και ότι", "Sundial2838!"),
            ("  ('smtp.user', 'noreply@ostrava.cz', NOW()),\n"
             "  ('smtp.password', 'BAdCU7DC#ORQj', NOW()),",
             "BAdCU7DC#ORQj")):
        found = secrets_in(text)
        assert [v.strip() for v in found] == [value], text
    for text in ("see www.example.com for the docs", "ww 2024 results",
                 "echo password | sudo -S\napt update",
                 '<input type="hidden" name="_token" value="RGtpoiDTy-habTggfjExcolvdYc9iwo">',
                 'fields = ("username", "password", "email")',
                 "the password hint (a pet's name) is on the fridge"):
        assert secrets_in(text) == [], text


def test_what_the_twenty_ninth_to_thirty_fourth_blind_probes_found_missing_is_read() -> None:
    """Session 19: rounds 23 and 25 (held out in session 18, tuned on now) and rounds 31–34,
    each measured once before these."""
    for text, value in (
            # a word's vowel signs between the name and its operator (Hindi `बताया`)
            ("पासवर्ड उन्होंने मुझे बताया है: gudiya2250@", "gudiya2250@"),
            ("Și parola mea e castravete08H34, poate", "castravete08H34"),
            ("オーバーライド用パスワード「WJ3882zt」を入力してOK", "WJ3882zt"),
            ("パスワードは「WJ3882zt」を入力", "WJ3882zt"),  # (the quotes were in the value)
            ("كلمة المرور التي أظن أنني وضعتها هي Sakheel&6522l لكن", "Sakheel&6522l"),
            ("என் ஐடி DRV-CHN-2231, பாஸ்வேர்டு Kaveri@2467. நேற்று", "Kaveri@2467"),
            ('SECRET_KEY = base64.b64decode("MDIyZDEzZDIwZDYxZTMxNDhjMTgyYTA5MDE4YjI3NDg2Nzk1")',
             "MDIyZDEzZDIwZDYxZTMxNDhjMTgyYTA5MDE4YjI3NDg2Nzk1"),
            ('http.DefaultRequestHeaders.Add("X-Api-Key", '
             '"lgx_live_5gwgv820jstttpiv4hgddj51f7cwxpyjslvp1wvb");',
             "lgx_live_5gwgv820jstttpiv4hgddj51f7cwxpyjslvp1wvb"),
            # a value ending in digits and a unit's letters is no quantity
            ("who changed the wifi password?\nMia: new one is nsnpc636LB", "nsnpc636LB"),
            ("[09:12] Dave R: anyone know the root pw for the build box?\n"
             "[09:14] Sam K: it's nsnpc636LB unless someone changed it", "nsnpc636LB"),
            ("achei o cartão do chip na mochila, o PUK é 75067611. como", "75067611"),
            ("el codi de la porta és 6176B, agafar", "6176B"),
            ("a senha temporária que o suporte me passou ontem foi BrasilPedido!56, mas",
             "BrasilPedido!56"),
            ("Логин lab-scan, пароль приложения oeipsbwmvulpyogx. Принтер", "oeipsbwmvulpyogx"),
            ("са лозинком VYwtms438. Хоћу", "VYwtms438"),
            ("A régi jelszavam Tokaj49!Wmdi volt.", "Tokaj49!Wmdi"),
            ('the restore tool will ask for the passphrase, which is "tulip violin copper '
             'orbit meadow" (all lowercase)', "tulip violin copper orbit meadow"),
            ("Last night I closed it with the code 7010 and now the screen says ERROR", "7010"),
            ("$ zip -e -P 'Churros$113' audit_transaksi_Q1.zip transaksi.csv", "Churros$113"),
            ("הסיסמה של המשתמש המשותף לתוכנת הנהלת החשבונות היא SabraKinneret99! וכולם",
             "SabraKinneret99!"),
            ("| Network | Who uses it | Password |\n|---|---|---|\n"
             "| Marina_Guest | guests | printed on keycard sleeve |\n"
             "| Marina_BO | front desk | Driftwood995? |", "Driftwood995?"),
            ("DB_PASSWORD=${DB_PASSWORD:-Xk92!mLpq7}", "Xk92!mLpq7"),
            # round 35 (schools and universities)
            ("رمز ورود مراقب در سامانه: zgNCIO9B#x . لطفاً", "zgNCIO9B#x"),
            ("รหัสผู้ดูแลเครื่องพิมพ์ที่ช่างให้มาคือ yLG@h9UAIf", "yLG@h9UAIf"),
            ("https://moodle.example.edu/webservice/rest/server.php?wstoken="
             "89956855271a1ea1bc6d84fa9fa07e36&wsfunction=core",
             "89956855271a1ea1bc6d84fa9fa07e36"),
            ("Heslo, ktoré mi prišlo v uvítacom maile, je pmMl26!cBaFZ a nikdy", "pmMl26!cBaFZ"),
            ("Palvelinsali on kellarissa. Oven kulkukoodi on 293407 ja sen jälkeen #.", "293407"),
            # rounds 36 (a telecom operator) and 37 (media and marketing)
            ("tacacs server TAC-PRIMARY\n address ipv4 10.250.1.10\n key 0 xc75G%Xz2RRo\n"
             " timeout 3", "xc75G%Xz2RRo"),
            ("IMSI ........ 262019900000417\nKi .......... 47105B97EAC9A2890C385D1DC5019553\n",
             "47105B97EAC9A2890C385D1DC5019553"),
            ("кодовое слово назвала верно — «Волга7129». паспорт", "Волга7129"),
            ("θύρα 993, SSL, κωδικός πρόσβασης .Thalassa4598 και μου", ".Thalassa4598"),
            ("J'ai accès à l'interface web (http://10.40.2.15), identifiant admin, mot de passe "
             "antennefrequence2126. Dans les logs je vois \"RTP buffer underrun\".",
             "antennefrequence2126"),  # (an operator word in the next sentence hid it)
            ("Am schimbat deja parola, acum e ?StiriCarpati6785#. Te rog", "?StiriCarpati6785#"),
            ("IT har lavet en app-adgangskode til mig: adla wzxu dyow lzql\nSkal",
             "adla wzxu dyow lzql"),
            ("Kod laluan: KeTXX2J\nMinta mereka masuk", "KeTXX2J"),
            ("La contrasenya és #Diari41. Com ho faig", "#Diari41"),
            ("| Integration | Env | Token | Notes |\n|---|---|---|---|\n"
             "| Podcast stats sync | prod | Tj6oaPXGwWEB9Ygqgg9OQubY6GD2bscl | rotates yearly |",
             "Tj6oaPXGwWEB9Ygqgg9OQubY6GD2bscl"),
            # round 38 (an NGO's field offices)
            ('curl -X POST "https://hmis.example.sl/api/dataValueSets" \\\n'
             '  -u ngo_integration:DhisBo#1411 \\\n  -H "Content-Type: application/json"',
             "DhisBo#1411"),
            ("Sunan mai amfani: ktsn_enum07, kalmar sirri: Zaria.Kano4720\nWayar",
             "Zaria.Kano4720"),
            ("lambar sirrin akwatin kudi (safe) ita ce 312486, kuma", "312486"),
            ("Telefòn nan bloke, men kòd pou debloke li: 903268.", "903268"),
            ("Microsoft recovery code for the country director's account (generated 12 March when "
             "we set up the new phone) is\nPTX9F-CPDJV-KCGC2-PTWWM-KK49B\nKeep it sealed",
             "PTX9F-CPDJV-KCGC2-PTWWM-KK49B"),
            # round 39 (construction and facilities)
            ("Έβαλα στο Zabbix host με SNMPv2, community \"Upssfx08#\", αλλά", "Upssfx08#"),
            ("RADIUS-palvelin: 10.0.20.11\nPortti: 1812\nJaettu salaisuus: IkpRwXlOZrMUJtixwSh4\n",
             "IkpRwXlOZrMUJtixwSh4"),
            ("La combinació de la caixa forta és 94-93-83 (girar primer a la dreta).", "94-93-83"),
            # older rounds' long tail
            ('[09:13] Hugo : réseau "VIDAL-Bureaux", la clé c\'est Tigre.Winter47',
             "Tigre.Winter47")):
        found = secrets_in(text)
        assert [v.strip() for v in found] == [value], text
    jwt_sample = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpv"
                  "aG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    for text in ("DB_PASSWORD: ${DB_PASSWORD:?missing DB_PASSWORD}",
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                 '"recaptcha": { "siteKey": "6LfEmyDYbaayOEOOti_VXG2L3gD_ZZ4n4DpAKsVh" }',
                 "REDIS_URL=redis://:CHANGE_ME@localhost:6379/0",
                 'client = MqttClient(host, user=os.environ["U"], password=os.environ["P"])',
                 "Server=db;User Id=u;Password={contraseña del gestor de secretos};",
                 "unzip -p archive2024.zip notes.txt | less",
                 "I took the example token from the jwt.io intro page:\n" + jwt_sample,
                 "Authorization: Bearer " + jwt_sample,
                 "SASL LOGIN authentication failed: UGFzc3dvcmQ6",
                 "le réseau social, clé de voûte du projet",
                 "auth: password reset requested user_id=48213 channel=email",
                 "<Password>your_password_here</Password>",
                 'database_url: "postgresql://utilizator:parola@localhost:5432/inventar"',
                 "snmp-server community public RO",
                 "username e password sono richiesti"):
        assert secrets_in(text) == [], text


def test_what_the_forty_second_and_forty_third_blind_probes_found_missing_is_read() -> None:
    """Session 20: rounds 42 (a pharmaceutical company) and 43 (a games studio), each
    measured once before these; the rules' own examples cover the rest."""
    for text, value in (
            ("usuario fmartinez.cdmx y la contra es Nopal#7316#", "Nopal#7316#"),
            ("كلمة المرور القديمة كانت wolfpack071224 ولم أشاركها مع أحد", "wolfpack071224"),
            ("2. Serwerownia na -1, zamek szyfrowy, kod: 7911*\n3. Jeśli", "7911"),
            ("授權序號：EH4CI-CYF7T-XBWB9-BEDN5-ZE3D7", "EH4CI-CYF7T-XBWB9-BEDN5-ZE3D7"),
            # a chat's answer ends before its comma
            ("what's the lobby password again\nCoach Ren: it's quartz-zephyr-87, all lowercase",
             "quartz-zephyr-87"),
            # a recovery code's span ends with the code, not the line break after it
            ("the break-glass recovery code is KQ7M-4X2J-GASZ-PLVR\nSupport",
             "KQ7M-4X2J-GASZ-PLVR")):
        assert secrets_in(text) == [value], text
    # rounds 44 (a retail chain) and 46 (real estate)
    for text, value in (
            ("- şifre: Emlak4738.Bursa\n- fotoğraflar", "Emlak4738.Bursa"),
            ("log in with x and the master password button-tangerine-crescent-sparrow9. Don't",
             "button-tangerine-crescent-sparrow9"),
            ("שם המשתמש הוא snif-haifa12 והסיסמה שלי Dvash#12. בטלפון", "Dvash#12"),
            ("la serratura smart: codice ospite 160297 seguito da ✓", "160297"),
            ("supervisormodus: 3x tikken op het logo, supervisorcode 245663 invoeren", "245663")):
        assert secrets_in(text) == [value], text
    # round 45 (an automotive group), and capitals in Cyrillic (`ПИН`: the view's fix)
    for text, value in (
            ('[2, "b71c0e2a", "ChangeConfiguration", {\n  "key": "AuthorizationKey",\n'
             '  "value": "C1FF68BBC4B285CF8880D245CC35BF169C028A4D"\n}]',
             "C1FF68BBC4B285CF8880D245CC35BF169C028A4D"),
            ("- ПИН за агент: 187277\n- след", "187277"),
            ("КОД ДОСТУПА: 187277", "187277")):
        assert secrets_in(text) == [value], text
    for text in ('resource "random_password" "workshop_db" {\n  length = 24\n}',
                 "vault kv patch secret/dms/prod password=@/dev/stdin",
                 '{"fr": {"login.password": "Mot de passe", "login.pin": "Saisir le code PIN"}}'):
        assert secrets_in(text) == [], text
    # round 47 (a freight forwarder and port operator)
    for text, value in (
            ("lietotājs broker_tmp, parole RigaKugis459!. Konts", "RigaKugis459!"),
            ("nenosiri la muda KontenaBandari261%, kisha", "KontenaBandari261%"),
            ("con la clave de administrador, que es PatioManzanillo537?, y que ponga",
             "PatioManzanillo537?"),
            ("והסיסמה האחרונה שעבדה הייתה rlg3384VF$. אנחנו", "rlg3384VF$")):
        assert secrets_in(text) == [value], text
    # rounds 48 (an agricultural cooperative) and 49 (a call-centre company)
    for text, value in (
            ("ПЛК смесител - ниво на защита: парола 7EH8TMTJ\n\nТрябва", "7EH8TMTJ"),
            ('Dalam emel mereka tulis "Kata laluan PDF: Getah22.lad". Saya', "Getah22.lad"),
            ("סיסמת התעודה: %Katif999\n", "%Katif999"),
            ("tunnuksella koulutus_oulu ja salasanalla Saimaa_revontuli260$ — tämä",
             "Saimaa_revontuli260$"),
            ("My user is cc.ortega.r and the new pass they sent me is Jeepney.kalamansi979* but",
             "Jeepney.kalamansi979*"),
            ("kody zapasowe, jeden z nich to 1786-6942, ale nie", "1786-6942"),
            ("- logga in med kvalitet_coach / #kN0go529sx (gemensamt konto", "#kN0go529sx")):
        assert secrets_in(text) == [value], text
    for text in ("password ISO27001 audit", "the password WPA2PSK mode",
                 '], "next_page": "llOFDhPsXsL08oWxLWaJ4x79tSGn7iIk"}', "Kod autoryzacji: 338354"):
        assert secrets_in(text) == [], text
    # rounds 29 and 30 (held out in session 19, tuned on now)
    for text, value in (
            ("das Passwort lautet jetzt Kardio70$ – bitte", "Kardio70$"),
            ('kontem "service" z hasłem Apteka685!, tak jak', "Apteka685!"),
            ("Yeni şifreyi Hemsire801! olarak belirledim", "Hemsire801!"),
            ("kata laluan sementara ialah Hospital271#. Sila tukar", "Hospital271#"),
            ("TightVNC към 10.30.4.15:5900 с паролата i7jC1mvl, която", "i7jC1mvl"),
            ("Sisestan PIN2 (78982), aga DigiDoc", "78982"),
            ("gebe die PIN.QES 968028 ein", "968028"),
            ("מזהה פגישה 673 0752 1340, קוד גישה 106422. להביא", "106422"),
            # Hungarian and German low-high quotes
            ("A titkosítási jelszó: „eper vonat felhő gomba 18” (kisbetűkkel)",
             "eper vonat felhő gomba 18"),
            ("Das Passwort lautet „Kd8m Lagune 42“ und gilt", "Kd8m Lagune 42")):
        assert secrets_in(text) == [value], text
    for text in ("la contra del equipo fue muy fuerte 3-1", "se fue en la contra 2-1 al minuto 89",
                 "mudei para São Paulo em 2019", "SNMP community: public\nTemplate: UPS"):
        assert secrets_in(text) == [], text


def test_what_the_fifty_second_to_sixty_seventh_blind_probes_found_missing_is_read() -> None:
    """Session 21: the keyword readers' share of rounds 52-67 (the rules' own examples cover
    the rest): a value before a dash or a relative clause, `, c'est`, a `to` that begins a
    clause, two adjectives, passphrases of hyphenated words with a number, a Markdown table's
    credential column, a Wi-Fi named on the line above its key."""
    for text, value in (
            ("kullanıcı adı sekreter, şifre Dostluk%510 – büyük küçük harfe dikkat",
             "Dostluk%510"),
            ("bruker resepsjon, passord Nordlys_nordlys64 – bytt det første gang",
             "Nordlys_nordlys64"),
            ("ผมใส่รหัสผ่าน ESdrqb3653 ซึ่งเป็นรหัสเดียวกับที่ใช้ล็อกอิน", "ESdrqb3653"),
            ("Je suis sûr de mon mot de passe, c'est @Marseille96Oak , je l'ai", "@Marseille96Oak"),
            ("Password to open it: Auditor3721@ . Let me know", "Auditor3721@"),
            ("parola temporară comună Carpati7067!, după care", "Carpati7067!"),
            ("til trådløs deling: forbind til NW-Meeting, adgangskode blå-måge-tårn13",
             "blå-måge-tårn13"),
            ("kasuta kasutajanime marten.tamm ja ajutist parooli Saaremaa3355#, mille",
             "Saaremaa3355#"),
            ("- รหัสผ่านของ NVR ยังเป็น cmai531826 ซึ่งลูกค้าแจ้ง", "cmai531826"),
            ("Mis aktuells Passwort isch Zuerich$4992, das han ich", "Zuerich$4992"),
            ("- wifi: netwerk DOUANE-MV2-OPS\n- sleutel: Boei154$SMK\n- daarna", "Boei154$SMK"),
            ("| System | Account | Credential | Notes |\n|---|---|---|---|\n"
             "| Fire panel | viewer | badge SSO | no changes |\n"
             "| Generator | engineer | 8LctGRVjYlOY3Z!5 | rotate |", "8LctGRVjYlOY3Z!5")):
        assert secrets_in(text) == [value], text
    assert secrets_in("password server01 is Xyz123") == ["Xyz123"]
    # rounds 60-67
    for text, value in (
            ("A jelszó most Duna59?wf (múlt héten kaptam)", "Duna59?wf"),
            ("sa 的密碼改成 Eap6305#gzn，我用 SSMS", "Eap6305#gzn"),
            ("akun ERP kamu dengan kata sandi sementara Kopi8210! . Saat login", "Kopi8210!"),
            ("http://kaunter01:Harbor?9686@proxy.kl.foodgo.my:3128", "Harbor?9686"),
            ("DB_USER=booking\nDB_PASS=~PA1vd%kUd^mev\nQUEUE_DRIVER=redis", "~PA1vd%kUd^mev"),
            ("הגדרתי בבקר:\nהסוד המשותף: q5y6IisGwR2x\n", "q5y6IisGwR2x")):
        assert secrets_in(text) == [value], text
    for text in ("see https://host:8443?next=me@x.com",
                 "Clave: ••••••••••••••••••••••••2d8e",
                 "$pass = $env:SPC_PASS | ConvertTo-SecureString -AsPlainText -Force",
                 "password_file = ~/.vault_pass.txt",
                 "mapboxgl.accessToken = 'pk.eyJ1IjoiDI8EqM1lIFZPYunGSsABQJvynlRykkxIdIa2OndQ"
                 "xFSEMBifeGbVOvtRgdlR.EpcZJhJMGrzTW246pWOfLm';",
                 "smtp_password = PASSWORT_HIER_EINTRAGEN"):
        assert secrets_in(text) == [], text
    for text in ("I changed my password to login faster", "password x86-64",
                 '| BMS | noc-ro | see 1Password "BMS-LON1" | read only |',
                 '"output_token": "CloudFrontOriginAccessIdentityList.NextMarker",\n'
                 '"limit_key": "MaxItems",',
                 # Hangul syllables fold to themselves, not to their first consonant (`부분`
                 # folded as `비번`, a password's word)
                 "예를 들어 헤더 부분은 eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0 처럼"):
        assert secrets_in(text) == [], text


def test_what_the_rounds_held_out_in_session_21_found_missing_is_read() -> None:
    """Session 22, on rounds 50, 51, 58, 59 and 64 (held out in session 21, then tuned on):
    the keyword readers' share. A preposition's words say what a secret opens, not its kind
    (`password for all files:`); `, es lautet`, `, je to`, `— it's`; Tagalog's `na`; Russian's
    instrumental; an instruction to type it; a keyword glued to a word of a script written
    without blanks; a dotted value of random parts; Go's `[]byte("…")`; a credential column
    under a header in Lithuanian."""
    for text, value in (
            ("Please use the same password for all files this month: QWE5521rt and", "QWE5521rt"),
            ("fragt nach dem Kennwort, es lautet Alpenblick0913*.", "Alpenblick0913*"),
            ("Heslo do systému mi poslali v správe, je to Mraky?most?51@ a meno", "Mraky?most?51@"),
            ("asks for the codeplug password when reading it — it's Kilo_Radio83 (same)",
             "Kilo_Radio83"),
            ("nag-login ako gamit yung password na Lipad44_Bagahe pero", "Lipad44_Bagahe"),
            ("под учётной записью eng_ops с паролем KqrT7s221XoPPg_ появляется", "KqrT7s221XoPPg_"),
            ("chiede la password responsabile: digitare Banco731Bar?\n", "Banco731Bar?"),
            ("引き継ぎメモには「設定ソフトPW：QRT4417kfa」とだけ", "QRT4417kfa"),
            ("ldap_default_authtok = Vbn_4kW7P.Tu8.qeeR", "Vbn_4kW7P.Tu8.qeeR"),
            ('var signKey = []byte("8c1f0a52d77b3e9146f2c8a05b9d3e71'
             'a4c6f0b2d8e5a7c9013f4b6d8e2a1c57")',
             "8c1f0a52d77b3e9146f2c8a05b9d3e71a4c6f0b2d8e5a7c9013f4b6d8e2a1c57"),
            ("a community string amit beállított: Rdio7v2k!91. Hova", "Rdio7v2k!91"),
            ("Įrenginys | Vieta | Prisijungimas | Slaptažodis\n"
             "Vaizdo registratorius | serverinė | admin | Kaunas1987!", "Kaunas1987!")):
        assert secrets_in(text) == [value], text
    # a secret kept in a vault, named after `from`, is no value; `na` reads no other word
    for text in ("set psksecret <PSK from vault: network/stores/ipsec-dc-lon>",
                 "Ustawiamy hasło administratora na wszystkich tak samo",
                 "password: enter your own password"):
        assert secrets_in(text) == [], text

def test_what_the_sixty_eighth_to_seventy_fourth_blind_probes_found_missing_is_read() -> None:
    """Session 22, rounds 68, 70, 71, 73, 74: passphrase words in Nordic languages, a
    quoted value after `er`, Estonian's comitative, `currently`, Welsh `ydi`, Catalan `clau`,
    Vietnamese `mật mã`, Korean `설정 키`, a value of a password read before a later operator
    (`password X solo per firmare e …`), a generated value whose brackets close first
    (`SECRET_KEY=8@zp…))…`), a value starting with `My` is no placeholder."""
    for text, value in (
            ('Passfrasen for repoet er "fjell tang rense 417". Kan du', "fjell tang rense 417"),
            ("Proovisin kasutajaga operaator2 ja parooliga Meri4411#kl, tuleb viga", "Meri4411#kl"),
            ("Admin pw currently QmfT9OKjTaxz (the one on the sticker)", "QmfT9OKjTaxz"),
            ("Y cyfrinair newydd i agor y ffolder ydi MynyddDu52, hynny ydi", "MynyddDu52"),
            ("ens ha donat aquesta clau de l'API: 0c5a91be77d24f3e8a6b1c9d2e4f7a18. La",
             "0c5a91be77d24f3e8a6b1c9d2e4f7a18"),
            ("ID cuộc họp: 384 7408 4422\nMật mã: TRkwQp\nPhụ huynh", "TRkwQp"),
            ("설정 키: KQN73NF5ZBUHPVSV2HKBT3ZMI7DEP4XA\n계정", "KQN73NF5ZBUHPVSV2HKBT3ZMI7DEP4XA"),
            ("entra con utente m.rossi e password scuola.Bianchi27 solo per firmare e segnare "
             "le assenze, niente voti", "scuola.Bianchi27"),
            ("DEBUG=False\nDJANGO_SECRET_KEY=5@kq9137n_))lc3rirn_3l*m@-fy7tlbw^eyxr6&ii^-hg!\n",
             "5@kq9137n_))lc3rirn_3l*m@-fy7tlbw^eyxr6&ii^-hg!"),
            ("Логін: o.k@example.ua, пароль від пошти Dnipro#517 (я його не міняв).",
             "Dnipro#517")):
        assert secrets_in(text) == [value], text
    # a setting's name (`key_mgmt`), an idempotency key, a CLI's warning, RFC 7617's example
    for text in ('network={\n    ssid="YOUR_NETWORK"\n    psk="YOUR_WIFI_PASSWORD"\n'
                 "    key_mgmt=WPA-PSK\n}",
                 "POST /payments idem-key=8e4422ac-cc86-4a5c-a8f1-1f2e3d4c5b6a",
                 "WARNING! Using --password via the CLI is insecure.",
                 "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
                 # what a password opens, then a word that is no password
                 "the password for user bob123 expired"):
        assert secrets_in(text) == [], text

def test_what_the_seventy_sixth_to_eighty_second_blind_probes_found_missing_is_read() -> None:
    """Session 22, rounds 76, 79, 80, 82: a generated passphrase with no operator, `som er`,
    a product named `…ID` before the keyword, a value of both cases and a symbol after an
    adjective, an instruction to type it (`poner`), Thai `รหัส:`, Persian `رمز جدید`,
    Ukrainian `кодове слово`, `memorable word`, Dutch `gereset naar`."""
    for text, value in (
            ("the shared account is labshared, passphrase harbor-violet-quartz-maple , tell",
             "harbor-violet-quartz-maple"),
            ("BankID-passordet mitt som er pqxrun417?. Etterpå", "pqxrun417?"),
            ("login a.nowak, hasło startowe QwtrPlmXzk@ - zmień je", "QwtrPlmXzk@"),
            ("cuando pida la contraseña poner Retiro.2718QS. Luego", "Retiro.2718QS"),
            ('"เข้าเครื่อง: user = admin02\nรหัส: kqs5170#TW\nอย่าลืม', "kqs5170#TW"),
            ("رمز ورود عوض شد. رمز جدید: Dena4471#\nلطفاً", "Dena4471#"),
            ("я назвала своє кодове слово для телефонного банкінгу — Криниця58. Потім",
             "Криниця58"),
            ("His memorable word is walnut77 if the bank asks", "walnut77"),
            ("ontgrendeld, wachtwoord gereset naar Tulp8841 (tijdelijk), gebruiker", "Tulp8841")):
        assert secrets_in(text) == [value], text
    # an acronym with a case ending is no value; a payer's code is no secret; `id_…` names
    for text in ("ideiglenes jelszót a rendszer generálja és SMS-ben küldi meg",
                 "įmokos kodas 392620334, mokėtojo kodas tiekėjo sistemoje 4148486.",
                 "id_GostR3410_94_KeyTransportSMIMECapability = id_GostR3410_94"):
        assert secrets_in(text) == [], text

def test_what_the_seventy_seventh_and_eighty_third_blind_probes_found_missing_is_read() -> None:
    """Session 22, rounds 77 and 83: one `%XX` inside a password is its own character
    (`spedizioni%60q`), a password starting with `$`, `改成了`, Hindi `है`, Vietnamese
    `thành`, Norwegian `hemmelighet`, a code after `c'est`, a recovery code after `backup
    codes:` whatever word comes later."""
    for text, value in (
            ("Utente: hub_milano\nPassword: trasporti%60k\nCartella: /inbound/", "trasporti%60k"),
            ("usuario: sac@example.com.br\nsenha nova: $Plantao4417\nNAO passar", "$Plantao4417"),
            ("系统管理员账号还是 admin_bj02，密码改成了 Huoyun5521&，不要外传。", "Huoyun5521&"),
            ("मैंने पासवर्ड रीसेट कर दिया है। नया पासवर्ड है HubDelhi@418 — कैपिटल H", "HubDelhi@418"),
            ("email chung đã đổi mật khẩu thành Khohanoi*517. Ai", "Khohanoi*517"),
            ("Signeringshemmelighet: 5f0c2a9e81d4b7c3a6f1e8d2b9c4a7f0"
             "3e6d1b8c5a2f9e4d7c0b3a6f1e8d2b9c\n",
             "5f0c2a9e81d4b7c3a6f1e8d2b9c4a7f03e6d1b8c5a2f9e4d7c0b3a6f1e8d2b9c"),
            ("Les clés sont dans la boîte à clés, le code c'est 6194. La fuite", "6194"),
            ("I logged her in with one of her backup codes: 4418-2093 (she has to regenerate "
             "them today)", "4418-2093"),
            # an aside in brackets after a password's name; a password given alone on the
            # chat line after the question; `%20` inside a word of prose
            ("- parola la PC-ul de la rampa 2 (s-a schimbat azi): Rampa&71#\n- Andrei",
             "Rampa&71#"),
            ("[09:14] Мария: каква беше паролата за портала?\n[09:15] Елена: Portal6620#\n",
             "Portal6620#"),
            ("identifiant noe.b et mot de passe provisoire Tilleul%2031. Le site dit",
             "Tilleul%2031")):
        assert secrets_in(text) == [value], text
    # an encoded blank is decoded (`a%20secret`); `$password` stays a variable
    for text in ("password: $password", "echo $Password123",
                 'httpx.URL("https://jo%40email.com:a%20secret@example.de:1234/")',
                 "Chave PIX (aleatória): 30dc245e-1fbb-4ac0-8fcf-fe08ab16d211",
                 "      DB_PASSWORD: ${EDI_DB_PASSWORD:?must be set}\n"
                 "      AS2_CERT_PASSWORD_FILE: /run/secrets/as2_cert_pass\n"):
        assert secrets_in(text) == [], text

def test_what_session_22s_held_out_rounds_found_missing_is_read() -> None:
    """Session 23, rounds 69-89 (held out in session 22, tuned on since): Latvian `paroli`,
    Czech `změnila na`, Romanian `parola nouă`, SNMP's community under a variable's name, a
    webhook's secret named in Portuguese. (The new rules' own examples stand in the rule
    file: `code-compound-told`, `pin-told-lowercase`, `password-after-copula`,
    `code-keyed-in`.)"""
    for text, value in (
            ("Administrators iedeva kopīgu paroli: 71Buvlaukums$satiksme. Vai vari",
             "71Buvlaukums$satiksme"),
            ("klientské číslo je stejné, heslo jsem změnila na M*IRwOxQ40nQ. Potvrzovací",
             "M*IRwOxQ40nQ"),
            ("Userul e admin, parola nouă wfz603csm3, treceți-o în caiet.", "wfz603csm3"),
            ("SNMP_COMMUNITY = rovq43qsQhzw\nSNMP_PORT = 161", "rovq43qsQhzw"),
            ("const SEGREDO_WEBHOOK = '126ecdb649c67b6f5a60a1cc3ceaeec0"
             "c48aa07eb3e39491de6330b5733e123a';",
             "126ecdb649c67b6f5a60a1cc3ceaeec0c48aa07eb3e39491de6330b5733e123a"),
            ("codice autoradio 1817. voglio spiegargli", "1817")):
        assert secrets_in(text) == [value], text
    for text in ("es un secreto a voces que 2024 fue malo", "Il segreto del successo: 3 passi",
                 "the pin for the LED is 13", "enter 5000 as the monthly limit"):
        assert secrets_in(text) == [], text


def test_what_the_ninety_fourth_to_ninety_eighth_blind_probes_found_missing_is_read() -> None:
    """Session 23, rounds 92, 94, 95, 97, 98: `still` or `currently` after the operator (Polish
    `to nadal`, Slovenian `še vedno`, Finnish `on tällä hetkellä`), Finnish and Estonian `on`,
    Swedish `lösen` alone, `code` as a named Wi-Fi network's password, `senha do BitLocker …`;
    an app's strings, a public key in Swedish and Adyen's client key are no secrets."""
    for text, value in (
            ("Hasło do skrzynki to nadal Zwroty-2023# – nikt go nie zmieniał.", "Zwroty-2023#"),
            ("da je geslo za admin na NAS-u pri Kranjcu še vedno Soca2020. Ali", "Soca2020"),
            ("uus password on EXu!!&9NgIDfF%KJ , steam guard", "EXu!!&9NgIDfF%KJ"),
            ('Pääsalasana on tällä hetkellä "kivikko sammal pilvi lokakuu" (vaihdetaan',
             "kivikko sammal pilvi lokakuu"),
            ("Logga in på portalen och lösen CollabHub2024# och lägg upp dem", "CollabHub2024#"),
            ("Wi-Fi i vognen hedder VHK-Crew-2G, koden er Havørn991. Husk", "Havørn991"),
            ("está com a senha do BitLocker Mossoro1965. Se ele pedir", "Mossoro1965"),
            # round 92: a Turkish name's ending before the value and a dash after it;
            # Maghrebi Arabic's `الكلمة السرية`
            ("wifi adı MGS-AYT-RAMP, şifresi apron34* — misafir ağına", "apron34*"),
            ("المستخدم هو rak.checkin2 والكلمة السرية Fener@2022. ما", "Fener@2022")):
        assert secrets_in(text) == [value], text
    for text in ('"UI_LOGIN_PASSWORD_PLACEHOLDER": "Entrez votre mot de passe",',
                 "Malmö publik nyckel: QDR0tkLBebiR2XMIBP8kkJd7bK/ezAquXIvtXFYoK3M=\n",
                 "AdyenCheckout({\n  clientKey: 'live_7JF7299VCM3C734984PF22TD7TRICTFR',\n",
                 "statusCode = 404; errorCode: 5000", "the code is on GitHub, see the wifi docs",
                 "Bitte lösen Sie das Problem bis Montag"):
        assert secrets_in(text) == [], text


def test_what_the_hundredth_to_hundred_and_sixth_blind_probes_found_missing_is_read() -> None:
    """Session 23, rounds 100 to 114 (tuning): what follows `after` says when, not the
    password's kind (`password after the reset:`), Italian adjectives after the name, Swiss German
    `isch` before a quoted phrase, French `défini sur`, a words-and-number passphrase with a
    symbol, a hex key decoded in Java, a Vietnamese table's password column; a public key
    named in Italian (`chiave pubblica`) and age's recipient are no secrets."""
    for text, value in (
            ("has a new password after the reset: Winter2024!\nPlease", "Winter2024!"),
            ("impostata password temporanea Farfalla#26 comunicata telefonicamente",
             "Farfalla#26"),
            ('s Master-Passwort isch "pinsel kiesel ziegel tanne90", falls',
             "pinsel kiesel ziegel tanne90"),
            ("Mot de passe admin réinitialisé puis défini sur Papillon2022 par le technicien.",
             "Papillon2022"),
            ('SSID "HVA-Aussendienst-07", WPA2-Schlüssel ziegel-nebel-vogel75!. Fahrzeug',
             "ziegel-nebel-vogel75!"),
            ('    private static final byte[] KEY = hexToBytes("044bb996f93672f00b4891f336237d9d'
             '544c1fdd2543f74a96eaced0e647c557");',
             "044bb996f93672f00b4891f336237d9d544c1fdd2543f74a96eaced0e647c557"),
            ("Thiết bị\tVị trí\tTài khoản\tMật khẩu\nMáy in Zebra\tKho\tadmin\t3524MCtl\n",
             "3524MCtl"),
            # round 105: a code before a full-width comma, Arabizi `bta3o`, a password column
            # whose other cells say `see 1Password`
            ("信用卡在财务柜第二层，PIN 是 2682，刷完要把小票拍照", "2682"),
            ("el router elli fi Hall 7 el admin password bta3o SDVMtfh82G!, 3ayzak t8ayar",
             "SDVMtfh82G!"),
            ("System\tOwner\tLogin\tPassword\tNotes\nCvent\tRegistration\treg.team\tsee "
             "1Password\tSSO soon\nZebra Cloud\tBadges\tzebra-ops\tyh1uc5OlDcV0dT\ttemp\n",
             "yh1uc5OlDcV0dT"),
            # round 103: Irish `cód`, `pasfhocal … ná …`; a user / password pair after
            # Japanese `ユーザー`, the password with no digit
            ("ag an bpainéal in aice le doras na cistine, cód 4660 agus ansin ON.", "4660"),
            ("Is é an pasfhocal don ríomhaire ná puffin-biscuit-coffee-thunder. Má",
             "puffin-biscuit-coffee-thunder"),
            ("一時ユーザーを作成: DBT_BACKFILL / vdF=^Arb?Y@YJfkh#E (月末で失効)",
             "vdF=^Arb?Y@YJfkh#E"),
            # rounds 98 and 105: the new password called `the new one`
            ("I've reset your password. New temporary one: Citron2023$ - you'll be asked",
             "Citron2023$"),
            # round 108: French and other words for a password as XML elements, a Zulu
            # password, backup codes of two groups of four digits later on their line
            ("<utilisateur>CAVE</utilisateur>\n    <motDePasse>Tonneau2007@</motDePasse>",
             "Tonneau2007@"),
            ("iphasiwedi yekhompyutha yasehhovisi ngu Stellenbosch1135@2020. Uzoyishintsha",
             "Stellenbosch1135@2020"),
            ("I used one of the backup codes from the printout in my drawer, 3671 5574, and it",
             "3671 5574"),
            # rounds 110, 113, 114: a password column with `(SSO)` in other rows, a
            # passphrase with its number after a hyphen, Turkish backup codes
            ("Sistem\tKullanıcı\tŞifre\tNot\nOutlook\te.kaya\t(SSO)\tWindows ile aynı\n"
             "Gerber AccuMark\tplanlama2\tPorto.1829\tortak kullanıcı\n", "Porto.1829"),
            ("wifi ospiti ufficio Milano: rete KUVO-OSPITI, password tranvia-gelato-tavsan-27 "
             "— valida fino a fine novembre", "tranvia-gelato-tavsan-27"),
            ("yedek kodlardan biri kaldı: 0917 8343 bunu kullanan hemen bana yazsın",
             "0917 8343"),
            # round 111: Gulf Arabic's `الرقم السري` and `الكود الجديد`, an Arabic backup code
            # (RE2's `\b` is ASCII: no word boundary after an Arabic word), Synology's
            # `synouser --setpw`
            ("اسمها AQM-Site-Qiddiya\nوالرقم السري: Qiddiya!5104\nالرجاء", "Qiddiya!5104"),
            ("من بكرة كود باب المكتب تغير، الكود الجديد 2414# ولا تعطونه لأحد", "2414"),
            ("استخدم هذا الكود الاحتياطي اللي حفظته وقت التسجيل: 5809 8150 — س", "5809 8150"),
            ("admin@NAS01:~$ sudo synouser --setpw backupsvc 'c*Ug@1*A9p=DVO'\nPassword:",
             "c*Ug@1*A9p=DVO")):
        assert secrets_in(text) == [value], text
    for text in ("la sua chiave pubblica age per cifrare il file: "
                 "age1zay83dfvy7pxa29e7u7906j8t2jlqryw3mgaw2xy58qnxp6e38gsau",
                 "the password after the reset: see the e-mail from IT",
                 # psql's variable; a publishable key; an f-string's environment read
                 "CREATE ROLE report_it LOGIN PASSWORD :'report_pwd';",
                 "VITE_STRIPE_PUBLISHABLE_KEY=pk_live_5142qPdk0NF5zLMToRsQ3m5iLU1BSyKaCiVrbdpil"
                 "SDVYU3j83eTdh8qiducUSU5Tk7x1BxuPE0jTPhI2y6Ke80H4jW6MKVpF4t",
                 """f"UID={os.environ['ERP_DB_USER']};PWD={os.environ['ERP_DB_PASSWORD']};\""""):
        assert secrets_in(text) == [], text


def test_what_session_24s_rounds_found_missing_is_read() -> None:
    """Session 24: session 23's held-out rounds (93 to 115, now tuned on) and rounds 116 to 122
    (tuning). The word for `Password` in the languages Debian's message catalogues translate
    it into (`scripts/catalogue_words.py`), Luxembourgish `ass`, Hausa `ita ce`, Armenian's
    `՝`, a misspelt key, `passphrase to "…"`, password columns whose other cells point
    elsewhere (`(in kluis)`, `see KeePass`), tables headed in Japanese, `parseHex`/`decode(`
    literals, `POINT_AES_KEY`; a name ending in another field's word (`… user=`) and a
    column's `(SSO)` cell are no passwords, nor a base64 that decodes to text."""
    for text, value in (
            ("Brugernavn: drift\nKodeord: Fjord#2291 (skift efter login)", "Fjord#2291"),
            ("그룹웨어 관리자 암호: Seoul2024!x 입니다", "Seoul2024!x"),
            ("Νέο συνθηματικό: Kavala#7712", "Kavala#7712"),
            ("User ass astrelux_fdyn an d'Passwuert ass Remich80!, dat ass richteg", "Remich80!"),
            ('WiFi sunansa "AKOMA-STAFF-KN", kalmar sirrinsa ita ce Arewa$1112*. Kada',
             "Arewa$1112*"),
            ("վերջին օգտագործված գաղտնաբառը՝ Ani1970@", "Ani1970@"),
            ("data:\n  username: ZXJwX3N5bmM=\n  pasword: aj96SEg3bTdLOSFaSFE/LSElc0o=",
             "aj96SEg3bTdLOSFaSFE/LSElc0o="),
            ('I set the master passphrase to "river lantern copper orchard anvil" - is it',
             "river lantern copper orchard anvil"),
            ("Systeem\tGebruiker\tWachtwoord\tAfdeling\nWeegbrug\twb_operator\t(in kluis)\t"
             "Expeditie\nLabo-balans\tlabadmin\tKralupy.5700\tLab\n", "Kralupy.5700"),
            ("サービス\t用途\tログインID\tパスワード\t備考\n発注システム(EOS)\t店舗発注\tt24-hq-eos\t"
             "(SSO)\tEntra ID でログイン\nヤマト B2クラウド\t返品発送\tyamato-b2\tYuna1995\t月初\n",
             "Yuna1995"),
            ('    private static final byte[] KEY = HexFormat.of().parseHex("2f05060b0750cac4788ca'
             '01496da1da57855a4697c848f12b741dd13566b3239");',
             "2f05060b0750cac4788ca01496da1da57855a4697c848f12b741dd13566b3239"),
            ("POINT_AES_KEY=515e84d1748ce26e22a10bc6e97397ffd8db34b631c237e66b112159307f2262",
             "515e84d1748ce26e22a10bc6e97397ffd8db34b631c237e66b112159307f2262"),
            ("الإيميل المشترك الباسورد بتاعه qwe123@436 وكل ما حد يدخل", "qwe123@436"),
            # rounds 124 to 130
            ("entrati nel menu tecnico con la password amministratore Rigoletto2012$ come",
             "Rigoletto2012$"),
            ('2. Master-Passwort (Passphrase, Leerzeichen gehören dazu!): "Paradeiser Beisl '
             'Stiege Topfen"\n3.', "Paradeiser Beisl Stiege Topfen"),
            ("username: bgs.security, password dia Harimau@1990. jgn share", "Harimau@1990")):
        assert secrets_in(text) == [value], text
    for text in ("[2025-06-11 22:42:02] auth: password change required user=store0733",
                 "Service\tUse\tLogin ID\tPassword\tNotes\nEOS(x)\tordering\tt24-hq-eos\t(SSO)\t"
                 "Entra ID login\n",
                 "binaryData:\n  profile.json: eyJzdG9yZSI6ICJUUEUtMDE1OCIsICJwcmludGVyIjogIkVQ"
                 "U09OIFRNLW0zMElJSSIsICJwYXBlciI6IDgwfQ==",
                 # a masked query parameter, checked as cut at the next one; the TOTP seed
                 # every tutorial prints; a title's dash before a word
                 "GET https://partner.example.it/api/v1/eventi?token=***&da=2025-04-01",
                 "otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
                 "POLÍTICA DE PALAVRAS-PASSE — Direção de Sistemas de Informação"):
        assert secrets_in(text) == [], text


def test_what_session_25s_rounds_found_missing_is_read() -> None:
    """Session 25: session 24's held-out rounds (117 to 131, now tuned on) and rounds 132 to
    138 (tuning). C's `#define`, T-SQL's `N'…'`, a device prompt before `username`, a file
    printed after a `[user@host]#` prompt, a code said to have changed to a number or `new`
    after its name, passphrases after a password's name, a Wi-Fi's `name / password`, and
    words of more languages; prose after a password's name is no passphrase."""
    for text, value in (
            ('#ifndef FW_H\n#define FW_UPDATE_KEY_HEX "1cfc6da81dcb4988849f6b463240bc967cd1c1bc4b80'
             '25e0acd54db6c37ea6c7"\n',
             "1cfc6da81dcb4988849f6b463240bc967cd1c1bc4b8025e0acd54db6c37ea6c7"),
            ("CREATE LOGIN [bi_reader] WITH PASSWORD = N'dYE2WbqY*3g*Wh%e', CHECK_POLICY = ON;",
             "dYE2WbqY*3g*Wh%e"),
            ("NV-CORE-01(config)#username fse-local privilege 15 algorithm-type scrypt secret "
             "#3Kocdu&O7iYZC\n", "#3Kocdu&O7iYZC"),
            ("[root@dr-jenkins01 ~]# cat /var/lib/jenkins/secrets/initialAdminPassword\n"
             "48d23bc1e2279bbc0f0a7979115a0db7\n[root@dr-jenkins01 ~]#",
             "48d23bc1e2279bbc0f0a7979115a0db7"),
            ("- Ο κωδικός για την πόρτα του control room άλλαξε, νέος: 4486#\n", "4486"),
            ("de code van de achterdeur bij het magazijn in Veldhoven veranderd naar 53500#. Graag",
             "53500"),
            ("Tha còd an inneal-rabhaidh air atharrachadh. 'S e an còd ùr 2457.", "2457"),
            ("master password: canyon harbor copper saddle velvet\nthe 2FA is on",
             "canyon harbor copper saddle velvet"),
            ("- guest wifi: OrigenComun-Guest / GuestsHarvest2025\n", "GuestsHarvest2025"),
            ("- Wi-Fi ชื่อ LautanKrabi_5G รหัส Sambal@2024!\n", "Sambal@2024!"),
            ("अलार्म कोड 8799 आहे, तो कोणालाही सांगू नये.", "8799"),
            ("Login: farrux.elektronika, vaqtinchalik parol: ctj0DFg9MM\n", "ctj0DFg9MM"),
            ('istifadəçi adı "kassir2", şifrə isə sheki1991. Sabahdan', "sheki1991"),
            ("ইউজার RPT_RO, পাসওয়ার্ড গত সপ্তাহে বদলে Shaheen4854 করা হয়েছে", "Shaheen4854"),
            ('ফোল্ডারের পাসফ্রেজ হল "falcon-queen-sagar-tower-72"। আমি', "falcon-queen-sagar-tower-72"),
            ("le cambiamos la contraseña a Agus1985! y la tienen solo Flor", "Agus1985!"),
            ("d'Dier vum Büro geet mam Code 5218# op, de Badge", "5218"),
            ("installer said user telecomadmin, admin password asdfghjkl@ now", "asdfghjkl@"),
            ("use SNMP v2c, community Tigerhond46 (read-only, ACL 15 only)", "Tigerhond46"),
            ("Cloudflare ko naya API token banayeko chu, DNS edit matra: "
             "kN8NCWGUQHBjTfXBJEdgW5nJ8mGifV4te9A45QT3 . yo",
             "kN8NCWGUQHBjTfXBJEdgW5nJ8mGifV4te9A45QT3"),
            # rounds 142 to 146
            ("Em dùng mã dự phòng 6641 0890 trong tờ giấy chị đưa", "6641 0890"),
            ("ហើយពាក្យសម្ងាត់គឺ Angkor@9625 ។ បើមានបញ្ហា", "Angkor@9625"),
            ("ຊື່ຜູ້ໃຊ້ແມ່ນ somphone.k ແລະ ລະຫັດຜ່ານແມ່ນ Kham_2025*. ມັນ", "Kham_2025*"),
            ("ឈ្មោះអ្នកប្រើ៖ 0812-PNH ពាក្យសម្ងាត់បណ្តោះអាសន្ន៖ Z6SWH9R8 សូម", "Z6SWH9R8"),
            ("Mã tắt báo động mới là 494058, sau khi nhập thì bấm OFF", "494058"),
            ("Lösenfrasen till designteamets organisation är:\n\nfönster sten blå björk\n\nSkriv",
             "fönster sten blå björk"),
            ("polvorín punkuta kichanki. Código nisqaqa 049883 kachkan, ama", "049883"),
            ("tablet-ta kichanapaq contraseñaqa Litio$2020- kachkan. Kay", "Litio$2020-"),
            ('auth_token  = "7255cce8aac0236e8e475cfcaa47ec96 "\nclient = Client(sid, auth_token)',
             "7255cce8aac0236e8e475cfcaa47ec96"),
            ("3. Key ID 1, AES-256 key (hex): C2D4634D453520C11E02BEB3DD2506D3DB4B14B9EA2881621287"
             "C9B449C889CA\n4. Write radio",
             "C2D4634D453520C11E02BEB3DD2506D3DB4B14B9EA2881621287C9B449C889CA"),
            # round 140: Haitian Creole, Papiamento
            ("Kòd pòt angar la chanje. Nouvo kòd la se 14522 epi peze # apre.", "14522"),
            ("Modpas mwen se M1r31ll365# e li toujou di m li pa bon.", "M1r31ll365#"),
            ("Mi kontraseña ta Tiburon2023$ i e ta bisa ku e ta robes.", "Tiburon2023$"),
            # round 148: Javanese, Cebuano
            ("Mlebu 192.168.1.1, user admin, sandine Grace1987!. Sawise menune", "Grace1987!"),
            ("Ang code sa pultahan sa bodega sa Mandaue kay 72941 dayon pindota ang #.", "72941"),
            # rounds 150 to 154
            ("Openpay::getInstance('mgps1oskarprm0y481hb', "
             "'sk_f4fa000dda2cfd10327f3310b900e27d', 'MX');",
             "sk_f4fa000dda2cfd10327f3310b900e27d"),
            ("ניסינו להשתמש בקוד שחזור aquk-m5ei-2zyq אבל המערכת", "aquk-m5ei-2zyq"),
            ("ansible-playbook site.yml --vault-password-file <(echo 'Eilat-Shalom-85')\n",
             "Eilat-Shalom-85"),
            ("<interface>\n  <community>lvxajycu-ro-3080</community>\n</interface>",
             "lvxajycu-ro-3080"),
            ("שלחתי לו את הסיסמה הזמנית Negev#7532 בוואטסאפ", "Negev#7532"),
            # round 151
            ('tibber:\n  access_token: " P341_Kzdpfeq5IkEuqkGeDIjR8TtNl0SNeXsg3cglLi"\n',
             "P341_Kzdpfeq5IkEuqkGeDIjR8TtNl0SNeXsg3cglLi"),
            ("Kennzeichen\tFahrer\tTracking-Login\tPasswort\nRO-DS 411\tSepp M.\tro-ds-411\t"
             "siehe KeePass\nRO-DS 418\tLukas H.\tro-ds-418\tJonas.2014!\n", "Jonas.2014!"),
            ('gebruiker "werkvoorbereiding", wachtwoord kaas-falcon-apfel67-zadel (Fleur zet het',
             "kaas-falcon-apfel67-zadel"),
            # the held-out rounds 133 to 155, tuned on after their one scan
            ("$ aws configure set aws_secret_access_key LXJBKaareTkVK7JPCP00V2A7Bf6kvVfVszqgfNV6 "
             "--profile imaging", "LXJBKaareTkVK7JPCP00V2A7Bf6kvVfVszqgfNV6"),
            ("const client = twilio(process.env.TWILIO_ACCOUNT_SID, "
             "'8945ea673d3316586ef65550017c7365');", "8945ea673d3316586ef65550017c7365"),
            ('SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", '
             '"dj=1*iciqmi1en(8-ke&0uk^b#0h@*+^g)%bj5%4%v=g5x6ua&")',
             "dj=1*iciqmi1en(8-ke&0uk^b#0h@*+^g)%bj5%4%v=g5x6ua&"),
            ("  SNMP v2c enabled\n  community (RO): us8mzu6pstgm\n  trap host: 10.99.0.5",
             "us8mzu6pstgm"),
            ("Kirjauduin GitHubiin palautuskoodilla 526d2-bee8c mutta se sanoo", "526d2-bee8c"),
            ("telpa B-012, durvju kods 404936 un pēc tam jāpiespiež #.", "404936"),
            ("I-Wi-Fi igama layo lithi JIRANI-DBN-STAFF, iphasiwedi ithi SharksUbuntu6084. "
             "Ningayiniki", "SharksUbuntu6084"),
            ("lozinka je promijenjena i sada glasi Kolosijek7Lampa# — zapisati u KeePass",
             "Kolosijek7Lampa#"),
            ("Sustav\tKorisnik\tLozinka\tNapomena\nUPS dvorana\tadmin\tvidi KeePass\tAPC\n"
             "Satni sustav\troot\t1qaz2wsx!QAZ\tMobatime\n", "1qaz2wsx!QAZ")):
        assert secrets_in(text) == [value], text
    for text in ("Initialpasswort: wird per SMS zugestellt\nUnterschrift: ____",
                 "Şifre: danışma bankosundan günlük olarak alınır (her gün değişir)",
                 "Om kunden skickar sitt lösenord i klartext: flytta det till valvet, radera",
                 "Wi-Fi: Acme-Guest / password at reception", "WLAN: WPA2 / WPA3-Personal",
                 "app-specific password: abcd-efgh-ijkl-mnop",
                 "Foglald össze, kinek kell még jelszót cserélnie:\n\nFelhasználó\tIroda\tJelszó\t"
                 "Utolsó csere\tStátusz\n",
                 # an IPv6 address's tail after a comma is no password
                 "02:14 password reset, IP 2405:4803:d654:d011:d57b:17e3:cb68:7f89\n"):
        assert secrets_in(text) == [], text


def test_a_secret_key_in_one_case_is_told_from_words() -> None:
    """Base-36 keys under an API key's name (`random_one_case`): random ones pass, names
    with numbers do not."""
    from emancipate.guard.engine import random_one_case
    assert random_one_case("5gwgv820jstttpiv4hgddj51f7cwxpyjslvp1wvb")
    assert random_one_case("lgx_live_5gwgv820jstttpiv4hgddj51f7cwxpyjslvp1wvb")
    for name in ("ubuntu2204lts20240115build3", "project2024q3budget10final",
                 "application_json_content_type_header", "9f86d081884c7d659a2feaa0c55ad015"):
        assert not random_one_case(name), name


def test_what_session_26s_rounds_found_missing_is_read() -> None:
    """Session 26 (rounds 156, 158, 159, 161, 162): a code named with what it opens in more
    languages and an aside in brackets before its colon; a code after `of 6 digits`; an
    alarm said to be a number; recovery codes in Arabic and Portuguese, and GitHub's a few
    lines after their name; Korean's `API 키`; Kazakh's password; a query string's value
    before a parameter holding brackets. No longer reported: a masked value of any rule, a
    shadow file's locked account, a branch name joined by slashes, a cache's key."""
    for text, value in (
            ("- kód na alarm (Jablotron, zadná vrátnica): 2633# – po odchode zapnúť", "2633"),
            ("- رمز الخزنة بمكتب المحاسبة (فرع عبدون): 198240\n- الرواتب", "198240"),
            ("Kassadakı pul seyfdədir, seyfin kodu 90389. Sürücülərə kart ver", "90389"),
            ("・小口現金の金庫は経理室の奥、ダイヤル番号は 82-73-30（右・左・右）", "82-73-30"),
            ("2. 倉庫保險箱密碼已於 12/1 更換，新密碼 447498，只有課長以上知道", "447498"),
            ("ele pede o código de acesso de 6 dígitos, o meu é 205775 mas diz bloqueado",
             "205775"),
            ("Ele disse que o alarme é 5357 e depois carrego em OFF.", "5357"),
            ("هو معاه كود الاسترداد ده: 5259 4093 ومش فاهم يكتبه فين", "5259 4093"),
            ("Tinha guardado um código de recuperação num post-it: PPEB-4BSS . Onde", "PPEB-4BSS"),
            ("Marta: use one of your recovery codes\nPiotr: they're in my drawer\nMarta: ok, try "
             "e6c9c-20f37 — that one's unused", "e6c9c-20f37"),
            ("REST API 키: c7a21f33a8e8546cac6bded39d1bd297\n", "c7a21f33a8e8546cac6bded39d1bd297"),
            ("Wi-Fi желісі: TP-Kalamkas-Staff\nҚұпиясөз: Kalamkas2025staff\n", "Kalamkas2025staff"),
            ("FIELD_ENCRYPTION_ALGO=aes-256-gcm\nFIELD_ENCRYPTION_KEY=432bd31f6d18bd6257c669bb790c"
             "d412da9e16f22ffbab70e30c67f9d96070e4\n",
             "432bd31f6d18bd6257c669bb790cd412da9e16f22ffbab70e30c67f9d96070e4"),
            ("final key = Key.fromBase16('44d464197420eafd3417052d37a7496ef45e2c26bc34009b63334af8"
             "7341a792');", "44d464197420eafd3417052d37a7496ef45e2c26bc34009b63334af87341a792"),
            ("ڈیوٹی مینیجر ماسٹر کوڈ 7757 ڈال کر لاکر کھول سکتا ہے", "7757"),
            ("- De Code vom Materiallager isch 5549#, bitte nöd witergäh", "5549"),
            ("- new main entrance code from Monday 17th is 398515, old one stops", "398515"),
            ("Servis menüsüne girmek için teknisyen kodu 85518 (Hakan Bey verdi)", "85518"),
            ("အီးမေးလ် အကောင့်ကို မျှသုံးနေပါတယ်။ စကားဝှက်က Mdy#Sales2021 ပါ။", "Mdy#Sales2021"),
            ("Know-how protection password က CM1-Kyaukse!03 ဖြစ်ပါတယ်။", "CM1-Kyaukse!03"),
            ("ဆာဗာအခန်း တံခါး ကုဒ်ကို ပြောင်းလိုက်ပြီ။ ကုဒ်အသစ်က 563484# ။", "563484"),
            ("A Dhónaill, tá na seiceanna sa taisceadán. Is é cód an taisceadáin 164091. Cuir",
             "164091"),
            ("Il-PDF huwa protett: il-password hija HiatY0888A. Jekk għandek", "HiatY0888A"),
            ("Meta tasal filgħodu, daħħal il-kodiċi tal-alarm 9815 u agħfas OFF.", "9815"),
            # after the held-out scan: rounds 157 to 179's held-out misses
            ('pw_hash: "$argon2id$v=19$m=65536,t=3,p=4$k4X8zO01Lqgkr16BehsFjg$sFsFg0--gEHm96CLk'
             'CMtCwsqtlow-LWVT6pjxpeX0mg"',
             "$argon2id$v=19$m=65536,t=3,p=4$k4X8zO01Lqgkr16BehsFjg$sFsFg0--gEHm96CLkCMtCwsqtlow-"
             "LWVT6pjxpeX0mg"),
            ("الويفي ديال الورشة كيتقطع بزاف. الموديباس هو Marina.2026! وكيقبلو", "Marina.2026!"),
            ("user: h.elamrani, l password howa Jamm@1979 — ma bedeltouch.", "Jamm@1979"),
            ("Wifi bu bureau (ATLAMAR-STAFF) : password bi mooy Amina04@. Laptop yi", "Amina04@"),
            ("- Código de la alarma del galpón de agroquímicos: 6682 (se activa con ARM)", "6682"),
            ("Mon code de récupération du compte Microsoft c'est 2G6G8-ZXUYP-UP5VV-RXFQ8-PM4HS, "
             "est-ce que", "2G6G8-ZXUYP-UP5VV-RXFQ8-PM4HS"),
            ("https://learn.example.com/webservice/rest/server.php?wstoken=04cde4c3e7ac35a6888e2290"
             "57420c93&wsfunction=core_user_get_users_by_field&values[0]=a",
             "04cde4c3e7ac35a6888e229057420c93")):
        assert value in secrets_in(text), text
    assert secrets_in("Connecting to jdbc:sqlserver://10.50.2.31:1433;databaseName=EAP;"
                      "user=eap_svc;password=********") == []
    assert secrets_in("can these accounts log in with a password? cut from /etc/shadow:\n\n"
                      "root:*:19654:0:99999:7:::\n") == []
    assert secrets_in("7a35a51 (HEAD -> develop) Merge branch 'fix/CLM-2211-double-payout'") == []
    assert secrets_in("Run actions/cache@v4\n  with:\n    path: ~/.cache/pip\n    key: Linux-pip-"
                      "ddb75a86899cf21ecec97b70400792a9fc7eaaf1f5e59dfd562e4d94595a832d\n") == []


def test_what_session_27s_rounds_found_missing_is_read() -> None:
    """Session 27 (rounds 183, 185, 186, …): Xhosa's password and Zulu's copula with its
    hyphen; a safe opened `ngekhowudi`; Chinese `密碼` changed from a date in brackets, and a
    safe's combination after it; H3C's and Huawei's `password simple`/`cipher`; a password
    asked in Nepali and given with `ho`; a code's aside holding a digit. No longer reported: a
    masked value before a comma, Grafana's `$__file{…}`."""
    for text, value in (
            ("igama lokugqitha endalinikwa nguNomsa ngu Ubuntu@2023 kodwa lithi", "Ubuntu@2023"),
            ("I-WiFi igama layo ngu-HBK-Guest, iphasiwedi ngu- Ilanga2024#. Uma", "Ilanga2024#"),
            ("Isefu eseofisini yaseKapa ivulwa ngekhowudi 280617 . Imali", "280617"),
            ("美麗島站員工置物櫃室的門禁密碼從明天(6/12)起改為 090743，輸入完按 # 即可", "090743"),
            ("- 金庫保險箱密碼 27-57-51（右左右），今天起改用新的", "27-57-51"),
            ("local-user netadmin class manage\n password simple Qwerty69\n service-type ssh",
             "Qwerty69"),
            ("[09:12] Bikash KC: server room ko PC ko password k ho? lock bhayo\n"
             "[09:14] Sunil Tamang: zxcvbnm#72 ho, first letter capital", "zxcvbnm#72"),
            ("Station: Lamabagar HM-03\nSecurity code (level 1): 25072\nBaud 115200", "25072"),
            ("ፓስወርዱ Harar@Depot1980 ነው። ለደንበኞች እንዳትሰጥ።", "Harar@Depot1980"),
            ("isticmaale hx_berbera02, furaha sirta ah Hargeysa#2002. Ha la", "Hargeysa#2002"),
            ("- code porte local dameuses (garage haut) : 9493* , changé le 3/12", "9493"),
            ("const WOMPI_PRIVATE = \"prv_prod_jSSXJIDfynSdndVdPkWKoNSEdmXpyWmw\";",
             "prv_prod_jSSXJIDfynSdndVdPkWKoNSEdmXpyWmw"),
            ("- La clave del candado del furgón es 2074 (la sabe solo el chofer)", "2074"),
            ("Sabuwar lambar ita ce 7587#. Direban tankar mai zai buƙace ta gobe", "7587"),
            ("e gbanwere koodu alarm nke shelter taa. Koodu ọhụrụ bụ 170509. Onye", "170509"),
            ("Wi-Fi foforɔ no din yɛ IROKO-ACCRA-STAFF, na password no yɛ KolaTower59#. Mom",
             "KolaTower59#"),
            ("o código do alarme do almoxarifado mudou pra 182089, o antigo não", "182089"),
            ("- From today the read-write community on all switches is rwsvv_acucar49 ; read-only",
             "rwsvv_acucar49"),
            ("Pou ouver li, tap kod 3231 lor klavie ek atann lalimier vert.", "3231")):
        assert value in secrets_in(text), text
    for text, value in (
            ("ки пароли admin Malika1980# аст, аммо ҳоло қабул намекунад", "Malika1980#"),
            ("login s.tursunov, parol Bahor93!, port 993 SSL.", "Bahor93!"),
            ("колдонуучу — Айдана Т., сырсөз — Ofis#2024#. Биринчи", "Ofis#2024#"),
            ("(адрес azc-nvr-osh@ad), пароль доступа xjMzY96w3Dyl38, перезапусти службу",
             "xjMzY96w3Dyl38"),
            ("Күйүүчү май цистернасынын кулпусунун коду 7615. Кодду эч кимге", "7615")):
        assert value in secrets_in(text), text
    assert "416636" in secrets_in("- Bridge: +33 1 70 95 03 50, host PIN 416636 (Hélène hosts)")
    assert secrets_in("Address: 12 MG Road, Bengaluru, PIN 560001") == []  # a postal PIN
    # after the held-out scan: rounds 181 to 195's held-out misses
    for text, value in (
            ("দরজার কোড: ৭৫৫৩ (শুধু মা ও আয়া জানবেন)", "৭৫৫৩"),
            ("Ekigambo ky'ekyama: KabakaEnkoko1630\nTokiwa bakasitoma", "KabakaEnkoko1630"),
            ("Namba ya kuzima kengele ni 0675, halafu bonyeza #.", "0675"),
            ("PIN ya simu ya float imebadilishwa. Mpya ni 4637. Msiwape", "4637"),
            ("Мрежа: JADRO-PUTNICI, шифра: suncegaleb95. Интернет ради", "suncegaleb95"),
            ("fjalëkalimi i përkohshëm për të gjithë është Shkodra!1992 derisa", "Shkodra!1992"),
            ("Imam spremljen jedan kod za oporavak: RGB9N-YLPDU-LL56I-8ADZJ-2W8H6. Je li",
             "RGB9N-YLPDU-LL56I-8ADZJ-2W8H6"),
            ('CYFRINACH_LLOFNODI = "b416b3f8f77b104fd08a350a38ba1fb0858179708f0efd002aaf77dcbe'
             '6cd31e"', "b416b3f8f77b104fd08a350a38ba1fb0858179708f0efd002aaf77dcbe6cd31e"),
            ("un cod wrth gefn sydd ar ôl gyda fi ar gyfer y cyfrif: 1519 6837. Os", "1519 6837"),
            ("Ar ger-tremen merour lec'hel a zo Kemper29!, met ne gerzh ket.", "Kemper29!"),
            ("後備夾萬密碼改咗做 93-60-62，記住唔好寫", "93-60-62"),
            ("admin 密碼我哋設咗做 Cebu3886，佢哋要改", "Cebu3886"),
            ("「信箱密碼係 candle teapot anchor，登入後唔好改密碼」", "candle teapot anchor"),
            ("ناوی وایفای Sanabel_Azadi ە، وشەی نهێنی Azadi3927# ە. ڕاوتەرەکە", "Azadi3927#"),
            ("٣. رمز الإنذار مال المخبز صار ٢٧٥٤٠٢ ، لا تنطونه لأحد", "٢٧٥٤٠٢"),
            ("ya 3ammi el password ken Manoushe555*z w ba3d ma ghayyarto", "Manoushe555*z"),
            ("Comm. > PC Connection: Comm Key = 238295   Device ID = 3", "238295")):
        assert value in secrets_in(text), text
    assert secrets_in("SALE 卡號 1757-XXXX-XXXX-1223 金額 385 授權碼 027105 RRN 548339752275") == []
    assert secrets_in("Сменить пароль: Ctrl+Alt+Del → «Изменить пароль».") == []
    assert secrets_in("j'ai changé le code du portail du site YDE-0156 ce matin.") == []
    assert secrets_in('curl -H "X-API-Key: SUA_CHAVE_AQUI" https://api.example.io/v1') == []
    assert secrets_in("2025-06-11 DEBUG [auth] params={username=chen.yh, password=********, "
                      "remember=true}") == []
    assert secrets_in("[[servers]]\nbind_dn = \"cn=svc-grafana\"\n"
                      "bind_password = '$__file{/etc/grafana/ldap_bind.pass}'\n") == []


def test_the_rules_with_no_keyword_are_prefiltered_by_one_set_pass() -> None:
    """`engine.RuleSet`: one RE2 set pass over a text says which rules with no keyword can
    match in it; the others are not run. Findings are the same as running each rule."""
    from emancipate.guard.engine import RuleSet

    always = [GUARD.rules[i] for i, _, _, _ in GUARD.always]
    assert len(always) > 1 and GUARD._always_set is not None
    rule_set = RuleSet(always)
    assert rule_set.matching("nothing to see here") == frozenset()
    quoted = 'token = "q3Vb8Xk2Lm9Pz7Rt4Yw1Nc6HjD5sF0aGe"'
    assert {always[k].id for k in rule_set.matching(quoted) or ()} >= {"quoted-random-string"}
    texts = [quoted, "bare key Zm9vYmFyYmF6cXV4cXV1eHF1dXhmb29iYXJiYXpx and more",
             "words only, no key at all " * 40, 'x = "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"']
    with_set = [GUARD.scan(t) for t in texts]
    saved, GUARD._always_set = GUARD._always_set, None
    try:
        assert [GUARD.scan(t) for t in texts] == with_set
    finally:
        GUARD._always_set = saved


def test_a_password_told_past_its_clause_is_read_when_nothing_else_is_shaped_so() -> None:
    """`secrets.told_nearby` past the clause (session 29): to the paragraph's end, a word
    with a password's symbol or both cases and digits run together; not an identifier, not
    a policy's examples, not past a blank line or into another text."""
    for text, value in (
            ("ignition says my password is wrong. I'm typing Shikongo2021* with capital",
             "Shikongo2021*"),
            ("[10:03] Brian: says wrong password but I'm sure\n[10:03] Brian: its Meadow1012+",
             "Meadow1012+"),
            ("the mot de passe BIOS is the same everywhere. Celui-ci est commun : Parabole2024#.",
             "Parabole2024#"),
            ("Password for the laptop expired. I typed Namutebi1991 twice and it says no.",
             "Namutebi1991")):
        assert secrets_in(text) == [value], text
    for text in (
            "Wi-Fi: Members (password on the back of your card)\nPrinting: send to Foundry-MFP-1",
            "Passwords must not hold the brand (e.g. 'Ford2024!' or 'Leeds-Sales1').",
            "Choose a strong password. A phrase is harder to crack than 'P@ssw0rd!' is.",
            "My password expired.\n\nThe new laptop is Latitude5440Pro with Wi-Fi6 and Shika2024#",
            "the password expired. The project is SL_Destilaria_V4 and its tag Audit-2023 stays"):
        assert secrets_in(text) == [], text


def test_session_29s_tuning_forms() -> None:
    """Tuning rounds 212-228's forms: Agora's App Certificate, Uzbek's and Kyrgyz's password
    words in Cyrillic (and in two words), Irish's lenited password word."""
    for text, value in (
            ("const appCertificate = 'b2505cb22568b10d8f7e227052044842';",
             "b2505cb22568b10d8f7e227052044842"),
            ("Ака, 1С сервер паролини ўзгартирдим, энди Bishkek_528# бўлди", "Bishkek_528#"),
            ("склад Wi-Fi: AKT-Osh-Sklad, сыр сөз 1q2w3e6525! — айдоочуларга", "1q2w3e6525!"),
            ("Is é do phasfhocal sealadach ná E!4ykCa*Hj1r agus caithfidh tú", "E!4ykCa*Hj1r")):
        assert secrets_in(text) == [value], text
    assert secrets_in("appCertificate: string; // from the console") == []


def test_a_code_of_digits_right_after_the_password_word_is_read_not_a_count() -> None:
    """`secrets._told_digits` (session 29): 4 to 8 digits in the first three words after a
    password word, as a keypad takes them; not a count, a year, an example or an extension."""
    for text, value in (
            ("Fundi alijaribu kuingia kwenye menu kwa password 507538 lakini terminal", "507538"),
            ("ieeju kā administrators ar paroli 55632104, bet nevaru atrast", "55632104"),
            ("zwrot: menu -> zwrot -> hasło kierownika 62410 -> kwota", "62410"),
            ("nova central de alarme, senha de desarme 106350 (só supervisores)", "106350")):
        assert secrets_in(text) == [value], text
    for text in (
            "the password 12345678 is rejected by every policy",
            "the password expires after 90 days, the PIN after 2025 logins",
            "your password 16 characters long at least",
            "Clave de cliente (ej. 00458712) en la columna A",
            "如忘記密碼，請致電 IT 服務台內線 8800。",
            "ο κωδικός 2024 άλλαξε"):
        assert secrets_in(text) == [], text


def test_a_passphrase_told_after_its_name_is_read_not_a_name_a_key_or_a_button() -> None:
    """`secrets._phrase` (session 29): words joined by `-`, `.` or `_`, or quoted with blanks
    between, after a password word; not identifiers, keys' values, hosts or UI strings."""
    for text, value in (
            ('The passphrase for the restic repository is "biscuit giraffe orbit marble" (no',
             "biscuit giraffe orbit marble"),
            ('a new master passphrase as of today, "green-window-quarry", the old one',
             "green-window-quarry"),
            ("I keep forgetting my KeePass master passphrase. It's pebble_lantern_cloud_76 ok",
             "pebble_lantern_cloud_76")):
        assert secrets_in(text) == [value], text
    for text in (
            '- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: orders-db-creds',
            "password = var.db_password\n  skip_final_snapshot = false",
            "if you forgot the password, click 'Nie pamiętam hasła' on the page",
            'set "must change password at next logon" and unlocked the account',
            'think of the \'correct horse battery staple\' comic when choosing a password',
            "the password portal moved to cites.salut.example.cat last week",
            "Transform a low-pass filter represented in 'zpk' (Zero-Pole-Gain) form",
            '"Password protected bitmap"],\n ["4143", ".sle", "Steganos virtual secure drive"]'):
        assert secrets_in(text) == [], text


def test_a_password_told_later_in_its_clause_is_read() -> None:
    """`secrets.told_nearby`: the first password-shaped word in the rest of a password
    word's clause, whatever the words between (session 28); not a clause's other shapes."""
    for text, value in (
            ("parola pentru acces nesupravegheat am pus-o Varna-5062!. Schimb-o", "Varna-5062!"),
            ("i gat nupela pasword nau. Pasword em Rabaul-604# tasol yu no ken", "Rabaul-604#"),
            ("BIOS-salasanalla. Salasana on kaikissa sama: Karhu736. Pitäisikö", "Karhu736"),
            ("Network ndi MPS-HRE-5G uye password itsva ndi CRAQIpJfJpzA5F. Musaipa",
             "CRAQIpJfJpzA5F"),
            ('He probado con mi contraseña de siempre "Asdfgh371." y me dice que', "Asdfgh371"),
            ("Maintenance level: user manut, password accesso HMI Cretaz653%. Il livello",
             "Cretaz653%")):
        assert value in secrets_in(text), text
    for text in (
            "Your password was reset on 11-Jun-2024 (UTC+02:00) by your administrator.",
            "Your password expires in 5 days. Press Ctrl+Alt+Del to change it.",
            "The password for the old build box (bld-legacy-02) is in the vault.",
            "The router password for the stores is in 1Password, item Osaka-Routers-2024.",
            "Password reset for your portal account (tec.mty02) was requested today.",
            "the password hashing moves to argon2id with pbkdf2 as the fallback",
            "the Wi-Fi password did not change, only the network is now MTN-Staff-5G",
            "Tablets without a password: Galaxy Tab Active4, serial R58N574DMDP",
            "the password list moved to extranet_logins_v7.xlsx on the share",
            "password reset code sent to camille@poste-dev-14 at 08:14",
            "password policy ZX-SEC-2024 applies from v2.4.1 onwards",
            '{"de": {"login.forgot": "Passwort vergessen?"}, "it": {"x": "y"}}',
            "パスワード 変更は月曜から。新パスワード14桁以上を推奨します。",
            "map password to Password123Field"):
        assert secrets_in(text) == [], text
    # keys walked along a keyboard are a password, one class of characters or not
    for text, value in (("ansible_become_pass=mnbvqwerzxcv", "mnbvqwerzxcv"),
                        ("password: qazwsxedc", "qazwsxedc")):
        assert secrets_in(text) == [value], text
    assert secrets_in("password: keyboard") == []
    assert secrets_in("IT told us before the login is admin / qazwsx$ but we") == ["qazwsx$"]
    # Quechua's suffixes on the password's name, Vietnamese chat's `mk`, Khmer's Wi-Fi code
    for text, value in (
            ("HMI computadoraq contraseñanqa kunanmanta Reservorio@2023 kanqa. Ama",
             "Reservorio@2023"),
            ("Sutinqa 'SYA-QOSQO' , clavenqa Qosqo2019 . Visitakunapaqqa", "Qosqo2019"),
            ("dùng tạm tk chung: taixe.chung / mk Hanoi7263 , ko đc đổi mk", "Hanoi7263"),
            ("Wi-Fi បុគ្គលិក ឈ្មោះ VLK-TK-Staff លេខកូដ Angkor_mealea90 សូមកុំ", "Angkor_mealea90")):
        assert value in secrets_in(text), text
    assert secrets_in("Nyomkövetési szám: RL535506973HU. A csomag") == []
    # round 206-210's forms: a keypad code written with its star, a deactivation code, a
    # recovery code in Swedish, an account's pair in backticks, a random Django key holding
    # `$(`, which opens no command (`$(whoami)` does: a placeholder)
    for text, value in (
            ("el código del portón es *7117# y luego le das al botón verde", "7117"),
            ("- Alarma: código de desactivación 1436, tienes 30 seg", "1436"),
            ("kan du använda återställningskoden pm7id-8blbh, den ligger", "pm7id-8blbh"),
            ("2. Use the shared analytics account: `analytics_shared` / `n4ZU-PLe6fU2-sbL`",
             "n4ZU-PLe6fU2-sbL"),
            ("SECRET_KEY = 'django-insecure-m1pf#eyiqpkgg+x0e*0%kih62%1d9$(u&4+qc)u$5r#7caiqe7'",
             "django-insecure-m1pf#eyiqpkgg+x0e*0%kih62%1d9$(u&4+qc)u$5r#7caiqe7")):
        assert value in secrets_in(text), text
    assert secrets_in('DB_PASS=$(whoami)') == []
    assert secrets_in('password="$(cat /run/secrets/pw)"') == []
    # the told reader looks 200 characters back for a command line's option, not further
    # (a long line is read once per password word, not whole each time)
    near = "run it with --verbose and the password accesso HMI Cretaz653% now"
    assert secrets_in(near) == []  # (an option on the line: the flag rules' to read)
    far = "run it with --verbose " + "x " * 150 + "and the password accesso HMI Cretaz653% now"
    assert secrets_in(far) == ["Cretaz653%"]
    # after the second held-out scan: Yoruba's and Igbo's password words, Azerbaijani's
    # recovery code, a Korean key before a colon
    for text, value in (
            ("Orúkọ olùmúlò: o.adeyemi, ọ̀rọ̀ aṣínà tuntun: eru7041$ . Ẹ jọ̀ọ́", "eru7041$"),
            ("Emeghere m ya ọzọ, paswọọdụ ọhụrụ bụ Ngozi!2002. Biko", "Ngozi!2002"),
            ("Əvvəl saxladığım bərpa kodu bu idi: 832f1-9e985 — bunu", "832f1-9e985"),
            ("- Admin 키: 832906d42ee0e0d320af442d0f523e5d", "832906d42ee0e0d320af442d0f523e5d")):
        assert value in secrets_in(text), text
    assert secrets_in("키보드 설정을 바꿨어요: 한국어 2벌식") == []
    # a code told in Setswana (`khoutu … ke`, the code is)
    assert secrets_in("Khoutu e ntšha ke 422699 mme o tshwanetse go tobetsa *") == ["422699"]
    # it loses every overlap: a rule's finding keeps its own span
    assert secrets_in("the password for the bot is ghp_R8kLm2Vx9QwE4tYu7IoP3aSd6FgH1jK0ZxC5 now") \
        == ["ghp_R8kLm2Vx9QwE4tYu7IoP3aSd6FgH1jK0ZxC5"]


def test_session_30s_readers_that_need_no_word_and_tuning_forms() -> None:
    """Session 30: a dial lock's three numbers and a keypad code followed by its OFF/ON key are
    read in any language; forms of tuning rounds 236-242 (Albanian's definite password word,
    a code word before the network's name, transliterated `parol'`, Javanese `sandhi`,
    Finnish speech's `salis`, Arabizi's `mo2akat`, Greeklish `kwdiko`)."""
    for text, value in (
            ("قال لي أحد الموظفين إنه 88-43-89 بس ما فتحت معي", "88-43-89"),
            ("Kóòdù alárámù ni 6591 lẹ́yìn náà ẹ tẹ OFF/ON. Security ti mọ̀.", "6591"),
            ("rrjeti KYMATA-DUR-STAFF, fjalëkalimi DurresiStaf97", "DurresiStaf97"),
            ("Le code WiFi de la salle de formation est Falafel$jerash19, le réseau",
             "Falafel$jerash19"),
            ("parol' ot wifi dlya chitateley teper Neva#484 , set'", "Neva#484"),
            ('WiFi kagem tamu: "KS-PENDOPO", sandhine pendopojogja57. Menawi', "pendopojogja57"),
            ("käyttäjä Admin ja salis Kissa_2024 (Villellä oli se lappu)", "Kissa_2024"),
            ("3amalnalak password mo2akat Tq520796 odkhol beh", "Tq520796"),
            ("to zip exei kwdiko timologia7469 , an den anoigei", "timologia7469"),
            ("через резервный код 3526 8068, он одноразовый", "3526 8068")):
        assert secrets_in(text) == [value], text
    for text in (
            "deadline 23-11-24, meeting 14-52-37", "NPK 15-15-15 fertiliser, teeth 44-45-46",
            "Sort code: 40-72-04", "AOG – defect 32-41-00 brake wear", "тел. 32-26-55",
            "Pavel Morozov – Magadan logistics – 8 (4132) 29-74-36",
            '<path d="M1 1a4370 4370 0 01-359-950 63 63 0 00-55-65 82 82 0 00-45 0"/>',
            "Payment method: Visa ending 2291 (auto-renew ON)",
            "SELECT * FROM orders JOIN items ON orders.id = items.order_id LIMIT 5000",
            'curl -H "Authorization: Bearer TWOJ_TOKEN_OAUTH" https://api.smsapi.pl',
            "the error code wifi 1234 is shown on the panel"):
        assert secrets_in(text) == [], text


def test_a_rule_that_requires_a_shape_is_not_read_where_the_text_lacks_it() -> None:
    """`requires_shape` (session 30): the dial-combination rule runs only where the text's
    shape (`personal.shape_of`) holds `00-00-00`; the same text's findings either way."""
    (k, _, _, shape), = [a for a in GUARD.always if GUARD.rules[a[0]].id == "dial-combination"]
    assert shape == b"00-00-00"
    assert secrets_in("the safe: 88-43-89 from today") == ["88-43-89"]
    assert secrets_in("the safe: 88-43 from today, then 89") == []


def test_session_30s_second_batch_forms() -> None:
    """Tuning rounds 244-250: Flemish, Dutch, Sranan, Pashto and transliterated Persian
    password words, Turkish's suffixed password word before its value, Azerbaijani's `PİN`."""
    for text, value in (
            ("de paswoord is KonicaGent92! sinds maandag", "KonicaGent92!"),
            ("Mi seni yu a paswort fu a computer: SrananPikin409!", "SrananPikin409!"),
            ("د وای فای نوی پټنوم: Peshawar#416", "Peshawar#416"),
            ("لومړنی پاسورډ: Qila2031!R", "Qila2031!R"),
            ("ramze wifi avaz shod. ramze jadid: Tehran#3654", "Tehran#3654"),
            ("kullanıcı adınız dervis.ozkan, şifreniz de Lale1988@ olarak ayarlandı.",
             "Lale1988@"),
            ("Müştəri yazır: PİN 9395 göndərmisiniz amma qapı açılmır", "9395"),
            ("tk: doimay.q3\nmk: vovantan@2019\nxong thì bật", "vovantan@2019"),
            ("user admin, pass là modemq3823172 (anh đổi rồi", "modemq3823172"),
            ("윈도우 로그인 PIN 570264 에요", "570264")):
        assert secrets_in(text) == [value], text
    assert secrets_in("şifreniz en az 8 karakter olmalı") == []
    assert secrets_in("12 MG Road, Bengaluru, Karnataka PIN 560001") == []


def test_session_31s_settings_rows_and_dumps() -> None:
    """An SQL dump's settings: a column named `pass` in backticks, a key-value row after an
    id (`(5,'smtp_pass','…',…)`) or after other short cells (`(2,'twitch','client_secret',
    '…')`); a password with a symbol after its `=` passed to `define()`."""
    for text, value in (
            ("INSERT INTO `config_smtp` (`id`, `host`, `user`, `pass`, `from_name`) VALUES\n"
             "(1,'smtp.office365.com','intranet@tadla.example','RelaySahara*77','Intranet');",
             "RelaySahara*77"),
            ("INSERT INTO `app_settings` VALUES (1,'site_name','Alvier Intranet','2021-03-02'),"
             "(5,'smtp_pass','Feldkirch-Bahnhof_44','2022-11-17 16:40:02');",
             "Feldkirch-Bahnhof_44"),
            ("INSERT INTO `integrations` VALUES (2,'twitch','client_secret',"
             "'xrgi29ypdni7qau52y4rp3tzpl7f9j','2024-01-12 10:11:00');",
             "xrgi29ypdni7qau52y4rp3tzpl7f9j"),
            ("define( 'WPMS_SMTP_PASS', 'w_b9W=-@RiTWsk' );", "w_b9W=-@RiTWsk")):
        assert secrets_in(text) == [value], text
    for text in ("INSERT INTO `settings` VALUES (1,'smtp_pass','','2021-03-02');",
                 "INSERT INTO t VALUES (3,'password_policy','min_length=12','2021-03-02');",
                 "INSERT INTO `integrations` VALUES (1,'twitch','client_secret',"
                 "'see_vault_entry_twitch','2024-01-12');",
                 "retry(attempt=3, offset=-1)"):
        assert secrets_in(text) == [], text


def test_session_31s_wifi_list_settings_are_not_keys() -> None:
    """RouterOS's `authentication-types=wpa2-psk,wpa3-psk` after a Wi-Fi section names the
    kinds of key, not one (the list's next item is not a value told near `psk` either)."""
    text = ("# by RouterOS 7.13.5 (export hide-sensitive)\n/interface wifi security\n"
            "add authentication-types=wpa2-psk,wpa3-psk name=staff\n")
    assert secrets_in(text) == []
    assert secrets_in("/interface wifi security\nadd passphrase=Kalyna#Batumi77 name=staff"
                      ) == ["Kalyna#Batumi77"]


def test_session_31s_first_batch_forms() -> None:
    """Rounds 252-259: a Wi-Fi key under a `Network:` line, Kabyle's and Romansh's password
    words, Welsh `côd`."""
    for text, value in (
            ("STAFF CANTEEN - FREE WI-FI\nNetwork: TADLA-STAFF\nKey: CanteenCasa@23\n",
             "CanteenCasa@23"),
            ("Awal uffir amaynut d: Tizi_2025?\nUr t-ttaket ara", "Tizi_2025?"),
            ('La rait ha num "AP-Cuira" ed il pled-clav è Calanda_1912.', "Calanda_1912"),
            ("Y côd newydd yw 5729. Peidiwch â'i ysgrifennu", "5729")):
        assert secrets_in(text) == [value], text


def test_session_31s_dumped_tables() -> None:
    """A dump's rows inserted with no column list, read by the table's definition above
    them; a PostgreSQL COPY block's column and its key-value rows."""
    create = ("CREATE TABLE `sms_gateway_settings` (\n  `id` int NOT NULL AUTO_INCREMENT,\n"
              "  `provider` varchar(40) DEFAULT NULL,\n  `username` varchar(60) DEFAULT NULL,\n"
              "  `password` varchar(60) DEFAULT NULL,\n  `active` tinyint(1) DEFAULT '1',\n"
              "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n\n"
              "INSERT INTO `sms_gateway_settings` VALUES (1,'unifonic','ramla.ksa',"
              "'Unif0nic_vZmBJ',1),(2,'msegat','ramla2',NULL,0);")
    assert secrets_in(create) == ["Unif0nic_vZmBJ"]
    copy = ("COPY public.integration_settings (id, provider, setting_key, setting_value)"
            " FROM stdin;\n1\tnzpost\taccount_no\t7004412\n"
            "2\tnzpost\tclient_secret\tjzb8m2u195ywpmm3bw4871h2vbfmsh0x\n"
            "3\tnzpost\tlabel_format\tPDF_100x175\n\\.\n")
    assert secrets_in(copy) == ["jzb8m2u195ywpmm3bw4871h2vbfmsh0x"]
    column = ("COPY public.integrations (id, org_id, provider, api_key, enabled) FROM stdin;\n"
              "1\t12\tmailchimp\ti386urc6lre5wwi3pk33v0mt4rjuzt1c9jq4zbf2\tt\n"
              "2\t12\tslack\t\\N\tf\n\\.\n")
    assert secrets_in(column) == ["i386urc6lre5wwi3pk33v0mt4rjuzt1c9jq4zbf2"]
    hashed = create.replace("`password`", "`password_hash`")
    assert secrets_in(hashed) == []


def test_session_31s_second_batch_forms() -> None:
    """Rounds 260-267, read after their scan: a password column headed in Arabic, Gulf
    Arabic's `والباس`, Māori `waehere`, Samoan `upu lilo`, Dzongkha's password word, a chat's
    `pass?` answered by the value alone."""
    for text, value in (
            ("| النظام | المستخدم | كلمة المرور | المسؤول |\n"
             "| مقيم | ramla.hr1 | Muqeem51@Ruh | أبو خالد |", "Muqeem51@Ruh"),
            ("دخلت على الراوتر باليوزر admin والباس Ghala@Omantel1 وأبي أغير", "Ghala@Omantel1"),
            ("Ko te waehere hou: 3558. Kaua e tuhia ki runga i te pakitara!", "3558"),
            ("o le upu lilo fou o le imeli ua suia i le aso Gafua: Nonu!Upolu55 . Aua",
             "Nonu!Upolu55"),
            ("མིང་: GJ-Thimphu-Guest\nགསང་ཚིག: Norzin#Lam2023\n", "Norzin#Lam2023"),
            ("Rakib: pass?\nImran: Ratargul!Root77\nRakib: hoise", "Ratargul!Root77")):
        assert secrets_in(text) == [value], text


def test_session_31s_third_batch_forms() -> None:
    """Rounds 268-275: Frisian, Guaraní, Shahmukhi, Dhivehi and romanised Hebrew password
    words, Frisian `koade`, an activation code of digits or with no colon."""
    for text, value in (
            ("It wachtwurd is Drachten!Molke25, mar do moatst it feroarje", "Drachten!Molke25"),
            ("pe computadora oguereko ñe'ẽñemi pyahu: Kuarahy729!\nAni remombe'u", "Kuarahy729!"),
            ("ناں: NCTM-Hostel\nپاسورڈ: Chenab5511\nرات", "Chenab5511"),
            ('ha-wifi shel ha-rofim ze "Hadar-Docs", ve-ha-sisma hi rofim2024!! . im lo',
             "rofim2024!!"),
            ("de alarmkoade fan it pakhús yn Snits is feroare nei 9024, de âlde", "9024"),
            ("Activation code: 738286\nThis code expires in 48 hours", "738286"),
            ("use the one-time activation code VDU6TSBV at portal.parklog.eu/activate",
             "VDU6TSBV")):
        assert secrets_in(text) == [value], text


def test_session_32s_first_batch_forms() -> None:
    """Rounds 276-283: code words of Zulu, Shona, Fanagalo, Malagasy, Maltese, Kannada and
    Luxembourgish; a keypad code `followed by #`; a password named after it in German; an
    SQL column list's `pass`; an activation code in dashed digits; a quoted chat reply; a
    capitals word with a symbol and a number; Temporary Access Pass, msmtp, HAFAS."""
    for text, value in (
            ("ISAZISO: ikhodi yesango elikhulu lekamu izoba ngu 4416. Ningayiniki", "4416"),
            ("ny kaody vavahady dia 2309 dia tsindrio ny #. Ataovy sonia", "2309"),
            ("Il-kodiċi ġdid huwa 760399 u mbagħad tagħfas #. Jekk", "760399"),
            ("ಸರ್ವರ್ ರೂಮ್ ಬಾಗಿಲಿನ ಕೋಡ್ ಬದಲಾಗಿದೆ. ಹೊಸ ಕೋಡ್: 621764", "621764"),
            ("De Code ass 18939 – w.e.g. net un Drëtt weiderginn.", "18939"),
            ("Two-wheeler riders punch 8922 followed by # and wait", "8922"),
            ("wegen dem Account, $Depot25 ist das Passwort, Benutzer ist aushilfe.trier",
             "$Depot25"),
            ("INSERT INTO vicidial_users (user, pass, full_name, user_level)\n"
             "VALUES ('6666', 'Kcs&2023', 'Admin Noida', 9);", "Kcs&2023"),
            ("TRT Driver: your activation code is 864-279 . It is valid for 24 hours.",
             "864-279"),
            ("Ile PIN ya fuel card ya KDK ni gani?\n> ni 8049, usiambie mtu", "8049"),
            ("[08:14] Davide Magazzino: pw CARRARA#1964", "CARRARA#1964"),
            ("Ny teny miafina voalohany dia Ravinala@Tana25 ary tsy maintsy", "Ravinala@Tana25"),
            ("Outlook-um avelacru, parol@ Gyumri$82 . Ete harcni 2FA", "Gyumri$82"),
            ("Wifi: GHA-Fomasyon  |  paswòd: koleranord27", "koleranord27")):
        assert secrets_in(text) == [value], text
    for text in ("I'll pass, thanks Mike2024", "password SHA#256", "Activation code: 2024-01-15",
                 "what's the wifi password?\nAnna: it's in the drawer"):
        assert secrets_in(text) == [], text


def test_session_32s_second_batch_forms() -> None:
    """Rounds 284-291: a PIN in Catalan and Romanian, Basque, Sorani and Sudanese password
    words, a Romanian password named after it, a setup code, Malay keypad codes, a code told
    before its name, Sorani codes changed to a number, an Arabic entry code."""
    for text, value in (
            ("El pin és el 8426. Recordeu apuntar els quilòmetres", "8426"),
            ("Pin-ul e 1407, nu-l schimba", "1407"),
            ("VPN-aren pasahitza aldatu dut. Pasahitz berria: Pasaia_Itsasoa77. Ostiralean",
             "Pasaia_Itsasoa77"),
            ("Bucuresti#Depozit77 e parola nouă la CRM pentru contul comun", "Bucuresti#Depozit77"),
            ("enter the one-time setup code K7QF-29XM-4RTD to enrol it in Intune",
             "K7QF-29XM-4RTD"),
            ("pakai kod. Kod nya 9742 kemudian tekan *. Inda payah", "9742"),
            ("Kod mangga nya 3279. Lepas masuk kunci balik ah", "3279"),
            ("Write a message: 1157 is the code for the new 4-dial combination lock on gate B.",
             "1157"),
            ("کۆدی دەرگای هۆڵی نەشتەرگەری گۆڕدرا بۆ 3085 ، تکایە", "3085"),
            ("ناو: HEVI-Staff\nپاسۆرد: Chwarchra!2025\nتکایە", "Chwarchra!2025"),
            ("Meeting ID: 812 4471 9035\nرمز الدخول: 5rT8qW\nالرجاء", "5rT8qW"),
            ("الباسورد حقو misrata.nour2010 . داير منك", "misrata.nour2010")):
        assert secrets_in(text) == [value], text
    for text in ("Order 1157 is the code for tracking",
                 "Note: 1157 is the code for tracking parcels", "il pin e il puk 1234"):
        assert secrets_in(text) == [], text


def test_session_32s_third_batch_forms() -> None:
    """Rounds 292-299: Luganda, Sardinian, Corsican, Inuktitut, Turkmen and Kazakh password
    words, Juba Arabic and Swahili code names, a lower-case NIP, OpenTravel's
    MessagePassword, an ftp script's password line, a Temporary Access Pass named before a
    clause, a dial combination after its name, Orthanc's users, a token of 400 characters."""
    alphabet = string.ascii_letters + string.digits + "-_"
    long_token = "".join(random.Random(32).choices(alphabet, k=400))  # (a payment gateway's)
    for text, value in (
            ("WiFi empya etandise leero.\nErinnya: NYOTA-STAFF-5G\nPasiwedi: Gulu1993_\n",
             "Gulu1993_"),
            ("Pro su computer: s'utente est banconeTRT, sa crae est Cardedu97-. Non la naredas",
             "Cardedu97-"),
            ('a reta wifi hè "Casa_Maestrale", a chjave hè Balagna2017. U lunedi', "Balagna2017"),
            ("Office-mi wifi passwordnga nutaanguqtuq. Atinga SikuOffice-Arviat, passwordnga "
             "Arviat_Qimmiq2024. Qujannamiik", "Arviat_Qimmiq2024"),
            ("Ady: XWS-ASB, açar sözi: Kopetdag!2024", "Kopetdag!2024"),
            ("Namba jadid huwa 18694. Ma tagulu le ai zol", "18694"),
            ("namba ya mlango wa nyuma ya ofisi imebadilika, ni 830211 halafu", "830211"),
            ("Dispatch NLD: el nip es 4213\nDispatch NLD: carga en la Pemex", "4213"),
            ('<RequestorID Type="4" ID="MAESTRALE_OLB" MessagePassword="UH3FJG7uYvgAdDw2"/>',
             "UH3FJG7uYvgAdDw2"),
            ("echo open 10.30.1.9> C:\\b\\ftp.txt\necho user bascula_slt>> C:\\b\\ftp.txt\n"
             "echo Bascula7179$>> C:\\b\\ftp.txt\nftp -n -s:C:\\b\\ftp.txt", "Bascula7179$"),
            ("here is your Temporary Access Pass to register your new phone: ZN#wF#E$4%\nIt is",
             "ZN#wF#E$4%"),
            ("your locker in the maintenance shop is #17, combination 23-6-33. Please", "23-6-33"),
            ('"RegisteredUsers" : {\n    "radadmin" : "Nethravathi#09"\n  }', "Nethravathi#09"),
            (f"const MF_TOKEN = '{long_token}';", long_token)):
        assert secrets_in(text) == [value], text
    for text in ("the combination of 3 factors", "a combination therapy (2-1-1 dosing)",
                 '<img src="data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAA'
                 'EAAAICRAEAOw==" width="1" height="1">'):
        assert secrets_in(text) == [], text


def test_session_33s_first_batch_forms() -> None:
    """Rounds 300-307: pinyin's, Hawaiian's and Northern Sámi's password words, Finnish's
    partitive, Hawaii Pidgin's `stay`, Sámi's `lea`, Norwegian's `er nå` (is now),
    Albanian's and Marshallese's copulas, Albanian's `changed to`, a hyphenated word between
    a Somali code and its copula, Vietnamese `mã admin`, a dump's plain password among
    hashes and its `api_secret` column; not an English plural before `on`, nor a hostapd
    template's `CHANGE_ME`."""
    for text, value in (
            ("yonghuming zhangmin, mima zhangmin0612, dengwan jide tuichu", "zhangmin0612"),
            ("Pūnaewele Wi-Fi: MPH_Kona_Guest\nʻŌlelo huna: KaiLoa-2026\nMahalo", "KaiLoa-2026"),
            ("fo da payroll portal, password stay PaycheckPono57$. no share um", "PaycheckPono57$"),
            ("Nëse nuk ka njeri, kodi i derës anësore është 351467, pastaj shtyp", "351467"),
            ("- Kodi i alarmit të zyrës u ndryshua në 4516 pas largimit të Arbenit", "4516"),
            ("laptop eo ilo front desk, password eo an ej 9170. Jab kwaļọk", "9170"),
            ("Koodka albaabka qolka server-ka ee xarunta Muqdisho waa 638567, kadib", "638567"),
            ("anh vào menu quản trị bằng mã admin 929013 rồi xóa log", "929013"),
            ("INSERT INTO `portal_users` (`id`, `username`, `password`, `role`) VALUES\n"
             "(7,'brampton_dispatch','Dispatch2018!','dispatch');", "Dispatch2018!"),
            ("Namma: DuottarKantuvra\nBeassansátni: Boazu$Vuoddji21\nJus dihtor",
             "Boazu$Vuoddji21"),
            ("Facebook-siiddu beassansátni lea dál Guovdageaidnu_1852, rievdadin",
             "Guovdageaidnu_1852"),
            ("men wifi-passordet er nå Ailo.Biret.2016 – det gamle virker ikke",
             "Ailo.Biret.2016"),
            ("kokeilin salasanaa Poro-Ivalo_2019 mutta se sanoo invalid", "Poro-Ivalo_2019"),
            ("INSERT INTO `api_partners` (`id`, `name`, `api_secret`, `active`) VALUES\n"
             "(14,'ferryhopper-b2b','de44d350a972b4eec20f6fb7e50860c8f69a60b9e730faec',1);",
             "de44d350a972b4eec20f6fb7e50860c8f69a60b9e730faec")):
        assert secrets_in(text) == [value], text
    for text in ("This is ~/.ssh/authorized_keys on ks-vn-build01 (perms 644)",
                 "ssid=KS-LINE-__LINE_ID__\nwpa_passphrase=CHANGE_ME\n",
                 "the password will stay the same after the reset",
                 "ΠΛΗ-201 Δομές Δεδομένων – κωδ. μαθήματος 2201"):
        assert secrets_in(text) == [], text


def test_session_33s_second_batch_forms() -> None:
    """Rounds 308-315: IMAP's LOGIN command in a log, Low German's and North Frisian's password
    words, a code followed in words by the keypad's `#` (Danish `efterfulgt af #`), `and then
    #` after a code keyed in, Arabizi's `dakhil … w ba3dain #`, Serbian's and Macedonian's
    keys, Bislama's `hemi`, Arabic's unlock and lock codes; not a code another word names as
    an article's, nor a value GitLab or a person masked."""
    for text, value in (
            ("IMAP: S * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\n"
             'IMAP: C 2 login "amministrazione@pec.example.it" "Cefalu1977%"\n', "Cefalu1977%"),
            ('Dat Nett heet "VHW-Warkstatt" un dat Passwoort is Diekwind!Husum71 – mit',
             "Diekwind!Husum71"),
            ("Alarmen på lageret i Lem frakobles med 8330 efterfulgt af #. Hvis den går", "8330"),
            ("the staff room is locked, type 4160 and then # on the keypad next to", "4160"),
            ("el alarm yishti code, dakhil 5170 w ba3dain #. law zamar", "5170"),
            ("- аларм се укључује кодом 5275 па тастер ARM, излаз у року", "5275"),
            ("niu pasword hemi Kastom$2023vu, Marie bae i jenisim", "Kastom$2023vu"),
            ("جوال الشركة (الآيفون حق المبيعات) رمز الفتح 315090 ، خلوه", "315090"),
            ("bro el insta, el user hdt.luban w el pass Oud.shop71 , la tighayyirha",
             "Oud.shop71")):
        assert secrets_in(text) == [value], text
    for text in ("šifra artikla 100234 – pričvrsni pribor SKL 14, 2.400 kom",
                 '$ docker login -u "$CI_REGISTRY_USER" -p [MASKED] "$CI_REGISTRY"',
                 "I'm using survey.field / T**********3 like always but it says wrong password",
                 "call 0800 followed by # for help",
                 "wpa=2\nwpa_passphrase=CHANGE_ME_ON_SITE\n"):
        assert secrets_in(text) == [], text


def test_session_33s_third_batch_forms() -> None:
    """Rounds 316-323: a login call's literal password (commons-net, smtplib), Twilio's Node
    client's auth token, SMS.ru's `api_id`, Aranese, Catalan, Manx and Finnish-slang password
    words, Pulaar's and Wolof's copulas, a Forro code word, a Finnish key box, a chat's answer
    after `sí, ahora es` or `still`; not Razorpay's key id, a file the value is read from, a
    date, a timespan, a Jinja variable, a JWK's thumbprint, a connection string's template."""
    for text, value in (
            ('ftp.connect("ftp.example.se");\nftp.login("vienanpuu", "yAxmtLkJGgmK");',
             "yAxmtLkJGgmK"),
            ('s = smtplib.SMTP_SSL("smtp.163.com", 465)\ns.login("alarm@163.com", '
             '"BBDZKDXXNDDUWNNE")', "BBDZKDXXNDDUWNNE"),
            ("const client = require('twilio')(process.env.TWILIO_ACCOUNT_SID, "
             "'8403215e6ce3043020acabe23b2d0da9');", "8403215e6ce3043020acabe23b2d0da9"),
            ('curl -s "https://sms.ru/sms/send?api_id=A5E21014-7D1E-71BB-C866-323E9155820D&to=7"',
             "A5E21014-7D1E-71BB-C866-323E9155820D"),
            ("Wi-Fi: Colomers_Refugi\nMot de passa: Colomers.1991\nEth sopar", "Colomers.1991"),
            ("usuari: CIMSNEU-CONSULTA\nclau d'accés: Andorra.Neu2025\nDesprés", "Andorra.Neu2025"),
            ("login: admin / fockle-arrey: Cregneash-Village*9. Cur", "Cregneash-Village*9"),
            ('user "linja3-operaattori", passu Sorvaamo_04 — voitko', "Sorvaamo_04"),
            ("innde mum ko APN-KAEDI, mot de passe ko Fuuta2023Kaedi. Wota", "Fuuta2023Kaedi"),
            ("Code bi mooy 7710. Bu nga noppee", "7710"),
            ("Kódigu di pôtô di kaza fermentason sa 7351 , bô fecha", "7351"),
            ("avaimet on avainsäilössä konehallin päätyseinässä, koodi 4819, laita", "4819"),
            ("Carmen: la contraseña de Insta la cambió alguien?\nNúria: sí, ahora es "
             "PerafitaClaror_89\n", "PerafitaClaror_89"),
            ("[10:02] Binta: whats the password for the zebra printer?\n[10:05] Moussa IT: "
             "still zebra-quai-2 unless someone changed it\n", "zebra-quai-2")):
        assert secrets_in(text) == [value], text
    for text in ('var options = {\n  key: "rzp_live_WTni0q9E7hNLxU",\n  amount: 4550000',
                 "vault kv put secret/his/ris-db username=radiology_app "
                 "password=@/root/ris_pw.txt",
                 "Your password for HIMS will expire on 25-Nov-2024. Please change it",
                 "MaxPasswordAge              : 365.00:00:00\n",
                 "wpa=2\nwpa_passphrase={{ vault_coach_wifi_psk }}\n",
                 '{"kty":"RSA","e":"AQAB","x5t":"0fR9c-G3Pq0rWS2COf-QenrMu6w"}',
                 "postgresql://[user[:password]@][host][:port][/dbname][?param1=value1]",
                 "Anna: what's the wifi password?\nBen: yes, still no idea"):
        assert secrets_in(text) == [], text


def test_session_34s_first_batch_forms() -> None:
    """Rounds 324, 326, 327, 330: Tigrinya's and Amharic's password words with a copula last,
    a code told up to four words before Tigrinya's `እዩ`, `password-u`, Go's
    `smtp.PlainAuth`, a `.psk` file printed, Open Exchange Rates' `app_id`, `use X to log
    in`, `open with X`, `… and X as the password`, a code `changed …, it's now N`, a chat's
    answer after a vocative, a Wi-Fi's `pass`, Lao's and Thai's code words and keys, Khmer's
    `press`; not AWS's documented example key, nor a promotion's Thai code."""
    for text, value in (
            ("የጋራ መለያ፦ hr_payroll ፣ የይለፍ ቃሉ Payroll@Mkl2017 ነው። ስራችሁን", "Payroll@Mkl2017"),
            ("ስም ኔትዎርክ: HALIBET-PEDS\nመሕለፊ ቃል: Halibet@Peds24\nበጃኹም", "Halibet@Peds24"),
            ("ናይ ኣላርም ኮድ ካብ ሰኑይ ጀሚሩ 9042 እዩ። ማዕጾ", "9042"),
            ("ናይ መኽዘን ደገ ኮድ ተቐይሩ፡ ሕጂ 7730 እዩ", "7730"),
            ("ahun keyirewalehu. new password-u Enda$Mariam88 new, le shift", "Enda$Mariam88"),
            ('auth := smtp.PlainAuth("", "rota.orotta@gmail.com", "yeub ljiz lxpi gwex", '
             '"smtp.gmail.com")', "yeub ljiz lxpi gwex"),
            ("$ sudo cat /etc/zabbix/zabbix_agentd.psk\n"
             "26b393e3ec5009c12c124ea68e4a7de8065aa000f0a140509bf56032cbf276dd\n",
             "26b393e3ec5009c12c124ea68e4a7de8065aa000f0a140509bf56032cbf276dd"),
            ("INFO fetching https://openexchangerates.org/api/latest.json?app_id="
             "7d6948bea5bcf7aac62186bcf5fa013d&base=CHF", "7d6948bea5bcf7aac62186bcf5fa013d"),
            ("I reset it, use Welcome-Ayder-8841 to log in and it will ask", "Welcome-Ayder-8841"),
            ("File is protected, open with PayrollKH_Feb25 — same as January", "PayrollKH_Feb25"),
            ("please use your email address as username and AuditQ2_Lux!! as the password.",
             "AuditQ2_Lux!!"),
            ("- CD cupboard code changed after the audit, it's now 4719 then the green button.",
             "4719"),
            ("[07:42] Yeray: alguien sabe la clave del wifi del Chinijo? la cambiaron\n"
             "[07:44] Nayra: si mi niño, ahora es Chinijo_Mar2023\n", "Chinijo_Mar2023"),
            ("- Wifi name AGR-FLY-02, pass drillcore2025 (same as last season)", "drillcore2025"),
            ("[WhatsApp] ເອື້ອຍຈັນ: ລະຫັດແມ່ນ Hrecruit2024# ເດີ", "Hrecruit2024#"),
            ("ປະຕູຂ້າງມີກະແຈລະຫັດ, ກົດ 2390 ແລ້ວກົດ # . ຖ້າ", "2390"),
            ("- ລະຫັດຕູ້ເຊບ: 31-08-45 (ປ່ຽນແລ້ວ)", "31-08-45"),
            ("ប្អូន ទ្វារបន្ទប់ម៉ាស៊ីនភ្លើងលេខកូដ 456512 ចុចហើយរង់ចាំភ្លើងបៃតង", "456512"),
            ("[LINE] พี่เอก: รหัสผ่านใหม่ udon7777agr", "udon7777agr"),
            ("เปิดไฟล์ด้วยรหัส Drill3890th ครับ", "Drill3890th"),
            ("INSERT INTO vicidial_users (user, pass, full_name, user_level)\n"
             "VALUES ('6666', 'Kcs&2023', 'Admin Noida', 9);", "Kcs&2023")):
        assert secrets_in(text) == [value], text
    for text in ("The AWS docs use AKIAIOSFODNN7EXAMPLE as the access key ID and "
                 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY as the secret in all examples.",
                 "ใช้รหัส SALE2024 รับส่วนลด 10%", "the wifi will pass through the wall",
                 "the door code changed after the audit, it's now in the binder",
                 "use Python3 to open it",
                 "Yeray: sabes el pin del candado?\nNayra: si claro que no"):
        assert secrets_in(text) == [], text


def test_session_34s_second_part_forms() -> None:
    """Round 329 (and the old rounds' misses it shares): FortiOS's `set psksecret` after the
    CLI's prompt, a Redis URL's password holding an unescaped `/`, an activation code told
    after a colon further in the sentence, a tax authority's CSC for e-invoices; not a form's
    `(sin cambios)`, nor a Windows product key as an activation code."""
    for text, value in (
            ("FGT60F-CENTRAL (VPN-CDE) # set psksecret VvfdpEpL5oP7EpyIl8FB2NEs",
             "VvfdpEpL5oP7EpyIl8FB2NEs"),
            ("      - REDIS_URL=redis://:Ggqxv3egjWofu8trQY/o84eS@cache:6379/0",
             "Ggqxv3egjWofu8trQY/o84eS"),
            ("el código de activación del token digital para la cuenta de la empresa: 57224415."
             " La app", "57224415"),
            ("saisissez le code d'activation suivant dans l'écran « Activer mon appareil » : "
             "BPKL-GM5U-SAXE\nCe code", "BPKL-GM5U-SAXE"),
            ('  csc:\n    id: "0001"\n    valor: "8IRVN0HW8ITQ9LZOPQDS2XIM2OTC77NJ"\n',
             "8IRVN0HW8ITQ9LZOPQDS2XIM2OTC77NJ")):
        assert secrets_in(text) == [value], text
    for text in ('el campo Contraseña aparece así: "(sin cambios)". Si lo dejo así',
                 "see http://:8080/a/b@c", "Le code d'activation vous sera envoyé par courrier : "
                 "5 jours ouvrés"):
        assert secrets_in(text) == [], text


def test_session_34s_second_batch_forms() -> None:
    """Rounds 332-338 and the old rounds' misses: a video meeting's passcode next to its ID,
    a lock named the sentence before `Code: N`, `pass za …` (Croatian), a key file printed
    (Rails' `master.key`), a manager's override code, Welsh `wedi newid i`, Breton `c'hod
    nevez`, Hinglish `number lock … hai`, Nyanja's and Congolese Swahili's password words
    and Nyanja's `ndi`, Bemba's `password yandi`, a PIN `ya …` `ni` N; not a meeting's
    passcode `group`, nor an electronics pin."""
    for text, value in (
            ("Details: Zoom meeting ID 204 5669 7871, passcode 1286238249. Each family",
             "1286238249"),
            ("Microsoft Teams meeting\nMeeting ID: 384 115 902 667\nPasscode: giyemw\n", "giyemw"),
            ("Der Schlüssel liegt im Schlüsselsafe am Steg C, neben dem Stromkasten. Code: 7296."
             " Bitte", "7296"),
            ("Bok, pass za admin panel od weba je admin354Web!, user je lastavica_admin.",
             "admin354Web!"),
            ("$ cat config/master.key\nd8a8a487d5bea67530154ba6f86af50f\n$ bin/rails",
             "d8a8a487d5bea67530154ba6f86af50f"),
            ("till 2 drawer stuck again, used manager override 6561 to open it", "6561"),
            ("3. Diogelwch: côd y larwm wedi newid i 2284. Huw i ddweud", "2284"),
            ("- Kod an alarm a vo cheñchet d'al Lun. Ar c'hod nevez : 1526\n", "1526"),
            ("accounts wale almirah ka number lock 9268 hai, cheque books", "9268"),
            ("Network ndi NKW-CLINIC ndipo achinsinsi ake ndi Chibuluma@Clinic1. Osa",
             "Chibuluma@Clinic1"),
            ("Dzina: NKW-NDOLA-STAFF. Mawu achinsinsi: Mukuba_Ndola77", "Mukuba_Ndola77"),
            ("Boss, neno ya siri ya computer ya bureau ya paie ni Tshimbi2022. Mama",
             "Tshimbi2022"),
            ("Nalembele password yandi Mumba1987$ imiku itatu", "Mumba1987$"),
            ("pin ya ku copier iya HR ni 1843. Mwilashapo", "1843")):
        assert secrets_in(text) == [value], text
    for text in ("Zoom meeting ID 891 2045 6673, passcode group la thani ah anupuven",
                 "Zoom meeting ID and passcode below", "the pin of the chip is 13",
                 "The safe is in the office. Postal code: 10115."):
        assert secrets_in(text) == [], text


def test_session_34s_second_batch_held_out_forms() -> None:
    """Rounds 333 and 336, read after their scan: a Windows batch file's FTP script, Darija's
    new Wi-Fi code under an Arabic `الويفي`, Kabyle's `tangalt tamaynut d`, Algerian
    Darija's `le code ta3ha`."""
    for text, value in (
            ("echo open ftp.mwi.gov.jo> ftpcmd.txt\necho lwsc_upload>> ftpcmd.txt\n"
             "echo Wad1y@rmouk06>> ftpcmd.txt\necho binary>> ftpcmd.txt", "Wad1y@rmouk06"),
            ("السلام عليكم، الويفي ديال الطابق الثاني تبدل. سمية الريزو: RS-Etage2\n"
             "الكود الجديد هو Zitoun8808@\nما", "Zitoun8808@"),
            ("tangalt n ualarm tbeddel assa. Tangalt tamaynut d 7370. Ur", "7370"),
            ("Khalass b la carte CIB ta3 la clinique, le code ta3ha 9439. Ki tkemmel", "9439")):
        assert secrets_in(text) == [value], text
    assert secrets_in("echo open ftp.example.com> f.txt\necho anonymous>> f.txt\n"
                      "echo binary>> f.txt") == []


def test_session_34s_last_forms() -> None:
    """Rounds 338 and 339: Sheng's `pass ni`, `pass ya wifi … ni`, an app password `ni`,
    Kikuyu's `nĩ`, a value aligned in a column, YAMAHA's `pp auth myname`, romanised Korean,
    Japanese `passは「…」`, `パス` after a Wi-Fi, a key box's `番号`, romaji `anshō bangō wa`,
    a registration code; not a German `Passwort wurde … fehlgeschlagener …`, nor a file's
    `パス`."""
    for text, value in (
            ("coz sai login ya page ni email ya marketing na pass ni Serengeti&95 na watu",
             "Serengeti&95"),
            ("maze wasee, pass ya wifi ya guest ni Kiambu2002&baraka , mtu akiuliza",
             "Kiambu2002&baraka"),
            ("SMTP user ni scans@x.co.ke na app password ni pgys lvjk balc lzgo , usiweke",
             "pgys lvjk balc lzgo"),
            ("Kuuma ũmũthĩ, code ya gate ya cold room nĩ 2132 - ĩhũũre", "2132"),
            ("config.action_mailer.smtp_settings = {\n  password:             'Eq7mZp2Kw9Lr',\n}",
             "Eq7mZp2Kw9Lr"),
            (" pp auth myname bw-tenjin@bizf.ocn.ne.jp kT9vmR2x\n ppp lcp mru on 1454",
             "kT9vmR2x"),
            ("jiwon: BW_Hongdae_5F / bimilbeon hongik2024!!", "hongik2024!!"),
            ("梅田校の複合機(RICOH)のadmin passは「ricoh1134」です。", "ricoh1134"),
            ("ゲスト用Wi-Fiは「BW-Tenjin-Trial」でパスは trial2024tenjin です。",
             "trial2024tenjin"),
            ("ドア横のキーボックスに入っています。キーボックスの番号は「7496」です。", "7496"),
            ("anshō bangō wa 1757 desu. kaijo", "1757"),
            ("初回登録コード：1OD5-KQT0\nこのコードは一度のみ有効です。", "1OD5-KQT0")):
        assert secrets_in(text) == [value], text
    for text in ("Ihr Passwort wurde aufgrund mehrerer fehlgeschlagener Anmeldeversuche gesperrt.",
                 "ファイルのパスは C:\\data\\report.xlsx です", "mtihani, pass ni lazima"):
        assert secrets_in(text) == [], text


def test_toss_payments_client_key_is_public() -> None:
    """Toss Payments' client key (`live_ck_…`) is its payment widget's, loaded by every
    browser (round 339's look-alike); its secret key (`live_sk_…`) is reported."""
    assert secrets_in('const clientKey = "live_ck_kpaxdQVty25K20ecrlbHcLV6gteQ";') == []
    assert secrets_in('const secretKey = "live_sk_kpaxdQVty25K20ecrlbHcLV6gteQ";') == [
        "live_sk_kpaxdQVty25K20ecrlbHcLV6gteQ"]


def test_session_36s_first_batch_forms() -> None:
    """Rounds 372-378: a quoted passphrase of two words and a number, Sesotho's `nomoro ya
    lekunutu`, Afrikaans' `rugsteunkode`, Spanish `marcáis … la tecla`, Malayalam's locker,
    Norwegian's `passordet` (the password), a question for the password answered by the next
    line alone; not change-me placeholders in Spanish and Portuguese (`CAMBIAR_ESTO`,
    `COLOCAR_AQUI`)."""
    for text, value in (
            ('the verbal password, ours is "halibut cheeks 48". If you', "halibut cheeks 48"),
            ("Kenya nomoro ya lekunutu 9654 ho e tima.", "9654"),
            ("Gebruik hierdie rugsteunkode: 1715 4725. Hy werk net een keer", "1715 4725"),
            ("en la barrera marcáis 86405 y luego la tecla verde.", "86405"),
            ("പ്രിന്റർ റൂമിലെ ലോക്കറിന്റെ കോഡ് 7280 ആണ്.", "7280"),
            ("passordet til den delte postkassen post@fjord.no er Torsk2024!. Ikke endre det",
             "Torsk2024!"),
            ("—wn cuál es la pass del router de la casa??\n—quellon1987\n—todo junto",
             "quellon1987")):
        assert secrets_in(text) == [value], text
    for text in ('SMTP_PASSWORD: "CAMBIAR_ESTO"', 'EMAIL_HOST_PASSWORD = "COLOCAR_AQUI"',
                 'the button says "Enter password 2" again',
                 "what is the wifi password?\n- same as last year",
                 "Is the password policy 12 chars?\n- yes, v2.1"):
        assert secrets_in(text) == [], text


def test_session_36s_second_batch_forms() -> None:
    """Rounds 380-386: Plautdietsch's `Passwuat` and `Kod … es nü`, a sentence telling the
    password as what it is now (`Agora é …`), Lingala's `code ya wifi … ezali`, Kituba's
    `code ya kufungula kele`, a Russian key box's code, Swahili's and Chichewa's new number
    of a lock, Chadian Arabic's `حقّه` and `hana` (its), a password with a `$` at its end in
    the next sentence; not a Swahili account's number, nor an Italian placeholder."""
    for text, value in (
            ("De Benutza es hfriesen un daut Passwuat es Menno1927Chaco", "Menno1927Chaco"),
            ("Maria Penner: De Kod fa de Däa tom Labor es nü 5591 un dan dee Raut-Knopp.",
             "5591"),
            ("A senha do wifi da sede mudou ontem. Agora é milho-verde-2026 (tudo minúsculo).",
             "milho-verde-2026"),
            ("Ndeko Guy, code ya wifi ya bureau ezali Mwasi_Malonga99. Soki ekangi te",
             "Mwasi_Malonga99"),
            ("telefone ya mu kele na biro. Code ya kufungula kele 785707. Tala message",
             "785707"),
            ("Ключи в ключнице у входа. Код ключницы 7392. Взять ключ", "7392"),
            ("kufuli ya geti imebadilishwa leo. Namba mpya ni 9-6-3-3. Msiiandike", "9-6-3-3"),
            ("صندوق المفاتيح حق غرفة المولّد الرمز حقّه 7451. الحارس يفتحه", "7451"),
            ("Ya Adoum, al khazna hana al idaara, ragam hana 548797. Amshi", "548797"),
            ("Outlook keeps asking for my password. I put it in every time (TankerMojca41$) but",
             "TankerMojca41$")):
        assert secrets_in(text) == [value], text
    assert secrets_in("Namba ya akaunti: 0637598\nNamba ya mita: 37307733229") == []
    assert secrets_in('curl -H "X-Api-Key: INSERIRE_QUI_LA_CHIAVE" https://api.x.example') == []


def test_session_36s_third_batch_forms() -> None:
    """Rounds 389 and 393: a password told after a Chinese password word glued to the next
    word (`密码我改了，新的是 …`), Papiamento's `kaha fuerte` and `e pin ta`, Iban's `kod baru
    nya`, a Dutch question `wie weet …` (who knows) that gives no example; not Spanish's
    `TU_API_KEY` placeholder."""
    for text, value in (
            ("公司网银的密码我改了，新的是 LimCheng@1968 ，你明天先付款", "LimCheng@1968"),
            ("* E kaha fuerte di resepshon: kódigo 56675. Paga ku", "56675"),
            ("Usa e karchi di kompania, e pin ta 2996. Trese", "2996"),
            ("kod kunci tangki diesel udah ditukar, kod baru nya 3-9-1-6. Anang", "3-9-1-6"),
            ("Anouk: wie weet het wachtwoord van de wifi? Oh laat maar, gevonden: Kantoor5519!",
             "Kantoor5519!")):
        assert secrets_in(text) == [value], text
    assert secrets_in('curl -H "Authorization: Bearer TU_API_KEY" https://api.x.example') == []
    assert secrets_in("Vermeiden Sie Passwörter wie Sommer2024! oder Firmenname1") == []


def test_session_36s_last_batch_forms() -> None:
    """Rounds 388-395: Tatar's and Bashkir's secret word (`серсүз`, `серһүҙ`, `sersüz`),
    Sindhi's `پاسورڊ`, Korean's `비번`, Hmong's `lo lus zais`, Ukrainian's and Romanian's
    alarm codes, an activation code on the lines after its colon, Lao and Hmong codes."""
    for text, value in (
            ("Челтәр: IDEL-Ashkhana\nСерсүз: Sabantuy_2024\n", "Sabantuy_2024"),
            ("логин i.yuldashev, беренсе серһүҙ Ural_Batyr88. Тәүге", "Ural_Batyr88"),
            ("yaña ofista wifi sersüze: AlmetNeft1948 , çeltär", "AlmetNeft1948"),
            ("اسٽاف وائي فائي جو نئون پاسورڊ هي آهي: Mohenjo@Daro2024", "Mohenjo@Daro2024"),
            ("민수씨, 법인카드 가져가세요. 비번 0463이에요. 영수증은", "0463"),
            ("Lub npe: Van-YL-07. Lo lus zais: tsheb1374. Thov", "tsheb1374"),
            ("Сергію, завтра відкриваєш склад сам. Код охорони 2095, ставиш", "2095"),
            ("Cod de armare/dezarmare pentru personal: 51765", "51765"),
            ("inserisca il codice di attivazione monouso:\n1KUZ-7RIQ-L1FY\nIl codice",
             "1KUZ-7RIQ-L1FY"),
            # Lao: a code `ແມ່ນ` (is), the password word glued to `ໃໝ່` (new), a Wi-Fi's code
            ("ໃຊ້ບັດ BCEL ຂອງບໍລິສັດ, ລະຫັດ ATM ແມ່ນ 6846. ຖອນ 3,500,000 ກີບ", "6846"),
            ("NAS ຫ້ອງການ ໄດ້ປ່ຽນລະຫັດຜ່ານໃໝ່ ເປັນ DocsLPB488* . ກະລຸນາ", "DocsLPB488*"),
            ("ຊື່ WiFi: YL_TeaRoom\nລະຫັດ: phongsaly26\nຊາມື້ນີ້", "phongsaly26"),
            # Hmong: the code that opens the key box `yog` (is)
            ("tus code qhib lub thawv yuam sij yog 6216. Yuam sij", "6216")):
        assert secrets_in(text) == [value], text


def test_session_36s_fourth_batch_forms() -> None:
    """Rounds 396-403: Belizean Kriol's `passwod` answered on the next chat line after a
    copula (`da Belikin2024!`), `New one da 7719`, Tibetan's topic marker after a code, a
    Romanian activation code, a padlock or a safe said to be its code, Russian's `— ввести`
    (enter) after a password word, Avar's and Kumyk's codes."""
    for text, value in (
            ("[08:14] Jamal: weh di wifi passwod fi di new office? Mi phone noh ketch it\n"
             "[08:15] Keisha Tillett: da Belikin2024!\n", "Belikin2024!"),
            ("Di gate code fi di back yaad change today. New one da 7719 den press di bell.",
             "7719"),
            ("མགྲོན་ཁང་གི་སྒོ་ཡི་ code ནི་ 0852 ཡིན།", "0852"),
            ("codul de activare pentru aplicația Smart Token este: 58017520 . Codul", "58017520"),
            # a password word, a dash, then what to enter; Avar's new code, Kumyk's door's code
            ("КриптоПро спросит пароль контейнера — ввести 27723310 (галочку", "27723310"),
            ("Ординаторскаялъул нуцӀил код хиса гьабуна, цӀияб код: 9664. Дежурство", "9664"),
            ("Гьали склад ачгъычны къоюп турман, эшикни коду 591045. Гечеде", "591045"),
            # a password of two words around digits; Spanish `llave` (key) in a key's name
            ("le mot de passe est désormais Poni7012Gaoua (attention aux majuscules)",
             "Poni7012Gaoua"),
            ('"LlaveFirma": "6f542f57361628f7b2d5cf39bb54ea71",',
             "6f542f57361628f7b2d5cf39bb54ea71")):
        assert secrets_in(text) == [value], text



def test_session_37s_first_batch_forms() -> None:
    """Rounds 404-410: the English word `password` spelt by its sounds in a script no word
    list has (Odia, Yiddish, Meitei Mayek, Thaana), a login's credentials named in prose, a
    code spelt out digit by digit that reads as a year when written whole (`1 9 7 4`), Igbo's
    `okwuntughe`, Yoruba's `kóòdù`, Yiddish's `פין … איז`, a Hebrew activation code,
    Neapolitan's `Mo è` (now it is), Venetian's `se verze co` (opens with)."""
    for text, value in (
            ("ସମ୍ବଲପୁର ଗୋଦାମ\nୱାଇଫାଇ ନାମ – SBP_Godown\nପାସୱାର୍ଡ୍ – gudam@sambalpur11\n",
             "gudam@sambalpur11"),
            ("נאמען: HF-Office\nפאסווארד: Leffe2016@\n", "Leffe2016@"),
            ("wifi ꯑꯅꯧꯕ: SSID Sutrika_Wangkhei, ꯄꯥꯁꯋꯥꯔꯗ Khamba_Thoibi6 ꯅꯤ꯫", "Khamba_Thoibi6"),
            ("ވައިފައި ޕާސްވޯޑް: Male_Hulhu2024 ދެން", "Male_Hulhu2024"),
            ('fails with "Credentials or SSLVPN configuration is wrong (-7200)". User says she '
             "types Nuapatna@65 which worked till Friday.", "Nuapatna@65"),
            ("main door has a keypad, code is 1 9 7 4 then the key symbol.", "1 9 7 4"),
            ("okwuntughe Jumia Vendor Center anyị: Nkechi_Jumia25 ugbu a.", "Nkechi_Jumia25"),
            ("Kóòdù tuntun ni 560808, lẹ́yìn náà ẹ tẹ bọ́tìnnì", "560808"),
            ("פרעגט יעדן אינדערפרי פאר א פין. דער פין איז 1629. נאך 3 מאל", "1629"),
            ("ולהזין את קוד ההפעלה החד-פעמי: CYWH7ISN. הקוד בתוקף ל-48 שעות.", "CYWH7ISN"),
            ("'a password d''o wifi d''a cucina è cagnata. Mo è PizzaFritta_81\n",
             "PizzaFritta_81"),
            ("la cassaforte de la biglieteria la se verze co 3-5-1-9-0. La xe", "3-5-1-9-0")):
        assert secrets_in(text) == [value], text
    # a year written whole stays a year; Hebrew's and Arabic's words of the same consonants as
    # `password` (in the server, quickly) are not the word
    assert secrets_in("the door code changed in 1974, ask Rivka") == []
    assert secrets_in("הקובץ נמצא בשרת Backup2024!x של המשרד") == []
    assert secrets_in("أرسل الملف بسرعة Backup2024!x إلى المكتب") == []
    assert secrets_in("רשמנו הפסד Backup2024!x ברבעון") == []  # (p, s, d: a loss, no r or w)


def test_session_37s_second_batch_forms() -> None:
    """Rounds 405-419 after their scans: a vault named before `is now` is the one whose
    password is told; a quoted value holding `&&` is a string, not code; a dash then the value
    itself; a sentence after the password's naming the new one before a colon (`Yenisi:`); a
    case's ending after an apostrophe (`password'u`); a list's next item before `as the
    password`; a chat's question answered two lines later; Swedish one-time codes, Finnish
    recovery codes, Entra's Temporary Access Pass told in a sentence, a Nextcloud app
    password, Microsoft Authenticator's code in French; Bavarian, Czech and Sami codes."""
    for text, value in (
            ('the break-glass master password for the "Davvi-IT" vault is now '
             "tundra-kettle-aurora-hammer-41 – sealed envelope", "tundra-kettle-aurora-hammer-41"),
            ("export PGPASSWORD='efR&IOa1&L&&DJrC%V'\n", "efR&IOa1&L&&DJrC%V"),
            ("новий пароль від вайфаю на складі — wawel.mokotow18$ . Старий", "wawel.mokotow18$"),
            ("ofisin wifi şifresi değişti. Yenisi: galatakulesi34  (hepsi küçük harf)",
             "galatakulesi34"),
            ("extranet password'u değiştirdim çünkü alert geldi. Yeni: Ortakoy#Cami22 , 2FA",
             "Ortakoy#Cami22"),
            ("I created a VPN account for him: user ext-softvision, Copper#1961 as the password,",
             "Copper#1961"),
            ("[9:02] Jessa: unsa na password sa wifi? dili na ko maka-connect\n"
             "[9:03] Dodong: oo gi-ilisan ni sir Rey gahapon\n[9:03] Dodong: sugbo_1565?\n",
             "sugbo_1565?"),
            ("Här är engångskoden för att aktivera ditt Visma-konto: 6Q2G-RJK4\nSen", "6Q2G-RJK4"),
            ("Löysin vanhasta vihkosta palautuskoodin:\n41X6P-2UZIU-F2N6T-AQU8S-EBPX7\nVoiko",
             "41X6P-2UZIU-F2N6T-AQU8S-EBPX7"),
            ("Your Temporary Access Pass is AMEZggLN . It is valid for 8 hours", "AMEZggLN"),
            ("# /etc/davfs2/secrets\nhttps://cloud.x.ch/remote.php/dav/files/km/  km  "
             "iNzLT-Ka7kT-yHucF-aqy7J-5Pl2d\n", "iNzLT-Ka7kT-yHucF-aqy7J-5Pl2d"),
            ("Microsoft Authenticator, saisissez le code 807 921 676 et l'URL", "807 921 676"),
            ("da Code fürs Rolltor in Hoi 3 is jetz 8543 und dann Raute.", "8543"),
            ("ahoj, kod na dvere do satny je ted 11520, zmenili to vcera", "11520"),
            ("ii šat, rievdadin dan čakčat. ođđa koda: 0643\n", "0643"),
            ("Ang kumbinasyon ng padlock ay 5-6-5-2. Huwag mong", "5-6-5-2")):
        assert secrets_in(text) == [value], text
    assert secrets_in("Nextcloud app password format: xxxxx-xxxxx-xxxxx-xxxxx-xxxxx") == []
    assert secrets_in("The Temporary Access Pass is disabled for guests") == []


def test_session_37s_third_batch_forms() -> None:
    """Rounds 420-427 (421, 424 and 427 after their scans): PHPMailer's debug of SASL LOGIN,
    a Temporary Access Pass alone on the line after the colon or right after its name, a
    card's PIN told after the card's last digits, a code `to arm/disarm`, Unifonic's
    `AppSid`, Russian `ключ восстановления`, Gurmukhi's `ਨਵਾਂ ਕੋਡ`, Levantine `صار`; not
    `ВАШ_ПАРОЛЬ` in a `wpa_supplicant.conf` template."""
    for text, value in (
            ("08:14:21 SERVER -> CLIENT: 334 UGFzc3dvcmQ6\n08:14:21 CLIENT -> SERVER: "
             "U2V2YW4zNTY4bGFrZQ==\n08:14:22 SERVER -> CLIENT: 535 5.7.8 Error",
             "U2V2YW4zNTY4bGFrZQ=="),
            ("einen befristeten Zugangspass (Temporary Access Pass). Er gilt 8 Stunden:\n\n"
             "x0H9@hwn\n\nMelden Sie sich", "x0H9@hwn"),
            ("use the Temporary Access Pass VCna%GSN+ (valid 8 hours, one use only)",
             "VCna%GSN+"),
            ('"PIN for the Barclaycard ending 4471 is 7945, use it for the catering',
             "7945"),
            ("- alarm panel behind the desk, code to arm/disarm is 3083 then press ON", "3083"),
            ('-d "AppSid=HgcXqaYfjXoop35yG5XzpICeOFlpUu" \\', "HgcXqaYfjXoop35yG5XzpICeOFlpUu"),
            ("Резервный ключ восстановления для Apple ID: 5GI3-QUL2-44SJ-YQHW-1U2W-1J6J-SYYJ.",
             "5GI3-QUL2-44SJ-YQHW-1U2W-1J6J-SYYJ"),
            ("- ਦਵਾਈਆਂ ਵਾਲੀ ਤਿਜੋਰੀ ਦਾ ਨਵਾਂ ਕੋਡ: 16120", "16120"),
            ("إنو كود التصوير للمعلمين صار ٤٢٢٧ بدل القديم", "٤٢٢٧")):
        assert secrets_in(text) == [value], text
    assert secrets_in('network={\n    ssid="Lobby"\n    psk="ВАШ_ПАРОЛЬ"\n}') == []
    assert secrets_in("PIN for the card ending 4471 is required at the till") == []


def test_session_37s_last_batch_forms() -> None:
    """Rounds 428-435: a password with a heart in it (`I<3TaiPo93`), Indonesian's `-nya`
    after the password word, Indonesian `kode aktivasi`; not `{votre_mot_de_passe}` in a
    connection string, nor Dutch `volgens mij goed` (I think it is right) as a passphrase;
    a temporary password made of a `change` verb and digits is still one (`Cambiar4514#`)."""
    for text, value in (
            ('Local admin account is "admin", password I<3TaiPo93 (yes really).', "I<3TaiPo93"),
            ("login pake akun music.seminyak, password-nya Ubud.Barong88 — playlist",
             "Ubud.Barong88"),
            ("kode aktivasi aplikasi absensi anggen staf anyar ring Nusa Dua: YF8P-EJG9-VS8R\n",
             "YF8P-EJG9-VS8R"),
            ("Ticket: user locked out. New temporary password given by phone: Cambiar4514# "
             "(must change at next login).", "Cambiar4514#")):
        assert secrets_in(text) == [value], text
    assert secrets_in("Server=srv;Database=Douane;User Id=mon_utilisateur;"
                      "Password={votre_mot_de_passe};") == []
    assert secrets_in("Wat betekent deze fout? Het wachtwoord is volgens mij goed.") == []


def test_session_38s_reader_forms() -> None:
    """Rounds 436-459: a wordy value with a mark no name holds, Kurdish's and Amharic's endings
    on the password word, romanised Korean's topic ending, Arabic's network named on the line
    above, a code past a numbered place, a bracketed extension or a street's abbreviation;
    not Hokkien's syllables (`chu-sìn-sek`), Arabizi's `t8ayar`, `upass` inside a Finnish
    word, nor a documentation's `base64-encode`."""
    for text, value in (
            ("[security]\nadmin_user = admin\nadmin_password = Dryer#Line3-temps\n",
             "Dryer#Line3-temps"),
            ("kaka slaw, passwordi emaili pharmacy@zagros.iq Bakhtiyari.Pharma55 a, ba kasi",
             "Bakhtiyari.Pharma55"),
            ("ye 4th floor wifi passwordu Tiru@Bet_19 neber gin alseram", "Tiru@Bet_19"),
            ("Sajangnim, hoeuisil wifi bimilbeonho-neun bomnalmatroi63 imnida.",
             "bomnalmatroi63"),
            ("الشبكة: KPPL-Packhouse\nالرمز الجديد: Barhi@Khaseeb24\n", "Barhi@Khaseeb24"),
            ("the PIN for the Movistar SIM in slot 2 is 4854 (the others have none)", "4854"),
            ("PIN voicemail telepon meja saya (ext. 305) lupa, tadi direset jadi 8156. Cara",
             "8156"),
            ("the gate code for the Huron St. lot is #5730 (press the key symbol first)",
             "5730")):
        assert secrets_in(text) == [value], text
    assert secrets_in("Wi-Fi ê bi̍t-bé góa bô chai-iáⁿ, lí khì mn̄g chu-sìn-sek ê A-kiat.") == []
    assert secrets_in("Zainab: shabab el wifi password t8ayar?\nKarrar: eh t8ayar el yom") == []
    assert secrets_in("tilaus verkkokaupassa: #WS-75897") == []
    assert secrets_in("Combine your username and password with a colon and base64-encode the "
                      "result.") == []


def test_documentation_basic_samples_are_no_secret_for_any_rule() -> None:
    """HTTP Basic's samples in base64 (`username:password`, RFC 7617's `Aladdin:open sesame`)
    are let through by one decoded test whatever rule finds them (`curl-auth-header` had
    flagged the curl form); a real `user:password` in base64 is still reported."""
    for sample in ("dXNlcm5hbWU6cGFzc3dvcmQ=", "dXNlcjpwYXNz", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="):
        for text in (f'curl -H "Authorization: Basic {sample}" https://api.example.net/v1',
                     f"Authorization: Basic {sample}",
                     f'{{"auths": {{"registry.acme.io": {{"auth": "{sample}"}}}}}}'):
            assert secrets_in(text) == [], text
    real = "ZGVwbG95OnM0ZmVQYXNzd29yZDE="  # deploy:s4fePassword1
    for text in (f'curl -H "Authorization: Basic {real}" https://api.example.net/v1',
                 f"Authorization: Basic {real}",
                 f'{{"auths": {{"registry.acme.io": {{"auth": "{real}"}}}}}}'):
        assert secrets_in(text) == [real], text


def test_session_39s_reader_forms() -> None:
    """Rounds 460-467: a password that starts with `%` (not a printf field), one word in
    capitals and a year (`PAMPA_97`), Arabic's `و` glued to the code word, a CSV's `Key`
    column of hex keys, `$Poznan3Poznan`, Shona's and Bavarian's code words; not a Wi-Fi
    security mode, `| base64`, a file's owner and group, BitLocker's key identifier, a
    `customer_key` column of hashes, a digest tool's line, a SealedSecret, Asterisk's auth
    object, a key's container."""
    for text, value in (
            ("add authentication-types=wpa2-psk name=barricas \\\n"
             "    wpa2-pre-shared-key=%Carrasco2083cos", "%Carrasco2083cos"),
            ("AFIP - clave fiscal nivel 3\nclave: PAMPA_97.\nservicios: IVA Simple", "PAMPA_97"),
            ("الويفي تبدل. السمية ولات CMD-Cantine والكود هو atay8646 .", "atay8646"),
            ("SerialNo;MeterType;Key\n91222943;MULTICAL 403;F6D51B231A544EC86E5D254A5899FE69",
             "F6D51B231A544EC86E5D254A5899FE69"),
            ("haslo do skrzynki to $Poznan3Poznan ale niech je zmieni", "$Poznan3Poznan"),
            ("tu usuario es vpaillan y tu contraceña provisoria es $Baguales_Cruz0 , la cual",
             "$Baguales_Cruz0"),
            ("Gedhi remine camp vachinja kodhi nezuro. Kodhi itsva ndi 9988. Ukasvika", "9988"),
            ("des Tor zur Garage unten geht jetzt mit 5822, des alte geht nimmer", "5822")):
        assert secrets_in(text) == [value], text
    for text in ("password=%s", "password = %(db_password)s", "password: SERVER_01",
                 "Security settings\n    Authentication         : WPA2-Enterprise\n"
                 "    Security key           : Absent",
                 'env:\n  DB_PASS: ${{ secrets.PROD_DB_PASS }}\nrun: echo "$DB_PASS" | base64',
                 "RESTIC_PASSWORD_FILE=/etc/restic/pass restic backup /srv\n"
                 "# /etc/restic/pass : root:root 0400",
                 "Use this to identify your key: A401BAE4-02EE-2C5A-3D9D-0461282E0225",
                 "Key | Action\nCtrl+S | save",
                 "customer_key | orders\n---+---\n 15da8db825d7e8ac67f932b0f083249c | 30\n",
                 "MD5 (Sera_ya_Nenosiri_v2.pdf) = b6044734971f726d48fcbc66ebf3c5d7",
                 "spec:\n  encryptedData:\n    password: Ag" + "B" * 300,
                 "     InAuth:  2143-auth/2143",
                 "  Key Container = te-WebServer-837a873b-2e3f-45ef-bcb5-df986da3aae9"):
        assert secrets_in(text) == [], text


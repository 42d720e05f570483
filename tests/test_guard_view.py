"""What the guard sees (issue 17 §2), unit by unit: the body walk, the normalised view and
its offsets, the split-token and separator-free term passes, redaction by body path, the
scan budget. The same cases go through a started gateway in tests/test_guard_bypass.py."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
from typing import Any

import pytest

from emancipate.config import parse_config
from emancipate.context import ANONYMOUS, Target
from emancipate.guard import Guard, GuardConfig
from emancipate.guard.normalize import (
    _B64_RUN,
    _ESCAPED_QUOTE,
    IDENTITY,
    _b64_runs,
    _specials,
    decoded_of,
    specials_each,
    view_of,
)
from emancipate.guard.offload import INLINE_CHARS, GuardRunner
from emancipate.guard.request import scan_segments
from emancipate.guard.view import (
    STRING_COST,
    Key,
    describe,
    redactable,
    segments_of,
    unreadable_file,
    value_at,
)
from emancipate.policy import Policy
from emancipate.protocol import OpenAIError

AWS = "AKIA" + "W7NQ4ZK2RX3BT5MV"
GITHUB = "ghp_" + "Q7mR2kX9vT4wZ1pL8nB3cY6hJ5dF0sA2eG7u"
OUTSIDE = Target("outside", "big-1", "bigmodel", "external")
INSIDE = Target("inside", "own-1", "us", "in-house")


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.from_config(GuardConfig(terms=["Project Phoenix"]))


def _found(guard: Guard, body: dict[str, Any]) -> list[tuple[Any, str, str]]:
    out = []
    for f in guard.scan_request(body):
        value = value_at(body, f.path)
        out.append((f.path, f.detector, value if isinstance(f.path[-1], Key)
                    else value[f.start:f.end]))
    return out


# --- the walk -----------------------------------------------------------------------------

def test_every_string_that_is_sent_is_a_segment_and_enumerations_are_not() -> None:
    body = {"model": "m", "stream": True, "temperature": 0.2, "user": "u1",
            "reasoning_effort": "low", "stop": ["x"], "x_new": {"deep": ["y"]},
            "messages": [{"role": "user", "name": "bob", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "https://i/p.png", "detail": "low"}}]}],
            "tools": [{"type": "function", "function": {
                "name": "f", "description": "d",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]}
    paths = {s.path: s.redactable for s in segments_of(body).segments}
    assert paths[("user",)] and paths[("stop", 0)] and paths[("x_new", "deep", 0)]
    assert paths[("messages", 0, "content", 0, "text")]
    assert not paths[("messages", 0, "name")]
    assert not paths[("messages", 0, "content", 1, "image_url", "url")]
    assert not paths[("tools", 0, "function", "name")]
    assert paths[("tools", 0, "function", "description")]
    assert not paths[("tools", 0, "function", "parameters", "properties", Key(0))]
    assert not paths[(Key(6),)]  # the unknown field's own name is scanned
    sent = {p for p in paths if not isinstance(p[-1], Key)}
    for never in [("model",), ("reasoning_effort",), ("messages", 0, "role"),
                  ("messages", 0, "content", 0, "type"),
                  ("messages", 0, "content", 1, "image_url", "detail"), ("tools", 0, "type")]:
        assert never not in sent


def test_unknown_fields_are_dropped_from_the_body_sent_under_drop() -> None:
    body = {"model": "m", "x_top": AWS, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "x_part": AWS}],
         "x_msg": AWS}]}
    view = segments_of(body, unknown="drop")
    assert AWS not in json.dumps(view.body) and AWS in json.dumps(body)  # input unchanged
    assert all(AWS not in s.text for s in view.segments)
    assert view.dropped == ["<field>", "messages[0].content[0].<field>", "messages[0].<field>"]
    assert segments_of(body).body is body


def test_paths_are_described_without_unknown_names() -> None:
    assert describe(("tools", 0, "function", "description")) == "tools[0].function.description"
    assert describe((AWS, "a")) == "<field>.<field>"
    assert describe(("tools", 0, "function", "parameters", "properties", Key(2))) == (
        "tools[0].function.parameters.properties.<field name>")
    assert not redactable(("user",), "data:text/plain;base64,QUJD")


def test_a_binary_data_url_is_not_read_and_costs_its_header() -> None:
    image = "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 400).decode()
    view = segments_of({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image}}]}]})
    assert view.size == len("data:image/png;base64,") + STRING_COST


@pytest.mark.parametrize("where", ["content", "data: URL, not base64", "audio, not base64",
                                   "text looking like a media type"])
def test_a_string_that_only_looks_like_a_payload_is_read_as_text(guard: Guard,
                                                                  where: str) -> None:
    part: Any = {"content": f"data:text/plain;base64, the key is {AWS}",
                 "data: URL, not base64": [{"type": "image_url", "image_url": {
                     "url": f"data:image/png;base64,{AWS} x"}}],
                 "audio, not base64": [{"type": "input_audio", "input_audio": {
                     "data": f"key {AWS}", "format": "wav"}}],
                 "text looking like a media type": f"abcd image/png, key {AWS}"}[where]
    body = {"messages": [{"role": "user", "content": part}]}
    assert [f.detector for f in guard.scan_request(body)] == ["aws_access_key"]


# --- the normalised view ------------------------------------------------------------------------

@pytest.mark.parametrize("written, seen", [
    ("AK\u200bIA", "AKIA"), ("AK\u00adIA", "AKIA"), ("AK\x00IA", "AKIA"),
    ("A\u0301KIA", "AKIA"), ("\uff21\uff2b\uff29\uff21", "AKIA"),
    ("\u0410\u041a\u0406\u0410", "AKIA"), ("\\u0041KIA", "AKIA"), ("%41KIA", "AKIA"),
    ("a (at) b (dot) fr", "a@b.fr"), ("a at b dot fr", "a@b.fr"), ("a\uff20b.fr", "a@b.fr"),
    ("plain text, 100% ASCII", "plain text, 100% ASCII"), ("café crème", "café crème"),
    ("\x1b[94mAKIA\x1b[0m", "AKIA"), ("\x1b[1;31mé\x1b[K", "é"), ("&quot;AKIA&quot;", '"AKIA"'),
    ("&#65;&#x4b;IA", "AKIA"), ("a &amp; b", "a & b"), ("a & b; &unknown;", "a & b; &unknown;"),
    ("&#00;AKIA", "AKIA"),
])
def test_the_view_reads_what_the_text_means(written: str, seen: str) -> None:
    assert view_of(f"x {written} y").text == f"x {seen} y"


@pytest.mark.parametrize("text", [
    "don\u2019t \u2014 \u00ab ok \u00bb, \u201cquoted\u201d", "tea \U0001F375 and \u65e5\u672c",
    "3 \u20ac \u00b0 \u00b7 \u2022"])
def test_typography_that_needs_no_rewrite_leaves_the_text_read_as_it_is(text: str) -> None:
    # curly quotes, dashes, guillemets, an emoji: nothing to rewrite, so the scan reads the
    # text itself (no per-run view built twice: the cost of pasted English or French prose)
    assert specials_each([text]) == [[]]
    assert view_of(text).text == text and view_of(text).offsets is IDENTITY
    assert specials_each([f"{text} \u0410KIA"]) != [[]]  # beside a confusable, it rewrites
    assert view_of(f"{text} \u0410KIA").text == f"{text} AKIA"


def test_escaped_quotes_are_found_as_the_plain_pattern_finds_them() -> None:
    # `_ESCAPED_QUOTE` is written literal-led for speed; it must find what `\\{2,}` before a
    # quote finds
    plain = re.compile(r"\\{2,}(?=[\"'])")
    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice(["\\", "\\\\", '"', "'", "a", " "]) for _ in range(20))
        assert ([m.span() for m in _ESCAPED_QUOTE.finditer(text)]
                == [m.span() for m in plain.finditer(text)]), text


def test_rewrites_found_across_a_requests_strings_are_each_strings_own() -> None:
    # `specials_each` reads a request's strings joined by newlines in one pass; each string's
    # share must be what it holds alone (edges, control characters in an ASCII string beside
    # a non-ASCII one, a spelt address, escapes, entities)
    parts = ["a", " ", "\n", "\x01", "\x07 ", "é", "\u2019", "\u0410KIA", "%41", "\\u0041",
             "&amp;", "\\\\\"", " (at) ", " at ", " dot ", "x", "\x1b[94m", ".", "-", "ok"]
    rng = random.Random(12)
    for _ in range(3000):
        texts = ["".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
                 for _ in range(rng.randint(1, 4))]
        assert specials_each(texts) == [_specials(t) for t in texts], texts


def test_view_offsets_map_back_to_the_characters_that_wrote_them() -> None:
    text = f"key \\u0041K\u200bIA{AWS[4:]} end"
    view = view_of(text)
    s = view.text.index("AKIA")
    start, end = view.offsets.start(s), view.offsets.end(s + len(AWS))
    assert text[start:end] == f"\\u0041K\u200bIA{AWS[4:]}"


def test_base64_spans_decode_to_extra_views_mapped_to_the_encoded_span() -> None:
    encoded = base64.b64encode(f"the key is {AWS}".encode()).decode()
    text = f"look: {encoded} !"
    [decoded] = decoded_of(view_of(text))
    assert decoded.text == f"the key is {AWS}"
    assert text[decoded.offsets.start(3):decoded.offsets.end(5)] == encoded
    assert decoded_of(view_of("a Supercalifragilisticexpialidocious word")) == []
    assert decoded_of(view_of(GITHUB)) == []  # a token is not base64 text


def test_base64_runs_are_found_where_the_regex_finds_them() -> None:
    """The runs are found with byte searches in a mask of the text, not with `_B64_RUN`:
    same spans, whatever the characters around them (outside ASCII, padding, surrogates)."""
    rng = random.Random(12)
    pieces = ["A", "z", "0", "+", "/", "_", "-", "=", "==", " ", "\n", "é", "’", "😀",
              "\ud800", "?", ".", "a" * 15, "Ab1" * 6]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        assert list(_b64_runs(text)) == [m.span() for m in _B64_RUN.finditer(text)], text


def test_hex_runs_decode_to_extra_views_and_hashes_do_not() -> None:
    note = f"the key is {AWS}"
    for encoded in (note.encode().hex(), note.encode().hex().upper(),
                    "0x" + note.encode().hex()):
        text = f"dump: {encoded} !"
        [decoded] = decoded_of(view_of(text))
        assert decoded.text == note
        assert text[decoded.offsets.start(0):decoded.offsets.end(3)] == encoded
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert decoded_of(view_of(f"sha256 {sha256}")) == []
    assert decoded_of(view_of(note.encode().hex()[:-1])) == []  # odd: not bytes


@pytest.mark.parametrize(("encode", "width"), [
    (lambda b: base64.b64encode(b).decode(), 76),  # `base64` on the command line
    (lambda b: base64.b64encode(b).decode(), 64),  # PEM, `openssl base64`
    (lambda b: b.hex(), 60),  # `xxd -p`
])
def test_an_encoding_wrapped_over_lines_is_decoded_as_one(guard: Guard, encode: Any,
                                                          width: int) -> None:
    note = (f"Settings for the CI runner\nexport GITHUB_TOKEN={GITHUB}\n"
            "export REGION=eu-west-1\nexport BUCKET=acme-ci-artifacts\n")
    encoded = encode(note.encode())
    wrapped = "\n".join(encoded[i:i + width] for i in range(0, len(encoded), width))
    assert len(wrapped.splitlines()) >= 3  # at 64 the last line is full: `thanks` is not
    text = f"decode this:\n{wrapped}\nthanks"  # a line of it
    found = [f for f in guard.scan(text) if f.detector == "github_token"]
    assert [text[f.start:f.end] for f in found] == [wrapped]


def test_lines_of_one_length_that_do_not_decode_together_are_decoded_one_by_one() -> None:
    line = base64.b64encode(f"aws key {AWS} ok, thanks".encode()).decode()  # 39 bytes
    other = base64.b64encode(bytes(range(200, 239))).decode()  # binary, the same length
    assert len(line) == len(other) and "=" not in line
    text = f"{other}\n{line}"
    [decoded] = decoded_of(view_of(text))
    assert decoded.text == f"aws key {AWS} ok, thanks"
    assert text[decoded.offsets.start(0):decoded.offsets.end(3)] == line


def test_decoded_runs_cover_every_base64_run_once() -> None:
    """`_decoded_runs` joins lines of one width: whatever the text, its spans are sorted and
    disjoint, every run `_b64_runs` finds lies in one of them, and a run alone on its line
    (no line of its width after it) is decoded as `decoded_text` decodes it alone."""
    from emancipate.guard.normalize import _decoded_runs, decoded_text
    rng = random.Random(4)
    line = base64.b64encode(b"the deploy key is AKIA, row 1").decode()
    pieces = ["A", "z", "0", "+", "=", " ", "\n", "\r\n", "é", "a" * 15, line, line[:20],
              "4142434445464748494a4b4c4d4e4f50", "Ab1" * 6]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        spans = [(a, b) for a, b, _ in _decoded_runs(text)]
        assert spans == sorted(spans)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
        for a, b in _b64_runs(text):
            assert any(s <= a and b <= e for s, e in spans), (text, a, b)
        alone = {(a, b) for a, b in _b64_runs(text)
                 if not (text[b:b + 1] == "\n" or text[b:b + 2] == "\r\n")}
        for a, b, decoded in _decoded_runs(text):
            if (a, b) in alone:
                assert decoded == decoded_text(text[a:b]), (text, a, b)


def test_byte_escapes_are_read_as_the_text_they_write(guard: Guard) -> None:
    escaped = "".join(f"\\x{b:02x}" for b in AWS[:6].encode()) + AWS[6:]
    text = f'key = "{escaped}"'
    view = view_of(text)
    assert AWS in view.text
    found = [f for f in guard.scan(text) if f.detector == "aws_access_key"]
    assert [text[f.start:f.end] for f in found] == [escaped]
    octal = "".join(f"\\{b:03o}" for b in AWS[:6].encode()) + AWS[6:]  # `printf '\101…'`
    text = f'key = "{octal}"'
    assert [text[f.start:f.end] for f in guard.scan(text)
            if f.detector == "aws_access_key"] == [octal]
    assert view_of("C:\\100\\200 x").text == "C:\\100\\200 x"  # not UTF-8 text: left
    assert view_of("printf '\\x1b[0m'").text == "printf '\\x1b[0m'"  # one escape: left
    assert view_of("\\xff\\xfe\\x00").text == "\\xff\\xfe\\x00"  # not UTF-8 text: left


def test_latin_letters_only_is_what_the_chars_regex_says() -> None:
    """`_latin_letters_only` skips `_CHARS` on Latin-1 text (French): it must answer True only
    where `_CHARS` finds nothing, and exactly that on text Latin-1 can write."""
    from emancipate.guard.normalize import _CHARS, _latin_letters_only
    rng = random.Random(21)
    pool = ["a", " ", "\t", "\n", "\r", "é", "à", "ç", "Ö", "ß", "ÿ", "×", "÷", "\xa0", "©",
            "«", "»", "\x85", "\x00", "\x1b", "\x7f", "’", "œ", "€", "😀", "Ā", "ž"]
    for _ in range(20_000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        latin = all(ord(c) < 256 for c in text)
        if _latin_letters_only(text):
            assert _CHARS.search(text) is None, repr(text)
        elif latin:
            assert _CHARS.search(text) is not None, repr(text)


# --- detection --------------------------------------------------------------------------------

def test_a_secret_split_across_messages_is_reported_on_both(guard: Guard) -> None:
    body = {"messages": [{"role": "user", "content": f"first {AWS[:9]}"},
                         {"role": "user", "content": f"{AWS[9:]} second"}]}
    assert _found(guard, body) == [(("messages", 0, "content"), "aws_access_key", AWS[:9]),
                                   (("messages", 1, "content"), "aws_access_key", AWS[9:])]


@pytest.mark.parametrize("written", [
    " ".join(AWS[i:i + 2] for i in range(0, 20, 2)),  # AK IA W7 …
    " ".join(AWS),  # A K I A W 7 …: spelt out
    "ZZ11 " * 200 + AWS[:8] + " " + AWS[8:],  # at the end of a long chain of tokens
])
def test_a_secret_cut_in_small_pieces_or_deep_in_a_chain_is_found(guard: Guard,
                                                                 written: str) -> None:
    body = {"messages": [{"role": "user", "content": f"key {written} ok"}]}
    found = [f for f in guard.scan_request(body) if f.detector == "aws_access_key"]
    assert len(found) == 1
    assert body["messages"][0]["content"][found[0].start:found[0].end].replace(" ", "") == AWS


def test_token_chains_inside_a_found_secret_are_not_joined_again(guard: Guard) -> None:
    """A PEM key's base64 lines are a chain of tokens; the key is found whole, so the split
    pass (counted here: the texts it scans) skips them, and still joins a chain outside."""
    lines = [base64.b64encode(bytes(range(k, k + 48))).decode() for k in range(0, 240, 48)]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"
    joined: list[str] = []

    def secrets_only(text: str) -> list[Any]:
        joined.append(text)
        return guard._scan_secrets(text)

    for content, chained in ((pem, False), (f"{pem}\nkey {AWS[:8]} {AWS[8:]}", True)):
        segments = segments_of({"messages": [{"role": "user", "content": content}]}).segments
        joined.clear()
        found = scan_segments(guard._scan, segments, None, guard.split_starts, secrets_only)
        assert "private_key" in {f.detector for f in found}
        assert any("BEGIN" in t for t in joined) is False, content
        assert (AWS in "".join(joined)) is chained
        assert ("aws_access_key" in {f.detector for f in found}) is chained


def test_validated_numbers_and_digit_groups_are_not_joined_again(guard: Guard) -> None:
    """An IBAN's or a phone number's groups (found, or digits and signs only) are chains
    of tokens the split pass leaves alone; a token split by a blank still counts."""
    joined: list[str] = []

    def secrets_only(text: str) -> list[Any]:
        joined.append(text)
        return guard._scan_secrets(text)

    content = ("wire to FR76 3000 6000 0112 3456 7890 189, or call +44 20 7946 0123 "
               f"and 06 12 34 56 78; key {AWS[:8]} {AWS[8:]}")
    segments = segments_of({"messages": [{"role": "user", "content": content}]}).segments
    found = scan_segments(guard._scan, segments, None, guard.split_starts, secrets_only)
    assert {"iban", "phone", "aws_access_key"} <= {f.detector for f in found}
    assert all("FR76" not in t and "7946" not in t and "0612" not in t for t in joined)
    assert AWS in "".join(joined)


def test_a_case_fixed_token_glued_to_the_next_word_is_found(guard: Guard) -> None:
    body = {"messages": [{"role": "user", "content": f"key {AWS}thanks"}]}
    assert _found(guard, body) == [(("messages", 0, "content"), "aws_access_key", AWS)]
    body = {"messages": [{"role": "user", "content": "the ORDERNUMBER12345678abc item"}]}
    assert _found(guard, body) == []


def test_words_of_prose_are_not_glued_into_secrets(guard: Guard) -> None:
    body = {"messages": [{"role": "user", "content": "Deploy v2 to EU West 3 on 2024 "
                          "Q3 with ID 42 and the API 7 docs."},
                         {"role": "user", "content": "AKIA is how AWS keys start."}]}
    assert _found(guard, body) == []


@pytest.mark.parametrize("form", ["project-phoenix", "PROJECT_PHOENIX", "ProjectPhoenix",
                                  "Project \t Phoenix", "project\nphoenix"])
def test_terms_match_whatever_their_separators(guard: Guard, form: str) -> None:
    body = {"messages": [{"role": "user", "content": f"about {form} today"}]}
    assert _found(guard, body) == [(("messages", 0, "content"), "term", form)]


def test_a_term_inside_a_longer_word_is_not_a_term(guard: Guard) -> None:
    body = {"messages": [{"role": "user", "content": "the projectphoenixes and xProjectPhoenix"}]}
    assert _found(guard, body) == []


# --- policy: redaction at the path ------------------------------------------------------------

def _policy() -> Policy:
    cfg = parse_config({
        "providers": {"outside": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1",
                                  "ownership": "external", "vendor": "bigmodel"}},
        "policy": {"rules": [{"class": "secret", "action": "redact"}]}})
    return Policy.from_config(cfg)


def test_the_policy_redacts_a_finding_where_it_is_and_restores_it(guard: Guard) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f",
                                                        "description": f"uses {AWS}"}}],
            "user": GITHUB}
    plan = _policy().plan(body, guard.scan_request(body), [OUTSIDE], ANONYMOUS)
    sent = plan.body_for(OUTSIDE, body)
    assert sent["tools"][0]["function"]["description"] == "uses [SECRET_1]"
    assert sent["user"] == "[SECRET_2]"
    assert body["user"] == GITHUB and sent["messages"] is body["messages"]  # copy on write
    restorer = plan.restorer_for(OUTSIDE)
    assert restorer is not None and restorer.restore("[SECRET_1]") == AWS


def test_a_finding_where_no_placeholder_fits_excludes_the_target(guard: Guard) -> None:
    body = {"model": "m", "messages": [{"role": "user", "name": AWS, "content": "hi"}]}
    plan = _policy().plan(body, guard.scan_request(body), [OUTSIDE], ANONYMOUS)
    assert plan.targets == [] and plan.blocked is not None
    assert "messages[0].name" in plan.blocked.reason
    assert "cannot hold a placeholder" in plan.blocked.reason and AWS not in plan.blocked.reason


# --- budget ---------------------------------------------------------------------------------------

def _runner(**guard_cfg: Any) -> GuardRunner:
    return GuardRunner(Guard.from_config(GuardConfig(**guard_cfg)))


def test_a_request_over_the_scan_budget_is_refused_or_kept_in_house() -> None:
    body = {"messages": [{"role": "user", "content": "x " * 3000}]}
    with pytest.raises(OpenAIError) as info:
        asyncio.run(_runner(max_scan_bytes=4096).scan(body, [OUTSIDE, INSIDE]))
    assert info.value.status == 413 and info.value.code == "scan_budget_exceeded"
    assert "guard.max_scan_bytes: 4096" in info.value.message
    scanned = asyncio.run(_runner(max_scan_bytes=4096, over_budget="in_house").scan(
        body, [OUTSIDE, INSIDE]))
    assert scanned.targets == [INSIDE] and scanned.findings == []
    assert scanned.decisions[0].action == "in-house-only"
    with pytest.raises(OpenAIError) as info:
        asyncio.run(_runner(max_scan_bytes=4096, over_budget="in_house").scan(body, [OUTSIDE]))
    assert info.value.status == 413


def test_large_scans_run_in_a_worker_and_small_ones_inline() -> None:
    runner = _runner()
    small = {"messages": [{"role": "user", "content": f"key {AWS}"}]}
    large = {"messages": [{"role": "user", "content": "word " * INLINE_CHARS + AWS}]}
    try:
        assert [f.detector for f in asyncio.run(runner.scan(small, [OUTSIDE])).findings] == [
            "aws_access_key"]
        assert runner.offloaded == 0
        assert [f.detector for f in asyncio.run(runner.scan(large, [OUTSIDE])).findings] == [
            "aws_access_key"]
        assert runner.offloaded == 1
    finally:
        runner.close()


def test_process_workers_find_what_the_thread_finds() -> None:
    large = {"messages": [{"role": "user", "content": "word " * INLINE_CHARS + AWS},
                          {"role": "user", "name": GITHUB, "content": "x"}]}
    thread, process = _runner(), _runner(offload="process")
    try:
        process.start()
        a = asyncio.run(thread.scan(large, [OUTSIDE])).findings
        b = asyncio.run(process.scan(large, [OUTSIDE])).findings
    finally:
        thread.close()
        process.close()
    assert a == b and {f.detector for f in b} == {"aws_access_key", "github_token"}
    assert process.offloaded == 1


def test_a_body_of_many_strings_is_walked_off_the_loop_and_each_string_counts() -> None:
    runner = _runner()
    many = {"messages": [{"role": "user", "content": "hi"}],
            "x_list": [f"v{i}" for i in range(1_000)] + [AWS]}
    flood = {"messages": [{"role": "user", "content": "hi"}], "x_list": ["a"] * 40_000}
    try:
        found = asyncio.run(runner.scan(many, [OUTSIDE])).findings
        assert [f.path for f in found] == [("x_list", 1_000)] and runner.offloaded == 1
        with pytest.raises(OpenAIError) as info:  # 40,000 strings x 33 > 1 MiB
            asyncio.run(runner.scan(flood, [OUTSIDE]))
        assert info.value.code == "scan_budget_exceeded"
    finally:
        runner.close()


def _file_body(data_url: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"filename": "f", "file_data": data_url}}]}]}


def test_a_file_the_guard_cannot_read_goes_in_house_only_or_is_refused() -> None:
    pdf = "data:application/pdf;base64," + base64.b64encode(
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256))).decode()
    assert unreadable_file(pdf.split(",", 1)[1]) == "a file of unknown type"
    runner = _runner()
    scanned = asyncio.run(runner.scan(_file_body(pdf), [OUTSIDE, INSIDE]))
    assert scanned.targets == [INSIDE]
    assert "application/pdf" in scanned.decisions[0].reason
    with pytest.raises(OpenAIError) as info:
        asyncio.run(runner.scan(_file_body(pdf), [OUTSIDE]))
    assert info.value.status == 403 and info.value.code == "policy_blocked"
    assert info.value.param == "messages[0].content[1].file.file_data"


def test_a_text_file_is_decoded_and_scanned() -> None:
    text = base64.b64encode(f"notes\naws key {AWS}\n".encode()).decode()
    assert unreadable_file("data:text/plain;base64," + text) is None
    assert unreadable_file("not base64 at all, plain words") is None
    scanned = asyncio.run(_runner().scan(_file_body("data:text/plain;base64," + text),
                                         [OUTSIDE, INSIDE]))
    assert scanned.targets == [OUTSIDE, INSIDE]
    assert [(f.path, f.detector) for f in scanned.findings] == [
        (("messages", 0, "content", 1, "file", "file_data"), "aws_access_key")]


def test_the_chain_spans_equal_the_captured_group_on_random_texts() -> None:
    """`request._CHAIN` has no capture group (RE2 finds its bounds with its DFAs alone);
    `_spans` trims the match to what the group of the same pattern captures, on random
    texts of token characters, blanks, quotes and characters of 2 to 4 bytes."""
    import re2

    from emancipate.guard import request

    pattern = request._CHAIN.pattern.replace(b"[^A-Za-z0-9+/=_-])(?:", b"[^A-Za-z0-9+/=_-])(", 1)
    grouped = re2.compile(pattern)
    assert grouped.groups == 1 and request._CHAIN.groups == 0
    rng = random.Random(5)
    alphabet = "ab ZQ 12 _-+/= \n\té€😀\"'.,gh p_R8xK"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert request._spans(grouped, text, False) == request._spans(request._CHAIN, text,
                                                                      False), text


def test_a_word_in_capitals_of_another_script_is_viewed_as_in_small_letters() -> None:
    """Cyrillic `Н`, `К`, `Т`, `В`, `М` look Latin in capitals only: a Russian word in capitals
    (`ПИН`, `КОД`, `ТЕЛЕФОН`) keeps them, so that it folds to the word in small letters that the
    word lists hold; a word of look-alikes only, or one touching Latin letters, spells Latin."""
    from emancipate.guard.normalize import view_of
    from emancipate.guard.text import fold
    for upper, lower in (("ПИН-КОД", "пин-код"), ("ТЕЛЕФОН", "телефон"),
                         ("КОД ДОСТУПА", "код доступа")):
        assert fold(view_of(upper).text) == fold(view_of(lower).text), upper
    assert view_of("key АКІАIOSFODNN7").text == "key AKIAIOSFODNN7"  # beside Latin letters
    assert view_of("КЕУ: x").text == "KEY: x"  # look-alikes only
    assert view_of("серія КХО 816079").text.endswith("KXO 816079")

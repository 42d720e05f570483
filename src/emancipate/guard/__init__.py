"""The leak guard: classify every request before any vendor sees it.

One request costs one pass of an Aho-Corasick automaton (`engine.match_automaton`) over the folded
text, which finds at once the keywords that arm the secret rules, the organisation's
confidential terms and the topic-domain keywords, plus one `bytes.translate` that gives the
personal-data detectors their candidates. Validators (checksums, phone metadata, entropy)
only ever run on candidates, so a clean prompt pays for the two passes and little else.

Public interface (called by the gateway): `Guard.from_config`, `Guard.scan`,
`Guard.scan_request`, and `message_text`, the definition of a message's text that finding
offsets refer to.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any, Literal

from emancipate.context import Finding
from emancipate.guard.code import scan_code
from emancipate.guard.config import GuardConfig
from emancipate.guard.engine import (
    SET_READY,
    Hit,
    RuleSet,
    SecretRule,
    keyword_key,
    match_automaton,
    resolve,
    run_rule,
)
from emancipate.guard.entities import ENTITY_DETECTORS, EntityDetector
from emancipate.guard.names import DETECTORS
from emancipate.guard.normalize import base64_mask
from emancipate.guard.personal import NumberClassifier, ascii_digits, scan_personal, shape_of
from emancipate.guard.request import SplitStarts, TermMatcher, scan_segments
from emancipate.guard.secrets import (
    GENERIC_KEYWORDS,
    TOLD_ONLY,
    TOLD_PRIORITY,
    TOLD_REACH,
    keyword_overshoot,
    scan_local,
    sounded_passwords,
    told_nearby,
    word_start_required,
)
from emancipate.guard.text import fold, fold_with_map, message_segments, message_text
from emancipate.guard.view import RequestView, Segment, segments_of

__all__ = ["Guard", "GuardConfig", "Unscannable", "RequestView", "message_segments", "message_text"]

_RULE, _LOCAL, _TERM, _DOMAIN = 0, 1, 2, 3
_LOCAL_PRIORITY = 3  # keyword-local detectors lose every overlap with a rule
_SECRETS_ONLY = frozenset({"secret"})
# which keyword reads a value when several end at one place: the longer, more specific one
# (`authorization: token` before `token`, `api_key` before `key`)
# (`pass,` in an SQL column list before `pass` as a Wi-Fi's code: the first ends there too)
# (`told`: a word only the told readers read after, as a login's credentials named in prose:
# last, a keyword ending at the same place is read as its kind)
_KIND_RANK = {"bearer": 0, "basic": 1, "password": 2, "apikey": 3, "secret": 4, "url": 5,
              "sql_column": 6, "wifi_code": 7, TOLD_ONLY: 8}
_GENERIC_DETECTORS = {
    "password": ("password", "generic_secret"),
    "wifi_code": ("password",),  # (`code` after a named Wi-Fi network: its password)
    "sql_column": ("password",),  # (`pass,` in an SQL column list: its rows' values)
    "secret": ("generic_secret",),
    "apikey": ("generic_secret",),
    "bearer": ("bearer_token",),
    "basic": ("bearer_token",),
    "url": ("url_password",),
    TOLD_ONLY: ("password",),
}

Raw = tuple[int, int, str, str, str | None]  # start, end, class, detector, domain


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class Unscannable(Exception):
    """The guard could not read all of a text within its budget: what it did not read must
    not reach an external target (the runner refuses or keeps it in-house, as for a body
    over `guard.max_scan_bytes`). The message says why, without any value."""


class Guard:
    """Built once at start-up; `scan_request` is thread-safe and allocation-light."""

    # Terms matched whatever their separators (`guard.request.TermMatcher`) and the
    # secret rules' token prefixes for split tokens (`guard.request.SplitStarts`); set by
    # `from_config`.
    terms_view: TermMatcher | None = None
    split_starts: SplitStarts | None = None

    def __init__(self, cfg: GuardConfig, terms: list[str]) -> None:
        self.cfg = cfg
        classes = set(cfg.classes)
        self.classes = classes
        disabled = set(cfg.disabled_detectors)
        self.enabled = frozenset(
            d for d, c in DETECTORS.items() if c in classes and d not in disabled
        )
        self.rules: list[SecretRule] = [r for r in cfg.load_rules()
                                        if r.detector in self.enabled]
        # rules with no keyword, each with the literal it requires ("" for none), the run
        # of base64 characters (0 for none) and the run of the text's shape (b"" for none)
        self.always = [(i, r.requires, r.requires_run, r.requires_shape)
                       for i, r in enumerate(self.rules) if not r.keywords]
        self._always_set = (RuleSet([self.rules[i] for i, _, _, _ in self.always])
                            if len(self.always) > 1 and SET_READY else None)
        self.numbers = NumberClassifier(list(cfg.phone_regions), self.enabled)
        # Names and addresses are opt-in: a spaCy model, loaded only here (entities.py).
        wanted = ENTITY_DETECTORS & self.enabled
        self.entities = (EntityDetector.from_config(cfg.entities, wanted)
                         if cfg.entities.enabled and wanted else None)
        self.min_code_lines = cfg.code_min_lines
        self.allow = frozenset(fold(v) for v in cfg.allowlist)
        self.domains: list[tuple[str, int]] = []
        self.term_count = 0

        entries: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for i, rule in enumerate(self.rules):
            for kw in rule.keywords:  # folded as the text is (`schlüssel`, `contraseña`)
                entries[keyword_key(kw)].append((_RULE, i))
        for kw, kind in GENERIC_KEYWORDS.items():
            if any(d in self.enabled for d in _GENERIC_DETECTORS[kind]):
                # as the automaton reads text: normalised view, then folded (`пароль`)
                entries[keyword_key(kw)].append(
                    (_LOCAL, kind, word_start_required(kw), keyword_overshoot(kw)))
        if "term" in self.enabled:
            for term in terms:
                key = " ".join(fold(term).split())
                if key:
                    entries[key].append((_TERM,))
                    self.term_count += 1
        if "domain" in classes:
            for name, (keywords, min_hits) in cfg.domain_keywords().items():
                d = len(self.domains)
                self.domains.append((name, min_hits))
                for k, kw in enumerate(keywords):
                    key = " ".join(fold(kw).split())
                    if key:
                        entries[key].append((_DOMAIN, d, k))
        self._automaton: Any = None
        # each keyword's tags, by the keyword's index in the automaton (one tag once:
        # keywords that fold alike, `clé wifi` and `cle wifi`, would run the same reader twice)
        self._tags: list[tuple[tuple[Any, ...], ...]] = []
        if entries:
            keys = sorted(entries)
            self._tags = [tuple(dict.fromkeys(entries[key])) for key in keys]
            self._automaton = match_automaton(keys)

    @classmethod
    def from_config(cls, cfg: GuardConfig) -> Guard:
        """Build the automaton and rule lists once (terms files are read here)."""
        terms = cfg.load_terms()
        guard = cls(cfg, terms)
        if "term" in guard.enabled:
            guard.terms_view = TermMatcher(terms)
        guard.split_starts = SplitStarts([kw for rule in guard.rules for kw in rule.keywords])
        return guard

    # --- public --------------------------------------------------------------------------

    def scan(self, text: str) -> list[Finding]:
        """Findings of a plain text (message_index -1, path ()), sorted by position, read
        through the same normalised view as a request (`guard.request`)."""
        if not text or not self.classes:
            return []
        found = scan_segments(self._scan, [Segment((), text)], self.terms_view,
                              self.split_starts, self._scan_secrets)
        found.sort(key=lambda f: (f.start, -f.end))
        return found

    def view(self, body: dict[str, Any], kind: Literal["chat", "embeddings"] = "chat",
             max_strings: int | None = None) -> RequestView:
        """Every string of `body` that will be sent (`guard.view`), and the body to send
        (unknown fields dropped under `guard.unknown_fields: drop`); `TooManyStrings`
        past `max_strings`."""
        return segments_of(body, kind, self.cfg.unknown_fields, max_strings)

    def scan_request(self, body: dict[str, Any]) -> list[Finding]:
        """Findings of an OpenAI chat-completions body: every string that will be sent
        (`guard.view`), read through its normalised view (`guard.normalize`).

        Each finding's `path` says where it is in the body and its offsets index the string
        there; `message_index` is the message holding it (-1 for request-level fields).
        Domain findings are decided on the whole request and attached to the place of
        their first keyword."""
        if not isinstance(body, dict):
            return []
        return self.scan_view(self.view(body))

    def scan_view(self, view: RequestView) -> list[Finding]:
        """Findings of the segments of a `view` (see `guard.request`)."""
        if not self.classes:
            return []
        return scan_segments(self._scan, view.segments, self.terms_view, self.split_starts,
                             self._scan_secrets)

    # --- the scan ------------------------------------------------------------------------

    def _scan_secrets(self, text: str) -> list[Raw]:
        """The secret class alone (the split-secret pass reads nothing else): no personal,
        code, entity or domain work on the token chains."""
        return self._scan(text, _SECRETS_ONLY)

    def _scan(self, text: str, only: frozenset[str] | None = None) -> list[Raw]:
        if not text or not self.classes:
            return []
        classes = self.classes if only is None else self.classes & only
        secrets: list[tuple[int, int, str]] = []
        terms: list[tuple[int, int]] = []
        domain_kws: dict[int, set[int]] = {}
        domain_first: dict[int, tuple[int, int]] = {}
        # a rule with no keyword reads the whole text, unless a literal it needs is absent
        triggered: dict[int, list[int]] = {}
        mask = None
        shape = None  # (computed once, for the rules that need it and the personal pass)
        wanted = []
        for k, (i, needs, run, runs_in_shape) in enumerate(self.always):
            if needs in text:
                if run:
                    mask = base64_mask(text) if mask is None else mask
                    if mask.find(b"a" * run) < 0:
                        continue
                if runs_in_shape:
                    shape = shape_of(text) if shape is None else shape
                    if runs_in_shape not in shape:
                        continue
                wanted.append((k, i))
        matching = (self._always_set.matching(text)
                    if len(wanted) > 1 and self._always_set is not None else None)
        for k, i in wanted:
            if matching is None or k in matching:
                triggered[i] = [0]
        local: list[tuple[str, int]] = []

        if self._automaton is not None:
            folded, index = fold_with_map(text)
            keyword_tags = self._tags
            for k, start, stop in self._automaton.find_matches_as_indexes(folded,
                                                                           overlapping=True):
                for tag in keyword_tags[k]:
                    kind = tag[0]
                    if kind == _RULE:
                        at = start if index is None else index[start]
                        positions = triggered.get(tag[1])
                        if positions is None:
                            triggered[tag[1]] = [at]
                        elif positions[-1] != at:
                            positions.append(at)
                    elif kind == _LOCAL:
                        # (a letter of a script that glues its words does not join a
                        # keyword to them: `書込ソフトPW：…`)
                        if (tag[2] and start > 0 and folded[start - 1].isalpha()
                                and folded[start - 1] < "\u2e80"
                                and not _camel_start(text, start, index)
                                and not _proclitic(folded, start)):
                            continue
                        at = stop - tag[3]
                        local.append((tag[1], at if index is None else index[at]))
                    elif self._bounded(folded, start, stop):
                        s, e = (start, stop) if index is None else (index[start], index[stop])
                        if kind == _TERM:
                            terms.append((s, e))
                        else:
                            d = tag[1]
                            domain_kws.setdefault(d, set()).add(tag[2])
                            if d not in domain_first:
                                domain_first[d] = (s, e)

        if "password" in self.enabled:  # (spellings no keyword list holds; see secrets.py)
            local.extend(("password", end) for end in sounded_passwords(text))
        out: list[Raw] = []
        secrets = self._secrets(text, triggered, local)
        out.extend((s, e, "secret", d, None) for s, e, d in secrets)

        if "personal" in classes:
            personal: list[tuple[int, int, str]] = []
            digits = ascii_digits(text)  # (`۰۹۱۵…` read as `0915…`; offsets unchanged)
            work = scan_personal(digits, shape_of(digits) if shape is None or digits is not text
                                 else shape, self.numbers, personal)
            if work.exhausted:  # candidates past the budget were not validated
                raise Unscannable(
                    "The text holds more number-like candidates than the personal-data scan "
                    f"validates for its size ({work.rejections} rejected)")
            if self.entities is not None:
                personal.extend(self.entities.find(text))
            taken = _Spans(secrets)
            out.extend((s, e, "personal", d, None) for s, e, d in _dedupe(personal)
                       if not taken.overlaps(s, e))
        if terms and "confidential" in classes:
            out.extend((s, e, "confidential", "term", None) for s, e in _longest(terms))
        if "code" in classes:
            code: list[tuple[int, int, str]] = []
            scan_code(text, self.min_code_lines, code)
            out.extend((s, e, "code", d, None) for s, e, d in code)
        for d, kws in (domain_kws if "domain" in classes else {}).items():
            name, min_hits = self.domains[d]
            if len(kws) >= min_hits:
                s, e = domain_first[d]
                out.append((s, e, "domain", "domain:" + name, name))

        if self.allow:
            out = [r for r in out if fold(text[r[0]:r[1]]) not in self.allow]
        out.sort(key=lambda r: (r[0], -r[1]))
        return out

    def _secrets(self, text: str, triggered: dict[int, list[int]],
                 local: list[tuple[str, int]]) -> list[tuple[int, int, str]]:
        """Rule findings (windows around their keywords) and keyword-local findings,
        overlaps resolved by priority: specific rules, then generic ones, then local."""
        hits: list[Hit] = []
        for i in sorted(triggered):  # sorted: the same findings in the same order every run
            run_rule(self.rules[i], text, triggered[i], hits)
        if local:
            # The rules' findings that win over every local one, resolved first: a value
            # they claim is not read again (its checks are most of a local read's cost,
            # and its finding would lose the overlap anyway).
            taken = None
            if hits:
                ahead = resolve([h for h in hits if h[3] < _LOCAL_PRIORITY])
                taken = _Spans(ahead).overlaps
                hits = [(s, e, d, 0) for s, e, d in ahead] + [
                    h for h in hits if h[3] >= _LOCAL_PRIORITY]
            generic: list[tuple[int, int, str]] = []
            # keywords ending at one place (`api_key`, `key`) read the same value once,
            # under the most specific kind
            kinds: dict[int, str] = {}
            for kind, pos in local:
                if pos not in kinds or _KIND_RANK[kind] < _KIND_RANK[kinds[pos]]:
                    kinds[pos] = kind
            told: list[tuple[int, int, int]] = []
            reads_told = "password" in self.enabled
            for pos, kind in kinds.items():
                if kind != TOLD_ONLY:
                    scan_local(text, kind, pos, generic, self.enabled, taken)
                if reads_told and kind in ("password", TOLD_ONLY) and (
                        span := told_nearby(text, pos)):
                    told.append((pos, *span))
            hits.extend((s, e, d, _LOCAL_PRIORITY) for s, e, d in generic)
            if told:  # only where no reader or rule read a value after the word
                starts = sorted(h[0] for h in hits)
                for pos, s, e in told:
                    i = bisect.bisect_left(starts, pos)
                    if i == len(starts) or starts[i] >= pos + TOLD_REACH:
                        hits.append((s, e, "password", TOLD_PRIORITY))
        return resolve(hits) if hits else []

    @staticmethod
    def _bounded(folded: str, start: int, stop: int) -> bool:
        """Word boundaries around a term (only where the term itself starts or ends with a
        letter or digit: `.corp.internal` may follow a host name)."""
        if start > 0 and _word_char(folded[start]) and _word_char(folded[start - 1]):
            return False
        return not (stop < len(folded) and _word_char(folded[stop - 1])
                    and _word_char(folded[stop]))


def _proclitic(folded: str, start: int) -> bool:
    """`والكود`: Arabic's one-letter `و` (and), `ف` (so), `ب` (with) glued to a keyword that
    starts with the article `ال`."""
    return (folded[start - 1] in "وفب" and folded.startswith("ال", start)
            and (start < 2 or not folded[start - 2].isalpha()))


def _camel_start(text: str, start: int, index: list[int] | None) -> bool:
    """`clientSecret`, `dbPassword`: the keyword starts a word of a camelCase name; or
    `GITHUBKEY`, `SLACKTOKEN`: it ends a name written in capitals, run together."""
    i = start if index is None else index[start]
    if text[i].isupper() and text[i - 1].islower():
        return True
    return text[i - 1].isupper() and text[i:i + 3].isupper() and text[i:i + 3].isalpha()


class _Spans:
    """Sorted, non-overlapping spans answering "does [s, e) overlap one?" in O(log n)."""

    __slots__ = ("starts", "ends")

    def __init__(self, spans: list[tuple[int, int, str]]) -> None:
        self.starts = [s for s, _, _ in spans]
        self.ends = [e for _, e, _ in spans]

    def overlaps(self, s: int, e: int) -> bool:
        i = bisect.bisect_left(self.starts, e) - 1
        return i >= 0 and self.ends[i] > s


def _dedupe(hits: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop exact duplicates and hits contained in an earlier, larger hit."""
    if len(hits) < 2:
        return hits
    out: list[tuple[int, int, str]] = []
    for h in sorted(set(hits), key=lambda h: (h[0], -h[1])):
        if out and h[0] >= out[-1][0] and h[1] <= out[-1][1]:
            continue
        out.append(h)
    return out


def _longest(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(set(spans), key=lambda x: (x[0], -x[1])):
        if out and s < out[-1][1]:
            continue
        out.append((s, e))
    return out

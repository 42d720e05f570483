"""Secrets and credentials.

The rules follow the structure of gitleaks' default rule set (MIT): each rule has
lower-case *keywords* and a regular expression; the regex runs only when one of its
keywords occurs in the text (the keywords are found by the guard's single Aho-Corasick
pass), and a minimum Shannon entropy filters placeholders such as `ghp_xxxx…`. Patterns
are re-expressed here for Python's `re` and for prompts rather than repositories: every
regex starts with a literal so that `re` searches with its fast literal-prefix scan.

Three detectors are keyword-*local* instead: `password`, `generic_secret` (a high-entropy
value assigned to a secret-like name) and `bearer_token` run one anchored match right after
each keyword occurrence, so a prompt that says "key" ten times costs ten tiny matches, not
ten scans. `url_password` does the same after each `://`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

Hit = tuple[int, int, str]  # start, end, detector


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(s)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


@dataclass(frozen=True, slots=True)
class Rule:
    detector: str
    keywords: tuple[str, ...]
    regex: re.Pattern[str]
    group: int | str = 0
    min_entropy: float = 0.0
    boundary: bool = False  # the match must not touch letters or digits on either side
    check: Callable[[str], bool] | None = None


def _not_example(v: str) -> bool:
    return not v.endswith("EXAMPLE")


def _has_digits(n: int) -> Callable[[str], bool]:
    def check(v: str) -> bool:
        return sum(ch.isdigit() for ch in v) >= n

    return check


def _jwt(v: str) -> bool:
    """A real JWT's first segment decodes to a JSON header naming its algorithm or type."""
    head = v.split(".", 1)[0]
    try:
        data = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(data, dict) and ("alg" in data or "typ" in data)


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


RULES: tuple[Rule, ...] = (
    # cloud keys
    *(Rule("aws_access_key", (p.lower(),), _r(p + r"[A-Z2-7]{16}"), min_entropy=3.0,
           boundary=True, check=_not_example)
      for p in ("AKIA", "ASIA", "ABIA", "ACCA")),
    Rule("aws_access_key", ("a3t",), _r(r"A3T[A-Z0-9][A-Z2-7]{16}"), min_entropy=3.0,
         boundary=True, check=_not_example),
    Rule("gcp_api_key", ("aiza",), _r(r"AIza[\w-]{35}"), min_entropy=3.5, boundary=True),
    Rule("gcp_oauth_secret", ("gocspx-",), _r(r"GOCSPX-[\w-]{28}"), min_entropy=3.0),
    Rule("gcp_access_token", ("ya29.",), _r(r"ya29\.[\w-]{30,}"), min_entropy=3.5),
    Rule("azure_ad_client_secret", ("q~",),
         _r(r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"), min_entropy=3.0, boundary=True),
    Rule("azure_storage_key", ("accountkey=",),
         _r(r"AccountKey=(?P<v>[A-Za-z0-9+/]{86}==)"), group="v", min_entropy=3.5),
    Rule("azure_storage_key", ("sharedaccesskey=",),
         _r(r"SharedAccessKey=(?P<v>[A-Za-z0-9+/]{42,44}=?)"), group="v", min_entropy=3.5),
    Rule("azure_sas_token", ("sig=",),
         _r(r"sig=(?P<v>[A-Za-z0-9%+/]{30,}(?:%3D|=){0,2})"), group="v", min_entropy=3.5),
    # model vendors
    Rule("openai_api_key", ("sk-proj-", "sk-svcacct-", "sk-admin-"),
         _r(r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"), min_entropy=3.5),
    Rule("openai_api_key", ("t3blbkfj",), _r(r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"),
         min_entropy=3.5),
    Rule("anthropic_api_key", ("sk-ant-",), _r(r"sk-ant-[a-z]{2,6}\d{2}-[A-Za-z0-9_-]{20,}"),
         min_entropy=3.5),
    Rule("model_api_key", ("sk-",), _r(r"sk-[A-Za-z0-9]{32,}"), min_entropy=3.5,
         boundary=True, check=_has_digits(2)),
    Rule("model_api_key", ("gsk_",), _r(r"gsk_[A-Za-z0-9]{48,56}"), min_entropy=3.5),
    Rule("model_api_key", ("xai-",), _r(r"xai-[A-Za-z0-9]{70,90}"), min_entropy=3.5),
    Rule("model_api_key", ("pplx-",), _r(r"pplx-[A-Za-z0-9]{40,56}"), min_entropy=3.5),
    Rule("model_api_key", ("r8_",), _r(r"r8_[A-Za-z0-9]{37}"), min_entropy=3.5, boundary=True),
    Rule("model_api_key", ("hf_",), _r(r"hf_[A-Za-z]{34}"), min_entropy=3.0, boundary=True),
    Rule("model_api_key", ("api_org_",), _r(r"api_org_[A-Za-z]{34}"), min_entropy=3.0),
    # code hosting, chat, payments, mail, registries
    Rule("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
         _r(r"gh[pousr]_[A-Za-z0-9]{36,255}"), min_entropy=3.0),
    Rule("github_token", ("github_pat_",), _r(r"github_pat_\w{82}"), min_entropy=3.0),
    Rule("gitlab_token", ("glpat-", "gldt-", "glrt-", "glptt-", "glsoat-", "glffct-", "glft-",
                          "glimt-", "glagent-", "gloas-", "glcbt-"),
         _r(r"gl(?:pat|dt|rt|ptt|soat|ffct|ft|imt|agent|oas|cbt)-[\w.-]{20,}"),
         min_entropy=3.0),
    Rule("gitlab_token", ("gr1348941",), _r(r"GR1348941[\w-]{20}"), min_entropy=3.0),
    Rule("slack_token", ("xoxa", "xoxb", "xoxp", "xoxo", "xoxs", "xoxr", "xoxe"),
         _r(r"xox[abposre][.-](?:[A-Za-z0-9]+-)*[A-Za-z0-9]{8,}"), min_entropy=3.0,
         check=_has_digits(6)),
    Rule("slack_token", ("xapp-",), _r(r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+"), min_entropy=3.0),
    Rule("slack_webhook", ("hooks.slack.com",),
         _r(r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[A-Za-z0-9_/+-]{30,})"),
         group="v", min_entropy=3.0),
    Rule("stripe_key", ("sk_live", "sk_test", "sk_prod", "rk_live", "rk_test", "rk_prod"),
         _r(r"[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,99}"), min_entropy=3.0),
    Rule("stripe_key", ("whsec_",), _r(r"whsec_[A-Za-z0-9+/]{32,}"), min_entropy=3.5),
    Rule("sendgrid_key", ("sg.",), _r(r"SG\.[\w-]{22}\.[\w-]{43}"), min_entropy=3.5),
    Rule("package_registry_token", ("npm_",), _r(r"npm_[A-Za-z0-9]{36}"), min_entropy=3.0,
         boundary=True),
    Rule("package_registry_token", ("pypi-ageichlwas5vcmc",),
         _r(r"pypi-AgEIcHlwaS5vcmc[\w-]{50,}"), min_entropy=3.0),
    Rule("cloud_token", ("dop_v1_", "doo_v1_", "dor_v1_"), _r(r"do[opr]_v1_[a-f0-9]{64}"),
         min_entropy=3.0),
    Rule("cloud_token", ("dapi",), _r(r"dapi[a-f0-9]{32}(?:-\d)?"), min_entropy=3.0,
         boundary=True),
    Rule("cloud_token", ("hvs.",), _r(r"hvs\.[\w-]{90,120}"), min_entropy=3.5),
    Rule("cloud_token", ("shpat_", "shpca_", "shppa_", "shpss_"),
         _r(r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"), min_entropy=3.0),
    Rule("cloud_token", ("age-secret-key-1",),
         _r(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}")),
    # keys and tokens with a structure
    Rule("private_key", ("private key",),
         _r(r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]{0,20000}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
            r"|(?:[A-Za-z0-9+/=:, \t\r\n-]|\\[nr]){16,})")),
    Rule("private_key", ("putty-user-key-file",),
         _r(r"PuTTY-User-Key-File-\d: [\s\S]{0,20000}?Private-MAC: [0-9a-fA-F]+")),
    Rule("jwt", ("eyj",),
         _r(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.(?:[A-Za-z0-9_-]{8,})?"),
         boundary=True, check=_jwt),
)

# --- keyword-local detectors -------------------------------------------------------------

# keyword -> kind; short keywords must start a word (no letter just before them).
GENERIC_KEYWORDS: dict[str, str] = {
    "password": "password", "passwd": "password", "pwd": "password",
    "passphrase": "password", "mot de passe": "password", "mot-de-passe": "password",
    "mdp": "password",
    "secret": "secret", "token": "secret", "apikey": "secret", "api_key": "secret",
    "api-key": "secret", "api key": "secret", "access_key": "secret", "accesskey": "secret",
    "access key": "secret", "credential": "secret", "key": "secret", "auth": "secret",
    "jeton": "secret", "cle": "secret", "private_key": "secret",
    "bearer": "bearer", "basic": "basic",
    "://": "url",
}
_WORD_START = frozenset({"pwd", "mdp", "key", "auth", "cle", "basic", "bearer", "token",
                         "secret", "jeton"})

_TAIL = re.compile(
    r"""(?P<mid>[\w.\- \t]{0,24}?)
        ["'`]?[ \t]{0,3}
        (?:=|:=|::|:|=>|->|\?=
           |[ \t]+(?:is|est|c'est|c’est|was|etait|était|=|:)(?:[ \t]+(?:now|set[ \t]to))?)
        [ \t]*["'`]?[ \t]*
        (?P<v>[^\s"'`;,<>()\[\]{}|]{4,256})
        (?=["'`;,<>)\]}|\s]|\\[nrt]|$)""",
    re.X,
)
_BEARER = re.compile(r"[ \t]+(?P<v>[A-Za-z0-9\-._~+/]{16,}=*)(?=[\s\"'`;,)\]}]|\\[nrt]|$)")
_URL = re.compile(
    r"(?P<user>[^\s:/?#@'\"<>]{0,128}):(?P<v>[^\s/?#@'\"<>]{1,256})@(?=[\w\[])"
)

# Words in a name that make its value a non-secret: key_id, token_url, secret_name, …
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SKIP_WORDS = _words(
    "id ids name names url uri urls endpoint file files path type length size len "
    "version field fields header headers format prefix policy policies rotation expiry "
    "expires expiration ttl count hint label alias pair board word words point points "
    "takeaway takeaways feature features metric metrics concept concepts difference "
    "differences strength reset requirement requirements input prompt hash algorithm "
    "algo manager store storage vault location env variable var method mode scope scopes "
    "usage question questions idea ideas issue issues message messages"
)
_IDENTIFIER = re.compile(
    r"""^(?:[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+
        |[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+
        |[a-z]+(?:[_-][a-z]+)+
        |[a-z]+(?:[A-Z][a-z]+)+
        |[A-Za-z]+[.!?]?)$""",
    re.X,
)
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:\*+|x{3,}\w*|\.{2,}|[-_=#]+|<.*>?|\[.*\]?|\$\{.*|\$\(.*|\{\{.*|\{.*\}
        |%\(?\w*\)?s|\$[a-z_]\w*|%[a-z_]\w*%|@[a-z_]+@|0+|1234\d*
        |null|none|nil|true|false|undefined|empty|unset|required|optional|string|str|int
        |redacted|hidden|masked|secret|password|passwd|pass|pwd|changeme|changeit|example
        |sample|dummy|fake|test|todo|tbd|placeholder|admin|root|user|username|guest|demo
        |motdepasse|mot_de_passe|mdp|secret123|password123
        |your\w*|my\w*)$"""
)
_PLACEHOLDER_PARTS = ("example", "xxxx", "****", "your_", "your-", "<", "${", "{{", "changeme",
                      "placeholder", "redacted", "dummy", "insert", "replace", "...")


_NAME_PARTS = re.compile(r"[\W_]+")


def _placeholder(v: str) -> bool:
    if _PLACEHOLDER.match(v):
        return True
    low = v.lower()
    return any(p in low for p in _PLACEHOLDER_PARTS)


def _classes(v: str) -> int:
    lower = upper = digit = other = 0
    for ch in v:
        if ch.islower():
            lower = 1
        elif ch.isupper():
            upper = 1
        elif ch.isdigit():
            digit = 1
        else:
            other = 1
    return lower + upper + digit + other


def plausible_password(v: str) -> bool:
    """A value worth treating as a password: not a placeholder, a name or a path."""
    if len(v) < 6 or _placeholder(v) or _IDENTIFIER.match(v):
        return False
    if v[0] in "/~" or v.startswith(("./", "http", "file:")) or "://" in v:
        return False
    return _classes(v) >= 2 or v.isdigit()


def plausible_secret(v: str) -> bool:
    """A random-looking value: long enough, letters and digits, enough entropy for its
    length (a 12-character random string cannot reach gitleaks' 3.5 bits)."""
    n = len(v)
    if n < 12 or _placeholder(v) or _IDENTIFIER.match(v):
        return False
    if v[0] in "/~" or v.startswith(("./", "http", "file:")) or "://" in v:
        return False
    if not any(ch.isdigit() for ch in v) or not any(ch.isalpha() for ch in v):
        return False
    return entropy(v) >= min(3.5, math.log2(n) - 0.7)


def _bearer_ok(v: str) -> bool:
    return not _placeholder(v) and entropy(v) >= 3.0 and (
        any(ch.isdigit() for ch in v) or len(v) >= 24)


def _basic_ok(v: str) -> bool:
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    user, sep, pw = raw.partition(":")
    return bool(sep) and len(pw) >= 3 and not _placeholder(pw)


def url_password_ok(v: str) -> bool:
    low = v.lower()
    return len(v) >= 3 and not _placeholder(v) and low not in {"token", "pass", "pw"}


def scan_rules(text: str, rules: list[Rule] | tuple[Rule, ...], out: list[Hit]) -> None:
    """Run the triggered prefix rules over the whole text."""
    n = len(text)
    for rule in rules:
        for m in rule.regex.finditer(text):
            start, end = m.span(rule.group)
            if start < 0:
                continue
            if rule.boundary:
                s0, e0 = m.span()
                if s0 > 0 and text[s0 - 1].isalnum():
                    continue
                if e0 < n and text[e0].isalnum():
                    continue
            value = text[start:end]
            if rule.min_entropy and entropy(value) < rule.min_entropy:
                continue
            if rule.check is not None and not rule.check(value):
                continue
            out.append((start, end, rule.detector))


def scan_local(text: str, kind: str, pos: int, out: list[Hit],
               enabled: frozenset[str]) -> None:
    """One anchored match after a secret-like keyword that ends at `pos` (exclusive)."""
    if kind == "url":
        if "url_password" in enabled:
            m = _URL.match(text, pos)
            if m and url_password_ok(m.group("v")):
                out.append((m.start("v"), m.end("v"), "url_password"))
        return
    if kind in ("bearer", "basic"):
        if "bearer_token" in enabled:
            m = _BEARER.match(text, pos)
            if m and (_bearer_ok(m.group("v")) if kind == "bearer" else _basic_ok(m.group("v"))):
                out.append((m.start("v"), m.end("v"), "bearer_token"))
        return
    m = _TAIL.match(text, pos)
    if m is None:
        return
    mid = m.group("mid")
    if mid and _SKIP_WORDS.intersection(_NAME_PARTS.split(mid.lower())):
        return
    v = m.group("v")
    if kind == "password":
        if "password" in enabled and plausible_password(v):
            out.append((m.start("v"), m.end("v"), "password"))
    elif "generic_secret" in enabled and plausible_secret(v):
        out.append((m.start("v"), m.end("v"), "generic_secret"))


def word_start_required(keyword: str) -> bool:
    return keyword in _WORD_START

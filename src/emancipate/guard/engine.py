"""Secret rules as data, run by RE2 only where their keywords occur.

A rule is a TOML table (gitleaks' format, which the project vendors as
`rules/gitleaks.toml`, plus keys of our own): `id`, `regex` (RE2 syntax), `keywords`,
`entropy`, `secretGroup`, `allowlists` (regexes on the secret, the match or the line,
stopwords), and ours: `detector`, `priority`, `check`, `window`, `boundary`, `examples`
and `negatives` (the test suite runs every rule's own examples).

Why RE2 (`google-re2`): gitleaks' patterns are written for Go's RE2, which guarantees time
linear in the input. Python's `re` and `regex` backtrack on the generic prefix
`[\\w.-]{0,50}?(?:key|token|…)`: 1 ms for 300 characters with `regex`, 850 ms for 80 KB of
`api_key = ` repeated, against 2 µs and 0.1 ms with RE2 (bench/guard_bench.py --engines).

How a scan stays linear: the guard's single Aho-Corasick pass reports where each rule's
keywords occur; a rule then runs only on windows around those places (`before` characters
before the keyword, `window` after), windows of one rule merged, so each character is
read at most once per triggered rule. The window text is sliced before the call: RE2's
Python binding re-encodes the whole string it is given on every call.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections import _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick
import ahocorasick_rs
import re2

from emancipate.guard.normalize import view_of
from emancipate.guard.text import fold

Hit = tuple[int, int, str, int]  # start, end, detector, priority (lower wins)
Check = Callable[[str], bool]

RULES_DIR = Path(__file__).with_name("rules")
BUILTIN_FILES = ("emancipate.toml", "vendors.toml", "vendors2.toml", "gitleaks.toml")

_OPTIONS = re2.Options()
_OPTIONS.max_mem = 64 << 20  # the private-key rules build large automata

# RE2's spans straight from the binding's `Match` (google-re2's C++ object), on the window's
# UTF-8 bytes: the module's `finditer` wraps each call in a generator and a `_Match` object,
# and on a `str` re-encodes the text and maps byte offsets back in Python at every call
# (~5 µs a call; 2 KB of secret-dense text made ~18 such calls on windows holding one
# non-ASCII character). A test holds `match_spans` to `finditer` on random inputs; without
# the binding's `Match` (another google-re2 version) the public `finditer` is used.
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
_DIRECT = _UNANCHORED is not None and hasattr(getattr(re2.compile(b"a"), "_regexp", None), "Match")
# the binding's RE2::Set (`RuleSet`); without it each rule with no keyword runs on its own
SET_READY = _UNANCHORED is not None and hasattr(getattr(re2, "_re2", None), "Set")
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that do not start a character


_CLOG2C = [0.0] + [c * math.log2(c) for c in range(1, 1025)]


def entropy(s: str) -> float:
    """Shannon entropy in bits per character: log2(n) - sum(c log2 c) / n, with c log2 c
    from a table (this runs once per candidate secret). The counts are `Counter`'s C helper
    filling a plain dict: `Counter(s)` itself costs ~1 µs more (its `__init__`, `update` and
    `isinstance(s, Mapping)` check), 16,000 times in a megabyte holding 16,000 secrets."""
    n = len(s)
    if n == 0:
        return 0.0
    tally: dict[str, int] = {}
    _count_elements(tally, s)
    counts = tally.values()
    if n <= 1024:
        return math.log2(n) - sum(map(_CLOG2C.__getitem__, counts)) / n
    return math.log2(n) - sum(c * math.log2(c) for c in counts) / n


def below_entropy(s: str, floor: float) -> bool:
    """`entropy(s) < floor`, mostly without counting: with k distinct characters among n the
    entropy is at least that of one character written n-k+1 times and k-1 once each (the
    most uneven counts), and a random token's bound clears its floor (1 µs, not 2.5; the
    check runs once per candidate, 16,000 times in a megabyte holding 16,000 secrets)."""
    n = len(s)
    if 0 < n <= 1024 and math.log2(n) - _CLOG2C[n - len(set(s)) + 1] / n >= floor:
        return False
    return entropy(s) < floor


def _json_segment(segment: str) -> Any:
    """A JWT segment's JSON (base64url without padding), or None."""
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return None


def _jwt(v: str) -> bool:
    """A real JWT's first segment decodes to a JSON header naming its algorithm or type."""
    data = _json_segment(v.split(".", 1)[0])
    return isinstance(data, dict) and ("alg" in data or "typ" in data)


# jwt.io's sample claims, in every tutorial: no one's token, whatever key signed it
_SAMPLE_CLAIMS = {"sub": "1234567890", "name": "John Doe", "iat": 1516239022}


def public_jwt(v: str) -> bool:
    """A JWT a vendor hands to every browser: Supabase's `anon` key (its claims say
    `"role": "anon"`; access is then what row-level security allows); or jwt.io's sample."""
    parts = v.split(".")
    claims = _json_segment(parts[1]) if len(parts) >= 2 else None
    return isinstance(claims, dict) and (claims.get("role") == "anon" or claims == _SAMPLE_CLAIMS)


def _digits(n: int) -> Check:
    def check(v: str) -> bool:  # (`str.isdigit` also counts other scripts' digits)
        return (digit_count(v) if v.isascii() else sum(ch.isdigit() for ch in v)) >= n

    return check


def _b64_bytes(v: str) -> bytes | None:
    """Standard base64, its padding optional, or None."""
    try:
        return base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None


def b64_text(v: str) -> str:
    """The UTF-8 text `v` is the standard base64 of, or ``""``."""
    raw = _b64_bytes(v)
    try:
        return raw.decode("utf-8") if raw is not None else ""
    except UnicodeDecodeError:
        return ""


def _basic(v: str) -> bool:
    """HTTP basic credentials: base64 of `user:password` with a password (a documentation's
    sample is let through before this, by `sample_basic`)."""
    _, sep, password = b64_text(v).partition(":")
    return bool(sep) and len(password) >= 3


# what a documentation writes for the password of its HTTP Basic samples
# (`dXNlcm5hbWU6cGFzc3dvcmQ=`: `username:password`), and the RFCs' own example (2617, 7617)
_SAMPLE_PASSWORDS = frozenset(("password", "passwd", "pass", "pwd", "secret", "changeme",
                               "yourpassword", "your_password", "<password>", "{password}"))
_RFC_EXAMPLE = "Aladdin:open sesame"
# padded base64 as documentations write it (`dXNlcjpwYXNz`): a token of other lengths is not
# decoded
_PADDED_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){2,24}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def sample_credentials(text: str) -> bool:
    """Decoded HTTP Basic credentials a documentation writes (`username:password`,
    `Aladdin:open sesame`)."""
    _, sep, password = text.partition(":")
    return bool(sep) and (password.lower() in _SAMPLE_PASSWORDS or text == _RFC_EXAMPLE)


def sample_basic(value: str) -> bool:
    """Base64 of a documentation's HTTP Basic credentials, whatever rule or reader found it."""
    return _PADDED_B64.fullmatch(value) is not None and sample_credentials(b64_text(value))


def _sasl_plain(v: str) -> bool:
    """SASL PLAIN (`AUTH PLAIN …` of SMTP, IMAP, XMPP): base64 of `[authzid]\0user\0password`
    with a password."""
    raw = _b64_bytes(v)
    parts = raw.split(b"\0") if raw is not None else []
    return len(parts) == 3 and _printable_bytes(parts[2], 3)


def _sasl_login(v: str) -> bool:
    """SASL LOGIN's answer to `334 UGFzc3dvcmQ6` ("Password:"): base64 of a password (text
    with no line break nor NUL)."""
    raw = _b64_bytes(v)
    return raw is not None and _printable_bytes(raw, 4)


def _printable_bytes(raw: bytes, least: int) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(text) >= least and text.isprintable()


# base64 that starts as a file or image (PNG, JPEG, GIF, WebP/RIFF, PDF), a certificate or a
# public key (PEM `-----BEGIN CERTIFICAT`, `…PUBLIC KEY`, `…RSA PUBLIC`; an OpenSSH public key
# blob `ssh-r…`, `ssh-ed25519`, `ecdsa-sh…`): public data, not a secret. A PEM private key
# in base64 is the private_key detector's.
PUBLIC_BASE64 = ("iVBOR", "/9j/", "R0lGOD", "UklGR", "JVBER", "data:",
                  "LS0tLS1CRUdJTiBDRVJUSUZJQ0FU", "LS0tLS1CRUdJTiBQVUJMSUMgS0VZ",
                  "LS0tLS1CRUdJTiBSU0EgUFVCTElD", "AAAAB3NzaC1y", "AAAAC3NzaC1lZDI1NTE5",
                  "AAAAE2VjZHNhLXNo")


def ec_public_point(v: str) -> bool:
    """An elliptic-curve public key written as its uncompressed P-256 point in base64 (65
    bytes from 0x04): a Web Push application server key (VAPID), shipped to browsers."""
    if len(v) not in (87, 88) or v[0] != "B":
        return False
    try:
        raw = base64.urlsafe_b64decode(v.replace("+", "-").replace("/", "_") + "=" * (-len(v) % 4))
    except (ValueError, binascii.Error):
        return False
    return len(raw) == 65 and raw[0] == 4


# Three or more parts joined by `-`, `_`, `.` or `/`, each letters then digits, or a number:
# a name (`id-Gost28147-89-None-KeyMeshing`, a branch `fix/CLM-2211-double-payout`), not a
# token (`7SWa-Fo1_hsC6oov…`). (Each part is read once: no nested repetition to backtrack
# through.)
_JOINED_NAME = re.compile(r"(?:[A-Za-z]+[0-9]*|[0-9]+)(?:[-_./](?:[A-Za-z]+[0-9]*|[0-9]+)){2,}")


def random_token(v: str, min_length: int = 24) -> bool:
    """A quoted string that only a machine wrote: letters of both cases and digits, and
    nearly as much entropy as random characters of its length reach (the 1st-2nd
    percentile of random base-62 strings: log2(len) - 0.4 - 0.011 len, at most 4.6 bits);
    not a file, image, certificate or public key in base64, nor words joined. From 24
    characters whatever its name; from 16 where a secret's name stands before it.

    The floor was log2(len) - 0.6, the 5th to 15th percentile of random strings of 24 to
    40 characters: it missed 12-17% of random tokens (5,000 draws a length)."""
    n = len(v)
    if n < min_length or v.startswith(PUBLIC_BASE64) or ec_public_point(v):
        return False
    if v.endswith("IDAQAB"):  # an RSA public key's last base64 (its exponent, 65537),
        return False  # split over strings as DKIM records are (`"p=MIIB…" "…IDAQAB"`)
    if v == v.lower() or v == v.upper():  # both cases
        return False
    if digit_count(v) < 2 and not case_random(v):  # 2 digits, or a case that flips at random
        return False
    return (not below_entropy(v, min(4.6, math.log2(n) - 0.4 - 0.011 * n)) and not wordish(v)
            and not _JOINED_NAME.fullmatch(v))


_DIGIT_CHARS = "0123456789"
_ONE_CASE_RUN = re.compile(r"[a-z0-9]{20,}|[A-Z0-9]{20,}")
_DIGIT_RUNS = re.compile(r"\d+")


def random_one_case(v: str) -> bool:
    """A token of letters and digits in one case, as base-36 keys are written
    (`lgx_live_5gwgv820jstttpiv4hgddj51…`, `5GWGV820JSTT…`): a run of 20 or more such
    characters, its digits spread through it (3 runs or more) and its entropy that of random
    base-36 characters of its length (log2(len) - 0.5 - 0.011 len, at most 4.2 bits); not
    words joined."""
    for run in _ONE_CASE_RUN.findall(v):
        n = len(run)
        if (len(_DIGIT_RUNS.findall(run)) >= 3
                and entropy(run) >= min(4.2, math.log2(n) - 0.5 - 0.011 * n)
                and not wordish(run) and not _HEX_VALUE.fullmatch(run)):
            return True
    return False


def case_random(v: str) -> bool:
    """Letters whose case flips as often as a coin's (`YXNkZmZmZmZm_HARDcoded`), not once a
    word as in a name (`XMLHttpRequest`, `getElementById`): a machine-written value with
    no digit. 8 flips or more, on 40% of the adjacent letter pairs."""
    if len(v) < 9 or v.islower() or v.isupper():
        return False  # too short to flip 8 times, or one case only
    if v.isascii():  # each letter as its case, anything else a blank: C calls count
        s = v.translate(_CASE_OF)
        flips = s.count("aA") + s.count("Aa")  # (neither can overlap itself)
        pairs = len(s) - s.count(" ") - len(s.split())  # letters less runs of letters
        return flips >= 8 and flips >= 0.4 * pairs
    flips = pairs = 0
    prev = ""
    for ch in v:
        if ch.isalpha():
            if prev:
                pairs += 1
                flips += prev.isupper() != ch.isupper()
            prev = ch
        else:
            prev = ""
    return flips >= 8 and flips >= 0.4 * pairs


_CASE_OF = {c: " " for c in range(128)} | {c: "A" for c in range(65, 91)} | {
    c: "a" for c in range(97, 123)}


def digit_count(v: str) -> int:
    return sum(map(v.count, _DIGIT_CHARS))


_RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+[:.]?$")
_ASSIGN = re.compile(r"[A-Za-z_]\w*=(?:[^=\-!@#%^&*~]|-\d)")
# The words names are made of (`scripts/build_words.py`: the Python standard library's).
_WORDS = frozenset(
    line for line in (RULES_DIR / "words.txt").read_text(encoding="utf-8").split("\n")
    if line and not line.startswith("#"))


def joined_words(v: str) -> bool:
    """`v` (letters) is known words of two letters or more written together
    (`defaultpassword`, `mypasswordhere`), not random letters (`frohaddsxxcnxkeh`, an app
    password as Gmail's settings page copies it): one pass of dynamic programming over the
    ends a segmentation may reach (64 letters at most)."""
    w = v.lower()
    if len(w) > 64 or not w.isalpha():
        return False
    reach = [True] + [False] * len(w)
    for i in range(len(w)):
        if reach[i]:
            for j in range(i + 2, min(len(w), i + 16) + 1):
                if w[i:j] in _WORDS or w[i:j] in _SHORT_WORDS:
                    reach[j] = True
    return reach[-1]


# short words of sentences, which names seldom hold (`mysecretpassword`, `letmein`)
_SHORT_WORDS = frozenset(("my", "your", "our", "the", "to", "in", "on", "of", "and", "is", "it",
                          "me", "be", "we", "us", "let", "here", "this", "that", "super",
                          "pass", "word"))


def _is_word(run: str) -> bool:
    w = run.lower()
    return (w in _WORDS or (w[-1] == "s" and w[:-1] in _WORDS)
            or (len(w) > 4 and run[0].isupper() and w[1:] in _WORDS))  # `PGresult`


def wordish(v: str) -> bool:
    """Made of words, as names are (`PGresult_ptr`, `s3_credentials`, `Ed448PrivateKey`),
    not of random characters (`AIhq5Xyb1Gga9Q4`): known words of three letters or more
    cover 60% of its letters, and there are two of them (or one covering 80%)."""
    letters = covered = known = numbers = 0
    for run in _RUNS.findall(v):
        n = len(run)
        if run[0] in _DIGIT_CHARS:
            numbers += 1
            if numbers > 5:  # digits all over: random, not a name
                return False
            continue
        letters += n
        if (n >= 4 or (n == 3 and not run.isupper())) and _is_word(run):  # not `DFS`
            covered += n
            known += 1
    return (letters >= 6 and covered >= 0.6 * letters
            and (known >= 2 or covered >= 0.8 * letters))


# (a number may end any word: `kaas-falcon-apfel67-zadel`)
_PASSPHRASE = re.compile(
    r"[a-zà-ÿ]{3,12}\d{0,4}(?:([-.])[a-zà-ÿ]{3,12}\d{0,4})(?:\1[a-zà-ÿ]{3,12}\d{0,4}){2,6}")


def passphrase(v: str) -> bool:
    """Four to eight lower-case words joined by `-` or `.`, as password managers generate
    them (`renard-citron-lumiere-nuage`, `zephyr-marble-lagoon-pepper21`: a number may end
    the last), not a name in kebab case (`db-root-password-ref`): at most half of the words
    are words names are made of (`words.txt`), and not all of one length."""
    if _PASSPHRASE.fullmatch(v) is None:
        return False
    # (groups of one length are a code's: `abcd-efgh-ijkl-mnop`, an app password, has its
    # own rule)
    words = v.rstrip(_DIGIT_CHARS).replace(".", "-").split("-")
    return (len(set(map(len, words))) > 1 and sum(w in _WORDS for w in words) * 2 <= len(words))


def dotted_name(v: str) -> bool:
    """`win32api.RegEnumKey`, `rfc4357.Gost28147_89_EncryptedKey`: every part a name, the
    long ones made of words; not `s.ZC9Ecf4M5g9o34Q6RkzGsj0z` (a Vault token)."""
    if not _DOTTED.match(v):
        return False
    return all(len(p) <= 8 or p.replace("_", "").isalpha() or wordish(p)
               for p in v.rstrip(":.").split("."))


def name_like(v: str) -> bool:
    """A name or an expression rather than a value: `win32api.RegEnumKey`, `a=b`,
    `sigv4_auth_cls`, a value cut short with `...`."""
    return dotted_name(v) or assignment(v) or v.endswith("...") or wordish(v)


def assignment(v: str) -> bool:
    """`name=value` (`attempt=3`, `offset=-1`), not a value ending in `=` padding
    (`Kd8mQ2vX9z1=`) nor a password with a symbol after its `=` (`w_b9W=-@RiTWsk`)."""
    return _ASSIGN.match(v) is not None


@functools.cache
def _bip39_index() -> dict[str, int]:
    """The BIP39 English word list (from `mnemonic`, the reference implementation), word ->
    its 11-bit number; loaded on the first candidate phrase."""
    from mnemonic import Mnemonic
    return {w: i for i, w in enumerate(Mnemonic("english").wordlist)}


_SEED_WORD = re.compile(r"[a-z]+")
_SEED_SIZES = (24, 21, 18, 15, 12)


def _bip39_phrase(indices: list[int]) -> bool:
    """BIP39's checksum: the phrase's 11-bit numbers end with the first bits of the
    SHA-256 of the others (4 bits for 12 words, 8 for 24)."""
    n = len(indices)
    bits = 0
    for i in indices:
        bits = bits << 11 | i
    check_bits = n // 3
    entropy_len = (11 * n - check_bits) // 8
    data = (bits >> check_bits).to_bytes(entropy_len, "big")
    return hashlib.sha256(data).digest()[0] >> (8 - check_bits) == bits & ((1 << check_bits) - 1)


def _bip39(v: str, checksum: bool = True) -> tuple[int, int] | None:
    """A wallet's seed phrase in `v`: 12 to 24 words of the BIP39 English list whose
    checksum holds (words from the list picked at random pass one time in 16 to 256; not
    `checksum`: under a seed phrase's name, whose words are copied by hand); its
    span in `v`, from its first word to its last (the rule's regex reads any run of short
    lower-case words: the words around the phrase are not the secret). Each run of list
    words is tried as a whole and cut by up to two words at either end (a list word beside
    the phrase, `wallet abandon …`); a run of more than 28 list words is a list, not a
    phrase, and one word filling half of it makes a test vector."""
    index = _bip39_index()
    runs: list[list[tuple[int, int]]] = [[]]  # (word number in the list, word number in v)
    for k, w in enumerate(_SEED_WORD.findall(v)):
        i = index.get(w)
        if i is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, k))
    for run in runs:
        n = len(run)
        if not 12 <= n <= 28:
            continue
        numbers = [i for i, _ in run]
        for size in _SEED_SIZES:
            if size > n:
                continue
            for a in sorted({a for a in (0, 1, 2, n - size - 2, n - size - 1, n - size)
                             if 0 <= a <= n - size}):
                words = numbers[a:a + size]
                if (not checksum or _bip39_phrase(words)) and not _repeated(words):
                    spans = [m.span() for m in _SEED_WORD.finditer(v)]  # found: where
                    return spans[run[a][1]][0], spans[run[a + size - 1][1]][1]
    return None


def _repeated(indices: list[int]) -> bool:
    """A test vector (`abandon` eleven times, then `about`): one word fills half of it."""
    return max(indices.count(i) for i in set(indices)) * 2 > len(indices)


def _bitlocker(v: str) -> bool:
    """A BitLocker recovery password: 8 blocks of 6 digits, each a multiple of 11 below
    720,896 (11 x 65,536: each block stores 16 bits); one random block in 11 passes, 8
    together one time in 200 million. Not all zeros (a sample)."""
    blocks = v.split("-")
    return (len(blocks) == 8 and any(b.strip("0") for b in blocks)
            and all(len(b) == 6 and b.isdigit() and int(b) % 11 == 0 and int(b) < 720_896
                    for b in blocks))


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(v: str) -> bytes | None:
    """The payload of a Base58Check string (Bitcoin's keys and addresses), or None when a
    character is not base58 or the last four bytes are not the double SHA-256 of the rest
    (a random string passes one time in four billion)."""
    n = 0
    for c in v:
        d = _BASE58.find(c)
        if d < 0:
            return None
        n = n * 58 + d
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(v) - len(v.lstrip("1"))) + raw
    if len(raw) < 5:
        return None
    body, check = raw[:-4], raw[-4:]
    return body if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] == check else None


_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _random_key_base64(v: str) -> bool:
    """A random token whose base64 decodes to bytes, not to text: a key of random bytes,
    not a file's contents (`eyJzdG9yZSI6…`, a ConfigMap's `binaryData` of a JSON profile)."""
    if not random_token(v):
        return False
    try:
        raw = base64.b64decode(v.translate(_URLSAFE_TO_STANDARD))
    except (binascii.Error, ValueError):
        return True
    return sum(b in _TEXT_BYTES for b in raw) < 0.9 * len(raw)


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def _wif(v: str) -> bool:
    """A private key in wallet import format: Base58Check of a version byte (0x80, or 0xEF on
    testnet) and 32 bytes (and 0x01 for a compressed key)."""
    body = base58check(v)
    return body is not None and body[0] in (0x80, 0xEF) and (
        len(body) == 33 or (len(body) == 34 and body[-1] == 1))


def char_classes(v: str) -> int:
    """How many of lower case, upper case, digits and other characters (symbols, letters
    without case) `v` holds."""
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


_URL_PARTS = re.compile(r"[/?&=#.]+")


def _url_token(v: str) -> bool:
    """A URL with a part only a machine wrote: 20 characters or more of both cases and
    digits at random, or 32 hex digits and more (`/hooks/<token>`), not a word or a name."""
    return any(random_token(p, 20) or (long_hex(p) and entropy(p) >= HEX_ENTROPY)
               for p in _URL_PARTS.split(v) if len(p) >= 20)


def _base32_groups(v: str) -> bool:
    """A TOTP setup key as authenticator apps show it, base32 in groups of four
    (`7osp pzb2 hz57 …`), not words of four letters (`type this into your app`): one case,
    a digit, and at most one group a word."""
    groups = v.split()
    return ((v.islower() or v.isupper()) and any(c.isdigit() for c in v)
            and sum(g.isalpha() and _is_word(g) for g in groups) <= 1)


_SYMBOLS_SET = frozenset("!@#$%^&*+=?~")
# a row of a keyboard walked, as people make passwords (`asdfghjkl@`, `qazwsx#9`)
KEYBOARD_WALK = re.compile(r"(?i)qwert|asdfg|zxcvb|xcvbn|cvbnm|qazwsx|wsxedc|azert|yxcvb|1qaz"
                           r"|qaz2wsx|zaq1|1q2w3e|qweasd")


# libraries named after a walk (`zxcvbn score >= 3`, `@zxcvbn-ts/core`)
_WALK_LIBRARIES = frozenset(("zxcvbn4j", "zxcvbn-ts", "zxcvbn-python", "zxcvbn3", "zxcvbn2"))


def keyboard_walk_password(v: str) -> bool:
    """A password walked along a keyboard's rows with a digit or a symbol added
    (`1qaz2wsx!QAZ`, `Qwerty15`, `asdfghjkl@`, `zaq12wsx537`), told with no word for
    password around it: not the walk alone (`qwertz`, `AZERTY`), nor a library named after
    one (`zxcvbn-ts`), nor a host's or a path's part (`cx1q2w3e4r.eu-west-1`)."""
    return (7 <= len(v) <= 40 and KEYBOARD_WALK.search(v) is not None
            and v.lower() not in _WALK_LIBRARIES and "/" not in v and "." not in v
            and any(c.isalpha() for c in v)
            and (any(c.isdigit() for c in v) or not _SYMBOLS_SET.isdisjoint(v)))


def recovery_code(v: str) -> bool:
    """A two-factor backup code: with a digit (`a1b2c-3d4e5`, `4821 7390`), or groups of
    four to six letters no word makes (`fvrwn-dfujb`, `fpvg-mtzm`), not the alphabet
    (`ABCDE-FGHIJ`) nor one letter again (`xxxxx-xxxxx`)."""
    if any(c.isdigit() for c in v):
        return True
    groups = v.lower().split("-")
    return (len(groups) >= 2 and all(4 <= len(g) <= 6 and g.isascii() and g.isalpha()
                                     and not _is_word(g) and len(set(g)) > 2 for g in groups)
            and any(ord(b) - ord(a) != 1 for g in groups for a, b in itertools.pairwise(g)))


def _activation_code(v: str) -> bool:
    """An activation code: groups of letters and digits (not a date, not a mask, not the
    alphabet), or 8 to 16 characters with digits among letters."""
    return (not placeholder_token(v.replace("-", "")) and not v.replace("-", "").isdigit()
            and ("-" in v or _digit_and_letter(v)))


def _activation_or_digits(v: str) -> bool:
    """The same, or 6 to 10 digits (`738286`), or up to 16 in spaced or dashed groups (`136
    150 541`, `4503 8308 0080`, `0732-5081-0443-3940`): not one digit again, a run (`123456`)
    nor a date (`20240115`)."""
    d = v.replace(" ", "")
    if d.replace("-", "").isdigit():
        d = d.replace("-", "")
        return (6 <= len(d) <= (16 if "-" in v or " " in v else 10) and len(set(d)) > 1
                and d not in "01234567890"
                and not (len(d) == 8 and d[:2] in ("19", "20") and d[4:6] <= "12"))
    return _activation_code(v)


def _digit_and_letter(v: str) -> bool:
    return any(c.isdigit() for c in v) and any(c.isalpha() for c in v)


def _mixed(v: str) -> bool:
    return _digit_and_letter(v) or case_random(v)


_EASTERN_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹০১২৩৪৫৬৭৮৯०१२३४५६७८९",
                                "0123456789" * 4)  # (Arabic-Indic, Persian, Bengali, Devanagari)


def access_code(v: str) -> bool:
    """A code that opens something (a door, a safe, a card), as people tell it: 4 to 8 digits
    (Arabic-Indic, Persian, Bengali and Devanagari ones too), maybe spaced (`0 0 3 4`),
    dashed (`9-0-1-5-8`) or in pairs (`05-34-95`, `11 – 66 – 64 – 21`), maybe with a letter
    (`3192A`, `7A750`);
    not a sample everyone writes
    (`1111`, `1234`, `4321`) nor a year written whole (`1950`–`2029`: `the code changed in
    2024`)."""
    d = v.replace(" ", "").replace("-", "").replace("–", "").translate(_EASTERN_DIGITS)
    letters = [c for c in d if c.isascii() and c.isalpha()]
    if len(letters) == 1 and (d[-1] == letters[0] or letters[0] in "ABCD"):
        d = d.replace(letters[0], "")  # a French entry code's letter (`3192A`, `7A750`)
    if not (d.isascii() and d.isdigit() and 4 <= len(d) <= 8) or len(set(d)) == 1:
        return False
    if d in "01234567890" or d in "9876543210":
        return False
    # (a year is written whole: `1 9 7 4`, `1-9-7-4` are a code spelt out digit by digit)
    return not (len(d) == 4 and 1950 <= int(d) <= 2029 and len(v) == 4)


def dial_combination(v: str) -> bool:
    """A dial lock's three numbers (`88-43-89`): not a date in any order people write one
    (`23-11-24`, `11-23-24`, `24-11-23`), nor a clock's time (`14-52-37`), nor one number
    repeated or stepped (a fertiliser's grade `15-15-15`, teeth `44-45-46`, sizes `38-40-42`),
    nor ending in `00` as aircraft manuals' chapters do (`defect 32-41-00`)."""
    a, b, c = (int(x) for x in v.split("-"))
    if b - a == c - b or c == 0:
        return False
    if (1 <= a <= 31 and 1 <= b <= 12) or (1 <= b <= 31 and 1 <= a <= 12) or (
            1 <= c <= 31 and 1 <= b <= 12):
        return False
    return not (a <= 23 and b <= 59 and c <= 59)


# Words of the prose that follows a password's name when no password does (`password: see
# the vault`, `is stored in the team password manager`, `forgotten password link expired`).
_PROSE_WORDS = frozenset((
    "the", "and", "for", "with", "from", "not", "see", "ask", "use", "used", "using", "same",
    "sent", "send", "stored", "saved", "kept", "required", "needed", "will", "must", "should",
    "can", "cannot", "please", "your", "our", "their", "this", "that", "these", "those", "set",
    "reset", "changed", "change", "expired", "expires", "forgotten", "forgot", "empty", "blank",
    "none", "unknown", "manager", "vault", "keepass", "bitwarden", "lastpass", "separately",
    "later", "below", "above", "attached", "provided", "given", "shared", "was", "were",
    "are", "has", "have", "had", "been", "being", "you", "they", "his", "her", "its", "who",
    "what", "when", "where", "which", "how", "why", "all", "any", "each", "every", "only",
    "also", "but", "into", "onto", "via", "per", "about", "after", "before", "again", "then",
    "than", "too", "very", "just", "still", "yet", "now", "there", "here", "link", "email",
    "mail", "sms", "text", "phone", "call", "admin", "administrator", "desk", "team", "policy",
    "length", "characters", "least", "minimum", "maximum", "contain", "contains",
    "letters", "digits", "symbols", "number", "numbers", "uppercase", "lowercase", "special",
    "incorrect", "wrong", "invalid", "field", "hidden", "masked", "redacted", "replace",
    # (the commonest of other languages: `Initialpasswort: wird per SMS zugestellt`,
    # `flytta det till valvet`, `endret etter helgen`, `danışma bankosundan … alınır`)
    "der", "die", "das", "und", "ist", "wird", "werden", "mit", "für", "von", "bei", "nach",
    "nicht", "les", "des", "une", "est", "pour", "avec", "par", "sur", "dans", "pas", "sera",
    "del", "los", "las", "con", "por", "para", "una", "está", "será", "che", "per", "della",
    "sono", "non", "dos", "uma", "com", "pelo", "pela", "não", "een", "het", "van",
    "met", "voor", "niet", "wordt", "bij", "och", "det", "till", "för", "med", "inte",
    "til", "ikke", "etter", "efter", "stata", "stato", "olarak", "için", "ile",
    "veya", "gibi", "her", "bir", "oraz", "jest", "nie", "dla", "przez",
    "volgens", "mij", "denk", "goed",  # (`Het wachtwoord is volgens mij goed`: I think it's right)
))
_TRAILING_NUMBER = re.compile(r"[ \t-]\d{1,4}$")


# the stems of a password's name in the commonest languages: a phrase holding one is about
# passwords (`Politica privind parolele`), not one
_PASSWORD_STEMS = ("pass", "parol", "jelsz", "hasł", "hasl", "lösen", "salasan", "wachtw",
                   "senha", "contrase", "kennw", "heslo", "şifre", "sifre", "geslo", "lozink")


def _passphrase_told(v: str) -> bool:
    words = _TRAILING_NUMBER.sub("", v).replace("-", " ").split()
    return _chat_password(v) and (len(words) < 2 or (
        (" " in v or len(set(map(len, words))) > 1)
        and _PROSE_WORDS.isdisjoint(w.lower() for w in words)
        and not any(w.lower().startswith(_PASSWORD_STEMS) for w in words)))


def _chat_password(v: str) -> bool:
    """A password given in a chat: three to six words of three letters or more (a number may
    end them), at most half of them words names are made of (`island jigsaw ladder kettle
    canyon`, not `on the fridge`) or, if more, still one that is not and none that prose
    uses (`correct window bamboo pickle`, not `see the vault entry`); or one word of six
    characters or more mixing letters with digits or symbols."""
    words = _TRAILING_NUMBER.sub("", v).split()
    if len(words) > 1:
        if not (3 <= len(words) <= 6 and all(len(w) >= 3 and w.isalpha() for w in words)):
            return False
        named = sum(w.lower() in _WORDS for w in words)
        return named * 2 <= len(words) or (
            named < len(words) and _PROSE_WORDS.isdisjoint(w.lower() for w in words))
    return (len(v) >= 6 and any(c.isalpha() for c in v) and not v.isalpha()
            and not template_ref(v))


_CASE_FLIP = re.compile(r"[a-z](?=[A-Z])|[A-Z](?=[a-z])")


CHECKS: dict[str, Check] = {
    "random_token": random_token,
    "random_key_base64": _random_key_base64,
    "url_token": _url_token,
    # three kinds of characters: a password, not a name with a number (`jsmith42`)
    "classes3": lambda v: char_classes(v) >= 3,
    "bitlocker": _bitlocker,
    "wif": _wif,
    "activation_code": _activation_code,
    "not_name": lambda v: not name_like(v),
    "jwt": _jwt,
    "basic": _basic,
    "sasl_plain": _sasl_plain,
    "sasl_login": _sasl_login,
    "not_example": lambda v: not v.upper().endswith("EXAMPLE"),
    # an AWS id in lower case must hold a digit: `asiakirjamallikansio` is a Finnish word
    "aws_id": lambda v: not v.upper().endswith("EXAMPLE") and (
        not v.islower() or any(c.isdigit() for c in v)),
    "digits1": _digits(1),
    "digits2": _digits(2),
    "digits6": _digits(6),
    "mixed": _mixed,
    # letters no known words make up (an app password without its blanks)
    "not_joined_words": lambda v: not joined_words(v.replace(" ", "")),
    # the same, or capitals that spell no word, as printed on a device's tag (`OIKAWXNT`)
    "mixed_or_caps": lambda v: (_digit_and_letter(v) or case_random(v)
                                or (len(v) >= 8 and v.isalpha() and v.isupper()
                                    and not wordish(v))),
    "base32_groups": _base32_groups,
    # a password named by no word of its own (`log in with Spring9250#`): letters, digits
    # and a symbol people add to a password (`with Tailwind?` is a question)
    "symbol_password": lambda v: _digit_and_letter(v) and not _SYMBOLS_SET.isdisjoint(v),
    "symbol_or_joined_password": lambda v: _digit_and_letter(v) and (
        not _SYMBOLS_SET.isdisjoint(v) or (("-" in v or "_" in v) and v.lower() != v
                                           and v.upper() != v)),
    "chat_password": _chat_password,
    # the same, or letters and digits whose case flips 3 times or more (`gOVE47?`,
    # `Kestrel-91-Palisade`, `jFX6sfpDzt`; not a product's name, `GPT4all`, `AZ-900`)
    "flipped_password": lambda v: CHECKS["symbol_or_joined_password"](v) or (
        _digit_and_letter(v) and len(_CASE_FLIP.findall(v)) >= 3),
    # the same, told after a password's name, where prose in any language may follow the
    # name instead (`Initialpasswort: wird per SMS zugestellt`): no word prose uses, and
    # groups joined by `-` not all of one length (`abcd-efgh-ijkl-mnop`, an app password's mask)
    "passphrase_told": _passphrase_told,
    # letters with digits, or both cases with a symbol no name holds (`vdF=^Arb?Y@YJfkh#E`)
    # (or a keyboard's row walked, with a digit or a symbol: `qazwsx$`)
    "mixed_or_symbolic": lambda v: _mixed(v) or (
        len(v) >= 8 and not _SYMBOLS_SET.isdisjoint(v) and v != v.lower() and v != v.upper()) or (
        KEYBOARD_WALK.search(v) is not None and not v.isalpha()),
    # the same, or words joined as password managers make them, or both cases in letters no
    # words make up (`cEJVjj_hXEgpRA`, `VpnJBunDUcIMych%`), for a field whose file holds
    # nothing but the password there (`.pgpass`'s last, FortiOS's `set psksecret …`)
    "mixed_symbolic_or_cased": lambda v: CHECKS["mixed_or_symbolic"](v) or passphrase(v) or (
        len(v) >= 10 and v != v.lower() and v != v.upper() and not wordish(v)),
    "access_code": access_code,
    "dial_combination": dial_combination,
    "activation_or_digits": _activation_or_digits,
    "recovery_code": recovery_code,
    "keyboard_walk_password": keyboard_walk_password,
    # a password told in prose: letters with digits or symbols, or a short number as a PIN is
    "mixed_or_code": lambda v: _mixed(v) or access_code(v),
    # letters with digits, or words joined as password managers make them
    # (`Thistle-correct-otter-granite`, `meadow cobalt ember lemur cobalt`)
    "mixed_or_passphrase": lambda v: _mixed(v) or passphrase(v.lower().replace(" ", "-")),
    # a key written by a machine: 32 hex digits or more, or random letters and digits (in one
    # case from 32: Kavenegar's `166RPU8ZYUY23DBO…`)
    "key_literal": lambda v: ((long_hex(v) and entropy(v) >= HEX_ENTROPY) or random_token(v, 16)
                              or (len(v) >= 32 and random_one_case(v))),
}


def default_login(user: str, password: str) -> bool:
    """A login no one keeps secret: the user name again (`postgres:postgres@`,
    `mongodb:mongodb@`, a container image's default, all over documentation and compose
    files) or one character repeated (`1111`)."""
    low = password.lower()
    return low == user.lower() or len(set(low)) == 1


_URL_USER = re.compile(r"://(?:[^\s:/?#@'\"<>]+@)?([^\s:/?#@'\"<>]*):")


def _url_login(value: str, matched: str) -> bool:
    m = _URL_USER.search(matched)
    return not default_login(m.group(1) if m else "", value)


# A cause told between a password's name and `is` makes `is` its clause's verb, not the
# password's (`promijenio sam lozinku … jer je netko pokušavao ulaz`: because someone tried)
_BECAUSE = frozenset(("because", "since", "weil", "porque", "perché", "parce", "omdat", "fordi",
                      "eftersom", "koska", "mert", "çünkü", "jer", "ker", "protože", "bo"))


def _told_not_because(value: str, match: str) -> bool:
    return _BECAUSE.isdisjoint(match[:match.rfind(value)].lower().split())


# Checks that read the rule's whole match besides the secret (same `check` key).
MATCH_CHECKS: dict[str, Callable[[str, str], bool]] = {
    # a URL's password that is not its user name again nor one character repeated
    "url_login": _url_login,
    "passphrase_told": _told_not_because,
}

# Checks that find the secret inside what the regex read (same `check` key): its span in
# the value, or None when there is none.
SPAN_CHECKS: dict[str, Callable[[str], tuple[int, int] | None]] = {
    # a seed phrase among the words the regex read
    "bip39": _bip39,
    "bip39_named": lambda v: _bip39(v, checksum=False),
}
_ALL_CHECKS = (*CHECKS, *MATCH_CHECKS, *SPAN_CHECKS)

# gitleaks rule ids -> our detector names (first prefix that matches); the rest are
# `vendor_token`. Policies and `disabled_detectors` speak detector names.
_GITLEAKS_DETECTORS: tuple[tuple[str, str], ...] = (
    ("aws-", "aws_access_key"), ("gcp-api-key", "gcp_api_key"),
    ("azure-ad-client-secret", "azure_ad_client_secret"),
    ("github-", "github_token"), ("gitlab-", "gitlab_token"),
    ("slack-webhook", "slack_webhook"), ("slack-", "slack_token"),
    ("stripe-", "stripe_key"), ("sendgrid-", "sendgrid_key"),
    ("npm-", "package_registry_token"), ("pypi-", "package_registry_token"),
    ("rubygems-", "package_registry_token"), ("nuget-", "package_registry_token"),
    ("clojars-", "package_registry_token"),
    ("openai-", "openai_api_key"), ("anthropic-", "anthropic_api_key"),
    ("huggingface-", "model_api_key"), ("perplexity-", "model_api_key"),
    ("cohere-", "model_api_key"),
    ("private-key", "private_key"), ("pkcs12", "private_key"), ("jwt", "jwt"),
    ("generic-api-key", "generic_secret"), ("curl-auth", "bearer_token"),
)
# Windows larger than the default, for rules whose match can be long.
_GITLEAKS_WINDOWS = {"private-key": 16384, "jwt": 4096, "jwt-base64": 4096,
                     "curl-auth-header": 2048, "curl-auth-user": 2048}
_WHOLE_TEXT = 1 << 40
# Checks added to gitleaks rules (the file itself stays unchanged): its generic rule takes
# any 10+ character value with 3.5 bits of entropy, names and expressions included.
_GITLEAKS_CHECKS = {"generic-api-key": "not_name"}


_REPEAT = re.compile(r"\{(\d+),(\d*)\}|[*+]")


def _window_for(pattern: str) -> int:
    """Characters to scan after a keyword: enough for the longest bounded repetitions of the
    pattern (a rule's keyword sits inside its match); 4 KB when a repetition is open-ended
    past 100 (long tokens)."""
    total = 0
    for m in _REPEAT.finditer(pattern):
        if m.group(0) in "*+" or (m.group(2) == "" and int(m.group(1)) >= 100):
            if m.group(0) not in "*+":
                return 4096
            continue  # a `*` or `+` on one character class: counted in the slack below
        total += int(m.group(2) or m.group(1))
    return min(4096, max(256, total + 128))


_LEADING = re.compile(r"^(?:\(\?i\)|\\b|\((?:\?:)?)*((?:[A-Za-z0-9_-]|\\\.)*)")


def _before_for(pattern: str, keywords: tuple[str, ...]) -> int:
    """Characters to scan before a keyword: 8 when every keyword starts the match (the
    pattern's leading literal and each keyword are prefixes of one another: `ghp_…`),
    else 64 (a keyword in the middle: `https://…/api/webhooks/…`)."""
    m = _LEADING.match(pattern)
    lead = m.group(1).replace("\\.", ".").lower() if m else ""
    if len(lead) >= 2 and keywords and all(k.startswith(lead) or lead.startswith(k)
                                           for k in keywords):
        return 8
    return 64


@dataclass(frozen=True, slots=True)
class SecretRule:
    id: str
    detector: str
    keywords: tuple[str, ...]
    pattern: Any  # re2._Regexp
    # the same pattern compiled for UTF-8 bytes, which `match_spans` runs
    bytes_pattern: Any
    group: int | None  # None: the first group that matched, else the whole match
    entropy: float = 0.0
    allow_secret: Any = None  # one RE2 alternation of the allowlist's regexes (bytes), or None
    allow_match: Any = None
    allow_line: Any = None
    stopwords: Any = None  # an Aho-Corasick automaton of the lower-case stopwords, or None
    priority: int = 1
    check: Check | None = None
    match_check: Callable[[str, str], bool] | None = None  # (secret, whole match)
    span_check: Callable[[str], tuple[int, int] | None] | None = None  # the secret inside
    before: int = 64
    window: int = 256
    boundary: bool = False  # no letter or digit may touch the match on either side
    # skip a value whose name says it is an identifier or public (`identifier_name`)
    skip_identifier_names: bool = False
    # for a rule with no keyword: a literal every match holds; when the text lacks it the
    # rule is not run (one `in` instead of an RE2 pass)
    requires: str = ""
    # for a rule with no keyword: the length of a run of base64's characters (letters,
    # digits, `+/=-_`) every match holds; a text without such a run is not read (one mask
    # and a `bytes.find`, ~1 µs per 2 KB, instead of an RE2 pass, ~4)
    requires_run: int = 0
    # for a rule with no keyword: a run of the text's shape (`personal.shape_of`: a digit is
    # `0`, a capital `A`, a small letter `a`) every match holds (`00-00-00`); a text whose
    # shape lacks it is not read (one `bytes` test on the shape the personal pass uses)
    requires_shape: bytes = b""
    # a regex (for bytes) a window must match to be read at all: a cheap test before the
    # rule's own (`\d{4}`: a code of four digits is in it), or None
    window_needs: Any = None
    # `case_sensitive_keywords = true`: the keywords as written; a keyword found otherwise
    # (`sub` in prose for a NATS seed's `SUB`) does not run the rule there
    exact_keywords: tuple[str, ...] = ()
    lead: bool = False  # gitleaks' `[\w.-]{0,50}?` lead-in was cut (see `_cut_lead`)
    examples: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()  # ids of rules (of later files) this one supersedes


class RuleError(ValueError):
    """A rule file that cannot be used: the message names the file, the rule and why."""


_OTHER_RUN = re.compile(r"[^\x00-\xff]+")


def viewed_pattern(pattern: str) -> str:
    """A rule's regex with its literals in other scripts written as the view writes text
    (the scan reads the view): Greek and Cyrillic letters drawn like Latin ones as Latin
    (`κωδικός` is `kωδikος`), Thai and Devanagari words without their combining marks,
    full-width punctuation as ASCII. Rules are written in the words people write."""
    if pattern.isascii():
        return pattern
    return _OTHER_RUN.sub(lambda m: view_of(m.group()).text, pattern)


def _compile(pattern: str | bytes, where: str) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except Exception as exc:  # re2.error and its RE2 messages
        raise RuleError(f"{where}: the regex does not compile under RE2 ({exc})") from None


_LEAD = r"[\w.-]{0,50}?"


def _cut_lead(pattern: str) -> tuple[str, bool]:
    r"""Drop the unanchored lead-in `[\w.-]{0,50}?` that 96 of gitleaks' rules start with.
    It only widens the match to the left (for `regexTarget = "match"` allowlists, which
    `_allowed` checks on the widened text), and it halves RE2's time on those rules, which
    then cannot skip ahead (generic-api-key on 2 KB: 143 µs with it, 77 µs without)."""
    for flags in ("(?i)", ""):
        if pattern.startswith(flags + _LEAD):
            return flags + pattern[len(flags) + len(_LEAD):], True
    return pattern, False


# gitleaks' closing boundary: a quote, a blank, `;`, an escaped newline or the end. In a
# prompt a token is also followed by a comma, a bracket or the full stop of a sentence
# ("my token is xoxb-…, why", "…(ghp_…)", "use sk_live_….").
_CLOSED_END = r"""(?:[\x60'"\s;]|\\[nr]|$)"""
_OPEN_END = r"""(?:[\x60'"\s;,)\]}>]|\.(?:\s|$)|\\[nr]|$)"""


def _open_end(pattern: str) -> str:
    """gitleaks' closing boundary widened to what ends a token in prose (`_OPEN_END`)."""
    return pattern[:-len(_CLOSED_END)] + _OPEN_END if pattern.endswith(_CLOSED_END) else pattern


def _detector_for(rule_id: str, table: dict[str, Any]) -> str:
    if "detector" in table:
        return str(table["detector"])
    for prefix, detector in _GITLEAKS_DETECTORS:
        if rule_id.startswith(prefix):
            return detector
    return "vendor_token"


def _alternation(patterns: list[str], where: str) -> Any:
    """One RE2 program for a list of allowlist regexes, compiled for UTF-8 bytes (`found`):
    one call per candidate, not one per regex (each call costs ~1 µs in the binding). A
    flag inside `(?:…)` ends with it."""
    if not patterns:
        return None
    patterns = [viewed_pattern(p) for p in patterns]
    for p in patterns:
        _compile(p, where)  # name the broken one
    return _compile("|".join(f"(?:{p})" for p in patterns).encode(), where)


def found(pattern: Any, text: str) -> bool:
    """Whether a pattern compiled for UTF-8 bytes matches somewhere in `text` (RE2's binding
    on the bytes: not pyre2's `search` on a str, which encodes the text, maps offsets back
    and builds a match object, ~3 µs a call)."""
    data = text.encode("utf-8", "surrogatepass")
    if not _DIRECT:
        return pattern.search(data) is not None
    return bool(pattern._regexp.Match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)


def match_automaton(words: Sequence[str]) -> ahocorasick_rs.AhoCorasick:
    """An automaton for a pass over a whole text (the scan's keywords, document names,
    terms): Rust's aho-corasick, whose prefilters skip ahead (12–15 µs per 2 KB with the
    bench's 12,000 keywords, pyahocorasick's pass 24–32 µs: docs/benchmarks.md). Read it
    with `find_matches_as_indexes(text, overlapping=True)`: every match, overlapping ones
    too, in the order pyahocorasick gave them ((index of the word, start, end))."""
    return ahocorasick_rs.AhoCorasick(words, matchkind=ahocorasick_rs.MatchKind.Standard)


def word_automaton(words: Iterable[str]) -> Any:
    """An Aho-Corasick automaton finding any of `words` in one pass (None for no words):
    pyahocorasick, for the small automata run on one value or a few dozen characters, where
    a call's overhead, not the pass, is the cost (`match_automaton` for whole texts)."""
    words = list(words)
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for w in set(words):
        automaton.add_word(w, w)
    automaton.make_automaton()
    return automaton


def _allowlists(table: dict[str, Any], where: str, glob: tuple[list[str], list[str]]
                ) -> tuple[Any, Any, Any, Any]:
    secret: list[str] = list(glob[0])
    match: list[str] = []
    line: list[str] = []
    stop: list[str] = list(glob[1])
    for allow in table.get("allowlists", ()):
        if allow.get("paths") or allow.get("commits"):
            continue  # about files or commits: a prompt has neither
        target = {"match": match, "line": line}.get(allow.get("regexTarget", ""), secret)
        target.extend(allow.get("regexes", ()))
        stop.extend(s.lower() for s in allow.get("stopwords", ()))
    return (_alternation(secret, where), _alternation(match, where),
            _alternation(line, where), word_automaton(stop))


_WORD_REF = re.compile(r"%\{([A-Za-z_][\w-]*)\}")
# name -> (the regex it stands for, its words: empty for a pattern)
Vocabulary = dict[str, tuple[str, list[str]]]


def vocabulary(data: dict[str, Any], where: str) -> Vocabulary:
    """A rule file's `[words]` (named lists of words) and `[patterns]` (named regex
    fragments), which its rules use as `%{name}` (a lock's name in thirty languages is a
    list, not a line of regex; the shape of a code is written once for the rules that read
    one). A pattern may use the word lists and the patterns before it."""
    out: Vocabulary = {}
    words, patterns = data.get("words", {}), data.get("patterns", {})
    if not isinstance(words, dict) or not isinstance(patterns, dict):
        raise RuleError(f"{where}: `words` and `patterns` must be tables")
    for name, ws in words.items():
        if (not isinstance(ws, list) or not ws
                or not all(isinstance(w, str) and w.strip() for w in ws)):
            raise RuleError(f"{where}: words.{name} must be a list of non-empty strings")
        out[name] = (_alternative(ws), ws)
    for name, pattern in patterns.items():
        if not isinstance(pattern, str) or not pattern:
            raise RuleError(f"{where}: patterns.{name} must be a regex")
        if name in out:
            raise RuleError(f"{where}: patterns.{name} is also a word list")
        out[name] = ("(?:" + _expanded(pattern, out, f"{where}, patterns.{name}") + ")", [])
    return out


_APOSTROPHE = re.compile("['’]")


def _alternative(words: list[str]) -> str:
    """A word list as a regex alternation: longest first (RE2 takes the first alternative
    that matches), literal, blanks as any run of blanks, an apostrophe either way."""
    out = []
    for w in sorted(set(words), key=lambda w: (-len(w), w)):
        parts = [_APOSTROPHE.sub("['’]", re.escape(p)) for p in w.split()]
        out.append(r"[ \t]+".join(parts))
    return "(?:" + "|".join(out) + ")"


def _expanded(pattern: str, vocab: Vocabulary, where: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in vocab:
            raise RuleError(f"{where}: unknown %{{{m.group(1)}}} (the file's [words] and "
                            f"[patterns] have: {', '.join(sorted(vocab)) or 'none'})")
        return vocab[m.group(1)][0]
    return _WORD_REF.sub(one, pattern) if "%{" in pattern else pattern


def keyword_key(keyword: str) -> str:
    """A keyword as the scan's automaton holds it: the normalised view, then folded
    (`Пароль` as `пapoль`, `contraseña` as `contrasena`), as the text it reads."""
    return fold(view_of(keyword).text)


def _fewest_keywords(keywords: list[str], listed: list[str]) -> tuple[list[str], int]:
    """The keywords, and of the words from lists only those holding no other keyword: a
    word that holds one (`alarm code` holds `code`) is found through it, in a window that
    starts earlier by the returned reach (the furthest a held keyword sits inside a word).
    Fewer keywords keep the automaton fast: each one it holds costs every scan a little."""
    folded = [(keyword_key(w), w) for w in dict.fromkeys(listed)]
    kept = sorted({k.lower() for k in keywords} | {f for f, _ in folded}, key=len)
    short: list[str] = []
    reach = 0
    for f in kept:
        inside = [f.find(k) for k in short if k in f]
        if inside:
            reach = max(reach, max(inside))
        else:
            short.append(f)
    lower = {k.lower() for k in keywords}
    return keywords + [w for f, w in folded if f in short and f not in lower], reach


def _with_words(table: dict[str, Any], vocab: Vocabulary, where: str) -> dict[str, Any]:
    """The rule with its `%{name}` references written out: in the regex, `window_needs` and
    the allowlists' regexes as the regex they stand for, as a keyword as the list's words."""
    out = dict(table)
    for key in ("regex", "window_needs"):
        if isinstance(out.get(key), str):
            out[key] = _expanded(out[key], vocab, where)
    keywords: list[str] = []
    listed: list[str] = []
    for k in out.get("keywords", ()):
        m = _WORD_REF.fullmatch(k) if isinstance(k, str) else None
        if m is None:
            keywords.append(k)
        elif vocab.get(m.group(1), ("", []))[1]:
            listed.extend(vocab[m.group(1)][1])
        else:
            raise RuleError(f"{where}: keyword {k} names no word list of the file's [words]")
    out["keywords"], reach = _fewest_keywords(keywords, listed)
    if reach and "before" in out:
        out["before"] = int(out["before"]) + reach
    out["allowlists"] = [{**a, "regexes": [_expanded(r, vocab, where)
                                           for r in a.get("regexes", ())]}
                         for a in out.get("allowlists", ())]
    return out


def rule_from_table(table: dict[str, Any], where: str,
                    glob: tuple[list[str], list[str]] = ([], []),
                    vocab: Vocabulary | None = None) -> SecretRule | None:
    """One rule; None for a rule that only names file paths (a prompt has none).
    `vocab`: the file's word lists and patterns, for `%{name}` in the rule."""
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(f"{where}: every rule needs an `id`")
    where = f"{where}, rule {rule_id}"
    table = _with_words(table, vocab or {}, where)
    if "regex" not in table or table.get("path"):
        return None
    keywords = tuple(k.lower() for k in table.get("keywords", ()))
    secret, match, line, stop = _allowlists(table, where, glob)
    check = table.get("check") or _GITLEAKS_CHECKS.get(rule_id)
    if check is not None and check not in _ALL_CHECKS:
        raise RuleError(f"{where}: unknown check {check!r} (known: {', '.join(_ALL_CHECKS)})")
    group = table.get("secretGroup")
    detector = _detector_for(rule_id, table)
    pattern, lead = _cut_lead(_open_end(viewed_pattern(table["regex"])))
    generic = detector in ("generic_secret", "bearer_token")
    return SecretRule(
        id=rule_id, detector=detector, keywords=keywords,
        pattern=_compile(pattern, where), bytes_pattern=re2.compile(pattern.encode(), _OPTIONS),
        lead=lead, group=int(group) if group else None,
        entropy=float(table.get("entropy", 0.0)), allow_secret=secret,
        allow_match=match, allow_line=line, stopwords=stop,
        priority=int(table.get("priority", 2 if generic else 1)),
        check=CHECKS.get(check) if check else None, match_check=MATCH_CHECKS.get(check or ""),
        span_check=SPAN_CHECKS.get(check or ""),
        replaces=tuple(table.get("replaces", ())),
        before=int(table.get("before") or (64 if lead else _before_for(pattern, keywords))),
        # a rule with no keyword runs once from the start: its window is the whole text
        window=(_WHOLE_TEXT if not keywords else int(
            table.get("window") or _GITLEAKS_WINDOWS.get(rule_id) or _window_for(table["regex"]))),
        boundary=bool(table.get("boundary", False)),
        skip_identifier_names=bool(table.get("skip_identifier_names", False)),
        requires=str(table.get("requires", "")),
        requires_run=int(table.get("requires_run", 0)),
        requires_shape=str(table.get("requires_shape", "")).encode("ascii"),
        window_needs=(_compile(viewed_pattern(table["window_needs"]).encode(), where)
                      if table.get("window_needs") else None),
        exact_keywords=(tuple(table.get("keywords", ()))
                        if table.get("case_sensitive_keywords") else ()),
        examples=tuple(table.get("examples", ())), negatives=tuple(table.get("negatives", ())),
    )


def load_rules(path: Path) -> list[SecretRule]:
    """The rules of one TOML file (ours, gitleaks' or an operator's)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from None
    head = data.get("allowlist", {})
    glob = (list(head.get("regexes", ())), [s.lower() for s in head.get("stopwords", ())])
    vocab = vocabulary(data, str(path))
    out = []
    seen: set[str] = set()
    for table in data.get("rules", ()):
        rule = rule_from_table(table, str(path), glob, vocab)  # (checks the id is a string)
        if table["id"] in seen:  # tests and `replaces` name a rule by its id
            raise RuleError(f"{path}, rule {table['id']}: another rule of this file has that id")
        seen.add(table["id"])
        if rule is not None:
            out.append(rule)
    return out


# gitleaks rules the keyword-local detectors (`secrets.py`) replace: `generic-api-key` reads
# the same `name = value` assignments. Measured on the public corpus (bench/guard_eval.py,
# 2026-12-03): without it held-out recall 0.776 -> 0.774 and negatives flagged 0.073 ->
# 0.040; 2 KB of secret-dense text ~100 µs faster.
REPLACED_BY_LOCAL = frozenset({"generic-api-key"})


def builtin_rules() -> list[SecretRule]:
    """Ours first (they win ties), then gitleaks' (MIT, vendored unchanged)."""
    rules: list[SecretRule] = []
    for name in BUILTIN_FILES:
        rules.extend(load_rules(RULES_DIR / name))
    return [r for r in superseded(rules) if r.id not in REPLACED_BY_LOCAL]


def superseded(rules: list[SecretRule]) -> list[SecretRule]:
    """The rules less those another rule `replaces` (ours replace a few of gitleaks')."""
    gone = {rid for r in rules for rid in r.replaces}
    return [r for r in rules if r.id not in gone] if gone else rules


def _windows(positions: Sequence[int], before: int, after: int, n: int
             ) -> list[tuple[int, int]]:
    """The windows around `positions`, overlapping ones merged, in order."""
    if len(positions) == 1:  # most rules, most texts
        p = positions[0]
        return [(max(0, p - before), min(n, p + after))]
    out: list[tuple[int, int]] = []
    for p in sorted(positions):
        a, b = max(0, p - before), min(n, p + after)
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


Spans = list[tuple[int, int]]  # one match: the whole match's span, then each group's


def _secret_span(spans: Spans, group: int | None) -> tuple[int, int]:
    """The span of `group`, or (None) of the first group that matched something, or of the
    whole match."""
    if group is not None:
        return spans[group]
    for s, e in spans[1:]:
        if s >= 0 and e > s:
            return s, e
    return spans[0]


def byte_spans(pattern: Any, data: bytes) -> list[Spans]:
    """Each match of a pattern compiled for UTF-8 bytes in `data`, left to right, as its
    spans (byte offsets; (-1, -1) for a group that did not take part). A list built in one
    loop: a rule reads every match of its windows, and generators' frames cost ~1 µs a
    window (44 windows in 2 KB of secret-dense text)."""
    if not _DIRECT:
        return [[m.span(g) for g in range(pattern.groups + 1)] for m in pattern.finditer(data)]
    match = pattern._regexp.Match
    out: list[Spans] = []
    pos, end = 0, len(data)
    while True:
        spans = match(_UNANCHORED, data, pos, end)
        if spans[0][0] < 0:
            return out
        out.append(spans)
        if pos == end:
            return out
        if spans[0][1] != pos:
            pos = spans[0][1]
        else:  # past an empty match, by one character
            pos += 1
            while pos < end and 0x80 <= data[pos] < 0xC0:
                pos += 1


def match_spans(rule: SecretRule, window: str) -> list[Spans]:
    """Each match of the rule's pattern in `window`, left to right, as its spans (str
    offsets; (-1, -1) for a group that did not take part)."""
    data = window.encode("utf-8", "surrogatepass")
    found_spans = byte_spans(rule.bytes_pattern, data)
    if len(data) == len(window) or not found_spans:  # ASCII: byte offsets are str offsets
        return found_spans
    out: list[Spans] = []
    base_b = base_c = 0  # a byte offset at or before the next match, and its str offset
    for spans in found_spans:
        # RE2 (UTF-8 mode) ends every span on a character: count the characters
        s0 = spans[0][0]
        base_c += len(data[base_b:s0].translate(None, _CONTINUATION))
        base_b = s0
        out.append([(-1, -1) if x < 0 else (
            base_c + len(data[s0:x].translate(None, _CONTINUATION)),
            base_c + len(data[s0:y].translate(None, _CONTINUATION))) for x, y in spans])
    return out


_LINE_REACH = 256  # characters of a line read on each side of a match


def _line(text: str, start: int, end: int) -> str:
    """The line around a match, at most `_LINE_REACH` characters on each side: a text of one
    long line holding many matches (a flood of keys) would otherwise be read whole for each
    of them (quadratic)."""
    a = max(text.rfind("\n", max(0, start - _LINE_REACH), start) + 1, start - _LINE_REACH, 0)
    b = text.find("\n", end, end + _LINE_REACH)
    return text[a:b if b != -1 else min(len(text), end + _LINE_REACH)]


# Tokens with a fixed format are placeholders when they hold a long run of one character
# (`T00000000/B00000000/XXXXXXXX`) or a template word; a random 20-character base-62 token
# holds a run of six with a probability under 1e-8. Passwords and hashes are exempt: a weak
# real password looks like a placeholder, and their rules list template syntax themselves.
# (substring tests, not a regex search: this runs for every candidate a rule finds)
_MASKS = ("xxxxxx", "****", "••••", "####")  # in the lower-cased value
# Words a person writes in place of a value (`YOUR_API_KEY`, `changeme`, `INSERIRE_QUI`), in
# the lower-cased value: the placeholder tests of tokens (below) and of passwords (secrets.py)
# share them; each adds its own.
TEMPLATE_WORDS = ("example", "your_", "your-", "changeme", "placeholder", "redacted", "dummy",
                  "insert", "_aqui", "inserire_", "_qui_")
_TEMPLATE_WORDS = (*TEMPLATE_WORDS, "<your", "replace_", "sample",
                   # (Portuguese, Spanish, French: `SUA_CHAVE_AQUI`, `TU_CLAVE`, `VOTRE_CLE`)
                   "sua_chave", "su_clave", "tu_clave", "votre_cle", "tu_api", "su_api",
                   "tu_token", "su_token",
                   # (`your` in Polish, French, German, Dutch, Russian; five letters at least, or
                   # a random token holds them: `…FTUO_3Fj…`): `TWOJ_TOKEN_OAUTH`, `DEIN_API_KEY`)
                   "twoj_", "twój_", "votre_", "dein_", "jouw_", "ваш_")
# A template reference written whole inside a value (`pre${ENV}`, `{{ vault.pw }}`, `<pass>`):
# a `${` or `{{` that opens no well-formed reference is part of a password
# (`m{{h}o)p${e]nob(…`), not a template; a command's substitution starts with the command's
# name (`$(whoami)`, `$(cat /run/secrets/pw)`; not a random key's `$(u&4+qc)`).
_TEMPLATE_REF = re.compile(
    r"\$\{[\w.:/?=-]{1,64}\}|\{\{[^{}]{1,64}\}\}|\$\([A-Za-z_][\w.-]{0,40}(?:[ \t][^()]{0,60})?\)"
    r"|<[\w .:/-]{1,40}>"
    r"|\$\{[\w.]{1,64}$|\{\{[\w. |]{1,64}$|<[^\W\d][\w -]{0,39}$"  # (not a heart: `I<3Sentosa52`)
    r"|\$__(?:file|env|vault)\{[^{}]{1,128}\}")  # (Grafana's: `$__file{/etc/…/bind.pass}`)


def template_ref(value: str) -> bool:
    """`value` holds a template reference (`${ENV}`, `{{ x }}`, `$(cmd)`, `<name>`,
    `$__file{…}`)."""
    return ("$" in value or "{" in value or "<" in value) and (
        _TEMPLATE_REF.search(value) is not None)

# Six characters in alphabet or digit order (`abcdef`, `123456`, `654321`): a random
# 40-character base-62 token holds one with a probability near 2e-8; sample tokens in
# documentation and tests are full of them (`sk-ant-api03-abc123xyz…`, `sqp_abcdef1234…`).
# The same in case pairs (`aAbBcCdD`, as lower case `aabbccdd`).
_ORDERED = [seq[i:i + 6] for seq in ("abcdefghijklmnopqrstuvwxyz", "0123456789")
            for i in range(len(seq) - 5)] + [
    "".join(c + c for c in "abcdefghijklmnopqrstuvwxyz"[i:i + 4]) for i in range(23)]
# The substring tests of `placeholder_token` in one pass over the lower-cased value: a mask,
# a template word or an ordered run says placeholder; a run of six of one character (`0`-`9`,
# `x`, `a`, `z`, `_`, `-`, in either case) says so when the value's entropy is low.
_RUN = "run"
# values every tutorial prints: the TOTP seed of Google Authenticator's wiki and the RFC's
# examples (`otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP`)
_DOC_SAMPLES = ("jbswy3dpehpk3pxp",)
_PLACEHOLDER_PARTS = ahocorasick.Automaton()
for _word in {c * 6 for c in "0123456789xaz_-"} | {"****", "...."}:
    _PLACEHOLDER_PARTS.add_word(_word, _RUN)
for _word in (*_TEMPLATE_WORDS, *_ORDERED, *(w[::-1] for w in _ORDERED), *_MASKS,
              *_DOC_SAMPLES):
    _PLACEHOLDER_PARTS.add_word(_word, "word")  # (a mask is also a run: it wins)
_PLACEHOLDER_PARTS.make_automaton()
_FREE_FORM = frozenset({"password", "url_password", "password_hash", "private_key"})
_MASK_CHARS = "*•●"
# a value a CI log or a person masked: GitLab's `[MASKED]`, `[REDACTED]`, or four mask
# characters in a row inside it (`T**********3`, `sk-****abcd`)
_MASKED_VALUE = re.compile(r"(?i)\[(?:masked|redacted|hidden|filtered|removed)\]|.*[*•●]{4}.*")
# a format's field named in its brackets (`postgresql://[user[:password]@][host]`)
_BRACKETED_NAME = re.compile(r"(?i)\[?(?:password|passwd|pass|pwd|secret|token|key)\]+")


# Hex digits hold 4 bits at most: a random hex secret falls under 3.5 bits 18% of the time
# at 32 digits and 5% at 40 (20,000 draws each); under 3.2, 0.4% and 0.005%. A rule's (or
# a keyword reader's) higher floor is lowered to this for a value of hex digits only.
HEX_ENTROPY = 3.2
_HEX_VALUE = re.compile(r"[0-9a-fA-F]+")


def long_hex(value: str) -> bool:
    """32 hex digits or more: a key or token written in hex."""
    return len(value) >= 32 and _HEX_VALUE.fullmatch(value) is not None


def entropy_floor(value: str, floor: float) -> float:
    """`floor`, or `HEX_ENTROPY` when that is lower and the value is hex digits only."""
    return min(floor, HEX_ENTROPY) if _HEX_VALUE.fullmatch(value) else floor


def placeholder_token(value: str) -> bool:
    """A token-shaped value that is a placeholder or a documentation sample."""
    run = False
    for _, kind in _PLACEHOLDER_PARTS.iter(value.lower()):
        if kind != _RUN:  # `XXXXXX`, `******`: a person hid a value; `your_`, `abcdef`
            return True
        run = True
    if run and entropy(value) < 3.0:  # formats with fixed `AAAA` runs stay
        return True
    if template_ref(value):
        return True
    # written in words after its prefix (`sk-ant-api03-NotARealKeyButLooksLikeOne`,
    # `sk_live_YourSecretKeyHere`): a person wrote it; a random body is not made of words
    body = value[max(value.rfind("-"), value.rfind("_")) + 1:] if "\n" not in value else (
        _PREFIX_PART.sub("", value))
    return (len(body) >= 12 and body.isalnum() and _THREE_WORDS.search(body) is not None
            and wordish(body))


# a token format's prefix: the parts of a value up to its last `-` or `_` (`sk-ant-api03-`)
_PREFIX_PART = re.compile(r"^.*[-_]")
# three capitalised words in a row (`ButLooksLike`): what a body written in words holds, and
# 2% of random 30-character tokens of letters and digits (so `wordish` runs on few of them);
# written out, not as `(?:[A-Z][a-z]{2,}){3}`, which `re` searches at half the speed (this
# runs for every token a rule finds)
_THREE_WORDS = re.compile(r"[A-Z][a-z][a-z]+[A-Z][a-z][a-z]+[A-Z][a-z][a-z]")


def _allowed(rule: SecretRule, value: str, window: str, s0: int, e0: int) -> bool:
    """Whether a candidate `value` is let through; `window[s0:e0]` is the whole match."""
    if rule.detector not in _FREE_FORM and placeholder_token(value):
        return True
    if not value.strip(_MASK_CHARS) or _MASKED_VALUE.fullmatch(value) is not None:
        return True  # `password=********` in a log, GitLab's `-p [MASKED]`, `T**********3`:
        # the value was masked (any rule's)
    if value.startswith(("@/", "@~/", "@./")) or _BRACKETED_NAME.fullmatch(value):
        return True  # a file the value is read from (`password=@/root/pw.txt`); a format's
        # field name in its brackets (`postgresql://[user[:password]@][host]`)
    if value.startswith("eyJ") and public_jwt(value):
        return True  # Supabase's `anon` key, jwt.io's sample: whatever rule read it
    if rule.entropy and below_entropy(value, rule.entropy) and entropy(value) < entropy_floor(
            value, rule.entropy):  # (the hex floor is lower: only a value under the rule's)
        return True
    if sample_basic(value):
        return True  # the documentation's `Authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ=`
    if rule.check is not None and not rule.check(value):
        return True
    if rule.match_check is not None and not rule.match_check(value, window[s0:e0]):
        return True
    if rule.allow_secret is not None and found(rule.allow_secret, value):
        return True
    if rule.allow_match is not None:
        if rule.lead:  # what the cut lead-in would have matched
            stop = max(0, s0 - 50)
            while s0 > stop and (window[s0 - 1].isalnum() or window[s0 - 1] in "_.-"):
                s0 -= 1
        if found(rule.allow_match, window[s0:e0]):
            return True
    if rule.allow_line is not None and found(rule.allow_line, _line(window, s0, e0)):
        return True
    if rule.stopwords is not None:
        return next(rule.stopwords.iter(value.lower()), None) is not None
    return False


# For rules that read a value whatever its name (`skip_identifier_names = true`): the name's
# last word says the value identifies or locates something (`BUILD_ID`, `commitSha`, `"id":`,
# `IMAGE_DIGEST`, `CA_CERT`, `callbackUrl`), or a word of it says it is public
# (`NEXT_PUBLIC_…`, built into the pages a browser loads). Trailing digits do not count
# (`sha256`).
_ID_NAME_WORDS = frozenset((
    "id", "ids", "sha", "hash", "digest", "checksum", "commit", "etag", "version", "uuid",
    "uid", "guid", "url", "uri", "path", "file", "name", "user", "username", "email",
    "host", "region", "bucket", "ref", "tag", "branch", "image", "build", "run", "trace",
    "request", "fingerprint", "thumbprint", "serial", "account", "tenant", "project", "org",
    "device", "workspace", "container", "instance", "object", "blob", "keyid", "cert",
    "certificate", "crt", "timestamp", "kid",  # (a JWK's key id)
    "x5t",  # (a JWK's certificate thumbprint)
    "location",  # (an HTTP response's `location`: where a resource now is)
))
# Words of an anti-forgery token's name (`csrf_token`, Rails' `authenticity_token`): a token
# a page hands to every browser, not a credential (the keyword readers skip it too).
ANTI_FORGERY_WORDS = frozenset(("csrf", "xsrf", "authenticity"))
# ... and the names of such fields said whole (Laravel's `<input type="hidden" name="_token">`)
ANTI_FORGERY_FIELDS = frozenset(("_token",))
# and any word that says a paging cursor or a request marker (`NextContinuationToken`,
# `NextMarker`, `ClientRequestToken`), or an anti-forgery token (above; Django's
# `csrfmiddlewaretoken`), or a CAPTCHA's site key (`data-sitekey`: in the page by design)
_NAME_WORDS_ANYWHERE = frozenset(("public", "pub", "sitekey", "continuation", "pagination",
                                  "page", "cursor", "marker", "idempotency", "request",
                                  "csrfmiddlewaretoken")) | ANTI_FORGERY_WORDS
# ... unless the name says what it opens or signs: a session's id is its key (`session_id`,
# `sid`), a CSRF secret signs the tokens (`csrf_secret`)
_CREDENTIAL_NAME_WORDS = frozenset(("session", "sess", "sid", "secret", "password", "passwd",
                                    "auth", "credential", "credentials", "cookie"))
# An HTML attribute pair names the value elsewhere in its tag: `name="…" value="…"`,
# `<meta name="…" content="…">`.
_TAG_NAME = re.compile(r"""\b(?:name|property|id)[ \t]*=[ \t]*["']?([\w.:-]{1,64})""")
_NAME_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_QUOTES = "\"'`"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _name_before(text: str, start: int) -> str:
    """The name assigned the value that starts at `start`: `NAME=…`, `"name": "…"`,
    `name: '…'` (read backwards: a quote, blanks, `:` or `=`, blanks, a quote, the name of
    at most 64 characters); "" when there is none."""
    i = start
    if i > 0 and text[i - 1] in _QUOTES:
        i -= 1
        if text[i - 2:i] == "W/":  # a weak ETag: `etag: W/"…"`
            i -= 2
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    if i == 0 or text[i - 1] not in ":=":
        return ""
    i -= 1
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    if i > 0 and text[i - 1] in _QUOTES:
        i -= 1
    end = i
    while i > 0 and end - i < 64 and text[i - 1] in _NAME_CHARS:
        i -= 1
    return text[i:end]


_JWK_PUBLIC = frozenset(("x", "y", "n", "e"))  # (an EC point, an RSA modulus and exponent)


def identifier_name(text: str, start: int) -> bool:
    """Whether the name assigned the value that starts at `start` (`NAME=…`, `"name": "…"`,
    `name: '…'`) says it is an identifier, a paging cursor or public data, not a secret."""
    name = _name_before(text, start)
    if name in _JWK_PUBLIC and "kty" in text[max(0, start - 400):start]:
        return True  # a JSON Web Key's public members; its `"d"` is the private key
    if name.lower() in ("value", "content"):
        tag = text[max(0, text.rfind("<", max(0, start - 200), start)):start]
        names = _TAG_NAME.findall(tag) if tag.startswith("<") else []
        name = names[-1] if names else name
        if name in ANTI_FORGERY_FIELDS:
            return True  # Laravel's anti-forgery field: `<input type="hidden" name="_token" …>`
    words = [w.lower().rstrip(_DIGIT_CHARS) or w for part in re.split(r"[_.:-]", name)
             for w in _NAME_WORD.findall(part)]
    if not words or "public" in words or "pub" in words or "publishable" in words:
        return bool(words)  # `NEXT_PUBLIC_…`: built into the pages a browser loads
    if not _CREDENTIAL_NAME_WORDS.isdisjoint(words):
        return False  # `session_id`, `csrf_secret` (the key that signs the tokens)
    return (words[-1] in _ID_NAME_WORDS or not _NAME_WORDS_ANYWHERE.isdisjoint(words)
            or words[-2:] == ["site", "key"])  # `siteKey`: reCAPTCHA's, in every page


class RuleSet:
    """Which of some rules' patterns match anywhere in a text, in one pass of RE2's `Set`
    over it: the rules with no keyword read the whole text each (~6 µs a rule per 2 KB), and
    most texts hold a match of none of them (one pass, ~6 µs for five). A rule the set says
    does not match cannot match in any window of the text. An empty pattern is the set's
    first: a pass that failed (RE2 out of memory) reports nothing, and then every rule runs."""

    def __init__(self, rules: Sequence[SecretRule]) -> None:
        self._set = re2._re2.Set(_UNANCHORED, _OPTIONS)
        self._set.Add(b"")
        for rule in rules:
            pattern = rule.bytes_pattern.pattern
            self._set.Add(pattern if isinstance(pattern, bytes) else pattern.encode())
        if not self._set.Compile():
            raise RuleError("the rules with no keyword do not compile as one RE2 set")

    def matching(self, text: str) -> frozenset[int] | None:
        """The positions (in the rules given) of those whose pattern matches somewhere in
        `text`; None when the pass failed."""
        found = self._set.Match(text.encode("utf-8", "surrogatepass"))
        if 0 not in found:
            return None
        return frozenset(k - 1 for k in found if k)


def run_rule(rule: SecretRule, text: str, positions: Sequence[int], out: list[Hit]) -> int:
    """Append the rule's findings in the windows around `positions`; returns the number of
    characters RE2 read (the scan's counted work)."""
    work = 0
    n = len(text)
    if rule.exact_keywords:
        positions = [p for p in positions if text.startswith(rule.exact_keywords, p)]
    for a, b in _windows(positions, rule.before, rule.window, n):
        window = text[a:b]
        if rule.window_needs is not None and not found(rule.window_needs, window):
            continue
        work += b - a
        for spans in match_spans(rule, window):
            s, e = _secret_span(spans, rule.group)
            if s < 0 or e <= s:
                continue
            if rule.span_check is not None:
                inner = rule.span_check(window[s:e])
                if inner is None:
                    continue
                s, e = s + inner[0], s + inner[1]
            s0, e0 = spans[0]
            if rule.boundary:
                if (s0 > 0 and window[s0 - 1].isalnum()) or (
                        e0 < len(window) and window[e0].isalnum()):
                    continue
                if (s0 == 0 and a > 0 and text[a - 1].isalnum()) or (
                        e0 == len(window) and b < n and text[b].isalnum()):
                    continue
            if _allowed(rule, window[s:e], window, s0, e0):
                continue
            if rule.skip_identifier_names and identifier_name(text, a + s):
                continue
            out.append((a + s, a + e, rule.detector, rule.priority))
    return work


def resolve(hits: list[Hit]) -> list[tuple[int, int, str]]:
    """Non-overlapping findings, deterministic: the best priority wins, then the longer
    span, then the earlier one (hits are not empty: every reader and rule skips an empty
    value). O(n log n) in the number of hits. A hit can only lose to
    hits it is chained to by overlaps, so the hits are cut into such clusters in one sweep
    by start: most clusters hold one hit (kept as it is), the rest are settled alone."""
    out: list[tuple[int, int, str]] = []
    cluster: list[Hit] = []
    reach = 0  # the end of the current cluster's union (one stretch: it is chained)
    for h in sorted(set(hits)):
        if cluster and h[0] >= reach:
            out.extend(_settled(cluster))
            cluster = []
        reach = max(reach, h[1]) if cluster else h[1]
        cluster.append(h)
    if cluster:
        out.extend(_settled(cluster))
    return out


def _settled(cluster: list[Hit]) -> list[tuple[int, int, str]]:
    """`resolve` on hits chained by overlaps, sorted by start."""
    if len(cluster) == 1:
        return [cluster[0][:3]]
    chosen_starts: list[int] = []
    chosen: list[tuple[int, int, str]] = []
    for s, e, det, _ in sorted(cluster, key=lambda h: (h[3], h[0] - h[1], h[0], h[2])):
        i = bisect.bisect_right(chosen_starts, s)
        if i > 0 and chosen[i - 1][1] > s:
            continue
        if i < len(chosen) and chosen[i][0] < e:
            continue
        chosen_starts.insert(i, s)
        chosen.insert(i, (s, e, det))
    return chosen

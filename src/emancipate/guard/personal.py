"""Personal data: e-mail, phone, IBAN, payment card, US SSN, French NIR/SIREN/SIRET/VAT, IP.

Validation is delegated to the libraries of the field: `phonenumbers` (Google's
libphonenumber metadata) for phone numbers, `python-stdnum` for IBAN (ISO 13616 mod 97 and
per-country lengths), Luhn, NIR (key), SIREN/SIRET, French VAT and US SSN (SSA rules), and
the standard library's `ipaddress`. The expensive part is finding candidates cheaply:

* the text is mapped once (`bytes.translate`, a C table lookup) to a *shape* where every
  digit is `0`, every ASCII letter `A`/`a`, the separators of numbers are kept and anything
  else is `#`; runs of digits and separators are then found by a regex whose literal first
  character lets `re` skip through prose at memchr speed;
* IBANs and VAT numbers start where the shape reads `AA00`;
* e-mail addresses are looked for only around an `@`, IPv6 addresses only around `:`.
"""

from __future__ import annotations

import ipaddress
import re

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.fr import nir as _nir
from stdnum.fr import siren as _siren
from stdnum.fr import siret as _siret
from stdnum.fr import tva as _tva
from stdnum.us import ssn as _ssn

Hit = tuple[int, int, str]

_SHAPE = bytearray(b"#" * 256)
for _c in b"0123456789":
    _SHAPE[_c] = ord("0")
for _c in range(ord("A"), ord("Z") + 1):
    _SHAPE[_c] = ord("A")
for _c in range(ord("a"), ord("z") + 1):
    _SHAPE[_c] = ord("a")
_SHAPE[ord("_")] = ord("a")
for _c in b" .-()+":
    _SHAPE[_c] = _c
SHAPE_TABLE = bytes(_SHAPE)

_RUN = re.compile(rb"0[0 .\-()]*0")  # digits with number separators inside
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})


def shape_of(text: str) -> bytes:
    """One byte per character (so offsets match the text's) describing its kind."""
    if text.isascii():
        return text.encode("ascii").translate(SHAPE_TABLE)
    if "\u00a0" in text or "\u202f" in text or "\u2009" in text:
        text = text.translate(_SPACES)  # French thousands and phone separators
    return text.encode("ascii", "replace").translate(SHAPE_TABLE)


# --- e-mail ----------------------------------------------------------------------------------

_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = re.compile(r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))"
                     r"(?![A-Za-z0-9-])")
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# file extensions (icon@2x.png) and private names (admin@gitlab.corp.internal is an SSH
# login, not a mailbox)
_NOT_TLD = _words(
    "png jpg jpeg gif svg webp bmp ico css js mjs ts tsx jsx py rb go rs java json yaml "
    "yml toml lock md txt html htm xml map min zip gz tar internal local localdomain "
    "localhost lan corp home intranet private"
)


def _emails(text: str, out: list[Hit]) -> None:
    i = text.find("@")
    while i != -1:
        start = i
        while start > 0 and i - start < 64 and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        while start < i and text[start] == ".":
            start += 1
        m = _DOMAIN.match(text, i)
        nxt = i + 1
        if m and start < i:
            before = text[start - 1] if start else ""
            local = text[start:i]
            if (before not in (":", "/") and m.group(2).lower() not in _NOT_TLD
                    and local.lower() != "git" and not local.endswith(".")):
                out.append((start, m.end(1), "email"))
                nxt = m.end(1)
        i = text.find("@", nxt)


# --- numbers ---------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(_OCTET + r"(?:\." + _OCTET + "){3}")
_SSN_FMT = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
_CARD_FMT = re.compile(r"\d{4}([ -]?)\d{4,6}(?:\1\d{4,5}){1,3}|\d{13,19}")
_SIRET_FMT = re.compile(r"\d{3} ?\d{3} ?\d{3} ?\d{5}")
_SIREN_FMT = re.compile(r"\d{3} ?\d{3} ?\d{3}")
_NIR_FMT = re.compile(r"[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}")
_NIR_CORSICA = re.compile(
    r"(?<![\w])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?2[AB] ?\d{3} ?\d{3} ?\d{2}(?![\w])")
_VERSION_BEFORE = re.compile(r"\b(?:v|version|release|build|ver\.?)\s*$", re.I)
_COMPANY_CONTEXT = ("siren", "siret", "rcs", "immatricul", "registre du commerce",
                    "entreprise", "societe", "société", "company number")
_SSN_CONTEXT = ("ssn", "social security", "social-security")


def _card_brand_ok(d: str) -> bool:
    """Issuer prefix and length of the card networks in use (a Luhn check alone accepts
    one random number in ten)."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    two, four = int(d[:2]), int(d[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if d.startswith("6011") or d.startswith("65") or 644 <= int(d[:3]) <= 649:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if 300 <= int(d[:3]) <= 305 or two in (36, 38, 39):
        return 14 <= n <= 19
    if two == 62 or two == 50 or 56 <= two <= 69:
        return 12 <= n <= 19
    return False


def _context(text: str, start: int, words: tuple[str, ...], span: int = 48) -> bool:
    before = text[max(0, start - span):start].lower()
    return any(w in before for w in words)


_NONDIGIT = re.compile(r"\D+")
_DIGIT_GROUPS = re.compile(r"\d+")
_DATE = re.compile(r"(?:19|20)\d\d[-./](?:0[1-9]|1[0-2])[-./]\d\d|\d\d[-./]\d\d[-./](?:19|20)\d\d")
_NANP_GROUPS = frozenset({(3, 3, 4), (10,), (1, 3, 3, 4), (11,), (3, 7)})


class NumberClassifier:
    """Classifies one run of digits and separators into at most one personal-data kind.

    Cheap structural checks come first (digit count, national trunk prefix, grouping) so
    that libphonenumber, the costly validator, only sees plausible phone numbers."""

    def __init__(self, regions: list[str], enabled: frozenset[str]) -> None:
        self.enabled = enabled
        self.regions: list[tuple[str, str]] = []
        for region in regions:
            meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if meta is None:
                continue
            if meta.national_prefix == "0":
                rule = "zero"  # written nationally, these numbers start with 0
            elif meta.country_code == 1:
                rule = "nanp"
            else:
                rule = "any"
            self.regions.append((region, rule))

    def phone(self, s: str, digits: str) -> bool:
        nd = len(digits)
        try:
            if s[0] == "+" or (s.startswith("00") and digits.startswith("00")):
                if not 8 <= nd - (2 if s[0] != "+" else 0) <= 15:
                    return False
                num = phonenumbers.parse("+" + s[2:] if s[0] != "+" else s, None)
                return phonenumbers.is_valid_number(num)
            if not 9 <= nd <= 11:
                return False
            for region, rule in self.regions:
                if rule == "zero" and digits[0] != "0":
                    continue
                if rule == "nanp":
                    groups = tuple(len(g) for g in _DIGIT_GROUPS.findall(s))
                    national = digits[1:] if nd == 11 else digits
                    if (groups not in _NANP_GROUPS or (nd == 11 and digits[0] != "1")
                            or nd == 9 or national[0] in "01" or national[3] in "01"):
                        continue
                if phonenumbers.is_valid_number(phonenumbers.parse(s, region)):
                    return True
        except phonenumbers.NumberParseException:
            return False
        return False

    def card(self, s: str, digits: str) -> bool:
        return ("card" in self.enabled and 13 <= len(digits) <= 19 and s[0] != "+"
                and _CARD_FMT.fullmatch(s) is not None and _card_brand_ok(digits)
                and _luhn.is_valid(digits))

    def classify(self, text: str, start: int, end: int) -> str | None:
        s = text[start:end]
        if not s.isascii():
            s = s.translate(_SPACES)
        digits = _NONDIGIT.sub("", s)
        nd = len(digits)
        if nd < 4:
            return None
        en = self.enabled
        dots = s.count(".")
        if dots == 3 and "ipv4" in en and _IPV4.fullmatch(s):
            if _VERSION_BEFORE.search(text, max(0, start - 12), start):
                return None
            ip = ipaddress.IPv4Address(s)
            if ip.is_loopback or ip.is_unspecified or s.startswith("255."):
                return None
            return "ipv4"
        if (dots and nd < 8) or nd < 8 or _DATE.match(s):
            return None  # decimals, dates, versions, short numbers
        if nd == 9:
            if ("us_ssn" in en and (_SSN_FMT.fullmatch(s) or _context(text, start, _SSN_CONTEXT))
                    and _ssn.is_valid(s)):
                return "us_ssn"
            if ("fr_siren" in en and _SIREN_FMT.fullmatch(s) and _siren.is_valid(digits)
                    and _context(text, start, _COMPANY_CONTEXT)):
                return "fr_siren"
        elif (nd == 15 and "fr_nir" in en and _NIR_FMT.fullmatch(s)
              and int(digits[13:]) == 97 - int(digits[:13]) % 97 and _nir.is_valid(s)):
            return "fr_nir"
        elif (nd == 14 and "fr_siret" in en and _SIRET_FMT.fullmatch(s)
              and _siret.is_valid(digits)
              and (" " in s or _context(text, start, _COMPANY_CONTEXT))):
            return "fr_siret"
        if 13 <= nd <= 19 and self.card(s, digits):
            return "card"
        if "phone" in en and nd <= 15 and self.phone(s, digits):
            return "phone"
        return None


def _extend_left(text: str, start: int) -> int:
    """Include a leading `+` or `(` of a phone number."""
    while start > 0 and text[start - 1] in "+(":
        start -= 1
    return start


def _trim(text: str, start: int, end: int) -> int:
    """Drop an unbalanced closing parenthesis at the end of a run."""
    s = text[start:end]
    while s.endswith(")") and s.count("(") < s.count(")"):
        s = s[:-1]
        end -= 1
    return end


def _numbers(text: str, shape: bytes, clf: NumberClassifier, taken: list[tuple[int, int]],
             out: list[Hit]) -> None:
    n = len(text)
    for m in _RUN.finditer(shape):
        start, end = m.span()
        if any(s <= start < e or s < end <= e for s, e in taken):
            continue
        # a run glued to letters is part of a word or an identifier (hashes, ids): skip
        if (start > 0 and shape[start - 1] in b"Aa") or (end < n and shape[end] in b"Aa"):
            continue
        start = _extend_left(text, start)
        end = _trim(text, start, end)
        kind = clf.classify(text, start, end)
        if kind is not None:
            out.append((start, end, kind))
            continue
        # a card number followed by more digits (CVV, expiry): its leading groups
        if "card" in clf.enabled and end - start > 16:
            groups = [g.span() for g in _DIGIT_GROUPS.finditer(text, start, end)]
            for j in range(len(groups) - 1, 1, -1):
                e = groups[j - 1][1]
                window = text[start:e]
                digits = _NONDIGIT.sub("", window)
                if 13 <= len(digits) <= 19 and clf.card(window, digits):
                    out.append((start, e, "card"))
                    break


_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,34}")
_FR_VAT = re.compile(r"FR ?\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)")


def _fr_vat_spaced(text: str, shape: bytes, out: list[Hit]) -> None:
    i = text.find("FR ")
    while i != -1:
        if shape.startswith(b"AA 00", i) and (i == 0 or shape[i - 1] not in b"Aa0"):
            m = _FR_VAT.match(text, i)
            if m and _tva.is_valid(m.group()):
                out.append((i, m.end(), "fr_vat"))
        i = text.find("FR ", i + 3)


def _ibans(text: str, shape: bytes, enabled: frozenset[str], out: list[Hit]) -> None:
    i = shape.find(b"AA00")
    while i != -1:
        nxt = i + 4
        if i == 0 or shape[i - 1] not in b"Aa0":
            m = _IBAN_HEAD.match(text, i)
            if m and "iban" in enabled:
                end = _iban_end(text, i, m.end())
                if end:
                    out.append((i, end, "iban"))
                    nxt = end
                    i = shape.find(b"AA00", nxt)
                    continue
            if "fr_vat" in enabled and text.startswith("FR", i):
                mv = _FR_VAT.match(text, i)
                if mv and _tva.is_valid(mv.group()):
                    out.append((i, mv.end(), "fr_vat"))
                    nxt = mv.end()
        i = shape.find(b"AA00", nxt)


def _iban_end(text: str, start: int, end: int) -> int:
    """The end of the longest valid IBAN at `start` (a greedy match may take in the next
    word), or 0. The ISO 7064 mod-97 remainder of every prefix is computed in one pass, so
    python-stdnum (country lengths and formats) only checks lengths whose checksum holds."""
    chars = [(k, ch) for k, ch in enumerate(text[start:end], start) if ch != " "]
    head = "".join(ch for _, ch in chars[:4])
    try:
        tail = int("".join(str(int(ch, 36)) for ch in head))  # country letters + check
    except ValueError:
        return 0
    remainders: list[int] = []
    r = 0
    for _, ch in chars[4:]:
        v = int(ch, 36)
        r = (r * (100 if v > 9 else 10) + v) % 97
        remainders.append(r)
    for length in range(min(34, len(chars)), 14, -1):
        if (remainders[length - 5] * 1_000_000 + tail) % 97 != 1:
            continue
        compact = "".join(ch for _, ch in chars[:length])
        if _iban.is_valid(compact):
            return chars[length - 1][0] + 1
    return 0


_HEX = frozenset("0123456789abcdefABCDEF:.")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def _ipv6(text: str, out: list[Hit]) -> None:
    i = text.find(":")
    n = len(text)
    while i != -1:
        start = i
        while start > 0 and i - start < 40 and text[start - 1] in _HEX:
            start -= 1
        m = _IPV6.match(text, start)
        nxt = i + 1
        if m:
            s, e = m.span()
            cand = text[s:e].rstrip(".")
            e = s + len(cand)
            ok_edges = (s == 0 or not text[s - 1].isalnum()) and (e >= n or not text[e].isalnum())
            groups = [g for g in cand.split(":") if g]
            if (ok_edges and len(groups) >= 3 and any(ch.isdigit() for ch in cand)
                    and cand.count(":") >= 2):
                try:
                    ip = ipaddress.IPv6Address(cand)
                except ValueError:
                    ip = None
                if ip is not None and not ip.is_loopback and not ip.is_unspecified:
                    out.append((s, e, "ipv6"))
            nxt = max(nxt, e)
        i = text.find(":", nxt)


def scan_personal(text: str, shape: bytes, clf: NumberClassifier, out: list[Hit]) -> None:
    """All personal-data findings of one text."""
    en = clf.enabled
    if "@" in text and "email" in en:
        _emails(text, out)
    found: list[Hit] = []
    if "iban" in en or "fr_vat" in en:
        _ibans(text, shape, en, found)
    if "fr_vat" in en and "FR " in text:
        _fr_vat_spaced(text, shape, found)
    if "fr_nir" in en and ("2A" in text or "2B" in text):
        for m in _NIR_CORSICA.finditer(text):
            if _nir.is_valid(m.group()):
                found.append((m.start(), m.end(), "fr_nir"))
    # Every number kind has at least 4 digits (`classify` returns None below that, a card
    # needs 13), and a run's digits are ASCII digits, the only characters `shape` marks `0`:
    # with fewer than 4 of them in the whole text, `_numbers` cannot find anything. Most
    # prose has none or a few: skipping it saved ~6 µs of CPU per request in the overhead
    # bench (A/B), more than its hot cost (~2 µs) since its code is cold between requests.
    if shape.count(b"0") >= 4:
        taken = [(s, e) for s, e, _ in found]
        taken.extend((s, e) for s, e, _ in out)
        _numbers(text, shape, clf, taken, found)
    if "ipv6" in en and text.count(":") >= 2:
        _ipv6(text, found)
    out.extend(found)

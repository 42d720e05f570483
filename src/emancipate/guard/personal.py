"""Personal data: e-mail, phone, IBAN, payment card, US SSN and ITIN, passport and
driving-licence numbers, French NIR/SIREN/SIRET/VAT, IP.

Validation uses the libraries of the field: `phonenumbers` (Google's libphonenumber
metadata, its patterns compiled here once), `python-stdnum` for IBAN (ISO 13616 mod 97, its
registry of per-country lengths and structures, national checks), NIR (key), SIREN/SIRET,
French VAT, US SSN (SSA rules) and ITIN, and the standard library's `ipaddress`. The
expensive part is finding candidates cheaply:

* the text is mapped once (`bytes.translate`, a C table lookup) to a *shape* where every
  digit is `0`, every ASCII letter `A`/`a`, the separators of numbers are kept and anything
  else is `#`; runs of digits and separators are then found by a regex whose literal first
  character lets `re` skip through prose at memchr speed;
* IBANs and VAT numbers start where the shape reads `AA00`;
* e-mail addresses are looked for only around an `@`, IPv6 addresses only around `:`;
  passport and licence numbers only right after the document's name.

Worst case: linear in the text, whatever it holds (issue 17). A run is cut into *segments*
at separators no number uses inside it (two spaces, ` - `, `. `); a segment of up to 40
characters is one candidate, a longer one is a table of numbers where only card windows
(at most 6 groups, 19 digits) are tried at each group. An IBAN start has one candidate (the
country fixes the length). Cheap checks (digit count, possible lengths, grouping, issuer,
Luhn, mod 97) run before any library, found spans are marked in a bytearray so overlap
tests cost O(1), and library calls that reject are budgeted per scan (`ScanWork`).
`bench/guard_adversarial.py` measures it (docs/benchmarks.md).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from stdnum import numdb
from stdnum.be import iban as _be_iban
from stdnum.es import ccc as _es_ccc
from stdnum.fr import nir as _nir
from stdnum.fr import siren as _siren
from stdnum.fr import siret as _siret
from stdnum.fr import tva as _tva
from stdnum.no import kontonr as _no_kontonr
from stdnum.us import itin as _itin
from stdnum.us import ssn as _ssn
from stdnum.util import NumberValidationModule, get_cc_module

from emancipate.guard.engine import match_automaton, word_automaton
from emancipate.guard.normalize import viewed_words
from emancipate.guard.text import replace_each

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

_SPACE_CHARS = "\u00a0\u202f\u2009\u2007"  # no-break, narrow no-break, thin, figure
_SPACES = str.maketrans(dict.fromkeys(_SPACE_CHARS, " "))


def shape_of(text: str) -> bytes:
    """One byte per character (so offsets match the text's) describing its kind."""
    if text.isascii():
        return text.encode("ascii").translate(SHAPE_TABLE)
    if "\u00a0" in text or "\u202f" in text or "\u2009" in text:
        text = replace_each(text, _SPACE_CHARS, " ")  # French thousands, phone separators
    return text.encode("ascii", "replace").translate(SHAPE_TABLE)


# Arabic-Indic, Persian, Devanagari and Bengali digits, read as ASCII digits by the number
# readers (one character for one, so offsets do not move): `رقمي ٠١٢١٣٤٥٢٨٢٤`,
# `با شماره ۰۹۱۵۷۲۱۷۲۸۷ تماس بگیرید`.
_NATIVE_DIGITS = str.maketrans({chr(zero + i): str(i) for zero in (0x660, 0x6F0, 0x966, 0x9E6)
                                for i in range(10)})
_NATIVE_DIGIT = re.compile("[\u0660-\u0669\u06f0-\u06f9\u0966-\u096f\u09e6-\u09ef]")


def ascii_digits(text: str) -> str:
    """`text` with its native digits written as ASCII ones (the same text when it has none).
    Only a text whose UTF-8 holds their lead bytes (`d9`, `db`, `e0`) is searched: a
    French or curly-quoted text costs an encoding, ~1-2 µs per 2 KB, not a search, ~7 µs."""
    try:
        text.encode("latin-1")  # (no character past U+00FF: a copy, ~0.1 µs per 2 KB)
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # (a lone surrogate: searched)
        raw = b"\xd9"
    if (b"\xd9" not in raw and b"\xdb" not in raw and b"\xe0" not in raw) or (
            _NATIVE_DIGIT.search(text) is None):
        return text
    return text.translate(_NATIVE_DIGITS)


# --- e-mail ----------------------------------------------------------------------------------

_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
# (a hyphen may join a case ending in another script: Tamil `…@outlook.com-க்கு`, to)
_DOMAIN = re.compile(r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))"
                     r"(?![A-Za-z0-9]|-[\x00-\x7f])")
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# file extensions (icon@2x.png) and private names (admin@gitlab.corp.internal is an SSH
# login, not a mailbox)
_NOT_TLD = _words(
    "png jpg jpeg gif svg webp bmp ico css js mjs ts tsx jsx py rb go rs java json yaml "
    "yml toml lock md txt html htm xml map min zip gz tar internal local localdomain "
    "localhost lan corp home intranet private"
)


def _field_label(text: str, colon: int) -> bool:
    """The word before `text[colon]` (a `:`) is a field's label, not a URL's user name: a
    vCard's `EMAIL;TYPE=home`, `EMAIL`."""
    label = text[max(text.rfind(" ", 0, colon), text.rfind("\n", 0, colon)) + 1:colon]
    return ";" in label or "=" in label or label.lower() in ("email", "e-mail")


def _country_mailbox(domain: str) -> bool:
    """A country's domain that is also a file's extension: `.md` (Markdown's, Moldova's) and
    `.rs` (Rust's, Serbia's) when the name before it has no digit (`@orhei-logistics.md`,
    `@mail.md`, `@eunet.rs`; not `icon@2x.md`), and `.py`, `.rs`, `.md` under the country's
    `com`, `org`, `net`, `gov`, `edu` or `co` (`@andesur.com.py`, Paraguay's; `@firma.co.rs`)."""
    low = domain.lower()
    parts = low.rsplit(".", 2)
    if len(parts) == 3 and parts[2] in ("py", "rs", "md") and parts[1] in (
            "com", "org", "net", "gov", "edu", "co"):
        return True
    if not low.endswith((".md", ".rs")):
        return False
    label = domain[:-3].rsplit(".", 1)[-1]
    if low.endswith(".rs") and label.lower() in _RUST_FILES:
        return False
    return len(label) >= 2 and not any(ch.isdigit() for ch in label)


_RUST_FILES = frozenset(("main", "lib", "mod", "build"))  # (every crate's: `…@main.rs`)


# Domains reserved for documentation and tests (RFC 2606, RFC 6761): no one's mailbox.
_RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
_RESERVED_TLDS = ("example", "test", "invalid", "localhost")


def _reserved_domain(domain: str) -> bool:
    low = domain.lower()
    return (low.endswith(_RESERVED_DOMAINS) and (len(low) == 11 or low[-12] == ".")) or (
        low.rsplit(".", 1)[-1] in _RESERVED_TLDS)


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
            if ((before not in (":", "/")  # (a URL's login, but `mailto:` names an address,
                 # and a label in another script does: `メール：…`, `电邮:…`, and a vCard's
                 # field: `EMAIL;TYPE=home:…`)
                 or text[max(0, start - 7):start].lower() == "mailto:"
                 or (before == ":" and start > 1 and (not text[start - 2].isascii()
                                                      or _field_label(text, start - 1))))
                    and (m.group(2).lower() not in _NOT_TLD or _country_mailbox(m.group(1)))
                    and local.lower() != "git" and not local.endswith(".")
                    and not _reserved_domain(m.group(1))):
                out.append((start, m.end(1), "email"))
                nxt = m.end(1)
        i = text.find("@", nxt)


# --- work and its budget ---------------------------------------------------------------------

# Rejected validator calls allowed per scan: a base for short texts plus one per 64
# characters. A rejected candidate costs 5-40 µs with its validation (python-stdnum, the
# phone metadata), so look-alikes cost at most ~0.6 ms per KB (measured: GB-style national
# look-alikes 2.2 ms per KB without the budget); a validation that finds something is not
# counted against the budget (findings are paid for by what they redact).
_BASE_BUDGET = 64
_CHARS_PER_REJECTION = 64


@dataclass(slots=True)
class ScanWork:
    """Counted work of one `scan_personal` call, and the budget that bounds it.

    Tests assert on these counters (never on time): each grows linearly with the text,
    whatever it holds. Past the budget of rejected validations, candidates are no longer
    validated: the scan stays linear and the rest of the text is not reported."""

    budget: int
    segments: int = 0  # segments of runs of digits and separators
    groups: int = 0  # digit groups of the long segments (tables) walked through
    windows: int = 0  # candidate strings cut out of segments
    chars: int = 0  # characters of those candidates
    validations: int = 0  # calls into phonenumbers, python-stdnum, ipaddress
    rejections: int = 0  # validations that said no
    versions: set[str] = field(default_factory=set)  # dotted quads read as versions
    emails: list[int] = field(default_factory=list)  # where the e-mail addresses start
    # the countries the text itself names (`NumberClassifier.regions_named`), whose national
    # formats are read as the operator's `phone_regions` are
    regions: tuple[tuple[str, str, frozenset[int], int], ...] = ()
    # the country its language names (`_spoken_mobile`): calling code, trunk `0` or not
    spoken: tuple[int, bool] | None = None

    @classmethod
    def for_text(cls, text: str) -> ScanWork:
        return cls(budget=_BASE_BUDGET + len(text) // _CHARS_PER_REJECTION)

    @property
    def exhausted(self) -> bool:
        return self.rejections >= self.budget

    @property
    def total(self) -> int:
        return self.segments + self.groups + self.windows + self.chars + self.validations

    def validated(self, ok: bool) -> bool:
        self.validations += 1
        if not ok:
            self.rejections += 1
        return ok

    def check(self, validator: Callable[[str], bool], value: str) -> bool:
        """`validator(value)`, counted; False without calling it once over budget."""
        if self.rejections >= self.budget:
            return False
        return self.validated(validator(value))

    def window(self, candidate: str) -> str:
        self.windows += 1
        self.chars += len(candidate)
        return candidate


# --- numbers ---------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(_OCTET + r"(?:\." + _OCTET + "){3}")
_IPV4_IN = re.compile(r"(?<![\d.])" + _OCTET + r"(?:\." + _OCTET + r"){3}(?![\d.])")
_SSN_FMT = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
# the networks' groupings: plain, 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4 (Diners), 4-4-4 (Maestro)
_CARD_FMT = re.compile(r"\d{12,19}|\d{4}([ -])\d{4,6}(?:\1\d{4,5}){1,3}(?:\1\d{1,3})?")
_SIRET_FMT = re.compile(r"\d{3} ?\d{3} ?\d{3} ?\d{5}")
_SIREN_FMT = re.compile(r"\d{3} ?\d{3} ?\d{3}")
# (overseas departments have three digits and communes two, spaced so: `1 79 07 974 27 849 89`)
_NIR_FMT = re.compile(
    r"[1-478] ?\d{2} ?\d{2} ?(?:(?:\d{2}|2[AB]) ?\d{3}|9[78]\d ?\d{2}) ?\d{3} ?\d{2}")
_NIR_CORSICA = re.compile(
    r"(?<![\w])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?2[AB] ?\d{3} ?\d{3} ?\d{2}(?![\w])")
_CORSICA = re.compile("2[AB]")


def _corsica_nirs(text: str) -> Iterator[re.Match[str]]:
    """`_NIR_CORSICA.finditer(text)`, tried only where a match can start: 5 to 8 characters
    before a `2A` or `2B` (a search of the whole text tries the pattern at every position:
    ~20 ms a megabyte of random tokens, which hold `2A` every few kilobytes)."""
    last = 0
    for c in _CORSICA.finditer(text):
        i = c.start()
        for s in range(max(last, i - 8), i - 4):
            m = _NIR_CORSICA.match(text, s)
            if m is not None:
                yield m
                last = m.end()
                break


# A dotted quad that is a version (`v1.4.0.12`, `AssemblyVersion("2.4.1.0")`, `bootloader
# bumped to 1.4.0.12`, a changelog's `## 4.12.0.3 — 2025-03-07`), a section number
# (`section 4.2.1.3`), a component's version in a list (`Launcher 2.14.3.1`, `SDK 11.0.0.4`,
# `ファームウェア 2.10.4.17`) or an object identifier
# (`2.5.4.3` near "OID"), not an address; the same string later in the text is one too.
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:v|version|release|build|ver\.?|firmware|fw|bootloader|rev|revision"
    r"|launcher|module|sdk|driver|engine|plugin|plug-in|patch|hotfix|versión|versão|versione"
    r"|versie|wersja|verze|sürüm|версия|версія|прошивка|ファームウェア|バージョン|版本|固件|펌웨어|버전"
    r"|section|sect\.|clause|chapter|chapitre|article|paragraphe?|annexe?|alinéa"
    r"|absatz|abschnitt|artikel|step|étape)"
    r"(?:[ \t]+(?:(?:bumped|updated|upgraded|moved|set)[ \t]+)?to)?|version\(|version=|§"
    # a release's notes or a changelog naming the product first (`Release notes – Agent …`)
    r"|\b(?:release[ \t]+notes|changelog|what's[ \t]+new)[ \t]*[-–—:]?[ \t]*"
    r"(?:(?-i:[A-Z])[\w-]{0,20}[ \t]+){0,3}"
    # an upgrade's versions (`Upgrades reader stack from 2.8.0.4 to 2.9.1.0`)
    r"|\b(?:upgrad|downgrad)\w*\b[^\n]{0,30}?\bfrom[ \t]+"
    r"(?:\d{1,5}(?:\.\d{1,5}){2,}[ \t]+to[ \t]+)?)"
    r"[\s\"'(:=<>~]*$", re.I)  # (a version's bound: `bootloader >= 1.0.3.2`)
# a version's minimum (`controller 8.1.113.0 or later`, `… ou supérieure`)
_LATER_AFTER = re.compile(
    r"[ \t]*(?:\+|or[ \t]+(?:later|newer|higher|above)|and[ \t]+(?:later|above|newer)"
    r"|ou[ \t]+(?:supérieure?|ultérieure?|plus[ \t]+récente?)|oder[ \t]+(?:höher|neuer))\b", re.I)
_DATE_AFTER = re.compile(r"[ \t]*[(—–,-]?[ \t]*(?:\d{4}-\d\d-\d\d|\d{1,2}/\d{1,2}/\d{2,4})")
# a log's word for the address it names, right before the quad (fail2ban's `Found 41.66.222.46
# - 2024-06-14 02:11:09`, `Ban …`): the date after it is the log's, not a release's
_ADDRESS_WORD_BEFORE = re.compile(
    r"(?i)\b(?:found|ban|unban|from|client|rhost|src|ip)[ \t:=]{1,3}$")
_OID_NEAR = re.compile(r"\bOIDs?\b|\boid\b")
_VERSION_REACH = 2000  # characters searched on each side for the same string as a version


def _version_at(text: str, i: int, s: str) -> bool:
    return (_VERSION_BEFORE.search(text, max(0, i - 40), i) is not None
            or (_DATE_AFTER.match(text, i + len(s)) is not None
                and _ADDRESS_WORD_BEFORE.search(text, max(0, i - 12), i) is None)
            or _LATER_AFTER.match(text, i + len(s)) is not None
            or _versions_on_line(text, i, i + len(s)))


# A dotted number of four or more parts that no address can be (a part of 4 digits or more:
# `24.10.2.8812`, `10.0.19045.4412`): a build number
_BUILD_NUMBER = re.compile(r"(?<![\d.])\d{1,5}(?:\.\d{1,5}){3,}(?![\d.])")


def _versions_on_line(text: str, start: int, end: int) -> bool:
    """A build number on the dotted quad's line (a table of versions, `scanner 2.11.4.130,
    printer 6.2.0.17, payment 24.10.2.8812`): the quad is a version too."""
    a = text.rfind("\n", 0, start) + 1
    b = text.find("\n", end)
    b = len(text) if b == -1 else b
    return any(max(map(len, m.group().split("."))) >= 4 or m.group().count(".") > 3
               for m in _BUILD_NUMBER.finditer(text, a, b))


def _near(text: str, s: str, start: int) -> Iterator[int]:
    """Where else `s` is written within `_VERSION_REACH` of `start` (8 places at most)."""
    lo, hi = max(0, start - _VERSION_REACH), start + len(s) + _VERSION_REACH
    i = text.find(s, lo, hi)
    for _ in range(8):
        if i == -1:
            return
        if i != start:
            yield i
        i = text.find(s, i + 1, hi)
_COMPANY_CONTEXT = ("siren", "siret", "rcs", "immatricul", "registre du commerce",
                    "entreprise", "societe", "société", "company number")
# `383 923 620 R.C.S. Lyon`: the trade register named after the number
_RCS_AFTER = re.compile(r"[ \t]{1,3}(?:R\.?C\.?S\.?|RCS)\b")
_SSN_CONTEXT = ("ssn", "social security", "social-security", "tax_id", "tax id", "taxpayer")
# ITINs share the SSN's shape and 9xx numbers are common references: a name is required
_ITIN_CONTEXT = ("itin", "taxpayer", "tax id", "tax_id", "w-7", "irs", "tin", "ssn",
                 "social security")
_CARD_CONTEXT = ("card", "carte", "maestro", "visa", "mastercard", "amex", "cb ", "debit",
                 "débit", "credit", "crédit", "charge", "payment", "paiement", "billing",
                 "chargeback", "pan ")
_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
# Words that name a number as something else than a phone (in English, French, German,
# Dutch, Spanish, Italian, Portuguese), or a `#`, just before it (not after "caller ID");
# or a JSON time field.
_NOT_PHONE_WORDS = (
    "order", "invoice", "isbn", "issn", "tracking", "ticket", "ref", "reference", "réf",
    "commande", "facture", "sku", "serial", "transaction", "id", "bestellung", "bestellnummer",
    "bestellbestätigung", "auftrag", "auftragsnummer", "rechnung", "rechnungsnummer",
    "kundennummer", "lieferschein", "bestelling", "bestelnummer", "ordernummer", "factuur",
    "factuurnummer", "klantnummer", "pedido", "factura", "ordine", "fattura", "encomenda",
    # an article's number, a booking's (`Art.-Nr. 4711-0815-22`, `réservation n° 2024-77-…`)
    "art", "artikel", "artikelnummer", "article", "réservation", "reservation", "booking",
    "buchung", "reserva", "prenotazione",
    # a quote's (`Quote Q-07990017`), a company's registration (Czech `IČO 27390406`, `DIČ`)
    "quote", "quotation", "devis", "angebot", "offerte", "ičo", "ico", "dič")
_NOT_PHONE_SET = frozenset(_NOT_PHONE_WORDS)
_NOT_PHONE_BEFORE = re.compile(
    r"(?:\b(?:" + "|".join(w for w in _NOT_PHONE_WORDS if w != "id")
    + r"|(?<!caller )(?<!caller-)id)\b|#)"
    r"[^\n\w]{0,3}(?:[A-Za-z]{1,4}-)?(?:n[or°]\.?\s*)?$"
    # a time in seconds as JSON writes it (`"iat": 1718000000`, `"exp":…`)
    r"|\"(?:iat|exp|nbf|auth_time|timestamp|ts|time|created|updated|expires)\"[ \t]*:[ \t]*$",
    re.I)
_WORDS = re.compile(r"[^\W\d_]+")

# (`: `, ` is `, ` est le `: what joins a name to its value)
_NAMED_IS = r"[ \t]*(?::[ \t]*|(?:is|est|was|était)[ \t]+(?:le[ \t]+)?)?$"
# a customer's, account's, contract's or claim's number named before it (`Votre numéro
# client est le 977 476 773`): an identifier, not a phone number
_ID_NOUNS = ("client", "customer", "compte", "account", "contrat", "contract", "dossier",
             "adhérent", "adherent", "member", "membre", "police", "policy", "sinistre", "claim")
_ID_NUMBER_BEFORE = re.compile(
    r"(?i)\b(?:num[ée]ro|n[°o]\.?|number|no\.)[ \t]+(?:de[ \t]+|d['’])?(?:"
    + "|".join(_ID_NOUNS) + r")\b" + _NAMED_IS
    + r"|\b(?:client|customer|account|member|membership|policy|claim|contract)[ \t]+"
    r"(?:number|no\.?|#)" + _NAMED_IS)
_NAME_MARK = re.compile(r"[^\W\d_]|[#\"]")  # a letter (of any script), `#` or `"`


# Words that name a phone number outright, to tell `Phone on booking: …` from a booking's
# number (`tel` is in `Hôtel : réservation n° …`, `call` in `recall`: not these)
_PHONE_NAMES = ("phone", "mobile", "cell", "whatsapp", "telefon", "téléphone", "handy",
                "portable")


def _named_not_phone(text: str, start: int) -> bool:
    """The number at `start` is named as something else: an order, a reference, an id, a
    customer's or a contract's number. (Both regexes need a letter, `#` or `"` before the
    number, and the second one of its nouns: a list of numbers skips them, ~20 µs a number.)"""
    before = text[max(0, start - 48):start]
    if _NAME_MARK.search(before) is None:
        return False
    near = before[-32:]
    if "#" in near or '"' in near or not _NOT_PHONE_SET.isdisjoint(
            w.lower() for w in _WORDS.findall(near)):
        named = _NOT_PHONE_BEFORE.search(text, max(0, start - 32), start)
        # (unless a phone word names it first: `Phone on booking: +44 7937 554334`)
        if named is not None and not _context(text, named.start(), _PHONE_NAMES, 24):
            return True
    low = before.lower()
    return any(noun in low for noun in _ID_NOUNS) and (
        _ID_NUMBER_BEFORE.search(text, max(0, start - 48), start) is not None)


def _itin_ok(digits: str) -> bool:
    """An ITIN: python-stdnum's groups (70-88, 90-92, 94-99), and 50-65, which the IRS
    has issued since 2011 and python-stdnum (2.2) does not list."""
    return _itin.is_valid(digits) or 50 <= int(digits[3:5]) <= 65


def _card_brand_ok(d: str) -> bool:
    """Issuer prefix and length of the card networks in use (a Luhn check alone accepts
    one random number in ten)."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    two, three, four = int(d[:2]), int(d[:3]), int(d[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if 2200 <= four <= 2204:
        return 16 <= n <= 19  # Mir
    if two in (34, 37):
        return n == 15  # American Express
    if four in (1800, 2131):
        return n == 15  # JCB's old 15-digit numbers
    if two == 35:
        return 16 <= n <= 19  # JCB (3528-3589 assigned; test-card generators use all of 35)
    if 300 <= three <= 305 or four == 3095 or two in (36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    if four == 6011 or two in (62, 65) or 644 <= three <= 649:
        return 16 <= n <= 19  # Discover, UnionPay
    if two == 50 or 56 <= two <= 69:
        return 12 <= n <= 19  # Maestro
    if four in (9792, 8600, 9860, 9804, 9891, 9225, 9227):
        return n == 16  # Troy (Turkey), Uzcard and Humo (Uzbekistan), ПРОСТІР (Ukraine),
        # DinaCard (Serbia), Cuba's RED (BPA, BANDEC)
    return False


def _luhn_ok(digits: str) -> bool:
    total = 0
    for k, ch in enumerate(reversed(digits)):
        v = ord(ch) - 48
        total += _LUHN_DOUBLE[v] if k & 1 else v
    return total % 10 == 0


def _context(text: str, start: int, words: tuple[str, ...], span: int = 48) -> bool:
    """One of `words` in the `span` characters before `start` (case-insensitive): one pass
    of an automaton, not one substring search per word (a number may be asked three times:
    SSN, company and phone words)."""
    return _has_word(text[max(0, start - span):start].lower(), words)


def _has_word(low: str, words: tuple[str, ...]) -> bool:
    for end, word in _words_automaton(words).iter(low):
        i = end - len(word) + 1  # a short Latin word starts a word (`tel`, not `Bestellnr.`;
        # scripts written without blanks glue theirs: `的电话`)
        if (len(word) > 4 or i == 0 or not word.isascii() or not word[0].isalpha()
                or not low[i - 1].isalpha()):  # (`\nt: ` starts at its line's start)
            return True
    return False


_words_automaton = functools.lru_cache(maxsize=32)(word_automaton)  # one per word tuple

# --- tables -----------------------------------------------------------------------------------

# A table pasted as text (cells split by tabs, or by pipes as Markdown writes them) names
# what a column holds in its first row: `Passport no.` above `PE8300345`, `휴대폰` above
# `010-0618-2363`. Rows are read up to this many above or below a cell, each of this many
# characters at most (a longer line is no table's row): a cell's reading is bounded, however
# many numbers a text holds.
_TABLE_ROWS = 40
_ROW_CHARS = 1000


def _line_at(text: str, pos: int) -> tuple[int, int] | None:
    """The line around `pos`, if it is short enough to be a table's row."""
    start = text.rfind("\n", max(0, pos - _ROW_CHARS), pos) + 1
    if start == 0 and pos > _ROW_CHARS:
        return None
    end = text.find("\n", pos, pos + _ROW_CHARS)
    if end == -1:
        if len(text) > pos + _ROW_CHARS:
            return None
        end = len(text)
    return start, end


def _separator(line: str) -> str:
    """Tabs, pipes, or commas where a line holds three (a CSV export's row)."""
    return ("\t" if "\t" in line else "|" if line.count("|") >= 2
            else "," if line.count(",") >= 3 else "")


def _table_row(text: str, pos: int) -> tuple[int, int, str] | None:
    """The row around `pos` (start, end) and its cells' separator (empty for none)."""
    line = _line_at(text, pos)
    if line is None:
        return None
    start, end = line
    return start, end, _separator(text[start:end])


def _start_above(text: str, start: int) -> int:
    """Where the line above the one starting at `start` (> 0) starts, looking back
    `_ROW_CHARS` characters at most (0 past that: the caller tells the two apart)."""
    return text.rfind("\n", max(0, start - 1 - _ROW_CHARS), start - 1) + 1


def _first_row(text: str, start: int, in_table: Callable[[int, int], bool]) -> int:
    """Where the first row starts of the table whose row starts at `start`: the rows above
    it, `_TABLE_ROWS` at most, while `in_table(row start, row end)` says they are its own."""
    top = start
    for _ in range(_TABLE_ROWS):
        if top == 0:
            break
        above = _start_above(text, top)
        if (above == 0 and top - 1 > _ROW_CHARS) or not in_table(above, top - 1):
            break
        top = above
    return top


def column_header(text: str, pos: int) -> str:
    """The first row's cell (lower case) of the column `pos` stands in, in a table of tabs
    or pipes whose rows run unbroken from that first row to `pos`'s; empty elsewhere, in
    the first row itself and where that cell holds data (four digits)."""
    here = _table_row(text, pos)
    if here is None:
        return ""
    start, end, sep = here
    if not sep:
        return _aligned_header(text, start, end, pos)
    commas = _csv_commas(text, start, end) if sep == "," else 0
    top = _first_row(text, start, lambda a, b: text.find(sep, a, b) != -1 and (
        not commas or _csv_commas(text, a, b) == commas))  # (a CSV's rows hold as many
    # commas as its header, those inside a quoted cell not counted: `"3,450"`)
    if top == start:
        return ""
    cells = text[top:text.find("\n", top)].split(sep)
    column = _csv_commas(text, start, pos) if sep == "," else text.count(sep, start, pos)
    header = cells[column].strip().lower() if column < len(cells) else ""
    return "" if _DATA_CELL.search(header) else header  # (a first row of data: no header)


_DATA_CELL = re.compile(r"\d{4}")
_QUOTED_CELL = re.compile(r'"[^"\n]*"')


def _csv_commas(text: str, start: int, end: int) -> int:
    """The commas from `start` to `end` that separate a CSV row's cells (not those inside a
    quoted cell: `"3,450"`)."""
    part = text[start:end]
    return (part.count(",") if '"' not in part
            else _QUOTED_CELL.sub("", part).count(","))


def _aligned_header(text: str, start: int, end: int, pos: int) -> str:
    """`column_header` in columns aligned with blanks (`_ALIGNED`: two gaps of two blanks on
    every row): the first row's cell that starts where `pos`'s cell starts (or up to two
    characters before or after), read to its next gap of two blanks."""
    if len(_ALIGNED.findall(text, start, end)) < 2:
        return ""
    cell = pos
    while cell > start and not text.startswith("  ", cell - 2) and cell - 1 > start:
        cell -= 1  # (the cell's own start: `82 647 9734` holds single blanks)
    column = cell - start
    top = _first_row(text, start, lambda a, b: len(_ALIGNED.findall(text, a, b)) >= 2)
    if top == start:
        return ""
    row_end = text.find("\n", top)
    row = text[top:row_end if row_end != -1 else len(text)]
    a = column
    while a > 0 and column - a < 2 and row[a - 1:a] not in ("", " "):
        a -= 1
    while a < len(row) and a - column < 2 and row[a] == " ":
        a += 1  # (or up to two characters after: columns typed by hand drift)
    if a >= len(row) or row[a] == " " or (a > 0 and row[a - 1] != " "):
        return ""
    b = row.find("  ", a)
    header = row[a:b if b != -1 else len(row)].strip().lower()
    return "" if _DATA_CELL.search(header) else header


# columns aligned with blanks, as a fixed-width form prints them (`No  Name   Passport   Exp`)
_ALIGNED = re.compile(r"\S {2,}(?=\S)")


def _aligned_cells(text: str, column: int, row: int) -> Iterator[tuple[int, int]]:
    """The words that start at `column` (or up to two characters before it) in the rows
    from `row` on, until a row too short to reach it."""
    for _ in range(_TABLE_ROWS):
        line = _line_at(text, row) if row < len(text) else None
        if line is None or line[1] - row <= column:
            return
        a = row + column
        while a > row and row + column - a < 2 and not text[a - 1].isspace():
            a -= 1
        b = a
        while b < line[1] and not text[b].isspace():
            b += 1
        if b > a:
            yield a, b
        row = line[1] + 1


def column_cells(text: str, pos: int) -> Iterator[tuple[int, int]]:
    """The spans of the cells below the header cell at `pos` (the rows that follow it while
    they hold its separator), each stripped of blanks; none unless `pos`'s row is the
    table's first."""
    here = _table_row(text, pos)
    if here is None:
        return
    start, end, sep = here
    if not sep:
        if len(_ALIGNED.findall(text, start, end)) >= 2:
            yield from _aligned_cells(text, pos - start, end + 1)
        return
    if start > 0 and text.find(sep, _start_above(text, start), start - 1) != -1:
        return  # (a row under another: not the header)
    column = text.count(sep, start, pos)
    row = end + 1
    for _ in range(_TABLE_ROWS):
        if row >= len(text):
            return
        below = _line_at(text, row)
        if below is None:
            return
        row_end = below[1]
        if text.find(sep, row, row_end) == -1:
            return
        a = row
        for _ in range(column):
            a = text.find(sep, a, row_end) + 1
            if a == 0:
                break
        else:
            b = text.find(sep, a, row_end)
            b = row_end if b == -1 else b
            cell = text[a:b]
            lead = len(cell) - len(cell.lstrip())
            if cell.strip():
                yield a + lead, a + lead + len(cell.strip())
        row = row_end + 1


_NONDIGIT = re.compile(r"\D+")
_DIGIT_GROUPS = re.compile(r"\d+")
_DATE = re.compile(r"(?:19|20)\d\d[-./](?:0[1-9]|1[0-2])[-./]\d\d|\d\d[-./]\d\d[-./](?:19|20)\d\d")
_NANP_GROUPS = frozenset({(3, 3, 4), (10,), (1, 3, 3, 4), (11,), (3, 7)})
_PARENS = str.maketrans("", "", "()")
# An area code set apart by its own separator: `(11) 96123-4567`, `32 2601-8159`,
# `08-26 01 81`, `8 (495) 123-45-67`; the groups after it are uniform.
_AREA_CODE = re.compile(r"^(?:\d{1,2} )?\(?\d{1,5}\)?[ -]")
_NUMBER_SEPARATORS = frozenset(" .-()")


def _uniform(s: str) -> bool:
    """One separator kind throughout (parentheses aside): `06 12 34 56 78`, not `0.12 3.45`."""
    return len(set(_NONDIGIT.findall(s.translate(_PARENS)))) <= 1


_NUMBER_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
                 "personal_number", "voip", "pager", "uan", "voicemail")


@functools.cache
def _typed_patterns(country_code: int) -> tuple[tuple[re.Pattern[str], frozenset[int], str], ...]:
    """Pattern, national lengths and name of every number type of a calling code's regions
    (libphonenumber's metadata), compiled once; empty for no country."""
    out: list[tuple[re.Pattern[str], frozenset[int], str]] = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        meta = (phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
                if region == "001" else phonenumbers.PhoneMetadata.metadata_for_region(region))
        if meta is None or meta.general_desc is None:
            continue
        general = frozenset(meta.general_desc.possible_length or ())
        for name in _NUMBER_TYPES:
            desc = getattr(meta, name, None)
            if desc is None or not desc.national_number_pattern:
                continue
            lengths = tuple(desc.possible_length or ())
            if lengths and lengths[0] == -1:
                continue  # no number of this type in the region
            out.append((re.compile(desc.national_number_pattern), frozenset(lengths) or general,
                        name))
    return tuple(out)


def _mobile_for_code(country_code: int, national: str) -> bool:
    return any(name == "mobile" and len(national) in lengths and pattern.fullmatch(national)
               for pattern, lengths, name in _typed_patterns(country_code))


@functools.cache
def _country_types(country_code: int) -> tuple[tuple[re.Pattern[str], frozenset[int]], ...]:
    """`_typed_patterns` without the types' names."""
    return tuple((pattern, lengths) for pattern, lengths, _ in _typed_patterns(country_code))


def _international_valid(digits: str) -> bool:
    """The digits after `+` (or `00`) are a calling code (a prefix-free set) and a number of
    one of its types, maybe after a written trunk `(0)`.

    This is libphonenumber's `is_valid_number` on its own metadata, with the patterns
    compiled here: libphonenumber compiles them through `re`'s 512-entry cache, which
    numbers of many countries in one text thrash (each call then recompiles, ~1 ms: 5 ms
    per KB of international look-alikes, measured with bench/guard_adversarial.py). On
    30,000 random numbers of every calling code it agrees with `is_valid_number` on 99.7%;
    the rest are countries whose trunk prefix libphonenumber rewrites (Madagascar,
    Colombia, Lithuania)."""
    if len(digits) == 13 and digits.startswith("521"):
        digits = "52" + digits[3:]  # Mexico's mobile `1` after the code (`+52 1 55 …`),
        # dropped in 2019 and still written
    return 8 <= len(digits) <= 15 and _after_calling_code(digits, _valid_for_code)


# calling code -> its main region (a code has number types exactly when it is listed here)
_MAIN_REGION = {code: regions[0] for code, regions
                in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items() if regions}


def _calling_code(digits: str) -> tuple[int, str] | None:
    """The calling code that `digits` (after `+`) starts with and the national number after
    it (the codes are a prefix-free set)."""
    for k in (1, 2, 3):
        country_code = int(digits[:k])
        if country_code in _MAIN_REGION:
            return country_code, digits[k:]
    return None


def _after_calling_code(digits: str, test: Callable[[int, str], bool]) -> bool:
    """`test` on the calling code that starts `digits` and the national number after it,
    maybe after a written trunk `(0)`."""
    split = _calling_code(digits)
    if split is None:
        return False
    country_code, rest = split
    return test(country_code, rest) or (rest[0] == "0" and test(country_code, rest[1:]))


# A business's line, not a person's: toll-free numbers (`0800 7 23 45 67`, `1-800-…`,
# `0120-…`), as libphonenumber's metadata types them. (Not premium-rate, shared-cost or
# universal access numbers: their prefixes are other countries' mobiles and cities, GB's
# `090` Japan's mobiles, GB's `03` Tokyo; measured on the blind rounds in session 22, typing
# them as businesses' lines lost 31 persons' numbers for 16 look-alikes spared.)
_BUSINESS_TYPES = frozenset(("toll_free",))


def business_line(country_code: int, national: str) -> bool:
    """The national number is of a business's type only (toll-free), of no type a person's
    line has."""
    kinds = {name in _BUSINESS_TYPES for pattern, lengths, name in _typed_patterns(country_code)
             if len(national) in lengths and pattern.fullmatch(national) is not None}
    return kinds == {True}


def _international_business(digits: str) -> bool:
    return _after_calling_code(digits, business_line)


def _international_possible(digits: str) -> bool:
    """A calling code and a national number of one of its lengths (libphonenumber's
    `is_possible_number`): numbers not assigned yet, or made up, written as phones."""
    for k in (1, 2, 3):
        types = _country_types(int(digits[:k]))
        if types:
            rest = digits[k:]
            return any(len(rest) in lengths or (rest[0] == "0" and len(rest) - 1 in lengths)
                       for _, lengths in types)
    return False


_PHONE_CONTEXT: tuple[str, ...] = (
    "phone", "tel", "tél", "call", "mobile", "cell", "whatsapp", "sms", "fax",
    "appel", "portable", "téléphone", "telefon", "handy", "caller", "voicemail",
    "ring me", "text me", "reach me", "reach us", "hotline", "helpline",
    "landline", "switchboard", "dial", "joindre", "numéro", "standard",
    # (`contact` alone names pages and links: `/contact (9 104)`)
    "contact:", "contact :", "kontakt:", "kontakt vid", "kontakt unter",
    "erreichbar", "erreicht", "anrufen", "anruf", "rückruf", "ring", "звонить", "звоните",
    "joignable", "reachable", "keitai", "denwa", "電話", "携帯",
    # in more languages: contact, mobile, phone (`連絡先`, `手机号`, `연락처`,
    # `휴대폰`, `มือถือ`, `मोबाइल`, `celular`, Turkish `Cep:`, `No. HP/WA`)
    "連絡先", "电话", "手机", "手機", "연락처", "휴대폰", "핸드폰", "전화",
    "โทร", "เบอร์", "มือถือ", "điện thoại", "dien thoai", "sđt", "sdt",
    "मोबाइल", "मोबाईल", "फ़ोन", "फोन", "celular", "móvil", "movil", "telemóvel",
    "helista", "soita", "nå dig på", "nå mig på", "ring mig på",  # (Estonian, Finnish, Swedish)
    "hubungi saya di", "hubungi saya", "kontak darurat",  # (Indonesian)
    "cep:", "cep telefonu", "no. hp", "no hp", "hp/wa", "nomor wa", "telepon",
    "ponsel", "simu:", "simu ya", "nambari ya simu", "selfoon", "هاتف", "جوال",
    "على الرقم", "عالرقم",  # Arabic: (reach him) on the number
    "موبايل", "טלפון", "נייד", "মোবাইল", "ফোন", "கைபேசி", "தொலைபேசி",
    "meu zap", "zap:", "chiamami", "chiamare al", "llámame", "llamame",
    "me liga",
    # mobile, phone and "call me" in more languages (`Mobil: 0176 …`, `κινητό`, `WA aku di
    # 0821-…`, `ligue-me para o …`, `llamarme al …`); not the words for "number", which
    # name meters, batches and orders as often (`Zählernummer`, `sipariş numarası`)
    # a person's number (`my number`, `customer's number`, Hindi `customer ka number`,
    # Pidgin `Him number na`, Yiddish `mein nummer`): a phone's, not a meter's or an order's
    "my number", "his number", "her number", "your number", "their number", "'s number",
    "’s number", "ka number", "ki number", "ke number", "mera number", "meri number",
    "him number", "im number", "mein nummer",
    "mobil", "mobiel", "tlf", "tfn", "puh", "gsm", "κινητ", "τηλ", "wa aku", "wa saya", "di wa",
    "via wa", "no wa", "wa:",  # (not `WA ` alone: Washington's ZIP codes follow it)
    "ligue", "ligar", "liga-me", "llamar", "llamad", "telefone", "teléfono", "telefono",
    "cellulare", "komórk", "kom.", "телефон", "тел.", "моб", "bellen", "rufnummer", "erreichen",
    "для связи", "ring mig", "ring meg", "ring til mig", "bel me", "bel mij", "soita minulle",
    "zadzwoń", "zavolejte", "ruf mich", "rufen sie mich", "hp:", "hp :", "연락",
    "yhteydenot",  # (Korean `연락 가능한 번호`, Finnish `yhteydenottoa numeroon`: contact)
    # `Cel:` (Portuguese, Spanish), `me llamáis al …`, Swahili `nambari yangu` (my number),
    # Finnish `minut tavoittaa numerosta …` (I can be reached at)
    "cel:", "cel.", "llamáis", "llamadme", "nambari yangu", "tavoittaa", "mòbil",
    # contact (`Contacto: 931 …`, `kan kontaktes på 31 …`, Indonesian `Kontak darurat: …`) and
    # Indonesian `HP` (handphone: `HP 0853-…`)
    "contacto:", "contacto :", "contato:", "kontaktes på", "kontaktas på", "kontak:",
    "kontak darurat", "kontak cadangan", "hp ",
    # reached on, call (Polish, Romanian, Dutch), Indonesian `lewat WA` (via WhatsApp)
    "reached on", "reached at", "be reached", "dzwoń", "dzwonić", "dzwonic", "sunați", "sunati",
    "sună-mă", "suna-ma", "bel gerust", "bel even", "bel maar", "lewat wa", "wa pribadi",
    "mob ", "mob:", "mob.", "elérhető", "elerheto", "meu número", "mi número", "o meu número",
    # a signature's one-letter labels (`T: 01 414 36 71 | M: 064 519 618`), call back and
    # call in Russian (`Перезвони клиенту …: 8 775 …`)
    "\nt:", "\nm:", "| t:", "| m:", "перезвон", "позвон",  # (a label starts a line or a cell)
    # a mobile subscriber's number as telecom systems name it (`msisdn=…`, a CSV's `msisdn`
    # column, SMPP's `destination_addr`), and Spanish `call me` in the plural
    "msisdn", "destination_addr", "dest_addr", "source_addr", "llámenme", "llamenme",
    "llamen al",
    # mobile and call me in Galician, Basque, Catalan; phone in Khmer, Lao, Lithuanian
    "móbil", "mugikor", "truqueu", "truca'm", "trucar al", "ទូរស័ព្ទ", "ເບີໂທ", "ໂທລະສັບ",
    "telefonas", "tawagan", "nomer hp", "contact ko",  # (Cebuano: call; Javanese, Taglish)
    "sími", "farsími", "talevoni",  # (Icelandic, Faroese: phone, mobile; Fijian)
    "सम्पर्क नं", "सम्पर्क:", "संपर्क नं", "संपर्क:",  # (Nepali, Hindi: contact no.)
    "ሞባይል",  # (Amharic, Tigrinya: mobile)
    "утас", "залга", "zalga",  # (Mongolian: phone, call: `утас 96774949`, `… руу залгаарай`)
    "cel ", "my number", "waya:", "fóònù", "foonu", "pè é ní",  # (Brazil's `cel (67) 9…`;
    # Hausa's phone, Yoruba's phone and call him at)
    "simu", "tumawag", "зовите", "позовите", "назовите", "zovite", "pozovite", "nazovite",
    "number ko", "numero ko", "number ni", "numero ni", "namba bilong",
    # a person's number, possessed or new (`his number is …`, Pidgin `her number na …`,
    # Arabizi `ra2me` (my number), `ra2mo` (his), Arabic `رقمي`, `mój nowy numer`, `moy
    # novyy nomer`, `Мій номер`, Icelandic `nýtt númer`, Mauritian `so nimero` (his number),
    # Javanese `nomer e` (his number), Kriolu `nha numeru`, Hindi `mera/uska number`)
    "his number", "her number", "your number", "their number", "'s number", "new number",
    "contact number", "number na", "ra2me", "ra2mi", "ra2mo", "ra2ma", "رقمي", "mój numer",
    "mój nowy numer", "moy nomer", "moy novyy nomer", "мой номер", "мій номер",
    "новый номер", "новий номер", "nýtt númer", "nimero", "nomer e", "nomerku", "nomorku",
    "nomor saya", "numeru", "mera number", "uska number", "iska number", "apna number",
    "numero nuevo", "número nuevo", "de número", "yeni numara", "numaram",
    # Maltese `in-numru tagħha hu …`, `ċempel lil …`; Venetian `el so numaro`, Friulian
    # `i numars`, Haitian `nimewo`, Swahili `number yake` (his number), Tajik `ба рақами`,
    # romanised Armenian `… hamarin` (to the number), an IVR log's caller (`ani=`)
    "in-numru", "numru tagħha", "numru tiegħu", "ċempel", "ċempilha", "so numaro", "numars",
    "nimewo", "number yake", "namba yake", "personal number", "рақами", "chiamla", "chiamalo",
    "chiamala", "ani=", "callerid", "caller_id", "phonenumber", "phone_number",
    # phone and call in more languages: Latvian `Tālrunis`, Armenian `Հեռ.`, Georgian `ტელ`,
    # Burmese `ဖုန်း`, Tamil `தொடர்பு எண்` (contact number), `என் எண்` (my number), Irish
    # `Fón póca`, `uimhir fóin`, `glaoigh ar`, Malaysian `H/P`, Icelandic `hringdu í`, `í
    # síma`, Lithuanian `skambinkite`, Hungarian `hívd fel`, Dutch `bereikbaar op`, Swedish
    # `nås på`, Slovene `pokliče`, Azerbaijani `zəng edin`, Faroese `nást á` (reached at),
    # Haitian `rele m` (call me), Danish `hans nummer`, Estonian `kontaktisik`, Tok Pisin
    # `gat namba`, English `my no.`
    "tālrunis", "tālr.", "հեռ.", "հեռախոս", "ტელ", "ტელეფონ", "ဖုန်း", "தொடர்பு எண்",
    "என் எண்", "fón", "fóin", "glaoigh", "h/p", "hringdu", "hringið", "hringja", "síma",
    "skambink", "hívd", "hívj", "bereikbaar op", "nås på", "pokliče", "pokliči", "zəng et",
    "zəng edin", "nást á", "rele m", "rele mwen", "hans nummer", "hendes nummer",
    "kontaktisik", "gat namba", "my no.",
    # Chinese `座机` (a landline), Albanian `numri im` (my number), Hindi `purana number` (old
    # number), Creole `mi number`, Marshallese `kūrtōk` (call)
    "座机", "座機", "numri im", "purana number", "mi number", "kūrtōk", "kurtok",
    # Bislama `ringim` (call), `fon:`, French `rappelez-moi au`, Kirundi `terefone`, Arabic
    # `رقم الطوارئ` (the emergency number), Macedonian and Serbian `his number`
    "ringim", "fon:", "rappelez", "terefone", "رقم الطوارئ", "неговиот број", "његов број",
    "njegov broj",
    # Gulf Arabic `كلموني` (call me), a SIM's number; Setswana `ntetse` (call me), `leletsa`
    # (call), `nomoro ya mogala` (phone number); Malayalam `എന്റെ നമ്പർ` (my number)
    "كلموني", "كلمني", "اتصلوا علي", "اتصل علي", "رقم الشريحة", "ntetse", "nteletse",
    "leletsa", "mogala", "എന്റെ നമ്പർ",
    # Malay: my number (`nombor sia`, `nombor saya`), a handphone's number
    "nombor sia", "nombor saya", "nombor aku", "nombor hp", "no hp", "no. hp", "nombor tel")
# (Swahili's phone as a CSV's column, Tagalog's called, Serbian and Croatian call me;
# Tagalog and Cebuano `number ko` (my number), `number ni Dodong` (Dodong's); Tok Pisin's
# `namba bilong` (the number of))


_PHONE_CONTEXT = viewed_words(_PHONE_CONTEXT)
# Words after a number that say it is a phone (German puts the verb last: `bin unter 0650 …
# erreichbar`, `unter 0660 … melden`; Turkish and Hungarian the case ending: `0533 …
# numarasından arayın`, `a 06 70 … számon`)
_PHONE_AFTER = viewed_words((
    "erreichbar", "melden", "anrufen", "zurückrufen", "numarasından", "numaramdan",
    "numarasına", "numaradan", "számon", "telefonszámon", "bereikbaar", "joignable",
    "raggiungibile", "reachable", "(calls", "(whatsapp", "(mobile", "(cell",
    "uruffen",  # (Luxembourgish: `Dir kënnt mech um 661 … uruffen`)
    "вотсап", "ватсап", "вацап",  # (Russian: `…, можно писать в вотсап`)
    "ma samparka"))  # (Nepali in Latin letters: `… 9812425554 ma samparka garnu hola`)


def _phone_named(text: str, start: int, end: int) -> bool:
    """A phone word before the number (40 characters), or one of `_PHONE_AFTER` just after it
    (24 characters) when no business's line is named before it (`çağrı merkezimizi 0850 …
    numarasından arayabilirsiniz`: a call centre's)."""
    if _context(text, start, _PHONE_CONTEXT, 40):
        return True
    lo = start - 200 if start > 200 else 0
    if (text.find("\t", lo, start) >= 0 or text.find("|", lo, start) >= 0
            or text.find(",", lo, start) >= 0 or text.find("  ", lo, start) >= 0):
        header = column_header(text, start)  # (a table's column: `휴대폰`, `SĐT`, `Mobile`)
        if header and _has_word(header, _PHONE_CONTEXT):
            return True
    after = text[end:end + 24].lower()
    return (any(True for _ in _words_automaton(_PHONE_AFTER).iter(after))
            and not _context(text, start, _BUSINESS_LINE_WORDS, 60))
_LABEL_REACH = 24


def _labelled_phone(text: str, start: int) -> bool:
    """A phone word within `_LABEL_REACH` characters before `start`, no digit between them
    (`Sími: 860 3887`, `hringið í 763 0285`; not `Call sign HEB12  Grid: NB 423 327`) and no
    business's line named (`infotelefon: 800 2200`)."""
    before = text[max(0, start - _LABEL_REACH):start].lower()
    cut = max(before.rfind(d) for d in "0123456789\n")
    if cut >= 0:
        before = before[cut + 1:]
    if before.rstrip(" \t:.#").endswith(("p/n", "s/n")):
        return False  # a part's or a serial's number (`slip ring brush set P/N 8438812`)
    return _has_word(before, _PHONE_CONTEXT) and not _has_word(before, _BUSINESS_LINE_WORDS)


# Words that name a business's line (a freephone number is one, whoever else may use its shape)
_BUSINESS_LINE_WORDS = viewed_words((
    "hotline", "helpline", "freephone", "free phone", "toll", "switchboard", "customer service",
    "service client", "kundenservice", "servicenummer", "kostenlos", "gratuit", "numéro vert",
    "gratis", "línea", "linea", "infoline", "call centre", "call center", "support", "line:",
    "24/7", "çağrı merkez", "müşteri hizmetleri", "infotelefon", "infolinia"))


# Words that name a company's own line, on the number's line before it (`Standard : 04 72 …`,
# `Service client : 03 88 …`, `Front desk (hotel): +49 30 …`): whatever its type, not a
# person's number.
_COMPANY_LINE_WORDS = viewed_words((
    "switchboard", "standard :", "standard:", "standard téléphonique", "customer service",
    "service client", "kundenservice", "kundendienst",
    "front desk", "réception :", "reception:", "accueil :", "zentrale:", "zentrale :",
    "centralino", "centralita", "servicio al cliente", "atención al cliente",
    "atendimento ao cliente", "serviço de apoio", "klantenservice", "kundtjänst",
    "kundeservice", "asiakaspalvelu", "obsługa klienta", "sac:", "sac :", "отдел продаж",
    "отдела продаж", "горячая линия", "горячей линии", "горячую линию", "служба поддержки",
    "гаряча лінія",
    "приёмная", "приемная", "коммутатор",
    # an organisation's words for its line (`Numero Verde`, `フリーダイヤル`, `contactez notre
    # service`; not `call us`, which a family says too, `she can call us back on 06 …`, nor
    # `from abroad`: a person gives theirs so, `depuis l'étranger +33 6 …`)
    "contactez notre", "notre service", "chiama il nostro", "numero verde",
    "numéro vert", "freephone", "toll-free", "toll free", "フリーダイヤル",
    "central de atendimento", "ouvidoria", "service-hotline", "sperr-notruf", "textphone",
    "고객센터", "客服"))


# an extension after a number (`… poste 192`, `… ext. 210`, `… (Durchwahl 14)`)
_EXTENSION_WORD = re.compile(
    r"(?i)\d[ \t(]*(?:poste|ext\.?|extension|x|durchwahl|dw|interno|int\.)[ \t.:]*\d")


def _company_line(text: str, start: int) -> bool:
    """A word for a company's line (`_COMPANY_LINE_WORDS`) in the 48 characters before
    `start` on its line."""
    a = max(text.rfind("\n", max(0, start - 48), start) + 1, start - 48, 0)
    return next(_words_automaton(_COMPANY_LINE_WORDS).iter(text[a:start].lower()), None) is not None


def _email_on_line(text: str, start: int, length: int, emails: list[int]) -> bool:
    """An e-mail address (`emails`: where the scan's addresses start, in order) within 120
    characters of the number, on its line: contact details (`compta@… – 06 92 36 07 64`, a
    CRM export's row `…;michal@…;677-497-604`)."""
    if not emails:
        return False
    a = max(text.rfind("\n", max(0, start - 120), start) + 1, start - 120)
    b = text.find("\n", start + length, start + length + 120)
    b = min(len(text), start + length + 120) if b == -1 else b
    i = bisect.bisect_left(emails, a)
    return i < len(emails) and emails[i] < b


@functools.lru_cache(maxsize=1)
def _national_codes() -> tuple[tuple[int, str], ...]:
    """Every calling code with the trunk prefix its national numbers are written after
    (`0` mostly, `8` in Russia, `06` in Hungary; empty for none)."""
    out: set[tuple[int, str]] = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta is not None and meta.country_code is not None and meta.country_code != 1:
            out.add((meta.country_code, meta.national_prefix or ""))
    return tuple(sorted(out))


@functools.lru_cache(maxsize=1)
def _codes_by_prefix_and_length() -> dict[tuple[str, int], tuple[int, ...]]:
    """(trunk prefix, national length) -> the calling codes with a number type of that
    length, `""` standing for any code written without its prefix: a candidate is checked
    against a handful of countries, not all 240."""
    out: dict[tuple[str, int], set[int]] = {}
    for code, prefix in _national_codes():
        for _, lengths in _country_types(code):
            for n in lengths:
                out.setdefault(("", n), set()).add(code)
                if prefix:
                    out.setdefault((prefix, n), set()).add(code)
    return {key: tuple(sorted(codes)) for key, codes in out.items()}


@functools.lru_cache(maxsize=1)
def _other_trunks() -> dict[int, str]:
    """The calling codes whose national numbers are written after a trunk prefix other than
    `0` (Russia's and Kazakhstan's `8`, Hungary's `06`), and that prefix."""
    return {code: prefix for code, prefix in _national_codes() if prefix not in ("", "0")}


@functools.lru_cache(maxsize=1)
def _trunk_prefixes() -> tuple[str, ...]:
    return tuple(sorted({prefix for _, prefix in _national_codes() if prefix}))


def _national_matches(digits: str, valid: Callable[[int, str], bool] | None = None
                      ) -> Iterator[tuple[int, str]]:
    """Each calling code under which `digits` is a number valid (`valid`: of any type, or of
    one) in the national format of a region: after its trunk prefix (`0…`, Russia's `8 (495)
    …`), or without one (regions with no trunk prefix, and mobiles that are written without
    it, such as China's `131 2345 6789`); and the national number."""
    valid = _valid_for_code if valid is None else valid
    index = _codes_by_prefix_and_length()
    for prefix in _trunk_prefixes():
        if digits.startswith(prefix):
            rest = digits[len(prefix):]
            for code in index.get((prefix, len(rest)), ()):
                if valid(code, rest):
                    yield code, rest
    if digits[0] != "0":
        for code in index.get(("", len(digits)), ()):
            if valid(code, digits):
                yield code, digits


def _bare_international(s: str, digits: str, work: ScanWork) -> bool:
    """A calling code and a number with no `+`, as telecom logs and exports write them
    (`msisdn=923144242177`, `destination_addr=8801733729819`): asked only where a phone
    word names the number."""
    return (len(digits) >= 11 and s.isdigit() and work.validated(_international_valid(digits))
            and not _international_business(digits))


def _personal_somewhere(digits: str, work: ScanWork) -> bool:
    """`digits` is a number valid in some region's national format and, in one such region
    at least, not a business's line (the check is counted as validated work)."""
    personal = None  # (None: valid nowhere; False: a business's line wherever valid)
    for code, national in _national_matches(digits):
        personal = not business_line(code, national)
        if personal:
            break
    return work.validated(personal is not None) and bool(personal)


def _valid_for_code(country_code: int, national: str) -> bool:
    return any(len(national) in lengths and pattern.fullmatch(national) is not None
               for pattern, lengths in _country_types(country_code))


_NAMED_REGIONS = 4
# (a number after its `+`, not a percentage: `+7,4 %`)
_PLUS_CODE = re.compile(r"\+[ \t]?\(?(\d{1,3})\)?[ \t.-]?\d[\d \t.()-]{5,}")
# the same after the international prefix `00`, where a blank sets the code apart (`00961 71
# 552 107`; not a run of digits, `0045678`)
_ZERO_ZERO_CODE = re.compile(r"(?<![\w.,])00([1-9]\d{0,2})[ \t]\d[\d \t.()-]{5,}")
# country domains that name no country (`.io`, `.co`, `.me`, `.tv`, `.ai`: used the world over)
_GENERIC_CC_DOMAINS = frozenset(("IO", "CO", "ME", "TV", "AI", "LY", "FM", "GG", "TO", "CC",
                                 "WS", "SH", "AC", "GL", "AM", "VC", "SO", "ST", "NU", "TK"))
_REGION_CODES = {region: meta_code for meta_code, regions
                 in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items() for region in regions
                 if region != "001" and region not in _GENERIC_CC_DOMAINS}
_REGION_CODES["UK"] = 44  # (the domain `.uk`, the region `GB`)
# Letters that one country's language alone writes, and scripts one country alone uses: a
# text in that language is read with its country's mobile numbers in mind (`Paweł Dudek –
# 601 300 003`, `제 개인 번호 010-7112-1478`; `ScanWork.spoken`). Letters several languages
# share (`ä`, `ø`, `ñ`, Arabic, Cyrillic's common ones, Chinese) name none.
_LANGUAGE_LETTERS = {"PL": "łŁśŚźŹżŻ", "CZ": "řŘůŮ", "SK": "ľĽĺĹŕŔ", "HU": "őŐűŰ",
                     "RO": "șȘțȚ", "TR": "ğĞı", "AZ": "əƏ", "VN": "ưƯơƠ", "LV": "ņŅļĻķĶģĢ",
                     "LT": "ėĖųŲįĮ", "IS": "þÞ", "UA": "їЇєЄґҐ", "BY": "ўЎ", "KZ": "ұҰқҚ",
                     "RS": "ђЂћЋ", "MK": "ѓЃќЌѕЅ", "MN": "өӨүҮ"}  # (Mongolian's Cyrillic;
# Kazakh writes them too, with letters Mongolian has not: `_language_region`)
_LANGUAGE_SCRIPTS = {"KR": "\uac00-\ud7a3", "JP": "\u3040-\u30ff", "TH": "\u0e00-\u0e7f",
                     "GR": "\u0370-\u03ff", "IL": "\u0590-\u05ff", "GE": "\u10a0-\u10ff",
                     "AM": "\u0531-\u058a", "LK": "\u0d80-\u0dff", "KH": "\u1780-\u17ff",
                     "LA": "\u0e80-\u0eff", "MM": "\u1000-\u109f", "ET": "\u1200-\u137f",
                     "IN": "\u0900-\u097f\u0a00-\u0aff\u0b00-\u0bff\u0c00-\u0d7f"}
_LANGUAGE_MARK = re.compile("[" + "".join(_LANGUAGE_LETTERS.values())
                            + "".join(_LANGUAGE_SCRIPTS.values()) + "]")
_LETTER_REGION = {c: region for region, letters in _LANGUAGE_LETTERS.items() for c in letters}
_KAZAKH_LETTERS = re.compile("[" + _LANGUAGE_LETTERS["KZ"] + "әӘғҒңҢіІ]")
_SCRIPT_REGIONS = tuple((re.compile("[" + ranges + "]"), region)
                        for region, ranges in _LANGUAGE_SCRIPTS.items())


def _language_region(text: str) -> str | None:
    """The country the first letter of `_LANGUAGE_LETTERS` or `_LANGUAGE_SCRIPTS` in `text`
    names (one search; none in an ASCII text)."""
    m = None if text.isascii() else _LANGUAGE_MARK.search(text)
    if m is None:
        return None
    c = m.group()
    region = _LETTER_REGION.get(c) or next(r for p, r in _SCRIPT_REGIONS if p.match(c))
    if region == "MN" and _KAZAKH_LETTERS.search(text):
        return "KZ"  # (Kazakh writes `ө` and `ү` too: `төлқұжатыңның`)
    return region


# Argentina's mobiles as Argentines write them: the trunk `0`, the area code, `15`, the
# subscriber's number (`0341 15-760-4349`, `03462 15-50-3804`; +54 9, the area, the number)
_ARGENTINE_MOBILE = re.compile(r"\(?0(\d{2,4})\)?[ -]15[ -]?(\d[\d -]{5,9}\d)")
# a number written in thousands (a first group of one or two digits, then groups of three)
_THOUSANDS = re.compile(r"\d{1,2}(?:[ ,]\d{3})+")


def _spoken_mobile(spoken: tuple[int, bool], s: str, digits: str, listed: bool = False) -> bool:
    """`s` is a mobile number of the country a text's language names (`_language_region`;
    its calling code, and whether its numbers are written after a trunk `0`), written in
    groups as people write phone numbers, or run together as a list's item (`Αικατερίνη
    Λάμπρου – 6974249765`, `listed`): only mobiles, since the same text's company
    switchboards, hotlines and registry numbers (`Infolinia: 22 555 01 90`, `REGON
    660991082`) are its fixed and special numbers."""
    code, zero = spoken
    if s.isdigit() and not listed:
        return False
    if "." in s or s[-2] in _NUMBER_SEPARATORS or _THOUSANDS.fullmatch(s):
        return False  # (a version `1.15.0.59012`, a check digit `72212730-5`, `9 876 543 210`)
    # (a country with a trunk `0`: its mobiles with it or without, `073874 34999`, `73874 34999`;
    # another trunk, as Kazakhstan's `8`: `8-701-618-09-42`)
    trunk = _other_trunks().get(code)
    if trunk and digits.startswith(trunk) and _mobile_for_code(code, digits[len(trunk):]):
        return True
    return _mobile_for_code(code, digits[1:] if zero and digits[0] == "0" else digits)


@functools.lru_cache(maxsize=64)
def _region_entry(region: str) -> tuple[str, str, frozenset[int], int] | None:
    """A region as `NumberClassifier` checks national numbers: its name, how its numbers are
    written nationally (after `0`, the NANP's way, or as they are), their lengths, its
    calling code."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None or meta.country_code is None:
        return None  # every supported region has both
    lengths = frozenset(meta.general_desc.possible_length or ())
    if meta.national_prefix == "0":
        rule = "zero"  # written nationally, these numbers start with 0
        lengths = frozenset(n + 1 for n in lengths)
    elif meta.country_code == 1:
        rule = "nanp"
    else:
        rule = "any"
    return region, rule, lengths, meta.country_code


class NumberClassifier:
    """Classifies one candidate of digits and separators into at most one personal-data kind.

    Cheap structural checks come first (digit count, national trunk prefix, possible
    lengths, grouping, Luhn) so that libphonenumber and python-stdnum, the costly
    validators, only see plausible numbers, and each call is counted in a `ScanWork`."""

    def __init__(self, regions: list[str], enabled: frozenset[str]) -> None:
        self.enabled = enabled
        self.regions: list[tuple[str, str, frozenset[int], int]] = [
            entry for entry in map(_region_entry, regions) if entry is not None]
        self._codes = frozenset(entry[3] for entry in self.regions)
        if "phone" in enabled:  # compile every country's patterns now, not on a request
            for country_code, _ in _national_codes():
                _country_types(country_code)
            _codes_by_prefix_and_length()

    def regions_named(self, text: str, found: list[Hit], emails: list[Hit]
                      ) -> tuple[tuple[str, str, frozenset[int], int], ...]:
        """The countries a text names besides the operator's (`phone_regions`): the calling
        codes of its international numbers (`+46 72 392 22 71`, `00961 71 552 107`), its
        IBANs' countries and its e-mail addresses' country domains (`@simnet.is`), four at
        most. A contact list that gives one number as `+46 …` writes the next as `072-263 78
        30`."""
        codes: dict[int, None] = {}
        if "+" in text:
            for m in _PLUS_CODE.finditer(text):
                split = _calling_code(m.group(1))
                if split is not None:
                    codes[split[0]] = None
        if "00" in text:
            for m in _ZERO_ZERO_CODE.finditer(text):
                split = _calling_code(m.group(1))
                if split is not None and not split[1]:  # (the whole code before the blank)
                    codes[split[0]] = None
        names = [text[s:s + 2].upper() for s, _, kind in found if kind == "iban"]
        names += [text[text.rfind(".", s, e) + 1:e].upper() for s, e, _ in emails]
        for name in names:
            code = _REGION_CODES.get(name)
            if code is not None:
                codes[code] = None
        out = [_region_entry(_MAIN_REGION[code]) for code in codes
               if code not in self._codes and code != 1][:_NAMED_REGIONS]
        return tuple(entry for entry in out if entry is not None)

    def spoken(self, text: str, named: tuple[tuple[str, str, frozenset[int], int], ...]
               ) -> tuple[int, bool] | None:
        """The country `text`'s language names (`_language_region`), unless the operator's
        regions or the text's own named ones already read its numbers."""
        region = _language_region(text)
        entry = None if region is None else _region_entry(region)
        if entry is None or entry[3] in self._codes or any(r[3] == entry[3] for r in named):
            return None
        return entry[3], entry[1] == "zero"

    def phone(self, s: str, digits: str, work: ScanWork, text: str = "", start: int = 0
              ) -> bool:
        if work.exhausted or s.endswith("-0"):
            return False  # (`+49 221 4710-0`: a company's switchboard, its extension 0)
        if _fictional(s, digits):
            return False
        if start >= 3 and text[start - 1] == "-" and text[start - 3:start - 1].isupper():
            return False  # an identifier's digits (`pedido PED-CO-2024-00917`, `INV-…`; not
            # a prefix of Zulu's: `ku-072 917 3559`)
        if text and _company_line(text, start) and not _EXTENSION_WORD.search(
                text, start, min(len(text), start + len(s) + 16)):
            return False  # (with an extension, `poste 192`, the line reaches a person)
        if s[0] == "+" or s.startswith("(+") or (s.startswith(("00", "(00"))
                                                  and digits.startswith("00")):
            # (`(+57) 322 3760904`, `(+225) 05 45 28 48 59`, `(0048) 524 185 295`: the
            # calling code in brackets)
            international = digits[2:] if s[0] != "+" and digits.startswith("00") else digits
            if work.validated(_international_valid(international)):
                return not _international_business(international)
            # `+1-545-880-7302`, `+44 (0)1632 960540`: written in groups as phone numbers
            # are, a number of the calling code's length is one, assigned or not
            return (8 <= len(international) <= 15 and len(_DIGIT_GROUPS.findall(s)) >= 3
                    and len(set(_NONDIGIT.findall(s[1:].translate(_PARENS))) - {" "}) <= 1
                    and _international_possible(international))
        if not 8 <= len(digits) <= 12:
            ar = _ARGENTINE_MOBILE.fullmatch(s) if len(digits) == 13 else None
            if ar is not None:  # `0341 15-760-4349`: +54 9 341 760-4349
                return work.validated(_mobile_for_code(
                    54, "9" + ar.group(1) + _NONDIGIT.sub("", ar.group(2))))
            if 6 <= len(digits) <= 7 and text and not work.regions:
                # no country named: a short number right after a phone word (`Sími: 860
                # 3887`, `tlf 417 648`), a mobile somewhere, in groups or run together
                return (_uniform(s) and not any(c in s for c in ".()")
                        and not _THOUSANDS.fullmatch(s) and not digits.startswith("555")
                        and _labelled_phone(text, start)
                        and work.validated(_mobile_somewhere(digits)))
            if 6 <= len(digits) <= 7 and work.regions and text:
                # a named country's short numbers (Iceland's, Fiji's `723 5503`, Greenland's
                # `58 78 67`): written in groups where a phone word or column names them, or
                # run together after one (`sími 7790943`); a mobile's in groups needs no word
                # where a list sets it apart (`sigurdur@eyral.is – 692 5800`; not `build 710
                # 4818`)
                worded = _phone_named(text, start, start + len(s))
                before = text[max(0, start - 16):start].rstrip(" \t")
                listed = " " in s.strip("()") and (
                    before[-1] in _LIST_MARKS if before else start <= 16)
                return (worded or listed) and any(
                    region[1] == "any" and (
                        self._national(region, s, digits, work) if worded
                        else work.validated(_mobile_for_code(region[3], digits)))
                    for region in work.regions)
            if (len(digits) == 13 and digits[0] == "0" != digits[1] and text
                    and _phone_named(text, start, start + len(s))):
                # (Austria's mobiles reach 13 digits with the trunk `0`: `Handy: 0676 933084154`)
                return _uniform(s) and _personal_somewhere(digits, work)
            return (12 < len(digits) <= 15 and bool(text)
                    and _phone_named(text, start, start + len(s))
                    and _bare_international(s, digits, work))
        named = None  # a phone word stands before the number (read once, when needed)
        if len(digits) >= 9:  # (12 digits: Indonesia's mobiles, `085655224170`)
            business = False  # valid in a region of the operator's, as a business's line
            for region in (*self.regions, *work.regions):
                if work.exhausted:
                    break
                # ten digits run together are a student's, an order's, a second's number as
                # often as a US phone's: only where the text says it is a phone
                if region[1] == "nanp" and s.isdigit():
                    if named is None:
                        named = bool(text) and _phone_named(text, start, start + len(s))
                    if not named:
                        continue
                if self._national(region, s, digits, work) or (
                        region[1] == "zero" and digits[0] != "0" and region[3] not in self._codes
                        and work.validated(_mobile_for_code(region[3], digits))):
                    # (a named country's mobile written without its trunk `0`, as Peru's
                    # and Chile's are: `940045822`, `9 7345 4708`)
                    if not self._business(region, digits) and (
                            region[3] in self._codes or not text
                            or not _context(text, start, _BUSINESS_LINE_WORDS, 40)):
                        return True  # (a named country's: not after `Orders line:`)
                    business = True
            if business:
                # (with a person's phone word, another country may read it as a mobile:
                # Nigeria's `0808 …` is GB's freephone; not with a hotline's word)
                if named is None:
                    named = bool(text) and _phone_named(text, start, start + len(s))
                if not named or _context(text, start, _BUSINESS_LINE_WORDS, 40):
                    return False
        if len(digits) == 8 and work.regions and not s.isdigit() and text:
            # a named country's numbers of eight digits, in groups (Oman's `7539 1464` in a
            # list whose other numbers are `+968 …`; Lebanon's `03-715228`, its trunk `0`
            # and seven digits, beside `00961 …`), not a business's line
            for region in work.regions:
                if work.exhausted:
                    break
                if (region[1] != "nanp" and self._national(region, s, digits, work)
                        and not self._business(region, digits)
                        and not _context(text, start, _BUSINESS_LINE_WORDS, 40)):
                    return True
        if work.spoken is not None and work.validated(_spoken_mobile(
                work.spoken, s, digits, s.isdigit() and bool(text) and _list_item(text, start, s))):
            row = _table_row(text, start) if text else None
            if row is None or row[2] not in ("\t", "|") or _phone_named(text, start,
                                                                     start + len(s)):
                return True  # (a table's cells are its column's: amounts, unless it is named)
        if (text and len(digits) >= 8 and "." not in s and _contact_row(text, start, s)
                and work.validated(_mobile_somewhere(digits))):
            return True
        # Any region's national format, where the text says it is a phone number ("call me
        # on", "tel.", "mobile"): the operator's `phone_regions` cannot list every caller.
        if named is None:
            named = bool(text) and _phone_named(text, start, start + len(s))
        if not ((named or (text and _email_on_line(text, start, len(s), work.emails)))
                and _uniform(_AREA_CODE.sub("", s, count=1))):
            return False
        return _personal_somewhere(digits, work) or (
            bool(named) and _bare_international(s, digits, work))

    @staticmethod
    def _business(region: tuple[str, str, frozenset[int], int], digits: str) -> bool:
        """A number `_national` accepted for `region` is a business's line."""
        _, rule, _, country_code = region
        if rule == "zero":
            return business_line(country_code, digits[1:])
        if rule == "nanp":
            return business_line(1, digits[-10:])
        return business_line(country_code, digits)

    def _national(self, region: tuple[str, str, frozenset[int], int], s: str, digits: str,
                  work: ScanWork) -> bool:
        """A number written the region's national way. Regions with a `0` trunk prefix and
        the NANP are checked on the compiled metadata (as `_international_valid`; equal to
        `is_valid_number` on 20,000 random FR, GB and US numbers each), others by
        libphonenumber's parser, which knows their trunk rewriting rules."""
        name, rule, lengths, country_code = region
        nd = len(digits)
        if rule == "zero":
            if (digits[0] != "0" or (lengths and nd not in lengths) or not _uniform(s)
                    or s[-2] in _NUMBER_SEPARATORS):
                return False  # not 0-945843-65-8 (an ISBN): a last group of one digit
            return work.validated(_valid_for_code(country_code, digits[1:]))
        if rule == "nanp":
            groups = tuple(len(g) for g in _DIGIT_GROUPS.findall(s))
            national = digits[1:] if nd == 11 else digits
            if groups not in _NANP_GROUPS or (nd == 11 and digits[0] != "1") or nd == 9:
                return False
            if national[0] in "01" or national[3] in "01":  # (368) 193-0364: made up, but
                return "(" in s and groups[-3:] == (3, 3, 4)  # written as a phone number
            # written (415) 555-2671 or 415-555-2671, the shape is the evidence: area codes
            # libphonenumber does not list yet (or fictional ones, 555) are phones too
            return work.validated(len(groups) > 2 or _valid_for_code(1, national))
        try:
            number = phonenumbers.parse(s, name)
        except phonenumbers.NumberParseException:
            return work.validated(False)
        return work.validated(phonenumbers.is_valid_number(number))

    def card(self, text: str, start: int, s: str, digits: str) -> bool:
        """Grouping, issuer and Luhn: all cheap, so card candidates cost no budget. Not a
        payment processor's published test number (`_TEST_CARDS`)."""
        nd = len(digits)
        return ("card" in self.enabled and 12 <= nd <= 19 and s[0] != "+"
                and _CARD_FMT.fullmatch(s) is not None and _card_brand_ok(digits)
                and _luhn_ok(digits) and (nd > 12 or _context(text, start, _CARD_CONTEXT))
                and digits not in _TEST_CARDS and "00000000" not in digits)

    def classify(self, text: str, start: int, end: int, work: ScanWork) -> str | None:
        s = work.window(text[start:end])
        if not s.isascii():
            s = s.translate(_SPACES)
        digits = _NONDIGIT.sub("", s)
        nd = len(digits)
        if nd < 4:
            return None
        en = self.enabled
        dots = s.count(".")
        if dots == 3 and "ipv4" in en and _IPV4.fullmatch(s):
            return self._ipv4(text, start, s, work)
        date = _DATE.match(s)
        if nd < 8 or date:
            if (nd >= 6 and not date and "phone" in en
                    and self.phone(s, digits, work, text, start)):
                return None if _named_not_phone(text, start) else "phone"
            return None  # decimals, dates, versions, short numbers
        if nd == 9:
            return self._nine(text, start, s, digits, work)
        if (nd == 15 and (digits[0] == "3" or digits[:4] in ("1800", "2131"))
                and self.card(text, start, s, digits)):
            return "card"  # Amex and JCB before NIR: no NIR starts with 3, 1800 or 2131 is rare
        if (nd == 15 and "fr_nir" in en and _NIR_FMT.fullmatch(s)
                and int(digits[13:]) == 97 - int(digits[:13]) % 97
                and work.check(_nir.is_valid, s)):
            return "fr_nir"
        if (nd == 14 and "fr_siret" in en and _SIRET_FMT.fullmatch(s)
                and (" " in s or _context(text, start, _COMPANY_CONTEXT))
                and work.check(_siret.is_valid, digits)):
            return "fr_siret"
        if 12 <= nd <= 19 and self.card(text, start, s, digits):
            return "card"
        if "phone" in en and nd <= 15 and self.phone(s, digits, work, text, start):
            return None if _named_not_phone(text, start) else "phone"
        return None

    def _ipv4(self, text: str, start: int, s: str, work: ScanWork) -> str | None:
        if s in work.versions:
            return None
        if (_version_at(text, start, s)
                or (s[0] in "012" and s[1] == "."
                    and _OID_NEAR.search(text, max(0, start - 300), start))
                or any(_version_at(text, i, s) for i in _near(text, s, start))):
            work.versions.add(s)
            return None
        ip = ipaddress.IPv4Address(s)
        if ip.is_loopback or ip.is_unspecified or s.startswith("255.") or any(
                ip in net for net in _DOC_NETS4) or s in _PUBLIC_RESOLVERS:
            return None
        return "ipv4"

    def _nine(self, text: str, start: int, s: str, digits: str, work: ScanWork) -> str | None:
        """Nine digits: a US SSN when written 123-45-6789 or after its name, an ITIN after
        its name, a SIREN after a company word, else perhaps a phone number."""
        en = self.enabled
        formatted = _SSN_FMT.fullmatch(s) is not None
        if digits[0] == "9":
            if ("us_itin" in en and _context(text, start, _ITIN_CONTEXT)
                    and work.check(_itin_ok, digits)):
                return "us_itin"
        elif ("us_ssn" in en and (formatted or _context(text, start, _SSN_CONTEXT))
                and work.check(_ssn.is_valid, digits)):
            return "us_ssn"
        if ("fr_siren" in en and _SIREN_FMT.fullmatch(s) and (
                _context(text, start, _COMPANY_CONTEXT)
                or _RCS_AFTER.match(text, start + len(s)) is not None)
                and work.check(_siren.is_valid, digits)):
            return "fr_siren"
        if "phone" in en and self.phone(s, digits, work, text, start):
            return None if _named_not_phone(text, start) else "phone"
        return None


# A number is digit groups joined by one separator: `06 12 34 56 78`, `(415) 555-2671`,
# `+33 (0)1 23`, `4111-1111-1111-1111`. Inside a run of digits and separators, any other
# separator (`  `, ` - `, `. `, `--`) ends one number and starts the next: a *segment*.
_RUN = re.compile(rb"0[0 .\-()]*0")
_MULTI_SEP = re.compile(rb"[ .\-()]{2,}")
_JOINERS = frozenset((b" (", b"-(", b") ", b")-"))
_GROUP = re.compile(rb"0+")
# Every kind fits in 40 characters (`+1 (415) 555-2671`, `4111 1111 1111 1111 111`,
# `2 84 05 75 123 456 78`); a longer segment is a table of numbers, searched for cards only.
_SHORT = 40
_TABLE_CARD_GROUPS = 6
_EXTENSION = re.compile(r"(?:x|ext\.?|extn\.?|extension)\s?\d{1,6}(?!\w)", re.I)


def _segments(shape: bytes, start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    s = start
    for m in _MULTI_SEP.finditer(shape, start, end):
        if m.group() not in _JOINERS:
            out.append((s, m.start()))
            s = m.end()
    out.append((s, end))
    return out


# a list's item number before a value (`1) …`, `12) …`)
_ITEM_NUMBER = re.compile(r"\d{1,2}\)[ \t]")


def _extend_left(text: str, start: int, end: int) -> int:
    """Include a leading `+` or `(` of a phone number (`+1 (415) 555-2671`), not a bracket
    opened around the number (`(06 12 34 56 78)`, `(1 49 05 33 039 269 52)`)."""
    first = start
    for _ in range(2):
        if first > 0 and text[first - 1] in "+(":
            first -= 1
    if text[first] == "(" and text.count("(", first, end) > text.count(")", first, end):
        first += 1
    return first


# Card numbers no one holds: the test numbers payment processors publish for their sandboxes
# (Stripe, Braintree, Adyen, PayPal, Worldpay: QA notes and API docs are full of them), and
# (in `card`) any number holding eight zeros in a row (Stripe's `4000 0000 0000 0002`
# declines; an issued number holds such a run with a probability under 1e-7).
_TEST_CARDS = frozenset((
    "4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222",
    "5200828282828210", "5105105105105100", "378282246310005", "371449635398431",
    "6011111111111117", "6011000990139424", "3056930009020004", "36227206271667",
    "3566002020360505", "6200000000000005", "4111111111111111", "4012888888881881",
    "4222222222222", "5431111111111111", "378734493671000", "6011000000000004",
    "3530111333300000", "3566111111111113", "30569309025904", "38520000023237",
    "4005519200000004", "4009348888881881", "4012000033330026", "4012000077777777",
    "4217651111111119", "4500600000000061", "4988438843884305", "2222405343248877",
    "2223000048400011", "6759649826438453", "4111111145551142", "5555444433331111",
    "370000000000002", "4166676667666746", "6011601160116611", "3600666633336666",
    "5101180000000007", "2222400070000005", "4917610000000000", "4484070000000000",
    "5454545454545454", "4444333322221111", "5555555555555557", "4000000000000010"))


_LIST_MARKS = frozenset("\n–—-,:;(|/")  # (or the text's start)
_ITEM_MARKS = frozenset("–—-:|")


def _list_item(text: str, start: int, s: str) -> bool:
    """`s` at `start` is a list's item after its name: a dash, a colon or a bar before it
    (`Λάμπρου – 6974249765`), nothing but its line's end after it."""
    before = text[max(0, start - 8):start].rstrip(" \t")
    end = start + len(s)
    return bool(before) and before[-1] in _ITEM_MARKS and (
        end == len(text) or text[end] in "\r\n")


# A contact list's row: a person's name, a dash, a number in a phone's groups, then the
# line's end or the row's next field (`Sekou Dembélé – 74 22 07 13 – camion AA-4521-MD`,
# `Rosa Mendoza – 7752 2594`). Rows are read on lines of at most `_ROW_LINE` characters.
_ROW_NUMBER = re.compile(r"[–—-][ \t]*\(?\+?\d[\d ()/-]{5,16}\d\)?[ \t]*(?:[–—,|(/;-]|$)")
_ROW_LINE = 200
_ROW_REACH = 5  # lines above and below searched for another row
_ROW_CHECKS = 2  # other rows validated at most


def _named_person(lead: str) -> bool:
    """`lead` holds a person's name as lists write it: two capitalised words in a row
    (`Rosa Mendoza`, `Pak Slamet`), or a word of a script with no capitals (Amharic,
    Arabic, Thai, Chinese: `ብሩክ አሰፋ`); not `Whisky, 70 cl flessen`, `mBank`, `SN 5831…`."""
    words = _WORDS.findall(lead)
    for a, b in itertools.pairwise(words):
        if a[0].isupper() and b[0].isupper() and a[1:2].islower() and b[1:2].islower():
            return True
    return any(not (w[0].isupper() or w[0].islower()) for w in words)


@functools.lru_cache(maxsize=1024)
def _mobile_somewhere(digits: str) -> bool:
    """`digits` is a mobile number in some country's national format (cached: a list's rows
    are asked again as their neighbours' other rows)."""
    return next(_national_matches(digits, _mobile_for_code), None) is not None


def _row_lead(text: str, ls: int, dash: int) -> bool:
    """The text from `ls` to the dash at `dash` names a person: a letter or a bracket ends
    it, and it holds a name (`_named_person`); not `Poly EncorePro 320 –`, `SN 5831… –`."""
    name = text[ls:dash].rstrip(" \t")
    return (name[-1:].isalpha() or name.endswith(")")) and _named_person(name)


def _contact_row(text: str, start: int, s: str) -> bool:
    """`s` at `start` is a contact list's number (`_ROW_NUMBER`): after a person's name and a
    dash (`_row_lead`), in one kind of separator, and another such row within `_ROW_REACH`
    lines whose number is a mobile somewhere too (or international): a list of phones, not
    one line's amount, a range (`0419 00001 – 0419 12000`), a serial or a product's code."""
    line = _line_at(text, start)
    if line is None or line[1] - line[0] > _ROW_LINE or not _uniform(s) or (
            s[-2] in _NUMBER_SEPARATORS or (_THOUSANDS.fullmatch(s) and s[0] != "0")):
        return False  # (an amount in thousands; no amount starts with a `0`: Eritrea's `07
        # 767 240`)
    ls, le = line
    lead = text[ls:start].rstrip(" \t")
    if not lead or lead[-1] not in "–—-" or not _row_lead(text, ls, ls + len(lead) - 1):
        return False
    tail = text[start + len(s):le].lstrip(" \t")
    if tail and tail[0] not in "–—,|(/;-":
        return False
    lo, hi = ls, le
    for _ in range(_ROW_REACH):  # (each line's end looked for within `_ROW_CHARS`)
        if lo:
            above = _line_at(text, lo - 1)
            lo = lo if above is None else above[0]
        if hi < len(text):
            below = _line_at(text, hi + 1)
            hi = hi if below is None else below[1]
    a, checked = lo, 0
    while a < hi and checked < _ROW_CHECKS:
        b = text.find("\n", a, hi)
        b = hi if b < 0 else b
        m = _ROW_NUMBER.search(text, a, b) if a != ls and b - a <= _ROW_LINE else None
        if m is not None and _row_lead(text, a, m.start()):
            checked += 1  # (validated: at most `_ROW_CHECKS` rows a candidate)
            other = _NONDIGIT.sub("", m.group())
            if "+" in m.group():  # (`Claire Öztürk – +44 7956 713835`)
                if 8 <= len(other) <= 15 and _international_valid(other):
                    return True
            elif 8 <= len(other) <= 12 and _mobile_somewhere(other):
                return True
        a = b + 1
    return False


def _fictional(s: str, digits: str) -> bool:
    """A number no one can hold: the NANP's 555-0100 to 555-0199, reserved for fiction and
    documentation (`+1-555-0100`, `(415) 555-0142`), or whose last groups are all zeros, five
    digits or more or with another group of zeros (`+30 210 000 0000`, `0400 000 00`,
    `+55 (00) 90000-0000`; not `010-2000-0000`)."""
    groups = _DIGIT_GROUPS.findall(s)
    zeros = 0
    for group in reversed(groups):
        if group.strip("0"):
            break
        zeros += len(group)
    if zeros >= 5 or (zeros and any(not g.strip("0") for g in groups[1:-1])):
        return True  # (or a group of zeros besides: `+55 (00) 90000-0000`, a format's mask)
    if s[0] == "+" or s.startswith("(+") or digits.startswith("001"):
        national = digits[3:] if digits.startswith("001") else digits[1:]
        if not digits.startswith(("1", "001")) or len(national) not in (7, 10):
            return False
    else:
        national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
        if len(national) != 10 or national[0] in "01":
            return False
    return national[-7:-2] == "55501"


class _NumberScan:
    """One text's number candidates: segments of runs, whole or in card windows."""

    __slots__ = ("clf", "out", "shape", "taken", "text", "work")

    def __init__(self, text: str, shape: bytes, clf: NumberClassifier, taken: bytearray,
                 work: ScanWork, out: list[Hit]) -> None:
        self.text, self.shape, self.clf = text, shape, clf
        self.taken, self.work, self.out = taken, work, out

    def run(self) -> None:
        shape = self.shape
        for m in _RUN.finditer(shape):
            start, end = m.span()
            if end - start <= _SHORT and _MULTI_SEP.search(shape, start, end) is None:
                self.segment(start, end)
            else:
                for s, e in _segments(shape, start, end):
                    self.segment(s, e)

    def window(self, start: int, end: int) -> str:
        """A card candidate, its thin and non-breaking spaces made plain."""
        s = self.work.window(self.text[start:end])
        return s if s.isascii() else s.translate(_SPACES)

    def add(self, start: int, end: int, kind: str) -> None:
        self.out.append((start, end, kind))
        self.taken[start:end] = b"\x01" * (end - start)

    def segment(self, start: int, end: int) -> None:
        self.work.segments += 1
        if end - start < 7:  # `1.2.3.4` is the shortest kind
            return
        shape = self.shape
        # a segment glued to letters is part of a word or an identifier (hashes, ids),
        # unless the letters are a phone extension (`555-2671x123`)
        left = start > 0 and shape[start - 1] in b"Aa"
        right = (end < len(shape) and shape[end] in b"Aa"
                 and _EXTENSION.match(self.text, end) is None)
        if end - start > _SHORT:
            self.table(start, end, left, right)
        elif not (left or right) and self.taken.find(1, start, end) == -1:
            self.whole(start, end)
        elif (left or right) and "ipv4" in self.clf.enabled and shape.count(
                b".", start, end) >= 3:
            self.addresses(start, end, apart=True)  # `sftp-gw01 (10.0.8.33)`

    def whole(self, start: int, end: int) -> None:
        text, clf = self.text, self.clf
        first = _extend_left(text, start, end)
        kind = clf.classify(text, first, end, self.work)
        if kind is not None:
            self.add(first, end, kind)
            return
        item = _ITEM_NUMBER.match(text, start, end) if first == start else None
        if item is not None:
            # a list's item number, its bracket closing before the value (`1) 4946 0982 …`):
            # the value alone
            self.whole(item.end(), end)
            return
        if "ipv4" in clf.enabled and self.shape.count(b".", start, end) >= 6:
            self.addresses(start, end)
        elif "card" in clf.enabled and end - start > 16:
            # a card number followed by more digits (CVV, expiry, a date): its leading
            # groups, or its first alone (`4788186419160491 14.09.2025`)
            groups = [g.end() for g in _GROUP.finditer(self.shape, start, end)]
            for e in reversed(groups[:-1]):
                window = self.window(start, e)
                if clf.card(text, start, window, _NONDIGIT.sub("", window)):
                    self.add(start, e, "card")
                    return

    def addresses(self, start: int, end: int, apart: bool = False) -> None:
        """IPv4 addresses listed with single spaces: `10.0.0.1 10.0.0.2`; `apart`: in a
        segment glued to letters, only an address with no letter or digit against it (after
        a name's digits: `sftp-gw01 (10.0.8.33)`, not `python3.11.2.1`)."""
        text = self.text
        for m in _IPV4_IN.finditer(text, start, end):
            if apart and ((m.start() > 0 and text[m.start() - 1].isalnum())
                          or (m.end() < len(text) and text[m.end()].isalnum())):
                continue
            if (self.taken.find(1, m.start(), m.end()) == -1
                    and self.clf.classify(self.text, m.start(), m.end(), self.work) == "ipv4"):
                self.add(m.start(), m.end(), "ipv4")

    def table(self, start: int, end: int, left: bool, right: bool) -> None:
        """A long segment: a table of numbers. Card numbers are looked for at every group
        (at most 6 groups and 19 digits a window), other kinds only as IPv4 lists."""
        groups = [g.span() for g in _GROUP.finditer(self.shape, start, end)]
        groups = groups[int(left):len(groups) - int(right)]
        self.work.groups += len(groups)
        if "card" in self.clf.enabled:
            self.table_cards(groups)
        if "ipv4" in self.clf.enabled and self.shape.count(b".", start, end) >= 3:
            self.addresses(groups[0][0] if groups else start, groups[-1][1] if groups else end)

    def table_cards(self, groups: list[tuple[int, int]]) -> None:
        """Card numbers in a table: a window must be set apart from its neighbours by a
        separator unlike its own (`4111-1111-1111-1111 5555-…`, or plain 16 digits between
        spaces). In `1234 5678 9012 3456 7890` nothing says where a card would start, and
        Luhn accepts one window in ten: a table of 4-digit numbers is not a card."""
        text, shape, clf = self.text, self.shape, self.clf
        n = len(groups)
        seps = [shape[groups[k][1]:groups[k + 1][0]] for k in range(n - 1)]
        i = 0
        while i < n:
            gs, ge = groups[i]
            last = -1
            if 13 <= ge - gs <= 19:
                window = self.window(gs, ge)
                if clf.card(text, gs, window, window):
                    last = i
            elif ge - gs == 4 and i + 1 < n and (i == 0 or seps[i - 1] != seps[i]):
                inner, digits = seps[i], 4
                for j in range(i + 1, min(n, i + _TABLE_CARD_GROUPS)):
                    digits += groups[j][1] - groups[j][0]
                    if digits > 19 or seps[j - 1] != inner:
                        break
                    if digits >= 13 and (j == n - 1 or seps[j] != inner):
                        window = self.window(gs, groups[j][1])
                        if clf.card(text, gs, window, _NONDIGIT.sub("", window)):
                            last = j
            if last >= 0 and self.taken.find(1, gs, groups[last][1]) == -1:
                self.add(gs, groups[last][1], "card")
                i = last + 1
            else:
                i += 1


# --- IBAN and French VAT ---------------------------------------------------------------------

_FR_VAT = re.compile(r"FR ?\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)")
_IBAN_DIGITS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})


_IBAN_DB = numdb.get("iban")
_BBAN_PART = re.compile(r"([1-9][0-9]*)!([nac])")
_BBAN_CLASS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}


@dataclass(frozen=True, slots=True)
class _IbanFormat:
    length: int
    bban: re.Pattern[str]
    national: Callable[[str], bool] | None  # python-stdnum's national check, if any


# Countries whose banks write IBANs that SWIFT's registry (and so python-stdnum's) does not
# list yet, with their lengths: the franc zones of West and Central Africa (UEMOA 28, CEMAC
# 27), Angola, Mozambique, Cape Verde, Guinea-Bissau (25), Algeria, Iran (26), Comoros,
# Madagascar (27), Morocco (28). Only ISO 7064 mod 97 checks them.
_UNREGISTERED_IBAN_LENGTHS = {
    **dict.fromkeys(("BF", "BJ", "CI", "ML", "NE", "SN", "TG", "MA"), 28),
    **dict.fromkeys(("CF", "CG", "CM", "GA", "GQ", "TD", "KM", "MG"), 27),
    **dict.fromkeys(("DZ", "IR"), 26), **dict.fromkeys(("AO", "MZ", "CV", "GW"), 25)}


@functools.cache
def _iban_format(country: str) -> _IbanFormat | None:
    """The IBAN length and account-number structure of a country of python-stdnum's
    registry (what `stdnum.iban.validate` looks up in it for every number, ~50 µs: here
    once per country), or of `_UNREGISTERED_IBAN_LENGTHS` (letters and digits), or None."""
    bban = _IBAN_DB.info(country)[0][1].get("bban")
    if not bban:
        n = _UNREGISTERED_IBAN_LENGTHS.get(country)
        return None if n is None else _IbanFormat(n, re.compile(f"[A-Z0-9]{{{n - 4}}}"), None)
    parts = _BBAN_PART.findall(bban)
    pattern = re.compile("".join(f"{_BBAN_CLASS[kind]}{{{n}}}" for n, kind in parts))
    return _IbanFormat(4 + sum(int(n) for n, _ in parts), pattern, _national_check(country))


def _national_check(country: str) -> Callable[[str], bool] | None:
    """python-stdnum's national check of an IBAN whose ISO 7064 check and structure already
    passed: each `stdnum.<cc>.iban.is_valid` first runs the generic validation again (~20 µs,
    a registry lookup); for Belgium, Spain and Norway the national part alone is called
    (the account's check digits and a known bank; the CCC; the kontonummer), others (Montenegro)
    keep the module's `is_valid`. A test holds each to python-stdnum's answer."""
    if country == "BE":
        return _be_account_ok
    if country == "ES":
        return lambda compact: _es_ccc.is_valid(compact[4:])
    if country == "NO":
        return lambda compact: _no_kontonr.is_valid(compact[4:])
    module: NumberValidationModule | None = get_cc_module(country.lower(), "iban")
    return module.is_valid if module is not None else None


def _be_account_ok(compact: str) -> bool:
    """`stdnum.be.iban`'s own checks: the account's two check digits (mod 97, 97 for 0) and
    a bank code python-stdnum knows (its table read once per code)."""
    body = compact[4:]
    return (body.isdigit() and int(body[-2:]) == (int(body[:-2]) % 97 or 97)
            and _be_bank_known(body[:3]))


@functools.cache
def _be_bank_known(code: str) -> bool:
    return bool(_be_iban.info("BE00" + code + "000000000"))


@functools.cache
def _iban_body(chars: int) -> re.Pattern[str]:
    """Exactly `chars` IBAN characters after the check digits, in groups separated by single
    spaces or dashes (`GB82 WEST 1234 5698 7654 32`), and nothing glued after them."""
    return re.compile(rf"(?:[ \-]?[A-Z0-9]){{{chars}}}(?![A-Za-z0-9])")


def _iban_at(text: str, start: int, work: ScanWork) -> int:
    """The end of the IBAN at `start` (country letters, check digits), or 0. The country
    fixes the length, so there is one candidate per start. The checks are python-stdnum's
    (`stdnum.iban.is_valid`): ISO 7064 mod 97, the country's structure, and its national
    check where python-stdnum has one (Belgium, Spain, Montenegro, Norway)."""
    fmt = _iban_format(text[start:start + 2])
    if fmt is None:
        return 0
    m = _iban_body(fmt.length - 4).match(text, start + 4)
    if m is None:
        return 0
    body = work.window(m.group()).replace(" ", "").replace("-", "")
    compact = text[start:start + 4] + body
    if int((body + compact[:4]).translate(_IBAN_DIGITS)) % 97 != 1:
        return 0
    if fmt.bban.fullmatch(body) is None:
        return 0
    ok = work.validated(True) if fmt.national is None else work.check(
        fmt.national, compact)
    return m.end() if ok else 0


def _ibans(text: str, shape: bytes, enabled: frozenset[str], work: ScanWork,
           out: list[Hit]) -> None:
    i = shape.find(b"AA00")
    while i != -1:
        nxt = i + 4
        if i == 0 or shape[i - 1] not in b"Aa0":
            end = _iban_at(text, i, work) if "iban" in enabled else 0
            if end:
                out.append((i, end, "iban"))
                nxt = end
            elif "fr_vat" in enabled and text.startswith("FR", i):
                mv = _FR_VAT.match(text, i)
                if mv and work.check(_tva.is_valid, mv.group()):
                    out.append((i, mv.end(), "fr_vat"))
                    nxt = mv.end()
        i = shape.find(b"AA00", nxt)


# Poland's account number as Poles write it (NRB): the IBAN's 26 digits without `PL`, in the
# IBAN's groups (`18 1029 4305 4032 4240 1813 1277`); mod 97 with `PL` put back
_NRB = re.compile(r"(?<!\w)(?<!\d )\d\d(?: \d{4}){6}(?! ?\d)")
_PL = "PL".translate(_IBAN_DIGITS)


def _polish_accounts(text: str, work: ScanWork, out: list[Hit]) -> None:
    for m in _NRB.finditer(text):
        digits = m.group().replace(" ", "")
        if work.validated(int(digits[2:] + _PL + digits[:2]) % 97 == 1):
            out.append((m.start(), m.end(), "iban"))


def _fr_vat_spaced(text: str, shape: bytes, work: ScanWork, out: list[Hit]) -> None:
    i = text.find("FR ")
    while i != -1:
        if shape.startswith(b"AA 00", i) and (i == 0 or shape[i - 1] not in b"Aa0"):
            m = _FR_VAT.match(text, i)
            if m and work.check(_tva.is_valid, m.group()):
                out.append((i, m.end(), "fr_vat"))
        i = text.find("FR ", i + 3)


# --- passports and driving licences ----------------------------------------------------------

# Their numbers have no checksum and any shape, so only a number right after the document's
# name is one: `passport no. X1234567`, `N° de passeport : 12AB34567`, `driver's license
# D1234567`, `permis de conduire n° 123456789012`. All repetitions are bounded.
# US states and Australian states and territories: they issue driving licences
_STATE_CODES = _words(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC NSW VIC QLD TAS ACT NT")
_PASSPORT_OTHER = ("پاسپورٹ", "နိုင်ငံကူးလက်မှတ်", "ፓስፖርት",
                   "hộ chiếu", "护照", "護照", "パスポート", "旅券", "여권", "หนังสือเดินทาง",
                   "דרכון", "جواز السفر", "جواز سفر", "पासपोर्ट", "паспорт", "paszport", "pasport",
                   "pașaport", "διαβατήριο", "διαβατηρίου", "putovnic", "pasoš", "անձնագիր",
                   "கடவுச்சீட்டு", "राहदानी", "گذرنامه", "পাসপোর্ট", "លិខិតឆ្លងដែន",
                   "ໜັງສືຜ່ານແດນ", "pasnummer", "pass nr", "pass-nr", "pas nr", "pase nr",
                   "potni list", "vegabréf", "uruwhenua",
                   "پاسپورت", "رقم الجواز", "číslo pasu", "cislo pasu",
                   # Hungarian (and `with a passport`), Irish (the number of the passport),
                   # Albanian, Lithuanian, Malayalam, Sinhala (a travel permit),
                   # Georgian (the passport's)
                   "útlevél", "útlevéllel", "útlevele", "uimhir phas", "uimhir an phas",
                   "pasaporta", "paso nr.", "paso nr", "paso numeris", "പാസ്‌പോർട്ട്",
                   "ගමන් බලපත්‍ර", "პასპორტის",
                   # Albanian (my passport), Sesotho, Haitian, Lithuanian, Latvian, Czech,
                   # Serbian, Slovene (of the passport), Hungarian (its number), Kazakh
                   "pasaporta ime", "pasiporo", "paspò", "pasas", "pase nr", "pases nr",
                   "cestovní pas", "пасош", "potnega lista", "útlevélszám", "төлқұжат",
                   "પાસપોર્ટ", "ਪਾਸਪੋਰਟ", "διαβ.")  # (Gujarati, Punjabi; Greek's abbreviation)
_LICENCE_OTHER = ("လိုင်စင်", "carta de condução", "carta de conducao", "licença de condução", "लायसन्स",
                  "ڈرائیونگ لائسنس", "άδεια οδήγησης", "άδειας οδήγησης", "ceadúnas tiomána",
                  "juhiluba", "juhiloa",
                  "운전면허", "운전 면허", "運転免許", "驾驶证", "駕照", "驾照", "ใบขับขี่",
                  "رخصة القيادة", "bằng lái", "шофьорска книжка", "водительское удостоверение",
                  "водительские права", "посвідчення водія", "prawo jazdy", "licencia de conducir",
                  "licencia de conducción", "permiso de conducir", "carnet de conducir",
                  "brevete", "carteira de motorista", "वाहन परवाना", "carné de conducir",
                  "carnet de conduir", "permís de conduir", "řidičský průkaz", "řidičského průkazu",
                  "vodičský preukaz", "prawa jazdy", "permiso de conducción", "carné de conducción",
                  "ajokortti", "körkort", "kørekort", "førerkort", "jogosítvány",
                  "sürücü belgesi", "permis de conducere", "permisul de conducere",
                  "vezetői engedély", "giấy phép lái xe", "vairuotojo pažymėjim", "gplx",
                  "vozniškega dovoljenja", "vozniško dovoljenje", "vozačke dozvole",
                  "vozačka dozvola", "laiseni ni draiva", "ड्राइविंग लाइसेंस",
                  "haydovchilik guvohnomasi", "ҳайдовчилик гувоҳномаси",
                  # Arabic (Levant, Maghreb, Iraq), Bengali, Nepali, Sinhala, Tamil (Sri
                  # Lanka's too), Amharic, Georgian, Hebrew, Persian, Maltese, Hausa, Japanese,
                  # Korean, Chinese, Finnish, Swahili, Kinyarwanda, Uruguayan Spanish,
                  # Latvian, Azerbaijani, Kazakh, Kyrgyz, Serbian, Hungarian
                  "رخصة قيادة", "رخصة السياقة", "رخصة السواقة", "إجازة السوق",
                  "ড্রাইভিং লাইসেন্স", "सवारी चालक अनुमतिपत्र", "රියදුරු බලපත්‍ර",
                  "ஓட்டுநர் உரிமம்", "சாரதி அனுமதிப்பத்திர", "የመንጃ ፈቃድ", "მართვის მოწმობა",
                  "רישיון נהיגה", "گواهینامه", "liċenzja tas-sewqan", "lasisin tuƙi", "免許証",
                  "면허번호", "駕駛執照", "ajokortin", "leseni ya udereva", "perimi yo gutwara",
                  "libreta de conducir", "vadītāja apliecība", "sürücülük vəsiqəsi",
                  "жүргізуші куәлігі", "айдоочулук күбөлүк", "возачка дозвола", "jogosítványszám",
                  "vad. apl.")  # (Latvian `vadītāja apliecība`, shortened)
# number marks written after the name in other scripts (`Паспорт: серия и номер …`)
_MARKS_OTHER = ("серия и номер", "серія та номер", "серия", "серія", "номер", "№", "क्रमांक",
                "ቁጥር", "ቁጽሪ", "nɔma",  # (Amharic, Tigrinya, Twi)
                "नं.", "நம்பர்", "எண்", "رقم", "č.",
                "شماره", "n.º", "n.°", "नंबर", "नम्बर", "নম্বর", "số", "št.", "نمبر", "အမှတ်",
                # (Croatian, Hungarian `its number`, Sinhala, Thai, Serbian, Shona, Swahili)
                "br.", "száma", "අංකය", "เลขที่", "број", "бр.", "nhamba", "namba", "નંબર",
                "ਨੰਬਰ", "លេខ")  # (Khmer: `លិខិតឆ្លងដែនលេខ N85800553`, glued)
_DOCUMENT_WORDS = (
    ("passport", "passport"), ("passeport", "passport"), ("pasaporte", "passport"),
    ("reisepass", "passport"), ("passaporto", "passport"), ("passaporte", "passport"),
    ("paspoort", "passport"), ("passaport", "passport"),  # (Maltese, Catalan)
    ("passnummer", "passport"), ("passnumret", "passport"), ("passnr", "passport"),
    ("pasnr", "passport"),  # (Danish: `Pasnr.: 231635597`)
    # (German's and Danish's `Pass Nr.`, `Pas nr.`, Latvian's `pases Nr.`: not a bare `pass`)
    ("pass nr", "passport"), ("pas nr", "passport"), ("pases nr", "passport"),
    ("fs-nr", "driving_licence"),  # (Austrian German: a Führerschein's number, `FS-Nr. …`)
    ("pj", "driving_licence"),  # (Polish: prawo jazdy, `PJ 86590/22/1465`)
    ("řp", "driving_licence"),  # (Czech: řidičský průkaz, `ŘP BY 299847`)
    ("baasaboor", "passport"), ("fasfo", "passport"),  # (Somali, Hausa)
    ("driver", "driving_licence"), ("driving", "driving_licence"),
    ("permis de conduire", "driving_licence"), ("führerschein", "driving_licence"),
    ("fuehrerschein", "driving_licence"), ("patente", "driving_licence"),
    ("rijbewijs", "driving_licence"), ("dvla", "driving_licence"), ("dl", "driving_licence"),
    # Russian `ВУ` (водительское удостоверение), which the view writes `BY`: in capitals only
    ("by", "driving_licence"),
    ("pasaport", "passport"), ("paspor", "passport"), ("pasipoti", "passport"),
    ("yepasipoti", "passport"),  # (Zulu: `Inombolo yepasipoti:`, the passport's number)
    ("pp", "passport"),  # (a crew list's `pp MJ7225714`)
    ("passi", "passport"),  # Finnish (`passin numero ZM0665018`)
    ("ehliyet", "driving_licence"), ("lto", "driving_licence"),
    ("cnh", "driving_licence"),  # Brazil's Carteira Nacional de Habilitação (`CNH nº …`)
    ("cdl", "driving_licence"),  # a US commercial driver's licence
    # Indonesia's driving licence (Surat Izin Mengemudi) by its class: `No. SIM C : …`
    *((f"sim {c}", "driving_licence") for c in ("a", "b1", "b2", "c", "d")),
    # a licence with no word for driving, in a text about cars, trucks or their drivers
    ("licence", "driving_licence"), ("license", "driving_licence"),
    ("licencia", "driving_licence"),  # (Spanish, bare: a table's `Licencia` column)
    ("permis", "driving_licence"),  # (French: `Numéro de permis : …` on a car hire's form)
    # in other scripts, as the view writes them (`viewed_words`); the words of scripts written
    # without spaces are found inside words (`เลขหนังสือเดินทาง`, `的护照`)
    *((w, "passport") for w in viewed_words(_PASSPORT_OTHER)),
    *((w, "driving_licence") for w in viewed_words(_LICENCE_OTHER)),
)
# The word for number a document's number may follow, in the languages of its marks (`numéro`,
# `número`, `Nummer`, Polish `numer`; the short marks, `no.`, `nr.`, `n°`, differ by place)
_NUMBER_WORD = r"number|n[uú]m[ée]ro|nummer|numer"
# a driving licence's class before its number's mark (`permis B n° …`, `Licencia C3 No. …`)
_CLASS_BEFORE_MARK = (r"(?-i:(?:[A-E][1-3]?|BE|CE)(?:\+(?:[A-E][1-3]?|BE|CE))?)[ \t]{1,3}"
                      r"(?=n[°º.o]|no\.|nr\.?)")  # (`Patente C+CE n. …`)
_DOCUMENT = re.compile(
    r"(?i:passport|passeport|pasaporte|reisepass|passaporto|passaporte|paspoort|pasaport|passaport"
    r"|(?-i:pp|PP)(?=[ \t]+[A-Z]{1,2}\d)|paspor|(?:ye)?pasipoti|baasaboor|fasfo"
    r"|passi(?=n?[\s:.])|pass(?=num|[ \t]?nr)|pas(?=[ \t]?nr)|pases(?=[ \t]nr)|fs(?=-nr)|"
    + "|".join(map(re.escape, viewed_words(_PASSPORT_OTHER))) +
    r"|driver[’']?s?[ \-]licen[cs]e|driving[ \-]licen[cs]e|permis de conduire"
    r"|f(?:ü|ue)hrerschein(?:nummer)?|patente(?: di guida)?|rijbewijs(?:nummer)?"
    r"|dvla licen[cs]e|(?-i:DL)|(?-i:BY)(?=[ \t:])|ehliyet|(?-i:LTO)[ \t]licen[cs]e"
    r"|licen[cs]e|licencia|permis|(?-i:CNH)"
    r"|(?-i:CDL)|(?-i:SIM)[ \t](?-i:A|B1|B2|C|D)(?:[ \t](?i:umum))?|pj(?=[ \t]+\d)|řp|(?:"
    + "|".join(map(re.escape, viewed_words(_LICENCE_OTHER))) + r")(?:증|証|[ \t]xe)?)"
    r"(?:[^\W\d_]{1,3}(?=[\s:.№]))?"  # an inflection (`paszportu`, `паспорта`)
    # the document's type, then its number's field (`"type": "PASSPORT", "number": "…"`,
    # `rtw_doc_type=PASSPORT rtw_doc_number=…`)
    # (the next line of a JSON object too: `"document_type": "passport",` /
    # `"document_number": …`)
    r"(?:[\"']?[ \t]{0,3}[,;]?(?:[ \t]|\r?\n){0,12}[\"']?[\w.]{0,24}?"
    r"(?i:number|_no|_num|_nr)[\"']?[ \t]{0,3}"
    r"[:=][ \t]{0,3}[\"']?(?=[A-Z0-9]))?"
    # a comma before the mark (`Reisepass, Nr. …`), one or two words before the colon
    # (`Pasaporte mexicano: …`, `Паспорт громадянина України: …`)
    # (`passeport, numéro …`; `Driving licence uploaded as address proof: …`)
    r"(?:,(?=[ \t]{1,3}(?i:no\.|nr(?:\.|(?=[ \t:]))|n[°º]|№|" + _NUMBER_WORD + r"))"
    r"|[，,](?=[ \t]{0,3}(?:號碼|号码|번호|番号))"  # (`香港特區護照，號碼 H…`)
    r"|(?:[ \t]{1,3}[^\W\d_]{2,12}){0,2}[ \t]{1,3}[^\W\d_]{4,12}"
    r"(?:[ \t]{1,3}\((?:[^\W\d_]|-){2,20}\))?(?=[ \t]{0,2}:)"  # (`… України (ID-картка):`)
    r"|[ \t]{1,3}(?-i:[A-ZА-ЯČŘŠŽ]{2,3})(?=[ \t]{0,2}:)"  # (a country's letters: `Паспорт РФ: …`,
    # `Řidičský průkaz ČR: …`)
    r"|[ \t]{1,3}(?-i:(?:[A-ZÉÎ]\.-?){2,3})(?=[ \t]{0,2}:)"  # (a province: `permis … N.-É. :`)
    r"|[ \t]{1,3}[^\W\d_]{4,12}(?:[ \t]{1,3}[^\W\d_]{2,12}){2,3}(?=[ \t]{0,2}:))?"
    r"(?i:[ \t\-_]{0,3}(?:numret|nummeret|nommer|numara(?:sı|nızı|nız|m)|" + _NUMBER_WORD
    + r"|no\.?|nru|nr\.?|na\."  # (Swahili `Na.`)
    r"|n[°º.]\.?|#"
    r"|id|号码|號碼|番号|번호|号|號|" + "|".join(map(re.escape, viewed_words(_MARKS_OTHER)))
    + r")?[ \t]{0,3}"
    # the issuing country or the classes (`Führerschein (UK):`, `Permiso de conducir (C+E):`,
    # `licence no. (prawo jazdy):`)
    r"(?:\((?:[^\W\d_]|[+/])(?:[^\W\d_]|[+/ -]){0,39}\)[ \t]{0,3})?"
    # or its class (`Texas CDL Class A no. …`)
    # (`Licencia tipo E No. …`, `Führerschein Klasse B/BE, Nr. …`)
    r"(?:(?i:class|klasse|classe|clase|cat\.?|kat\.?|hạng|hang|tipo|categor[ií]a|kategorie)"
    r"[ \t]{1,3}"
    r"[A-Z][A-Z0-9+]{0,2}(?:/[A-Z][A-Z0-9+]{0,2})?,?[ \t]{1,3}"
    r"|ประเภท[ \t]{0,3}\d[ \t]{1,3})?"  # (Thai: `ใบขับขี่ประเภท 2 เลขที่ …`)
    # or a licence's category letter before the number's mark (`permis B n° …`)
    r"(?:" + _CLASS_BEFORE_MARK + r")?"
    # or its adjective, or a country, before the number's mark (`passeport français n° …`,
    # `passaporto del Regno Unito n. …`, `Passeport US n° : …`), or the country in brackets
    # (`passport (UK, number …`)
    r"(?:(?:[^\W\d_]{2,12}[ \t]{1,3}){1,4}(?=n[°º.]|no(?![^\W\d_])|nr\.?|number|#|số)"
    r"|\([^\W\d_]{2,12}(?:[ \t][^\W\d_]{2,12}){0,2},[ \t]{1,3}(?=number|no\.|nr\.?|n[°º.]))?"
    # or a nationality's adjective, then the number or its mark (`passeport tunisien
    # Y749080`, `جواز سفر هندي رقم …`)
    r"(?:[^\W\d_]{2,11}(?:ais|aise|ien|ienne|ain|aine|ois|oise|ian|ese|ish|ano|ana|és|esa"
    r"|eño|eña|ês|ino|ina|ier|ense|eiro|eira|ero|era|ñol|ñola|nhol|nhola|ي"
    r"|י)[ \t]{1,3}"  # (Hebrew's: `דרכון ישראלי 75699035`)
    # (or the country's letters: `паспорт КНР …`)
    # (or the country's letters and `№`, which the view writes `No`: `паспорт РК № …`)
    r"|(?-i:[A-ZА-Я]{2,3})[ \t]{1,3}(?=(?:No[ \t]{0,3})?[A-Z0-9]{0,3}\d))?"
    r"(?:\(?(?:n[°º.o]\.?|no\.|nru|nr\.?|" + _NUMBER_WORD + r"|#|số|No(?=[ \t]))[ \t]{0,3})?"
    # (Maltese `nru`)
    # (JSON, SQL: `passport_no = '…'`; a table's next cell: `| PASSPORT | W0295915 |`)
    # (a form's colons aligned: `No. SIM C      : 3864-…`)
    r"[\"']?[ \t]{0,12}(?:is|was|as|est|yɛ|on(?=[ \t])|a(?=[ \t]+\d)|:|=|#|՝|፦|፡|៖|\||"
    r",(?=[ \t]?[A-Z0-9])|[-–—](?=[ \t]))?"  # (`on`: Estonian's and Finnish's `is`; `a`:
    # Jamaican's, `him licence number a 137-476-609`)
    r"[ \t]{0,8}[\"'(]?"
    # a US state's code before a licence's number (`Driver's license: CA X0996852`)
    r"(?:(?-i:" + "|".join(sorted(_STATE_CODES)) + r")[ \t](?=[A-Z0-9]*\d)"
    # or its name, or a country's (`Driving licence: California D5257280`, `Passport: Canada
    # HK482913`)
    r"|(?-i:[A-Z][a-z]{2,}(?:[ \t][A-Z][a-z]{2,}){0,2}|NZ|UK|EU|EE\.[ \t]?UU\.|U\.S\.A?\.?"
    r"|(?:[A-ZÉÎ]\.-?){2,3})"  # (a Canadian province: `permis de conduire N.-É. COMEA…`)
    r"[ \t]{1,3}(?=[A-Z0-9]*\d))?"  # (`pasaporte EE.UU. A65067464`)
    r"(?:(?:" + "|".join(map(re.escape, viewed_words(_MARKS_OTHER))) + r")[ \t]{0,3})?"
    # a country between (`Passport: United Kingdom, no. 832642621`)
    # (`Vozačka dozvola: Njemačka, br. …`)
    r"(?:[^\W\d_]{3,}(?:[ \t][^\W\d_]{3,}){0,2},[ \t]{1,3}"  # (in `(?i:`: any case)
    r"(?:no\.?|nr\.?|n[°º.]|br\.|" + _NUMBER_WORD + r")?[ \t]{0,3})?)"
    # one token (`X12345678`, `MORGA657054SM9IJ`) or digit groups (`D123-4567-8901`)
    # or a series of letters and the number (`KXO 816079`: `КХО` as the view writes it)
    # an Indian licence (`MH42 20179348480`: state, office, year, number), a Russian passport
    # (`68 3184588`: series, number)
    # a Polish licence (`08522/20/5294`: number, year, office)
    # a Russian passport's series, `№` and number (`98 22 № 254139`)
    r"(\d{2} ?\d{2} {1,3}No ?\d{6}"
    r"|[A-Z0-9]{6,20}|[A-Z]{0,2}\d{2,6}(?:[ \-]\d{1,8}){1,5}|[A-Z]{2,3} \d{6,8}|\d{2} \d{7}"
    r"|\d{5}/\d{2}/\d{4}|(?<![^\W\d_])[A-Z]{1,2}-\d{6,9}"  # (Guatemala's `Y-6700406`)
    # (Chile's and Argentina's licences carry the holder's RUT or DNI: `19.088.329-9`)
    r"|\d{1,2}\.\d{3}\.\d{3}(?:-[\dkK])?"
    r"|\d{1,2}-\d{3,4}-\d{3,6}"  # (Panama's licences carry the cédula: `4-742-2550`)
    r"|[A-Z]/\d{4,6}/\d{2}"  # (Myanmar's: class, number, year: `B/24715/22`)
    r"|[A-Z]{2}\d{2}[ \-]?\d{11})(?![\w\-])"
)


# A document's number told after its name in the same sentence, the word for number between
# (`…my passport number. The correct number is FN320348`, `numer paszportu. Poprawny numer to
# RL9640952`, `여권 번호는 M735C3161이고`, `旅券番号を…：TS9824809`): letters and digits, maybe
# glued to a particle of a script written without blanks; not another thing's number
# (`passport photos needed. Order number is 48213345`).
_DOCUMENT_TOLD = re.compile(
    r"(?:(?!(?i:order|booking|phone|ticket|flight|invoice|reference|account|tracking|seat|room"
    r"|confirmation|reservation|case|customer|member|policy|claim|serial|card|zamówienia"
    r"|rezerwacji|telefonu|commande|pedido|bestell)[^\W\d_]{0,6}[ \t])[^\n\d]){0,60}?"
    r"(?:(?i:le|el|o|il|the)[ \t]{1,3}(?:(?i:number|numero|número|numéro)[ \t]{1,3}"
    r"|n[°º][ \t]{0,3})"
    r"|(?i:" + _NUMBER_WORD + r"|番号|번호)[^\W\d_]{0,2}"
    r"(?:[ \t]{1,3}(?i:is|to|est|es|é|ist|je)[ \t]{1,3}|[ \t]{0,2}[:：][ \t]{0,3}"
    r"|(?<=[는은は])[ \t]{0,2}))"  # (`porte le numéro …`, `porte le n° …`: the number the
    # passport bears)
    r"([A-Z0-9]{6,12})(?![A-Za-z0-9\-])")


# Words that make a text's bare `licence` a driving licence (`licence no. 818139487` on a
# haulage roster, `Insured's NY license: 293 362 749`, `"licence_number"` of a car hire API).
# a licence named with no word for driving: one only in a text about drivers or vehicles
_BARE_LICENCE = ("licence", "license", "permis", "licencia",
                 *viewed_words(("လိုင်စင်",)))  # (Burmese, in a list of drivers)
_VEHICLE_WORDS = ("driver", "driving", "vehicle", "truck", "car hire", "car rental", "rental car",
                  "hire car", "motor", "insured", "licence plate", "license plate", "fleet",
                  "haulage", "car ", "conducteur", "conductrice", "véhicule", "voiture",
                  "location de", "camion", "utilitaire", "chauffeur", "conductor", "camión",
                  "brevete",  # (Peru's word for a driving licence)
                  "camioneta", "chofer", "taxi",
                  *viewed_words(("ယာဉ်မောင်း",)))  # (Burmese: driver, as the view writes it)


# A US or Australian state's code before a bare licence makes it a driving licence (`NY
# license ID 431 839 785`, `NSW licence 26102780`): the states issue them (not `MIT License`,
# `CC licence`: no state's code).
_STATES = frozenset(code + " " for code in _STATE_CODES)
# a driving licence's class after a bare licence's name, then its number's mark
_LICENCE_CLASS = re.compile(r"[ \t]+" + _CLASS_BEFORE_MARK)


_CYRILLIC = re.compile("[\u0400-\u04ff]")


def _state_before(text: str, i: int) -> bool:
    """A state's code, a word of its own, right before `i` (`NY `, `NSW `)."""
    return any(text[max(0, i - k):i] in _STATES and (i == k or not text[i - k - 1].isalnum())
               for k in (3, 4) if i >= k)


def _document_automaton(cased: bool) -> tuple[Any, list[tuple[str, str]]]:
    """The document names in one Aho-Corasick automaton, and each form's name and detector
    by its index: lower case, or (`cased`) as written in lower case, capitalised or in
    capitals, for a text whose lower-casing moves offsets (`match_automaton`: ~2 µs per
    2 KB, pyahocorasick's pass ~28 µs)."""
    forms: dict[str, tuple[str, str]] = {}
    for word, detector in _DOCUMENT_WORDS:
        for form in (word, word.capitalize(), word.upper()) if cased else (word,):
            forms.setdefault(form, (word, detector))
    return match_automaton(list(forms)), list(forms.values())


_DOCUMENT_NAMES = _document_automaton(cased=False)
_DOCUMENT_NAMES_CASED = _document_automaton(cased=True)


def _documents(text: str, enabled: frozenset[str], work: ScanWork, out: list[Hit]) -> None:
    """Document numbers after their name, found in one pass of an automaton over the text
    in lower case (70 names searched one by one with `str.find`: 40 µs per 2 KB,
    pyahocorasick ~28 µs, Rust's aho-corasick ~2 µs); where lower-casing moves
    offsets (`İ` becomes two characters; no character becomes fewer), as written in lower
    case, capitalised or in capitals."""
    low = text.lower()
    aligned = len(low) == len(text)
    names, forms = _DOCUMENT_NAMES if aligned else _DOCUMENT_NAMES_CASED
    vehicle = None  # (looked for at the first bare `licence`)
    for k, i, _ in names.find_matches_as_indexes(low if aligned else text, overlapping=True):
        word, detector = forms[k]
        if detector not in enabled or (i > 0 and text[i - 1].isalnum() and word.isascii()):
            continue
        if word == "by" and not _CYRILLIC.search(text, max(0, i - 80), i + 80):
            continue  # (`ВУ` in a Russian text, not `APPROVED BY …`)
        if word in _BARE_LICENCE:
            if vehicle is None:
                vehicle = any(w in low for w in _VEHICLE_WORDS)
            if not vehicle and not _state_before(text, i) and not _LICENCE_CLASS.match(
                    text, i + len(word)):
                continue  # (a driving licence's class says it is one: `Permis B n° …`)
        m = _DOCUMENT.match(text, i) or (
            _DOCUMENT_TOLD.match(text, i + len(word)) if detector == "passport" else None)
        if m:
            if _document_number(work.window(m.group(1))):
                out.append((m.start(1), m.end(1), detector))
        elif detector == "passport" or vehicle or (
                word not in _BARE_LICENCE and word not in ("dl", "by")):
            # a table's column headed by the document's name (`Passport no.` above the cells;
            # a bare `Licence` where the text is about drivers or vehicles)
            for a, b in column_cells(text, i):
                if _DOCUMENT_CELL.fullmatch(text, a, b) and _document_number(text[a:b]):
                    out.append((a, b, detector))
    if "driving_licence" in enabled and any(
            d == "driving_licence" and _POLISH_LICENCE.fullmatch(text, a, b) for a, b, d in out):
        # a list of Polish licences (`nr prawa jazdy 26838/22/2215` on one line, `Józef Kreft –
        # kat. B – 83339/09/2215` on the next): the others of that shape, number/year/office
        known = {a for a, _, _ in out}
        out.extend((m.start(), m.end(), "driving_licence")
                   for m in _POLISH_LICENCE.finditer(text) if m.start() not in known)


_POLISH_LICENCE = re.compile(r"(?<![\d/])\d{5}/\d{2}/\d{4}(?![\d/])")


# a document's number alone in a table's cell (`PE8300345`, `N5084911`, `MH12 20091773740`,
# Portugal's licences `SE-675477`)
_DOCUMENT_CELL = re.compile(r"[A-Z0-9]{6,20}|[A-Z]{2}\d{2}[ \-]?\d{11}|[A-Z]{1,3}-\d{5,10}")


# Germany's passport numbers: nine of letters and digits with no vowel nor B, D, Q, S
# (`CZVV9HVZW`, `CJRWNZXYG`): after the document's name, no word is written so
_GERMAN_PASSPORT = re.compile(r"[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}")


def _document_number(value: str) -> bool:
    """Digits enough for a document's number: a token of 8 or more mixes letters and
    digits (`K7CC1GW82`); of 9, as Germany's passports, maybe two digits only
    (`HC9JT8CKX`); not a date."""
    digits = sum(ch.isdigit() for ch in value)
    if len(value) == 9 and _GERMAN_PASSPORT.fullmatch(value):
        return True
    return ((digits >= 5 or (digits >= 3 and len(value) >= 8)
             or (digits >= 2 and len(value) >= 9 and not value.isdigit()))
            and not _DATE.fullmatch(value))


_HEX_RUN = re.compile(r"[0-9A-Fa-f:.]*")


# Addresses reserved for documentation (RFC 5737, RFC 3849) and the public DNS resolvers
# every network guide names: no one's address.
_DOC_NETS4 = tuple(ipaddress.IPv4Network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_DOC_NET6 = ipaddress.IPv6Network("2001:db8::/32")
_PUBLIC_RESOLVERS = frozenset((
    "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112",
    "208.67.222.222", "208.67.220.220"))


def _ipv6_groups_ok(cand: str, groups: list[str]) -> bool:
    """The group count of an address (8, or fewer around one `::`, an IPv4 tail counting
    for two): `ipaddress` then only parses plausible candidates (a failed parse costs
    ~10 µs; `1:1:1:…` had one every few characters)."""
    if cand.count("::") > 1 or len(groups) > 8 or any("." in g for g in groups[:-1]):
        return False
    return "::" in cand or len(groups) == (7 if "." in groups[-1] else 8)


def _ipv6(text: str, work: ScanWork, out: list[Hit]) -> None:
    """Addresses among the runs of hex digits, colons and dots that hold a colon. A run's
    left end is found by matching the reversed text, so each run is read once in C; a run
    longer than an address (45 characters) is not one."""
    n = len(text)
    reverse = text[::-1]
    i = text.find(":")
    while i != -1:
        left, right = _HEX_RUN.match(reverse, n - i), _HEX_RUN.match(text, i)
        assert left is not None and right is not None  # the pattern matches the empty string
        s, e = n - left.end(), right.end()
        cand = text[s:e].rstrip(".")
        e2 = s + len(cand)
        work.segments += 1
        work.chars += e - s
        if 2 < len(cand) <= 45 and cand.count(":") >= 2:
            _ipv6_candidate(text, s, e2, cand, out)
        i = text.find(":", e)


def _ipv6_candidate(text: str, s: int, e: int, cand: str, out: list[Hit]) -> None:
    if (s > 0 and text[s - 1].isalnum()) or (e < len(text) and text[e].isalnum()):
        return
    groups = [g for g in cand.split(":") if g]
    if len(groups) < 3 or not any(ch.isdigit() for ch in cand) or not _ipv6_groups_ok(
            cand, groups):
        return
    try:
        ip = ipaddress.IPv6Address(cand)
    except ValueError:
        return
    if not ip.is_loopback and not ip.is_unspecified and ip not in _DOC_NET6:
        out.append((s, e, "ipv6"))


# A national number with its area code set apart by a slash, as Germany, Austria, Switzerland
# and Belgium write them (`0650/6081419`, `0472/25.98.72`, `089 / 21 90 14`): the number
# scan splits it at the slash (a date's, a path's separator). (The look-behind after the `0`:
# before it, it was tried at every character, 40 µs per 2 KB.) Hungary writes its trunk
# prefix before the area code (`06-70/529-8832`, `06-1/349-2655`).
_SLASH_PHONE = re.compile(
    r"0(?<![\w/.,-]0)(?:6[ -])?\d{1,4}[ \t]?/[ \t]?\d{2,8}(?:[ .-]\d{2,4}){0,3}(?![\w/]|[.,-]\d)")


def _slash_phones(text: str, work: ScanWork, out: list[Hit]) -> None:
    """`_SLASH_PHONE` numbers of 9 to 12 digits where the text says they are phones, valid
    in some region's national format and not a business's line there."""
    for m in _SLASH_PHONE.finditer(text):
        s = m.group()
        digits = _NONDIGIT.sub("", s)
        if not 9 <= len(digits) <= 12 or not _uniform(s[s.index("/") + 1:].strip()):
            continue
        if not (_phone_named(text, m.start(), m.end())
                or _email_on_line(text, m.start(), len(s), work.emails)) or _context(
                text, m.start(), _BUSINESS_LINE_WORDS, 40):
            continue  # (an address on its line: a contact's, `…@kp-toth.sk, 033/704 2789`)
        if _personal_somewhere(digits, work):
            out.append((m.start(), m.end(), "phone"))


# A British driving licence number, whatever its context (its format is its evidence): five
# letters of the surname (`9` pads a short one), the birth date's decade digit, month (plus 50
# for a woman) and day, its year's last digit, two initials (`9` pads), a digit, two check
# letters (`WHITM853144S99KP`); the card may add a two-digit issue number.
_DVLA = re.compile(r"[A-Z][A-Z9]{4}\d(?:[05][1-9]|[16][0-2])(?:0[1-9]|[12]\d|3[01])\d[A-Z]"
                   r"[A-Z9]\d[A-Z]{2}(?=(?:[ \t]?\d{2})?(?![A-Za-z0-9]))")


def _dvla_licences(text: str, shape: bytes, out: list[Hit]) -> None:
    """British licence numbers (`_DVLA`), tried only where a capital stands before six
    digits (the surname's last letter and the birth date): a regex over the whole text
    tried every position (~40 µs per 2 KB)."""
    i = shape.find(b"A000000")
    while i != -1:
        for start in range(max(0, i - 4), i + 1):  # (the surname is 1 to 5 letters)
            if start and text[start - 1].isascii() and text[start - 1].isalnum():
                continue
            m = _DVLA.match(text, start)
            if m is not None:
                out.append((m.start(), m.end(), "driving_licence"))
                break
        i = shape.find(b"A000000", i + 1)


# The Philippines' licence numbers as the LTO prints them (`N69-90-809571`: the office's
# letter and code, the year, a serial): a shape no other number of a text takes.
_LTO = re.compile(rb"A00-00-000000")


def _lto_licences(shape: bytes, out: list[Hit]) -> None:
    """The LTO's licence numbers (`_LTO`), read on the text's shape, bounded on each side."""
    for m in _LTO.finditer(shape):
        s, e = m.span()
        if (s == 0 or shape[s - 1] not in b"Aa0-") and (e == len(shape) or shape[e] not in b"Aa0-"):
            out.append((s, e, "driving_licence"))


# India's driving licence numbers as the Parivahan scheme prints them: the state's code, the
# RTO's two digits, the year of issue, a seven-digit serial (`KA04 20143845224`,
# `MH-0420223666592`, `KA-04-2014-3845224`), found on the text's shape, then the state's code
# and the year (1950-2039) read on the text: a number no other of a text takes.
_INDIAN_DL_SHAPE = re.compile(rb"AA(?:-?00|-00-)[ -]?0000-?0000000")
_INDIAN_STATES = frozenset((
    "AN", "AP", "AR", "AS", "BR", "CG", "CH", "DD", "DL", "DN", "GA", "GJ", "HP", "HR", "JH",
    "JK", "KA", "KL", "LA", "LD", "MH", "ML", "MN", "MP", "MZ", "NL", "OD", "OR", "PB", "PY",
    "RJ", "SK", "TN", "TR", "TS", "UK", "UA", "UP", "WB"))
_INDIAN_DL_YEAR = re.compile(r"(?:19[5-9]\d|20[0-3]\d)\d{7}")


def _indian_licences(text: str, shape: bytes, out: list[Hit]) -> None:
    for m in _INDIAN_DL_SHAPE.finditer(shape):
        s, e = m.span()
        if (s and shape[s - 1] in b"Aa0-") or (e < len(shape) and shape[e] in b"Aa0-"):
            continue  # (inside a longer code: `ref KA04 20143845224-B`)
        digits = _NONDIGIT.sub("", text[s + 2:e])
        if text[s:s + 2] in _INDIAN_STATES and _INDIAN_DL_YEAR.fullmatch(digits, 2):
            out.append((s, e, "driving_licence"))


def scan_personal(text: str, shape: bytes, clf: NumberClassifier, out: list[Hit],
                  work: ScanWork | None = None) -> ScanWork:
    """All personal-data findings of one text; returns the work it took (`work`, when
    given, is the budget and counters to use)."""
    if work is None:
        work = ScanWork.for_text(text)
    en = clf.enabled
    emails: list[Hit] = []  # (a phone's context too: an address on its line)
    if "@" in text and ("email" in en or "phone" in en):
        _emails(text, emails)
        work.emails = [e[0] for e in emails]
        if "email" in en:
            out.extend(emails)
    found: list[Hit] = []
    if "iban" in en or "fr_vat" in en:
        _ibans(text, shape, en, work, found)
    if "iban" in en and b"00 0000 0000 0000 0000 0000 0000" in shape:
        _polish_accounts(text, work, found)
    if "fr_vat" in en and "FR " in text:
        _fr_vat_spaced(text, shape, work, found)
    if "fr_nir" in en and ("2A" in text or "2B" in text):
        for m in _corsica_nirs(text):
            if work.check(_nir.is_valid, m.group()):
                found.append((m.start(), m.end(), "fr_nir"))
    # Every number kind has at least 4 digits (`classify` returns None below that, a card
    # needs 13), and a run's digits are ASCII digits, the only characters `shape` marks `0`:
    # with fewer than 4 of them in the whole text, `_numbers` cannot find anything. Most
    # prose has none or a few: skipping it saved ~6 µs of CPU per request in the overhead
    # bench (A/B), more than its hot cost (~2 µs) since its code is cold between requests.
    digits = shape.count(b"0")
    if digits >= 3 and ("passport" in en or "driving_licence" in en):
        _documents(text, en, work, found)  # (a passport's number may hold 3: `CL2RC51KL`)
    if "driving_licence" in en and b"A000000" in shape:
        _dvla_licences(text, shape, found)
    if "driving_licence" in en and _LTO.pattern in shape:
        _lto_licences(shape, found)
    if "driving_licence" in en and digits >= 13:
        _indian_licences(text, shape, found)
    if digits >= 4:
        if "phone" in en:
            work.regions = clf.regions_named(text, found, emails if "@" in text else [])
            work.spoken = clf.spoken(text, work.regions)
        taken = bytearray(len(text))
        for s, e, _ in found:
            taken[s:e] = b"\x01" * (e - s)
        for s, e, _ in out:
            taken[s:e] = b"\x01" * (e - s)
        _NumberScan(text, shape, clf, taken, work, found).run()
    if "phone" in en and "/" in text and digits >= 8:
        _slash_phones(text, work, found)
    if "ipv6" in en and text.count(":") >= 2:
        _ipv6(text, work, found)
    out.extend(found)
    return work

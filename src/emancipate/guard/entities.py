"""Person names and postal addresses, English and French: the guard's opt-in detector.

Names come from the named-entity recogniser of a small spaCy pipeline (`PERSON`, `PER`);
addresses from rules (a number, a street type and a name, then optionally a unit, a city, a
state and ZIP, a UK postcode or a code postal and ville), extended by the recogniser's
locations that follow them ("…, Springfield", "… à Lyon"). A city alone is never an address,
nor is a postcode alone: precision matters more than recall, as every false alarm is a
placeholder the model then has to read around.

Each pipeline is loaded once, with only the recogniser (and the embedding layer it listens
to, if it has none of its own): tagger, parser, lemmatizer… are excluded. Each paragraph is
read by the pipeline of its language, chosen by counting stop words (a few µs), not by
running both (which costs twice and lets the French model find "names" in English, see
docs/guard-and-policy.md). The recogniser reads the last `max_chars` characters of a text;
the address rules read all of it.

The recogniser reads only the sentences that hold what a name finding needs (two
capitalised words, or a title and one) or that end a street address. Cost, measured by
`bench/guard_entities.py` (docs/benchmarks.md): about 0.5 ms of CPU per 2 KB of ordinary
prose (the rest of the guard: 0.1 ms), 20–30 ms per 2 KB when every sentence holds a name
(without the sentence filter, that on any prose); 1–4 s and 100–130 MB per pipeline at
start-up. spaCy is imported only when the detector is built.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from emancipate.guard.entities_config import EntitiesConfig

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = ["ENTITY_DETECTORS", "EntityDetector", "language_of"]

Hit = tuple[int, int, str]  # start, end, detector

ENTITY_DETECTORS = frozenset({"person_name", "postal_address"})

_PERSON_LABELS = frozenset({"PERSON", "PER"})
_PLACE_LABELS = frozenset({"GPE", "LOC"})

# --- language --------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return text.split()


# Frequent function words that the other language lacks ("on", "a", "en", "des"… are left out).
_STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(_words("""the and of to is in it you that for with was are this be at
        have please my your we our from by will can not an or but has been would they he she
        his her there what which when who thanks hello dear regards""")),
    "fr": frozenset(_words("""le la les du et est une pour que qui dans sur pas avec je vous
        nous il elle au aux ce cette sont mais ou par plus se ne merci bonjour votre notre
        très été être chez son sa ses leur mon ma mes cordialement madame monsieur""")),
}
_WORD = re.compile(r"[^\W\d_]+")
_BREAK = re.compile(r"\n[ \t]*\n|\x00")  # paragraphs; \x00 separates messages (guard)


def language_of(text: str, languages: Iterable[str], fallback: str) -> str:
    """The configured language whose stop words `text` holds most (`fallback` on a tie)."""
    counts = dict.fromkeys(languages, 0)
    if len(counts) == 1:
        return next(iter(counts))
    for word in _WORD.findall(text.lower()):
        for language in counts:
            if word in _STOP_WORDS[language]:
                counts[language] += 1
    best = max(counts.values())
    winners = [language for language, n in counts.items() if n == best]
    return fallback if len(winners) > 1 and fallback in winners else winners[0]


# --- names -----------------------------------------------------------------------------------

# --- addresses -------------------------------------------------------------------------------

_CAP = r"[A-Z][A-Za-z'’.\-]*"
_CITY = rf"{_CAP}(?:[ \t]+{_CAP}){{0,3}}"
_ZIP = r"[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?"  # US state and ZIP (APO/FPO AA|AE|AP too)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}\b"
_SEP = r"(?:,[ \t]*\n?[ \t]*|[ \t]*\n[ \t]*)"
# Street types (USPS Publication 28, British usage). "Strong" types make an address with a
# number alone; "weak" ones (also ordinary words: Park, Hill, View…) need a unit or a postal
# code after them.
_EN_STRONG = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace"
    "|Way|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Close|Circle|Cir|Trail|Trl|Alley"
    "|Expressway|Freeway|Turnpike|Mews|Gardens|Grove|Row|Plaza|Causeway")
_EN_WEAK = (
    "Park|Parks|Hill|Hills|Lake|Lakes|River|Green|Walk|Loop|Path|Pike|Ridge|Run|Point|Points"
    "|Port|Ports|Center|Centers|Centre|Crossing|Creek|Estate|Estates|Falls|Ferry|Field|Fields"
    "|Forest|Fork|Forks|Fort|Gateway|Glen|Harbor|Harbour|Haven|Heights|Inlet|Island|Islands"
    "|Junction|Key|Keys|Knoll|Landing|Light|Lights|Lodge|Mall|Manor|Meadow|Meadows|Mill"
    "|Mills|Mission|Mount|Mountain|Orchard|Oval|Pass|Passage|Pine|Pines|Plain|Plains|Prairie"
    "|Ranch|Rapids|Rest|Shore|Shores|Spring|Springs|Station|Summit|Track|Valley|View|Views"
    "|Village|Villages|Vista|Wall|Well|Wells|Bridge|Brook|Brooks|Burg|Bypass|Camp|Canyon"
    "|Cape|Cliff|Cliffs|Club|Common|Corner|Corners|Course|Cove|Crest|Curve|Dale|Dam|Divide"
    "|Extension|Flat|Flats|Ford|Forge|Garden|Hollow|Isle|Lock|Locks|Motorway|Neck|Overpass"
    "|Radial|Ramp|Shoal|Shoals|Spur|Stream|Streets|Roads|Tunnel|Underpass|Union|Viaduct|Ville"
    "|Drives|Courts|Lanes|Squares|Ways|Trafficway|Throughway|Stravenue|Skyway|Trace|Via"
    "|Route|Land|Fall|Rapid|Junction|Manor|Valley|Glen|Knoll|Burg|Rue")
_EN_UNIT_WORD = r"(?:Apt\.?|Apartment|Suite|Unit|Flat|Studio)"
_EN_UNIT = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Studio|Floor|Fl\.?|Room|Rm\.?|#)"
_EN_STREET = re.compile(
    rf"(?:(?<![\w.,])(?P<num>\d{{1,6}}[A-Za-z]?(?:-\d{{1,6}})?)[ \t]+"
    rf"|(?P<unit0>\b{_EN_UNIT_WORD}[ \t]*[A-Za-z0-9-]{{1,6}}){_SEP})"
    rf"(?:(?:N|S|E|W|North|South|East|West)\.?[ \t]+)?"
    rf"(?P<name>(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th))(?:[ \t]+{_CAP}){{0,3}})[ \t]+"
    rf"(?P<type>(?:(?P<strong>{_EN_STRONG}|(?i:street|road|avenue|lane|drive|close|crescent))"
    rf"|(?:{_EN_WEAK}|{_EN_STRONG})s?)\b\.?)"
    rf"(?:[ \t]+(?:NE|NW|SE|SW|N|S|E|W)\b\.?)?"
    rf"(?P<unit>,?[ \t]+{_EN_UNIT}[ \t]*[A-Za-z0-9-]{{1,6}}\b)?"
    rf"(?P<tail>{_SEP}(?:{_CITY},?[ \t]+{_ZIP}|{_ZIP}|(?:{_CITY}{_SEP}){{1,2}}{_UK_POSTCODE}"
    rf"|{_UK_POSTCODE}))?")
_EN_BOX = re.compile(
    rf"\b(?:P\.?[ \t]?O\.?[ \t]+Box[ \t]+\d{{1,6}}|PSC[ \t]+\d{{1,6}},?[ \t]+Box[ \t]+\d{{1,6}}"
    rf"|Unit[ \t]+\d{{1,6}}[ \t]+Box[ \t]+\d{{1,6}}|(?:USNS|USNV|USS|USCGC)[ \t]+{_CAP})"
    rf"{_SEP}(?:{_CITY},?[ \t]+)?{_ZIP}")

# As in English, types that are also common nouns ("3 cours Python") need a code postal.
_FR_STRONG = (
    "rue|avenue|av\\.|bd|boulevard|allée|allee|place|chemin|impasse|quai|faubourg|rond-point"
    "|esplanade|promenade|ruelle|montée|parvis|cité|lieu-dit")
_FR_WEAK = (
    "route|cours|square|passage|voie|villa|sentier|hameau|résidence|traverse|clos"
    "|lotissement")
_FR_LINK = r"(?:de[ \t]+la|de[ \t]+l['’]|du|des|de|d['’]|la|le|les|l['’]|aux|au|et|sur|sous|en)"
_FR_CAP = r"[A-ZÀ-ÖØ-Ý][\w'’.\-]*"
_FR_VILLE = (r"[A-ZÀ-ÖØ-Ý][^\W\d_]*(?:[ \t\-]+(?:[A-ZÀ-ÖØ-Ý][^\W\d_]*"
             r"|sur|sous|lès|les|en|de|du|la|le|d['’][^\W\d_]+)){0,4}")
_FR_STREET = re.compile(
    rf"(?:(?<![\w.,])(?P<num>\d{{1,4}}(?:[ \t]?(?:bis|ter|quater|[A-Da-d])\b)?),?[ \t]+"
    rf"|\b)(?P<type>(?i:(?P<strong>{_FR_STRONG})|{_FR_WEAK}))[ \t]+"
    rf"(?P<name>(?:{_FR_LINK}[ \t]*)?{_FR_CAP}(?:[ \t]+(?:{_FR_LINK}[ \t]*)?{_FR_CAP}){{0,4}})"
    rf"(?P<tail>{_SEP}(?:(?:BP|CS)[ \t]*\d{{1,6}}{_SEP})?(?:\d{{5}}|\d{{2}}[ \t]\d{{3}})[ \t]+"
    rf"{_FR_VILLE}(?:[ \t]+(?i:cedex)(?:[ \t]+\d{{1,2}})?)?)?")
_PLACE_LINK = re.compile(r",[ \t]*\n?[ \t]*|[ \t]*\n[ \t]*|[ \t]+(?:in|à)[ \t]+")
# "In 1990 Abbey Road…": a year, not a house number, when nothing postal follows.
_YEAR_BEFORE = re.compile(r"(?i:\b(?:in|since|by|from|until|of|year|en|depuis|année))[ \t]+$")
_POSTAL_AFTER = re.compile(rf"(?:,?[ \t]+|{_SEP})(?:{_ZIP}|{_UK_POSTCODE}|\d{{5}}(?![\d.,]))")


def _street_addresses(text: str, languages: frozenset[str]) -> list[tuple[int, int, bool]]:
    """(start, end, has a locality) of every street address the rules see."""
    out: list[tuple[int, int, bool]] = []
    if "en" in languages:
        for m in _EN_STREET.finditer(text):
            if m["tail"] or (not _a_year(text, m) and (m["strong"] or m["unit0"] or m["unit"])):
                out.append((m.start(), m.end(), m["tail"] is not None))
        out.extend((m.start(), m.end(), True) for m in _EN_BOX.finditer(text))
    if "fr" in languages:
        for m in _FR_STREET.finditer(text):
            if m["tail"] or (m["num"] and m["strong"] and not _a_year(text, m)):
                out.append((m.start(), m.end(), m["tail"] is not None))
    return out


def _a_year(text: str, m: re.Match[str]) -> bool:
    num = m["num"] or ""
    return (len(num) == 4 and num.isdigit() and 1800 <= int(num) <= 2099
            and _YEAR_BEFORE.search(text, max(0, m.start() - 12), m.start()) is not None)


def _extended(text: str, end: int, places: dict[int, int]) -> int:
    """`end` moved past the named places (then a postal code) that follow the street."""
    for _ in range(2):
        link = _PLACE_LINK.match(text, end)
        if link is None or link.end() not in places:
            break
        end = places[link.end()]
    postal = _POSTAL_AFTER.match(text, end)
    return postal.end() if postal else end


# --- names -----------------------------------------------------------------------------------

_TITLES = (r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Lady|Lord|Rev|M|Mme|Mlle|Me|Pr|Madame"
           r"|Monsieur|Mademoiselle|Maître)\.?[ \t]+")
_TITLE_IN = re.compile(rf"(?:{_TITLES})+")
_TITLE_BEFORE = re.compile(rf"\b(?:{_TITLES})$")
_NOT_A_NAME = re.compile(r"[\d@/\\#=<>{}\[\]|_]")
_COMPANY = re.compile(r"(?:\b(?:S\.A\.R\.L|S\.A\.S|S\.A|SARL|SAS|SA|EURL|SNC|LLC|LLP|Ltd|Inc"
                      r"|PLC|plc|GmbH|Corp|Co|Group|Groupe)\b\.?)|&")
_STREET_BEFORE = re.compile(
    rf"(?i:\b(?:{_FR_STRONG}|{_FR_WEAK}))[ \t]+(?:{_FR_LINK}[ \t]*)?$")
_STREET_TYPE = re.compile(rf"(?i:{_FR_STRONG}|{_FR_WEAK})")
_PLACE_WORDS = frozenset({"Saint", "Sainte", "St", "Ste", "San", "Santa", "Port", "Mount",
                          "Lake", "Fort"})


def _name_span(text: str, start: int, end: int, person: bool) -> tuple[int, int] | None:
    """The name inside an entity, or None. Honorifics are left out ("Mme [NAME_1]" keeps
    what the model may need); an entity of another label (ORG, LOC: the small models
    mislabel names) counts only after a title. For precision, a lone capitalised word
    counts only after a title too: for a small model it is a company, a city or a product
    as often as a surname."""
    span = text[start:end]
    cut = span.find("\n")
    if cut >= 0:
        span = span[:cut].rstrip()
    title = _TITLE_IN.match(span)
    if title:
        start += title.end()
        span = span[title.end():]
    titled = title is not None or _TITLE_BEFORE.search(text, max(0, start - 16), start)
    if not (person or titled):
        return None
    if span.endswith(("'s", "’s")):
        span = span[:-2]
    span = span.rstrip(" .,;:'’")
    words = span.split()
    if (len(span) < 2 or _NOT_A_NAME.search(span) or _COMPANY.search(span)
            or not any(w[0].isupper() for w in words) or (len(words) < 2 and not titled)
            or len(words[-1]) == 1 or words[0] in _PLACE_WORDS
            or _STREET_TYPE.fullmatch(words[0])):
        return None  # "Model Y", "Sainte Valentine", "Dupont SARL", "the ticket", "rue X"
    if _STREET_BEFORE.search(text, max(0, start - 24), start):
        return None  # "habite avenue Victor Hugo": a street's name
    return start, start + len(span)


# --- the detector ----------------------------------------------------------------------------


class EntityDetector:
    """Names and addresses of a text. Built once at start-up (`from_config` loads the
    pipelines); `find` does no I/O."""

    def __init__(self, pipelines: dict[str, Language], max_chars: int,
                 detectors: frozenset[str] = ENTITY_DETECTORS) -> None:
        self.pipelines = pipelines
        self.languages = frozenset(pipelines)
        self.fallback = next(iter(pipelines))
        self.max_chars = max_chars
        self.detectors = detectors

    @classmethod
    def from_config(cls, cfg: EntitiesConfig,
                    detectors: frozenset[str] = ENTITY_DETECTORS) -> EntityDetector:
        """Load each configured language's pipeline (validated config: the packages are
        installed and have a recogniser)."""
        pipelines: dict[str, Language] = {language: load_pipeline(cfg.model_for(language))
                                          for language in cfg.languages}
        return cls(pipelines, cfg.max_chars, detectors & ENTITY_DETECTORS)

    def find(self, text: str) -> list[Hit]:
        """(start, end, detector) of the names and addresses in `text`, sorted."""
        if not text:
            return []
        streets = _street_addresses(text, self.languages)
        people, places = self._entities(text, [(s, e) for s, e, _ in streets])
        out: list[Hit] = []
        taken = bytearray(len(text))  # a street's name is not a person's: addresses win
        for s, e, has_locality in streets:
            e = e if has_locality else _extended(text, e, places)
            taken[s:e] = b"\x01" * (e - s)
            if "postal_address" in self.detectors:
                out.append((s, e, "postal_address"))
        if "person_name" in self.detectors:
            out.extend((s, e, "person_name") for s, e in people if not any(taken[s:e]))
        out.sort()
        return out

    def _entities(self, text: str, streets: list[tuple[int, int]]
                  ) -> tuple[list[tuple[int, int]], dict[int, int]]:
        """Names (start, end) and places (start -> end) the recogniser finds in the last
        `max_chars` characters, each paragraph read in its own language, and only its
        sentences that may hold a name or follow a street (`_worth_reading`)."""
        base = max(0, len(text) - self.max_chars)
        if base:
            space = text.find(" ", base)  # do not start inside a word
            base = space + 1 if 0 <= space < base + 40 else base
        by_language: dict[str, list[tuple[int, str]]] = {}
        window = text[base:]
        fallback = language_of(window, self.languages, self.fallback)
        for offset, paragraph in _paragraphs(window):
            runs = _worth_reading(paragraph, base + offset, streets)
            if runs:
                language = language_of(paragraph, self.languages, fallback)
                by_language.setdefault(language, []).extend(
                    (base + offset + a, paragraph[a:b]) for a, b in runs)
        people: list[tuple[int, int]] = []
        places: dict[int, int] = {}
        for language, paragraphs in by_language.items():
            docs = self.pipelines[language].pipe(p for _, p in paragraphs)
            for (offset, _), doc in zip(paragraphs, docs, strict=True):
                for ent in doc.ents:
                    s, e = offset + ent.start_char, offset + ent.end_char
                    span = _name_span(text, s, e, ent.label_ in _PERSON_LABELS)
                    if span:
                        people.append(span)
                    elif ent.label_ in _PLACE_LABELS:
                        places[s] = e
        return people, places


# What a name finding needs (`_name_span`): two capitalised words, or a title and one.
_NAME_WORD = r"[A-ZÀ-ÖØ-Ý][\w'’\-]*"
_PARTICLE = r"(?:de|du|des|la|le|van|von|der|den|di|da|del|dos|bin|ibn|al|d['’]|l['’])"
_CANDIDATE = re.compile(
    rf"{_NAME_WORD}[ \t]+(?:{_PARTICLE}[ \t]*)*{_NAME_WORD}|\b{_TITLES}{_NAME_WORD}")
_BOUNDARY = re.compile(r"[.!?…;]+[\"'»)\]]*(?=[ \t\n])|\n")


def _worth_reading(paragraph: str, offset: int, streets: list[tuple[int, int]]
                   ) -> list[tuple[int, int]]:
    """Runs of consecutive sentences of `paragraph` holding a name candidate or the end of
    a street address (whose city may follow). The recogniser looks about four tokens to
    each side, so a sentence read alone gets the entities it gets in its paragraph; prose
    without capitalised pairs (most of it) is not read at all."""
    marks = [m.span() for m in _CANDIDATE.finditer(paragraph)]
    end = offset + len(paragraph)
    marks.extend((e - offset, e - offset + 2) for _, e in streets if offset <= e < end)
    if not marks:
        return []
    marks.sort()
    bounds = [0, *(m.end() for m in _BOUNDARY.finditer(paragraph)), len(paragraph)]
    runs: list[tuple[int, int]] = []
    k = 0
    for a, b in zip(bounds, bounds[1:], strict=False):
        while k < len(marks) and marks[k][1] <= a:
            k += 1
        if k < len(marks) and marks[k][0] < b and b > a:
            if runs and runs[-1][1] == a:
                runs[-1] = (runs[-1][0], b)
            else:
                runs.append((a, b))
    return runs


def _paragraphs(text: str) -> Iterable[tuple[int, str]]:
    pos = 0
    for m in _BREAK.finditer(text):
        yield pos, text[pos:m.start()]
        pos = m.end()
    yield pos, text[pos:]


def load_pipeline(package: str) -> Language:
    """`package`'s pipeline with its recogniser only (plus the layer it listens to)."""
    import spacy  # here, not at module level: only an enabled detector pays for spaCy

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(package)  # config validation rules this out
    root = Path(spec.origin).parent
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    keep = {"ner"} | _listened_by_ner(root)
    return spacy.load(package, exclude=[c for c in meta["components"] if c not in keep])


def _listened_by_ner(root: Path) -> set[str]:
    """The shared embedding component the recogniser listens to, if any (the small
    pipelines give it its own, so nothing else need run)."""
    from spacy.util import load_config

    for path in root.glob("*/config.cfg"):
        tok2vec = load_config(path)["components"]["ner"]["model"].get("tok2vec", {})
        if "Listener" in str(tok2vec.get("@architectures", "")):
            upstream = str(tok2vec.get("upstream", "*"))
            return {"tok2vec", "transformer"} if upstream == "*" else {upstream}
    return set()

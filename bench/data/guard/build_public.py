"""Build the public evaluation corpus of the leak guard (issue 12) from labelled public data.

    .venv/bin/python bench/data/guard/build_public.py \\
        --credsweeper /work/.mirror/Samsung+CredSweeper/repo \\
        --detect-secrets /work/.mirror/Yelp+detect-secrets/repo \\
        --gitleaks /work/.mirror/gitleaks+gitleaks/repo

Each argument is a bare git directory (as `git clone --mirror` or the project's `fetch` tool
leaves it); the files are read at its HEAD with `git show`, nothing is downloaded. The commits
used for the committed files are in `public/SOURCES.md`. The personal-data half is generated
(Faker, phonenumbers) and needs no source. Output, all under `public/`:

- `dev.jsonl` / `heldout.jsonl`: secrets. `{"text", "spans", "family", "source", "kind"}`;
  `spans` are [start, end) offsets of the secret value(s), `[]` for a negative.
- `pii_dev.jsonl` / `pii_heldout.jsonl`: personal data in English prose;
  `{"text", "spans": [[start, end, label]], "family", "source", "kind"}`.

Labels are the sources' own, never guessed here:
- CredSweeper: a line is positive when the project's expected default output
  (`tests/data/output.json`) reports it with severity medium or high; negative when its
  rules match the line (`tests/data/no_filters_no_ml.json`) but its filters reject it (absent
  from `no_ml.json` and `output.json`), and every line of the sample files the project names
  as negatives (`*_n`, `*_FALSE`, `false_positive`, `*_fp`, `wechat_f`).
- detect-secrets: the `(line, should_flag)` and `(line, expected_secret)` pairs of its plugin
  tests (`tests/plugins/*_test.py`), read with `ast`, not executed.
- gitleaks: the literal true/false positive strings of `cmd/generate/config/rules/*.go`
  (generated ones are skipped). Always in the development split: the vendored rules were
  written against them.

Split: a family goes to `heldout` when the first byte of sha256(family) is odd (about half),
else to `dev`; personal-data families are regions/locales, split the same way.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "public"
MAX_TEXT = 2048
Record = dict[str, Any]


def split_of(family: str) -> str:
    """`dev` or `heldout`, stable across runs, machines and Python versions."""
    if family.startswith("gitleaks:"):
        return "dev"
    return "heldout" if hashlib.sha256(family.encode()).digest()[0] % 2 else "dev"


def git_show(git_dir: str, path: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"],
                          check=True, capture_output=True).stdout


def git_ls(git_dir: str, under: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", "HEAD",
                          under], check=True, capture_output=True, text=True).stdout
    return out.split()


def record(text: str, spans: list[list[int]], family: str, source: str) -> Record:
    return {"text": text, "spans": spans, "family": family, "source": source,
            "kind": "positive" if spans else "negative"}


# --- CredSweeper -------------------------------------------------------------------------

NEGATIVE_FILES = re.compile(r"(_n(\.\w+)?|_FALSE|false_positive|_fp|wechat_f)$")


def _lines_of(report: list[dict[str, Any]], secret_only: bool = False
              ) -> list[tuple[str, dict[str, Any]]]:
    """(rule, line data) of each reported line; with `secret_only`, only the rules of
    severity medium or high (the info/low ones report UUIDs, bucket names: not secrets). A
    private key is reported once per line of its block: the block becomes one record, from
    its first line."""
    out = []
    for item in report:
        if secret_only and item["severity"] not in ("medium", "high"):
            continue
        lines = item["line_data_list"]
        if "PRIVATE KEY" in lines[0]["value"]:
            lines = lines[:1]
        out += [(item["rule"], ld) for ld in lines]
    return out


def _pem_block(lines: list[str], start: int, col: int) -> tuple[str, list[int]] | None:
    """The private key from its BEGIN line to its END line, as one text."""
    for end in range(start, min(len(lines), start + 80)):
        if "-----END" in lines[end] or "END " in lines[end] and "PRIVATE" in lines[end]:
            text = "\n".join(lines[start:end + 1])
            return (text, [col, len(text)]) if len(text) <= MAX_TEXT else None
    return None


def _file_lines(git_dir: str, path: str) -> list[str] | None:
    try:
        return git_show(git_dir, path.lstrip("./")).decode("utf-8").splitlines()
    except (UnicodeDecodeError, subprocess.CalledProcessError):
        return None


def credsweeper(git_dir: str) -> list[Record]:
    def load(name: str) -> list[dict[str, Any]]:
        return json.loads(git_show(git_dir, f"tests/data/{name}.json"))

    expected, no_ml, candidates = load("output"), load("no_ml"), load("no_filters_no_ml")
    reported = {(ld["path"], ld["line_num"]) for _r, ld in _lines_of(expected)}
    kept_by_filters = {(ld["path"], ld["line_num"]) for _r, ld in _lines_of(no_ml)}
    records: dict[tuple[str, int], Record] = {}
    for rule, ld in _lines_of(expected, secret_only=True):
        key = (ld["path"], ld["line_num"])
        rec = _credsweeper_positive(git_dir, rule, ld)
        if rec is None:
            continue
        if key in records:  # two rules on one line: one record, both values
            old = records[key]
            if old["text"] == rec["text"] and rec["spans"][0] not in old["spans"]:
                old["spans"].append(rec["spans"][0])
            continue
        records[key] = rec
    for rule, ld in _lines_of(candidates):
        key = (ld["path"], ld["line_num"])
        if key in reported or key in kept_by_filters or key in records:
            continue
        if len(ld["line"]) <= MAX_TEXT and ld["line"].strip():
            records[key] = record(ld["line"], [], f"credsweeper:{rule}", "credsweeper")
    records.update(_credsweeper_negative_files(git_dir, reported | kept_by_filters | set(records)))
    # a line that only info/low rules report (UUIDs, bucket names) is neither kind: dropped
    return list(records.values())


def _credsweeper_positive(git_dir: str, rule: str, ld: dict[str, Any]) -> Record | None:
    family = f"credsweeper:{rule}"
    if "PRIVATE KEY" in ld["value"] and "\\n" not in ld["value"]:
        lines = _file_lines(git_dir, ld["path"])
        block = _pem_block(lines, ld["line_num"] - 1, ld["value_start"]) if lines else None
        return record(block[0], [block[1]], family, "credsweeper") if block else None
    line, start, end = ld["line"], ld["value_start"], ld["value_end"]
    if line[start:end] != ld["value"]:
        start = line.find(ld["value"])
        end = start + len(ld["value"])
    if start < 0 or len(line) > MAX_TEXT:
        return None
    return record(line, [[start, end]], family, "credsweeper")


def _credsweeper_negative_files(git_dir: str, taken: set[tuple[str, int]]
                                ) -> dict[tuple[str, int], Record]:
    out: dict[tuple[str, int], Record] = {}
    for path in git_ls(git_dir, "tests/samples"):
        name = path.rsplit("/", 1)[1]
        if not NEGATIVE_FILES.search(name):
            continue
        lines = _file_lines(git_dir, path) or []
        for i, line in enumerate(lines, 1):
            key = (f"./{path}", i)
            bare = line.strip()
            if key in taken or len(bare) < 8 or bare.startswith(("#", "//")):
                continue
            if len(line) <= MAX_TEXT:
                out[key] = record(line, [], f"credsweeper:negative-file:{name}", "credsweeper")
    return out


# --- detect-secrets ----------------------------------------------------------------------

class _Unknown(Exception):
    """An expression the small evaluator below does not handle: the case is skipped."""


def _value(node: ast.AST, names: dict[str, Any]) -> Any:
    """Evaluate the constant expressions of a test file (literals, names bound to literals,
    `+`, `*`, `%`, slices, `.format`), without running the file."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return [_value(e, names) for e in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult | ast.Mod):
        left, right = _value(node.left, names), _value(node.right, names)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left % (tuple(right) if isinstance(right, list) else right)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        sl = node.slice
        bounds = [_value(b, names) if b is not None else None
                  for b in (sl.lower, sl.upper, sl.step)]
        return _value(node.value, names)[slice(*bounds)]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format" and not node.keywords):
        return _value(node.func.value, names).format(*[_value(a, names) for a in node.args])
    raise _Unknown(ast.dump(node)[:80])


def _cases_of(tree: ast.Module) -> list[tuple[str, Any]]:
    names: dict[str, Any] = {}
    cases: list[tuple[str, Any]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            name = node.targets[0].id
            with contextlib.suppress(_Unknown, TypeError, ValueError, IndexError, KeyError):
                names[name] = _value(node.value, names)
            if name.endswith("TEST_CASES") and isinstance(node.value, ast.List | ast.Tuple):
                # keyword_test.py: module-level (line, expected secret or None) pairs
                for elt in node.value.elts:
                    with contextlib.suppress(_Unknown, TypeError, ValueError, IndexError):
                        case = _value(elt, names)
                        if len(case) == 2 and isinstance(case[0], str):
                            cases.append((case[0], case[1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize":
            argnames = node.args[0].value if isinstance(node.args[0], ast.Constant) else ""
            columns = [c.strip() for c in str(argnames).split(",")]
            text_col = next((i for i, c in enumerate(columns) if c in ("line", "payload")), -1)
            label_col = next((i for i, c in enumerate(columns)
                              if c in ("should_flag", "expected_secret")), -1)
            if text_col < 0 or label_col < 0 or len(node.args) < 2:
                continue
            elts = node.args[1].elts if isinstance(node.args[1], ast.List | ast.Tuple) else []
            if isinstance(node.args[1], ast.Name):  # a module-level list of cases
                elts = [ast.Constant(v) for v in names.get(node.args[1].id, [])]
            for elt in elts:
                try:
                    case = _value(elt, names)
                except (_Unknown, TypeError, ValueError, IndexError, KeyError):
                    continue
                if (isinstance(case, list) and len(case) == len(columns)
                        and isinstance(case[text_col], str)):
                    cases.append((case[text_col], case[label_col]))
    return cases


def _ds_record(line: str, label: Any, family: str) -> Record | None:
    if not line.strip() or len(line) > MAX_TEXT or label not in (True, False, None) and not (
            isinstance(label, str)):
        return None
    if label is False or label is None:
        return record(line, [], family, "detect-secrets")
    if isinstance(label, str) and label and label in line:
        start = line.find(label)
        return record(line, [[start, start + len(label)]], family, "detect-secrets")
    # `should_flag` only: the source says the line holds a secret, not where; the span is
    # the line without its indentation (any secret finding on the line catches it)
    start = len(line) - len(line.lstrip())
    return record(line, [[start, len(line.rstrip())]], family, "detect-secrets")


def detect_secrets(git_dir: str) -> list[Record]:
    records: list[Record] = []
    seen: set[tuple[str, str]] = set()
    for path in git_ls(git_dir, "tests/plugins"):
        name = path.rsplit("/", 1)[1]
        if not name.endswith("_test.py") or name == "base_test.py":
            continue
        family = "detect-secrets:" + name.removesuffix("_test.py")
        if family == "detect-secrets:ip_public":
            continue  # an IP address is personal data here, not a secret
        tree = ast.parse(git_show(git_dir, path).decode("utf-8"))
        for line, label in _cases_of(tree):
            rec = _ds_record(line, label, family)
            if rec is not None and (family, line) not in seen:
                seen.add((family, line))
                records.append(rec)
    return records


# --- gitleaks ----------------------------------------------------------------------------

_GO_STRING = re.compile(r'`([^`]*)`|"((?:[^"\\\n]|\\.)*)"')
_BLOCK = re.compile(r"\b(tps|fps)\s*:?=\s*(?:append\(\s*(?:tps|fps)\s*,\s*)?(?:\[\]string\{)?")


def _go_literal(expr: str) -> str | None:
    """The value of a Go expression made only of string literals joined by `+`."""
    parts, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _GO_STRING.match(expr, pos)
        if not m:
            return None
        raw = m.group(1) if m.group(1) is not None else json.loads(f'"{m.group(2)}"')
        parts.append(raw)
        pos = m.end()
        rest = expr[pos:].lstrip()
        if not rest:
            break
        if not rest.startswith("+"):
            return None
        pos = len(expr) - len(rest) + 1
        while pos < len(expr) and expr[pos] in " \t\n":
            pos += 1
    return "".join(parts)


def _top_level_items(src: str, start: int) -> list[str]:
    """The comma-separated items of the `{...}` or `(...)` body opened before `start`."""
    depth, item, items, i, quote = 1, [], [], start, ""
    while i < len(src) and depth:
        ch = src[i]
        if quote:
            if ch == "\\" and quote == '"':
                item.append(src[i:i + 2])
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "`\"":
            quote = ch
        elif ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "," and depth == 1:
            items.append("".join(item))
            item = []
            i += 1
            continue
        elif ch == "/" and src[i:i + 2] == "//":
            i = src.find("\n", i)
            continue
        if depth:
            item.append(ch)
        i += 1
    items.append("".join(item))
    return [x for x in items if x.strip()]


def gitleaks(git_dir: str) -> list[Record]:
    records: list[Record] = []
    for path in git_ls(git_dir, "cmd/generate/config/rules"):
        if not path.endswith(".go") or path.endswith("_test.go"):
            continue
        src = git_show(git_dir, path).decode("utf-8")
        for func in re.split(r"\nfunc ", src)[1:]:
            rule_id = re.search(r'RuleID:\s*"([^"]+)"', func)
            if not rule_id:
                continue
            family = f"gitleaks:{rule_id.group(1)}"
            for m in _BLOCK.finditer(func):
                if not func[m.start():m.end()].endswith("{"):
                    continue
                for item in _top_level_items(func, m.end()):
                    text = _go_literal(item)
                    if text and text.strip() and len(text) <= MAX_TEXT:
                        spans = [[0, len(text)]] if m.group(1) == "tps" else []
                        records.append(record(text, spans, family, "gitleaks"))
    return records


# --- personal data (generated) -----------------------------------------------------------

PHONE_REGIONS = (
    "US", "CA", "GB", "IE", "FR", "BE", "CH", "DE", "AT", "NL", "LU", "ES", "PT", "IT", "GR",
    "SE", "NO", "DK", "FI", "PL", "CZ", "HU", "RO", "BG", "TR", "RU", "UA", "IL", "AE", "SA",
    "EG", "MA", "NG", "KE", "ZA", "IN", "PK", "CN", "HK", "TW", "JP", "KR", "SG", "MY", "TH",
    "VN", "PH", "ID", "AU", "NZ", "MX", "BR", "AR", "CL", "CO", "PE",
)
EMAIL_LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL", "pt_BR",
                 "pl_PL", "sv_SE", "da_DK", "fi_FI", "cs_CZ", "tr_TR", "ro_RO", "en_IN")
IBAN_LOCALES = ("de_DE", "fr_FR", "en_GB", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_PT",
                "fi_FI", "de_AT", "de_CH", "nl_BE", "en_IE", "cs_CZ", "no_NO", "da_DK",
                "ro_RO", "el_GR", "tr_TR", "sk_SK", "pt_BR")
CARD_BRANDS = ("visa", "mastercard", "amex", "discover", "jcb15", "jcb16", "diners", "maestro")

TEMPLATES = {
    "email": ["Please send the signed contract to {} before Friday.",
              "You can reach our account manager at {} if anything is unclear.",
              "The customer wrote from {} asking for a refund of the last invoice.",
              "Can you draft a polite reply to {} about the delayed shipment?"],
    "phone": ["Call me back on {} when you have a minute.",
              "The supplier's hotline is {}, open weekdays only.",
              "Summarise this voicemail: the caller left the number {} and asked for a quote.",
              "Her mobile is {} but she prefers email."],
    "card": ["The payment with card {} was declined twice yesterday.",
             "Customer says the charge on {} is not theirs, how do we dispute it?",
             "Update the billing profile to use card number {} from next month."],
    "iban": ["Please wire the deposit to IBAN {} by the end of the week.",
             "The supplier changed their bank details; new account: {}.",
             "Refund goes to {} as agreed on the phone."],
    "us_ssn": ["The applicant's SSN is {} according to the form.",
               "Check whether social security number {} matches the W-2.",
               "Employee record: SSN {}, hired in March."],
}
NEGATIVE_TEMPLATES = {
    "order": "Order {} shipped on Monday and should arrive within three days.",
    "date": "The meeting was moved to {} at the same time.",
    "amount": "The quarterly total came to {} after the discount.",
    "version": "Upgrading to version {} fixed the memory leak.",
    "isbn": "The reference book is ISBN {}, second edition.",
    "bad_card": "The test fixture uses the number {} which fails the Luhn check.",
    "bad_iban": "This account string {} was rejected by the bank's validator.",
    "tracking": "Tracking reference {} shows the parcel in the sorting centre.",
}


def _sentence(rng: Any, label: str, value: str, family: str) -> Record:
    template = rng.choice(TEMPLATES[label])
    start = template.index("{}")
    text = template.format(value)
    return {"text": text, "spans": [[start, start + len(value), label]], "family": family,
            "source": "generated", "kind": "positive"}


def _phones(rng: Any) -> list[Record]:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat as Fmt
    from phonenumbers import PhoneNumberType as Type

    out = []
    for region in PHONE_REGIONS:
        for kind in (Type.MOBILE, Type.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            shown = [phonenumbers.format_number(number, f)
                     for f in (Fmt.INTERNATIONAL, Fmt.NATIONAL, Fmt.E164)]
            shown += [shown[0] + " x123", shown[1] + " ext. 123"]
            for value in dict.fromkeys(shown):
                out.append(_sentence(rng, "phone", value, f"phone:{region}"))
    return out


def _cards(fake: Any, rng: Any) -> list[Record]:
    out = []
    for brand in CARD_BRANDS:
        for i in range(24):
            digits = fake.credit_card_number(card_type=brand)
            if i % 3 == 1:
                value = " ".join(digits[j:j + 4] for j in range(0, len(digits), 4))
            elif i % 3 == 2 and len(digits) == 15:  # Amex / JCB-15 print 4-6-5
                value = f"{digits[:4]}-{digits[4:10]}-{digits[10:]}"
            else:
                value = digits
            out.append(_sentence(rng, "card", value, f"card:{brand}"))
    return out


def _ibans(rng: Any) -> list[Record]:
    from faker import Faker

    out, seen = [], set()
    for locale in IBAN_LOCALES:
        fake = Faker(locale)
        fake.seed_instance(12)
        for i in range(8):
            iban = fake.iban()
            if iban[:2] in seen and i == 0:
                break  # the locale falls back to another country's IBANs
            value = " ".join(iban[j:j + 4] for j in range(0, len(iban), 4)) if i % 2 else iban
            out.append(_sentence(rng, "iban", value, f"iban:{iban[:2]}"))
        seen.add(iban[:2])
    return out


def _emails_and_ssns(rng: Any) -> list[Record]:
    from faker import Faker

    out = []
    for locale in EMAIL_LOCALES:
        fake = Faker(locale)
        fake.seed_instance(12)
        for i in range(12):
            value = fake.free_email() if i % 2 else fake.company_email()
            out.append(_sentence(rng, "email", value, f"email:{locale}"))
    fake = Faker("en_US")
    fake.seed_instance(12)
    for i in range(40):
        value = fake.ssn()
        family = "us_ssn:US-dashed" if i % 2 else "us_ssn:US-spaced"
        out.append(_sentence(rng, "us_ssn", value if i % 2 else value.replace("-", " "),
                             family))
    return out


def _negative_values(fake: Any, rng: Any, kind: str) -> str:
    if kind == "order":
        return rng.choice(["#", "PO-", "ORD-", ""]) + str(rng.randrange(10**7, 10**10))
    if kind == "date":
        return fake.date(pattern=rng.choice(["%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y"]))
    if kind == "amount":
        cents = rng.randrange(100)
        return rng.choice(["$", "EUR ", "£"]) + f"{rng.randrange(1000, 9_999_999):,}.{cents:02d}"
    if kind == "version":
        return ".".join(str(rng.randrange(0, 30)) for _ in range(rng.choice([3, 4])))
    if kind == "isbn":
        return fake.isbn13() if rng.random() < 0.5 else fake.isbn10()
    if kind == "bad_card":
        digits = fake.credit_card_number(card_type=rng.choice(CARD_BRANDS))
        return digits[:-1] + str((int(digits[-1]) + rng.randrange(1, 10)) % 10)
    if kind == "bad_iban":
        iban = fake.iban()
        return iban[:2] + f"{(int(iban[2:4]) + rng.randrange(1, 90)) % 97 + 2:02d}" + iban[4:]
    while True:  # a reference number that is no card: fails the Luhn check
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([12, 16, 20])))
        if not _luhn_ok(digits):
            return digits


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def pii() -> list[Record]:
    import random

    from faker import Faker

    rng = random.Random(12)
    fake = Faker("en_US")
    fake.seed_instance(12)
    records = _phones(rng) + _cards(fake, rng) + _ibans(rng) + _emails_and_ssns(rng)
    for kind, template in NEGATIVE_TEMPLATES.items():
        for _ in range(30):
            text = template.format(_negative_values(fake, rng, kind))
            records.append({"text": text, "spans": [], "family": f"negative:{kind}",
                            "source": "generated", "kind": "negative"})
    return records


def write(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--credsweeper", required=True, help="bare git dir of Samsung/CredSweeper")
    ap.add_argument("--detect-secrets", required=True, help="bare git dir of Yelp/detect-secrets")
    ap.add_argument("--gitleaks", required=True, help="bare git dir of gitleaks/gitleaks")
    args = ap.parse_args()
    secrets = credsweeper(args.credsweeper) + detect_secrets(args.detect_secrets) + gitleaks(
        args.gitleaks)
    OUT.mkdir(exist_ok=True)
    for name, records in (("", secrets), ("pii_", pii())):
        for split in ("dev", "heldout"):
            chosen = [r for r in records if split_of(r["family"]) == split]
            write(OUT / f"{name}{split}.jsonl", chosen)
            families = {r["family"] for r in chosen}
            print(f"{name}{split}: {len(chosen)} records, {len(families)} families, "
                  f"{sum(r['kind'] == 'positive' for r in chosen)} positive")


if __name__ == "__main__":
    main()

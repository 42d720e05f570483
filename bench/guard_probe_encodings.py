"""A secret written in another form, one form per line: which forms the guard reads.

    .venv/bin/python bench/guard_probe_encodings.py

Two secrets (a GitHub token and a password under its keyword, in a short note) are written
in 28 forms a user may paste (base64 wrapped by `base64`, `xxd -p`, byte escapes, HTML and
JSON escapes, homoglyphs…) or an insider may pick to walk around a scanner (reversed,
ROT13, base32, gzip). Each line says whether `Guard.scan` reports a secret in it. Written
by hand for issue 12's thirteenth session: a coverage list of the view's decoders, not a
quality figure. A form nobody decodes (gzip, ROT13) is a limit of any scanner that does not
guess the encoding; the guard reads what is pasted by accident and the common encodings.
"""

from __future__ import annotations

import base64
import codecs
import gzip
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from emancipate.guard import Guard, GuardConfig  # noqa: E402

TOKEN = "ghp_R8x2Kp9QmZ4vL7nT3wY6bH1cF5dJ0sA2eG9u"  # made up, in GitHub's format
NOTE = (f"Settings for the CI runner\nexport GITHUB_TOKEN={TOKEN}\n"
        "export REGION=eu-west-1\nexport BUCKET=acme-ci-artifacts\n")
PASSWORD = "password: Tr0ub4dor&3xQ!"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _wrap(s: str, width: int) -> str:
    return "\n".join(s[i:i + width] for i in range(0, len(s), width))


def _halves(s: str, between: str, around: str = "") -> str:
    return around + s[:len(s) // 2] + between + s[len(s) // 2:] + around


def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if 33 <= ord(c) <= 126 else c for c in s)


FORMS: dict[str, Callable[[str], str]] = {
    "as written": lambda s: s,
    "base64": _b64,
    "base64, twice": lambda s: _b64(_b64(s)),
    "base64, URL-safe": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
    "base64 wrapped at 76 (`base64`)": lambda s: _wrap(_b64(s), 76),
    "base64 wrapped at 64 (PEM)": lambda s: _wrap(_b64(s), 64),
    "hex (`xxd -p` on one line)": lambda s: s.encode().hex(),
    "hex wrapped at 60 (`xxd -p`)": lambda s: _wrap(s.encode().hex(), 60),
    "hex, capitals, `0x`": lambda s: "0x" + s.encode().hex().upper(),
    "byte escapes `\\x67\\x68`": lambda s: "".join(f"\\x{b:02x}" for b in s.encode()),
    "percent-encoding": lambda s: "".join(f"%{b:02X}" for b in s.encode()),
    "JSON `\\u` escapes": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
    "HTML decimal references": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "HTML hex references": lambda s: "".join(f"&#x{ord(c):x};" for c in s),
    "zero-width spaces between characters": lambda s: "\u200b".join(s),
    "soft hyphens between characters": lambda s: "\u00ad".join(s),
    "full-width characters": _fullwidth,
    "string literals joined (`\"…\" + \"…\"`)": lambda s: _halves(s, '" + "', '"'),
    "cut by a line break": lambda s: _halves(s, "\n"),
    "a blank between characters": lambda s: " ".join(s),
    "a dash between characters": lambda s: "-".join(s),
    "reversed": lambda s: s[::-1],
    "ROT13": lambda s: codecs.encode(s, "rot13"),
    "base32": lambda s: base64.b32encode(s.encode()).decode(),
    "gzip, then base64": lambda s: base64.b64encode(gzip.compress(s.encode())).decode(),
    "a Python list of characters": lambda s: str(list(s)),
    "character codes": lambda s: " ".join(str(ord(c)) for c in s),
    "octal escapes": lambda s: "".join(f"\\{b:03o}" for b in s.encode()),
}


def main() -> None:
    guard = Guard.from_config(GuardConfig())
    print(f"{'form':44}{'token note':>12}{'password':>10}")
    read = {"token note": 0, "password": 0}
    for name, form in FORMS.items():
        row = []
        for label, secret in (("token note", NOTE), ("password", PASSWORD)):
            found = any(f.cls == "secret" for f in guard.scan(form(secret)))
            read[label] += found
            row.append("read" if found else "-")
        print(f"{name:44}{row[0]:>12}{row[1]:>10}")
    print(f"{'read':44}{read['token note']:>9} / {len(FORMS)}"
          f"{read['password']:>5} / {len(FORMS)}")


if __name__ == "__main__":
    main()

"""List the words for `Password` that translators wrote and the leak guard does not read yet.

Debian ships the message catalogues of Linux-PAM, GTK, GLib and other programs under
`/usr/share/locale/*/LC_MESSAGES/*.mo`: each holds what a language's translators made of
`Password:`, `New password:`, `Passphrase:`. Those are the words a login prompt (and so a
person copying a login) uses in that language, written by people who never saw the guard.
This script reads every catalogue the machine has, scans `<word>: <a password>` and
`<word> <a password>` with the guard, and prints the words it does not find a password
after, with their languages. The words the guard took from here stand in
`secrets._PASSWORD_WORDS`, after the comment naming this script.

    .venv/bin/python scripts/catalogue_words.py   # needs the catalogues (Debian's locales)
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

from emancipate.guard import Guard, GuardConfig

CATALOGUES = Path("/usr/share/locale")
ASKED = re.compile(r"_?(password|new password|current password|passphrase)\s*:?", re.I)
MNEMONIC = re.compile(r"\(_\w\)|_|\u200b")  # GTK's `_Password` and `(_P)` access keys
VALUE = "Tq7#vW2mLx9"


def labels() -> dict[str, set[str]]:
    """Each translated word (mnemonics and the closing colon removed) and its languages."""
    found: dict[str, set[str]] = {}
    for path in sorted(CATALOGUES.glob("*/LC_MESSAGES/*.mo")):
        try:
            with path.open("rb") as fp:
                catalogue = gettext.GNUTranslations(fp)
        except (OSError, UnicodeDecodeError, IndexError):  # not UTF-8, a broken header
            continue
        for source, translated in catalogue._catalog.items():  # type: ignore[attr-defined]
            source = source[0] if isinstance(source, tuple) else source
            if not (isinstance(source, str) and isinstance(translated, str)):
                continue
            if not ASKED.fullmatch(source.strip()):
                continue
            word = MNEMONIC.sub("", translated).strip().rstrip(":：៖-").strip()
            if word and word.casefold() != MNEMONIC.sub("", source).strip(" :").casefold():
                found.setdefault(word, set()).add(path.parts[-3])
    return found


def main() -> None:
    guard = Guard.from_config(GuardConfig())
    words = labels()
    unread = 0
    for word, languages in sorted(words.items()):
        for text in (f"{word}: {VALUE}", f"{word} {VALUE}"):
            if not any(f.cls == "secret" for f in guard.scan(text)):
                unread += 1
                print(f"{text!r:60} {' '.join(sorted(languages))}")
    print(f"{len(words)} words in {CATALOGUES}, {unread} forms with no password found")


if __name__ == "__main__":
    main()

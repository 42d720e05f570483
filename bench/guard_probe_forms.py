"""Forms a secret takes in what users paste, written by hand for issue 12's tenth session:
credentials passed to APIs by position (`mysqli_connect(host, user, "…")`), configuration
lines of servers and network devices, configuration files whole (Kubernetes secrets,
`.pypirc`, `settings.xml`, `appsettings.json`, connection URLs), French prose and names,
and 111 vendors' token formats (random values in each vendor's documented shape, with a
name where the format has no prefix). Added in the eleventh session: passwords piped or fed
as here-strings into commands that read them on standard input (`pipes`), and literal
defaults of a secret's variable in code, configuration and templates (`defaults`), and
admin, database, Windows, Wi-Fi and pentest command lines (`commands`), and URLs that carry
their credential (signed URLs, tokens in query strings, reset and login links, webhooks:
`urls`), and secrets in the literals of a dozen more languages and config formats (`code`).
Added in the twelfth session: operators' command lines and files not in `commands` (IPMI,
SNMPv3, LDAP, CIFS mounts, SQL `ALTER USER`/`CREATE LOGIN`, backup tools' environment,
`my.cnf`, `odbc.ini`, Compose and Actions files: `ops`, written before their fixes). Every
text holds a secret. Written alongside the fixes they led to: a coverage and regression
measure, not a quality figure (that is `bench/guard_eval.py`'s held-out one).

    .venv/bin/python bench/guard_probe_forms.py [--show]

Files: `bench/data/guard/forms/*.txt`, one group each, texts separated by `%%` lines. A
text counts as missed when no secret is reported in it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from emancipate.guard import Guard, GuardConfig  # noqa: E402
from guard_probe_pasted import texts  # noqa: E402

DATA = HERE / "data" / "guard" / "forms"
GROUPS = ("api", "config", "files", "french", "vendors", "pipes", "defaults", "commands", "urls",
          "code", "ops")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", action="store_true", help="print the texts missed")
    args = ap.parse_args()
    guard = Guard.from_config(GuardConfig())
    total = missed_all = 0
    for name in GROUPS:
        group = texts(name, DATA)
        missed = [t for t in group if not any(f.cls == "secret" for f in guard.scan(t))]
        total += len(group)
        missed_all += len(missed)
        print(f"{name}: {len(missed)} of {len(group)} missed")
        if args.show:
            for t in missed:
                print(f"    {t[:120]!r}")
    print(f"all: {missed_all} of {total} missed")


if __name__ == "__main__":
    main()

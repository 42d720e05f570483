"""Secret names x value shapes x syntaxes: where the leak guard's keyword readers and rules
stop (issue 12). A generated probe, written alongside the rules it led to: it measures
coverage and regressions, not real-world recall (that is `bench/guard_eval.py`'s held-out
figure).

Each of 53 secret-like names (`signing_key`, `smtp_pass`, `totp_seed`…) is written in 9
syntaxes (`name = "…"`, `name: …`, `NAME=…`, JSON with camelCase, `export NAME="…"`, an XML
element, a `--name …` flag, prose `name is …`) with 5 random value shapes (32 and 20
letters and digits, 40 hex digits, 14 characters with symbols, 32 bytes in base64); a
case is found when a secret finding covers the value.

    .venv/bin/python bench/guard_probe_matrix.py [--show NAME ...]
"""

from __future__ import annotations

import argparse
import base64
import random
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from emancipate.guard import Guard, GuardConfig  # noqa: E402

NAMES = (
    "client_secret", "refresh_token", "signing_key", "encryption_key", "master_key",
    "webhook_secret", "session_secret", "cookie_secret", "jwt_secret", "hmac_key",
    "private_token", "access_token", "auth_token", "license_key", "otp_secret", "totp_seed",
    "mfa_secret", "recovery_code", "api_secret", "consumer_secret", "oauth_token_secret",
    "service_key", "admin_key", "root_key", "deploy_key", "keystore_password",
    "truststore_password", "encryption_password", "vault_pass", "registry_token", "pull_secret",
    "app_password", "smtp_pass", "db_pwd", "redis_auth", "sentry_dsn_key", "shared_secret",
    "preshared_key", "psk", "secret_token", "signing_secret", "csrf_secret", "salt_key",
    "aes_key", "des_key", "rsa_passphrase", "gpg_passphrase", "bot_token", "webhook_token",
    "integration_key", "ingest_key", "write_key", "read_key"
)
FORMS = ('{n} = "{v}"', "{n}: {v}", "{N}={v}", '"{c}": "{v}"', "{c}={v}", 'export {N}="{v}"',
         "<{c}>{v}</{c}>", "--{d} {v}", "{n} is {v}")


def shapes(rnd: random.Random) -> dict[str, str]:
    def pick(alphabet: str, n: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(n))
    alnum = string.ascii_letters + string.digits
    return {"alnum32": pick(alnum, 32), "hex40": pick("0123456789abcdef", 40),
            "pw14": pick(alnum + "!#%&*@^", 14),
            "b64_44": base64.b64encode(rnd.randbytes(32)).decode(), "alnum20": pick(alnum, 20)}


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(w.title() for w in rest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", nargs="*", default=[], help="print the missed cases of NAME")
    args = ap.parse_args()
    guard = Guard.from_config(GuardConfig())
    rnd = random.Random(7)
    missed: dict[str, list[str]] = {}
    total = 0
    for name in NAMES:
        for form in FORMS:
            for shape, value in shapes(rnd).items():
                text = form.format(n=name, N=name.upper(), c=camel(name),
                                   d=name.replace("_", "-"), v=value)
                total += 1
                at = text.index(value)
                if not any(f.cls == "secret" and f.start < at + len(value) and at < f.end
                           for f in guard.scan(text)):
                    missed.setdefault(name, []).append(f"{shape:8} {text}")
    print(f"missed {sum(map(len, missed.values()))} of {total} "
          f"({len(NAMES)} names x {len(FORMS)} syntaxes x 5 value shapes)")
    for name, cases in sorted(missed.items(), key=lambda kv: -len(kv[1])):
        print(f"  {name:22} {len(cases)}")
        if name in args.show:
            for case in cases:
                print(f"      {case}")


if __name__ == "__main__":
    main()

"""Writes the leak guard's labelled development corpus (`corpus.jsonl`), deterministically.

    .venv/bin/python bench/data/guard/make_corpus.py

Every record is one prompt, English or French, with the entities it contains:
`{"id", "lang", "kind": "positive" | "hard_negative", "text", "labels": [{"class",
"detector", "value"}], "domains": [...]}`. Values are generated in their real formats (with
valid checksums, computed with python-stdnum, and phone numbers accepted by
libphonenumber); hard negatives are the look-alikes a guard must not flag: documentation
example keys, placeholders, invalid checksums, dates, amounts, versions, hashes, prose
about passwords and keys, words that contain a confidential term, off-topic "clouds".
Labels are written from how each prompt is built, never from the guard's output.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

import phonenumbers
from stdnum import luhn
from stdnum.iso7064 import mod_97_10

HERE = Path(__file__).resolve().parent
R = random.Random(20261122)
ALNUM = string.ascii_letters + string.digits
B32 = string.ascii_uppercase + "234567"
B64 = string.ascii_letters + string.digits + "+/"
URLSAFE = string.ascii_letters + string.digits + "_-"
HEX = "0123456789abcdef"

TERMS = ["Project Phoenix", "Bluefin", "Orion-7", "Nébuleuse", "Acme Retail", "Globex",
         "Initech", "db01.corp.internal", "gitlab.acme.internal", "Kestrel", "Sirius Ledger",
         "Hélios Santé", "Umbrella Pharma", "Tyrell Labs", "Opération Colibri"]

records: list[dict] = []


def rnd(chars: str, n: int) -> str:
    return "".join(R.choice(chars) for _ in range(n))


def add(lang: str, kind: str, text: str, labels: list[tuple[str, str, str]] | None = None,
        domains: list[str] | None = None, note: str = "") -> None:
    for _, _, v in labels or ():
        assert v in text, (v, text)
    rec = {"id": f"{len(records):04d}", "lang": lang, "kind": kind, "text": text,
           "labels": [{"class": c, "detector": d, "value": v} for c, d, v in labels or ()],
           "domains": domains or []}
    if note:
        rec["note"] = note
    records.append(rec)


# --- value generators ------------------------------------------------------------------------

def aws() -> str:
    return R.choice(["AKIA", "ASIA"]) + rnd(B32, 16)


def gcp() -> str:
    return "AIza" + rnd(URLSAFE, 35)


def azure_secret() -> str:
    return rnd(ALNUM, 3) + R.choice(string.digits) + "Q~" + rnd(ALNUM + "_~.-", 34)


def azure_storage_key() -> str:
    return rnd(B64, 86) + "=="


def openai_key() -> str:
    if R.random() < 0.6:
        return "sk-proj-" + rnd(URLSAFE, 74) + "T3BlbkFJ" + rnd(URLSAFE, 74)
    return "sk-" + rnd(ALNUM, 20) + "T3BlbkFJ" + rnd(ALNUM, 20)


def anthropic_key() -> str:
    return "sk-ant-api03-" + rnd(URLSAFE, 93) + "AA"


def github() -> str:
    return R.choice(["ghp_", "gho_", "ghs_"]) + rnd(ALNUM, 36) if R.random() < 0.7 else (
        "github_pat_" + rnd(ALNUM + "_", 82))


def gitlab() -> str:
    return "glpat-" + rnd(URLSAFE, 20)


def slack() -> str:
    return f"xoxb-{rnd(string.digits, 12)}-{rnd(string.digits, 13)}-{rnd(ALNUM, 24)}"


def slack_hook() -> str:
    return (f"https://hooks.slack.com/services/T{rnd(B32, 8)}/B{rnd(B32, 10)}/"
            f"{rnd(ALNUM, 24)}")


def stripe() -> str:
    return R.choice(["sk_live_", "rk_live_", "sk_test_"]) + rnd(ALNUM, 24)


def groq() -> str:
    return "gsk_" + rnd(ALNUM, 52)


def hf() -> str:
    return "hf_" + rnd(string.ascii_letters, 34)


def npm() -> str:
    return "npm_" + rnd(ALNUM, 36)


def sendgrid() -> str:
    return "SG." + rnd(URLSAFE, 22) + "." + rnd(URLSAFE, 43)


def pem(kind: str = "RSA") -> str:
    body = "\n".join(rnd(B64, 64) for _ in range(R.randint(4, 8)))
    label = {"RSA": "RSA PRIVATE KEY", "EC": "EC PRIVATE KEY", "PKCS8": "PRIVATE KEY",
             "OPENSSH": "OPENSSH PRIVATE KEY"}[kind]
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt() -> str:
    head = b64url(json.dumps({"alg": R.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": rnd(string.digits, 8), "name": "a user",
                              "iat": 1700000000 + R.randint(0, 10**6)}).encode())
    return f"{head}.{body}.{rnd(URLSAFE, 43)}"


def password(url_safe: bool = False) -> str:
    """A human-chosen password; in a URL, without the characters that must be %-encoded."""
    words = ["Soleil", "Tiger", "Maple", "Orange", "Falcon", "Brume", "Rivage", "Summer"]
    symbols = "!$*-_.~" if url_safe else "!#$%&*?@"
    return R.choice(words) + str(R.randint(10, 9999)) + R.choice(symbols) + rnd(ALNUM, 2)


def hexkey(n: int = 32) -> str:
    return rnd(HEX, n)


def email(lang: str) -> str:
    first = R.choice(["jean", "marie", "luc", "camille", "john", "sarah", "emily", "thomas",
                      "ines", "hugo", "olivia", "noah"])
    last = R.choice(["dupont", "martin", "bernard", "moreau", "smith", "johnson", "brown",
                     "garcia", "lefevre", "nguyen"])
    dom = R.choice(["gmail.com", "outlook.fr", "orange.fr", "acme-corp.com", "free.fr",
                    "univ-lyon1.fr", "company.co.uk", "protonmail.ch"])
    sep = R.choice([".", "_", "", "-"])
    return f"{first}{sep}{last}{R.choice(['', str(R.randint(1, 99))])}@{dom}"


def phone(region: str, intl: bool) -> str:
    while True:
        if region == "FR":
            nat = R.choice(["06", "07", "01", "02", "03", "04", "05", "09"]) + rnd(
                string.digits, 8)
        elif region == "US":
            nat = (R.choice("23456789") + rnd(string.digits, 2) + R.choice("23456789")
                   + rnd(string.digits, 6))
        else:
            nat = R.choice(["020", "0121", "0161", "07"]) + rnd(string.digits, 7 if R.random()
                                                              < 0.5 else 8)
        try:
            num = phonenumbers.parse(nat, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(num):
            continue
        fmt = (phonenumbers.PhoneNumberFormat.INTERNATIONAL if intl
               else phonenumbers.PhoneNumberFormat.NATIONAL)
        s = phonenumbers.format_number(num, fmt)
        if region == "FR" and not intl and R.random() < 0.3:
            s = s.replace(" ", R.choice([".", "-", ""]))
        if region == "US" and not intl and R.random() < 0.4:
            s = s.replace("(", "").replace(") ", "-")
        return s


IBAN_BBAN = {"FR": ("n", 23), "DE": ("n", 18), "ES": ("n", 20), "IT": ("it", 23),
             "NL": ("nl", 14), "BE": ("n", 12), "GB": ("gb", 18), "CH": ("n", 17)}


def iban(cc: str | None = None, valid: bool = True) -> str:
    cc = cc or R.choice(list(IBAN_BBAN))
    kind, n = IBAN_BBAN[cc]
    if kind == "n":
        bban = rnd(string.digits, n)
    elif kind == "it":
        bban = R.choice(string.ascii_uppercase) + rnd(string.digits, 22)
    elif kind == "nl":
        bban = rnd(string.ascii_uppercase, 4) + rnd(string.digits, 10)
    else:
        bban = rnd(string.ascii_uppercase, 4) + rnd(string.digits, 14)
    if cc == "FR":
        bban = bban[:21] + _rib_key(bban[:21])
    if cc == "BE":
        base = int(bban[:10])
        bban = bban[:10] + f"{(base % 97) or 97:02d}"
    if cc == "ES":
        bban = _es_bban(bban)
    check = mod_97_10.calc_check_digits(bban + cc)
    if not valid:
        check = f"{(int(check) + R.randint(1, 90)) % 97 + 2:02d}"
    raw = cc + check + bban
    if R.random() < 0.65:
        return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))
    return raw


def _rib_key(s: str) -> str:
    return f"{97 - (int(s) * 100) % 97:02d}"


def _es_bban(b: str) -> str:
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]

    def d(x: str) -> str:
        c = 11 - sum(int(a) * b for a, b in zip(x.rjust(10, "0"), w, strict=True)) % 11
        return "0" if c == 11 else "1" if c == 10 else str(c)

    return b[:8] + d("00" + b[:8]) + d(b[10:20]) + b[10:20]


def card(valid: bool = True) -> str:
    brand = R.choice(["visa", "mc", "amex", "disc"])
    prefix, n = {"visa": ("4", 16), "mc": (str(R.randint(51, 55)), 16),
                 "amex": (R.choice(["34", "37"]), 15), "disc": ("6011", 16)}[brand]
    body = prefix + rnd(string.digits, n - len(prefix) - 1)
    digit = luhn.calc_check_digit(body)
    if not valid:
        digit = str((int(digit) + R.randint(1, 9)) % 10)
    num = body + digit
    sep = R.choice([" ", "-", ""])
    if brand == "amex":
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join(num[i:i + 4] for i in range(0, 16, 4))


def ssn(valid: bool = True) -> str:
    if valid:
        area = R.choice([R.randint(1, 665), R.randint(667, 899)])
        return f"{area:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"
    return R.choice([f"000-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}",
                     f"666-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}",
                     f"{R.randint(900, 999)}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}",
                     f"{R.randint(100, 600)}-00-{R.randint(1, 9999):04d}"])


def nir(valid: bool = True, spaced: bool | None = None) -> str:
    sex = R.choice("12")
    yy, mm = f"{R.randint(0, 99):02d}", f"{R.randint(1, 12):02d}"
    dept = R.choice([f"{R.randint(1, 95):02d}", "75", "69", "13"])
    if dept == "20":
        dept = "21"
    commune, order = f"{R.randint(1, 990):03d}", f"{R.randint(1, 999):03d}"
    base = sex + yy + mm + dept + commune + order
    key = 97 - int(base) % 97
    if not valid:
        key = (key + R.randint(1, 50)) % 97 + 1
    parts = [sex, yy, mm, dept, commune, order, f"{key:02d}"]
    if spaced is None:
        spaced = R.random() < 0.6
    return " ".join(parts) if spaced else "".join(parts)


def siren(valid: bool = True) -> str:
    body = R.choice("3456789") + rnd(string.digits, 7)
    d = luhn.calc_check_digit(body)
    if not valid:
        d = str((int(d) + R.randint(1, 9)) % 10)
    return body + d


def siret(valid: bool = True) -> str:
    s = siren()
    body = s + rnd(string.digits, 4)
    d = luhn.calc_check_digit(body)
    if not valid:
        d = str((int(d) + R.randint(1, 9)) % 10)
    return body + d


def group(s: str, sizes: list[int]) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    return " ".join(out)


def fr_vat() -> str:
    s = siren()
    key = (12 + 3 * (int(s) % 97)) % 97
    return f"FR{key:02d}{s}" if R.random() < 0.5 else f"FR {key:02d} {group(s, [3, 3, 3])}"


def ipv4(public: bool = True) -> str:
    if public:
        return f"{R.choice([34, 52, 81, 91, 145, 185, 203])}.{R.randint(0, 255)}." \
               f"{R.randint(0, 255)}.{R.randint(1, 254)}"
    return R.choice([f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
                     f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}",
                     f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}"])


def ipv6() -> str:
    groups = [f"{R.randint(0, 0xffff):x}" for _ in range(8)]
    groups[0] = R.choice(["2001", "2a01", "2606", "fd12"])
    if R.random() < 0.5:
        return ":".join(groups)
    return ":".join(groups[:3]) + "::" + ":".join(groups[6:])


# --- secrets ---------------------------------------------------------------------------------

SECRET_TEMPLATES_EN = [
    ("aws_access_key", aws, "Why does boto3 fail with my key {v}? The region is eu-west-3."),
    ("aws_access_key", aws, "[default]\naws_access_key_id = {v}\nregion = eu-west-1\n\n"
                            "Can you tell me what is wrong with this profile?"),
    ("gcp_api_key", gcp, "Our Maps integration returns 403 with key={v}, any idea?"),
    ("azure_ad_client_secret", azure_secret,
     "AZURE_CLIENT_ID=4f1c2e9a-1d2b-4c3e-9f8a-7b6c5d4e3f2a\nAZURE_CLIENT_SECRET={v}\n"
     "Why does DefaultAzureCredential not pick these up?"),
    ("azure_storage_key", azure_storage_key,
     "conn = \"DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey={v};"
     "EndpointSuffix=core.windows.net\"\nHow do I list the blobs?"),
    ("openai_api_key", openai_key, "client = OpenAI(api_key=\"{v}\")\nWhy is it slow?"),
    ("anthropic_api_key", anthropic_key, "curl https://api.example.net/v1/messages -H "
                                         "\"x-api-key: {v}\" -d @body.json"),
    ("github_token", github, "git clone https://oauth2:{v}@github.com/acme/payments.git "
                             "fails, why?"),
    ("gitlab_token", gitlab, "Use this token to call the API: {v}"),
    ("slack_token", slack, "My bot token {v} gets not_authed from chat.postMessage."),
    ("slack_webhook", slack_hook, "Post the alert to {v} when the job fails."),
    ("stripe_key", stripe, "stripe.api_key = \"{v}\"\nHow do I refund a charge?"),
    ("model_api_key", groq, "GROQ_API_KEY={v} python app.py gives a 401."),
    ("model_api_key", hf, "huggingface-cli login --token {v}"),
    ("package_registry_token", npm, "//registry.npmjs.org/:_authToken={v}"),
    ("sendgrid_key", sendgrid, "The SendGrid key is {v} and mails bounce."),
    ("jwt", jwt, "Decode this token and tell me when it expires: {v}"),
    ("jwt", jwt, "Authorization: Bearer {v}\nThe API answers 401, what is wrong?"),
]
SECRET_TEMPLATES_FR = [
    ("aws_access_key", aws, "Ma clé d'accès {v} ne fonctionne plus depuis ce matin."),
    ("gcp_api_key", gcp, "Voici la clé de l'API Google : {v}. Pourquoi est-elle refusée ?"),
    ("openai_api_key", openai_key, "J'ai mis OPENAI_API_KEY={v} dans le .env, ça ne marche pas."),
    ("github_token", github, "Le jeton GitHub {v} expire quand ?"),
    ("stripe_key", stripe, "La clé Stripe de prod est {v}, peux-tu écrire le webhook ?"),
    ("slack_token", slack, "Le bot Slack utilise le jeton {v}."),
    ("jwt", jwt, "Peux-tu décoder ce JWT : {v} ?"),
    ("anthropic_api_key", anthropic_key, "export ANTHROPIC_API_KEY={v}\nPourquoi 401 ?"),
]


def secrets() -> None:
    for _ in range(4):
        for det, gen, tpl in SECRET_TEMPLATES_EN:
            v = gen()
            add("en", "positive", tpl.format(v=v), [("secret", det, v)])
        for det, gen, tpl in SECRET_TEMPLATES_FR:
            v = gen()
            add("fr", "positive", tpl.format(v=v), [("secret", det, v)])
    for _ in range(3):
        for kind in ("RSA", "EC", "PKCS8", "OPENSSH"):
            k = pem(kind)
            add("en", "positive", f"Is this key in the right format?\n{k}\nThanks.",
                [("secret", "private_key", k)])
        k = pem("PKCS8")
        escaped = k.replace("\n", "\\n")
        sa = ('{"type": "service_account", "project_id": "acme-prod", "private_key_id": "'
              + hexkey(40) + '", "private_key": "' + escaped + '", "client_email": '
              '"deployer@acme-prod.iam.gserviceaccount.com"}')
        add("en", "positive", f"Why does this service account fail?\n{sa}",
            [("secret", "private_key", escaped),
             ("personal", "email", "deployer@acme-prod.iam.gserviceaccount.com")])
        k = pem("RSA")
        add("fr", "positive", f"Ma clé privée :\n{k}\nest-elle valide ?",
            [("secret", "private_key", k)])
    for _ in range(8):
        pw = password(url_safe=True)
        scheme = R.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
        user = R.choice(["admin", "app", "svc_billing", "root", "deploy"])
        add("en", "positive", f"DATABASE_URL={scheme}://{user}:{pw}@db-{R.randint(1, 9)}."
            f"internal.acme.io:5432/app\nMigrations hang on startup, why?",
            [("secret", "url_password", pw)])
        pw = password(url_safe=True)
        add("fr", "positive", f"La chaîne de connexion est mysql://app:{pw}@10.0.0.12/ventes "
            "et le service ne démarre pas.", [("secret", "url_password", pw),
                                               ("personal", "ipv4", "10.0.0.12")])
    for _ in range(6):
        pw = password()
        tpl = R.choice([
            "password: {v}", "DB_PASSWORD={v}", "\"password\": \"{v}\"",
            "Server=sql01;Database=crm;User Id=sa;Password={v};",
            "my password is {v} but login fails", "spring.datasource.password={v}"])
        add("en", "positive", f"Config below.\n{tpl.format(v=pw)}\nWhat is wrong?",
            [("secret", "password", pw)])
        pw = password()
        tpl = R.choice(["Le mot de passe est {v} pour le compte admin.",
                        "mot de passe : {v}", "mdp={v}", "Mon mot de passe : {v}"])
        add("fr", "positive", tpl.format(v=pw) + " Peux-tu m'aider ?",
            [("secret", "password", pw)])
    for _ in range(6):
        v = R.choice([hexkey(32), hexkey(40), rnd(ALNUM, 40), rnd(ALNUM + "-_", 48)])
        name = R.choice(["api_key", "API_KEY", "secret_key", "client_secret", "auth_token",
                         "SECRET_KEY", "access_token", "apiKey", "X-Api-Key"])
        sep = R.choice([" = ", "=", ": ", "\": \""])
        text = f"{name}{sep}{v}" if sep != "\": \"" else f"{{\"{name}\": \"{v}\"}}"
        add("en", "positive", f"Here is my config:\n{text}\nWhy do requests fail?",
            [("secret", "generic_secret", v)])
        v = rnd(ALNUM, 32)
        add("fr", "positive", f"La clé API de Mistral est {v}, il faut la mettre où ?",
            [("secret", "generic_secret", v)])
        v = rnd(ALNUM + "._-", 40)
        add("en", "positive", f"curl -H \"Authorization: Bearer {v}\" https://api.acme.io/v2/"
            "orders returns 403.", [("secret", "bearer_token", v)])

    # hard negatives
    negatives_en = [
        "The AWS docs use AKIAIOSFODNN7EXAMPLE and wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY as "
        "sample credentials; how should I store real ones?",
        "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx is what the README shows.",
        "Set OPENAI_API_KEY=sk-your-key-here in your .env file before running the notebook.",
        "api_key = os.environ[\"OPENAI_API_KEY\"]\nclient = OpenAI(api_key=api_key)",
        "password = getpass.getpass()\nconn = connect(user=user, password=password)",
        "DATABASE_URL=postgres://user:password@localhost:5432/mydb is the default in the docs.",
        "In CI we inject ${DB_PASSWORD} and ${{ secrets.NPM_TOKEN }}; is that safe?",
        "password: ********", "Set the password to at least 12 characters with one digit.",
        "The access token expires after 3600 seconds; the refresh token after 30 days.",
        "API keys must be rotated every 90 days according to our policy.",
        "The key insight is that caching halves the latency.",
        "Our token budget is 128k per request; the key points are cost and speed.",
        "commit 3f9a2c1e8b7d6f5a4e3c2b1a0f9e8d7c6b5a4f3e\nAuthor: Jean Dupont\n\nFix the parser",
        "request_id: 9b2f6c1e-4d3a-4b8e-9c7f-1a2b3c4d5e6f was slow",
        "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "Use scikit-learn (sk-learn) for the baseline model.",
        "key_id = 'a1b2c3d4e5f6a7b8c9d0' identifies the key in the KMS, not the secret.",
        "public_key: ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@laptop",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
        "-----END PUBLIC KEY-----\nIs this the right format for the verifier?",
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n"
        "-----END CERTIFICATE-----",
        "Stripe publishable keys start with pk_live_ and can be shown to browsers.",
        "The Slack docs use https://hooks.slack.com/services/T00000000/B00000000/"
        "XXXXXXXXXXXXXXXXXXXXXXXX as an example webhook.",
        "secret_name: prod-db-credentials\nsecret_version: latest",
        "The JWT header is base64url of {\"alg\": \"HS256\"}; the signature is an HMAC.",
        "token_url: https://login.acme.io/oauth2/token",
        "The password field is required; the form says: password is required.",
        "Use a passphrase like correct horse battery staple for your disk.",
        "The secret sauce of our onboarding is the welcome call.",
        "A monkey: 12 bananas; a turkey: 4kg; a hockey stick: 2 metres.",
    ]
    negatives_fr = [
        "Le mot de passe doit contenir au moins 12 caractères dont un chiffre.",
        "La clé du succès : écouter les clients.",
        "Mettez votre clé API dans la variable d'environnement MISTRAL_API_KEY.",
        "Le jeton expire au bout d'une heure ; il faut le renouveler.",
        "mot de passe : ********",
        "Dans la doc, la chaîne est postgres://utilisateur:motdepasse@localhost/base, à "
        "adapter.",
        "Les secrets sont dans Vault, chemin secret/data/prod/db.",
        "password = os.getenv(\"DB_PASSWORD\")",
    ]
    for t in negatives_en:
        add("en", "hard_negative", t)
    for t in negatives_fr:
        add("fr", "hard_negative", t)


# --- personal data ---------------------------------------------------------------------------

def personal() -> None:
    for _ in range(12):
        e = email("en")
        add("en", "positive", R.choice([
            "Please draft a reply to {v} about the delayed shipment.",
            "Forward the invoice to {v} and cc the finance team.",
            "Customer {v} complains about double billing; summarise the thread."]).format(v=e),
            [("personal", "email", e)])
        e = email("fr")
        add("fr", "positive", R.choice([
            "Réponds à {v} au sujet du retard de livraison.",
            "Le client ({v}) demande un remboursement.",
            "Écris un courriel poli à {v} pour fixer un rendez-vous."]).format(v=e),
            [("personal", "email", e)])
    for region, lang in (("FR", "fr"), ("US", "en"), ("GB", "en")):
        for i in range(10):
            p = phone(region, intl=i % 3 == 0)
            tpl = {"fr": ["Rappelle M. Martin au {v} avant midi.",
                          "Mon numéro : {v}, disponible le soir.",
                          "Contact urgence : {v} (sa fille)."],
                   "en": ["Call the customer back at {v} tomorrow morning.",
                          "My cell is {v}, text me when the parcel ships.",
                          "Emergency contact: {v} (spouse)."]}[lang]
            add(lang, "positive", R.choice(tpl).format(v=p), [("personal", "phone", p)])
    for _ in range(18):
        ib = iban()
        lang = R.choice(["en", "fr"])
        tpl = ("Please wire the deposit to IBAN {v} before Friday." if lang == "en"
               else "Merci de virer l'acompte sur le compte {v} avant vendredi.")
        add(lang, "positive", tpl.format(v=ib), [("personal", "iban", ib)])
    for _ in range(18):
        c = card()
        lang = R.choice(["en", "fr"])
        tpl = R.choice(["Charge my card {v}, expiry 09/27, for the annual plan.",
                        "The customer paid with {v} and wants a refund."] if lang == "en" else
                       ["Ma carte {v} a été débitée deux fois.",
                        "Paiement refusé pour la carte {v}, exp 11/26."])
        add(lang, "positive", tpl.format(v=c), [("personal", "card", c)])
    for _ in range(12):
        s = ssn()
        add("en", "positive", R.choice([
            "Employee SSN {v} must be added to the W-2 form.",
            "Applicant: John Smith, SSN: {v}, DOB 04/12/1988.",
            "Verify the social security number {v} against the payroll file."]).format(v=s),
            [("personal", "us_ssn", s)])
    for _ in range(16):
        n = nir()
        add("fr", "positive", R.choice([
            "Numéro de sécurité sociale : {v}, à reporter sur la feuille de soins.",
            "Le salarié (NIR {v}) demande son attestation.",
            "Mon numéro de sécu est le {v}."]).format(v=n), [("personal", "fr_nir", n)])
    for _ in range(10):
        s = siren()
        v = R.choice([s, group(s, [3, 3, 3])])
        add("fr", "positive", R.choice([
            "Facture à établir pour la société SIREN {v}.",
            "RCS Lyon {v} — merci de vérifier l'adresse du siège.",
            "Entreprise immatriculée sous le numéro SIREN : {v}."]).format(v=v),
            [("personal", "fr_siren", v)])
        t = siret()
        v = R.choice([group(t, [3, 3, 3, 5]), t])
        add("fr", "positive", R.choice([
            "SIRET de l'établissement : {v}.", "Le fournisseur (SIRET {v}) n'a pas été payé.",
            "Établissement secondaire, SIRET {v}, à ajouter au contrat."]).format(v=v),
            [("personal", "fr_siret", v)])
    for _ in range(8):
        v = fr_vat()
        add("fr", "positive", f"N° TVA intracommunautaire : {v}, à mettre sur la facture.",
            [("personal", "fr_vat", v)])
    for _ in range(14):
        ip = ipv4(public=R.random() < 0.6)
        lang = R.choice(["en", "fr"])
        tpl = ("The login came from {v}; is it one of our offices?" if lang == "en"
               else "La connexion suspecte vient de l'adresse {v}.")
        add(lang, "positive", tpl.format(v=ip), [("personal", "ipv4", ip)])
    for _ in range(8):
        ip = ipv6()
        add("en", "positive", f"The client at {ip} keeps retrying every second.",
            [("personal", "ipv6", ip)])
    # several entities in one prompt
    for _ in range(10):
        e, p, ib = email("fr"), phone("FR", False), iban("FR")
        add("fr", "positive", f"Client : Camille Moreau, {e}, tél. {p}. IBAN pour le "
            f"remboursement : {ib}. Rédige la lettre de confirmation.",
            [("personal", "email", e), ("personal", "phone", p), ("personal", "iban", ib)])
        e, p, c = email("en"), phone("US", False), card()
        add("en", "positive", f"Ticket #4821: customer {e} ({p}) was charged twice on card "
            f"{c}. Write the apology.", [("personal", "email", e), ("personal", "phone", p),
                                         ("personal", "card", c)])

    # hard negatives
    negs = [
        ("en", "The meeting moved from 2024-03-15 to 2024-04-02 at 10:30."),
        ("fr", "Rendez-vous le 15/03/2024 à 14h30, salle 2."),
        ("en", "Revenue grew to $12,345,678.90 in Q3, up 14.5% year on year."),
        ("fr", "Le budget est de 1 234 567,89 € pour 2025."),
        ("en", "Upgrade from version 10.0.19041.1 to 10.0.22631.2861."),
        ("en", "We pinned numpy==1.26.4 and torch 2.3.1+cu121."),
        ("en", "Bind the server to 127.0.0.1 or 0.0.0.0, with netmask 255.255.255.0."),
        ("en", "The Unix timestamp 1700000000 is in November 2023."),
        ("en", "Order CMD-2024-0001234567 shipped via UPS 1Z999AA10123456784."),
        ("en", "ISBN 978-2-07-036822-8 is the paperback edition."),
        ("en", "Use icon@2x.png and logo@3x.webp for retina screens."),
        ("en", "git clone git@github.com:acme/web.git and run make."),
        ("en", "Ping @jean.dupont and @marie in the channel."),
        ("en", "The MAC address 00:1A:2B:3C:4D:5E belongs to the printer."),
        ("en", "std::vector<int> v; std::map<std::string, int> m;"),
        ("en", "Run it at 10:30:45 UTC and again at 22:15:00."),
        ("en", "The hash is 5d41402abc4b2a76b9719d911017c592 for 'hello'."),
        ("fr", "Le colis pèse 12,5 kg et mesure 120 x 80 x 60 cm."),
        ("en", "Call the office extension 4512 or room 2-114."),
        ("en", "Population: 67 750 000 inhabitants in 2023."),
        ("en", "The test card numbers in the docs are fine, but never log real PANs."),
        ("fr", "Le code postal 75008 et le département 69 sont concernés."),
        ("en", "Coordinates 48.8566, 2.3522 are central Paris."),
        ("en", "Invoice 2024/000123 is due in 30 days."),
        ("fr", "Le vol AF1234 part à 07:45 du terminal 2E."),
        ("en", "Latency p50 1.25 ms, p99 13.7 ms over 1,000,000 requests."),
        ("en", "Fibonacci: 1 1 2 3 5 8 13 21 34 55 89 144."),
        ("fr", "Le numéro de commande est 2024-11-000457, livraison sous 48h."),
    ]
    for lang, t in negs:
        add(lang, "hard_negative", t)
    for _ in range(8):
        add("en", "hard_negative", f"Transfer to IBAN {iban(valid=False)} failed validation; "
            "what does the error mean?", note="invalid IBAN check digits")
        add("en", "hard_negative", f"Is {card(valid=False)} a valid card number? The form "
            "rejects it.", note="fails Luhn")
        add("fr", "hard_negative", f"Le numéro {nir(valid=False)} est refusé par le "
            "formulaire, pourquoi ?", note="wrong NIR key")
        add("en", "hard_negative", f"Reference {ssn(valid=False)} was rejected by the "
            "validator.", note="SSN rules: 000/666/9xx area or 00 group")
        add("fr", "hard_negative", f"Le colis {siren()} est en transit, arrivée prévue jeudi.",
            note="9 digits without company context")
        add("fr", "hard_negative", f"Ticket {siret(valid=False)} : écran bleu au démarrage.",
            note="14 digits failing Luhn")


# --- confidential terms ----------------------------------------------------------------------

def confidential() -> None:
    en = ["Summarise the status of {t} for the board.", "Draft the press release for {t}.",
          "What are the risks if {t} slips to Q3?", "Compare {t} with the old system.",
          "The outage hit {t} again; write the incident report.",
          "Translate the onboarding notes of {t} into Spanish."]
    fr = ["Résume l'avancement de {t} pour le comité.", "Rédige le communiqué sur {t}.",
          "Quels sont les risques si {t} prend du retard ?", "Le client {t} veut une remise."]
    variants = [str, str.lower, str.upper]
    for term in TERMS:
        for i in range(3):
            shown = variants[i](term)
            if i == 1 and any(ch in term for ch in "éÉ"):
                shown = shown.replace("é", "e").replace("É", "E")
            lang = "fr" if i == 2 else "en"
            tpl = R.choice(fr if lang == "fr" else en)
            add(lang, "positive", tpl.format(t=shown), [("confidential", "term", shown)])
    negs = [
        ("en", "A phoenix rises from the ashes in many myths."),
        ("en", "Bluefins are tuna and migrate far."),
        ("en", "Orion is visible in winter; Orion-7b is a model name we never used."),
        ("fr", "Les nébuleuses sont des nuages de gaz et de poussière."),
        ("en", "Acme Retailers Association publishes a yearly report."),
        ("en", "Globexx and Initechnology are unrelated startups."),
        ("en", "db01.corp.internalx and xdb01.corp.internal are other hosts."),
        ("en", "Kestrels are small falcons; they hover over fields."),
        ("en", "Sirius is the brightest star; a ledger records transactions."),
        ("fr", "Hélios est le dieu du soleil ; la santé publique est un sujet."),
        ("en", "Umbrella policies and pharma regulations differ by country."),
        ("en", "Tyrell is a character in a film; labs need safety training."),
        ("fr", "Un colibri butine ; l'opération a réussi."),
        ("en", "Project management tips for phoenix-like turnarounds."),
    ]
    for lang, t in negs:
        add(lang, "hard_negative", t)


# --- code ------------------------------------------------------------------------------------

CODE_SNIPPETS = [
    ("python", "def moving_average(xs, n):\n    out = []\n    for i in range(len(xs) - n + 1):\n"
               "        out.append(sum(xs[i:i + n]) / n)\n    return out"),
    ("python", "import pandas as pd\n\ndf = pd.read_csv(\"sales.csv\")\n"
               "df[\"month\"] = df[\"date\"].dt.month\nprint(df.groupby(\"month\").sum())"),
    ("python", "class RateLimiter:\n    def __init__(self, rate):\n        self.rate = rate\n"
               "        self.tokens = rate\n\n    def allow(self):\n        if self.tokens > 0:\n"
               "            self.tokens -= 1\n            return True\n        return False"),
    ("javascript", "const express = require('express');\nconst app = express();\n\n"
                   "app.get('/health', (req, res) => {\n  res.json({ ok: true });\n});\n\n"
                   "app.listen(3000);"),
    ("typescript", "export async function fetchUser(id: string): Promise<User> {\n"
                   "  const res = await fetch(`/api/users/${id}`);\n"
                   "  if (!res.ok) throw new Error(res.statusText);\n  return res.json();\n}"),
    ("go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n    for i := 0; i < 3; i++ {\n"
           "        fmt.Println(i)\n    }\n}"),
    ("java", "public class Invoice {\n    private final BigDecimal total;\n\n"
             "    public Invoice(BigDecimal total) {\n        this.total = total;\n    }\n}"),
    ("sql", "SELECT c.name, SUM(o.amount) AS revenue\nFROM customers c\n"
            "JOIN orders o ON o.customer_id = c.id\nWHERE o.created_at >= '2024-01-01'\n"
            "GROUP BY c.name\nORDER BY revenue DESC;"),
    ("rust", "fn parse(line: &str) -> Option<(u32, u32)> {\n    let mut it = line.split(',');\n"
             "    let a = it.next()?.parse().ok()?;\n    let b = it.next()?.parse().ok()?;\n"
             "    Some((a, b))\n}"),
    ("c", "#include <stdio.h>\n\nint main(void) {\n    int n = 10;\n"
          "    printf(\"%d\\n\", n * n);\n    return 0;\n}"),
    ("bash", "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.log; do\n"
             "  gzip \"$f\"\ndone"),
    ("php", "<?php\nfunction total($items) {\n    $sum = 0;\n    foreach ($items as $i) {\n"
            "        $sum += $i['price'];\n    }\n    return $sum;\n}"),
]


def code() -> None:
    for lang_tag, snippet in CODE_SNIPPETS:
        for mode in range(3):
            lang = R.choice(["en", "fr"])
            ask = (R.choice(["Why does this fail on empty input?", "Can you optimise this?",
                             "Add type hints and tests for this:"]) if lang == "en" else
                   R.choice(["Pourquoi ce code plante-t-il ?", "Peux-tu optimiser ceci ?",
                             "Ajoute des tests pour ce code :"]))
            if mode == 0:
                text = f"{ask}\n\n```{lang_tag}\n{snippet}\n```"
                label = f"```{lang_tag}\n{snippet}\n```"
            elif mode == 1:
                text = f"{ask}\n\n```\n{snippet}\n```\nThanks!"
                label = snippet
            else:
                if lang_tag in ("bash", "php", "c"):
                    continue
                text = f"{ask}\n\n{snippet}\n\nMerci." if lang == "fr" else \
                    f"{ask}\n\n{snippet}\n\nThanks."
                label = snippet
            add(lang, "positive", text, [("code", "code", label)])
    negs = [
        ("en", "Steps: preheat the oven; mix the flour and eggs; bake for 20 minutes; let it "
               "cool."),
        ("en", "- buy milk;\n- call the bank;\n- book the flight;\n- renew the passport."),
        ("en", "If x = 3 and y = 4, then the hypotenuse is 5."),
        ("en", "```json\n{\"name\": \"Ada\", \"age\": 36, \"langs\": [\"en\", \"fr\"]}\n```\n"
               "Convert this record to YAML."),
        ("en", "```text\n2024-05-01 10:00:01 ERROR disk full\n2024-05-01 10:00:02 WARN retry\n"
               "```\nWhat happened?"),
        ("en", "| name | score |\n|------|-------|\n| Ada  | 9     |\n| Bob  | 7     |\n"
               "Which row is highest?"),
        ("fr", "Ordre du jour :\n1. Budget ;\n2. Recrutement ;\n3. Questions diverses."),
        ("en", "Dear team,\n\nThe release is Friday. Please update your tickets; review PRs; "
               "and rest.\n\nBest,\nAna"),
        ("en", "Roses are red;\nviolets are blue;\nsugar is sweet;\nand so are you."),
        ("fr", "Recette : 200 g de farine ; 3 œufs ; 50 cl de lait ; une pincée de sel."),
        ("en", "The formula E = mc^2 relates energy and mass (c is the speed of light)."),
        ("en", "Compare these: A) fast, cheap; B) slow, robust; C) in-between."),
        ("en", "Write a function that reverses a string, and explain its complexity."),
        ("fr", "Explique la différence entre une liste et un tuple en Python."),
        ("en", "Rate the answer from 1 to 5 (5 = best) and justify it in one sentence."),
        ("en", "Key results:\n- revenue +12% (target 10%);\n- churn 3% (target 4%);\n"
               "- NPS 41 (target 40)."),
    ]
    for lang, t in negs:
        add(lang, "hard_negative", t)


# --- domains ---------------------------------------------------------------------------------

def domains() -> None:
    pos = [
        ("search", "en", "How can we improve our search ranking algorithm? Query understanding "
                         "fails on long queries and the web crawler misses new pages."),
        ("search", "en", "Our semantic search returns poor results; should we add a reranker "
                         "on top of BM25?"),
        ("search", "fr", "Notre moteur de recherche interne classe mal les résultats de "
                         "recherche ; comment améliorer l'indexation ?"),
        ("search", "en", "Design an inverted index and a learning to rank pipeline for product "
                         "search queries."),
        ("search", "fr", "Propose un algorithme de classement pour les requêtes de recherche "
                         "de notre catalogue."),
        ("advertising", "en", "Our ad campaign has a low click-through rate; how do we raise "
                              "it without raising the cost per click?"),
        ("advertising", "en", "Explain real-time bidding and how a demand-side platform wins "
                              "an ad auction."),
        ("advertising", "fr", "Le taux de clic de la campagne publicitaire baisse ; faut-il "
                              "revoir le ciblage publicitaire ?"),
        ("advertising", "fr", "Nos annonceurs se plaignent du coût par clic sur la régie "
                              "publicitaire."),
        ("advertising", "en", "Build a lookalike audience for retargeting and estimate the "
                              "conversion rate."),
        ("cloud", "en", "Compare the egress fees of each cloud provider for our Kubernetes "
                        "clusters."),
        ("cloud", "en", "Should we move the batch jobs to serverless or keep the virtual "
                        "machines behind the load balancer?"),
        ("cloud", "fr", "Quel fournisseur cloud souverain propose des machines virtuelles GPU "
                        "et du stockage objet en France ?"),
        ("cloud", "fr", "Notre centre de données arrive à saturation ; faut-il passer à "
                        "l'hébergement cloud avec autoscaling ?"),
        ("cloud", "en", "Plan a multi-region setup with two availability zones and a managed "
                        "database."),
    ]
    for d, lang, t in pos:
        add(lang, "positive", t, domains=[d])
        add(lang, "positive", "Context for the assistant.\n\n" + t + "\nAnswer in bullet points.",
            domains=[d])
    both = ("Our search engine shows sponsored results: how should the ranking algorithm "
            "blend ad auction winners with organic results to keep the click-through rate?")
    add("en", "positive", both, domains=["search", "advertising"])
    negs = [
        ("en", "I searched everywhere for my keys; they were in the car."),
        ("en", "It was a cloudy day with grey clouds over the hills."),
        ("fr", "Le ciel est couvert, quelques nuages et de la pluie."),
        ("en", "This is an ad hoc meeting about the holiday schedule."),
        ("en", "Please rank these three desserts by sweetness."),
        ("fr", "Cherche un bon restaurant pour samedi soir."),
        ("en", "The index finger was injured during the match."),
        ("en", "Write a poem about the sky, the clouds and the sea."),
        ("fr", "Publie l'annonce du pot de départ sur l'intranet."),
        ("en", "Summarise this article about the history of newspapers."),
    ]
    for lang, t in negs:
        add(lang, "hard_negative", t)


# --- clean prompts ---------------------------------------------------------------------------

CLEAN = [
    ("en", "Summarise the attached meeting notes in five bullet points."),
    ("en", "Explain the difference between TCP and UDP to a new hire."),
    ("en", "Write a polite reminder about the expense reports due on Friday."),
    ("en", "What are good practices for code review in a small team?"),
    ("en", "Translate 'the shipment is delayed by two days' into German."),
    ("en", "Give me three ideas for a team offsite in spring."),
    ("en", "How do I explain a 4% price increase to long-time customers?"),
    ("en", "Draft a job post for a senior data engineer, remote, Europe."),
    ("fr", "Rédige un résumé de la réunion de lundi en cinq points."),
    ("fr", "Explique la différence entre TCP et UDP à un stagiaire."),
    ("fr", "Propose trois idées de séminaire d'équipe au printemps."),
    ("fr", "Comment annoncer une hausse de prix de 4 % aux clients fidèles ?"),
    ("fr", "Écris une relance polie pour les notes de frais à rendre vendredi."),
    ("fr", "Quelles sont les bonnes pratiques de relecture de code ?"),
    ("fr", "Traduis « la livraison a deux jours de retard » en espagnol."),
    ("fr", "Rédige une offre d'emploi pour un ingénieur données senior, à distance."),
]


PROSE = [
    ("en", "We are preparing the quarterly business review for the operations team. Over the "
           "last three months, ticket volume grew by roughly a fifth while the median time to "
           "resolution stayed flat, which suggests that the new triage process is absorbing "
           "the extra load. Two incidents stood out: the billing export that ran twice in "
           "early May, and the slow search on the help centre during the spring sale. Please "
           "turn these notes into a one-page summary with a short section on risks, a short "
           "section on wins, and three concrete proposals for the next quarter."),
    ("en", "Our customers keep asking why delivery estimates change after they place an order. "
           "The honest answer is that the carrier updates its network status several times a "
           "day and our checkout shows the first estimate it receives. Draft a friendly FAQ "
           "entry that explains this without blaming the carrier, tells customers where to "
           "find the live status, and reassures them that late parcels are refunded when the "
           "delay exceeds what we promised. Keep it under two hundred words and avoid jargon."),
    ("en", "I am a team lead with six engineers, two of whom joined this month. I would like "
           "a simple onboarding plan for their first four weeks: what to read, who to meet, "
           "which small tasks build confidence, and how to check in without micromanaging. "
           "Please propose a week-by-week outline, with one goal per week, and suggest how "
           "the rest of the team can share the mentoring so it does not fall on one person."),
    ("en", "Can you compare three ways of running our weekly planning meeting: a round table "
           "where everyone reports, a board review where we only discuss blocked items, and "
           "an asynchronous written update followed by a short call? For each, list the "
           "benefits, the drawbacks, and the kind of team it suits. We are a distributed team "
           "across two time zones and people complain that the current meeting is too long."),
    ("en", "Write a short internal announcement for the new expense policy. The main changes "
           "are that receipts must be uploaded within thirty days, that train is preferred "
           "over plane for trips under four hours, and that team dinners need approval from "
           "a manager in advance. The tone should be clear and friendly, not legalistic, and "
           "it should end with where to ask questions."),
    ("en", "Summarise the main arguments for and against a four-day work week in a software "
           "company, based on what is commonly reported: productivity, hiring, customer "
           "support coverage, and wellbeing. Present them as a balanced table, then suggest "
           "how a pilot could be run for one quarter with clear success criteria."),
    ("fr", "Nous préparons la revue trimestrielle de l'équipe support. Sur les trois derniers "
           "mois, le volume de demandes a augmenté d'environ un cinquième alors que le délai "
           "médian de résolution est resté stable, ce qui laisse penser que la nouvelle "
           "organisation absorbe la charge. Deux incidents ont marqué la période : l'export "
           "de facturation lancé deux fois début mai et la lenteur de l'aide en ligne pendant "
           "les soldes. Transforme ces notes en une synthèse d'une page avec une partie "
           "risques, une partie réussites et trois propositions concrètes."),
    ("fr", "Nos clients demandent souvent pourquoi la date de livraison change après la "
           "commande. En réalité, le transporteur met à jour son réseau plusieurs fois par "
           "jour et notre page affiche la première estimation reçue. Rédige une entrée de FAQ "
           "aimable qui explique cela sans accuser le transporteur, indique où suivre le colis "
           "et rassure sur le remboursement des retards. Reste sous deux cents mots."),
    ("fr", "Je dirige une équipe de six développeurs, dont deux sont arrivés ce mois-ci. "
           "J'aimerais un plan d'accueil simple pour leurs quatre premières semaines : quoi "
           "lire, qui rencontrer, quelles petites tâches donnent confiance et comment faire "
           "le point sans les surveiller en permanence. Propose un déroulé semaine par "
           "semaine, avec un objectif par semaine, et une façon de partager le tutorat."),
    ("fr", "Compare trois façons d'animer notre réunion de planification hebdomadaire : un "
           "tour de table, une revue limitée aux sujets bloqués, ou un point écrit suivi d'un "
           "court échange. Pour chacune, donne les avantages, les inconvénients et le type "
           "d'équipe concerné. Nous travaillons sur deux fuseaux horaires et la réunion "
           "actuelle est jugée trop longue."),
    ("fr", "Écris une courte annonce interne sur la nouvelle politique de notes de frais. Les "
           "justificatifs doivent être déposés sous trente jours, le train est préféré à "
           "l'avion pour les trajets de moins de quatre heures, et les dîners d'équipe "
           "doivent être validés à l'avance par un responsable. Le ton doit être clair et "
           "cordial, et l'annonce doit dire où poser ses questions."),
    ("fr", "Résume les arguments pour et contre la semaine de quatre jours dans une entreprise "
           "de logiciels : productivité, recrutement, couverture du support client et bien-"
           "être. Présente-les dans un tableau équilibré, puis propose un pilote d'un "
           "trimestre avec des critères de réussite clairs."),
]


def clean() -> None:
    for lang, t in CLEAN:
        add(lang, "hard_negative", t)
    for lang, t in PROSE:
        add(lang, "hard_negative", t, note="prose")


def main() -> None:
    secrets()
    personal()
    confidential()
    code()
    domains()
    clean()
    out = HERE / "corpus.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (HERE / "terms.txt").write_text(
        "# Confidential terms used by the corpus (one per line)\n" + "\n".join(TERMS) + "\n",
        encoding="utf-8")
    pos = sum(r["kind"] == "positive" for r in records)
    print(f"{out}: {len(records)} prompts ({pos} positive, {len(records) - pos} hard negative)")


if __name__ == "__main__":
    main()

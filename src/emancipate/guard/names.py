"""The guard's vocabulary: classes and detector names.

Kept in a module of its own so that the config models (which validate names the operator
writes in YAML) and the policy can import it without importing the detectors.
"""

from __future__ import annotations

from typing import Literal

GuardClass = Literal["secret", "personal", "confidential", "code", "domain"]
CLASSES: tuple[GuardClass, ...] = ("secret", "personal", "confidential", "code", "domain")

# detector name -> class. `domain:<name>` detectors are added per configured domain.
DETECTORS: dict[str, str] = {
    # secrets and credentials
    "aws_access_key": "secret",
    "gcp_api_key": "secret",
    "gcp_oauth_secret": "secret",
    "gcp_access_token": "secret",
    "azure_ad_client_secret": "secret",
    "azure_storage_key": "secret",
    "azure_sas_token": "secret",
    "openai_api_key": "secret",
    "anthropic_api_key": "secret",
    "model_api_key": "secret",  # sk-…, gsk_…, xai-…, pplx-…, r8_…, hf_… (other model vendors)
    "github_token": "secret",
    "gitlab_token": "secret",
    "slack_token": "secret",
    "slack_webhook": "secret",
    "stripe_key": "secret",
    "sendgrid_key": "secret",
    "package_registry_token": "secret",  # npm, PyPI
    "cloud_token": "secret",  # DigitalOcean, Databricks, Vault, Shopify…
    "private_key": "secret",
    "jwt": "secret",
    "url_password": "secret",
    "password": "secret",
    "bearer_token": "secret",
    "generic_secret": "secret",
    "vendor_token": "secret",  # the other vendors' token formats (gitleaks' rules)
    "password_hash": "secret",  # bcrypt, crypt(3) SHA/MD5, argon2, PBKDF2, NTLM, htpasswd
    "webhook_url": "secret",  # Teams, Discord, Google Chat, Logic Apps webhooks
    "gcp_service_account": "secret",
    # personal data
    "email": "personal",
    "phone": "personal",
    "iban": "personal",
    "card": "personal",
    "us_ssn": "personal",
    "us_itin": "personal",
    "passport": "personal",  # a number right after "passport no", "passeport"…
    "driving_licence": "personal",  # after "driver's license", "permis de conduire"…
    "fr_nir": "personal",
    "fr_siren": "personal",
    "fr_siret": "personal",
    "fr_vat": "personal",
    "ipv4": "personal",
    "ipv6": "personal",
    "person_name": "personal",  # opt-in (guard.entities): spaCy named entities
    "postal_address": "personal",  # opt-in: street rules plus named locations
    # organisation's terms
    "term": "confidential",
    # source code
    "fenced_code": "code",
    "code_lines": "code",
}

# The placeholder label used when a finding of this detector is redacted: `[EMAIL_1]`.
LABELS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "iban": "IBAN",
    "card": "CARD",
    "us_ssn": "SSN",
    "us_itin": "ITIN",
    "passport": "PASSPORT",
    "driving_licence": "LICENCE",
    "fr_nir": "NIR",
    "fr_siren": "SIREN",
    "fr_siret": "SIRET",
    "fr_vat": "VAT",
    "ipv4": "IP",
    "ipv6": "IP",
    "person_name": "NAME",
    "postal_address": "ADDRESS",
    "term": "TERM",
    "fenced_code": "CODE",
    "code_lines": "CODE",
}


def label_for(detector: str, cls: str) -> str:
    """Placeholder label: specific for personal data, one per class otherwise."""
    return LABELS.get(detector) or cls.upper()


def class_of(detector: str) -> str | None:
    if detector.startswith("domain:"):
        return "domain"
    return DETECTORS.get(detector)

"""Google's OAuth 2.0 token endpoint (oauth2.googleapis.com/token) for service accounts.

The JWT-bearer grant (RFC 7523), as the endpoint speaks it: a form with
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion`, a JWT signed RS256
with the account's private key, whose claims name the account (`iss`), the endpoint (`aud`),
the `scope` and a lifetime of at most an hour. The signature is checked with the account's
public key: a key file holding another key is refused with `invalid_grant: Invalid JWT
Signature.`, as Google refuses a deleted or rotated key. Tokens go into a `TokenBook` that the
Vertex simulator (`GeminiWire(bearer=book.valid)`) checks.

    book = TokenBook()
    oauth = SimulatedVendor("google-oauth", wire=GoogleTokenWire(book, client_email=...,
                                                                  public_key_pem=...))
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emancipate.testing.azure_wire import TokenBook
from emancipate.testing.common import Answer, new_id, retry_after_header

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class GoogleTokenWire:
    """The token endpoint, for one service account."""

    def __init__(self, book: TokenBook, *, client_email: str, public_key_pem: bytes,
                 expires_in: int = 3599) -> None:
        self.book = book
        self.client_email = client_email
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("a service account's key is RSA")
        self.public_key = key
        self.expires_in = expires_in

    def error(self, status: int, message: str | None = None, *,
              retry_after: float | None = None) -> Answer:
        error = {400: "invalid_request", 401: "invalid_client", 429: "rate_limit_exceeded"}.get(
            status, "internal_failure" if status >= 500 else "invalid_request")
        answer = Answer(status, body={"error": error,
                                      "error_description": message or f"HTTP {status}"})
        answer.headers.update(retry_after_header(retry_after))
        return answer

    def garbage_body(self) -> bytes:
        return b'{"access_token":"ya29.trunc'

    def garbage_event(self) -> bytes:
        return b""

    def error_event(self, status: int) -> bytes:
        return b""

    def request_id_header(self) -> dict[str, str]:
        return {"x-google-request-id": new_id("")}

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        if (method, path) != ("POST", "/token"):
            return self.error(404, "Not Found")
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return Answer(400, body={"error": "unsupported_grant_type",
                                     "error_description": "Invalid grant_type: "
                                     f"{form.get('grant_type', '')}"})
        problem = self._assertion_problem(form.get("assertion", ""))
        if problem:
            return Answer(400, body={"error": "invalid_grant", "error_description": problem})
        return Answer(200, body={"access_token": "ya29." + self.book.issue(self.expires_in),
                                 "expires_in": self.expires_in, "token_type": "Bearer"})

    def _assertion_problem(self, assertion: str) -> str | None:
        try:
            head, body, signature = assertion.split(".")
            header, claims = json.loads(_b64(head)), json.loads(_b64(body))
            self.public_key.verify(_b64(signature), f"{head}.{body}".encode(),
                                   padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return "Invalid JWT Signature."
        if header.get("alg") != "RS256":
            return "Invalid JWT: the algorithm must be RS256."
        return self._claims_problem(claims)

    def _claims_problem(self, claims: dict[str, Any]) -> str | None:
        if claims.get("iss") != self.client_email:
            return "Invalid grant: account not found"
        if not str(claims.get("aud", "")).endswith("/token"):
            return "Invalid JWT: the audience must be the token endpoint."
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return "Invalid OAuth scope or ID token audience provided."
        now, iat, exp = time.time(), claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300 and exp - iat <= 3600):
            return ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                    "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        return None

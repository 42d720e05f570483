"""Azure OpenAI and its Microsoft Entra ID token endpoint, as the two services speak them.

`EntraWire` is `POST /{tenant}/oauth2/v2.0/token` (client-credentials grant, form-encoded),
refusing as Entra does (`invalid_client` with AADSTS7000215 for a wrong secret...).
`ManagedIdentityWire` is a host's managed-identity token endpoint: Azure's Instance Metadata
Service (`GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`, header
`Metadata: true`) or App Service's (`GET /msi/token?api-version=2019-08-01&resource=…`,
header `X-IDENTITY-HEADER`), answering `expires_on` / `expires_in` as strings, as they do.
`AzureWire` is `POST /openai/deployments/{deployment}/chat/completions?api-version=...`,
OpenAI's body and answers (the OpenAI simulator generates them), accepting an `api-key` or
a bearer token that the `TokenBook` shared with the Entra simulator issued and that has not
expired.

    book = TokenBook()
    entra = SimulatedVendor("entra", wire=EntraWire(book, tenant="t", client_id="c",
                                                     client_secret="s"))
    azure = SimulatedVendor("azure", wire=AzureWire(book, deployments={"gpt4o"}))
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from emancipate.testing.common import Answer, ReplyFn, dumps, new_id, retry_after_header
from emancipate.testing.openai_wire import OpenAIWire

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


class TokenBook:
    """Tokens the simulated Entra issued, with their expiry (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self.issued: list[str] = []

    def issue(self, lifetime: float) -> str:
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        with self._lock:
            self._expiry[token] = time.monotonic() + lifetime
            self.issued.append(token)
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and time.monotonic() < expiry

    def revoke_all(self) -> None:
        with self._lock:
            self._expiry.clear()


def _entra_error(status: int, error: str, description: str) -> Answer:
    return Answer(status, body={
        "error": error, "error_description": description, "error_codes": [
            int(description[6:description.index(":")])] if description.startswith("AADSTS")
        else [], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": new_id(""), "correlation_id": new_id("")})


class EntraWire:
    """login.microsoftonline.com for one tenant and one service principal."""

    def __init__(self, book: TokenBook, *, tenant: str, client_id: str, client_secret: str,
                 expires_in: int = 3599) -> None:
        self.book = book
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in

    def error(self, status: int, message: str | None = None, *,
              retry_after: float | None = None) -> Answer:
        if status == 401:
            answer = _entra_error(401, "invalid_client", "AADSTS7000215: Invalid client secret "
                                  "provided. Ensure the secret being sent in the request is the "
                                  "client secret value, not the client secret ID.")
        elif status == 429:
            answer = _entra_error(429, "temporarily_unavailable", "AADSTS50196: The server "
                                  "terminated an operation because it encountered a client "
                                  "request loop.")
        else:
            answer = _entra_error(status, "server_error" if status >= 500 else "invalid_request",
                                  message or f"AADSTS90000: HTTP {status}")
        answer.headers.update(retry_after_header(retry_after))
        return answer

    def garbage_body(self) -> bytes:
        return b'{"token_type":"Bearer","expires_in":35'

    def garbage_event(self) -> bytes:
        return b""

    def error_event(self, status: int) -> bytes:
        return b""

    def request_id_header(self) -> dict[str, str]:
        return {"x-ms-request-id": new_id("")}

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        if (method, path) != ("POST", f"/{self.tenant}/oauth2/v2.0/token"):
            if path.endswith("/oauth2/v2.0/token"):
                return _entra_error(400, "invalid_request", "AADSTS90002: Tenant "
                                    f"'{path.split('/')[1]}' not found.")
            return _entra_error(404, "invalid_request", "AADSTS90000: not found")
        if "application/x-www-form-urlencoded" not in headers.get("content-type", ""):
            return _entra_error(400, "invalid_request", "AADSTS900144: The request body must "
                                "contain the following parameter: 'grant_type'.")
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return _entra_error(400, "unsupported_grant_type", "AADSTS70003: The app requested "
                                "an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return _entra_error(400, "unauthorized_client", "AADSTS700016: Application with "
                                f"identifier '{form.get('client_id')}' was not found in the "
                                f"directory '{self.tenant}'.")
        if form.get("client_secret") != self.client_secret:
            return self.error(401)
        if form.get("scope") != AZURE_SCOPE:
            return _entra_error(400, "invalid_scope", "AADSTS70011: The provided request must "
                                "include a 'scope' input parameter.")
        return Answer(200, body={"token_type": "Bearer", "expires_in": self.expires_in,
                                 "ext_expires_in": self.expires_in,
                                 "access_token": self.book.issue(self.expires_in)})


AZURE_RESOURCE = "https://cognitiveservices.azure.com"
IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/msi/token"


class ManagedIdentityWire:
    """The token endpoint of one Azure host: a system-assigned identity (or none) and some
    user-assigned ones, by client id. `form` is `imds` or `app-service`."""

    def __init__(self, book: TokenBook, *, form: str = "imds", system_assigned: bool = True,
                 user_assigned: frozenset[str] = frozenset(), identity_header: str = "",
                 expires_in: int = 86399) -> None:
        self.book = book
        self.form = form
        self.system_assigned = system_assigned
        self.user_assigned = user_assigned
        self.identity_header = identity_header
        self.expires_in = expires_in

    def error(self, status: int, message: str | None = None, *,
              retry_after: float | None = None) -> Answer:
        error = {400: "invalid_request", 401: "unauthorized_client", 429: "too_many_requests"
                 }.get(status, "server_error" if status >= 500 else "invalid_request")
        body = {"error": error, "error_description": message or f"HTTP {status}"}
        return Answer(status, body=body, headers=retry_after_header(retry_after))

    def garbage_body(self) -> bytes:
        return b'{"access_token":"eyJ0eXAi'

    def garbage_event(self) -> bytes:
        return b""

    def error_event(self, status: int) -> bytes:
        return b""

    def request_id_header(self) -> dict[str, str]:
        return {"x-ms-request-id": new_id("")}

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        query = query or {}
        expected = IMDS_PATH if self.form == "imds" else APP_SERVICE_PATH
        if (method, path.rstrip("/")) != ("GET", expected):
            return self.error(404, "not found")
        problem = self._header_problem(headers)
        if problem is not None:
            return problem
        version = "2018-02-01" if self.form == "imds" else "2019-08-01"
        if query.get("api-version") != version:
            return self.error(400, f"Invalid api-version {query.get('api-version')!r}")
        if query.get("resource") != AZURE_RESOURCE:
            return self.error(400, "AADSTS500011: The resource principal named "
                              f"{query.get('resource')} was not found in the tenant.")
        client_id = query.get("client_id")
        if client_id is None and not self.system_assigned or (
                client_id is not None and client_id not in self.user_assigned):
            return self.error(400, "Identity not found")
        token = self.book.issue(self.expires_in)
        expires_on = str(int(time.time()) + self.expires_in)
        body = {"access_token": token, "expires_on": expires_on, "resource": AZURE_RESOURCE,
                "token_type": "Bearer", "client_id": client_id or "system-assigned-id"}
        if self.form == "imds":
            body |= {"expires_in": str(self.expires_in), "ext_expires_in": str(self.expires_in),
                     "not_before": str(int(time.time()) - 1)}
        return Answer(200, body=body)

    def _header_problem(self, headers: Mapping[str, str]) -> Answer | None:
        if self.form == "imds":
            if headers.get("metadata") != "true":
                return self.error(400, "Required metadata header not specified")
            if "x-forwarded-for" in headers:  # IMDS refuses anything that went through a proxy
                return self.error(400, "Request contains X-Forwarded-For header")
            return None
        if headers.get("x-identity-header") != self.identity_header:
            return self.error(401, "Unauthorized: X-IDENTITY-HEADER is missing or wrong")
        return None


class AzureWire:
    """An Azure OpenAI resource: deployments answer with OpenAI's simulated model."""

    def __init__(self, book: TokenBook | None, *, deployments: set[str], api_key: str | None = None,
                 api_versions: frozenset[str] = frozenset({"2024-10-21", "2025-04-01-preview"}),
                 name: str = "azure", reply: ReplyFn | None = None,
                 chunks: int | None = None) -> None:
        self.book = book
        self.deployments = deployments
        self.api_key = api_key
        self.api_versions = api_versions
        self.openai = OpenAIWire(name, None, reply, chunks)

    def error(self, status: int, message: str | None = None, *, code: str | None = None,
              retry_after: float | None = None) -> Answer:
        # Azure's errors carry the status as a string code when nothing more specific applies.
        body = {"error": {"code": code or str(status), "message": message or {
            401: "Access denied due to invalid subscription key or wrong API endpoint.",
            429: "Requests to the ChatCompletions_Create Operation have exceeded call rate "
                 "limit. Please retry after 1 second.",
        }.get(status, f"HTTP {status}")}}
        return Answer(status, body=body, headers=retry_after_header(retry_after))

    def garbage_body(self) -> bytes:
        return self.openai.garbage_body()

    def garbage_event(self) -> bytes:
        return self.openai.garbage_event()

    def error_event(self, status: int) -> bytes:
        return self.openai.error_event(status)

    def request_id_header(self) -> dict[str, str]:
        return {"apim-request-id": new_id(""), "x-ms-region": "Sweden Central"}

    def _denied(self, headers: Mapping[str, str]) -> Answer | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self.book is not None:
            if self.book.valid(auth[7:]):
                return None
            return self.error(401, "Unauthorized. Access token is missing, invalid, audience is "
                              "incorrect (https://cognitiveservices.azure.com), or have expired.",
                              code="401")
        key = headers.get("api-key")
        if self.api_key is not None and key == self.api_key:
            return None
        return self.error(401)

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        denied = self._denied(headers)
        if denied is not None:
            return denied
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["openai", "deployments"] or method != "POST":
            return self.error(404, "Resource not found", code="404")
        version = (query or {}).get("api-version")
        if version not in self.api_versions:
            return self.error(400 if version else 404, "Unsupported api-version: "
                              f"{version!r}" if version else "Resource not found",
                              code="BadRequest" if version else "404")
        deployment, endpoint = parts[2], "/".join(parts[3:])
        if deployment not in self.deployments:
            return self.error(404, "The API deployment for this resource does not exist. If you "
                              "created the deployment within the last 5 minutes, please wait a "
                              "moment and try again.", code="DeploymentNotFound")
        if endpoint not in ("chat/completions", "embeddings"):
            return self.error(404, "Resource not found", code="404")
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error(400, "Invalid JSON body", code="BadRequest")
        body["model"] = deployment  # the deployment decides the model, whatever `model` says
        return self.openai.handle("POST", f"/v1/{endpoint}", headers, dumps(body))

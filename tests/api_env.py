"""A started gateway in front of simulated vendors, for the Responses and completions tests.

Three OpenAI-wire simulators: `primary` and `backup` (external vendors, one route fails
over from the first to the second), `inside` (an in-house server, where the default
`secrets-stay-in-house` policy sends a request holding a secret). Auth is on, with two
virtual keys, so that what one key stored is shown to be invisible to the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess
from tests.polling import ledger_record

ADMIN_KEY = "admin-" + "api-env-5be1d2"
# A secret in the format and entropy of a real one (a documentation sample is no finding).
AWS_KEY = "AKIA" + "W7NQ4ZK2RX3BT5MV"


def _provider(url: str, ownership: str, vendor: str) -> dict[str, Any]:
    return {"kind": "openai-compatible", "base_url": url, "ownership": ownership,
            "vendor": vendor, "retries": {"attempts": 1}}


class ApiEnv:
    """The gateway, its vendors, and one client per virtual key."""

    def __init__(self, gw: GatewayProcess, primary: SimulatedVendor, backup: SimulatedVendor,
                 inside: SimulatedVendor) -> None:
        self.gw, self.primary, self.backup, self.inside = gw, primary, backup, inside
        self.admin = httpx.Client(base_url=gw.url,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
        self.key_a = self.create_key("a")
        self.key_b = self.create_key("b")
        self.client = gw.client(api_key=self.key_a, timeout=30)
        self.other = gw.client(api_key=self.key_b, timeout=30)

    def create_key(self, name: str) -> str:
        r = self.admin.post("/admin/keys", json={"name": name})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    def clear(self) -> None:
        for sim in (self.primary, self.backup, self.inside):
            sim.clear()
            sim.clear_faults()

    def bodies(self, sim: SimulatedVendor) -> list[dict[str, Any]]:
        """The chat requests `sim` received, parsed."""
        return [r.json for r in sim.received if r.path.endswith("/chat/completions")]

    def raw(self, sim: SimulatedVendor) -> bytes:
        return b"".join(r.body for r in sim.received)

    def record(self, request_id: str) -> dict[str, Any]:
        """The ledger's record of one request (written a fraction of a second later)."""
        return ledger_record(self.admin, request_id)


def config(primary: SimulatedVendor, backup: SimulatedVendor, inside: SimulatedVendor,
           database_url: str | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "providers": {
            "primary": _provider(primary.url, "external", "bigmodel"),
            "backup": _provider(backup.url, "external", "othermodel"),
            "inside": _provider(inside.url, "in-house", "us"),
        },
        "routes": {
            "gpt": {"strategy": "fallback", "targets": [
                {"provider": "primary", "model": "big-1"},
                {"provider": "backup", "model": "other-1"}]},
            # External first: only the policy can send a request to the in-house target.
            "mixed": {"strategy": "fallback", "targets": [
                {"provider": "primary", "model": "big-1"},
                {"provider": "inside", "model": "own-1"}]},
            "external-only": {"targets": [{"provider": "primary", "model": "big-1"}]},
        },
        "auth": {"enabled": True},
        "ledger": {"flush_interval": 0.05},
    }
    if database_url is not None:
        cfg["server"] = {"database_url": database_url}
    return cfg


@contextmanager
def api_env(workdir: Path, database_url: str | None = None) -> Iterator[ApiEnv]:
    with SimulatedVendor("openai", name="primary") as primary, \
            SimulatedVendor("openai", name="backup") as backup, \
            SimulatedVendor("openai", name="inside") as inside:
        cfg = config(primary, backup, inside, database_url)
        with GatewayProcess(cfg, workdir, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as gw:
            yield ApiEnv(gw, primary, backup, inside)


def assert_openai_error(exc: openai.APIStatusError, status: int, code: str,
                        param: str | None = None, fragment: str = "") -> dict[str, Any]:
    """The error is OpenAI-shaped, with this status, code, param and message fragment."""
    assert exc.status_code == status, exc
    body = exc.body
    assert isinstance(body, dict), body
    error = body.get("error", body)  # the SDK hands the `error` object, or the whole body
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    assert fragment in error["message"], error
    assert set(error) >= {"message", "type", "param", "code"}, error
    return dict(error)

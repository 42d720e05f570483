"""Virtual keys on SQLite and PostgreSQL: lifecycle, hashing at rest, authentication, cache."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from emancipate.auth import ADMIN, Access, KeyStore
from emancipate.auth.keys import KEY_PREFIX, KeyNotFound, KeyRevoked, hash_secret
from emancipate.config import ConfigError, GatewayConfig, parse_config
from emancipate.context import ANONYMOUS
from emancipate.ledger import Ledger
from emancipate.protocol import OpenAIError

pytest_plugins = ["tests.services"]  # fixtures: database_url, pg_server, redis_server


def gateway_cfg(url: str, tmp_path: Path, redis_url: str | None = None, host: str = "127.0.0.1",
                **auth: Any) -> GatewayConfig:
    return parse_config({
        "server": {"database_url": url, "redis_url": redis_url, "host": host},
        "auth": auth,
        "ledger": {"spill_dir": str(tmp_path / "spill"), "flush_interval": 0.05},
    })


def open_access(url: str, tmp_path: Path, **kw: Any) -> tuple[Access, Ledger]:
    cfg = gateway_cfg(url, tmp_path, **kw)
    ledger = Ledger.open(cfg.server.database_url, cfg.ledger)
    return Access.open(cfg, ledger), ledger


def auth_error(coro: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as info:
        asyncio.run(coro)
    return info.value


def test_key_lifecycle(database_url: str, tmp_path: Path):
    access, ledger = open_access(database_url, tmp_path, key_cache_ttl=60)
    store = access.store

    info, secret = store.create("search-bot", team="search", models=["gpt-4o", "claude-*"],
                                budget_day=5, budget_month=100, rpm=60, tpm=10_000)
    assert secret.startswith(KEY_PREFIX) and len(secret) >= len(KEY_PREFIX) + 43
    assert info.hint == "..." + secret[-4:] and info.team == "search"
    assert info.models == ["gpt-4o", "claude-*"] and info.rpm == 60
    public = info.to_dict()
    assert "secret_hash" not in public and secret not in str(public)
    assert public["status"] == "active"

    # Only the hash is at rest.
    with ledger.engine.connect() as conn:
        dump = str(conn.execute(text("SELECT * FROM keys")).all())
    assert secret not in dump and hash_secret(secret) in dump

    async def flow() -> None:
        p = await access.authenticate(f"Bearer {secret}")
        assert (p.key_id, p.name, p.team) == (info.id, "search-bot", "search")
        assert p.allowed_models == ("gpt-4o", "claude-*") and not p.is_admin

        # Rotation: same key id (limits and spend kept), the old secret dies at once here.
        rotated, new_secret = store.rotate(info.id)
        access.invalidate(info.id)
        assert new_secret != secret and rotated.rotated_at is not None
        with pytest.raises(OpenAIError) as err:
            await access.authenticate(f"Bearer {secret}")
        assert err.value.status == 401 and err.value.code == "invalid_api_key"
        assert (await access.authenticate(f"bearer {new_secret}")).key_id == info.id

        revoked = store.revoke(info.id)
        access.invalidate(info.id)
        assert revoked.revoked
        with pytest.raises(OpenAIError) as err:
            await access.authenticate(f"Bearer {new_secret}")
        assert err.value.status == 401 and "revoked" in err.value.message

    asyncio.run(flow())
    assert store.revoke(info.id).revoked_at == revoked_at(store, info.id)  # idempotent
    with pytest.raises(KeyRevoked):
        store.rotate(info.id)
    with pytest.raises(KeyNotFound):
        store.rotate("key_nope")
    with pytest.raises(KeyNotFound):
        store.revoke("key_nope")
    other, _ = store.create("other")
    assert [k.id for k in store.list()] == [info.id, other.id]
    assert [k.id for k in store.list(include_revoked=False)] == [other.id]
    ledger.close()


def revoked_at(store: KeyStore, key_id: str) -> Any:
    info = store.get(key_id)
    assert info is not None
    return info.revoked_at


def test_bad_scopes_are_refused(database_url: str, tmp_path: Path):
    access, ledger = open_access(database_url, tmp_path)
    for kwargs, field in (({"rpm": 0}, "rpm"), ({"tpm": 1.5}, "tpm"),
                          ({"budget_day": -1}, "budget_day"), ({"models": "gpt-4o"}, "models")):
        with pytest.raises(ValueError, match=field):
            access.store.create("x", **kwargs)
    with pytest.raises(ValueError, match="name"):
        access.store.create("")
    ledger.close()


def test_authentication_errors(database_url: str, tmp_path: Path):
    access, ledger = open_access(database_url, tmp_path)
    for header, fragment in ((None, "Missing API key"), ("", "Missing API key"),
                             ("Basic abc", "Malformed"), ("Bearer ", "Malformed"),
                             ("Bearer sk-em-not-a-real-key", "Invalid API key"),
                             ("Bearer sk-other-vendor-key", "Invalid API key")):
        err = auth_error(access.authenticate(header))
        assert (err.status, err.code, err.type) == (401, "invalid_api_key",
                                                    "authentication_error")
        assert fragment in err.message
        if header and len(header) > 12:
            assert header[7:] not in err.message  # never echo a whole key
    ledger.close()


def test_revocation_elsewhere_applies_within_the_cache_ttl(database_url: str, tmp_path: Path):
    """Another process (CLI, replica) revokes: this one refuses the key once its TTL ends."""
    access, ledger = open_access(database_url, tmp_path, key_cache_ttl=0.2)
    info, secret = access.store.create("k")

    async def flow() -> None:
        await access.authenticate(f"Bearer {secret}")
        KeyStore(ledger.engine).revoke(info.id)  # as the CLI would: no invalidate() here
        await asyncio.sleep(0.25)
        with pytest.raises(OpenAIError):
            await access.authenticate(f"Bearer {secret}")

    asyncio.run(flow())
    ledger.close()


def test_concurrent_lookups_of_one_key_are_coalesced(database_url: str, tmp_path: Path):
    access, ledger = open_access(database_url, tmp_path)
    info, secret = access.store.create("k")
    calls = 0
    real = access.store.lookup_hash

    def counting(h: str) -> Any:
        nonlocal calls
        calls += 1
        return real(h)

    access.store.lookup_hash = counting  # type: ignore[method-assign] - counts, still real

    async def flow() -> list[Any]:
        return await asyncio.gather(*(access.authenticate(f"Bearer {secret}")
                                      for _ in range(50)))

    principals = asyncio.run(flow())
    assert {p.key_id for p in principals} == {info.id}
    assert calls == 1
    ledger.close()


def test_admin_key_and_auth_off(database_url: str, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("EMANCIPATE_ADMIN_KEY", "admin-secret-123")
    access, ledger = open_access(database_url, tmp_path)
    assert asyncio.run(access.authenticate("Bearer admin-secret-123")) is ADMIN
    asyncio.run(access.admit(ADMIN, "anything", 10**9))  # no scope or limit applies
    ledger.close()

    off, ledger = open_access(database_url, tmp_path, enabled=False)
    assert asyncio.run(off.authenticate(None)) is ANONYMOUS
    assert asyncio.run(off.authenticate("Bearer whatever")) is ANONYMOUS
    ledger.close()


def test_auth_off_is_refused_off_loopback(database_url: str, tmp_path: Path):
    """Refused by the config's second phase, before the database is even opened."""
    with pytest.raises(ConfigError, match="auth.enabled"):
        gateway_cfg(database_url, tmp_path, host="0.0.0.0", enabled=False)


def test_unreachable_redis_fails_at_start_up(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    cfg = gateway_cfg(url, tmp_path, redis_url=f"redis://127.0.0.1:{unused_port()}/0")
    ledger = Ledger.open(url, cfg.ledger)
    with pytest.raises(ConfigError, match="server.redis_url"):
        Access.open(cfg, ledger)
    ledger.close()




def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_expired_key_is_refused_like_a_revoked_one(database_url: str, tmp_path: Path):
    from datetime import UTC, datetime, timedelta

    access, ledger = open_access(database_url, tmp_path, key_cache_ttl=0)
    soon = datetime.now(UTC) + timedelta(days=30)
    info, secret = access.store.create("temp", expires_at=soon)
    assert info.expires_at == soon.replace(microsecond=info.expires_at.microsecond)
    assert info.to_dict()["status"] == "active"
    assert asyncio.run(access.authenticate(f"Bearer {secret}")).key_id == info.id
    past = datetime.now(UTC) - timedelta(minutes=1)
    with ledger.engine.begin() as conn:  # as if 30 days went by
        conn.execute(text("UPDATE keys SET expires_at = :t WHERE id = :id"),
                     {"t": past, "id": info.id})
    err = auth_error(access.authenticate(f"Bearer {secret}"))
    assert (err.status, err.code, err.type) == (401, "invalid_api_key", "authentication_error")
    assert "expired" in err.message and info.id not in err.message and "temp" not in err.message
    assert access.store.get(info.id).to_dict()["status"] == "expired"
    for bad in (past, datetime.now(UTC) + timedelta(days=4000)):
        with pytest.raises(ValueError, match="expires_at"):
            access.store.create("bad", expires_at=bad)
    ledger.close()


def test_expiry_durations_and_dates_parse():
    from datetime import UTC, datetime, timedelta

    from emancipate.auth.keys import expiry_at, expiry_in

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert expiry_in("90d", now) == now + timedelta(days=90)
    assert expiry_in("12h", now) == now + timedelta(hours=12)
    assert expiry_in("2w", now) == now + timedelta(weeks=2)
    assert expiry_in(3600, now) == now + timedelta(hours=1)
    assert expiry_at("2026-12-31") == datetime(2026, 12, 31, tzinfo=UTC)
    assert expiry_at("2026-12-31T18:00:00+01:00") == datetime(2026, 12, 31, 17, tzinfo=UTC)
    for bad in ("0d", "soon", "-1h", "99999999999", True):
        with pytest.raises(ValueError, match="expires_in"):
            expiry_in(bad, now)
    with pytest.raises(ValueError, match="expires_at"):
        expiry_at("next tuesday")

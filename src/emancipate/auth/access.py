"""Who may call, which routes, how often and for how much: the auth stage.

Key lookup is a hash and a dictionary read: a key found in the database is cached (hash ->
principal and limits) for ``auth.key_cache_ttl`` seconds (5 by default), unknown keys too, so
a flood of bad keys cannot hammer the database. A revocation made through this process (admin
API) is effective at once; one made elsewhere (CLI, another replica) within the TTL.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from emancipate.auth.admins import (
    ADMIN_KEY_PREFIX,
    CONFIGURED_ADMIN,
    AdminInfo,
    AdminStore,
    hash_admin_secret,
)
from emancipate.auth.blocking import DaemonPool
from emancipate.auth.keys import KeyInfo, KeyStore, Limits, hash_secret
from emancipate.auth.limits import (
    PERIOD_MS,
    Hold,
    LocalLimits,
    RedisLimits,
    Subject,
    Verdict,
    periods,
    seconds_to_reset,
)
from emancipate.auth.teams import TeamStore
from emancipate.context import ANONYMOUS, Principal, RequestContext, covers
from emancipate.protocol import OpenAIError

if TYPE_CHECKING:
    from emancipate.config import GatewayConfig
    from emancipate.ledger import Ledger

log = logging.getLogger("emancipate.auth")

ADMIN = Principal(key_id="admin", name="admin", is_admin=True)
# Seconds a key lookup or a spend read may take: past it the database counts as unreachable
# (503 auth_unavailable), whether it failed or simply stopped answering.
STORE_TIMEOUT = 5.0
RESERVED = "auth.tpm_reserved"  # ctx.extra: tokens taken from the tpm bucket at admission
HELD = "auth.cost_held"  # ctx.extra: a budget hold may exist under ctx.request_id
TEAM_PREFIX = "team:"  # a team's counters are those of the subject "team:<name>"


def _unauthorised(message: str) -> OpenAIError:
    return OpenAIError(401, message, type="authentication_error", code="invalid_api_key")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    """Authenticate, admit and settle; one instance per process."""

    def __init__(self, cfg: GatewayConfig, store: KeyStore, ledger: Ledger | None,
                 redis_client: Any = None) -> None:
        self.cfg = cfg
        self.auth = cfg.auth
        self.currency = cfg.ledger.currency
        self.store = store
        self.ledger = ledger
        self.local = LocalLimits()
        # A hold outlives its request only when the replica holding it died: let it go once
        # the longest request could have ended.
        hold_ttl = max((p.timeouts.total for p in cfg.providers.values()), default=600.0) + 60
        self.redis = (RedisLimits(redis_client, cfg.auth.redis_prefix, hold_ttl)
                      if redis_client else None)
        self._cache: OrderedDict[str, tuple[float, KeyInfo | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[KeyInfo | None]] = {}
        self._limits: dict[str, Limits] = {}
        self._team_limits: dict[str, Limits] = {}  # team name -> its limits, read with its keys
        self.teams = TeamStore(store.engine)
        self.admins = AdminStore(store.engine)
        self._admin_cache: dict[str, tuple[float, AdminInfo | None]] = {}
        self._admin_count: tuple[float, int] = (0.0, 0)  # (valid until, active identities)
        self._seeds: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._redis_down_logged = 0.0
        self._db = DaemonPool()

    @classmethod
    def open(cls, cfg: GatewayConfig, ledger: Ledger) -> Access:
        """Wire to the ledger's database (and ``server.redis_url``); fail fast when Redis is
        unreachable. Auth off off loopback was refused by `config.resolve_config`."""
        client = None
        if cfg.server.redis_url:
            import redis
            import redis.asyncio

            try:
                probe = redis.Redis.from_url(cfg.server.redis_url, socket_connect_timeout=5)
                probe.ping()
                probe.close()
            except redis.RedisError as exc:
                from emancipate.config import ConfigError

                raise ConfigError("<config>", "server.redis_url",
                                  f"cannot reach Redis ({exc})") from None
            client = redis.asyncio.Redis.from_url(
                cfg.server.redis_url, socket_connect_timeout=2, socket_timeout=2,
                health_check_interval=30,
            )
        return cls(cfg, KeyStore(ledger.engine), ledger, client)

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.client.aclose()

    # --- authenticate ------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind ``Authorization: Bearer <key>``; 401 otherwise."""
        if not self.auth.enabled:
            return ANONYMOUS
        if not authorization:
            raise _unauthorised(
                "Missing API key: send 'Authorization: Bearer <key>' (ask the gateway operator "
                "for a key: `emancipate keys create`).")
        scheme, _, secret = authorization.strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise _unauthorised("Malformed Authorization header: expected 'Bearer <key>'.")
        admin = os.environ.get(self.auth.admin_key_env)
        if admin and hmac.compare_digest(secret.encode(), admin.encode()):
            return ADMIN
        info = await self._lookup(hash_secret(secret))
        if info is None:
            raise _unauthorised(
                f"Invalid API key ending in '{secret[-4:]}': check the key, or ask the operator "
                "for a new one.")
        if info.revoked:
            # Only that it was revoked: its name and id are the operator's, not the caller's.
            raise _unauthorised("This API key was revoked; ask the operator for a new one.")
        if info.expired():
            when = info.expires_at.isoformat(timespec="seconds")  # type: ignore[union-attr]
            raise _unauthorised(f"This API key expired at {when}; ask the operator for a new "
                                "one.")
        return info.principal()

    async def _lookup(self, h: str) -> KeyInfo | None:
        now = time.monotonic()
        hit = self._cache.get(h)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._inflight.get(h)
        if pending is None:  # one database read per key, however many requests wait on it
            pending = asyncio.ensure_future(
                self._db.run(STORE_TIMEOUT, self.store.lookup_hash, h))
            self._inflight[h] = pending
            pending.add_done_callback(lambda task: self._looked_up(h, task))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("key lookup failed: %s", exc.__class__.__name__)
            raise OpenAIError(
                503, "The key store is unreachable; retry shortly (the operator can see why "
                "in the gateway logs).", type="server_error", code="auth_unavailable",
                headers={"retry-after": "1"},
            ) from None

    def _looked_up(self, h: str, task: asyncio.Future[KeyInfo | None]) -> None:
        self._inflight.pop(h, None)
        if not task.cancelled() and task.exception() is None:
            self._remember(h, task.result())

    def _remember(self, h: str, info: KeyInfo | None) -> None:
        self._cache[h] = (time.monotonic() + self.auth.key_cache_ttl, info)
        self._cache.move_to_end(h)
        while len(self._cache) > self.auth.key_cache_size:
            self._cache.popitem(last=False)
        if info is not None:
            self._limits[info.id] = info.limits
            if info.team_info is not None:
                self._team_limits[info.team_info.name] = info.team_info.limits
            elif info.team:
                self._team_limits.pop(info.team, None)  # deleted (or never created)

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget cached keys (one, or all): called on revoke and rotate in this process."""
        if key_id is None:
            self._cache.clear()
            return
        for h, (_, info) in list(self._cache.items()):
            if info is not None and info.id == key_id:
                del self._cache[h]

    # --- admin identities --------------------------------------------------------------------

    async def admin_identity(self, secret: str) -> AdminInfo | None:
        """The admin identity behind `secret` (the configured admin key, or a key created by
        ``emancipate admin create``, revoked ones included); None when it is neither.

        Cached like virtual keys, for ``auth.key_cache_ttl`` seconds; a revocation through
        this process is effective at once (`forget_admins`).
        """
        configured = os.environ.get(self.auth.admin_key_env)
        if configured and hmac.compare_digest(secret.encode(), configured.encode()):
            return CONFIGURED_ADMIN
        if not secret.startswith(ADMIN_KEY_PREFIX):
            return None
        h = hash_admin_secret(secret)
        hit = self._admin_cache.get(h)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        info = await self._db.run(STORE_TIMEOUT, self.admins.lookup_hash, h)
        if len(self._admin_cache) >= self.auth.key_cache_size:
            self._admin_cache.clear()
        self._admin_cache[h] = (now + self.auth.key_cache_ttl, info)
        return info

    async def admin_count(self) -> int:
        """How many admin identities are active (read from the database)."""
        now = time.monotonic()
        if self._admin_count[0] > now:  # a flood of keyless calls reads the database once
            return self._admin_count[1]
        count = await self._db.run(STORE_TIMEOUT, self.admins.active)
        self._admin_count = (now + self.auth.key_cache_ttl, count)
        return count

    def forget_admins(self) -> None:
        """Drop cached admin identities: called when one is made or revoked here."""
        self._admin_cache.clear()
        self._admin_count = (0.0, 0)

    # --- admit / settle ----------------------------------------------------------------------

    async def admit(self, principal: Principal, route: str, estimated_tokens: int,
                    ctx: RequestContext | None = None,
                    estimated_cost: Callable[[], float] | None = None) -> None:
        """Scope, budget and rate checks before any upstream call, for the key and its team.

        With ``ctx``, the estimated tokens are taken from the tpm buckets now and corrected by
        ``settle`` with the real count; without it they are only checked. With ``ctx`` and
        ``estimated_cost`` (called only when the key or its team has a budget), that cost is
        held against the budgets until ``settle``, so concurrent requests cannot all pass on
        one balance.
        """
        if principal.is_admin or principal is ANONYMOUS or principal.key_id == "anonymous":
            return
        self._check_scopes(principal, route)
        subjects = self.subjects(principal)
        if not subjects:
            return
        day, month = periods()
        tokens = max(0, int(estimated_tokens))
        reserve = ctx is not None
        for sid, lim in subjects:
            if lim.has_budget:
                await self._seed(sid, day, month)
            if (lim.rpm or lim.tpm) and self.redis is None and self.ledger is not None:
                await self._once((sid, "rates"), functools.partial(self._read_rates, sid, lim))
        hold = None
        if (ctx is not None and estimated_cost is not None
                and any(lim.has_budget for _, lim in subjects)):
            hold = Hold(ctx.request_id, max(0.0, float(estimated_cost())))
            ctx.extra[HELD] = True  # before the call: a cancelled Redis call may have held it
        verdict = await self._admit(subjects, tokens, reserve, day, month, hold)
        if verdict.ok:
            if reserve and any(lim.tpm for _, lim in subjects):
                ctx.extra[RESERVED] = tokens  # type: ignore[union-attr]
            return
        if ctx is not None:
            ctx.extra.pop(HELD, None)
        sid, lim = subjects[verdict.subject]
        raise self._refusal(principal, sid, lim, verdict, tokens)

    def _check_scopes(self, principal: Principal, route: str) -> None:
        """403 when the key's model scopes, or its team's, leave out `route`."""
        for patterns, who in ((principal.allowed_models, "This API key"),
                              (principal.team_models, f"The team '{principal.team}' of this "
                               "API key")):
            if patterns is not None and not covers(patterns, route):
                shown = ", ".join(patterns) or "none"
                raise OpenAIError(
                    403, f"{who} may not use the model '{route}'. Models it may use: {shown}.",
                    type="permission_error", param="model", code="model_not_allowed")

    def subjects(self, principal: Principal) -> list[Subject]:
        """The counters a request of `principal` is checked against: the key's own limits,
        then its team's (``team:<name>``), each only when it has any."""
        out: list[Subject] = []
        lim = self._limits.get(principal.key_id)
        if lim is not None and lim.any:
            out.append((principal.key_id, lim))
        team = self._team_limits.get(principal.team) if principal.team else None
        if team is not None and team.any:
            out.append((TEAM_PREFIX + principal.team, team))  # type: ignore[operator]
        return out

    async def _admit(self, subjects: list[Subject], tokens: int, reserve: bool, day: str,
                     month: str, hold: Hold | None) -> Verdict:
        if self.redis is not None:
            try:
                return await self.redis.admit(subjects, tokens, reserve, day, month, hold)
            except Exception as exc:
                self._redis_failed(exc)
        return self.local.admit(subjects, tokens, reserve, day, month, hold)

    async def settle(self, principal: Principal, ctx: RequestContext) -> None:
        """Count the real tokens and cost of a finished request; never raises."""
        try:
            subjects = [] if principal.is_admin else self.subjects(principal)
            if not subjects:
                return
            reserved = int(ctx.extra.pop(RESERVED, 0) or 0)
            held = ctx.extra.pop(HELD, False)
            delta = ctx.prompt_tokens + ctx.completion_tokens - reserved
            cost = float(ctx.cost or 0.0)
            for sid, _ in subjects:
                if held:  # always local too: the admission may have fallen back to this process
                    self.local.release(sid, ctx.request_id)
            if not delta and not cost and not held:
                return
            day, month = periods(ctx.started_at)
            for sid, lim in subjects:
                await self._settle(sid, lim, cost, delta, day, month,
                                   ctx.request_id if held else "")
        except Exception:
            log.exception("settling request %s failed", ctx.request_id)

    async def _settle(self, sid: str, lim: Limits, cost: float, delta: int, day: str,
                      month: str, hold_id: str) -> None:
        if self.redis is not None:
            try:
                await self.redis.settle(sid, lim, cost, delta, day, month, hold_id)
                return
            except Exception as exc:
                self._redis_failed(exc)
        self.local.settle(sid, lim, cost, delta, day, month)

    async def spent(self, key_id: str) -> tuple[float, float]:
        """The day's and month's spend of a key as the limiter counts it."""
        day, month = periods()
        await self._seed(key_id, day, month)
        if self.redis is not None:
            return await self.redis.spent(key_id, day, month)
        return self.local.spent(key_id, day, month)

    async def _seed(self, key_id: str, day: str, month: str) -> None:
        """Start a key's spend from the ledger, once per process and day."""
        if self.ledger is not None:
            await self._once((key_id, day), lambda: self._read_spend(key_id, day, month))

    async def _once(self, tag: tuple[str, str], read: Callable[[], Awaitable[None]]) -> None:
        """Run `read` once per process and tag; callers that arrive meanwhile wait for it, so
        none is admitted on counters that start from zero. A failed read is retried by the
        next request (admission goes on meanwhile)."""
        task = self._seeds.get(tag)
        if task is not None and task.done() and not task.cancelled() and not task.exception():
            return
        if task is None:
            task = asyncio.ensure_future(read())
            self._seeds[tag] = task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._seeds.pop(tag, None)
            log.exception("could not read the ledger for key %s (%s)", tag[0], tag[1])

    async def _read_rates(self, key_id: str, lim: Limits) -> None:
        """Without Redis, a restart would hand every key a full bucket: refill its buckets
        from its requests of the last minute in the ledger."""
        now = time.time()
        since = now - PERIOD_MS / 1000.0
        if key_id.startswith(TEAM_PREFIX):
            uses = await self._db.run(STORE_TIMEOUT, self.teams.recent_use,
                                      key_id[len(TEAM_PREFIX):], since)
        else:
            uses = await self._db.run(STORE_TIMEOUT, self.store.recent_use, key_id, since)
        self.local.seed_rates(key_id, lim, uses, now)

    async def _read_spend(self, key_id: str, day: str, month: str) -> None:
        """Seed the day's and month's spend of a key, or of a team (``team:<name>``)."""
        if key_id.startswith(TEAM_PREFIX):
            spent_day, spent_month = await self._db.run(
                STORE_TIMEOUT, self.teams.spend, key_id[len(TEAM_PREFIX):], day)
        else:
            spent_day, spent_month = await self._db.run(
                STORE_TIMEOUT, self.ledger.spend, key_id, day)  # type: ignore[union-attr]
        if self.redis is not None:
            try:
                await self.redis.seed(key_id, day, month, spent_day, spent_month)
            except Exception as exc:
                self._redis_failed(exc)
        self.local.seed(key_id, day, month, spent_day, spent_month)

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._redis_down_logged > 30:
            self._redis_down_logged = now
            log.error("Redis unreachable (%s): limits and budgets fall back to this process",
                      exc.__class__.__name__)

    def _refusal(self, principal: Principal, sid: str, lim: Limits, v: Verdict, tokens: int
                 ) -> OpenAIError:
        who = (f"The team '{principal.team}' (all its keys together)"
               if sid.startswith(TEAM_PREFIX)
               else f"The API key '{principal.name}' ({principal.key_id})")
        if v.reason in ("budget_day", "budget_month"):
            daily = v.reason == "budget_day"
            budget = lim.budget_day if daily else lim.budget_month
            wait = seconds_to_reset(v.reason)
            held = (f" plus {v.held:.4f} held by its requests in flight (released as they "
                    "finish)" if v.held else "")
            return OpenAIError(
                429,
                f"{who} has used its {'daily' if daily else 'monthly'} budget: spent "
                f"{v.spent:.4f}{held} of {budget:.2f} {self.currency}. It resets at "
                f"{'00:00 UTC' if daily else 'the start of next month (UTC)'}, in "
                f"{_human(wait)}; ask the operator to raise the budget.",
                type="insufficient_quota", code="budget_exceeded",
                headers={"retry-after": str(math.ceil(wait))},
            )
        if v.reason == "tpm_too_large":
            return OpenAIError(
                429,
                f"This request needs about {tokens} tokens, more than {who}'s limit of "
                f"{lim.tpm} tokens per minute: lower max_tokens or shorten the messages, or "
                "ask the operator to raise tpm.",
                type="rate_limit_error", code="rate_limit_exceeded",
            )
        unit = "requests" if v.reason == "rpm" else "tokens"
        limit = lim.rpm if v.reason == "rpm" else lim.tpm
        wait = max(v.retry_after, 0.001)
        return OpenAIError(
            429,
            f"{who} is over its rate limit of {limit} {unit} per minute; retry in "
            f"{wait:.2f} s.",
            type="rate_limit_error", code="rate_limit_exceeded",
            headers={"retry-after": str(max(1, math.ceil(wait))),
                     "retry-after-ms": str(max(1, math.ceil(wait * 1000)))},
        )


def _human(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds % 60}s"

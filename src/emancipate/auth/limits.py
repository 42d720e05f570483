"""Rate limits and budgets: exact in one process, shared through Redis across replicas.

Rate limits are GCRA (a token bucket in one number): a key with ``rpm: 60`` holds a bucket of
60 requests that refills continuously at one per second, so bursts up to the limit pass and
the sustained rate never exceeds it; ``tpm`` is the same bucket counted in tokens. Each check
is atomic: in one process it runs without an ``await`` (the event loop is the lock); with Redis
it is one Lua script using the Redis server clock, so replicas with skewed clocks agree and a
denied request consumes nothing. Without Redis the buckets live in the process: the first time
a process admits a key, it refills them from the key's requests of the last minute in the
ledger (``seed_rates``), so a restart does not hand out a fresh bucket.

Budgets are a key's spend per UTC day and month. The real cost is known only after the answer,
so admission *holds* the request's estimated cost (``Access.admit``: the priciest target of the
route at the prompt estimate plus ``max_tokens``, or ``auth.reserve_completion_tokens``) and a
request is admitted only while spent + held stays under the budget; settlement drops the hold
and adds the real cost, however the request ended (answer, error, client gone). A burst of
concurrent requests on a fresh key thus overshoots by at most one request's cost (plus how far
real costs exceed their estimates), not by the burst's size. Holds are keyed by request id, so
releasing one twice, or one that never landed (a cancelled Redis call), is harmless; a hold
whose replica died expires after ``hold_ttl`` seconds.

A key whose team has limits is admitted against two *subjects*, its own counters and the
team's (``team:<name>``), in one atomic step: both pass, or neither bucket nor budget is
touched. So the stricter of the two refuses, and two keys of a team share the team's budget
and buckets across replicas exactly as one key's requests share its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from emancipate.auth.keys import Limits

PERIOD_MS = 60_000.0
# Whose counters a request is checked against: a key id, or "team:<name>", with its limits.
Subject = tuple[str, Limits]


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""  # budget_day | budget_month | rpm | tpm | tpm_too_large
    retry_after: float = 0.0  # seconds
    spent: float = 0.0
    held: float = 0.0  # estimated cost of the key's requests in flight
    subject: int = 0  # which of the admitted subjects refused (0: the key, 1: its team)


OK = Verdict(True)


@dataclass(frozen=True, slots=True)
class Hold:
    """A request's estimated cost, held against its key's budget until it settles."""

    request_id: str
    cost: float


def periods(now: float | None = None) -> tuple[str, str]:
    """The UTC day ('YYYY-MM-DD') and month ('YYYY-MM') a spend counts in."""
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
    return day, day[:7]


def seconds_to_reset(reason: str, now: datetime | None = None) -> float:
    """Until the next UTC midnight (day budget) or first of the month (month budget)."""
    now = now or datetime.now(UTC)
    if reason == "budget_day":
        nxt = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + timedelta(days=32)).replace(day=1)
    return max(1.0, (nxt - now).total_seconds())


def _gcra(tat: float, now: float, limit: int, cost: float) -> tuple[float, float]:
    """New theoretical arrival time and how far (ms) it overshoots the bucket.

    The overshoot is summed from the small terms (``tat - now`` is 0 for an idle bucket), not
    read off ``new - now``: at a clock of millions of ms, ``(now + 60000) - now`` may round to
    a hair above 60000, which refused an idle ``rpm: 1`` key's first request."""
    tat = max(tat, now)
    step = cost * PERIOD_MS / limit
    return tat + step, (tat - now) + step - PERIOD_MS


class LocalLimits:
    """Counters in this process; also the fallback while Redis is unreachable."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[tuple[str, str], float] = {}
        self._spend: dict[str, list[Any]] = {}  # key -> [day, spent_day, month, spent_month]
        self._held: dict[str, dict[str, float]] = {}  # key -> request id -> held cost

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def _spent(self, key_id: str, day: str, month: str) -> list[Any]:
        entry = self._spend.get(key_id)
        if entry is None:
            entry = self._spend[key_id] = [day, 0.0, month, 0.0]
        if entry[0] != day:
            entry[0], entry[1] = day, 0.0
        if entry[2] != month:
            entry[2], entry[3] = month, 0.0
        return entry

    def seed(self, key_id: str, day: str, month: str, spent_day: float,
             spent_month: float) -> None:
        """Start from what the ledger already holds (kept if this process already counts)."""
        if key_id not in self._spend:
            self._spend[key_id] = [day, spent_day, month, spent_month]

    def seed_rates(self, key_id: str, lim: Limits, uses: list[tuple[float, int]],
                   now: float) -> None:
        """Refill the rpm and tpm buckets from past requests ((epoch, tokens), oldest first),
        as if this process had admitted them: a restart does not hand out a fresh bucket."""
        offset = self._now_ms() - now * 1000.0  # wall-clock epoch -> this process's clock
        for stamp, tokens in uses:
            at = stamp * 1000.0 + offset
            if lim.rpm:
                tat = self._tat.get((key_id, "rpm"), 0.0)
                self._tat[(key_id, "rpm")] = _gcra(tat, at, lim.rpm, 1)[0]
            if lim.tpm and tokens:
                tat = self._tat.get((key_id, "tpm"), 0.0)
                self._tat[(key_id, "tpm")] = _gcra(tat, at, lim.tpm, tokens)[0]

    def admit(self, subjects: Sequence[Subject], tokens: int, reserve: bool, day: str,
              month: str, hold: Hold | None = None) -> Verdict:
        """Admit against every subject at once (a key and its team): all pass, or nothing is
        taken from any of them."""
        for i, (sid, lim) in enumerate(subjects):
            refused = self._budget(sid, lim, day, month)
            if refused is not None:
                return replace(refused, subject=i)
        taken: list[tuple[str, float | None, float | None]] = []
        for i, (sid, lim) in enumerate(subjects):
            verdict, new_rpm, new_tpm = self._rates(sid, lim, tokens)
            if not verdict.ok:
                return replace(verdict, subject=i)
            taken.append((sid, new_rpm, new_tpm))
        for sid, new_rpm, new_tpm in taken:
            if new_rpm is not None:
                self._tat[(sid, "rpm")] = new_rpm
            if new_tpm is not None and reserve:
                self._tat[(sid, "tpm")] = new_tpm
        if hold is not None and hold.cost > 0:
            for sid, lim in subjects:
                if lim.has_budget:
                    self._held.setdefault(sid, {})[hold.request_id] = hold.cost
        return OK

    def _budget(self, sid: str, lim: Limits, day: str, month: str) -> Verdict | None:
        if not lim.has_budget:
            return None
        spent = self._spent(sid, day, month)
        held = sum(self._held.get(sid, {}).values())
        if lim.budget_day is not None and spent[1] + held >= lim.budget_day:
            return Verdict(False, "budget_day", spent=spent[1], held=held)
        if lim.budget_month is not None and spent[3] + held >= lim.budget_month:
            return Verdict(False, "budget_month", spent=spent[3], held=held)
        return None

    def release(self, key_id: str, request_id: str) -> None:
        """Drop a request's hold (idempotent)."""
        held = self._held.get(key_id)
        if held is not None and held.pop(request_id, None) is not None and not held:
            del self._held[key_id]

    def _rates(self, key_id: str, lim: Limits, tokens: int
               ) -> tuple[Verdict, float | None, float | None]:
        """The verdict and the buckets' new arrival times (taken only if every subject
        passes)."""
        now = self._now_ms()
        new_rpm = new_tpm = None
        if lim.rpm:
            new_rpm, excess = _gcra(self._tat.get((key_id, "rpm"), 0.0), now, lim.rpm, 1)
            if excess > 0:
                return Verdict(False, "rpm", excess / 1000.0), None, None
        if lim.tpm:
            if tokens > lim.tpm:
                return Verdict(False, "tpm_too_large"), None, None
            new_tpm, excess = _gcra(self._tat.get((key_id, "tpm"), 0.0), now, lim.tpm, tokens)
            if excess > 0:
                return Verdict(False, "tpm", excess / 1000.0), None, None
        return OK, new_rpm, new_tpm

    def settle(self, key_id: str, lim: Limits, cost: float, token_delta: int, day: str,
               month: str) -> None:
        if cost and (lim.budget_day is not None or lim.budget_month is not None):
            spent = self._spent(key_id, day, month)
            spent[1] += cost
            spent[3] += cost
        if lim.tpm and token_delta:
            now = self._now_ms()
            tat = max(self._tat.get((key_id, "tpm"), 0.0), now)
            self._tat[(key_id, "tpm")] = max(now, tat + token_delta * PERIOD_MS / lim.tpm)

    def spent(self, key_id: str, day: str, month: str) -> tuple[float, float]:
        entry = self._spent(key_id, day, month)
        return entry[1], entry[3]


_GCRA_LUA = """
local function gcra(key, now, limit, cost)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local step = cost * 60000 / limit
  return tat + step, (tat - now) + step - 60000  -- not new - now: see _gcra
end
"""

ADMIT_LUA = _GCRA_LUA + """
-- One or more subjects (a key, then its team), all admitted or none touched.
-- KEYS, 5 per subject: spend day, spend month, rpm tat, tpm tat, holds (hash: request id ->
--       'cost:expiry ms')
-- ARGV: tokens, reserve (1: take the tokens now; 0: only check), hold cost, hold id,
--       hold ttl ms, then 4 per subject: budget day (-1 none), budget month (-1 none),
--       rpm (0 none), tpm (0 none)
-- Returns {status, value, held, index of the refusing subject from 0}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS / 5
local tokens, reserve = tonumber(ARGV[1]), ARGV[2]
local cost, hold_id, ttl = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local function limit(i, j) return tonumber(ARGV[5 + (i - 1) * 4 + j]) end
for i = 1, n do
  local k = (i - 1) * 5
  local bd, bm = limit(i, 1), limit(i, 2)
  if bd >= 0 or bm >= 0 then
    local held = 0
    local holds = redis.call('HGETALL', KEYS[k + 5])
    for h = 1, #holds, 2 do
      local value = holds[h + 1]
      local sep = string.find(value, ':', 1, true)
      if tonumber(string.sub(value, sep + 1)) <= now then
        redis.call('HDEL', KEYS[k + 5], holds[h])  -- its replica died before settling it
      else
        held = held + tonumber(string.sub(value, 1, sep - 1))
      end
    end
    if bd >= 0 then
      local s = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
      if s + held >= bd then return {'budget_day', tostring(s), tostring(held), i - 1} end
    end
    if bm >= 0 then
      local s = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
      if s + held >= bm then return {'budget_month', tostring(s), tostring(held), i - 1} end
    end
  end
end
local new_rpm, new_tpm = {}, {}
for i = 1, n do
  local k = (i - 1) * 5
  local rpm, tpm = limit(i, 3), limit(i, 4)
  if rpm > 0 then
    local excess
    new_rpm[i], excess = gcra(KEYS[k + 3], now, rpm, 1)
    if excess > 0 then return {'rpm', tostring(excess), '0', i - 1} end
  end
  if tpm > 0 then
    if tokens > tpm then return {'tpm_too_large', '0', '0', i - 1} end
    local excess
    new_tpm[i], excess = gcra(KEYS[k + 4], now, tpm, tokens)
    if excess > 0 then return {'tpm', tostring(excess), '0', i - 1} end
  end
end
for i = 1, n do
  local k = (i - 1) * 5
  local r, tk = new_rpm[i], new_tpm[i]
  if r then
    redis.call('SET', KEYS[k + 3], string.format('%.3f', r), 'PX', math.ceil(r - now) + 1)
  end
  if tk and reserve == '1' and tk > now then
    redis.call('SET', KEYS[k + 4], string.format('%.3f', tk), 'PX', math.ceil(tk - now) + 1)
  end
  if cost > 0 and (limit(i, 1) >= 0 or limit(i, 2) >= 0) then
    redis.call('HSET', KEYS[k + 5], hold_id, ARGV[3] .. ':' .. string.format('%.0f', now + ttl))
    redis.call('PEXPIRE', KEYS[k + 5], ttl)
  end
end
return {'ok', '0', '0', 0}
"""

SETTLE_LUA = _GCRA_LUA + """
-- KEYS: spend day, spend month, tpm tat, holds
-- ARGV: cost, day ttl s, month ttl s, tpm (0 none), token delta (may be negative: refund),
--       hold id ('' none)
if ARGV[6] ~= '' then redis.call('HDEL', KEYS[4], ARGV[6]) end
local cost = tonumber(ARGV[1])
if cost > 0 then
  redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('INCRBYFLOAT', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
local tpm, delta = tonumber(ARGV[4]), tonumber(ARGV[5])
if tpm > 0 and delta ~= 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tat < now then tat = now end
  tat = tat + delta * 60000 / tpm
  if tat <= now then
    redis.call('DEL', KEYS[3])
  else
    redis.call('SET', KEYS[3], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1)
  end
end
return 1
"""

DAY_TTL = 2 * 86400
MONTH_TTL = 32 * 86400


class RedisLimits:
    """The same counters in Redis, one atomic script per admission and per settlement."""

    def __init__(self, client: Any, prefix: str, hold_ttl: float = 900.0) -> None:
        self.client = client
        self.prefix = prefix
        self.hold_ttl = hold_ttl  # seconds a hold outlives a replica that died holding it
        self._admit = client.register_script(ADMIT_LUA)
        self._settle = client.register_script(SETTLE_LUA)

    def _keys(self, key_id: str, day: str, month: str) -> tuple[str, str, str, str, str]:
        base = f"{self.prefix}:{{{key_id}}}"  # hash tag: one slot per key on Redis Cluster
        return (f"{base}:spend:{day}", f"{base}:spend:{month}", f"{base}:rpm", f"{base}:tpm",
                f"{base}:holds")

    async def seed(self, key_id: str, day: str, month: str, spent_day: float,
                   spent_month: float) -> None:
        """Initialise spend from the ledger unless a replica (or Redis itself) already has it."""
        kd, km, _, _, _ = self._keys(key_id, day, month)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(kd, repr(spent_day), nx=True, ex=DAY_TTL)
            pipe.set(km, repr(spent_month), nx=True, ex=MONTH_TTL)
            await pipe.execute()

    async def admit(self, subjects: Sequence[Subject], tokens: int, reserve: bool, day: str,
                    month: str, hold: Hold | None = None) -> Verdict:
        """One script for every subject (a key and its team): all pass, or none is touched.

        The project's client is a plain Redis client; on Redis Cluster a key's and its team's
        counters would sit in two slots, which one script cannot touch."""
        keys: list[str] = []
        args: list[Any] = [int(tokens), 1 if reserve else 0,
                           repr(float(hold.cost)) if hold else "0",
                           hold.request_id if hold else "", int(self.hold_ttl * 1000)]
        for sid, lim in subjects:
            keys.extend(self._keys(sid, day, month))
            args.extend([-1 if lim.budget_day is None else lim.budget_day,
                         -1 if lim.budget_month is None else lim.budget_month,
                         lim.rpm or 0, lim.tpm or 0])
        res = await self._admit(keys=keys, args=args)
        status = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
        value = float(res[1])
        if status == "ok":
            return OK
        subject = int(res[3])
        if status.startswith("budget"):
            return Verdict(False, status, spent=value, held=float(res[2]), subject=subject)
        return Verdict(False, status, value / 1000.0, subject=subject)

    async def settle(self, key_id: str, lim: Limits, cost: float, token_delta: int, day: str,
                     month: str, hold_id: str = "") -> None:
        kd, km, _, kt, kh = self._keys(key_id, day, month)
        budgets = lim.budget_day is not None or lim.budget_month is not None
        await self._settle(
            keys=[kd, km, kt, kh],
            args=[repr(float(cost)) if budgets else "0", DAY_TTL, MONTH_TTL, lim.tpm or 0,
                  int(token_delta), hold_id],
        )

    async def spent(self, key_id: str, day: str, month: str) -> tuple[float, float]:
        kd, km, _, _, _ = self._keys(key_id, day, month)
        d, m = await self.client.mget(kd, km)
        return float(d or 0), float(m or 0)

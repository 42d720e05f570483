"""The guard off the event loop, within a per-request budget.

`GuardRunner.scan` is what the gateway awaits for each request: it lists what the body
will send (`Guard.view`, on the loop: a walk over the parsed body), checks the scan budget
(`guard.max_scan_bytes`), then scans inline when the text is small and in a worker thread
otherwise, so a large or adversarial request never holds the loop (`/healthz`, other
clients) for the length of its scan.

Thread or process (`guard.offload`; bench/guard_offload.py, docs/benchmarks.md): a worker
thread holds the GIL while it runs Python, but CPython hands it back every switch interval
(5 ms), so the loop keeps serving: ~1,000 `/healthz` answers a second during back-to-back
256 KB scans, the slowest 21 ms. A process pool leaves the loop alone (~10,000 a second,
the slowest 11 ms on 2 shared cores) and scans in parallel with it, but each worker
process holds its own copy of the rules and automaton (built from the config at start,
terms files read again) and every large body is pickled out and its findings back. The
default is the thread (one process, nothing duplicated); `process` is for hosts with
cores to spare. Below `INLINE_CHARS` the hand-off costs more than the scan.

A request over budget is never sent unscanned to an external target: it is refused
(`over_budget: refuse`, 413 `scan_budget_exceeded`) or kept to in-house targets unscanned
(`over_budget: in_house`; 413 when the model has none).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from emancipate.context import Decision, Finding, Target
from emancipate.guard import Guard, GuardConfig, Unscannable
from emancipate.guard.view import RequestView, Segment, TooManyStrings, describe
from emancipate.protocol import OpenAIError

# Characters below which a scan runs inline: ~0.4 ms of prose, ~3 ms of number-dense text
# (guard bench), about what a hand-off to a thread and back costs under load.
INLINE_CHARS = 8192
ENTITY_INLINE_CHARS = 512
# Strings a body may hold for its walk to run on the loop (~2 µs a string: 1 ms).
INLINE_STRINGS = 512
WORKERS = 2  # scans in flight at once; more would only queue for the GIL


@dataclass(slots=True)
class Scanned:
    """What the guard made of one request."""

    body: dict[str, Any]  # the body to send (unknown fields dropped under `drop`)
    findings: list[Finding]
    targets: list[Target]  # the targets the scan leaves (all, or in-house when unscanned)
    decisions: list[Decision] = field(default_factory=list)


class GuardRunner:
    """Owns the worker threads; one per gateway process."""

    def __init__(self, guard: Guard, policy_enabled: bool = True) -> None:
        self.guard = guard
        self.max_chars = guard.cfg.max_scan_bytes
        self.over_budget: Literal["refuse", "in_house"] = guard.cfg.over_budget
        self.policy_enabled = policy_enabled
        self.mode: Literal["thread", "process"] = guard.cfg.offload
        self._pool: Executor | None = None
        self._walks: ThreadPoolExecutor | None = None
        self.offloaded = 0  # scans that ran in a worker (tests and metrics count them)
        # The opt-in name model costs ~15 ms per KB of name-dense text (bench/guard_entities.py):
        # with it on, anything past a short message goes to a worker.
        self.inline_chars = INLINE_CHARS if guard.entities is None else ENTITY_INLINE_CHARS

    async def scan(self, body: dict[str, Any], targets: list[Target],
                   kind: Literal["chat", "embeddings"] = "chat") -> Scanned:
        """Findings for `body`, or the in-house targets when it cannot be read."""
        loop = asyncio.get_running_loop()
        try:  # the walk itself: inline for an ordinary body, else in a worker thread
            view = self.guard.view(body, kind, max_strings=INLINE_STRINGS)
        except TooManyStrings:
            view = await loop.run_in_executor(self._walker(), self.guard.view, body, kind)
        param = "messages" if kind == "chat" else "input"
        if view.size > self.max_chars:
            return self._unscanned(view, targets, param, _over_budget(view, self.max_chars))
        if view.token_ids and self.policy_enabled:
            return self._unscanned(view, targets, param, (
                "The input is given as token ids, which the leak guard cannot read"), 403)
        if view.unreadable and self.policy_enabled:
            path, media = view.unreadable[0]
            return self._unscanned(view, targets, describe(path), (
                f"The file in {describe(path)} ({media}) holds text the leak guard cannot "
                "read"), 403)
        try:
            findings = await self._scan(view)
        except Unscannable as exc:
            return self._unscanned(view, targets, param, str(exc))
        return Scanned(view.body, findings, targets)

    async def _scan(self, view: RequestView) -> list[Finding]:
        if view.size <= self.inline_chars:
            return self.guard.scan_view(view)
        self.offloaded += 1
        loop = asyncio.get_running_loop()
        if self.mode == "process":
            return await loop.run_in_executor(self._executor(), _scan_in_worker, view.segments)
        return await loop.run_in_executor(self._executor(), self.guard.scan_view, view)

    def _walker(self) -> Executor:
        """Threads for walking a body of many strings (the process pool scans)."""
        if self.mode == "thread":
            return self._executor()
        if self._walks is None:
            self._walks = ThreadPoolExecutor(1, thread_name_prefix="guard-walk")
        return self._walks

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.mode == "process":  # spawn: the gateway's threads are not forked
                self._pool = ProcessPoolExecutor(
                    WORKERS, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=(self.guard.cfg.model_dump(),))
            else:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="guard")
        return self._pool

    def start(self) -> None:
        """Start the worker processes now (`process`), not on the first large request."""
        if self.mode == "process":
            pool = self._executor()
            for _ in range(WORKERS):
                pool.submit(_scan_in_worker, [])

    def _unscanned(self, view: RequestView, targets: list[Target], param: str, why: str,
                   status: int = 413) -> Scanned:
        """Unscanned: in-house targets only (`over_budget: in_house`, token ids), or an
        error saying why."""
        inside = [t for t in targets if t.ownership == "in-house"]
        keep = status == 403 or self.over_budget == "in_house"
        if keep and inside:
            decision = Decision(stage="guard", action="in-house-only", reason=(
                f"{why}: sent unscanned to in-house targets only."))
            return Scanned(view.body, [], inside, [decision])
        if status == 403:
            raise OpenAIError(403, f"{why}, and this model has no in-house target it could "
                              "go to unscanned. Send the text instead.",
                              type="permission_error", param=param, code="policy_blocked")
        tail = (" and this model has no in-house target it could go to unscanned"
                if keep else "")
        raise OpenAIError(413, f"{why}{tail}. Send less text in one request.",
                          param=param, code="scan_budget_exceeded")

    def close(self) -> None:
        for pool in (self._pool, self._walks):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=False)
        self._pool = self._walks = None


def _over_budget(view: RequestView, limit: int) -> str:
    return (f"The request holds {view.size} characters of text, more than the leak guard "
            f"reads for one request (guard.max_scan_bytes: {limit})")


# --- process workers (`guard.offload: process`) -------------------------------------------

_WORKER_GUARD: Guard | None = None


def _start_worker(cfg: dict[str, Any]) -> None:
    global _WORKER_GUARD
    _WORKER_GUARD = Guard.from_config(GuardConfig.model_validate(cfg))


def _scan_in_worker(segments: list[Segment]) -> list[Finding]:
    assert _WORKER_GUARD is not None
    return _WORKER_GUARD.scan_view(RequestView(segments, {}))

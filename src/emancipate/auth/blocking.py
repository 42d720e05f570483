"""Blocking key-store calls off the event loop: in daemon threads, and never waited on forever.

`asyncio.to_thread` would do for a database that fails, but not for one that stops answering
(a network partition, a frozen server): the request would hang, and the stuck executor thread
would keep the process from exiting at shutdown. Here a call that exceeds its deadline raises
`TimeoutError` (the caller answers 503), and the thread left waiting on the database is a
daemon, so SIGTERM still stops the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # timed out or cancelled meanwhile
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class DaemonPool:
    """Up to `size` daemon threads running blocking calls; jobs queue when all are busy."""

    def __init__(self, size: int = 8, name: str = "auth-store") -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread; TimeoutError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, fut, fn, args))
        self._grow()
        return await asyncio.wait_for(fut, timeout)

    def _grow(self) -> None:
        with self._lock:
            if self._threads >= self.size or self._jobs.qsize() <= self._idle:
                return
            self._threads += 1
            n = self._threads
        threading.Thread(target=self._work, name=f"{self.name}-{n}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            loop, fut, fn, args = self._jobs.get()
            with self._lock:
                self._idle -= 1
            try:
                ok, value = True, fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # the event loop is gone
                loop.call_soon_threadsafe(_settle, fut, ok, value)
            del fut, value

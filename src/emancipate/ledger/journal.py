"""The ledger's crash journal: a record is on disk before its answer's last byte leaves.

The batch writer commits every ``flush_interval`` seconds, so a process killed outright
(SIGKILL, OOM) used to lose the records queued since the last commit: answered requests the
budget and the audit never saw (issue 17: 331 of 7,195 after a ``kill -9`` under load).
Now ``Ledger.record`` also appends the record to this journal, one JSON line per record with
one ``os.write``, before the gateway sends the answer's last byte; the next ``Ledger.open``
replays the journals of dead processes exactly as it replays spill files (same format, same
idempotent inserts: a record the writer had committed is skipped by ``ON CONFLICT DO
NOTHING``). Once the writer has committed a record, its journal space is given back.

What ``ledger.journal`` buys:

- ``write`` (default): the line is in the kernel's page cache when ``record`` returns. That
  survives the process dying at any instant (SIGKILL, OOM, a crash), not a power cut or a
  kernel panic, which may lose the last seconds of lines not yet written back.
- ``fsync``: ``fdatasync`` after each line, on the event loop, so it also survives a power cut,
  at the price of one disk flush per request (see docs/benchmarks.md).
- ``off``: no journal; a hard kill loses what was queued (about ``flush_interval`` seconds).

Files, in ``spill_dir``, one set per ``Ledger`` (i.e. per process):
``journal-<db>-<pid>-<ns>.lock``, held with ``flock`` for the life of the process, and
segments ``journal-<db>-<pid>-<ns>-<n>.jsonl``. ``<db>`` is a digest of the database URL, so a
gateway replays only journals meant for its own database; the lock tells a live replica's
journal (never touched) from a dead one's (replayed by whichever replica claims each segment
first, by the same atomic rename as spill files).

Space: the writer thread calls ``release(seq)`` after each commit. A segment whose records
are all committed is deleted; the active one is truncated when the writer has caught up, and
a new one started past ``SEGMENT_BYTES``, so the journal holds about one flush of traffic.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Literal

log = logging.getLogger("emancipate.ledger")

JournalMode = Literal["off", "write", "fsync"]

# A new segment past this size, so that committed records can be given back under a load
# that never lets the writer catch up completely (~1 s of traffic at 2,000 req/s).
SEGMENT_BYTES = 1 << 20


def database_tag(database_url: str) -> str:
    """A short digest naming the database a journal belongs to (no credentials in names)."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:12]


class Journal:
    """One process's journal: ``append`` from the event loop, ``release`` from the writer."""

    def __init__(self, directory: Path, database_url: str, mode: JournalMode) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.fsync = mode == "fsync"
        self.stem = f"journal-{database_tag(database_url)}-{os.getpid()}-{time.time_ns()}"
        self._lock_fd = _locked_file(directory / f"{self.stem}.lock")
        self._lock = threading.Lock()  # append vs release: a truncate must not eat a new line
        self._seq = 0  # records appended so far; a record's number is its position
        self._segment = 0
        self._fd = -1
        self._path = directory / "unset"
        self._bytes = 0
        self._full: list[tuple[Path, int]] = []  # closed segments and their last record number
        self._open_segment()

    @property
    def appended(self) -> int:
        """Records appended so far (the last one's number)."""
        return self._seq

    def append(self, line: bytes) -> int:
        """Write one record (one line, newline included); its number, for ``release``."""
        with self._lock:
            if self._fd < 0:  # closed: never write to whatever file reuses the number
                raise OSError("the ledger journal is closed")
            view = memoryview(line)
            while view:  # a regular file takes it whole unless the disk is full
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fdatasync(self._fd)
            self._seq += 1
            self._bytes += len(line)
            if self._bytes >= SEGMENT_BYTES:
                self._full.append((self._path, self._seq))
                os.close(self._fd)
                self._open_segment()
            return self._seq

    def release(self, upto: int) -> None:
        """Records 1..``upto`` are committed (or spilled): give their space back."""
        with self._lock:
            if self._fd < 0:  # closed (a writer that was stuck at shutdown came back)
                return
            if upto >= self._seq and self._bytes:
                os.ftruncate(self._fd, 0)  # O_APPEND: the next line goes to offset 0
                self._bytes = 0
            done = [path for path, last in self._full if last <= upto]
            self._full = [(path, last) for path, last in self._full if last > upto]
        for path in done:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self, upto: int) -> None:
        """Stop journaling; everything up to ``upto`` is safe elsewhere.

        Segments with records past ``upto`` stay on disk for the next start to replay.
        """
        self.release(upto)
        with self._lock:
            os.close(self._fd)
            self._fd = -1
            if upto >= self._seq:
                self._path.unlink(missing_ok=True)
            if not self._full and upto >= self._seq:
                (self.directory / f"{self.stem}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)  # releases the flock: what is left is a dead journal

    def _open_segment(self) -> None:
        self._segment += 1
        self._path = self.directory / f"{self.stem}-{self._segment:06d}.jsonl"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._bytes = 0
        if self.fsync:  # the new file's name must survive a power cut too
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


def _locked_file(path: Path) -> int:
    """Create `path` already locked: made under a temporary name, locked, then renamed, so
    that no replayer ever sees it unlocked while its owner lives."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(tmp, path)
    return fd


def dead_segments(directory: Path, database_url: str) -> tuple[list[Path], list[tuple[Path, int]]]:
    """Journal segments of dead processes for this database, oldest first, and the lock files
    (held by us until ``forget_owners``) of those processes. Live owners' files are left out."""
    prefix = f"journal-{database_tag(database_url)}-"
    segments: list[Path] = []
    owners: list[tuple[Path, int]] = []
    live: set[str] = set()
    for lock in sorted(directory.glob(f"{prefix}*.lock")):
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its owner is alive, or another replica is replaying it
            os.close(fd)
            live.add(lock.stem)
            continue
        owners.append((lock, fd))
    for segment in sorted(directory.glob(f"{prefix}*.jsonl"), key=_segment_order):
        if segment.stem.rsplit("-", 1)[0] not in live:
            segments.append(segment)
    return segments, owners


def forget_owners(owners: list[tuple[Path, int]]) -> None:
    """Drop the lock files of replayed journals whose segments are all gone."""
    for lock, fd in owners:
        stem = lock.stem
        if not any(lock.parent.glob(f"{stem}-*.jsonl")):
            lock.unlink(missing_ok=True)
        os.close(fd)


def _segment_order(path: Path) -> tuple[int, str]:
    """Oldest process first (its start time), then segment number."""
    parts = path.stem.split("-")  # journal, db, pid, ns, n
    try:
        return int(parts[3]), parts[4]
    except (IndexError, ValueError):
        return 0, path.name

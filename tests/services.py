"""Real PostgreSQL and Redis servers on loopback for the test session (never mocked).

Each server starts once per test process (lazily, on first use) and stops at exit, whichever
test modules ask for it; a server that cannot start fails the test loudly, nothing is skipped.
Missing binaries are installed by ``scripts/system-deps.sh``.

Reuse from any test (end-to-end gateways included)::

    from tests.services import shared_postgres, shared_redis
    url = shared_postgres().create_database()     # a fresh, empty database
    redis_url = shared_redis().url

or the fixtures below (import them into the module or conftest): ``pg_server``,
``redis_server``, ``database_url`` (parametrised: a fresh SQLite file and a fresh PostgreSQL
database per test), ``postgres_url`` (PostgreSQL only), ``redis_url`` and ``redis_factory``
(dedicated servers a test may stop). Test modules get them with
``pytest_plugins = ["tests.services"]`` (or the conftest imports them).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_lock = threading.Lock()
_servers: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_system_deps(binary_glob: str) -> None:
    if glob.glob(binary_glob) or shutil.which(Path(binary_glob).name):
        return
    subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=True)


def _wait(check: Any, proc: subprocess.Popen[bytes], what: str, log: Path,
          timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} at start-up:\n"
                               f"{log.read_text(errors='replace')[-4000:]}")
        try:
            check()
            return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections within {timeout}s ({last!r}):\n"
                       f"{log.read_text(errors='replace')[-4000:]}")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PostgresServer:
    """A throw-away cluster: data dir in a temp dir, unix socket there too, TCP on loopback.

    Durability is off (fsync, synchronous_commit): the data dies with the test run anyway.
    When the tests run as root, the server runs as the `postgres` system user.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.base: Path | None = None

    @staticmethod
    def bindir() -> Path:
        _ensure_system_deps("/usr/lib/postgresql/*/bin/postgres")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                       key=lambda p: int(Path(p).parent.parent.name))
        if found:
            return Path(found[-1]).parent
        which = shutil.which("postgres")
        if which:
            return Path(which).parent
        raise RuntimeError("PostgreSQL binaries not found even after scripts/system-deps.sh")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        bindir = self.bindir()
        self.base = Path(tempfile.mkdtemp(prefix="emancipate-pg-"))
        run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            if not _user_exists("postgres"):
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"],
                               check=True)
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        data, log = self.base / "data", self.base / "postgres.log"
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, cwd=self.base, **run_as,
        )
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-k", str(self.base),
                 "-p", str(self.port), "-h", "127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=300"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.base,
                start_new_session=True, **run_as,
            )
        _wait(self._ping, self.proc, "postgres", log)
        return self

    def _ping(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", connect_timeout=2):
            pass

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # "fast" shutdown
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)


class RedisServer:
    """redis-server on loopback, no persistence."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.base: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        _ensure_system_deps("/usr/bin/redis-server")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.base = Path(tempfile.mkdtemp(prefix="emancipate-redis-"))
        log = self.base / "redis.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.base), "--daemonize", "no"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        _wait(self._ping, self.proc, "redis-server", log)
        return self

    def _ping(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _shared(kind: str, cls: Any) -> Any:
    with _lock:
        server = _servers.get(kind)
        if server is None:
            server = cls().start()
            _servers[kind] = server
            atexit.register(server.stop)
        return server


def shared_postgres() -> PostgresServer:
    """The process's PostgreSQL server, started on first use."""
    return _shared("postgres", PostgresServer)


def shared_redis() -> RedisServer:
    """The process's Redis server, started on first use."""
    return _shared("redis", RedisServer)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    return shared_postgres()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    return shared_redis()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        yield shared_postgres().create_database()


@pytest.fixture
def postgres_url() -> str:
    return shared_postgres().create_database()


@pytest.fixture
def redis_url() -> str:
    return shared_redis().url


@pytest.fixture
def redis_factory() -> Iterator[Any]:
    """Dedicated Redis servers a test may stop (outage tests); all stopped at teardown."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer().start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()



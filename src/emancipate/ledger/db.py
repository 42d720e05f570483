"""Engines and migrations: SQLite (WAL) by default, PostgreSQL when the URL says so.

Migrations are Alembic revisions shipped in the package and run in code at start-up, so a
deployment needs no alembic.ini; on PostgreSQL an advisory lock serialises replicas that
start together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with Mako and Pygments, ~11 MiB resident and ~0.2 s) is imported only when a
# migration has to run: a database already at head is recognised with one SELECT.

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "emancipate_schema"
_LOCK_ID = 0x656D616E  # "eman": pg_advisory_lock key held while migrating


def normalise_url(database_url: str) -> str:
    """Accept the usual spellings; psycopg 3 is the PostgreSQL driver we ship."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1)
                  if database_url.startswith("postgres://") else database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def make_engine(database_url: str) -> Engine:
    """An engine with the pragmas a concurrent writer and readers need on SQLite."""
    url = make_url(normalise_url(database_url))
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        if "connect_timeout" not in url.query:  # an unreachable server fails, never hangs
            kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: readers never block the writer. NORMAL: a process kill loses no commit (only power
    # loss may lose the last ones). foreign_keys: the cascades the schema declares.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; safe with several replicas on PostgreSQL)."""
    if revision == "head" and _at_head(engine):
        return
    from alembic import command

    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    _run(engine, command.downgrade, revision)


_REVISION = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.M)
_DOWN = re.compile(r"""^down_revision\s*=\s*(?:None|["']([^"']+)["'])\s*$""", re.M)


def _quick_head() -> str | None:
    """The head revision read from the migration files without Alembic; None when the files
    do not form one simple chain (then Alembic decides)."""
    revisions, downs = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev is None:
            continue
        if down is None:
            return None
        revisions.add(rev.group(1))
        if down.group(1):
            downs.add(down.group(1))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """True when the database's recorded revision is the head (one SELECT, no Alembic)."""
    head = _quick_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    except Exception:  # no version table yet, or anything odd: let Alembic handle it
        return False
    return [r[0] for r in rows] == [head]


def _run(engine: Engine, fn: Any, revision: str) -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            fn(cfg, revision)
            conn.commit()
        finally:
            if postgres:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
                conn.commit()

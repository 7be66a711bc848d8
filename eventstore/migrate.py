"""Create and migrate the log's schema with alembic, safely from several processes at once.

The schema keeps its own alembic version table (``mastertrail_alembic_version``), so it can
live in a Buildbot database next to Buildbot's own alembic history. Concurrent upgrades are
serialised by a database lock: an advisory lock on PostgreSQL, ``GET_LOCK`` on MariaDB
(whose DDL commits implicitly, so the lock must outlive transactions), and the write lock
of ``BEGIN IMMEDIATE`` on SQLite, whose DDL is transactional.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from eventstore import sqlitefile, texts
from eventstore.engine import begin_write, translate_errors
from eventstore.errors import SchemaMissing, SchemaTooNew
from eventstore.schema import VERSION_TABLE

_LOCK_NAME = "mastertrail_schema"
_PG_LOCK_KEY = 0x6D747261696C  # "mtrail"
_MYSQL_LOCK_TIMEOUT = 120


def upgrade(engine: Engine, *, to: str = "head") -> None:
    """Bring the log's schema to the newest revision (or to revision ``to``); a no-op when
    it is already there.

    Raises :class:`SchemaTooNew`, touching nothing, when a newer mastertrail wrote it.
    """
    with translate_errors():
        sqlitefile.prepare(engine)
    with translate_errors(), schema_lock(engine) as conn:
        revision = current_revision(conn)
        if revision is not None and revision not in _known_revisions():
            raise SchemaTooNew(_too_new(revision))
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, to)
    texts.forget(engine)


def head_revision() -> str:
    """The newest schema revision this version of mastertrail knows."""
    return _known_revisions()[0]


def current_revision(conn: Connection) -> str | None:
    """The schema revision stored in the database, or None when it has no schema."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    row = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def check_schema(conn: Connection) -> None:
    """Raise unless the database holds exactly the schema this mastertrail writes."""
    revision = current_revision(conn)
    if revision is None:
        raise SchemaMissing("the database has no mastertrail schema: run `mastertrail upgrade`")
    if revision == head_revision():
        return
    if revision in _known_revisions():
        raise SchemaMissing(f"schema revision {revision} is old: run `mastertrail upgrade`")
    raise SchemaTooNew(_too_new(revision))


def _too_new(revision: str) -> str:
    return f"schema revision {revision} was written by a newer mastertrail; upgrade mastertrail"


@cache
def _known_revisions() -> tuple[str, ...]:
    script = ScriptDirectory.from_config(_config())
    return tuple(rev.revision for rev in script.walk_revisions())


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "eventstore:migrations")
    config.set_main_option("path_separator", "os")
    return config


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the lock that serialises schema changes across processes."""
    backend = engine.dialect.name
    if backend == "sqlite":
        with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock, held to commit
            begin_write(conn)
            yield conn
    elif backend == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            yield conn
    else:
        with engine.connect() as conn:
            got = conn.execute(
                sa.select(sa.func.get_lock(_LOCK_NAME, _MYSQL_LOCK_TIMEOUT))
            ).scalar()
            if got != 1:
                raise TimeoutError("timed out waiting for another mastertrail schema upgrade")
            try:
                yield conn
                conn.commit()
            finally:
                conn.execute(sa.select(sa.func.release_lock(_LOCK_NAME)))
                conn.commit()

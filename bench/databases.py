"""The databases the benchmark runs on: SQLite files in the output directory, and
databases of their own on the PostgreSQL and MariaDB servers, dropped at the end."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import sqlalchemy as sa

BACKENDS = ("sqlite", "postgresql", "mysql")

#: Where the server URLs come from, first match wins.
SERVER_ENV = {
    "postgresql": ("MASTERTRAIL_BENCH_POSTGRES_URL", "MASTERTRAIL_TEST_POSTGRES_URL"),
    "mysql": ("MASTERTRAIL_BENCH_MYSQL_URL", "MASTERTRAIL_TEST_MYSQL_URL"),
}

LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB"}


def server_url(backend: str) -> str | None:
    """The admin URL configured for a server backend, or None."""
    for variable in SERVER_ENV[backend]:
        value = os.environ.get(variable)
        if value:
            return value
    return None


@attrs.frozen
class Database:
    """One database: ``url`` for mastertrail's own engine, ``buildbot_url`` as Buildbot's
    ``c['db']['db_url']`` spells it."""

    backend: str
    url: str
    buildbot_url: str
    path: Path | None = None  # the file, on SQLite

    def sa_url(self) -> sa.URL:
        return sa.make_url(self.url)


@attrs.define
class Backend:
    """Creates and drops the benchmark's databases on one backend."""

    name: str
    workdir: Path
    admin_url: str | None = None
    run_id: str = attrs.field(factory=lambda: uuid.uuid4().hex[:8])
    created: list[Database] = attrs.field(factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def sqlite_database(self, path: Path) -> Database:
        url = f"sqlite:///{path}"
        return Database("sqlite", url, url, path)

    def new_database(self, label: str) -> Database:
        """A new, empty database (an existing SQLite file of that name is removed)."""
        if self.name == "sqlite":
            path = self.workdir / f"{label}.sqlite"
            remove_sqlite(path)
            database = self.sqlite_database(path)
        else:
            assert self.admin_url is not None
            name = f"mastertrail_bench_{label}_{self.run_id}"
            with self._admin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            url = sa.make_url(self.admin_url).set(database=name)
            text = url.render_as_string(hide_password=False)
            # Buildbot's MySQL engine defaults to MyISAM; InnoDB is what production uses.
            buildbot = text + "?storage_engine=InnoDB" if self.name == "mysql" else text
            database = Database(self.name, text, buildbot)
        self.created.append(database)
        return database

    def drop(self, database: Database) -> None:
        """Drop a database made by :meth:`new_database`."""
        if database.path is not None:
            remove_sqlite(database.path)
        else:
            name = database.sa_url().database
            with self._admin() as conn:
                if self.name == "postgresql":
                    conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    )
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        if database in self.created:
            self.created.remove(database)

    def drop_all(self) -> None:
        for database in list(self.created):
            with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
                self.drop(database)

    def server_version(self) -> str:
        if self.name == "sqlite":
            import sqlite3

            return sqlite3.sqlite_version
        with self._admin() as conn:
            query = "SHOW server_version" if self.name == "postgresql" else "SELECT VERSION()"
            return str(conn.exec_driver_sql(query).scalar())

    @contextlib.contextmanager
    def _admin(self) -> Iterator[sa.Connection]:
        assert self.admin_url is not None
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


def remove_sqlite(path: str | os.PathLike[str]) -> None:
    """Remove a SQLite database file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()

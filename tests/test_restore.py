"""A database restored under a running process, and a pool of one connection: no event
ever names a text other than the one it was hashed with, and a write needs one connection.

The restores are made with each database's own tools (the ``sqlite3`` shell, ``pg_dump`` /
``pg_restore``, ``mariadb-dump`` / ``mariadb``), on the test's private database."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore.engine import configure_sqlite
from mastertrail import Registry
from tests.conftest import FakeClock


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"{' or '.join(names)} is not installed")


class Backup:
    """A backup of the database at ``url``, taken and restored with the database's own
    tools while other connections to it stay open."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = sa.make_url(url)
        self.path = directory / "backup"

    def take(self) -> None:
        backend = self.url.get_backend_name()
        if backend == "sqlite":
            self._run([_tool("sqlite3"), self.url.database, f".backup {self.path}"])
        elif backend == "postgresql":
            self._run([_tool("pg_dump"), "-Fc", "-f", str(self.path), *self._pg()])
        else:
            dump = [_tool("mariadb-dump", "mysqldump"), *self._my(), "--single-transaction"]
            self.path.write_bytes(subprocess.run(dump, check=True, capture_output=True).stdout)

    def restore(self) -> None:
        backend = self.url.get_backend_name()
        if backend == "sqlite":
            self._run([_tool("sqlite3"), self.url.database, f".restore {self.path}"])
        elif backend == "postgresql":
            restore = [_tool("pg_restore"), "--clean", "--if-exists", *self._pg()]
            self._run([*restore, str(self.path)])
        else:
            with self.path.open("rb") as dump:
                client = [_tool("mariadb", "mysql"), *self._my()]
                subprocess.run(client, stdin=dump, check=True, capture_output=True)

    def _pg(self) -> list[str]:
        url = self.url
        return ["-h", str(url.host), "-p", str(url.port or 5432), "-U", str(url.username),
                "-d", str(url.database)]  # fmt: skip

    def _my(self) -> list[str]:
        url = self.url
        password = [f"--password={url.password}"] if url.password else []
        return ["-h", str(url.host), "-P", str(url.port or 3306), "-u", str(url.username),
                *password, str(url.database)]  # fmt: skip

    @staticmethod
    def _run(command: list[str | None]) -> None:
        subprocess.run([str(part) for part in command], check=True, capture_output=True)


class TestRestoreUnderARunningProcess:
    """A process that goes on writing after its database was restored from a backup, and
    another process stored new texts there, writes events that read back as written."""

    def test_events_keep_their_own_type_and_actor(
        self, db_url: str, clock: FakeClock, tmp_path: Path
    ) -> None:
        """After a restore and another process's new texts, every event decodes with the
        type and actor it was written with, and the chain verifies."""
        first = Registry(db_url, clock=clock, actor="first")
        first.upgrade()
        other = None
        try:
            alpha = first.find_master_id("alpha")
            backup = Backup(db_url, tmp_path)
            backup.take()
            for active in (True, False, True):  # texts the backup does not hold, remembered
                clock.advance(1)
                first.set_master_state(alpha, active)
            backup.restore()
            other = Registry(db_url, clock=clock, actor="other")
            clock.advance(1)
            bravo = other.find_master_id("bravo")  # stores new texts, perhaps under old ids
            other.set_master_state(bravo, True)
            clock.advance(1)
            assert first.set_master_state(alpha, True)
            clock.advance(1)
            assert first.set_master_state(alpha, False)
            events = [(e.master_id, e.type, e.metadata["actor"]) for e in first.events()]
            assert events == [
                (alpha, "master.registered", "first"),
                (bravo, "master.registered", "other"),
                (bravo, "master.activated", "other"),
                (alpha, "master.activated", "first"),
                (alpha, "master.deactivated", "first"),
            ]
            report = first.verify()
            assert report.ok, report.problems
        finally:
            first.close()
            if other is not None:
                other.close()


def one_connection_engine(db_url: str) -> Engine:
    """An engine whose pool holds one connection and never opens another."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=5)
        configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=5)


class TestOneConnectionPerWrite:
    """A write needs exactly one pooled connection, storing new texts included."""

    def test_first_writes_of_many_threads_share_a_pool_of_one(
        self, db_url: str, clock: FakeClock
    ) -> None:
        """20 threads making their first writes at once, each with texts of its own, all
        succeed through a pool of one connection."""
        Registry(db_url, clock=clock).upgrade()
        engine = one_connection_engine(db_url)
        registries = [Registry(engine, clock=clock, actor=f"actor-{n}") for n in range(20)]
        start, failures = threading.Barrier(len(registries)), []

        def first_writes(registry: Registry, n: int) -> None:
            start.wait()
            try:
                master_id = registry.find_master_id(f"master-{n}")
                registry.set_master_state(master_id, True)
            except Exception as error:  # reported below, with the others
                failures.append(error)

        threads = [
            threading.Thread(target=first_writes, args=(registry, n))
            for n, registry in enumerate(registries)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        try:
            assert not failures
            events = list(registries[0].events())
            assert len(events) == 40
            assert {(e.type, e.metadata["actor"]) for e in events} == {
                (kind, f"actor-{n}")
                for n in range(20)
                for kind in ("master.registered", "master.activated")
            }
            assert registries[0].verify().ok
        finally:
            engine.dispose()

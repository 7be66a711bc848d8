"""Creating and checking the log's schema: idempotent, safe from several processes at once,
and kept apart from any other alembic history in the same database."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from eventstore import SchemaMissing, SchemaTooNew
from tests.eventstore_support import new_event
from tests.migrations_support import (
    assert_schema_once,
    tables,
)

SPAWN = multiprocessing.get_context("spawn")


UPGRADERS = 4


#: Seconds a process may take to upgrade (never reached when healthy).
DEADLINE = 120.0


def upgrade_when_released(url: str, start: Barrier) -> None:
    """Upgrade the schema at ``url`` as soon as every process is ready."""
    engine = eventstore.create_engine(url)
    start.wait()
    eventstore.upgrade(engine)
    engine.dispose()


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database, without the log's schema."""
    engine = eventstore.create_engine(db_url)
    yield engine
    engine.dispose()


class TestUpgrade:
    """eventstore.upgrade creates the schema and is safe to repeat."""

    def test_upgrade_creates_the_schema_under_its_own_version_table(self, bare: Engine) -> None:
        """A fresh database gets the log tables, versioned in mastertrail_alembic_version only."""
        eventstore.upgrade(bare)
        assert_schema_once(bare)
        assert "alembic_version" not in tables(bare)
        with bare.begin() as conn:
            assert eventstore.head_position(conn) == 0

    def test_upgrade_is_idempotent(self, bare: Engine) -> None:
        """Upgrading an up-to-date schema again changes nothing and keeps the events."""
        eventstore.upgrade(bare)
        with bare.begin() as conn:
            eventstore.append(conn, 1, 0, [new_event()])
        eventstore.upgrade(bare)
        eventstore.upgrade(bare)
        assert_schema_once(bare)
        with bare.begin() as conn:
            assert eventstore.head_position(conn) == 1
            assert len(eventstore.read_stream(conn, 1)) == 1
        assert eventstore.verify_chain(bare).ok

    def test_upgrade_leaves_another_alembic_history_alone(self, bare: Engine) -> None:
        """A database with its own alembic_version (Buildbot's) keeps it untouched."""
        with bare.begin() as conn:
            conn.execute(
                sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            )
            conn.execute(sa.text("INSERT INTO alembic_version VALUES ('buildbot_0042')"))
        eventstore.upgrade(bare)
        assert_schema_once(bare)
        with bare.begin() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            assert rows.all() == ["buildbot_0042"]

    @pytest.mark.slow
    def test_concurrent_upgrades_all_succeed_and_create_the_schema_once(
        self, db_url: str, bare: Engine
    ) -> None:
        """Four processes upgrading a fresh database at once all succeed; the schema exists once."""
        start = SPAWN.Barrier(UPGRADERS + 1)
        processes = [
            SPAWN.Process(target=upgrade_when_released, args=(db_url, start), daemon=True)
            for _ in range(UPGRADERS)
        ]
        for process in processes:
            process.start()
        try:
            start.wait(timeout=DEADLINE)
            for process in processes:
                process.join(timeout=DEADLINE)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
        assert [process.exitcode for process in processes] == [0] * UPGRADERS
        assert_schema_once(bare)
        with bare.begin() as conn:
            assert eventstore.append(conn, 1, 0, [new_event()]).positions == (1,)


class TestCheckSchema:
    """check_schema tells a missing or foreign schema apart from the expected one."""

    def test_empty_database_is_schema_missing(self, bare: Engine) -> None:
        """A database without the schema raises SchemaMissing."""
        with bare.connect() as conn, pytest.raises(SchemaMissing, match="upgrade"):
            eventstore.check_schema(conn)

    def test_version_table_without_a_row_is_schema_missing(self, bare: Engine) -> None:
        """An emptied version table counts as no schema."""
        eventstore.upgrade(bare)
        with bare.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_alembic_version"))
        with bare.connect() as conn, pytest.raises(SchemaMissing):
            eventstore.check_schema(conn)

    def test_unknown_revision_is_schema_too_new(self, bare: Engine) -> None:
        """A version table holding a revision this code does not know raises SchemaTooNew."""
        eventstore.upgrade(bare)
        with bare.begin() as conn:
            conn.execute(sa.text("UPDATE mastertrail_alembic_version SET version_num = 'f00d'"))
        with bare.connect() as conn, pytest.raises(SchemaTooNew) as caught:
            eventstore.check_schema(conn)
        assert isinstance(caught.value, eventstore.RegistryError)
        assert "f00d" in str(caught.value)

    def test_current_schema_passes(self, engine: Engine) -> None:
        """An upgraded database is at the newest revision, which check_schema accepts."""
        with engine.connect() as conn:
            assert eventstore.current_revision(conn) == newest_revision()
            eventstore.check_schema(conn)

    def test_an_older_revision_is_schema_missing(self, engine: Engine) -> None:
        """A database at a revision this code knows but that is not the newest raises
        SchemaMissing, naming the revision and the upgrade that brings it up to date."""
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE mastertrail_alembic_version SET version_num = '0001'"))
        with engine.connect() as conn, pytest.raises(SchemaMissing, match=r"0001.*upgrade"):
            eventstore.check_schema(conn)


def newest_revision() -> str:
    """The revision no other migration builds on, read from the migration scripts."""
    versions = Path(eventstore.__file__).parent / "migrations" / "versions"
    found = {}
    for script in versions.glob("0*.py"):
        text = script.read_text()
        revision = re.search(r'^revision = "([^"]+)"', text, re.M)
        down = re.search(r'^down_revision = "([^"]+)"', text, re.M)
        assert revision is not None, script
        found[revision[1]] = None if down is None else down[1]
    (newest,) = set(found) - set(found.values())
    return newest

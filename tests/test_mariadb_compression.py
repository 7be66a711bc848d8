"""MariaDB keeps the log's table in compressed pages (revision
``0012_mariadb_page_compression``): the file holds far fewer blocks than InnoDB's pages
count, the log reads and verifies as before, and a server that cannot rebuild the table
leaves it as it is and says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from alembic import command

import eventstore
from bench.databases import Database
from bench.docs_page import _storage_parts
from bench.history import HistoryPlan, rows
from bench.replay import storage
from eventstore.bulk import load
from eventstore.migrate import _config as migrate_config
from eventstore.migrate import current_revision, schema_lock
from mastertrail import Registry
from tests.conftest import FakeClock

pytestmark = pytest.mark.parametrize("backend", ["mysql"])

BEFORE = "0011_mariadb_guard_fast_path"
EVENTS = 20_000


def compressed(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        options = conn.exec_driver_sql(
            "SELECT create_options FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'mastertrail_events'"
        ).scalar()
    return "`PAGE_COMPRESSED`='1'" in str(options)


def on_disk(engine: sa.Engine) -> tuple[int, int]:
    """The bytes of the log table's file on disk and of InnoDB's pages in it, once its
    changed pages are written to the file."""
    with engine.connect() as conn:
        conn.exec_driver_sql("FLUSH TABLES mastertrail_events FOR EXPORT")
        conn.exec_driver_sql("UNLOCK TABLES")
        conn.exec_driver_sql("ANALYZE TABLE mastertrail_events").all()
        allocated = conn.exec_driver_sql(
            "SELECT allocated_size FROM information_schema.innodb_sys_tablespaces "
            "WHERE name = CONCAT(DATABASE(), '/mastertrail_events')"
        ).scalar_one()
        pages = conn.exec_driver_sql(
            "SELECT data_length + index_length FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'mastertrail_events'"
        ).scalar_one()
    return int(allocated), int(pages)


@pytest.fixture
def older(db_url: str, clock: FakeClock) -> Iterator[Registry]:
    """A registry on a database whose log is at the revision before compression."""
    registry = Registry(db_url, clock=clock, actor="tester")
    eventstore.upgrade(registry.engine, to=BEFORE)
    yield registry
    registry.close()


@contextlib.contextmanager
def table_held(engine: sa.Engine) -> Iterator[None]:
    """A transaction that has read the log's table, holding its metadata lock until the
    block ends, as a long report would."""
    with engine.connect() as conn:
        conn.exec_driver_sql("START TRANSACTION")
        conn.exec_driver_sql("SELECT COUNT(*) FROM mastertrail_events").all()
        try:
            yield
        finally:
            conn.rollback()


def test_a_new_log_is_written_in_compressed_pages(registry: Registry) -> None:
    registry.upgrade()
    assert compressed(registry.engine)
    load(registry.engine, rows(HistoryPlan(EVENTS, masters=3)))
    allocated, pages = on_disk(registry.engine)
    # Uncompressed, the file holds every page whole and more (its free extents).
    assert allocated < 0.6 * pages, (allocated, pages)
    assert allocated / EVENTS < 100


def test_upgrading_a_log_compresses_it_and_keeps_every_event(older: Registry) -> None:
    registry = older
    assert not compressed(registry.engine)
    load(registry.engine, rows(HistoryPlan(EVENTS, masters=3)))
    registry.upgrade()
    before = [(e.position, e.hash) for e in registry.events()]
    assert compressed(registry.engine)
    registry.rebuild()
    assert registry.verify().ok
    assert [(e.position, e.hash) for e in registry.events()] == before
    assert len(before) == EVENTS
    allocated, pages = on_disk(registry.engine)
    assert allocated < 0.6 * pages, (allocated, pages)


def test_downgrading_writes_whole_pages_again(registry: Registry) -> None:
    with schema_lock(registry.engine) as conn:
        config = migrate_config()
        config.attributes["connection"] = conn
        command.downgrade(config, BEFORE)
        assert current_revision(conn) == BEFORE
    assert not compressed(registry.engine)


def test_a_table_held_by_a_long_transaction_is_left_uncompressed(older: Registry) -> None:
    registry = older
    with structlog.testing.capture_logs() as logs, table_held(registry.engine):
        registry.upgrade()
    assert not compressed(registry.engine)
    skipped = [entry for entry in logs if entry["event"] == "page_compression_skipped"]
    assert len(skipped) == 1
    assert "Lock wait timeout" in skipped[0]["reason"]
    assert "PAGE_COMPRESSED = 1" in skipped[0]["hint"]
    with registry.engine.connect() as conn:
        eventstore.check_schema(conn)  # at the newest revision all the same


def test_the_archives_rebuild_keeps_the_pages_compressed(
    registry: Registry, tmp_path: Path
) -> None:
    load(registry.engine, rows(HistoryPlan(EVENTS, masters=3)))
    registry.rebuild()
    with structlog.testing.capture_logs() as logs:
        registry.archive(before=EVENTS - 1000, to=tmp_path)
    assert not [entry for entry in logs if entry["log_level"] == "warning"]  # it was rebuilt
    assert compressed(registry.engine)
    allocated, pages = on_disk(registry.engine)
    assert allocated < 0.6 * pages, (allocated, pages)


def test_the_benchmark_counts_the_blocks_on_disk(registry: Registry, db_url: str) -> None:
    """The storage section's total is what the file holds on disk; InnoDB's whole pages,
    which ``data_length`` counts, are given beside it on the page."""
    load(registry.engine, rows(HistoryPlan(EVENTS, masters=3)))
    found = storage(Database("mysql", db_url, db_url))
    allocated, pages = on_disk(registry.engine)
    assert found["events"] == EVENTS
    assert found["bytes_per_event"] < 0.6 * found["pages_bytes_per_event"]
    assert found["bytes_per_event"] >= allocated / EVENTS  # and the texts' file
    assert found["pages_bytes_per_event"] >= pages / EVENTS
    line = _storage_parts({"storage": [found]})
    assert f"{found['bytes_per_event']:.0f} in all on disk" in line
    assert f"InnoDB's pages whole, {found['pages_bytes_per_event']:.0f}" in line


def test_an_operators_choice_of_whole_pages_is_kept(registry: Registry) -> None:
    with registry.engine.connect() as conn:
        conn.exec_driver_sql("SET SESSION system_versioning_alter_history = KEEP")
        conn.exec_driver_sql(
            "ALTER TABLE mastertrail_events PAGE_COMPRESSED = 0, ALGORITHM = INPLACE, LOCK = NONE"
        )
    assert not compressed(registry.engine)
    registry.upgrade()
    eventstore.upgrade(registry.engine)
    assert not compressed(registry.engine)

"""What a run of the archive costs MariaDB's readers and the run itself.

A run that archived most of the log leaves no index entries for reads to step over: the
archived rows' entries stay delete-marked until InnoDB's purge removes them, and the
stream index's seeks in ``masters_as_of`` (each master's first event in the table, the
loose scan of the master ids) land in front of them. Here a snapshot older than the run
holds the purge back, as any long transaction on the server would.

The transaction recording a segment reads in proportion to the segment, not to what was
archived before it (whose history rows stay in the stream index until the run ends)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

import eventstore.engine
from bench.history import HistoryPlan, rows
from eventstore import archive_tidy
from eventstore.bulk import load
from mastertrail import Registry
from tests.conftest import FakeClock

pytestmark = pytest.mark.parametrize("backend", ["mysql"])

#: The generated log: masters checking in in turn, most of it archived.
EVENTS, ARCHIVED = 30_000, 27_000


@pytest.fixture
def long_log(registry: Registry) -> Registry:
    registry.upgrade()
    load(registry.engine, rows(HistoryPlan(EVENTS, masters=3)))
    registry.rebuild()
    return registry


def pages_read(registry: Registry, position: int) -> int:
    """The index and table pages InnoDB accessed for the statements of the log's table
    that ``masters_as_of(position)`` sends, each run again under ``ANALYZE FORMAT=JSON``
    (MariaDB 10.9 and later)."""
    sent = statements(registry.engine)
    registry.masters_as_of(position)
    total = 0
    with registry.engine.connect() as conn:
        for sql, parameters in sent:
            if sql.lstrip().upper().startswith(("SELECT", "WITH")) and "mastertrail_events" in sql:
                found = conn.exec_driver_sql(f"ANALYZE FORMAT=JSON {sql}", parameters)
                total += _pages(json.loads(found.scalar_one())["query_block"])
    return total


def _pages(node: Any) -> int:
    if isinstance(node, dict):
        own = node.get("r_engine_stats", {}).get("pages_accessed", 0)
        return int(own) + sum(_pages(value) for value in node.values())
    if isinstance(node, list):
        return sum(_pages(value) for value in node)
    return 0


@contextlib.contextmanager
def purge_held(engine: sa.Engine, *, table: str = "mastertrail_head") -> Iterator[None]:
    """A transaction whose snapshot, older than anything the block does, keeps InnoDB's
    purge from removing what the block deletes (it reads ``table`` only, so it holds no
    lock on another)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        conn.exec_driver_sql(f"SELECT count(*) FROM {table}").all()
        try:
            yield
        finally:
            conn.rollback()


def statements(engine: sa.Engine) -> list[tuple[str, Any]]:
    """Every statement ``engine`` sends from now on, with its parameters."""
    sent: list[tuple[str, Any]] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2:4]))
    return sent


class TestArchivedEntries:
    def test_reads_after_a_run_step_over_no_archived_entry(
        self, long_log: Registry, tmp_path: Path
    ) -> None:
        """With the purge held back, the hot log's reading accesses no more pages after a
        run that archived nine tenths of it than before (without the rebuild, it accessed
        the pages of every archived row's entries)."""
        before = pages_read(long_log, EVENTS)
        assert before > 0
        with purge_held(long_log.engine):
            report = long_log.archive(before=ARCHIVED + 1, to=tmp_path)
            assert report.events == ARCHIVED
            after = pages_read(long_log, EVENTS)
        assert after <= before
        assert long_log.verify().ok

    def test_a_run_that_archived_less_than_the_table_keeps_does_not_rebuild(
        self, long_log: Registry, tmp_path: Path
    ) -> None:
        """A rebuild costs what the table keeps: a run that deleted fewer rows leaves their
        entries to the purge; the next, which deletes more than are left, rebuilds."""
        sent = statements(long_log.engine)
        long_log.archive(before=EVENTS // 4, to=tmp_path)
        assert not [sql for sql, _ in sent if "ALTER TABLE" in sql]
        long_log.archive(before=ARCHIVED + 1, to=tmp_path)
        assert len([sql for sql, _ in sent if "ALTER TABLE" in sql]) == 1

    def test_a_table_held_by_a_long_read_is_not_rebuilt(
        self, long_log: Registry, tmp_path: Path
    ) -> None:
        """A transaction that read the log holds its metadata lock: the rebuild gives up
        after ``REBUILD_LOCK_WAIT`` seconds, not to keep appends waiting behind it, and
        says so; the run is done all the same."""
        engine = long_log.engine
        with (
            purge_held(engine, table="mastertrail_events"),
            structlog.testing.capture_logs() as logs,
        ):
            report = long_log.archive(before=ARCHIVED + 1, to=tmp_path)
        assert report.events == ARCHIVED
        skipped = [entry for entry in logs if entry["event"] == "archive_rebuild_skipped"]
        assert len(skipped) == 1
        assert "Lock wait timeout" in skipped[0]["reason"]
        assert archive_tidy.REBUILD_LOCK_WAIT <= 1
        master_id = long_log.find_master_id("a:/m")
        assert long_log.set_master_state(master_id, True)
        assert long_log.verify().ok


def handler_reads(engine: sa.Engine, prefix: str) -> list[int]:
    """The index and table entries the server reads (its ``Handler_read_*`` counters) for
    each statement ``engine`` sends from now on that starts with ``prefix``."""
    found: list[int] = []

    def counters(cursor: Any) -> int:
        raw = cursor.connection.cursor()
        raw.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
        total = sum(int(value) for _name, value in raw.fetchall())
        raw.close()
        return total

    def before(_conn: Any, cursor: Any, sql: str, *_args: Any) -> None:
        if sql.startswith(prefix):
            found.append(-counters(cursor))

    def after(_conn: Any, cursor: Any, sql: str, *_args: Any) -> None:
        if sql.startswith(prefix):
            found[-1] += counters(cursor)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    return found


class TestSegmentTransaction:
    def test_finding_the_tips_reads_no_more_for_the_last_segment_than_the_first(
        self, long_log: Registry, tmp_path: Path
    ) -> None:
        """Each segment's masters' newest events are checked for a next version with one
        seek each: the last segment of a run reads as much as the first (a search of any
        later version read every entry of the master from its first, history rows of the
        segments before included)."""
        reads = handler_reads(long_log.engine, "INSERT INTO mastertrail_archive_tips")
        report = long_log.archive(before=ARCHIVED + 1, to=tmp_path)
        assert len(reads) == report.segments > 10
        assert max(reads) <= reads[0] + 10


class TestTidyingTakesItsTime:
    def test_steps_longer_than_the_engines_read_timeout_end(
        self,
        db_url: str,
        clock: FakeClock,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Removing a year's history rows, or rebuilding the table, takes longer than the
        engine waits for an answer to a call (measured: 4.8 million history rows outlived
        30 s). Here the engine waits 1 s and each step first sleeps 2 s on the server: the
        steps end, and the connection waits 1 s again after them."""
        monkeypatch.setattr(eventstore.engine, "MYSQL_READ_TIMEOUT", 1)
        registry = Registry(db_url, clock=clock, actor="tester")
        try:
            registry.upgrade()
            load(registry.engine, rows(HistoryPlan(EVENTS, masters=3)))
            registry.rebuild()
            with registry.engine.connect() as conn, pytest.raises(sa.exc.OperationalError):
                conn.exec_driver_sql("SELECT SLEEP(2)")  # the engine's timeout is real
            real = sa.Connection.exec_driver_sql
            slow: list[str] = []

            def exec_driver_sql(self: sa.Connection, sql: str, *args: Any, **kw: Any) -> Any:
                if sql.startswith("DELETE HISTORY") or "ALTER TABLE" in sql:
                    slow.append(sql)
                    real(self, "SELECT SLEEP(2)")
                return real(self, sql, *args, **kw)

            with monkeypatch.context() as patch, structlog.testing.capture_logs() as logs:
                patch.setattr(sa.Connection, "exec_driver_sql", exec_driver_sql)
                report = registry.archive(before=ARCHIVED + 1, to=tmp_path)
            assert report.events == ARCHIVED
            assert len(slow) == 2  # the history removed, then the table rebuilt
            assert not [e for e in logs if e["event"].startswith("archive_") and "reason" in e]
            with registry.engine.connect() as conn:
                kept = conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM mastertrail_events FOR SYSTEM_TIME ALL"
                ).scalar_one()
                assert kept == EVENTS - ARCHIVED  # no history row left
                with pytest.raises(sa.exc.OperationalError):
                    conn.exec_driver_sql("SELECT SLEEP(2)")
            assert registry.verify().ok
        finally:
            registry.close()

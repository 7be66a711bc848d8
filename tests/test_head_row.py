"""The log's head row gone or garbled: ``verify`` reports it, ``rebuild`` (and, when it is
missing, ``upgrade``) restores it from the log, and no write is ever dropped silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastertrail import HeadMissing, LogDamaged, Registry, ViewRowMissing
from tests.conftest import FakeClock
from tests.tamper_support import count_events, tamper


@pytest.fixture
def pair(registry: Registry, clock: FakeClock) -> Registry:
    """Two masters (ids 1, 2), both active, positions 1-4."""
    for name in ("alpha:/srv", "bravo:/srv"):
        registry.set_master_state(registry.find_master_id(name), True)
    clock.advance(60)
    assert registry.verify().ok
    return registry


def other(registry: Registry, clock: FakeClock) -> Registry:
    """A second registry (another process) on the same database, which has written nothing."""
    return Registry(registry.engine, clock=clock, actor="other")


class TestMissingHeadRow:
    def test_verify_reports_it(self, pair: Registry) -> None:
        """verify returns a report naming the missing head row, never raising."""
        tamper(pair.engine, "DELETE FROM mastertrail_head")
        report = pair.verify()
        assert not report.ok
        assert [p.kind for p in report.problems] == ["chain"]
        assert "head row" in report.problems[0].detail
        assert "missing" in report.problems[0].detail

    def test_registering_a_new_name_raises_and_writes_nothing(self, pair: Registry) -> None:
        """find_master_id of a new name raises HeadMissing and appends nothing."""
        tamper(pair.engine, "DELETE FROM mastertrail_head")
        with pytest.raises(HeadMissing):
            pair.find_master_id("charlie:/srv")
        assert count_events(pair.engine) == 4
        assert [m.name for m in pair.get_masters()] == ["alpha:/srv", "bravo:/srv"]

    @pytest.mark.parametrize("writer", ["same process", "other process"])
    def test_a_heartbeat_raises_and_writes_nothing(
        self, pair: Registry, clock: FakeClock, writer: str
    ) -> None:
        """A heartbeat of a known master raises HeadMissing instead of returning False,
        from the process that wrote it last as from another one."""
        tamper(pair.engine, "DELETE FROM mastertrail_head")
        clock.advance(60)
        registry = pair if writer == "same process" else other(pair, clock)
        with pytest.raises(HeadMissing):
            registry.set_master_state(1, True)
        with pytest.raises(HeadMissing):
            registry.set_master_state(2, False)
        assert count_events(pair.engine) == 4

    def test_rebuild_restores_it_from_the_log(self, pair: Registry, clock: FakeClock) -> None:
        """After rebuild the head is the log's last event again: verify is clean and the
        next writes chain on."""
        tamper(pair.engine, "DELETE FROM mastertrail_head")
        assert pair.rebuild() == 4
        assert pair.verify().ok
        clock.advance(60)
        assert pair.find_master_id("charlie:/srv") == 3
        pair.set_master_state(1, True)
        assert count_events(pair.engine) == 6
        assert pair.verify().ok

    def test_upgrade_restores_it(self, pair: Registry) -> None:
        """upgrade (which a buildmaster runs at start) restores a missing head row."""
        tamper(pair.engine, "DELETE FROM mastertrail_head")
        pair.upgrade()
        assert pair.verify().ok
        assert pair.find_master_id("charlie:/srv") == 3


#: A trigger refusing every insert into the head row, per dialect.
REFUSE_INSERT = {
    "sqlite": [
        "CREATE TRIGGER refuse_head BEFORE INSERT ON mastertrail_head "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_head() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_head BEFORE INSERT ON mastertrail_head "
        "FOR EACH ROW EXECUTE FUNCTION refuse_head()",
    ],
    "mysql": [
        "CREATE TRIGGER refuse_head BEFORE INSERT ON mastertrail_head "
        "FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'"
    ],
}


class TestRestoreRefused:
    def test_a_restore_the_database_refuses_is_a_typed_error(self, pair: Registry) -> None:
        """A head row the database will not let rebuild restore (a trigger refusing it)
        raises LogDamaged, not a driver's error, and writes nothing."""
        tamper(pair.engine, "DELETE FROM mastertrail_head")
        with pair.engine.begin() as conn:
            for statement in REFUSE_INSERT[pair.engine.dialect.name]:
                conn.exec_driver_sql(statement)
        with pytest.raises(LogDamaged, match="refused"):
            pair.rebuild()
        with pytest.raises(HeadMissing):
            pair.find_master_id("charlie:/srv")


class TestGarbledHeadRow:
    @pytest.mark.parametrize(
        "garbling",
        [
            "UPDATE mastertrail_head SET position = 2",
            "UPDATE mastertrail_head SET position = 9",
            "UPDATE mastertrail_head SET hash = (SELECT hash FROM mastertrail_events "
            "WHERE position = 1)",
        ],
        ids=["moved-back", "moved-ahead", "hash"],
    )
    def test_verify_reports_it_and_rebuild_restores_it(self, pair: Registry, garbling: str) -> None:
        """A head row whose position or hash is not the log's last event is reported, and
        rebuild sets it back."""
        tamper(pair.engine, garbling)
        assert not pair.verify().ok
        pair.rebuild()
        assert pair.verify().ok
        pair.set_master_state(1, False)
        assert pair.verify().ok

    def test_a_highest_master_id_below_the_log_is_reported_and_restored(
        self, pair: Registry
    ) -> None:
        """A head row whose highest master id is below one the log uses (which would give
        a used id to a new master) is reported, and rebuild raises it again."""
        tamper(pair.engine, "UPDATE mastertrail_head SET last_master_id = 0")
        report = pair.verify()
        assert [p.kind for p in report.problems] == ["chain"]
        assert "highest master id" in report.problems[0].detail
        pair.rebuild()
        assert pair.verify().ok
        assert pair.find_master_id("charlie:/srv") == 3

    def test_a_highest_master_id_below_an_archived_master_is_reported(
        self, pair: Registry, tmp_path: Path
    ) -> None:
        """The highest master's whole stream archived, a head row whose highest master id
        is below it is reported, and rebuild raises it again."""
        pair.set_master_state(1, False)
        pair.archive(before=5, to=tmp_path)  # bravo's events, and alpha's but the last
        tamper(pair.engine, "UPDATE mastertrail_head SET last_master_id = 1")
        report = pair.verify()
        assert [p.kind for p in report.problems] == ["chain"]
        assert "highest master id is 1" in report.problems[0].detail
        pair.rebuild()
        assert pair.verify().ok
        assert pair.find_master_id("charlie:/srv") == 3


class TestViewRowMissing:
    def test_a_heartbeat_of_a_master_without_its_row_raises(
        self, pair: Registry, clock: FakeClock
    ) -> None:
        """A master the log knows whose masters row was deleted is not 'unknown': its
        heartbeat raises ViewRowMissing naming it and appends nothing, where an id the log
        does not know still returns False."""
        tamper(pair.engine, "DELETE FROM masters WHERE id = 2")
        registry = other(pair, clock)
        with pytest.raises(ViewRowMissing) as raised:
            registry.set_master_state(2, True)
        assert raised.value.master_id == 2
        assert count_events(pair.engine) == 4
        assert registry.set_master_state(99, True) is False

    def test_the_process_that_wrote_it_last_never_drops_the_heartbeat(
        self, pair: Registry, clock: FakeClock
    ) -> None:
        """The process that wrote the master's newest event may append after it without
        reading the row: then the event is in the log (verify reports the missing row and
        rebuild restores it with that event); else it raises ViewRowMissing."""
        tamper(pair.engine, "DELETE FROM masters WHERE id = 2")
        clock.advance(60)
        try:
            pair.set_master_state(2, True)
        except ViewRowMissing:
            assert count_events(pair.engine) == 4
            return
        assert count_events(pair.engine) == 5
        assert [(p.kind, p.master_id) for p in pair.verify().problems] == [("view", 2)]
        pair.rebuild()
        assert pair.verify().ok
        master = pair.get_master(2)
        assert master is not None
        assert master.last_active.timestamp() == clock.now

"""Sealing past a stream's newest event: a master that stopped long ago no longer holds
the archive back, and when it comes back its stream goes on from its archived tip."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import eventstore
from eventstore import AfterOwn, ConcurrencyError, Tip, append
from mastertrail import Registry
from tests.archive_support import BRAVO, build_log, differences, hot_rows, readings
from tests.conftest import FakeClock
from tests.eventstore_support import new_event

TIPS = "mastertrail_archive_tips"


def versions(registry: Registry, master_id: int) -> list[int]:
    return [e.version for e in registry.events() if e.master_id == master_id]


def tips(registry: Registry) -> list[tuple[int, int, int]]:
    with registry.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT master_id, version, position FROM {TIPS} ORDER BY master_id, version"
        )
        return [tuple(row) for row in rows]


class TestSealingPastTheNewestEvents:
    def test_the_whole_log_archived_answers_as_before(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """Every event archived, each master's newest included (its whole stream sealed):
        every reading answers as before, and each master's tip is recorded once."""
        fleet = build_log(registry, clock)
        before = readings(registry, fleet, tmp_path)
        last = before["log position"]
        report = registry.archive(before=last + 1, to=tmp_path / "segments")
        assert report.through == report.events == last
        assert hot_rows(registry) == 0
        newest = {}
        for event in before["events"]:
            newest[event.master_id] = (event.master_id, event.version, event.position)
        assert tips(registry) == sorted(newest.values())
        assert differences(before, readings(registry, fleet, tmp_path)) == []

    def test_a_stopped_master_comes_back(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """A master silent long ago, archived past its last event, registers and checks in
        again: same id, its versions go on with no gap, and the log verifies."""
        fleet = build_log(registry, clock)
        bravo = fleet.ids[BRAVO]
        old = versions(registry, bravo)
        registry.archive(before=registry.log_position() + 1, to=tmp_path / "segments")
        back = Registry(registry.engine, clock=clock, actor=BRAVO)
        clock.advance(60)
        assert back.find_master_id(BRAVO) == bravo
        assert back.set_master_state(bravo, False) is True  # it was left active
        clock.advance(60)
        assert back.set_master_state(bravo, True) is True
        assert versions(registry, bravo) == list(range(1, len(old) + 3))
        assert registry.verify().ok
        assert hot_rows(registry) == 2
        # Archived again, past the tips it wrote since: the newer tip is the one read.
        registry.archive(before=registry.log_position() + 1, to=tmp_path / "segments")
        clock.advance(60)
        assert back.set_master_state(bravo, False) is True
        assert versions(registry, bravo) == list(range(1, len(old) + 4))
        assert [m.active for m in registry.get_masters() if m.id == bravo] == [False]
        assert registry.verify().ok

    def test_a_chained_append_onto_an_archived_event_is_a_conflict(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """An append after the caller's own event, sealed since, is refused as a conflict
        and writes nothing; the stream's version is still its archived tip's."""
        master = registry.find_master_id("alpha:/srv")
        registry.set_master_state(master, True)
        position = registry.log_position()
        with registry.engine.connect() as conn:
            stored = conn.exec_driver_sql(
                f"SELECT hash FROM mastertrail_events WHERE position = {position}"
            ).scalar_one()
        registry.archive(before=position + 1, to=tmp_path)
        event = new_event("master.checked_in", {"last_active": int(clock())})
        with registry.engine.connect() as conn, pytest.raises(ConcurrencyError), conn.begin():
            append(conn, master, AfterOwn(2, Tip(position, bytes(stored))), [event])
        assert registry.log_position() == position
        with registry.engine.connect() as conn:
            assert eventstore.stream_version(conn, master) == 2
        assert registry.set_master_state(master, False) is True
        assert versions(registry, master) == [1, 2, 3]


class TestTheTipsGuard:
    @pytest.mark.parametrize(
        "statement",
        [
            f"UPDATE {TIPS} SET version = version + 1",
            f"DELETE FROM {TIPS}",
            f"INSERT INTO {TIPS} (master_id, version, hash, position) "
            "SELECT master_id, version + 1, hash, position FROM mastertrail_events",
        ],
    )
    def test_refuses_all_but_a_true_tip(
        self, registry: Registry, clock: FakeClock, tmp_path: Path, statement: str
    ) -> None:
        """The tips are append-only, and a row naming no event of the log is refused."""
        master = registry.find_master_id("alpha:/srv")
        registry.set_master_state(master, True)
        registry.archive(before=3, to=tmp_path)
        registry.find_master_id("bravo:/srv")  # an event in the table to name
        before = tips(registry)
        assert before == [(master, 2, 2)]
        with registry.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError), conn.begin():
            conn.exec_driver_sql(statement)
        assert tips(registry) == before

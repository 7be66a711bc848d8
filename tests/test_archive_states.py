"""The masters' states where the archive ends, recorded in the database with each segment:
a reading of the table needs no segment, and the states are the fold of the log."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import eventstore
from mastertrail import Registry
from projections.snapshots import fold_snapshots
from tests.archive_support import MOMENTS, at, build_log
from tests.conftest import FakeClock
from tests.tamper_support import drop_guards

STATES = "mastertrail_archive_states"


def hot_readings(registry: Registry, sealed: int, moments: list[dt.datetime]) -> dict[str, Any]:
    """Every ``masters_as_of`` from the archive's last position ``sealed`` on: at each
    position to past the log's end, at ``moments`` (the first: the archive's last event's)
    and at later ones; and what Buildbot reads."""
    last = registry.log_position()
    values: dict[str, Any] = {
        f"as of @{position}": registry.masters_as_of(position)
        for position in range(sealed, last + 2)
    }
    later = (w for w in (*MOMENTS, at(1900.5), at(2400.5)) if w > moments[0])
    for when in (*moments, *later):
        values[f"as of {when}"] = registry.masters_as_of(when)
    values["masters"] = registry.get_masters()
    values["master 1"] = registry.get_master(1)
    return values


def recorded(registry: Registry) -> list[tuple[int, int, int]]:
    """The rows recorded: (master, archived through, version)."""
    with registry.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT master_id, archived_through, version FROM {STATES} "
            "ORDER BY archived_through, master_id"
        )
        return [tuple(row) for row in rows]


def moments_from(registry: Registry, sealed: int) -> list[dt.datetime]:
    """The moments of the archive's last event (at ``sealed``) and of the two after it."""
    return [e.recorded_at for e in registry.events(after=sealed - 1, limit=3)]


def forget_states(registry: Registry) -> None:
    """Make the database as an archive sealed before the states were recorded left it."""
    with registry.engine.begin() as conn:
        drop_guards(conn, (STATES,))
        conn.exec_driver_sql(f"DELETE FROM {STATES}")


class TestHotReadingsWithoutSegments:
    def test_answer_as_before_archiving_with_the_segments_gone(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """Archived in two runs and the segments' directory removed, masters_as_of at every
        position and moment of the table (and at the archive's last position and event),
        get_masters and get_master answer exactly as before archiving."""
        build_log(registry, clock)
        last = registry.log_position()
        cuts = (last // 4, last // 2)
        moments = moments_from(registry, cuts[1] - 1)
        expected = hot_readings(registry, cuts[1] - 1, moments)
        for cut in cuts:
            registry.archive(before=cut, to=tmp_path / "segments")
        shutil.rmtree(tmp_path / "segments")
        assert hot_readings(registry, cuts[1] - 1, moments) == expected

    def test_an_archive_sealed_before_the_states_were_recorded(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """With no state recorded for the newest segment (sealed by an older mastertrail),
        a reading of the table folds that segment; the next archive records every master's
        state, after which the table's readings need no segment."""
        build_log(registry, clock)
        last = registry.log_position()
        cuts = (last // 3, 2 * last // 3)
        moments = moments_from(registry, cuts[1] - 1)
        expected = hot_readings(registry, cuts[1] - 1, moments)
        registry.archive(before=cuts[0], to=tmp_path / "segments")
        forget_states(registry)
        assert hot_readings(registry, cuts[1] - 1, moments) == expected
        registry.archive(before=cuts[1], to=tmp_path / "segments")
        masters = {m.id for m in registry.masters_as_of(cuts[1] - 1)}
        assert {master for master, _, _ in recorded(registry)} == masters
        shutil.rmtree(tmp_path / "segments")
        assert hot_readings(registry, cuts[1] - 1, moments) == expected


class TestTheRecordedStates:
    def test_are_the_fold_of_the_log_and_only_what_changed(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """After each segment the states read back are the fold of every event up to its
        last position; a segment records only the masters whose state it changed."""
        build_log(registry, clock)
        events = list(registry.events())
        last = registry.log_position()
        registry.archive(before=last // 3, to=tmp_path)
        registry.archive(before=2 * last // 3, to=tmp_path)
        segments = eventstore.list_segments(registry.engine)
        assert len(segments) == 2
        rows = recorded(registry)
        for segment in segments:
            through = segment.last_position
            with registry.engine.connect() as conn:
                found = eventstore.recorded_end_states(conn, through)
            assert found == fold_snapshots({}, [e for e in events if e.position <= through])
            changed = {e.master_id for e in events if segment.holds_position(e.position)}
            assert {m for m, t, _ in rows if t == through} == (
                changed if segment is segments[1] else set(found)
            )


class TestVerifyingTheRecordedStates:
    @pytest.mark.parametrize(
        "statement",
        [
            f"UPDATE {STATES} SET name = 'forged:/srv' WHERE master_id = 1",
            f"DELETE FROM {STATES} WHERE archived_through = (SELECT MAX(archived_through) "
            f"FROM {STATES} AS s)",
        ],
        ids=["forged", "missing"],
    )
    def test_a_state_not_of_the_log_is_a_problem(
        self, registry: Registry, clock: FakeClock, tmp_path: Path, statement: str
    ) -> None:
        """A recorded state changed, or the states recorded with a segment missing, is a
        problem verify names; intact, the archive verifies."""
        build_log(registry, clock)
        last = registry.log_position()
        registry.archive(before=last // 3, to=tmp_path)
        registry.archive(before=2 * last // 3, to=tmp_path)
        assert registry.verify().ok
        with registry.engine.begin() as conn:
            drop_guards(conn, (STATES,))
            conn.exec_driver_sql(statement)
        report = registry.verify()
        assert report.problems
        assert all(p.kind == "archive" and STATES in p.detail for p in report.problems)


class TestTheStatesGuard:
    @pytest.mark.parametrize(
        "statement",
        [
            f"UPDATE {STATES} SET last_active = last_active + 1",
            f"DELETE FROM {STATES}",
            f"INSERT INTO {STATES} (master_id, archived_through, version, name, active, "
            "last_active) VALUES (1, 3, 1, 'alpha:/srv', 1, 0)",  # an older version
            f"INSERT INTO {STATES} (master_id, archived_through, version, name, active, "
            "last_active) VALUES (2, 2, 2, 'bravo:/srv', 1, 0)",  # not the newest segment
        ],
        ids=["update", "delete", "older", "not-newest"],
    )
    def test_refuses_a_change_and_a_row_out_of_place(
        self, registry: Registry, tmp_path: Path, statement: str
    ) -> None:
        """The recorded states are append-only, and a new row must be of the newest
        segment, at a version after its master's newest."""
        alpha = registry.find_master_id("alpha:/srv")
        registry.set_master_state(alpha, True)
        bravo = registry.find_master_id("bravo:/srv")
        registry.archive(before=3, to=tmp_path)
        registry.archive(before=4, to=tmp_path)
        before = recorded(registry)
        assert before == [(alpha, 2, 2), (bravo, 3, 1)]
        with registry.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError), conn.begin():
            conn.exec_driver_sql(statement)
        assert recorded(registry) == before
        with registry.engine.begin() as conn:  # in place: accepted
            conn.exec_driver_sql(
                f"INSERT INTO {STATES} (master_id, archived_through, version, name, active, "
                "last_active) VALUES (1, 3, 3, 'alpha:/srv', 1, 0)"
            )
        assert recorded(registry) == sorted([*before, (alpha, 3, 3)], key=lambda r: (r[1], r[0]))

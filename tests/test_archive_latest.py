"""A master's newest events when they are all archived (the web page's latest events): the
segment holding them is found by the states recorded after the segments, not by reading
every segment sealed since, and the answer is the one the whole walk back gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import archive_seal, segmented
from mastertrail import Registry
from projections import archived as archived_readings
from tests.archive_support import segment_files_read
from tests.conftest import FakeClock
from tests.tamper_support import drop_guards

STATES = "mastertrail_archive_states"


@pytest.fixture
def retired(
    registry: Registry, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    """A master that changed state 7 times (versions 1-8) and was never heard of again,
    then another checking in 60 times; all but the last 5 events archived in segments of
    5 (14 segments, positions 1-66): the retired master's versions 4-7 are in the segment
    of positions 6-10, its version 8 at position 11 starts the next, and 11 segments
    follow it. Returns the retired master's id."""
    monkeypatch.setattr(archive_seal, "SEGMENT_EVENTS", 5)
    retired = registry.find_master_id("retired:/srv")
    busy = registry.find_master_id("busy:/srv")
    for n in range(7):
        clock.advance(60)
        registry.set_master_state(retired, n % 3 != 2)
        if n in (0, 4):
            registry.set_master_state(busy, True)  # positions 4 and 9
    assert registry.log_position() == 11
    for _ in range(60):
        clock.advance(60)
        registry.set_master_state(busy, True)
    registry.archive(before=registry.log_position() - 4, to=tmp_path)  # busy: 5 hot
    segmented._OPENED.clear()
    archived_readings._LATEST.clear()
    return retired


def newest(registry: Registry, master_id: int, count: int) -> list[tuple[int, str, int]]:
    return [(e.version, e.type, e.position) for e in registry.latest_events(count=count)[master_id]]


def full_history(registry: Registry, master_id: int) -> list[tuple[int, str, int]]:
    return [(e.version, e.type, e.position) for e in registry.history(master_id)]


class TestNewestArchivedEvents:
    def test_the_segment_holding_them_is_read_not_those_after(
        self, registry: Registry, retired: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The newest event needs the segment holding it only: one file of the 14."""
        expected = full_history(registry, retired)[-1:]
        files = segment_files_read(monkeypatch)
        assert newest(registry, retired, 1) == expected
        assert files == [11]

    def test_events_across_two_segments(
        self, registry: Registry, retired: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The four newest, split between two segments, read those two."""
        expected = full_history(registry, retired)[-4:]
        files = segment_files_read(monkeypatch)
        assert newest(registry, retired, 4) == expected
        assert sorted(set(files)) == [6, 11]

    def test_without_recorded_states_the_segments_are_walked(
        self, registry: Registry, retired: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An archive whose states were not recorded (sealed before they were) answers the
        same, reading back from the newest segment."""
        expected = full_history(registry, retired)[-4:]
        with registry.engine.begin() as conn:
            drop_guards(conn, (STATES,))
            conn.exec_driver_sql(f"DELETE FROM {STATES}")
        files = segment_files_read(monkeypatch)
        assert newest(registry, retired, 4) == expected
        assert len(set(files)) == 13  # every segment from the newest back to position 6

"""Reading through the archive: every reading of the log answers exactly as before part of
it moved into sealed segments, on every backend."""

from __future__ import annotations

from pathlib import Path

from mastertrail import Registry
from tests.archive_support import build_log, differences, hot_rows, readings
from tests.conftest import FakeClock


class TestReadingsHarness:
    def test_readings_repeat_exactly(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """Taken twice on the same log, every reading is equal: what the archive tests
        compare depends on the log alone."""
        fleet = build_log(registry, clock)
        first = readings(registry, fleet, tmp_path)
        second = readings(registry, fleet, tmp_path)
        assert differences(first, second) == []
        assert first["verify"][0] is True
        assert len(first["events"]) == first["log position"] > 100
        assert {e.type for e in first["events"]} >= {
            "master.registered",
            "master.activated",
            "master.checked_in",
            "master.deactivated",
            "master.adopted",
            "master.housekeeping_forced",
        }
        codes = {key: value[0] for key, value in first.items() if key.startswith("cli ")}
        assert set(codes.values()) == {0}, codes
        statuses = {key: value[0] for key, value in first.items() if key.startswith("web ")}
        assert set(statuses.values()) == {200}, statuses


class TestReadingsThroughTheArchive:
    def test_every_reading_answers_as_before_archiving(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """Archived in two runs (two segments), the log answers every reading (the API's,
        the command line's, the web page's, a replay's, rebuild and verify) exactly as
        before."""
        fleet = build_log(registry, clock)
        before = readings(registry, fleet, tmp_path)
        last = before["log position"]
        first = registry.archive(before=last // 3, to=tmp_path / "segments")
        second = registry.archive(before=2 * last // 3, to=tmp_path / "segments")
        assert first.segments == second.segments == 1
        assert first.events + second.events > last // 2
        assert hot_rows(registry) == last - first.events - second.events
        after = readings(registry, fleet, tmp_path)
        assert differences(before, after) == []

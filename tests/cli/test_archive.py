"""``mastertrail archive``: seal the oldest events, dry-run, list; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import eventstore
from eventstore.archive import list_segments
from tests.cli_support import Fleet, Invoke, assert_failed_cleanly


class TestArchiveCommand:
    def test_seals_and_lists(self, fleet: Fleet, invoke: Invoke, tmp_path: Path) -> None:
        """Events below @8 are sealed into DIR; --list shows the segment and its file;
        the log then starts at 8."""
        before = fleet.registry.history(fleet.ids["alpha:/srv/master"])
        result = invoke("--db", fleet.url, "archive", "--before", "@8", "--to", str(tmp_path))
        assert result.exit_code == 0, result.output
        assert "sealed 7 events in 1 segment(s)" in result.output
        assert next(eventstore.iter_log(fleet.registry.engine)).position == 8
        listed = invoke("--db", fleet.url, "archive", "--list", "--json")
        assert listed.exit_code == 0, listed.output
        (segment,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (segment["first_position"], segment["last_position"]) == (1, 7)
        assert segment["present"] is True
        assert Path(segment["path"]).parent == tmp_path
        assert len(before) == 4

    def test_dry_run_writes_nothing(self, fleet: Fleet, invoke: Invoke, tmp_path: Path) -> None:
        """--dry-run says what it would seal and changes nothing."""
        result = invoke(
            "--db", fleet.url, "archive", "--before", "@8", "--to", str(tmp_path / "a"),
            "--dry-run", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (report["events"], report["dry_run"]) == (7, True)
        assert list_segments(fleet.registry.engine) == []
        assert not (tmp_path / "a").exists()

    def test_a_time_before_everything_archives_nothing(
        self, fleet: Fleet, invoke: Invoke, tmp_path: Path
    ) -> None:
        """A WHEN before the first event leaves the log as it is."""
        result = invoke(
            "--db", fleet.url, "archive", "--before", "2000-01-01", "--to", str(tmp_path)
        )
        assert result.exit_code == 0, result.output
        assert "nothing to archive" in result.output
        assert list_segments(fleet.registry.engine) == []

    def test_missing_options_are_bad_input(self, fleet: Fleet, invoke: Invoke) -> None:
        """Without --before and --to (or --list) it exits 2 with one line."""
        result = invoke("--db", fleet.url, "archive", "--before", "@3")
        assert result.exit_code == 2
        assert list_segments(fleet.registry.engine) == []

    def test_a_bad_when_is_bad_input(self, fleet: Fleet, invoke: Invoke, tmp_path: Path) -> None:
        """A WHEN that is not one exits 2 with one line and writes nothing."""
        result = invoke("--db", fleet.url, "archive", "--before", "soon", "--to", str(tmp_path))
        assert_failed_cleanly(result, 2)
        assert list_segments(fleet.registry.engine) == []

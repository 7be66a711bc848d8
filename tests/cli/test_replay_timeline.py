"""``mastertrail replay`` into a sandbox database and ``mastertrail timeline``."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

from mastertrail import Registry
from tests.cli_support import (
    Fleet,
    Invoke,
    assert_failed_cleanly,
    json_lines,
)


class TestReplayCommand:
    def test_copies_a_prefix_exactly(self, fleet: Fleet, sandbox_url: str, invoke: Invoke) -> None:
        """replay --until @P copies events 1..P with their ids, positions and hashes, builds
        the sandbox's view as the source stood at P, and leaves the source untouched."""
        before = fleet.events()
        result = invoke(
            "--db", fleet.url, "replay", "--until", "@10", "--into", sandbox_url, "--json"
        )
        assert result.exit_code == 0, result.output
        (summary,) = json_lines(result)
        assert summary["events"] == 10
        assert summary["until_position"] == 10
        assert summary["ok"] is True
        assert summary["masters"] == 3
        sandbox = Registry(sandbox_url)
        try:
            assert list(sandbox.events()) == before[:10]
            assert sandbox.get_masters() == fleet.registry.masters_as_of(10)
            assert sandbox.verify().ok
        finally:
            sandbox.close()
        assert fleet.events() == before

    def test_until_a_time(self, fleet: Fleet, sandbox_url: str, invoke: Invoke) -> None:
        """replay --until TIME copies the events recorded up to that time."""
        until = dt.datetime.fromtimestamp(fleet.t0 + 90, dt.UTC).isoformat()
        result = invoke("--db", fleet.url, "replay", "--until", until, "--into", sandbox_url)
        assert result.exit_code == 0, result.output
        assert "copied 9 events" in result.stdout
        sandbox = Registry(sandbox_url)
        try:
            assert [e.position for e in sandbox.events()] == list(range(1, 10))
        finally:
            sandbox.close()

    def test_refuses_a_database_with_a_log(
        self, fleet: Fleet, sandbox_url: str, invoke: Invoke
    ) -> None:
        """A sandbox that already holds a log is refused with exit 2, and left as it was."""
        assert (
            invoke("--db", fleet.url, "replay", "--until", "@3", "--into", sandbox_url).exit_code
            == 0
        )
        line = assert_failed_cleanly(
            invoke("--db", fleet.url, "replay", "--until", "@5", "--into", sandbox_url), 2
        )
        assert "empty" in line
        sandbox = Registry(sandbox_url)
        try:
            assert len(list(sandbox.events())) == 3
        finally:
            sandbox.close()

    def test_refuses_the_source_itself(self, fleet: Fleet, invoke: Invoke) -> None:
        """--into the very database of --db is bad input."""
        assert_failed_cleanly(
            invoke("--db", fleet.url, "replay", "--until", "now", "--into", fleet.url), 2
        )


class TestTimelineCommand:
    def test_draws_an_svg(self, fleet: Fleet, invoke: Invoke, tmp_path: Path) -> None:
        """timeline --out FILE.svg writes a well-formed SVG with a lane per master."""
        out = tmp_path / "activity.svg"
        result = invoke("--db", fleet.url, "timeline", "--out", str(out), "--json")
        assert result.exit_code == 0, result.output
        assert json_lines(result) == [{"out": str(out), "lanes": 3, "marks": 5}]
        assert ET.parse(out).getroot().tag.endswith("svg")

    def test_a_window(self, fleet: Fleet, invoke: Invoke, tmp_path: Path) -> None:
        """--since/--until narrow the window; a position stands for its event's time."""
        out = tmp_path / "window.png"
        result = invoke(
            "--db", fleet.url, "timeline", "--out", str(out), "--since", "@7", "--until", "@10",
            "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json_lines(result)[0]["marks"] == 1  # bravo's stop
        assert out.read_bytes().startswith(b"\x89PNG")

    def test_other_formats_are_bad_input(
        self, fleet: Fleet, invoke: Invoke, tmp_path: Path
    ) -> None:
        """Only .svg and .png are drawn; anything else exits 2 before reading the log."""
        assert_failed_cleanly(
            invoke("--db", fleet.url, "timeline", "--out", str(tmp_path / "a.pdf")), 2
        )

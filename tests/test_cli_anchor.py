"""``mastertrail anchor [--to FILE]`` and ``mastertrail verify --anchors FILE``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastertrail import Anchor, Registry
from tests.cli_support import Invoke, assert_failed_cleanly, json_lines, make_invoke
from tests.conftest import FakeClock
from tests.tamper_support import rechain


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """``mastertrail ARGS`` in-process on the injected clock."""
    return make_invoke(clock)


@pytest.fixture
def pair(registry: Registry, clock: FakeClock) -> Registry:
    """Two masters registered and started: positions 1-4."""
    for name in ("alpha:/srv", "bravo:/srv"):
        registry.set_master_state(registry.find_master_id(name), True)
    return registry


class TestAnchorCommand:
    def test_prints_one_json_line_without_to(
        self, pair: Registry, db_url: str, invoke: Invoke
    ) -> None:
        """Without --to the anchor is one JSON line on stdout, the registry's own."""
        result = invoke("--db", db_url, "anchor")
        assert result.exit_code == 0, result.output
        (line,) = result.stdout.splitlines()
        assert Anchor.from_json(line) == pair.anchor()

    def test_to_appends_one_line_per_call(
        self, pair: Registry, db_url: str, invoke: Invoke, clock: FakeClock, tmp_path: Path
    ) -> None:
        """--to FILE appends a line per call, creating the file, and keeps what it held."""
        path = tmp_path / "anchors.jsonl"
        assert invoke("--db", db_url, "anchor", "--to", str(path)).exit_code == 0
        clock.advance(60)
        pair.set_master_state(1, True)
        result = invoke("--db", db_url, "anchor", "--to", str(path))
        assert result.exit_code == 0, result.output
        assert "anchored position 5" in result.stdout
        positions = [Anchor.from_json(line).position for line in path.read_text().splitlines()]
        assert positions == [4, 5]

    def test_a_file_that_cannot_be_written_is_bad_input(
        self, pair: Registry, db_url: str, invoke: Invoke, tmp_path: Path
    ) -> None:
        """--to in a directory that does not exist: one line, exit 2."""
        result = invoke("--db", db_url, "anchor", "--to", str(tmp_path / "no" / "a.jsonl"))
        assert "cannot append" in assert_failed_cleanly(result, 2)


class TestVerifyAnchorsOption:
    def test_anchors_that_hold(
        self, pair: Registry, db_url: str, invoke: Invoke, tmp_path: Path
    ) -> None:
        """verify --anchors FILE exits 0 and says how many anchors hold; --json counts them."""
        path = tmp_path / "anchors.jsonl"
        invoke("--db", db_url, "anchor", "--to", str(path))
        result = invoke("--db", db_url, "verify", "--anchors", str(path))
        assert result.exit_code == 0, result.output
        assert "1 anchor(s) hold" in result.stdout
        result = invoke("--db", db_url, "--json", "verify", "--anchors", str(path))
        assert json_lines(result)[0]["anchors_checked"] == 1

    def test_a_rechained_rewrite_exits_1_naming_the_anchor(
        self, pair: Registry, db_url: str, invoke: Invoke, tmp_path: Path
    ) -> None:
        """After a rewrite that re-chains every hash, plain verify exits 0 and verify
        --anchors exits 1 with an anchor problem at the anchored position."""
        path = tmp_path / "anchors.jsonl"
        invoke("--db", db_url, "anchor", "--to", str(path))
        rechain(
            pair.engine,
            "UPDATE mastertrail_events SET recorded_at = recorded_at + 1 WHERE position = 2",
        )
        assert invoke("--db", db_url, "verify").exit_code == 0
        result = invoke("--db", db_url, "--json", "verify", "--anchors", str(path))
        assert result.exit_code == 1, result.output
        problems = json_lines(result)[0]["problems"]
        assert [(p["kind"], p["position"]) for p in problems] == [("anchor", 4)]

    @pytest.mark.parametrize("content", ["{broken\n", '{"position": 1}\n'])
    def test_a_malformed_file_exits_2(
        self, pair: Registry, db_url: str, invoke: Invoke, tmp_path: Path, content: str
    ) -> None:
        """A line that is not an anchor: one line naming the file and line, exit 2."""
        path = tmp_path / "anchors.jsonl"
        path.write_text(content)
        line = assert_failed_cleanly(invoke("--db", db_url, "verify", "--anchors", str(path)), 2)
        assert "anchors.jsonl:1" in line

    def test_a_missing_file_exits_2(
        self, pair: Registry, db_url: str, invoke: Invoke, tmp_path: Path
    ) -> None:
        """An anchors file that does not exist: one line, exit 2."""
        result = invoke("--db", db_url, "verify", "--anchors", str(tmp_path / "none.jsonl"))
        assert_failed_cleanly(result, 2)

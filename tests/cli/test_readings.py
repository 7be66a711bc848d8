"""``mastertrail masters``, ``history`` and ``log``: the readings, for people and as JSON."""

from __future__ import annotations

import datetime as dt
import io

from rich.console import Console

from mastertrail import Registry
from mastertrail.cli.render import Output
from mastertrail.trail import trail_rows
from tests.cli_support import (
    ALPHA,
    BRAVO,
    CHARLIE,
    Fleet,
    Invoke,
    assert_failed_cleanly,
    json_lines,
)
from tests.conftest import FakeClock


class TestMastersCommand:
    def test_json_lists_every_master(self, fleet: Fleet, invoke: Invoke) -> None:
        """--json prints one object per master with id, name, active and last_active."""
        result = invoke("--db", fleet.url, "masters", "--json")
        assert result.exit_code == 0, result.output
        rows = json_lines(result)
        assert [(r["id"], r["name"], r["active"]) for r in rows] == [
            (fleet.ids[ALPHA], ALPHA, True),
            (fleet.ids[BRAVO], BRAVO, False),
            (fleet.ids[CHARLIE], CHARLIE, False),
        ]
        alpha_last_active = dt.datetime.fromisoformat(rows[0]["last_active"])
        assert alpha_last_active.timestamp() == fleet.t0 + 1000

    def test_table_for_people(self, fleet: Fleet, invoke: Invoke) -> None:
        """Without --json the masters come as a table with their names."""
        result = invoke("--db", fleet.url, "masters")
        assert result.exit_code == 0
        for name in (ALPHA, BRAVO, CHARLIE):
            assert name in result.stdout
        assert "last active" in result.stdout

    def test_active_only(self, fleet: Fleet, invoke: Invoke) -> None:
        """--active leaves out the inactive masters."""
        result = invoke("--db", fleet.url, "--json", "masters", "--active")
        assert [r["name"] for r in json_lines(result)] == [ALPHA]

    def test_as_of_a_position(self, fleet: Fleet, invoke: Invoke) -> None:
        """--as-of @P shows the masters right after the event at position P."""
        result = invoke("--db", fleet.url, "masters", "--as-of", "@9", "--json")
        assert result.exit_code == 0, result.output
        assert [r["active"] for r in json_lines(result)] == [True, True, True]
        result = invoke("--db", fleet.url, "masters", "--as-of", "@4", "--json")
        assert [(r["name"], r["active"]) for r in json_lines(result)] == [
            (ALPHA, True),
            (BRAVO, False),
            (CHARLIE, False),
        ]

    def test_as_of_a_time(self, fleet: Fleet, invoke: Invoke) -> None:
        """--as-of takes an ISO time and a relative time (on the command's clock)."""
        iso = dt.datetime.fromtimestamp(fleet.t0 + 500, dt.UTC).isoformat()
        result = invoke("--db", fleet.url, "masters", "--as-of", iso, "--active", "--json")
        assert [r["name"] for r in json_lines(result)] == [ALPHA, CHARLIE]
        fleet.clock.now = fleet.t0 + 700  # 10 minutes ago is then +100: bravo not stopped yet
        result = invoke("--db", fleet.url, "masters", "--as-of", "10m ago", "--active", "--json")
        assert [r["name"] for r in json_lines(result)] == [ALPHA, BRAVO, CHARLIE]

    def test_bad_when_is_bad_input(self, fleet: Fleet, invoke: Invoke) -> None:
        """A WHEN that is none of the spellings exits 2 with one line."""
        line = assert_failed_cleanly(
            invoke("--db", fleet.url, "masters", "--as-of", "last tuesday"), 2
        )
        assert "WHEN" in line


class TestHistoryCommand:
    def test_by_name_in_json(self, fleet: Fleet, invoke: Invoke) -> None:
        """A master's trail by name: its events in order, as RecordedEvent JSON."""
        result = invoke("--db", fleet.url, "history", CHARLIE, "--json")
        assert result.exit_code == 0, result.output
        rows = json_lines(result)
        assert [r["type"] for r in rows] == [
            "master.registered",
            "master.activated",
            "master.checked_in",
            "master.deactivated",
        ]
        assert [r["version"] for r in rows] == [1, 2, 3, 4]
        assert rows[-1]["metadata"]["actor"] == ALPHA
        assert rows[-1]["metadata"]["reason"] == "expired"
        assert rows[-1]["data"]["timeout"] == 600
        assert {r["master_id"] for r in rows} == {fleet.ids[CHARLIE]}

    def test_by_id_matches_by_name(self, fleet: Fleet, invoke: Invoke) -> None:
        """MASTER may be the id; the trail is the same."""
        by_name = invoke("--db", fleet.url, "history", BRAVO, "--json")
        by_id = invoke("--db", fleet.url, "history", str(fleet.ids[BRAVO]), "--json")
        assert json_lines(by_id) == json_lines(by_name)

    def test_since_and_until(self, fleet: Fleet, invoke: Invoke) -> None:
        """--since/--until bound the trail by time or by position."""
        since = dt.datetime.fromtimestamp(fleet.t0 + 30, dt.UTC).isoformat()
        result = invoke("--db", fleet.url, "history", ALPHA, "--since", since, "--json")
        assert [r["type"] for r in json_lines(result)] == ["master.checked_in"] * 2
        result = invoke("--db", fleet.url, "history", ALPHA, "--until", "@7", "--json")
        assert [r["position"] for r in json_lines(result)] == [1, 4, 7]

    def test_the_table_folds_check_ins_by_default(self, fleet: Fleet, invoke: Invoke) -> None:
        """The table folds a run of check-ins into one row; --full shows every event."""
        result = invoke("--db", fleet.url, "history", ALPHA)
        assert result.exit_code == 0, result.output
        assert "checked in 2 times" in result.stdout
        full = invoke("--db", fleet.url, "history", ALPHA, "--full")
        assert full.stdout.count("master.checked_in") == 2

    def test_the_table_reads_each_stop(self, fleet: Fleet, invoke: Invoke) -> None:
        """An expiry reads as such, naming the master that expired it."""
        result = invoke("--db", fleet.url, "history", CHARLIE)
        assert f"expired by {ALPHA}" in " ".join(result.stdout.split())

    def test_fits_80_columns_without_cutting_a_time(self, fleet: Fleet, clock: FakeClock) -> None:
        """At 80 columns no line is longer, and every time is whole on its line."""
        screen = io.StringIO()
        output = Output(json_mode=False, console=Console(file=screen, width=80))
        registry = Registry(fleet.url, clock=clock)
        events = registry.history(fleet.ids[CHARLIE])
        output.trail(trail_rows(events, CHARLIE, {ALPHA, BRAVO, CHARLIE}), title="t")
        registry.close()
        lines = screen.getvalue().splitlines()
        assert max(len(line) for line in lines) <= 80
        stamps = [e.recorded_at.strftime("%Y-%m-%d %H:%M:%S") for e in events]
        assert all(any(stamp in line for line in lines) for stamp in stamps)

    def test_compact_json_has_the_rows_of_the_table(self, fleet: Fleet, invoke: Invoke) -> None:
        """--compact --json prints one object per row of the compact table, each an event
        with its run's count, last position and summary."""
        rows = json_lines(invoke("--db", fleet.url, "history", ALPHA, "--compact", "--json"))
        assert [(r["type"], r["count"]) for r in rows] == [
            ("master.registered", 1),
            ("master.activated", 1),
            ("master.checked_in", 2),
        ]
        assert rows[-1]["summary"] == "checked in 2 times"
        full = json_lines(invoke("--db", fleet.url, "history", ALPHA, "--json"))
        assert rows[-1]["last_position"] == full[-1]["position"]

    def test_unknown_master_is_bad_input(self, fleet: Fleet, invoke: Invoke) -> None:
        """An unknown name or id exits 2 with one line, and registers nothing."""
        before = len(fleet.events())
        assert "nobody" in assert_failed_cleanly(invoke("--db", fleet.url, "history", "nobody"), 2)
        assert_failed_cleanly(invoke("--db", fleet.url, "history", "999"), 2)
        assert len(fleet.events()) == before


class TestLogCommand:
    def test_whole_log_in_position_order(self, fleet: Fleet, invoke: Invoke) -> None:
        """log --json prints every event once, by position, as RecordedEvent JSON."""
        result = invoke("--db", fleet.url, "log", "--json")
        assert result.exit_code == 0, result.output
        rows = json_lines(result)
        assert [r["position"] for r in rows] == list(range(1, 13))
        assert rows == [event.to_json() for event in fleet.events()]

    def test_after_and_limit(self, fleet: Fleet, invoke: Invoke) -> None:
        """--after skips to a position; --limit stops after so many events."""
        result = invoke("--db", fleet.url, "log", "--after", "5", "--limit", "3", "--json")
        assert [r["position"] for r in json_lines(result)] == [6, 7, 8]

    def test_lines_for_people(self, fleet: Fleet, invoke: Invoke) -> None:
        """Without --json, one line per event with position, type, reason and actor."""
        result = invoke("--db", fleet.url, "log", "--after", "11")
        (line,) = result.stdout.splitlines()
        assert line.split()[0] == "12"
        assert "master.deactivated" in line
        assert "expired" in line
        assert ALPHA in line

    def test_follow_prints_events_as_they_commit(self, fleet: Fleet, invoke: Invoke) -> None:
        """--follow polls for new events until interrupted, missing none."""
        polls: list[float] = []

        def sleep(seconds: float) -> None:
            polls.append(seconds)
            if len(polls) == 1:
                fleet.registry.set_master_state(fleet.ids[ALPHA], True)
                fleet.registry.find_master_id("delta:/srv/master")
            else:
                raise KeyboardInterrupt

        result = invoke(
            "--db", fleet.url, "log", "--follow", "--interval", "0.5", "--json", sleep=sleep
        )
        assert result.exit_code == 0, result.output
        assert [r["position"] for r in json_lines(result)] == list(range(1, 15))
        assert polls == [0.5, 0.5]

    def test_follow_stops_at_the_limit(self, fleet: Fleet, invoke: Invoke) -> None:
        """--follow with --limit ends once that many events are printed."""

        def sleep(_seconds: float) -> None:
            fleet.registry.set_master_state(fleet.ids[ALPHA], True)

        result = invoke(
            "--db", fleet.url, "log", "--after", "10", "--follow", "--limit", "4", "--json",
            sleep=sleep,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert [r["position"] for r in json_lines(result)] == [11, 12, 13, 14]

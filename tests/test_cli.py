"""The ``mastertrail`` command line, through click's test runner, on real databases."""

from __future__ import annotations

import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner, Result
from rich.console import Console

import eventstore
from mastertrail import Registry
from mastertrail.cli import Runtime, cli
from mastertrail.cli.app import exit_code_of
from mastertrail.cli.render import Output
from mastertrail.trail import trail_rows
from projections import name_hash
from projections.view import masters as masters_table
from projections.view import view_metadata
from tests.conftest import FakeClock, Server

ALPHA, BRAVO, CHARLIE = "alpha:/srv/master", "bravo:/srv/master", "charlie:/srv/master"
UNREACHABLE = [
    "postgresql+psycopg://root@127.0.0.1:1/x",
    "mysql+pymysql://root@127.0.0.1:1/x",
]


@attrs.frozen
class Fleet:
    """Three masters with a story: bravo stopped cleanly, alpha expired charlie."""

    url: str
    registry: Registry
    clock: FakeClock
    ids: dict[str, int]

    @property
    def t0(self) -> float:
        return 1_700_000_000.0

    def events(self) -> list[Any]:
        return list(self.registry.events())


@pytest.fixture
def fleet(db_url: str, registry: Registry, clock: FakeClock) -> Fleet:
    """alpha, bravo and charlie register (positions 1-3) and start (4-6) at T0, check in at
    +60 (7-9); bravo stops at +120 (10); at +1000 alpha checks in (11) and expires charlie
    (12)."""
    ids = {name: registry.find_master_id(name) for name in (ALPHA, BRAVO, CHARLIE)}
    for name in (ALPHA, BRAVO, CHARLIE):
        registry.set_master_state(ids[name], True)
    clock.advance(60)
    for name in (ALPHA, BRAVO, CHARLIE):
        registry.set_master_state(ids[name], True)
    clock.advance(60)
    registry.set_master_state(ids[BRAVO], False)
    clock.now = 1_700_000_000.0 + 1000
    registry.set_master_state(ids[ALPHA], True)
    expirer = Registry(registry.engine, clock=clock, actor=ALPHA)
    assert [m.name for m in expirer.expire_masters(timeout=600)] == [CHARLIE]
    return Fleet(db_url, registry, clock, ids)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path}/cli.sqlite"


@pytest.fixture
def sandbox_url(backend: str, servers: dict[str, Server | str], tmp_path: Path) -> Iterator[str]:
    """A second empty database on the backend under test, for replay."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/sandbox.sqlite"
        return
    server = servers[backend]
    if isinstance(server, str):
        pytest.skip(server)
    sandbox = Server(backend, server.admin_url.render_as_string(hide_password=False))
    sandbox.create()
    yield sandbox.url
    sandbox.drop()


Invoke = Callable[..., Result]


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """Run ``mastertrail ARGS`` in-process on the injected clock; ``sleep`` replaces the
    pause between --follow polls."""

    def run(*args: str, sleep: Callable[[float], None] | None = None) -> Result:
        runtime = Runtime(clock=clock) if sleep is None else Runtime(clock=clock, sleep=sleep)
        return CliRunner().invoke(cli, list(args), obj=runtime)

    return run


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_failed_cleanly(result: Result, exit_code: int) -> str:
    """The command exited with ``exit_code``, one line on stderr, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in lines[0]
    return lines[0]


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


class TestExpireCommand:
    def test_expires_silent_masters_as_the_actor(self, fleet: Fleet, invoke: Invoke) -> None:
        """expire deactivates the masters silent for longer than --timeout and records the
        --actor as who expired them."""
        fleet.clock.now = fleet.t0 + 1000 + 301
        result = invoke(
            "--db", fleet.url, "--actor", "ops:alice", "expire", "--timeout", "300", "--force"
        )
        assert result.exit_code == 0, result.output
        assert ALPHA in result.stdout
        last = fleet.events()[-1]
        assert (last.master_id, last.type) == (fleet.ids[ALPHA], "master.deactivated")
        assert last.metadata["actor"] == "ops:alice"
        assert last.data["timeout"] == 300

    def test_below_buildbots_timeout_needs_force(self, fleet: Fleet, invoke: Invoke) -> None:
        """A timeout under 600 s is refused without --force (exit 2, nothing written), and
        with it warns that builds and claims are left for good."""
        fleet.clock.now = fleet.t0 + 1000 + 301
        before = len(fleet.events())
        refused = invoke("--db", fleet.url, "expire", "--timeout", "300")
        assert refused.exit_code == 2
        assert "pass --force" in refused.stderr
        assert len(fleet.events()) == before
        forced = invoke("--db", fleet.url, "expire", "--timeout", "300", "--force")
        assert forced.exit_code == 0
        assert "no buildmaster cleans up afterwards" in forced.stderr
        assert len(fleet.events()) == before + 1

    def test_nothing_to_expire(self, fleet: Fleet, invoke: Invoke) -> None:
        """With every active master recent, nothing is written and --json prints nothing."""
        before = len(fleet.events())
        result = invoke("--db", fleet.url, "expire", "--json")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert len(fleet.events()) == before

    def test_json_lists_the_expired(self, fleet: Fleet, invoke: Invoke) -> None:
        """--json prints each expired master as an object."""
        fleet.clock.now = fleet.t0 + 5000
        result = invoke("--db", fleet.url, "expire", "--json")
        assert [(r["name"], r["active"]) for r in json_lines(result)] == [(ALPHA, False)]

    def test_negative_timeout_is_bad_input(self, fleet: Fleet, invoke: Invoke) -> None:
        """A negative timeout exits 2."""
        assert_failed_cleanly(invoke("--db", fleet.url, "expire", "--timeout", "-1"), 2)


class TestRebuildCommand:
    def test_restores_a_missing_view_row(self, fleet: Fleet, invoke: Invoke) -> None:
        """rebuild replays the log and restores a view row that went missing."""
        with fleet.registry.engine.begin() as conn:
            conn.execute(sa.delete(masters_table).where(masters_table.c.id == fleet.ids[BRAVO]))
        result = invoke("--db", fleet.url, "rebuild", "--json")
        assert result.exit_code == 0, result.output
        assert json_lines(result) == [{"events_replayed": 12}]
        restored = fleet.registry.get_master(fleet.ids[BRAVO])
        assert restored is not None
        assert restored.name == BRAVO
        assert not restored.active

    def test_says_how_many_for_people(self, fleet: Fleet, invoke: Invoke) -> None:
        """Without --json it says how many events were replayed."""
        result = invoke("--db", fleet.url, "rebuild")
        assert "12 events" in result.stdout


class TestVerifyCommand:
    def test_ok_exits_zero(self, fleet: Fleet, invoke: Invoke) -> None:
        """A sound log and view verify with exit 0."""
        result = invoke("--db", fleet.url, "verify", "--json")
        assert result.exit_code == 0, result.output
        assert json_lines(result) == [
            {"ok": True, "events_checked": 12, "anchors_checked": 0, "problems": []}
        ]

    def test_view_drift_exits_one(self, fleet: Fleet, invoke: Invoke) -> None:
        """A view row that disagrees with the log is a problem: exit 1, named by master."""
        with fleet.registry.engine.begin() as conn:
            conn.execute(
                sa.update(masters_table)
                .where(masters_table.c.id == fleet.ids[BRAVO])
                .values(active=1)
            )
        result = invoke("--db", fleet.url, "verify", "--json")
        assert result.exit_code == 1
        (report,) = json_lines(result)
        assert report["ok"] is False
        assert [(p["kind"], p["master_id"]) for p in report["problems"]] == [
            ("view", fleet.ids[BRAVO])
        ]
        people = invoke("--db", fleet.url, "verify")
        assert people.exit_code == 1
        assert "1 problem" in people.stdout
        assert "active" in people.stdout


class TestAdoptCommand:
    def test_imports_an_existing_buildbot_database(self, db_url: str, invoke: Invoke) -> None:
        """adopt on a database with only Buildbot's masters table creates the log and
        records every row with an adoption event, then verifies clean."""
        engine = eventstore.create_engine(db_url)
        with engine.begin() as conn:
            view_metadata.create_all(conn)
            for master_id, name, active in ((3, "old-a:/m", 1), (7, "old-b:/m", 0)):
                conn.execute(
                    masters_table.insert().values(
                        id=master_id,
                        name=name,
                        name_hash=name_hash(name),
                        active=active,
                        last_active=1_600_000_000,
                    )
                )
        engine.dispose()
        result = invoke("--db", db_url, "adopt", "--json")
        assert result.exit_code == 0, result.output
        assert [(r["id"], r["name"], r["active"]) for r in json_lines(result)] == [
            (3, "old-a:/m", True),
            (7, "old-b:/m", False),
        ]
        history = json_lines(invoke("--db", db_url, "history", "old-a:/m", "--json"))
        assert [r["type"] for r in history] == ["master.adopted"]
        assert invoke("--db", db_url, "verify").exit_code == 0
        again = invoke("--db", db_url, "adopt")
        assert again.exit_code == 0
        assert "nothing to adopt" in again.stdout

    def test_adopts_rows_added_behind_its_back(self, fleet: Fleet, invoke: Invoke) -> None:
        """A masters row inserted without an event is adopted by a later adopt."""
        with fleet.registry.engine.begin() as conn:
            conn.execute(
                masters_table.insert().values(
                    id=40, name="rogue:/m", name_hash=name_hash("rogue:/m"), active=0, last_active=1
                )
            )
        result = invoke("--db", fleet.url, "adopt", "--json")
        assert [r["id"] for r in json_lines(result)] == [40]
        assert fleet.events()[-1].type == "master.adopted"


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


class TestUpgradeCommand:
    def test_creates_the_schema_once(self, sqlite_url: str, invoke: Invoke) -> None:
        """upgrade creates a new database's schema, and says so; running it again changes
        nothing, and says that."""
        first = invoke("--db", sqlite_url, "upgrade", "--json")
        second = invoke("--db", sqlite_url, "upgrade", "--json")
        for result in (first, second):
            assert result.exit_code == 0, result.output
            assert json_lines(result)[0]["upgraded"] is True
        assert json_lines(first)[0]["created"] is True
        assert json_lines(second)[0]["created"] is False
        assert json_lines(second)[0]["migrated_from"] is None
        assert (
            "created the schema"
            in invoke("--db", sqlite_url.replace(".sqlite", "-2.sqlite"), "upgrade").stdout
        )
        assert "was up to date" in invoke("--db", sqlite_url, "upgrade").stdout
        assert json_lines(invoke("--db", sqlite_url, "masters", "--json")) == []

    def test_says_which_masters_it_adopted(self, sqlite_url: str, invoke: Invoke) -> None:
        """Rows of the masters table with no history are adopted, by name."""
        invoke("--db", sqlite_url, "upgrade")
        engine = sa.create_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(
                masters_table.insert().values(
                    id=9, name="old:/srv", name_hash=name_hash("old:/srv"), active=0, last_active=5
                )
            )
        engine.dispose()
        result = invoke("--db", sqlite_url, "upgrade")
        assert "adopted 1 master(s) found without history: old:/srv" in result.stdout

    def test_reads_the_database_from_the_environment(
        self, sqlite_url: str, clock: FakeClock
    ) -> None:
        """MASTERTRAIL_DB names the database when --db is not given."""
        runner = CliRunner(env={"MASTERTRAIL_DB": sqlite_url})
        assert runner.invoke(cli, ["upgrade"], obj=Runtime(clock=clock)).exit_code == 0
        assert Path(sa.make_url(sqlite_url).database or "").exists()


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


class TestFailures:
    @pytest.mark.parametrize("url", UNREACHABLE)
    @pytest.mark.parametrize(
        "args",
        [["masters"], ["history", "x"], ["log"], ["expire"], ["rebuild"], ["verify"], ["adopt"]],
    )
    def test_unreachable_database_exits_two(
        self, url: str, args: list[str], invoke: Invoke
    ) -> None:
        """A database that cannot be reached exits 2 with one line naming the problem."""
        line = assert_failed_cleanly(invoke("--db", url, *args), 2)
        assert "unavailable" in line

    def test_missing_schema_exits_two(self, db_url: str, invoke: Invoke) -> None:
        """A reachable database without the schema says to run upgrade, exit 2."""
        if db_url.startswith("sqlite"):
            empty = Registry(db_url)
            empty.engine.connect().close()  # an empty file
            empty.close()
        line = assert_failed_cleanly(invoke("--db", db_url, "masters"), 2)
        assert "mastertrail upgrade" in line

    def test_missing_sqlite_file_exits_two_and_creates_nothing(
        self, sqlite_url: str, invoke: Invoke
    ) -> None:
        """A SQLite path that does not exist is bad input; no empty file is left behind."""
        line = assert_failed_cleanly(invoke("--db", sqlite_url, "masters"), 2)
        assert "upgrade" in line
        assert not Path(sa.make_url(sqlite_url).database or "").exists()

    @pytest.mark.parametrize("url", ["not a url", "oracle://x/y", "postgresql+nodriver://x/y"])
    def test_unusable_url_exits_two(self, url: str, invoke: Invoke) -> None:
        """A URL that names no usable database exits 2 with one line."""
        assert "database URL" in assert_failed_cleanly(invoke("--db", url, "masters"), 2)

    def test_unknown_command_and_missing_argument_exit_two(self, invoke: Invoke) -> None:
        """Usage errors are one line too."""
        assert_failed_cleanly(invoke("frobnicate"), 2)
        assert_failed_cleanly(invoke("history"), 2)

    def test_exit_codes_of_registry_errors(self) -> None:
        """Bad input and an unusable database map to 2, other registry errors to 1."""
        from mastertrail import (
            ConcurrencyError,
            InvalidArgument,
            SchemaMissing,
            StoreUnavailable,
        )

        assert exit_code_of(InvalidArgument("x", "is bad", 1)) == 2
        assert exit_code_of(StoreUnavailable("down")) == 2
        assert exit_code_of(SchemaMissing("none")) == 2
        assert exit_code_of(ConcurrencyError(1, 2, 3)) == 1


class TestOutputStreams:
    def test_logs_go_to_stderr_never_to_json_stdout(
        self, sqlite_url: str, invoke: Invoke, clock: FakeClock
    ) -> None:
        """With --verbose, structlog writes JSON lines to stderr; stdout stays pure JSON."""
        invoke("--db", sqlite_url, "upgrade")
        registry = Registry(sqlite_url, clock=clock)
        master_id = registry.find_master_id(ALPHA)
        registry.set_master_state(master_id, True)
        registry.close()
        clock.advance(3600)
        result = invoke("--db", sqlite_url, "-v", "--json", "expire")
        assert result.exit_code == 0, result.output
        assert [r["name"] for r in json_lines(result)] == [ALPHA]
        logged = [json.loads(line) for line in result.stderr.splitlines()]
        assert logged
        assert all("event" in entry for entry in logged)
        assert any("expire" in entry["event"] for entry in logged)

    def test_quiet_by_default(self, sqlite_url: str, invoke: Invoke) -> None:
        """Without --verbose, a successful command logs nothing."""
        result = invoke("--db", sqlite_url, "upgrade")
        assert result.exit_code == 0
        assert result.stderr == ""

    def test_logging_configuration_is_restored(self, sqlite_url: str, invoke: Invoke) -> None:
        """The command configures structlog only while it runs."""
        before = structlog.get_config()
        invoke("--db", sqlite_url, "-v", "upgrade")
        assert structlog.get_config() == before


class TestProgress:
    def test_drawn_on_a_terminal(self) -> None:
        """On a terminal, the progress callback draws a bar."""
        screen = io.StringIO()
        output = Output(json_mode=False, console=Console(file=screen, force_terminal=True))
        with output.progress("replaying") as progress:
            progress(5, 10)
        assert "replaying" in screen.getvalue()

    def test_silent_elsewhere(self) -> None:
        """Written to a file or a pipe, no progress is drawn."""
        screen = io.StringIO()
        output = Output(json_mode=False, console=Console(file=screen, force_terminal=False))
        with output.progress("replaying") as progress:
            progress(5, 10)
        assert screen.getvalue() == ""

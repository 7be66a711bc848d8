"""``mastertrail upgrade``, ``expire``, ``rebuild``, ``verify`` and ``adopt``."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

import eventstore
from mastertrail.cli import Runtime, cli
from projections import name_hash
from projections.view import masters as masters_table
from projections.view import view_metadata
from tests.cli_support import (
    ALPHA,
    BRAVO,
    Fleet,
    Invoke,
    assert_failed_cleanly,
    json_lines,
)
from tests.conftest import FakeClock


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

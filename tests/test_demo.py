"""``mastertrail demo``: a simulated day of a fleet, on a SQLite file, shown."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner, Result

from mastertrail import RecordedEvent, Registry
from mastertrail.cli import Runtime, cli
from mastertrail.demo import FLEET, UPGRADER, is_demo_database
from tests.conftest import FakeClock

#: The demo's simulated day ends at this moment (2024-03-01T12:00:00Z).
END = 1_709_294_400.0
CI01, CI02, CI03, CI04, CI05, CI06 = FLEET


def run_demo(path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--db", f"sqlite:///{path}", "demo", *args], obj=Runtime(clock=FakeClock(END))
    )


@attrs.frozen
class DemoRun:
    """One run of the demo: what it printed, and the log it left."""

    result: Result
    path: Path
    events: list[RecordedEvent]
    ids: dict[str, int]

    def trail(self, name: str) -> list[RecordedEvent]:
        return [e for e in self.events if e.master_id == self.ids[name]]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """The demo, run once for the module on a fresh file."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    result = run_demo(path)
    registry = Registry(f"sqlite:///{path}")
    ids = {m.name: m.id for m in registry.get_masters()}
    yield DemoRun(result, path, list(registry.events()), ids)
    registry.close()


def at(hours: float) -> dt.datetime:
    """The time ``hours`` into the simulated day."""
    return dt.datetime.fromtimestamp(END - 86_400 + hours * 3600, dt.UTC)


class TestDemoCommand:
    def test_exits_zero_and_prints_every_section(self, demo_run: DemoRun) -> None:
        """The demo succeeds and shows the view, an audit trail, a past view, verify and
        the timeline."""
        result = demo_run.result
        assert result.exit_code == 0, result.output
        for section in (
            "The fleet now",
            f"Audit trail of {CI03}",
            f"The fleet as of {at(10):%Y-%m-%d %H:%M:%S} UTC",
            "verified:",
            "hash chain intact",
            "demo-timeline.svg",
        ):
            assert section in result.stdout
        assert "Traceback" not in result.output

    def test_a_fleet_of_six_over_a_day(self, demo_run: DemoRun) -> None:
        """Six masters check in every five minutes over one simulated day."""
        assert sorted(demo_run.ids) == list(FLEET)
        assert demo_run.events[0].recorded_at == at(0)
        assert demo_run.events[-1].recorded_at == at(24)
        check_ins = [e for e in demo_run.trail(CI01) if e.type == "master.checked_in"]
        gaps = {b.recorded_at - a.recorded_at for a, b in itertools.pairwise(check_ins)}
        assert dt.timedelta(minutes=5) in gaps

    def test_a_clean_stop(self, demo_run: DemoRun) -> None:
        """ci-04 stops cleanly at 06:00, by its own hand."""
        stop = next(e for e in demo_run.trail(CI04) if e.type == "master.deactivated")
        assert stop.recorded_at == at(6)
        assert (stop.metadata["reason"], stop.metadata["actor"]) == ("stopped", CI04)

    def test_a_crash_expired_by_another_master_and_a_return(self, demo_run: DemoRun) -> None:
        """ci-03 falls silent at 09:00, another master expires it, and it comes back at 13:00."""
        trail = demo_run.trail(CI03)
        expiry = next(e for e in trail if e.type == "master.deactivated")
        assert expiry.metadata["reason"] == "expired"
        assert expiry.metadata["actor"] in FLEET
        assert expiry.metadata["actor"] != CI03
        assert at(9) < expiry.recorded_at <= at(9.5)
        comeback = trail[trail.index(expiry) + 1]
        assert (comeback.type, comeback.recorded_at) == ("master.activated", at(13))

    def test_an_upgrade_style_reset(self, demo_run: DemoRun) -> None:
        """At 19:00 every master is marked active long ago by the upgrade, and ci-04, still
        down, is expired by the next housekeeping."""
        resets = [e for e in demo_run.events if e.type == "master.housekeeping_forced"]
        assert {e.master_id for e in resets} == set(demo_run.ids.values())
        assert {(e.metadata["actor"], e.recorded_at) for e in resets} == {(UPGRADER, at(19))}
        last = demo_run.trail(CI04)[-1]
        assert last.type == "master.deactivated"
        assert last.metadata["reason"] == "expired"
        assert last.recorded_at == at(19.5)  # the first housekeeping after the restart

    def test_the_view_now_and_as_of_the_past_moment(self, demo_run: DemoRun) -> None:
        """Now every master but ci-04 is active; at 10:00 ci-03 and ci-04 were down and ci-06
        did not exist yet."""
        registry = Registry(f"sqlite:///{demo_run.path}")
        try:
            now = {m.name: m.active for m in registry.get_masters()}
            assert now == {name: name != CI04 for name in FLEET}
            then = {m.name: m.active for m in registry.masters_as_of(at(10))}
            assert then == {CI01: True, CI02: True, CI03: False, CI04: False, CI05: True}
            assert registry.verify().ok
        finally:
            registry.close()

    def test_writes_the_timeline_beside_the_database(self, demo_run: DemoRun) -> None:
        """The timeline is an SVG next to the database file, one lane per master."""
        picture = demo_run.path.with_name("demo-timeline.svg")
        root = ET.parse(picture).getroot()
        texts = {"".join(node.itertext()).strip() for node in root.iter()}
        assert set(FLEET) <= texts


class TestDemoDatabase:
    def test_replaces_an_earlier_demo(self, demo_run: DemoRun, tmp_path: Path) -> None:
        """Run on the file of an earlier demo, the demo starts afresh: the log is not
        doubled."""
        path = tmp_path / "demo.sqlite"
        with (
            closing(sqlite3.connect(demo_run.path)) as source,
            closing(sqlite3.connect(path)) as copy,
        ):
            source.backup(copy)
        assert is_demo_database(path)
        result = run_demo(path, "--timeline", str(tmp_path / "t.png"))
        assert result.exit_code == 0, result.output
        registry = Registry(f"sqlite:///{path}")
        assert len(list(registry.events())) == len(demo_run.events)
        registry.close()
        assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")

    def test_refuses_a_database_it_did_not_write(self, tmp_path: Path) -> None:
        """A file with other masters is refused (exit 2, one line) and left as it was,
        unless --replace is given."""
        path = tmp_path / "prod.sqlite"
        registry = Registry(f"sqlite:///{path}")
        registry.upgrade()
        registry.find_master_id("prod:/srv/master")
        registry.close()
        refused = run_demo(path)
        assert refused.exit_code == 2
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "--replace" in refused.stderr
        assert not is_demo_database(path)
        registry = Registry(f"sqlite:///{path}")
        assert [m.name for m in registry.get_masters()] == ["prod:/srv/master"]
        registry.close()

    def test_refuses_a_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        """Any other file is refused too."""
        path = tmp_path / "notes.txt"
        path.write_text("precious")
        assert run_demo(path).exit_code == 2
        assert path.read_text() == "precious"

    def test_runs_only_on_a_sqlite_file(self, tmp_path: Path) -> None:
        """Another database, or SQLite in memory, is bad input."""
        for url in ("postgresql+psycopg://root@127.0.0.1:1/x", "sqlite://"):
            result = CliRunner().invoke(cli, ["--db", url, "demo"], obj=Runtime())
            assert result.exit_code == 2
            assert "SQLite file" in result.stderr


class TestNextCommands:
    def test_the_printed_commands_work_as_printed(self, tmp_path: Path) -> None:
        """Run as `make demo` runs it (.venv/bin/mastertrail, not on PATH), the demo prints
        commands that, pasted into a shell in the same directory, succeed."""
        import os
        import subprocess
        import sys

        root = Path(__file__).resolve().parent.parent
        program = Path(sys.executable).parent / "mastertrail"
        relative = os.path.relpath(program, root)
        env = {**os.environ, "PATH": "/usr/bin:/bin"}
        db = f"sqlite:///{tmp_path}/demo.sqlite"
        demo = subprocess.run(
            [relative, "--db", db, "demo"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert demo.returncode == 0, demo.stderr
        printed = demo.stdout.split("Next, try:\n", 1)[1].splitlines()
        commands = [line.strip() for line in printed if line.startswith("  ")]
        assert commands
        assert all(command.startswith(f"{relative} --db ") for command in commands)
        for command in commands:
            if " serve" in command:
                continue  # runs until interrupted; tested in test_cli_serve
            result = subprocess.run(
                command,
                shell=True,
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, f"{command}: {result.stderr}"

    def test_the_program_name_is_what_runs_it(self, tmp_path: Path) -> None:
        """`mastertrail` only when that name on PATH is this program; else its path."""
        from mastertrail.cli.demo import program_name

        assert program_name(str(tmp_path / "nowhere" / "mastertrail")) == "python -m mastertrail"
        script = tmp_path / "bin" / "mastertrail"
        script.parent.mkdir()
        script.write_text("#!/bin/sh\n")
        assert program_name(str(script)).endswith("bin/mastertrail")

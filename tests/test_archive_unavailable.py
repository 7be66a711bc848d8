"""Segments that moved or went missing: readings find them where they are told, name the
one they miss, and never need one to read the table or serve Buildbot."""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import pytest

from mastertrail import ArchiveUnavailable, Registry
from tests.archive_support import ALPHA, BRAVO, ECHO, Fleet, at, build_log
from tests.cli_support import assert_failed_cleanly, json_lines, make_invoke
from tests.conftest import FakeClock


@attrs.frozen
class Archived:
    """A fleet's log archived into two segments under ``directory``."""

    registry: Registry
    clock: FakeClock
    fleet: Fleet
    directory: Path
    sealed: int  # the last archived position
    files: tuple[str, ...]  # the segment files, in log order


@pytest.fixture
def archived(registry: Registry, clock: FakeClock, tmp_path: Path) -> Archived:
    fleet = build_log(registry, clock)
    directory = tmp_path / "segments"
    last = registry.log_position()
    registry.archive(before=last // 3, to=directory)
    report = registry.archive(before=2 * last // 3, to=directory)
    files = tuple(sorted(path.name for path in directory.iterdir()))
    assert len(files) == 2
    return Archived(registry, clock, fleet, directory, report.through, files)


def moved(archived: Archived, tmp_path: Path) -> Path:
    """Move the segments to another directory and return it."""
    elsewhere = tmp_path / "moved"
    shutil.move(archived.directory, elsewhere)
    return elsewhere


class TestMissingSegment:
    def test_every_archived_reading_names_the_missing_segment(self, archived: Archived) -> None:
        """With the first segment gone, each reading that needs it raises
        ArchiveUnavailable naming that segment's file."""
        registry = archived.registry
        (archived.directory / archived.files[0]).unlink()
        readings = {
            "events": lambda: list(registry.events()),
            "history": lambda: registry.history(archived.fleet.ids[ALPHA]),
            "as of a position": lambda: registry.masters_as_of(3),
            "as of a time": lambda: registry.masters_as_of(at(60)),
            "rebuild": registry.rebuild,
        }
        for name, reading in readings.items():
            with pytest.raises(ArchiveUnavailable) as raised:
                reading()
            assert raised.value.segment == archived.files[0], name
            assert archived.files[0] in str(raised.value), name

    def test_the_command_line_names_it_in_one_line(
        self, archived: Archived, registry: Registry
    ) -> None:
        """``mastertrail log`` without its segment fails with exit 2 and one line naming
        the file and where it was looked for."""
        (archived.directory / archived.files[0]).unlink()
        invoke = make_invoke(archived.clock)
        url = registry.engine.url.render_as_string(hide_password=False)
        line = assert_failed_cleanly(invoke("--db", url, "log"), 2)
        assert archived.files[0] in line
        assert str(archived.directory) in line


class TestMovedSegments:
    def test_the_registry_reads_them_where_it_is_told(
        self, archived: Archived, tmp_path: Path
    ) -> None:
        """Moved elsewhere, the segments are read from the registry's ``archive_dir``."""
        expected = list(archived.registry.events())
        elsewhere = moved(archived, tmp_path)
        with pytest.raises(ArchiveUnavailable):
            list(archived.registry.events())
        other = Registry(archived.registry.engine, archive_dir=elsewhere)
        assert list(other.events()) == expected

    def test_the_environment_names_the_directory(
        self, archived: Archived, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """MASTERTRAIL_ARCHIVE names the directory for a registry given none."""
        expected = archived.registry.masters_as_of(archived.sealed - 1)
        elsewhere = moved(archived, tmp_path)
        monkeypatch.setenv("MASTERTRAIL_ARCHIVE", str(elsewhere))
        other = Registry(archived.registry.engine)
        assert other.masters_as_of(archived.sealed - 1) == expected

    def test_the_command_line_takes_archive_or_the_environment(
        self, archived: Archived, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``--archive DIR`` and MASTERTRAIL_ARCHIVE both find moved segments; without
        either the command fails."""
        invoke = make_invoke(archived.clock)
        url = archived.registry.engine.url.render_as_string(hide_password=False)
        expected = invoke("--db", url, "log", "--json")
        assert len(json_lines(expected)) == archived.registry.log_position()
        elsewhere = moved(archived, tmp_path)
        assert_failed_cleanly(invoke("--db", url, "log", "--json"), 2)
        given = invoke("--db", url, "--archive", str(elsewhere), "log", "--json")
        assert given.stdout == expected.stdout
        monkeypatch.setenv("MASTERTRAIL_ARCHIVE", str(elsewhere))
        assert invoke("--db", url, "log", "--json").stdout == expected.stdout


class TestWithoutTheArchive:
    def test_hot_readings_and_buildbots_operations_need_no_segment(
        self, archived: Archived, tmp_path: Path
    ) -> None:
        """With the segments' directory gone, the table's readings and the five Buildbot
        operations work, and answer as with it."""
        registry, clock, ids = archived.registry, archived.clock, archived.fleet.ids
        head = registry.log_position()
        hot_since = at(2000)
        expected = (
            list(registry.events(after=archived.sealed)),
            registry.history(ids[ECHO], since=hot_since),
            registry.position_at(hot_since),
            registry.latest_events(count=1),
            registry.get_masters(),
        )
        shutil.rmtree(archived.directory)
        assert (
            list(registry.events(after=archived.sealed)),
            registry.history(ids[ECHO], since=hot_since),
            registry.position_at(hot_since),
            registry.latest_events(count=1),
            registry.get_masters(),
        ) == expected
        assert registry.find_master_id(ALPHA) == ids[ALPHA]
        clock.advance(30)
        assert registry.set_master_state(ids[ALPHA], True) is False
        assert registry.get_master(ids[ALPHA]) is not None
        assert registry.set_master_state(ids[BRAVO], False) is True
        newcomer = registry.find_master_id("newcomer:/srv/master")
        registry.set_all_masters_active_long_time_ago()
        expired = registry.expire_masters(timeout=600)
        assert {m.id for m in expired} >= {ids[ALPHA], newcomer}
        assert registry.log_position() > head
        assert [e.position for e in registry.events(after=head)] == list(
            range(head + 1, registry.log_position() + 1)
        )

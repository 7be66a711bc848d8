"""Sealing: ``Registry.archive`` moves the oldest events into segment files, and nothing
of the log is lost, changed or reordered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

import eventstore
from eventstore import archive_seal, archive_store
from eventstore.archive import list_segments, open_segment, read_segment
from eventstore.archive_format import file_name
from eventstore.recorded import RecordedEvent
from mastertrail import ArchiveReport, InvalidArgument, InvalidArgumentType, LogDamaged, Registry
from projections.fold import fold
from projections.snapshots import to_snapshot
from tests.conftest import FakeClock
from tests.tamper_support import tamper

#: Events per segment in these tests, so that a small log makes several.
SMALL = 5


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_seal, "SEGMENT_EVENTS", SMALL)


def heartbeats(registry: Registry, clock: FakeClock, rounds: int) -> list[int]:
    """Three masters registered and started, then ``rounds`` check-ins each, a minute
    apart; the third stops half-way and starts again at the end. Returns their ids."""
    ids = [registry.find_master_id(f"{name}:/srv") for name in ("alpha", "bravo", "charlie")]
    for master_id in ids:
        registry.set_master_state(master_id, True)
    for round_ in range(rounds):
        clock.advance(60)
        for master_id in ids:
            if round_ == rounds // 2 and master_id == ids[2]:
                registry.set_master_state(master_id, False)
            elif not (master_id == ids[2] and round_ > rounds // 2):
                registry.set_master_state(master_id, True)
    clock.advance(60)
    registry.set_master_state(ids[2], True)
    return ids


def whole_log(registry: Registry) -> list[RecordedEvent]:
    """Every event, the archived ones read from their segments, then the hot ones (the
    table's alone: ``Registry.events`` reads through the segments itself)."""
    archived = [e for s in list_segments(registry.engine) for e in read_segment(s)]
    return archived + list(eventstore.iter_log(registry.engine))


@pytest.fixture
def fleet(registry: Registry, clock: FakeClock) -> Registry:
    heartbeats(registry, clock, 10)
    return registry


class TestArchive:
    def test_moves_events_into_segments_unchanged(self, fleet: Registry, tmp_path: Path) -> None:
        """Events below the position move to segments of at most SMALL events each; read
        back with the hot log, every event is what it was, field by field."""
        before = list(fleet.events())
        report = fleet.archive(before=23, to=tmp_path)
        assert report == ArchiveReport(segments=5, events=22, bytes=report.bytes, through=22)
        assert report.bytes == sum(p.stat().st_size for p in tmp_path.glob("segment-*"))
        segments = list_segments(fleet.engine)
        assert [(s.first_position, s.last_position) for s in segments] == [
            (1, 5), (6, 10), (11, 15), (16, 20), (21, 22)
        ]  # fmt: skip
        assert next(eventstore.iter_log(fleet.engine)).position == 23
        assert whole_log(fleet) == before

    def test_each_header_holds_the_masters_before_it(self, fleet: Registry, tmp_path: Path) -> None:
        """Each segment's header records every master's state just before its first event,
        across separate runs."""
        before = list(fleet.events())
        fleet.archive(before=13, to=tmp_path)
        fleet.archive(before=30, to=tmp_path)
        for segment in list_segments(fleet.engine):
            expected = fold(before[: segment.first_position - 1])
            header = open_segment(segment).header
            assert {m.id: m for m in header.masters} == {
                key: to_snapshot(state) for key, state in expected.items()
            }

    def test_seals_past_a_masters_newest_event(
        self, registry: Registry, clock: FakeClock, tmp_path: Path
    ) -> None:
        """A master whose newest event is old no longer holds the archive before it: the
        whole log is sealed, and the master checks in again after it."""
        ids = heartbeats(registry, clock, 4)
        registry.set_master_state(ids[1], False)  # bravo stops, for a long time
        stopped = registry.log_position()
        stopped_version = registry.history(ids[1])[-1].version
        for _ in range(3):
            clock.advance(60)
            registry.set_master_state(ids[0], True)
            registry.set_master_state(ids[2], True)
        report = registry.archive(before=registry.log_position() + 1, to=tmp_path)
        assert report.through == registry.log_position() > stopped
        assert registry.set_master_state(ids[1], True)
        assert [e.version for e in registry.history(ids[1])][-2:] == [
            stopped_version,
            stopped_version + 1,
        ]
        assert eventstore.verify_chain(registry.engine).ok

    def test_writes_continue_after_it(
        self, fleet: Registry, tmp_path: Path, clock: FakeClock
    ) -> None:
        """Masters check in and stop after archiving; the hot log's chain verifies, chained
        on from the archive's last hash."""
        fleet.archive(before=30, to=tmp_path)
        clock.advance(60)
        assert fleet.set_master_state(1, False)
        fleet.set_master_state(2, True)
        assert eventstore.verify_chain(fleet.engine).ok
        assert [e.position for e in whole_log(fleet)] == list(range(1, fleet.log_position() + 1))

    def test_before_a_time(self, fleet: Registry, tmp_path: Path) -> None:
        """Before a time, the events recorded before it are archived."""
        events = list(fleet.events())
        cut = events[14].recorded_at
        report = fleet.archive(before=cut, to=tmp_path)
        assert report.through == max(e.position for e in events if e.recorded_at < cut)

    def test_again_is_a_no_op(self, fleet: Registry, tmp_path: Path) -> None:
        """Archiving again before the same position seals nothing more."""
        fleet.archive(before=20, to=tmp_path)
        again = fleet.archive(before=20, to=tmp_path)
        assert (again.segments, again.events, again.through) == (0, 0, 19)

    def test_dry_run_writes_nothing(self, fleet: Registry, tmp_path: Path) -> None:
        """A dry run reports what would be sealed and writes nothing."""
        before = list(fleet.events())
        report = fleet.archive(before=20, to=tmp_path / "new", dry_run=True)
        assert (report.segments, report.events, report.dry_run) == (4, 19, True)
        assert report.bytes > 0
        assert not (tmp_path / "new").exists()
        assert list_segments(fleet.engine) == []
        assert list(fleet.events()) == before

    def test_replaces_a_file_left_unsealed(self, fleet: Registry, tmp_path: Path) -> None:
        """A file of the next segment that was never recorded (a run killed before its
        transaction) is written again."""
        fleet.archive(before=6, to=tmp_path)
        (tmp_path / file_name(6, 10)).write_bytes(b"left by a killed run")
        (tmp_path / (file_name(6, 10) + ".partial")).write_bytes(b"half")
        before = whole_log(fleet)
        fleet.archive(before=11, to=tmp_path)
        assert whole_log(fleet) == before

    def test_a_raw_delete_of_hot_rows_stays_refused(self, fleet: Registry, tmp_path: Path) -> None:
        """After archiving, the rows still hot cannot be deleted with raw SQL."""
        fleet.archive(before=20, to=tmp_path)
        with pytest.raises(sa.exc.DatabaseError), fleet.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM mastertrail_events WHERE position = 20")
        with pytest.raises(sa.exc.DatabaseError), fleet.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM mastertrail_events")
        assert next(eventstore.iter_log(fleet.engine)).position == 20

    def test_mariadb_frees_the_rows(self, fleet: Registry, tmp_path: Path, backend: str) -> None:
        """MariaDB keeps no history row of an archived event."""
        if backend != "mysql":
            pytest.skip("system versioning is MariaDB's")
        fleet.archive(before=20, to=tmp_path)
        with fleet.engine.connect() as conn:
            every = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM mastertrail_events FOR SYSTEM_TIME ALL"
            ).scalar()
        assert every == len(list(eventstore.iter_log(fleet.engine)))

    def test_a_missing_last_segment_stops_it(self, fleet: Registry, tmp_path: Path) -> None:
        """The next run continues from the last segment: if its file is gone, nothing more
        is archived and the error names it."""
        fleet.archive(before=11, to=tmp_path)
        (tmp_path / file_name(6, 10)).unlink()
        with pytest.raises(eventstore.ArchiveUnavailable, match=file_name(6, 10)):
            fleet.archive(before=20, to=tmp_path)
        assert next(eventstore.iter_log(fleet.engine)).position == 11


class TestBadInput:
    @pytest.mark.parametrize(
        ("before", "error"),
        [
            (dt.datetime(2024, 1, 1), InvalidArgument),  # naive
            (-1, InvalidArgument),
            (True, InvalidArgumentType),
            ("1h", InvalidArgumentType),
        ],
    )
    def test_refused_and_nothing_written(
        self, fleet: Registry, tmp_path: Path, before: object, error: type[Exception]
    ) -> None:
        """A naive time, a negative or non-integer position is refused, writing nothing."""
        with pytest.raises(error):
            fleet.archive(before=before, to=tmp_path / "archive")  # type: ignore[arg-type]
        assert list_segments(fleet.engine) == []
        assert not (tmp_path / "archive").exists()


class TestADamagedLog:
    def test_nothing_is_sealed(self, fleet: Registry, tmp_path: Path) -> None:
        """An event changed behind the guards fails its chain: archiving raises LogDamaged
        and seals nothing at or after it."""
        tamper(
            fleet.engine,
            "UPDATE mastertrail_events SET recorded_at = recorded_at + 1 WHERE position = 8",
        )
        with pytest.raises(LogDamaged, match=r"positions 6\.\.10"):
            fleet.archive(before=20, to=tmp_path)
        assert [s.last_position for s in list_segments(fleet.engine)] == [5]
        assert next(eventstore.iter_log(fleet.engine)).position == 6


class TestStoringWhileTheNextIsChecked:
    def test_a_file_not_written_stops_the_run(
        self, fleet: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A segment whose file cannot be written (stored while the next is checked)
        raises its error: the segments before it stay sealed, its rows and every later
        one stay hot, and the log verifies."""
        write = archive_store._write
        written: list[Path] = []

        def fail_the_second(path: Path, blob: bytes) -> None:
            if written:
                raise OSError(f"{path}: no space left on device")
            written.append(path)
            write(path, blob)

        monkeypatch.setattr(archive_store, "_write", fail_the_second)
        with pytest.raises(OSError, match="no space left"):
            fleet.archive(before=23, to=tmp_path)
        assert [s.last_position for s in list_segments(fleet.engine)] == [5]
        assert next(eventstore.iter_log(fleet.engine)).position == 6
        assert fleet.verify().ok
        monkeypatch.setattr(archive_store, "_write", write)
        assert fleet.archive(before=23, to=tmp_path).through == 22

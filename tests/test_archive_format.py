"""The segment file and the segments table: what the archive writes reads back as the
log held it, and the database guards the table as it guards the log."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from eventstore.archive import Segment, list_segments, open_segment, read_segment
from eventstore.archive_format import MasterSnapshot, SegmentFormatError, encode, file_name
from eventstore.archive_read import SegmentFile
from eventstore.ids import derived_event_id
from eventstore.links import GENESIS, derived_id_text
from eventstore.reads import EVENT_ROWS
from eventstore.recorded import from_micros
from eventstore.schema import archive_segments, events
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.tamper_support import three_masters


def stored_rows(
    engine: Engine, first: int = 1, last: int | None = None
) -> list[sa.Row[tuple[object, ...]]]:
    query = EVENT_ROWS.where(events.c.position >= first).order_by(events.c.position)
    if last is not None:
        query = query.where(events.c.position <= last)
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def write_segment(
    directory: Path,
    engine: Engine,
    rows: list[sa.Row[tuple[object, ...]]],
    previous: bytes = GENESIS,
    masters: dict[int, MasterSnapshot] | None = None,
) -> Segment:
    """Encode ``rows`` into a file in ``directory`` and describe it as the table would."""
    header, blob = encode(rows, previous, masters or {})
    name = file_name(header.first_position, header.last_position)
    (directory / name).write_bytes(blob)
    return Segment(
        first_position=header.first_position,
        last_position=header.last_position,
        count=header.count,
        first_recorded_at=from_micros(header.first_recorded_at),
        last_recorded_at=from_micros(header.last_recorded_at),
        previous_hash=previous.hex(),
        last_hash=header.last_hash.hex(),
        file_sha256=hashlib.sha256(blob).hexdigest(),
        file_name=name,
        directory=str(directory),
        sealed_at=from_micros(0),
    )


@pytest.fixture
def fleet(registry: Registry, clock: FakeClock) -> Registry:
    return three_masters(registry, clock)


class TestSegmentFile:
    def test_reads_back_every_event_equal(self, fleet: Registry, tmp_path: Path) -> None:
        """A segment of the whole log reads back the very events the log reads, ids and
        hashes included."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        assert read_segment(segment) == list(fleet.events())

    def test_a_segment_in_the_middle(self, fleet: Registry, tmp_path: Path) -> None:
        """A segment starting after position 1 chains from its previous hash, and carries
        versions from the masters' states before it."""
        before = list(fleet.events())
        masters = {
            e.master_id: MasterSnapshot(
                id=e.master_id, name="x", active=False, last_active=0, version=e.version
            )
            for e in before[:5]
        }
        rows = stored_rows(fleet.engine, 6, 10)
        segment = write_segment(
            tmp_path, fleet.engine, rows, bytes.fromhex(before[4].hash), masters
        )
        assert read_segment(segment) == before[5:10]

    def test_readable_with_standard_tools(self, fleet: Registry, tmp_path: Path) -> None:
        """The file is xz, one JSON header line and one JSON array per event."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        lines = lzma.decompress((tmp_path / segment.file_name).read_bytes()).decode().splitlines()
        header = json.loads(lines[0])
        assert header["format"] == "mastertrail-segment"
        assert (header["first_position"], header["last_position"], header["count"]) == (1, 12, 12)
        assert all(isinstance(json.loads(line), list) for line in lines[1:])
        assert len(lines) == 13

    def test_rows_that_do_not_chain_do_not_read(self, fleet: Registry) -> None:
        """Rows whose hashes do not chain from the previous hash make a segment that fails
        its chain when read (the archive reads each one before sealing it)."""
        _, blob = encode(stored_rows(fleet.engine, 2), GENESIS, {})
        with pytest.raises(SegmentFormatError):
            list(SegmentFile(blob).events())

    def test_a_changed_event_line_breaks_the_chain(self, fleet: Registry, tmp_path: Path) -> None:
        """A line changed inside the file (and the file recompressed) fails its last hash."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        text = lzma.decompress((tmp_path / segment.file_name).read_bytes()).decode()
        lines = text.splitlines()
        event = json.loads(lines[5])
        event[1] += 1_000_000
        lines[5] = json.dumps(event, separators=(",", ":"))
        forged = lzma.compress(("\n".join(lines) + "\n").encode())
        with pytest.raises(SegmentFormatError):
            list(SegmentFile(forged).events())


class TestReadingASegment:
    def test_missing_file_is_archive_unavailable(self, fleet: Registry, tmp_path: Path) -> None:
        """A missing file raises ArchiveUnavailable naming the segment."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        (tmp_path / segment.file_name).unlink()
        with pytest.raises(eventstore.ArchiveUnavailable, match=segment.file_name) as raised:
            read_segment(segment)
        assert not isinstance(raised.value, eventstore.SegmentDamaged)
        assert raised.value.segment == segment.file_name

    def test_a_flipped_byte_is_damage(self, fleet: Registry, tmp_path: Path) -> None:
        """A file whose SHA-256 is not the recorded one raises SegmentDamaged."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        path = tmp_path / segment.file_name
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 1
        path.write_bytes(bytes(blob))
        with pytest.raises(eventstore.SegmentDamaged, match="SHA-256"):
            read_segment(segment)

    def test_the_archive_directory_overrides(
        self, fleet: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Segments moved elsewhere are read from the directory named, or from
        MASTERTRAIL_ARCHIVE."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        moved = tmp_path / "moved"
        moved.mkdir()
        (tmp_path / segment.file_name).rename(moved / segment.file_name)
        assert read_segment(segment, moved) == list(fleet.events())
        monkeypatch.setenv("MASTERTRAIL_ARCHIVE", str(moved))
        assert open_segment(segment).header.count == 12


class TestTheSegmentsTable:
    def row(self, first: int, last: int) -> dict[str, object]:
        return {
            "first_position": first,
            "last_position": last,
            "first_recorded_at": 0,
            "last_recorded_at": 0,
            "count": last - first + 1,
            "previous_hash": bytes(32),
            "last_hash": bytes(32),
            "file_sha256": bytes(32),
            "file_name": file_name(first, last),
            "directory": "/archive",
            "sealed_at": 0,
        }

    def test_rows_list_in_order(self, engine: Engine) -> None:
        """Segments that follow one another are recorded and listed in log order."""
        with engine.begin() as conn:
            conn.execute(archive_segments.insert(), self.row(1, 4))
            conn.execute(archive_segments.insert(), self.row(5, 9))
        assert [(s.first_position, s.last_position) for s in list_segments(engine)] == [
            (1, 4),
            (5, 9),
        ]

    @pytest.mark.parametrize(
        ("first", "last"), [(2, 4), (1, 0)], ids=["not-at-the-start", "ends-before-it-starts"]
    )
    def test_refuses_a_segment_out_of_order(self, engine: Engine, first: int, last: int) -> None:
        """A segment that does not start right after the last one is refused."""
        with pytest.raises(sa.exc.DatabaseError), engine.begin() as conn:
            conn.execute(archive_segments.insert(), self.row(first, last))
        assert list_segments(engine) == []

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE mastertrail_archive_segments SET last_position = 3",
            "DELETE FROM mastertrail_archive_segments",
            "TRUNCATE TABLE mastertrail_archive_segments",
        ],
    )
    def test_refuses_change(self, engine: Engine, backend: str, statement: str) -> None:
        """The segments table refuses UPDATE, DELETE and TRUNCATE."""
        if backend == "sqlite" and statement.startswith("TRUNCATE"):
            statement = "DELETE FROM mastertrail_archive_segments WHERE 1"
        with engine.begin() as conn:
            conn.execute(archive_segments.insert(), self.row(1, 4))
        with pytest.raises(sa.exc.DatabaseError), engine.begin() as conn:
            conn.exec_driver_sql(statement)
        assert len(list_segments(engine)) == 1

    def test_sqlite_refuses_replace(self, engine: Engine, backend: str) -> None:
        """SQLite's INSERT OR REPLACE cannot overwrite a segment."""
        if backend != "sqlite":
            pytest.skip("SQLite's own statement")
        with engine.begin() as conn:
            conn.execute(archive_segments.insert(), self.row(1, 4))
        with pytest.raises(sa.exc.DatabaseError), engine.begin() as conn:
            conn.execute(archive_segments.insert().prefix_with("OR REPLACE"), self.row(1, 9))
        assert list_segments(engine)[0].last_position == 4


class TestTheLogsDeleteGuard:
    def test_refuses_rows_no_segment_covers(self, fleet: Registry) -> None:
        """A raw DELETE of the log's rows is refused when no sealed segment covers them."""
        with pytest.raises(sa.exc.DatabaseError), fleet.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM mastertrail_events WHERE position <= 3")
        assert len(list(fleet.events())) == 12

    def test_allows_rows_a_segment_covers(self, fleet: Registry, tmp_path: Path) -> None:
        """Rows a sealed segment covers may be deleted; the next ones still may not."""
        rows = stored_rows(fleet.engine, 1, 4)
        with fleet.engine.begin() as conn:
            conn.execute(archive_segments.insert(), TestTheSegmentsTable().row(1, 4))
            conn.exec_driver_sql("DELETE FROM mastertrail_events WHERE position <= 4")
        assert next(e.position for e in eventstore.iter_log(fleet.engine)) == 5
        assert len(rows) == 4
        with pytest.raises(sa.exc.DatabaseError), fleet.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM mastertrail_events WHERE position = 5")


class TestCheck:
    @pytest.mark.parametrize(
        ("master_id", "version", "micros"),
        [(1, 1, 0), (3, 1234, 1_735_689_600_250_123), (2**31 - 1, 2**31 - 1, 2**48 * 1000 - 1)],
    )
    def test_derived_id_text_is_the_ids_text(
        self, master_id: int, version: int, micros: int
    ) -> None:
        """The check's id text is the derived id's own."""
        assert derived_id_text(master_id, version, micros) == str(
            derived_event_id(master_id, version, micros)
        )

    def test_returns_each_masters_first_and_last_event(
        self, fleet: Registry, tmp_path: Path
    ) -> None:
        """check re-chains the segment and returns, in log order, each master's first and
        last event, equal to the log's."""
        segment = write_segment(tmp_path, fleet.engine, stored_rows(fleet.engine))
        events = list(fleet.events())
        picked = open_segment(segment).check()
        firsts = {e.master_id: e for e in reversed(events)}
        lasts = {e.master_id: e for e in events}
        expected = {e.position: e for e in (*firsts.values(), *lasts.values())}
        assert picked == [expected[key] for key in sorted(expected)]

    def test_a_changed_line_fails_it(self, fleet: Registry) -> None:
        """A segment whose events do not chain fails the check."""
        _, blob = encode(stored_rows(fleet.engine, 2), GENESIS, {})
        with pytest.raises(SegmentFormatError):
            SegmentFile(blob).check()


class TestTexts:
    def test_any_name_reads_back(self, registry: Registry, tmp_path: Path) -> None:
        """Names with quotes, backslashes, non-ASCII and 4-byte characters read back exactly."""
        for name in ('q"uo\\ted:/srv', "ünïcødé:/srv", "rocket 🚀:/srv"):
            registry.set_master_state(registry.find_master_id(name), True)
        segment = write_segment(tmp_path, registry.engine, stored_rows(registry.engine))
        assert read_segment(segment) == list(registry.events())
        assert open_segment(segment).check()[0].data["name"] == 'q"uo\\ted:/srv'

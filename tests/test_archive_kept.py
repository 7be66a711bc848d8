"""Segments kept open between readings: a second reading inside a segment neither reads nor
decompresses its file again, and a file gone or changed since is never answered from what
was kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import Archive, Segment, SegmentFile, segmented
from mastertrail import ArchiveUnavailable, Registry, SegmentDamaged
from tests.archive_support import at, build_log
from tests.conftest import FakeClock


@pytest.fixture
def archived(registry: Registry, clock: FakeClock, tmp_path: Path) -> Path:
    """The fleet's log archived up to a third into one segment; returns its file."""
    build_log(registry, clock)
    registry.archive(before=registry.log_position() // 3, to=tmp_path / "segments")
    (path,) = (tmp_path / "segments").iterdir()
    return path


def opened_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The segment files read from now on, in order."""
    opened: list[str] = []
    real = segmented.open_segment

    def counting(segment: Segment, archive: Archive) -> SegmentFile:
        opened.append(segment.file_name)
        return real(segment, archive)

    monkeypatch.setattr(segmented, "open_segment", counting)
    return opened


class TestSegmentsKeptOpen:
    def test_a_second_reading_inside_a_segment_does_not_read_it_again(
        self, registry: Registry, archived: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """masters_as_of at several positions and moments of one segment reads its file
        once, and answers as reading it each time does."""
        segmented._OPENED.clear()
        opened = opened_files(monkeypatch)
        first = [registry.masters_as_of(p) for p in (3, 7, 12)]
        first.append(registry.masters_as_of(at(120)))
        assert opened == [archived.name]
        segmented._OPENED.clear()
        again = [registry.masters_as_of(p) for p in (3, 7, 12)]
        again.append(registry.masters_as_of(at(120)))
        assert again == first

    def test_a_file_gone_since_is_named_missing(self, registry: Registry, archived: Path) -> None:
        """A segment read, then removed, raises ArchiveUnavailable at the next reading."""
        registry.masters_as_of(5)
        archived.unlink()
        with pytest.raises(ArchiveUnavailable):
            registry.masters_as_of(5)

    def test_a_file_changed_since_is_damage(self, registry: Registry, archived: Path) -> None:
        """A segment read, then rewritten with a byte flipped, raises SegmentDamaged."""
        registry.masters_as_of(5)
        blob = bytearray(archived.read_bytes())
        blob[40] ^= 0x01
        archived.with_name("changed").write_bytes(bytes(blob))
        archived.with_name("changed").replace(archived)
        with pytest.raises(SegmentDamaged):
            registry.masters_as_of(5)

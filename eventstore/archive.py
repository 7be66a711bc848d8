"""The archive: sealed segments of the log's oldest events, recorded in the database and
kept as files (:mod:`eventstore.archive_format`, read by :mod:`eventstore.archive_read`).

The table ``mastertrail_archive_segments`` says which positions each segment holds, where
its file was written and the file's SHA-256. Readers list the segments
(:func:`list_segments`), find the one holding a position or a time, and read it
(:func:`open_segment`, :func:`read_segment`); a missing file is
:class:`~eventstore.errors.ArchiveUnavailable`, a file that is not the one sealed
:class:`~eventstore.errors.SegmentDamaged`. Sealing is :mod:`eventstore.archive_seal`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.archive_format import SegmentFormatError
from eventstore.archive_read import SegmentFile
from eventstore.engine import reading, translate_errors
from eventstore.errors import ArchiveUnavailable, SegmentDamaged
from eventstore.recorded import RecordedEvent, from_micros
from eventstore.schema import archive_segments

#: The environment variable naming the directory the segments moved to.
ARCHIVE_ENV = "MASTERTRAIL_ARCHIVE"


@attrs.frozen(kw_only=True)
class Segment:
    """One sealed segment as the database records it."""

    first_position: int
    last_position: int
    count: int
    first_recorded_at: dt.datetime
    last_recorded_at: dt.datetime
    previous_hash: str  # hex: the hash of the event before the first
    last_hash: str  # hex
    file_sha256: str  # hex
    file_name: str
    directory: str  # where it was written, absolute
    sealed_at: dt.datetime

    def path(self, archive: str | os.PathLike[str] | None = None) -> Path:
        """Where the file is: in ``archive`` when given (the segments moved), else where it
        was written."""
        return Path(self.directory if archive is None else archive) / self.file_name

    def holds_position(self, position: int) -> bool:
        return self.first_position <= position <= self.last_position


def list_segments(source: Engine | Connection) -> list[Segment]:
    """Every sealed segment, in log order (an engine: in a short read of its own)."""
    query = sa.select(archive_segments).order_by(archive_segments.c.first_position)
    if isinstance(source, Connection):
        return [_segment(row) for row in source.execute(query)]
    with translate_errors(), reading(source) as conn:
        return [_segment(row) for row in conn.execute(query)]


def archived_through(conn: Connection) -> int:
    """The last position the archive holds (0 when nothing is archived): the hot log
    starts right after it."""
    found = conn.execute(
        sa.select(archive_segments.c.last_position)
        .order_by(archive_segments.c.first_position.desc())
        .limit(1)
    ).scalar()
    return int(found or 0)


def newest_segment(conn: Connection) -> Segment | None:
    """The last sealed segment, or None when nothing is archived: one seek of the key."""
    row = conn.execute(
        sa.select(archive_segments).order_by(archive_segments.c.first_position.desc()).limit(1)
    ).first()
    return None if row is None else _segment(row)


def segment_at(conn: Connection, position: int) -> Segment | None:
    """The segment holding ``position``, or None (not archived): one seek of the table's
    key, whatever the number of segments."""
    row = conn.execute(
        sa.select(archive_segments)
        .where(archive_segments.c.first_position <= position)
        .order_by(archive_segments.c.first_position.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    segment = _segment(row)
    return segment if segment.holds_position(position) else None


def _segment(row: sa.Row[tuple[object, ...]]) -> Segment:
    m = row._mapping
    return Segment(
        first_position=int(m["first_position"]),
        last_position=int(m["last_position"]),
        count=int(m["count"]),
        first_recorded_at=from_micros(int(m["first_recorded_at"])),
        last_recorded_at=from_micros(int(m["last_recorded_at"])),
        previous_hash=bytes(m["previous_hash"]).hex(),
        last_hash=bytes(m["last_hash"]).hex(),
        file_sha256=bytes(m["file_sha256"]).hex(),
        file_name=str(m["file_name"]),
        directory=str(m["directory"]),
        sealed_at=from_micros(int(m["sealed_at"])),
    )


def archive_directory(archive: str | os.PathLike[str] | None) -> str | None:
    """The directory the caller names for the segments: ``archive``, else
    ``MASTERTRAIL_ARCHIVE``, else None (where each was written)."""
    if archive is not None:
        return os.fspath(archive)
    return os.environ.get(ARCHIVE_ENV) or None


def open_segment(segment: Segment, archive: str | os.PathLike[str] | None = None) -> SegmentFile:
    """The file of ``segment`` checked against the database and opened: its header, and its
    events read on demand (:meth:`SegmentFile.events`). ``archive``: the directory the
    segments moved to (default: :func:`archive_directory`).

    Raises :class:`ArchiveUnavailable` naming the segment when its file cannot be read, and
    :class:`SegmentDamaged` when its SHA-256 differs from the one recorded or its header
    does not describe the recorded segment."""
    path = segment.path(archive_directory(archive))
    try:
        blob = path.read_bytes()
    except OSError as error:
        reason = (
            "is missing" if isinstance(error, FileNotFoundError) else f"cannot be read: {error}"
        )
        raise ArchiveUnavailable(segment.file_name, str(path), reason) from error
    digest = hashlib.sha256(blob).hexdigest()
    if digest != segment.file_sha256:
        raise SegmentDamaged(
            segment.file_name,
            str(path),
            f"its SHA-256 is {digest}, the database recorded {segment.file_sha256}",
        )
    try:
        opened = SegmentFile(blob)
    except SegmentFormatError as error:
        raise SegmentDamaged(segment.file_name, str(path), str(error)) from error
    header = opened.header
    if (
        header.first_position,
        header.last_position,
        header.count,
        header.previous_hash.hex(),
        header.last_hash.hex(),
    ) != (
        segment.first_position,
        segment.last_position,
        segment.count,
        segment.previous_hash,
        segment.last_hash,
    ):
        raise SegmentDamaged(
            segment.file_name, str(path), "its header does not describe the recorded segment"
        )
    return opened


def read_segment(
    segment: Segment, archive: str | os.PathLike[str] | None = None
) -> list[RecordedEvent]:
    """Every event of ``segment``, in position order, equal field by field to what the hot
    log gave before it was archived (see :func:`open_segment` for ``archive`` and the
    errors)."""
    opened = open_segment(segment, archive)
    try:
        return list(opened.events())
    except SegmentFormatError as error:
        path = str(segment.path(archive_directory(archive)))
        raise SegmentDamaged(segment.file_name, path, str(error)) from error

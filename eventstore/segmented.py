"""Reading the log across the archive: the events of sealed segments from their files, the
rest from the events table, as one log.

The segments hold positions ``1 .. S`` (S: the last sealed position, 0 before the first
archive), the table ``S+1 ..``. A reading that starts after S never lists, opens or needs a
segment. A reading that needs one reads the file where the database recorded it, or in the
directory the segments moved to (``archive``; default ``MASTERTRAIL_ARCHIVE``); a missing
file is :class:`~eventstore.errors.ArchiveUnavailable` naming the segment.

The table and the segments are read in one transaction, so that rows sealed meanwhile by
an archive running beside the reader are found in their segment; a streamed reading that
finds its next position gone from the table (sealed since its last batch) lists the
segments again.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.archive import (
    Segment,
    archive_directory,
    archived_through,
    list_segments,
    open_segment,
    segment_at,
)
from eventstore.archive import _segment as segment_of_row
from eventstore.archive_format import MasterSnapshot, SegmentFormatError
from eventstore.archive_read import SegmentFile
from eventstore.engine import reading, translate_errors
from eventstore.errors import SegmentDamaged
from eventstore.reads import BATCH_SIZE, read_after, read_range
from eventstore.recorded import RecordedEvent, from_micros
from eventstore.schema import archive_segments

Archive = str | os.PathLike[str] | None


#: Segment files opened lately, decompressed, by their recorded SHA-256 and the identity of
#: the file they were read from (path, inode, size, modification time).
_OPENED: OrderedDict[tuple[str, str, int, int, int], SegmentFile] = OrderedDict()
_OPENED_KEPT = 8
_opened_lock = threading.Lock()


def open_segment_kept(segment: Segment, archive: Archive) -> SegmentFile:
    """:func:`~eventstore.archive.open_segment`, kept for the next readings of the same
    segment (a few at a time): a sealed segment never changes, so while its file is the
    one read and checked then (the same inode, size and modification time), it is neither
    read nor decompressed again. A file gone or changed is read again, and raises as
    :func:`~eventstore.archive.open_segment` does."""
    path = segment.path(archive_directory(archive))
    try:
        found = path.stat()
    except OSError:
        return open_segment(segment, archive)  # raises ArchiveUnavailable naming it
    key = (segment.file_sha256, str(path), found.st_ino, found.st_size, found.st_mtime_ns)
    with _opened_lock:
        opened = _OPENED.get(key)
        if opened is not None:
            _OPENED.move_to_end(key)
            return opened
    opened = open_segment(segment, archive)
    with _opened_lock:
        _OPENED[key] = opened
        while len(_OPENED) > _OPENED_KEPT:
            _OPENED.popitem(last=False)
    return opened


def segment_events(
    segment: Segment, archive: Archive, opened: SegmentFile | None = None
) -> list[RecordedEvent]:
    """Every event of ``segment``, read from its file (see :func:`open_segment`), or from
    ``opened``, its file already opened."""
    opened = open_segment(segment, archive) if opened is None else opened
    try:
        return list(opened.events())
    except SegmentFormatError as error:
        raise SegmentDamaged(segment.file_name, str(segment.path(archive)), str(error)) from error


def _segment_after(
    segment: Segment, archive: Archive, after: int, limit: int | None
) -> list[RecordedEvent]:
    """At most ``limit`` events of ``segment`` after position ``after``; the events are
    chained from its start, but only as far as the last one wanted."""
    opened = open_segment(segment, archive)
    wanted = (e for e in opened.events() if e.position > after)
    try:
        return list(itertools.islice(wanted, limit))
    except SegmentFormatError as error:
        raise SegmentDamaged(segment.file_name, str(segment.path(archive)), str(error)) from error


def iter_log_through(
    engine: Engine,
    *,
    archive: Archive = None,
    after: int = 0,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[RecordedEvent]:
    """Every event after position ``after`` (at most ``limit``), in position order: those of
    the segments a segment at a time, then the table's in batches of ``batch_size``, each
    read in a short transaction of its own."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        with translate_errors(), reading(engine) as conn:
            sealed = archived_through(conn)
            segment = segment_at(conn, after + 1) if after < sealed else None
            batch = [] if segment is not None else read_after(conn, after, size)
        if segment is not None:  # the rest of the segment at once: it is read whole anyway
            batch = _segment_after(segment, archive, after, remaining)
        elif batch and batch[0].position != after + 1:
            continue  # sealed since the segments were listed: read them from the segment
        yield from batch
        if not batch or (segment is None and len(batch) < size):
            return
        after = batch[-1].position
        if remaining is not None:
            remaining -= len(batch)


def segment_holding(conn: Connection, position: int) -> Segment | None:
    """The sealed segment holding ``position``, or None (hot, or past the log's end)."""
    return segment_at(conn, position) if position >= 1 else None


def states_before(segment: Segment, archive: Archive) -> tuple[MasterSnapshot, ...]:
    """Every master's state just before the first event of ``segment``, from its header."""
    return open_segment(segment, archive).header.masters


def read_history(
    conn: Connection,
    master_id: int,
    *,
    archive: Archive = None,
    since: int | None = None,
    until: int | None = None,
) -> list[RecordedEvent]:
    """The events of one master recorded in ``[since, until]`` (microseconds; either end
    may be open), in order: from the segments recorded within that window, then the
    table."""
    found: list[RecordedEvent] = []
    for segment in _within(conn, since, until):
        found.extend(
            e
            for e in segment_events(segment, archive)
            if e.master_id == master_id and _inside(e, since, until)
        )
    found.extend(read_range(conn, since=since, until=until, master_id=master_id))
    return found


def read_window(
    conn: Connection,
    *,
    archive: Archive = None,
    since: int | None = None,
    until: int | None = None,
) -> list[RecordedEvent]:
    """Every event recorded in ``[since, until]``, in position order, segments included."""
    found: list[RecordedEvent] = []
    for segment in _within(conn, since, until):
        found.extend(e for e in segment_events(segment, archive) if _inside(e, since, until))
    found.extend(read_range(conn, since=since, until=until))
    return found


def _within(conn: Connection, since: int | None, until: int | None) -> list[Segment]:
    """The segments with an event recorded in ``[since, until]`` (a clock may step back, so
    a segment's first and last times bound its events only loosely: the columns' range is
    what the sealing recorded, its events' own extremes)."""
    table = archive_segments
    query = sa.select(table.c.first_position)
    if since is not None:
        query = query.where(table.c.last_recorded_at >= since)
    if until is not None:
        query = query.where(table.c.first_recorded_at <= until)
    wanted = {int(p) for p in conn.execute(query).scalars()}
    if not wanted:
        return []
    return [s for s in list_segments(conn) if s.first_position in wanted]


def _inside(event: RecordedEvent, since: int | None, until: int | None) -> bool:
    if since is not None and event.recorded_at < from_micros(since):
        return False
    return until is None or event.recorded_at <= from_micros(until)


def segment_recorded_by(conn: Connection, when: int) -> Segment | None:
    """The newest segment whose first event was recorded at or before ``when``
    (microseconds): the one holding the newest sealed event recorded by then, with a clock
    that never runs backwards. None when every sealed event is later. One statement."""
    table = archive_segments
    found = conn.execute(
        sa.select(table)
        .where(table.c.first_recorded_at <= when)
        .order_by(table.c.first_position.desc())
        .limit(1)
    ).first()
    return None if found is None else segment_of_row(found)


def sealed_position_at(conn: Connection, when: int, archive: Archive) -> int | None:
    """The position of the newest sealed event recorded at or before ``when``
    (microseconds), or None when every sealed event is later (or nothing is sealed)."""
    segment = segment_recorded_by(conn, when)
    if segment is None:
        return None
    if segment.last_recorded_at <= from_micros(when):
        return segment.last_position
    newest = segment.first_position
    for row in open_segment_kept(segment, archive).rows(until=when):
        newest = row[0]
    return newest


__all__ = [
    "Archive",
    "iter_log_through",
    "open_segment_kept",
    "read_history",
    "read_window",
    "sealed_position_at",
    "segment_events",
    "segment_holding",
    "segment_recorded_by",
    "states_before",
]

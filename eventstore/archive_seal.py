"""Sealing: the log's oldest events move into segment files, a short batch at a time.

For each segment, in log order: its rows are read (a short read, no lock), encoded, and
the encoding read again, which re-chains every event (only rows whose hashes chain are
sealed); it is compressed (and the compressed bytes decompressed to the text checked),
written to a temporary file that is synced, renamed into place and its directory synced,
then read back and compared. Only then, in ONE transaction, the segment is recorded in
``mastertrail_archive_segments`` and its rows are deleted from ``mastertrail_events``
(the one delete the log's guards allow: see revision ``0007_archive_segments``). A process
killed at any moment leaves either the rows hot or the segment sealed; a file written for
a segment that was never recorded is written again by the next run. Segments are stored
(:mod:`eventstore.archive_store`) while the next ones are read and checked, each recorded
only after the one before it; a run that deleted rows then tidies the table
(:mod:`eventstore.archive_tidy`).

The transaction locks no row an append needs (not the head row), so masters heartbeat
beside it; on SQLite, whose writer lock is the whole file's, a heartbeat waits at most one
segment's delete. A master's newest event may be sealed too: the same transaction records
it as the stream's tip in ``mastertrail_archive_tips`` (revision
``0008_archive_stream_tips``), where an append reads the version of a stream with no event
left in the table; an append that chains onto that event itself (see
:mod:`eventstore.fused`) no longer finds it, and is refused as a conflict, so its command
reads the stream again.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.archive import archived_through, list_segments, open_segment
from eventstore.archive_format import (
    MasterSnapshot,
    SegmentFormatError,
    SegmentHeader,
    compress,
    encode_text,
)
from eventstore.archive_read import SegmentFile
from eventstore.archive_store import Checked, Recorder
from eventstore.archive_tidy import tidy
from eventstore.chain import StoredRow, Texts, stored_rows
from eventstore.engine import reading, translate_errors
from eventstore.errors import LogDamaged
from eventstore.links import GENESIS
from eventstore.reads import head_position, recorded_within
from eventstore.recorded import RecordedEvent, to_micros
from eventstore.schema import events

#: Events per segment: few enough that reading one (to answer ``masters_as_of`` inside
#: the archive) stays quick, and that its delete is a short transaction beside heartbeats.
SEGMENT_EVENTS = 2048

#: Folds master states over events: the states before ``events`` to those after. It is
#: given each master's first and last event of a segment only (:meth:`SegmentFile.check`):
#: every event describes its master's state after it, and the first may register it.
Fold = Callable[[Mapping[int, MasterSnapshot], Sequence[RecordedEvent]], dict[int, MasterSnapshot]]


@attrs.frozen(kw_only=True)
class ArchiveReport:
    """What :func:`archive` sealed (or, ``dry_run``, would seal): ``segments`` files holding
    ``events`` events in ``bytes`` bytes; the archive now ends at ``through`` (0: empty)."""

    segments: int
    events: int
    bytes: int
    through: int
    dry_run: bool = False


def seal(
    engine: Engine,
    *,
    before: int | dt.datetime,
    to: str | os.PathLike[str],
    fold: Fold,
    dry_run: bool = False,
    segment_events: int | None = None,
    clock: Callable[[], float] = time.time,
) -> ArchiveReport:
    """Seal the events before ``before`` (a position: those below it; an aware datetime:
    the events up to the first recorded at or after it) into segment files in ``to``.

    ``fold`` carries the masters' states across events (each segment's header records them
    as they were before its first event). Raises :class:`LogDamaged` when the events to
    seal do not chain, and :class:`~eventstore.errors.ArchiveUnavailable` when the last
    sealed segment, whose states the next one continues from, cannot be read."""
    directory = Path(to).absolute()
    segment_events = SEGMENT_EVENTS if segment_events is None else segment_events
    segments = events_ = size = 0
    while True:
        with translate_errors(), reading(engine) as conn:
            through = archived_through(conn)
            limit = _limit(conn, before)
        if through >= limit:
            if segments and not dry_run:
                tidy(engine, deleted=events_)
            return ArchiveReport(
                segments=segments, events=events_, bytes=size, through=through, dry_run=dry_run
            )
        states, previous = _start(engine, directory, through, fold)
        sealed = _seal_run(
            engine, directory, through, limit, states, previous, fold,
            dry_run=dry_run, segment_events=segment_events, clock=clock,
        )  # fmt: skip
        segments, events_, size = segments + sealed[0], events_ + sealed[1], size + sealed[2]
        if dry_run or sealed[3]:
            if sealed[0] and not dry_run:
                tidy(engine, deleted=events_)
            return ArchiveReport(
                segments=segments,
                events=events_,
                bytes=size,
                through=limit if dry_run else sealed[4],
                dry_run=dry_run,
            )
        # Another archiver sealed the next segment first: start again from the table.


def _seal_run(
    engine: Engine,
    directory: Path,
    through: int,
    limit: int,
    states: dict[int, MasterSnapshot],
    previous: bytes,
    fold: Fold,
    *,
    dry_run: bool,
    segment_events: int,
    clock: Callable[[], float],
) -> tuple[int, int, int, bool, int]:
    """Seal segments from ``through + 1`` to ``limit``: (segments, events, bytes, whether
    it reached ``limit``, the last position sealed). Each segment is stored (its file
    written, then recorded) by a :class:`~eventstore.archive_store.Recorder` while the next
    one is read and checked."""
    done = _Done(through)
    names = Texts()
    if dry_run:
        recorder = None
    else:
        directory.mkdir(parents=True, exist_ok=True)
        recorder = Recorder(engine, directory, clock)
    try:
        while through < limit:
            first, last = through + 1, min(through + segment_events, limit)
            rows = _rows(engine, first, last, names)
            if rows is None:
                return done.result(recorder, reached=False)
            header, text = encode_text(rows, previous, states, names)
            recorded = _check(header, text)
            after = fold(states, recorded)
            if recorder is None:
                done.count(header, len(compress(text)))
            else:
                if recorder.full and not done.add(recorder):  # stored meanwhile
                    return done.result(recorder, reached=False)
                newest = {event.master_id: event.position for event in recorded}
                recorder.submit(
                    Checked(header=header, text=text, newest=newest.values(), states=after)
                )
            states = after
            previous, through = header.last_hash, last
        return done.result(recorder, reached=True)
    finally:
        if recorder is not None:
            recorder.close()


@attrs.define
class _Done:
    """What a run stored so far."""

    through: int
    segments: int = 0
    events: int = 0
    bytes: int = 0

    def count(self, header: SegmentHeader, size: int) -> None:
        self.through = header.last_position
        self.segments, self.events, self.bytes = (
            self.segments + 1, self.events + header.count, self.bytes + size
        )  # fmt: skip

    def add(self, recorder: Recorder | None) -> bool:
        """Count the oldest segment ``recorder`` is storing, if any, once stored; False
        when it was not recorded (another archiver recorded one there first)."""
        stored = None if recorder is None else recorder.wait()
        if stored is None:
            return True
        segment, size = stored
        if size is None:
            return False
        self.count(segment.header, size)
        return True

    def result(
        self, recorder: Recorder | None, *, reached: bool
    ) -> tuple[int, int, int, bool, int]:
        """The run's result once every segment submitted is stored (or not)."""
        while recorder is not None and recorder.pending:
            reached = self.add(recorder) and reached
        return self.segments, self.events, self.bytes, reached, self.through


def _check(header: SegmentHeader, text: str) -> list[RecordedEvent]:
    """Read ``text`` back as a segment file and re-chain its events from the previous hash
    to the last row's stored one (only rows whose hashes chain are sealed): the events a
    fold of it needs (:meth:`SegmentFile.check`)."""
    first, last = header.first_position, header.last_position
    try:
        opened = SegmentFile.of_text(text)
        if opened.header != header:
            raise SegmentFormatError("its header does not read back as written")
        return opened.check()
    except SegmentFormatError as error:
        raise LogDamaged(f"positions {first}..{last} cannot be archived: {error}") from error


def _limit(conn: Connection, before: int | dt.datetime) -> int:
    """The last position to archive: below ``before`` and at or below the log's last."""
    if isinstance(before, dt.datetime):
        found = conn.execute(
            sa.select(sa.func.min(events.c.position)).where(
                *recorded_within(conn.dialect, to_micros(before), None)
            )
        ).scalar()
        limit = head_position(conn) if found is None else int(found) - 1
    else:
        limit = before - 1
    return min(limit, head_position(conn))


def _start(
    engine: Engine, directory: Path, through: int, fold: Fold
) -> tuple[dict[int, MasterSnapshot], bytes]:
    """The masters' states after position ``through`` and the hash there: the last sealed
    segment's header states, folded over its events (its file in ``directory``, else
    where :func:`~eventstore.archive.open_segment` looks)."""
    if through == 0:
        return {}, GENESIS
    last = list_segments(engine)[-1]
    opened = open_segment(last, directory if (directory / last.file_name).exists() else None)
    before = {master.id: master for master in opened.header.masters}
    try:
        return fold(before, opened.check()), opened.header.last_hash
    except SegmentFormatError as error:
        raise LogDamaged(f"archive segment {last.file_name}: {error}") from error


def _rows(engine: Engine, first: int, last: int, names: Texts) -> list[StoredRow] | None:
    """The rows of positions ``first`` .. ``last`` as the driver reads them, their texts
    read into ``names``; None when another archiver sealed them first (read in the same
    snapshot)."""
    with translate_errors(), reading(engine) as conn:
        rows = stored_rows(conn, first - 1, last, last - first + 1)
        names.read(conn, rows)
        if len(rows) != last - first + 1 or rows[0][0] != first:
            if archived_through(conn) >= first:
                return None
            raise LogDamaged(f"positions {first}..{last} are not all in the log: nothing archived")
    return rows

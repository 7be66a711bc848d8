"""Sealing: the log's oldest events move into segment files, a short batch at a time.

For each segment, in log order: its rows are read (a short read, no lock), encoded, and
the encoding read again, which re-chains every event (only rows whose hashes chain are
sealed); it is written to a temporary file that is synced, renamed into place and its
directory synced, then read back and compared. Only then, in ONE
transaction, the segment is recorded in ``mastertrail_archive_segments`` and its rows are
deleted from ``mastertrail_events`` (the one delete the log's guards allow: see revision
``0007_archive_segments``). A process killed at any moment leaves either the rows hot or
the segment sealed; a file written for a segment that was never recorded is written again
by the next run.

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
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from eventstore.archive import archived_through, list_segments, open_segment
from eventstore.archive_format import (
    COLUMNS,
    MasterSnapshot,
    SegmentFile,
    SegmentFormatError,
    encode,
    file_name,
)
from eventstore.archive_states import record_end_states
from eventstore.chain import GENESIS
from eventstore.engine import reading, translate_errors
from eventstore.errors import LogDamaged
from eventstore.reads import EVENT_ROWS, head_position, recorded_within
from eventstore.recorded import RecordedEvent, to_micros
from eventstore.schema import archive_segments, archive_tips, events

log = structlog.get_logger("mastertrail.archive")

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
            if segments and not dry_run and engine.dialect.name == "mysql":
                _forget_history(engine)
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
            if sealed[0] and not dry_run and engine.dialect.name == "mysql":
                _forget_history(engine)
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
    it reached ``limit``, the last position sealed)."""
    segments = count = size = 0
    if not dry_run:
        directory.mkdir(parents=True, exist_ok=True)
    while through < limit:
        first, last = through + 1, min(through + segment_events, limit)
        rows = _rows(engine, first, last)
        if rows is None:
            return segments, count, size, False, through
        try:
            header, blob = encode(rows, previous, states)
            # Checking it re-chains every event from the previous hash to the last row's.
            recorded = SegmentFile(blob).check()
        except SegmentFormatError as error:
            raise LogDamaged(f"positions {first}..{last} cannot be archived: {error}") from error
        after = fold(states, recorded)
        if not dry_run:
            name = file_name(first, last)
            _write(directory / name, blob)
            row = {
                "first_position": first,
                "last_position": last,
                "first_recorded_at": header.first_recorded_at,
                "last_recorded_at": header.last_recorded_at,
                "count": header.count,
                "previous_hash": previous,
                "last_hash": header.last_hash,
                "file_sha256": hashlib.sha256(blob).digest(),
                "file_name": name,
                "directory": str(directory),
                "sealed_at": int(clock() * 1_000_000),
            }
            if not _record(engine, row, after):
                return segments, count, size, False, through
            log.info("segment_sealed", first=first, last=last, bytes=len(blob), file=name)
        states = after
        previous, through = header.last_hash, last
        segments, count, size = segments + 1, count + header.count, size + len(blob)
    return segments, count, size, True, through


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


#: The log's rows in the column order :func:`~eventstore.archive_format.encode` unpacks.
_ROWS = EVENT_ROWS.with_only_columns(
    *(EVENT_ROWS.selected_columns[name] for name in COLUMNS), maintain_column_froms=True
)


def _rows(engine: Engine, first: int, last: int) -> list[Any] | None:
    """The rows of positions ``first`` .. ``last``; None when another archiver sealed
    them first (read in the same snapshot)."""
    with translate_errors(), reading(engine) as conn:
        rows = conn.execute(
            _ROWS.where(events.c.position >= first, events.c.position <= last).order_by(
                events.c.position
            )
        ).all()
        if len(rows) != last - first + 1 or rows[0].position != first:
            if archived_through(conn) >= first:
                return None
            raise LogDamaged(f"positions {first}..{last} are not all in the log: nothing archived")
    return list(rows)


def _record_tips() -> sa.Insert:
    """Record, as its stream's tip, every event of positions ``first`` .. ``last`` that is
    its master's newest (no later version in the table), before the segment's delete."""
    later = events.alias("later")
    newest = sa.select(
        events.c.master_id, events.c.version, events.c.hash, events.c.position
    ).where(
        events.c.position >= sa.bindparam("first"),
        events.c.position <= sa.bindparam("last"),
        ~sa.exists().where(
            later.c.master_id == events.c.master_id, later.c.version > events.c.version
        ),
    )
    return archive_tips.insert().from_select(["master_id", "version", "hash", "position"], newest)


_RECORD_TIPS = _record_tips()


def _write(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` durably (a synced temporary file renamed over any file a
    run that never recorded it left), and read it back: the very bytes that were checked."""
    # Of this process: two archivers racing for one segment write the same bytes, and the
    # database records it once.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as file:
        file.write(blob)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if path.read_bytes() != blob:
        raise OSError(f"{path} does not read back as written")


def _record(engine: Engine, row: dict[str, Any], states: Mapping[int, MasterSnapshot]) -> bool:
    """In one transaction, record the sealed segment and the masters' ``states`` after it
    (see :mod:`eventstore.archive_states`) and delete its rows from the log. False when
    another archiver recorded a segment there first (nothing changed)."""
    first, last = row["first_position"], row["last_position"]
    try:
        with translate_errors(), engine.begin() as conn:
            if archived_through(conn) != first - 1:
                return False
            conn.execute(archive_segments.insert().values(**row))
            record_end_states(conn, states, archived_through=last)
            conn.execute(_RECORD_TIPS, {"first": first, "last": last})
            deleted = conn.execute(
                events.delete().where(events.c.position >= first, events.c.position <= last)
            ).rowcount
            if deleted != row["count"]:
                raise LogDamaged(
                    f"positions {first}..{last}: {deleted} rows to delete, not {row['count']}"
                )
    except sa.exc.DBAPIError:
        # Another archiver recorded this segment first: the key refuses a second, or the
        # order guard, having seen the first, refuses it as not right after the last.
        with translate_errors(), reading(engine) as conn:
            if archived_through(conn) >= first:
                return False
        raise
    return True


def _forget_history(engine: Engine) -> None:
    """MariaDB keeps each deleted row of the system-versioned log as a history row: remove
    them, so the space is freed, once a run (the statement reads the whole table). Only
    archived rows are ever deleted, so the history holds nothing else; rows left by a run
    killed before it go with the next run's."""
    try:
        with translate_errors(), engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE HISTORY FROM {events.name}")
    except sa.exc.DBAPIError as error:  # the segment is sealed all the same
        log.warning(
            "archive_history_kept",
            reason=str(error.orig),
            hint="grant DELETE HISTORY on mastertrail_events to free the archived rows' space",
        )

"""Storing a checked segment: its file written durably and read back
(:func:`write_file`), then recorded, with its rows deleted, in one transaction
(:func:`record`); see :mod:`eventstore.archive_seal` for the order of the whole run and
what a kill leaves.

:class:`Recorder` stores the segments of a run in threads of their own, in log order,
while the run reads and checks the next ones: the compression, the file's syncs and the
database's work wait on the disk or the server, and leave the interpreter to the run
meanwhile.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import lzma
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from eventstore.archive import archived_through
from eventstore.archive_format import MasterSnapshot, SegmentHeader, compress, file_name
from eventstore.archive_states import record_end_states
from eventstore.engine import reading, translate_errors
from eventstore.errors import LogDamaged
from eventstore.schema import archive_segments, archive_tips, events

log = structlog.get_logger("mastertrail.archive")


@attrs.frozen(kw_only=True)
class Checked:
    """A segment whose text was read back and re-chained (the rows it holds chain from
    its previous hash to its last), ready to be stored. ``newest``: the position of each
    master's last event in it, the only ones that may be their stream's tip; ``states``:
    the masters' states after it (see :mod:`eventstore.archive_states`)."""

    header: SegmentHeader
    text: str
    newest: Collection[int]
    states: Mapping[int, MasterSnapshot]


#: Where a transaction holds the whole database's writer lock (SQLite's, the file's),
#: after each transaction recording a segment the next one waits this many times as long
#: as it took: the archive holds the lock at most a quarter of the time, and a heartbeat
#: that found it held gets in before the next (SQLite's busy handler tries again after
#: 1, 3, 8, 18 ms...). Elsewhere the transaction locks no row an append needs, and the
#: next one begins at once.
PAUSE = 3.0


class Pace:
    """Spaces the transactions of a run (see :data:`PAUSE`) when ``spaced``."""

    def __init__(self, *, spaced: bool = True) -> None:
        self._spaced = spaced
        self._free_at = 0.0

    def wait(self) -> None:
        """Wait until the next transaction may begin."""
        delay = self._free_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def took(self, began: float) -> None:
        """A transaction begun at ``began`` (:func:`time.monotonic`) just ended."""
        ended = time.monotonic()
        if self._spaced:
            self._free_at = ended + (ended - began) * PAUSE


@attrs.frozen
class Written:
    """A segment's file, written durably and read back: its name, size and SHA-256."""

    name: str
    size: int
    sha256: bytes


def write_file(directory: Path, segment: Checked) -> Written:
    """Compress ``segment``'s text (checking it decompresses to the text checked) and write
    it durably in ``directory``, read back."""
    header = segment.header
    blob = compress(segment.text)
    if lzma.decompress(blob, format=lzma.FORMAT_XZ) != segment.text.encode("utf-8"):
        raise LogDamaged(
            f"positions {header.first_position}..{header.last_position}: the compressed "
            "segment does not decompress to the text checked; nothing archived"
        )
    name = file_name(header.first_position, header.last_position)
    _write(directory / name, blob)
    return Written(name, len(blob), hashlib.sha256(blob).digest())


def record(
    engine: Engine,
    directory: Path,
    segment: Checked,
    written: Written,
    clock: Callable[[], float],
    pace: Pace | None = None,
) -> bool:
    """Record ``segment``, whose file is ``written`` in ``directory``, and delete its rows,
    in one transaction (when ``pace`` lets it begin); False when another archiver recorded
    a segment there first (nothing changed in the database)."""
    header = segment.header
    row = {
        "first_position": header.first_position,
        "last_position": header.last_position,
        "first_recorded_at": header.first_recorded_at,
        "last_recorded_at": header.last_recorded_at,
        "count": header.count,
        "previous_hash": header.previous_hash,
        "last_hash": header.last_hash,
        "file_sha256": written.sha256,
        "file_name": written.name,
        "directory": str(directory),
        "sealed_at": int(clock() * 1_000_000),
    }
    pace = pace or Pace()
    pace.wait()
    began = time.monotonic()
    try:
        if not _record(engine, row, segment.newest, segment.states):
            return False
    finally:
        pace.took(began)
    log.info(
        "segment_sealed",
        first=header.first_position,
        last=header.last_position,
        bytes=written.size,
        file=written.name,
    )
    return True


#: The interpreter's switch interval while a :class:`Recorder` runs (None: left alone).
#: The recorder's thread needs the interpreter between each wait on the disk or the
#: database, while the run's own thread is busy checking the next segment; with the
#: default interval (5 ms) it would wait that long each time, holding its transaction
#: open meanwhile.
SWITCH_INTERVAL: float | None = 0.0005

_switching = threading.Lock()
_switch_users = 0
_switch_before = 0.0


@contextlib.contextmanager
def _quick_switches() -> Iterator[None]:
    """:data:`SWITCH_INTERVAL` while the block runs (in any thread), then as before."""
    global _switch_users, _switch_before
    if SWITCH_INTERVAL is None:
        yield
        return
    with _switching:
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _switching:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_before)


class Recorder:
    """Stores segments in threads of their own, in the order given: one writes each file
    (:func:`write_file`), the other records each, once its file is written and every
    segment before it recorded (:func:`record`), so that the next file is written while a
    segment is recorded. :meth:`submit` a segment, and :meth:`wait` for the oldest; after
    a segment that is not recorded, none after it is."""

    #: Segments submitted and not waited for, at most.
    IN_FLIGHT = 2

    def __init__(self, engine: Engine, directory: Path, clock: Callable[[], float]) -> None:
        self._engine, self._directory, self._clock = engine, directory, clock
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mastertrail-archive-write"
        )
        self._recorder = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mastertrail-archive-record"
        )
        self._pending: collections.deque[tuple[Checked, concurrent.futures.Future[int | None]]] = (
            collections.deque()
        )
        self._stopped = False  # a segment was not recorded: record none after it
        # SQLite's writer lock is the file's: a heartbeat waits for the whole transaction.
        self._pace = Pace(spaced=engine.dialect.name == "sqlite")
        self._switches = _quick_switches()
        self._switches.__enter__()

    @property
    def pending(self) -> int:
        """Segments submitted and not waited for."""
        return len(self._pending)

    @property
    def full(self) -> bool:
        """Whether :meth:`wait` must be called before the next :meth:`submit`."""
        return len(self._pending) >= self.IN_FLIGHT

    def submit(self, segment: Checked) -> None:
        assert not self.full, "wait for the oldest segment first"
        written = self._writer.submit(write_file, self._directory, segment)
        recorded = self._recorder.submit(self._record, segment, written)
        self._pending.append((segment, recorded))

    def wait(self) -> tuple[Checked, int | None] | None:
        """The oldest segment submitted and not waited for (None: none), with its file's
        bytes once recorded, or None when it was not (another archiver recorded one there
        first, or one before it was not recorded); raises what storing it raised."""
        if not self._pending:
            return None
        segment, recorded = self._pending.popleft()
        return segment, recorded.result()

    def _record(self, segment: Checked, written: concurrent.futures.Future[Written]) -> int | None:
        if self._stopped:
            return None
        try:
            done = written.result()
            if record(self._engine, self._directory, segment, done, self._clock, self._pace):
                return done.size
        except BaseException:
            self._stopped = True
            raise
        self._stopped = True
        return None

    def close(self) -> None:
        """Let the segments being stored finish (recorded or not; what went wrong is
        logged: the caller is raising already) and end the threads."""
        try:
            while self._pending:
                try:
                    self.wait()
                except Exception as error:  # the caller's error is the one raised
                    log.warning("segment_not_sealed", reason=str(error))
        finally:
            self._writer.shutdown(wait=True)
            self._recorder.shutdown(wait=True)
            self._switches.__exit__(None, None, None)


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


def _record_tips() -> sa.Insert:
    """Record, as its stream's tip, every event of the given positions (each master's last
    in the segment) that is its master's newest (no next version in the table), before
    the segment's delete. Every other event of the segment has a later version in it.

    A stream's versions have no gaps, and a later one is never archived first, so "no
    later version" is "no next version": one seek of the stream index. MariaDB reads a
    ``version >`` the outer row's as every entry of the master from its first (its
    history rows, during a run, included), in each segment's transaction."""
    later = events.alias("later")
    newest = sa.select(
        events.c.master_id, events.c.version, events.c.hash, events.c.position
    ).where(
        events.c.position.in_(sa.bindparam("positions", expanding=True)),
        ~sa.exists().where(
            later.c.master_id == events.c.master_id, later.c.version == events.c.version + 1
        ),
    )
    return archive_tips.insert().from_select(["master_id", "version", "hash", "position"], newest)


_RECORD_TIPS = _record_tips()
_INSERT_SEGMENT = archive_segments.insert()
_DELETE_ROWS = events.delete().where(
    events.c.position >= sa.bindparam("first"), events.c.position <= sa.bindparam("last")
)


def _record(
    engine: Engine,
    row: dict[str, Any],
    newest: Collection[int],
    states: Mapping[int, MasterSnapshot],
) -> bool:
    """In one transaction, record the sealed segment, its masters' candidate tips and
    ``states`` after it (see :mod:`eventstore.archive_states`), and delete its rows from the
    log. False when another archiver recorded a segment there first (nothing changed)."""
    first, last = row["first_position"], row["last_position"]
    try:
        with translate_errors(), engine.begin() as conn:
            if archived_through(conn) != first - 1:
                return False
            conn.execute(_INSERT_SEGMENT, row)
            record_end_states(conn, states, archived_through=last)
            conn.execute(_RECORD_TIPS, {"positions": sorted(newest)})
            deleted = conn.execute(_DELETE_ROWS, {"first": first, "last": last}).rowcount
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


__all__ = ["Checked", "Recorder", "Written", "record", "write_file"]

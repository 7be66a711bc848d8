"""Rebuild the view from the log, and verify both: the developer's replay tools.

Both stream the log in batches (memory grows with the number of masters, not of events),
then finish under the log's head lock: the events that committed meanwhile are folded in,
and the view is written or compared while no writer can move it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.anchors import Anchor, check_anchors
from eventstore.archive_verify import verify_segments
from eventstore.chain import verify_chain
from eventstore.engine import begin_write, reading, translate_errors
from eventstore.errors import DecodeError
from eventstore.events import CODEC, MasterCheckedIn
from eventstore.reads import head_position
from eventstore.schema import events, texts
from eventstore.store import lock_head
from projections import view
from projections.drift import view_problems
from projections.fold import apply
from projections.model import MasterState
from projections.repair import repair_view
from projections.report import Problem, VerifyReport
from projections.snapshots import fold_snapshots

#: ``progress(events_done, events_total)``, called every batch.
Progress = Callable[[int, int], None]


def rebuild(engine: Engine, *, progress: Progress | None = None) -> int:
    """Replay the whole log into the view; returns the number of events replayed.

    Every row is made what the log says, keeping the log's ids (see
    :func:`projections.repair.repair_view`): updated in place, or inserted again with its
    recorded id when it went missing. Raises :class:`~eventstore.errors.RebuildRefused`,
    writing nothing, where that would delete a row another table references.
    """
    folder, replayed = _fold_log(engine, progress)
    with translate_errors(), engine.begin() as conn:
        begin_write(conn)
        replayed += _catch_up(conn, folder)
        repair_view(conn, folder.states())
        align_id_sequence(conn)
    return replayed


def verify(
    engine: Engine, *, progress: Progress | None = None, anchors: Sequence[Anchor] = ()
) -> VerifyReport:
    """Check the hash chain and every anchor, and compare the view with a fresh fold of
    the log (when the chain holds)."""
    chain = verify_chain(engine)
    problems = [Problem("chain", p.problem, position=p.position) for p in chain.problems]
    archived = verify_segments(engine, fold=fold_snapshots)
    problems.extend(Problem("archive", p.problem, position=p.position) for p in archived.problems)
    if anchors:
        with translate_errors(), reading(engine) as conn:
            missed = check_anchors(conn, anchors)
        problems.extend(Problem("anchor", p.problem, position=p.anchor.position) for p in missed)
    if not (chain.ok and archived.ok):
        return VerifyReport(chain.checked + archived.checked, problems, len(anchors))
    folder, folded = _fold_log(engine, progress)
    with translate_errors(), engine.begin() as conn:
        begin_write(conn)
        folded += _catch_up(conn, folder)
        rows = view.load_rows(conn)
    problems.extend(view_problems(folder.states(), rows))
    return VerifyReport(folded, problems, len(anchors))


def align_id_sequence(conn: Connection) -> None:
    """On PostgreSQL, move the ``masters.id`` sequence past every id in the table, so an
    insert that takes its id from the sequence never collides with a recorded one."""
    if conn.dialect.name != "postgresql":
        return
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence('masters', 'id')")).scalar()
    if sequence is None:
        return
    conn.execute(
        sa.text(
            "SELECT setval(CAST(:seq AS regclass), m) FROM (SELECT max(id) AS m FROM masters) t "
            f"WHERE m >= (SELECT last_value FROM {sequence})"
        ),
        {"seq": sequence},
    )


def _fold_log(engine: Engine, progress: Progress | None) -> tuple[_Folder, int]:
    """Every master folded from the whole log, streamed; with the count of events."""
    folder = _Folder()
    total = 0
    if progress is not None:
        with translate_errors(), reading(engine) as conn:
            total = head_position(conn)
    while True:
        with translate_errors(), reading(engine) as conn:
            batch = _rows_after(conn, folder.last, _BATCH)
        folder.feed(batch)
        if progress is not None and batch:
            progress(folder.count, max(total, folder.count))
        if len(batch) < _BATCH:
            return folder, folder.count


def _catch_up(conn: Connection, folder: _Folder) -> int:
    """Lock the head and fold what committed after the streamed part; returns how many."""
    head = lock_head(conn)
    before = folder.count
    while folder.last < head.position:
        batch = _rows_after(conn, folder.last, _BATCH)
        if not batch:
            break
        folder.feed(batch)
    return folder.count - before


_BATCH = 10_000
_FOLD_COLUMNS = (
    "position",
    "master_id",
    "version",
    "t.text",
    "schema_version",
    "data",
    "recorded_at",
)


def _rows_after(conn: Connection, after: int, limit: int) -> list[tuple[Any, ...]]:
    """The columns a fold needs, of at most ``limit`` events after position ``after``.

    Read with the driver's own cursor, in the connection's transaction: a rebuild reads
    every row of the log, and SQLAlchemy's row objects would cost more than the fold.
    """
    sql = (
        f"SELECT {', '.join(_FOLD_COLUMNS)} FROM {events.name} "
        f"LEFT JOIN {texts.name} t ON t.id = type_id "
        f"WHERE position > {int(after)} ORDER BY position LIMIT {int(limit)}"
    )
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


class _Folder:
    """A streaming fold of every master. A check-in only sets ``active``, ``last_active``
    and the version, so of a run of one master's check-ins only the newest is decoded and
    applied (when the master's next other event arrives, or at the end): the states are
    those of applying every event, at a fraction of the decoding. The row is kept whole,
    ``recorded_at`` included, so a version 2 check-in whose data leaves ``last_active``
    out (``{}``) is decoded with it like any other."""

    def __init__(self) -> None:
        self._states: dict[int, MasterState] = {}
        self._pending: dict[int, Any] = {}
        self.count = 0
        self.last = 0

    def feed(self, rows: list[tuple[Any, ...]]) -> None:
        """Fold ``(position, master_id, version, type, schema_version, data, recorded_at)``
        rows, in log order (``recorded_at`` in microseconds since the epoch). A batch at a
        time, so that a check-in costs one comparison and one store in a loop of locals."""
        if not rows:
            return
        pending, checked_in = self._pending, _CHECKED_IN
        for row in rows:
            if row[3] == checked_in:
                pending[row[1]] = row
            else:
                self._flush(row[1])
                self._apply(row)
        self.count += len(rows)
        self.last = rows[-1][0]

    def states(self) -> dict[int, MasterState]:
        """The folded states, with every pending check-in applied."""
        for master_id in list(self._pending):
            self._flush(master_id)
        return self._states

    def _flush(self, master_id: int) -> None:
        row = self._pending.pop(master_id, None)
        if row is not None:
            self._apply(row)

    def _apply(self, row: tuple[Any, ...]) -> None:
        position, master_id, version, type_name, schema_version, text, recorded_at = row
        try:
            data = json.loads(text)
        except ValueError as error:
            raise DecodeError(f"position {position}: data is not JSON") from error
        if not isinstance(data, dict):
            raise DecodeError(f"position {position}: data is not a JSON object")
        if type_name is None:
            raise DecodeError(f"position {position}: its type text is missing")
        event = CODEC.decode_data(type_name, schema_version, data, recorded_at=recorded_at)
        self._states[master_id] = apply(self._states.get(master_id), master_id, version, event)


_CHECKED_IN = MasterCheckedIn.type_name

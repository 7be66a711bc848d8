"""Rebuild the view from the log, and verify both: the developer's replay tools.

Both stream the log in batches (memory grows with the number of masters, not of events),
then finish under the log's head lock: the events that committed meanwhile are folded in,
and the view is written or compared while no writer can move it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection, Engine

from eventstore import (
    FOLD_BATCH,
    Anchor,
    Archive,
    archived_through,
    begin_write,
    check_anchors,
    fold_rows,
    head_position,
    lock_head,
    reading,
    translate_errors,
    verify_chain,
    verify_segments,
)
from projections import view
from projections.archived import sealed_batches
from projections.drift import view_problems
from projections.fold import RowFold
from projections.repair import repair_view
from projections.report import Problem, VerifyReport
from projections.snapshots import fold_snapshots, to_state

#: ``progress(events_done, events_total)``, called every batch.
Progress = Callable[[int, int], None]


def rebuild(engine: Engine, *, progress: Progress | None = None, archive: Archive = None) -> int:
    """Replay the whole log into the view; returns the number of events replayed.

    Every row is made what the log says, keeping the log's ids (see
    :func:`projections.repair.repair_view`): updated in place, or inserted again with its
    recorded id when it went missing. Raises :class:`~eventstore.errors.RebuildRefused`,
    writing nothing, where that would delete a row another table references. The
    archived events are read from their segments (``archive``: the directory they moved
    to, see :func:`eventstore.open_segment`).
    """
    folder, replayed = _fold_log(engine, progress, archive)
    with translate_errors(), engine.begin() as conn:
        begin_write(conn)
        replayed += _catch_up(conn, folder, archive)
        repair_view(conn, folder.states())
        view.align_id_sequence(conn)
    return replayed


def verify(
    engine: Engine,
    *,
    progress: Progress | None = None,
    anchors: Sequence[Anchor] = (),
    archive: Archive = None,
) -> VerifyReport:
    """Check the hash chain and every anchor, and compare the view with a fresh fold of
    the log (when the chain holds).

    The fold starts where the archive ends, from the masters' states that checking the
    segments folded (:func:`~eventstore.verify_segments`: each segment's events re-chained,
    and each master's first and last event in it folded, every event holding its master's
    whole state), so that a segment is read once; the table's events are folded on them."""
    chain = verify_chain(engine)
    problems = [Problem("chain", p.problem, position=p.position) for p in chain.problems]
    archived = verify_segments(engine, archive=archive, fold=fold_snapshots)
    problems.extend(Problem("archive", p.problem, position=p.position) for p in archived.problems)
    if anchors:
        with translate_errors(), reading(engine) as conn:
            missed = check_anchors(conn, anchors)
        problems.extend(Problem("anchor", p.problem, position=p.anchor.position) for p in missed)
    if not (chain.ok and archived.ok):
        return VerifyReport(chain.checked + archived.checked, problems, len(anchors))
    states = {key: to_state(snapshot) for key, snapshot in (archived.states or {}).items()}
    start = RowFold(states=states, last=archived.through, count=archived.checked)
    folder, folded = _fold_log(engine, progress, archive, start)
    with translate_errors(), engine.begin() as conn:
        begin_write(conn)
        folded += _catch_up(conn, folder, archive)
        rows = view.load_rows(conn)
    problems.extend(view_problems(folder.states(), rows))
    return VerifyReport(folded, problems, len(anchors))


def _fold_log(
    engine: Engine, progress: Progress | None, archive: Archive, folder: RowFold | None = None
) -> tuple[RowFold, int]:
    """Every master folded from the whole log (after what ``folder`` folded already),
    streamed: the archived events a segment at a time, then the table's in batches, each
    read in a short transaction of its own; with the count of events."""
    folder = RowFold() if folder is None else folder
    total = 0
    if progress is not None:
        with translate_errors(), reading(engine) as conn:
            total = head_position(conn)
    while True:
        with translate_errors(), reading(engine) as conn:
            _fold_sealed(conn, folder, archive, progress, total)
            batch = fold_rows(conn, after=folder.last, limit=FOLD_BATCH)
        if batch and batch[0][0] != folder.last + 1:
            continue  # sealed since the segments were read: read them from the segment
        folder.feed(batch)
        if progress is not None and batch:
            progress(folder.count, max(total, folder.count))
        if len(batch) < FOLD_BATCH:
            return folder, folder.count


def _fold_sealed(
    conn: Connection,
    folder: RowFold,
    archive: Archive,
    progress: Progress | None = None,
    total: int = 0,
) -> None:
    """Fold the sealed events after the folder's last, from their segments."""
    if folder.last >= archived_through(conn):
        return
    for rows in sealed_batches(conn, archive, after=folder.last):
        folder.feed(rows)
        if progress is not None:
            progress(folder.count, max(total, folder.count))


def _catch_up(conn: Connection, folder: RowFold, archive: Archive) -> int:
    """Lock the head and fold what committed after the streamed part (and what an archive
    sealed meanwhile, from its segments); returns how many."""
    head = lock_head(conn)
    before = folder.count
    while folder.last < head.position:
        _fold_sealed(conn, folder, archive)
        batch = fold_rows(conn, after=folder.last, upto=head.position)
        if not batch:
            break
        folder.feed(batch)
    return folder.count - before

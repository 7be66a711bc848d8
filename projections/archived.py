"""Readings that reach into the archive: every master as of a position, and the fold of
the sealed part of the log.

A segment's header holds every master's state just before its first event, so the state
at a sealed position P is that header with the segment's events up to P folded on it: one
segment read, whatever the length of the archive. At the last position of a segment, and
at a position of the table, the masters' states where the archive ends are the ones the
database recorded with the segment (:func:`eventstore.recorded_end_states`): no segment
is opened. Only an archive whose newest segment was sealed before they were recorded
(revision ``0010``) folds them from that segment, once per process (a sealed segment
never changes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from sqlalchemy.engine import Connection

from eventstore import (
    Archive,
    RecordedEvent,
    Segment,
    SegmentRow,
    archived_through,
    from_micros,
    list_segments,
    newest_segment,
    open_segment,
    open_segment_kept,
    recorded_end_states,
    segment_events,
    segment_holding,
    segment_recorded_by,
    state_recorded_after,
)
from projections.model import MasterModel, MasterState
from projections.segment_fold import fold_segment
from projections.snapshots import to_state

#: The archive's end states, by database and newest segment (its last position and
#: SHA-256), the few last read: read from the database, or folded from a newest segment
#: sealed before they were recorded.
_END_STATES: dict[tuple[str, int, str], dict[int, MasterState]] = {}
_END_STATES_KEPT = 4
_lock = threading.Lock()


def states_at(conn: Connection, position: int, archive: Archive) -> list[MasterModel] | None:
    """Every master as the log stood right after the sealed ``position``, by id; None when
    the position is not sealed (the table answers)."""
    segment = segment_holding(conn, position)
    if segment is None:
        return None
    if position == segment.last_position:
        recorded = recorded_end_states(conn, position)
        if recorded is not None:
            return _models(to_state(snapshot) for snapshot in recorded.values())
    return _models(_fold_segment(segment, archive, upto=position).values())


def states_by(conn: Connection, when: int, archive: Archive) -> list[MasterModel]:
    """Every master as the log stood after its newest sealed event recorded at or before
    ``when`` (microseconds), by id: for a moment before the table's first event. One pass
    over one segment, or none when ``when`` is at or after the segment's last event (as
    :func:`eventstore.sealed_position_at` reads it)."""
    segment = segment_recorded_by(conn, when)
    if segment is None:
        return []
    if segment.last_recorded_at <= from_micros(when):
        recorded = recorded_end_states(conn, segment.last_position)
        if recorded is not None:
            return _models(to_state(snapshot) for snapshot in recorded.values())
    return _models(_fold_segment(segment, archive, until=when).values())


def end_states(
    conn: Connection, archive: Archive, newest: Segment | None = None
) -> dict[int, MasterState]:
    """Every master's state right after the archive's last event (empty when nothing is
    sealed); ``newest``: the last segment, when the caller has it. Read from the database
    (once per process and newest segment: they are recorded with it); folded from the
    newest segment only when it was sealed before they were recorded."""
    if newest is None:
        newest = newest_segment(conn)
        if newest is None:
            return {}
    key = (str(conn.engine.url), newest.last_position, newest.file_sha256)
    with _lock:
        kept = _END_STATES.get(key)
    if kept is not None:
        return dict(kept)
    recorded = recorded_end_states(conn, newest.last_position)
    if recorded is not None:
        states = {master_id: to_state(snapshot) for master_id, snapshot in recorded.items()}
    else:
        states = _fold_segment(newest, archive)
    with _lock:
        while len(_END_STATES) >= _END_STATES_KEPT:
            _END_STATES.pop(next(iter(_END_STATES)))
        _END_STATES[key] = dict(states)
    return dict(states)


def _models(states: Iterable[MasterState]) -> list[MasterModel]:
    return sorted((state.to_model() for state in states), key=lambda m: m.id)


#: Archived newest events of masters, by (master id, newest archived version, count).
_LATEST: dict[tuple[int, int, int], list[RecordedEvent]] = {}
_LATEST_KEPT = 1024


def complete_latest(
    conn: Connection,
    found: dict[int, list[RecordedEvent]],
    count: int,
    archive: Archive,
) -> dict[int, list[RecordedEvent]]:
    """``found`` (the newest ``count`` events of each master in the table, oldest first)
    with, for every master that has fewer there and older ones archived, its newest
    archived events before them."""
    short = {
        master_id: events
        for master_id, events in found.items()
        if len(events) < count and (not events or events[0].version > 1)
    }
    if not short or archived_through(conn) == 0:
        return found
    states = end_states(conn, archive)
    completed = dict(found)
    for master_id, events in short.items():
        top = events[0].version - 1 if events else states.get(master_id, _NONE).version
        if top < 1:
            continue
        completed[master_id] = _archived_tail(conn, master_id, top, count - len(events), archive)
        completed[master_id] += events
    return completed


def _archived_tail(
    conn: Connection, master_id: int, top: int, need: int, archive: Archive
) -> list[RecordedEvent]:
    """The archived events of ``master_id`` with versions ``top - need + 1 .. top``: from
    the segments the recorded states point at (:func:`_segment_of`), else read from the
    newest segment back, skipping by the headers the segments that hold none."""
    key = (master_id, top, need)
    with _lock:
        kept = _LATEST.get(key)
    if kept is not None:
        return list(kept)
    low = max(1, top - need + 1)
    tail = _tail_by_states(conn, master_id, low, top, archive)
    if tail is None:
        tail = _tail_by_walking(conn, master_id, low, top, archive)
    with _lock:
        if len(_LATEST) >= _LATEST_KEPT:
            _LATEST.clear()
        _LATEST[key] = list(tail)
    return tail


def _tail_by_states(
    conn: Connection, master_id: int, low: int, top: int, archive: Archive
) -> list[RecordedEvent] | None:
    """The archived events of ``master_id`` with versions ``low .. top``, each segment
    holding some found by :func:`_segment_of`: one segment read, most often, however many
    were sealed after it. None when the states recorded do not say (segments sealed
    before revision ``0010``)."""
    tail: list[RecordedEvent] = []
    want = top
    while want >= low:
        segment = _segment_of(conn, master_id, want)
        if segment is None:
            return None
        opened = open_segment_kept(segment, archive)
        before = {m.id: m.version for m in opened.header.masters}.get(master_id, 0)
        if before >= want:  # the states recorded start after the segment holding it
            return None
        first = max(low, before + 1)
        found = [
            e
            for e in segment_events(segment, archive, opened)
            if e.master_id == master_id and first <= e.version <= want
        ]
        if [e.version for e in found] != list(range(first, want + 1)):
            return None
        tail[:0] = found
        want = before
    return tail


def _segment_of(conn: Connection, master_id: int, version: int) -> Segment | None:
    """The segment holding ``version`` of ``master_id``, as the states recorded after the
    segments say (:func:`eventstore.state_recorded_after`); None when they do not."""
    through = state_recorded_after(conn, master_id, version)
    return None if through is None else segment_holding(conn, through)


def _tail_by_walking(
    conn: Connection, master_id: int, low: int, top: int, archive: Archive
) -> list[RecordedEvent]:
    """The archived events of ``master_id`` with versions ``low .. top``, read from the
    newest segment back."""
    tail: list[RecordedEvent] = []
    for segment in reversed(list_segments(conn)):
        opened = open_segment(segment, archive)
        before = {m.id: m.version for m in opened.header.masters}.get(master_id, 0)
        if before < top:
            tail[:0] = [
                e
                for e in segment_events(segment, archive, opened)
                if e.master_id == master_id and low <= e.version <= top
            ]
        if before < low:
            break
    return tail


def sealed_rows(segment: Segment, archive: Archive) -> list[SegmentRow]:
    """The fold rows of every event of ``segment``."""
    return list(open_segment(segment, archive).rows())


def sealed_batches(
    conn: Connection, archive: Archive, *, after: int = 0
) -> Iterator[list[SegmentRow]]:
    """The fold rows of every sealed event after position ``after``, a segment at a time."""
    for segment in list_segments(conn):
        if segment.last_position > after:
            rows = sealed_rows(segment, archive)
            yield (
                [row for row in rows if row[0] > after] if segment.first_position <= after else rows
            )


def _fold_segment(
    segment: Segment, archive: Archive, *, upto: int | None = None, until: int | None = None
) -> dict[int, MasterState]:
    """``segment``'s header states with its events up to position ``upto`` (and to the
    first recorded after ``until``) folded on them (see :mod:`projections.segment_fold`)."""
    return fold_segment(open_segment_kept(segment, archive), upto=upto, until=until)


#: The state of a master the archive does not know.
_NONE = MasterState(id=0, name="", active=False, last_active=0, version=0)

__all__ = [
    "complete_latest",
    "end_states",
    "sealed_batches",
    "sealed_rows",
    "states_at",
    "states_by",
]

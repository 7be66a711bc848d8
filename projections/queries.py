"""Questions the log answers: a master's trail, and every master as of a past moment.

``masters_as_of`` never replays the log: every event records the master's ``last_active``
after it, so a master's state at position P is its newest event at or before P (a binary
search of the stream index ``(master_id, version)``), named by its first event.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.reads import EVENT_ROWS, minute_of, recorded_minute, to_recorded
from eventstore.recorded import RecordedEvent
from eventstore.schema import events
from projections.fold import apply_recorded
from projections.model import MasterModel


def history(
    conn: Connection, master_id: int, *, since: int | None = None, until: int | None = None
) -> list[RecordedEvent]:
    """The events of one master, optionally within ``[since, until]`` (microseconds since
    the epoch), in order (a stream's versions follow its positions)."""
    query = EVENT_ROWS.where(events.c.master_id == master_id)
    if since is not None:
        query = query.where(events.c.recorded_at >= since)
    if until is not None:
        query = query.where(events.c.recorded_at <= until)
    return [to_recorded(row) for row in conn.execute(query.order_by(events.c.version))]


def position_at(conn: Connection, when: int) -> int:
    """The position of the newest event recorded at or before ``when`` (microseconds),
    0 when there is none. With a clock that never runs backwards this is the exact prefix of
    the log written by then.

    SQLite's time index holds minutes (:data:`~eventstore.reads.recorded_minute`): the newest
    event is in ``when``'s own minute, at or before it, or else anywhere in the newest
    earlier minute that has events. Either way one index seek, then that minute's events.
    """
    newest = sa.select(events.c.position).order_by(
        events.c.recorded_at.desc(), events.c.position.desc()
    )
    if conn.dialect.name != "sqlite":
        row = conn.execute(newest.where(events.c.recorded_at <= when).limit(1)).first()
        return 0 if row is None else int(row.position)
    minute = minute_of(when)
    row = conn.execute(
        newest.where(recorded_minute == minute, events.c.recorded_at <= when).limit(1)
    ).first()
    if row is None:
        earlier = conn.execute(
            sa.select(recorded_minute)
            .where(recorded_minute < minute)
            .order_by(recorded_minute.desc())
            .limit(1)
        ).scalar()
        if earlier is None:
            return 0
        row = conn.execute(newest.where(recorded_minute == earlier).limit(1)).first()
    return 0 if row is None else int(row.position)


def masters_as_of(conn: Connection, position: int) -> list[MasterModel]:
    """Every master as the log stood right after ``position`` (inclusive), by id.

    Two statements, index seeks only, whatever the length of the log: one finds, for every
    master, the position of its first event (its name) and of its newest event at or before
    ``position`` (its state); the other fetches those events.
    """
    pairs = _first_and_newest(conn, position)
    wanted = sorted({p for pair in pairs for p in pair})
    if not wanted:
        return []
    found = {
        row.position: to_recorded(row)
        for row in conn.execute(EVENT_ROWS.where(events.c.position.in_(wanted)))
    }
    models = []
    for first, newest in pairs:
        state = apply_recorded(None, found[first])
        if newest != first:
            state = apply_recorded(state, found[newest])
        models.append(state.to_model())
    return sorted(models, key=lambda model: model.id)


def _first_and_newest(conn: Connection, position: int) -> list[tuple[int, int]]:
    """``(first, newest)`` event positions at or before ``position`` of every master that
    existed then, in one statement of index seeks on the stream's ``(master_id,
    version)``: a recursive skip scan finds the master ids, and for each, since its
    positions grow with its versions, a binary search finds its newest version at or
    before ``position`` (about 20 seeks for a million events)."""
    later = events.alias("later")
    ids = sa.select(sa.func.min(events.c.master_id).label("id")).cte("ids", recursive=True)
    ids = ids.union_all(
        sa.select(
            sa.select(sa.func.min(later.c.master_id))
            .where(later.c.master_id > ids.c.id)
            .scalar_subquery()
        ).where(ids.c.id.is_not(None))
    )
    top = events.alias("top")
    newest_version = (
        sa.select(sa.func.max(top.c.version)).where(top.c.master_id == ids.c.id).scalar_subquery()
    )
    search = (
        sa.select(ids.c.id, sa.literal(1, sa.Integer()).label("low"), newest_version.label("high"))
        .where(ids.c.id.is_not(None), _position_of(ids.c.id, 1) <= position)
        .cte("search", recursive=True)
    )
    step = search.alias("step")
    middle = (step.c.low + step.c.high + 1) // 2
    fits = _position_of(step.c.id, middle) <= position
    search = search.union_all(
        sa.select(
            step.c.id,
            sa.case((fits, middle), else_=step.c.low),
            sa.case((fits, step.c.high), else_=middle - 1),
        ).where(step.c.low < step.c.high)
    )
    ends = sa.select(_position_of(search.c.id, 1), _position_of(search.c.id, search.c.low)).where(
        search.c.low == search.c.high
    )
    return [(int(first), int(newest)) for first, newest in conn.execute(ends)]


def _position_of(master_id: Any, version: Any) -> sa.ScalarSelect[int]:
    """The position of event ``version`` of ``master_id``: one seek of the stream index."""
    seek = events.alias()
    return (
        sa.select(seek.c.position)
        .where(seek.c.master_id == master_id, seek.c.version == version)
        .scalar_subquery()
    )

"""Questions the log answers: a master's trail, and every master as of a past moment.

``masters_as_of`` never replays the log: every event records the master's ``last_active``
after it, so a master's state at position P is its newest event at or before P (a binary
search of the stream index ``(master_id, version)``), named by its first event.
"""

from __future__ import annotations

import functools
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
            .select_from(events)
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
    version)`` (:func:`_search`)."""
    ends = conn.execute(_search(conn.dialect.name in ("mysql", "mariadb")), {"at": position})
    return [(int(first), int(newest)) for first, newest in ends]


@functools.cache
def _search(mariadb: bool) -> sa.Select[int, int]:
    """The statement of :func:`_first_and_newest`, built once; ``at`` is the position.

    For each master id (:func:`_master_ids`) whose first event is at or before ``at``,
    since a stream's positions grow with its versions, a binary search over its versions
    finds the newest at or before ``at``: each recursive step holds a range ``low..high``
    of versions, whose ``low`` is at or before ``at``, and the position of its middle,
    sought once (about 20 steps for a million events, whatever the number of masters).
    """
    at = sa.bindparam("at", type_=sa.BigInteger())
    ids = _master_ids(mariadb)
    first = _position_of(ids.c.id, 1)
    top = events.alias("top")
    newest = (  # not max(): MariaDB would read every version of the master for it
        sa.select(top.c.version)
        .where(top.c.master_id == ids.c.id)
        .order_by(top.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    known = (
        sa.select(ids.c.id, first.label("first"), newest.label("high"))
        .where(ids.c.id.is_not(None))
        .cte("known")
    )
    middle = (known.c.high + 2) // 2
    search = (
        sa.select(
            known.c.id,
            known.c.first,
            sa.literal(1, sa.Integer()).label("low"),
            known.c.high,
            middle.label("middle"),
            _position_of(known.c.id, middle).label("found"),
        )
        .where(known.c.first <= at)
        .cte("search", recursive=True)
    )
    step = search.alias("step")
    fits = step.c.found <= at
    low = sa.case((fits, step.c.middle), else_=step.c.low)
    high = sa.case((fits, step.c.high), else_=step.c.middle - 1)
    middle = (low + high + 1) // 2
    search = search.union_all(
        sa.select(
            step.c.id, step.c.first, low, high, middle, _position_of(step.c.id, middle)
        ).where(step.c.low < step.c.high)
    )
    # Where low = high, the middle is low: its position is the newest event's.
    return sa.select(search.c.first, search.c.found).where(search.c.low == search.c.high)


def _master_ids(mariadb: bool) -> sa.CTE:
    """Every master id of the log, as the CTE ``ids`` (on SQLite and PostgreSQL with a
    NULL row last). MariaDB lists them with a loose index scan of the stream index; its
    recursion would stop, silently, after ``max_recursive_iterations`` (1000 by default)
    ids. SQLite and PostgreSQL, which have no loose scan, skip from id to id recursively."""
    if mariadb:
        return sa.select(events.c.master_id.label("id")).distinct().cte("ids")
    later = events.alias("later")
    ids = sa.select(sa.func.min(events.c.master_id).label("id")).cte("ids", recursive=True)
    return ids.union_all(
        sa.select(
            sa.select(sa.func.min(later.c.master_id))
            .where(later.c.master_id > ids.c.id)
            .scalar_subquery()
        ).where(ids.c.id.is_not(None))
    )


def _position_of(master_id: Any, version: Any) -> sa.ScalarSelect[int]:
    """The position of event ``version`` of ``master_id``: one seek of the stream index."""
    seek = events.alias()
    return (
        sa.select(seek.c.position)
        .where(seek.c.master_id == master_id, seek.c.version == version)
        .scalar_subquery()
    )

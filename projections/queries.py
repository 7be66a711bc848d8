"""Questions the log answers: a master's trail, and every master as of a past moment.

``masters_as_of`` never replays the log: every event records the master's ``last_active``
after it, so a master's state at position P is its newest event at or before P (one
index seek on ``(master_id, position)``), named by its first event.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.reads import EVENT_ROWS, to_recorded
from eventstore.recorded import RecordedEvent
from eventstore.schema import events
from projections.fold import apply_recorded
from projections.model import MasterModel


def history(
    conn: Connection, master_id: int, *, since: int | None = None, until: int | None = None
) -> list[RecordedEvent]:
    """The events of one master, optionally within ``[since, until]`` (microseconds since
    the epoch), in order."""
    query = EVENT_ROWS.where(events.c.master_id == master_id)
    if since is not None:
        query = query.where(events.c.recorded_at >= since)
    if until is not None:
        query = query.where(events.c.recorded_at <= until)
    return [to_recorded(row) for row in conn.execute(query.order_by(events.c.position))]


def position_at(conn: Connection, when: int) -> int:
    """The position of the newest event recorded at or before ``when`` (microseconds),
    0 when there is none. With a clock that never runs backwards this is the exact prefix of
    the log written by then."""
    row = conn.execute(
        sa.select(events.c.position)
        .where(events.c.recorded_at <= when)
        .order_by(events.c.recorded_at.desc(), events.c.position.desc())
        .limit(1)
    ).first()
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
    existed then. MariaDB answers the GROUP BY with a loose index scan of
    ``(master_id, position)``; SQLite and PostgreSQL, which have none, get a recursive skip
    scan over the master ids with a correlated seek for each end (MariaDB would scan the
    whole index for that form)."""
    if conn.dialect.name in ("mysql", "mariadb"):
        grouped = (
            sa.select(sa.func.min(events.c.position), sa.func.max(events.c.position))
            .where(events.c.position <= position)
            .group_by(events.c.master_id)
        )
        return [(int(first), int(newest)) for first, newest in conn.execute(grouped)]
    later, seek = events.alias("later"), events.alias("seek")
    ids = sa.select(sa.func.min(events.c.master_id).label("id")).cte("ids", recursive=True)
    ids = ids.union_all(
        sa.select(
            sa.select(sa.func.min(later.c.master_id))
            .where(later.c.master_id > ids.c.id)
            .scalar_subquery()
        ).where(ids.c.id.is_not(None))
    )
    in_range = sa.and_(seek.c.master_id == ids.c.id, seek.c.position <= position)
    ends = sa.select(
        sa.select(sa.func.min(seek.c.position)).where(in_range).scalar_subquery().label("first"),
        sa.select(sa.func.max(seek.c.position)).where(in_range).scalar_subquery().label("newest"),
    ).where(ids.c.id.is_not(None))
    return [(int(first), int(newest)) for first, newest in conn.execute(ends) if first is not None]

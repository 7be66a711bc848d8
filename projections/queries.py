"""Questions the log answers: a master's trail, and every master as of a past moment.

``masters_as_of`` never replays the log: every event records the master's ``last_active``
after it, so a master's state at position P is its newest event at or before P (one
index seek on ``(master_id, position)``), named by its first event.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.reads import to_recorded
from eventstore.recorded import RecordedEvent
from eventstore.schema import events
from projections.fold import apply_recorded
from projections.model import MasterModel


def history(
    conn: Connection, master_id: int, *, since: int | None = None, until: int | None = None
) -> list[RecordedEvent]:
    """The events of one master, optionally within ``[since, until]`` (microseconds since
    the epoch), in order."""
    query = sa.select(events).where(events.c.master_id == master_id)
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
    """Every master as the log stood right after ``position`` (inclusive), by id."""
    models = []
    master_id = _next_master_id(conn, 0)
    while master_id is not None:
        first = _event(
            conn, master_id, sa.and_(events.c.version == 1, events.c.position <= position)
        )
        if first is not None:
            last = _event(conn, master_id, events.c.position <= position, newest=True)
            assert last is not None
            state = apply_recorded(None, first)
            if last.version != first.version:
                state = apply_recorded(state, last)
            models.append(state.to_model())
        master_id = _next_master_id(conn, master_id)
    return models


def _next_master_id(conn: Connection, after: int) -> int | None:
    """Skip scan over the ``(master_id, position)`` index: one seek per master."""
    found = conn.execute(
        sa.select(sa.func.min(events.c.master_id)).where(events.c.master_id > after)
    ).scalar()
    return None if found is None else int(found)


def _event(
    conn: Connection, master_id: int, condition: sa.ColumnElement[bool], *, newest: bool = False
) -> RecordedEvent | None:
    query = sa.select(events).where(events.c.master_id == master_id, condition)
    if newest:
        query = query.order_by(events.c.position.desc()).limit(1)
    row = conn.execute(query).first()
    return None if row is None else to_recorded(row)

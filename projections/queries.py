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
    """Every master as the log stood right after ``position`` (inclusive), by id.

    One statement lists the masters (a skip scan of the ``(master_id, position)`` index),
    then one per master fetches its first event (its name) and its newest event at or
    before ``position`` (its state): index seeks, whatever the length of the log.
    """
    models = []
    for master_id in _master_ids(conn):
        first = sa.select(sa.func.min(events.c.position)).where(events.c.master_id == master_id)
        newest = sa.select(sa.func.max(events.c.position)).where(
            events.c.master_id == master_id, events.c.position <= position
        )
        # A UNION of two primary-key lookups: an OR of the two made MariaDB scan the log.
        pair = sa.union_all(
            sa.select(events).where(events.c.position == first.scalar_subquery()),
            sa.select(events).where(events.c.position == newest.scalar_subquery()),
        ).subquery()
        rows = conn.execute(sa.select(pair).order_by(pair.c.position)).all()
        if not rows or rows[0].position > position:
            continue  # registered after ``position``
        state = apply_recorded(None, to_recorded(rows[0]))
        if rows[-1].position != rows[0].position:
            state = apply_recorded(state, to_recorded(rows[-1]))
        models.append(state.to_model())
    return models


def _master_ids(conn: Connection) -> list[int]:
    """Every master id of the log, ascending, one index seek per master: MariaDB's loose
    index scan does it for DISTINCT; elsewhere a recursive skip scan (MariaDB would scan the
    whole index for the recursive form's correlated min())."""
    if conn.dialect.name in ("mysql", "mariadb"):
        distinct = sa.select(events.c.master_id).distinct().order_by(events.c.master_id)
        return [int(master_id) for master_id in conn.execute(distinct).scalars()]
    later = events.alias("later")
    ids = sa.select(sa.func.min(events.c.master_id).label("id")).cte("ids", recursive=True)
    ids = ids.union_all(
        sa.select(
            sa.select(sa.func.min(later.c.master_id))
            .where(later.c.master_id > ids.c.id)
            .scalar_subquery()
        ).where(ids.c.id.is_not(None))
    )
    return [int(row.id) for row in conn.execute(sa.select(ids.c.id).where(ids.c.id.is_not(None)))]

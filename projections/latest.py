"""The newest events of every master in the view: what a dashboard shows beside each row
(who stopped it, and how), read with index seeks only, whatever the length of the log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.reads import EVENT_ROWS, to_recorded
from eventstore.recorded import RecordedEvent
from eventstore.schema import events
from projections.view import masters


def latest_events(conn: Connection, *, count: int = 2) -> dict[int, list[RecordedEvent]]:
    """The newest ``count`` events of every master of the view, oldest first, by master id
    (a master with no history yet maps to an empty list)."""
    newest = (
        sa.select(sa.func.max(events.c.version))
        .where(events.c.master_id == masters.c.id)
        .scalar_subquery()
    )
    tops = sa.select(masters.c.id, newest.label("version")).subquery("tops")
    seeks = []
    for back in range(count):
        seek = events.alias(f"back{back}")
        seeks.append(
            sa.select(seek.c.position)
            .where(seek.c.master_id == tops.c.id, seek.c.version == tops.c.version - back)
            .scalar_subquery()
        )
    rows = conn.execute(sa.select(tops.c.id, *seeks)).all()
    found: dict[int, list[RecordedEvent]] = {int(row[0]): [] for row in rows}
    wanted = sorted({int(p) for row in rows for p in row[1:] if p is not None})
    if wanted:
        query = EVENT_ROWS.where(events.c.position.in_(wanted)).order_by(events.c.position)
        for row in conn.execute(query):
            event = to_recorded(row)
            found.setdefault(event.master_id, []).append(event)
    return found


__all__ = ["latest_events"]

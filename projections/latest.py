"""The newest events of every master in the view: what a dashboard shows beside each row
(who stopped it, and how), read with index seeks only, whatever the length of the log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import RecordedEvent, events_at, stream_tails
from projections.view import masters


def latest_events(conn: Connection, *, count: int = 2) -> dict[int, list[RecordedEvent]]:
    """The newest ``count`` events of every master of the view, oldest first, by master id
    (a master with no history yet maps to an empty list)."""
    tails = stream_tails(conn, sa.select(masters.c.id), count=count)
    found = events_at(conn, (p for positions in tails.values() for p in positions))
    return {master_id: [found[p] for p in positions] for master_id, positions in tails.items()}


__all__ = ["latest_events"]

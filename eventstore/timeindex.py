"""The log's time index: events by ``recorded_at``, and the position the log had at a time.

On SQLite the index holds each event's minute (:data:`recorded_minute`) rather than its
microseconds, so a search by time seeks the minute and then reads that minute's events;
PostgreSQL and MariaDB index ``(recorded_at, position)`` itself. Callers give times in
microseconds since the epoch and never see which.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.schema import TIME_BUCKET, events

#: The minute of an event (``recorded_at / TIME_BUCKET``, :data:`~eventstore.schema.TIME_BUCKET`):
#: on SQLite a ``VIRTUAL`` generated column of the log, which its time index holds. SQLite's
#: planner seeks that index only for a condition on the column itself, not on the expression.
recorded_minute = sa.literal_column(f"{events.name}.recorded_minute", sa.BigInteger())


def minute_of(micros: int) -> int:
    """:data:`recorded_minute` of ``micros``, as SQLite's integer division (which truncates
    toward zero) computes it."""
    minute = abs(micros) // TIME_BUCKET
    return minute if micros >= 0 else -minute


def recorded_within(
    dialect: sa.Dialect, since: int | None, until: int | None
) -> list[sa.ColumnElement[bool]]:
    """The conditions of events recorded in ``[since, until]`` (microseconds; either end
    may be open), with, on SQLite, those its time index answers: the minutes."""
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(events.c.recorded_at >= since)
    if until is not None:
        conditions.append(events.c.recorded_at <= until)
    if dialect.name == "sqlite":
        if since is not None:
            conditions.append(recorded_minute >= minute_of(since))
        if until is not None:
            conditions.append(recorded_minute <= minute_of(until))
    return conditions


def position_at(conn: Connection, when: int) -> int:
    """The position of the newest event recorded at or before ``when`` (microseconds),
    0 when there is none. With a clock that never runs backwards this is the exact prefix of
    the log written by then.

    On SQLite the newest event is in ``when``'s own minute, at or before it, or else
    anywhere in the newest earlier minute that has events. Either way one index seek, then
    that minute's events.
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

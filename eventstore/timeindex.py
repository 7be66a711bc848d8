"""The log's time index: events by ``recorded_at``, and the position the log had at a time.

On SQLite the index holds each event's minute (:data:`recorded_minute`) rather than its
microseconds, so a search by time seeks the minute and then reads that minute's events;
PostgreSQL and MariaDB index ``(recorded_at, position)`` itself. Callers give times in
microseconds since the epoch and never see which.
"""

from __future__ import annotations

import functools
from typing import Any

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
    0 when there is none: :func:`newest_recorded_by` in a statement of its own."""
    sqlite = conn.dialect.name == "sqlite"
    found = conn.execute(_position_at(sqlite), recorded_by(when)).scalar()
    return 0 if found is None else int(found)


def recorded_by(when: int) -> dict[str, int]:
    """The parameters of :func:`newest_recorded_by` for the moment ``when``."""
    return {"when": when, "minute": minute_of(when)}


@functools.cache
def newest_recorded_by(sqlite: bool) -> sa.ColumnElement[Any]:
    """The position of the newest event recorded at or before the parameter ``when``
    (microseconds; NULL when there is none), as an expression of one index seek, to be
    read in the caller's statement with the parameters :func:`recorded_by` gives. With a
    clock that never runs backwards this is the exact prefix of the log written by then.

    On SQLite (``sqlite``) the newest event is in the moment's own minute, at or before
    it, or else anywhere in the newest earlier minute that has events: the seek of the
    first, else of the second (``coalesce`` evaluates its arguments in order until one is
    not NULL), then that minute's events.
    """
    when = sa.bindparam("when", type_=sa.BigInteger())
    newest = (
        sa.select(events.c.position)
        .order_by(events.c.recorded_at.desc(), events.c.position.desc())
        .limit(1)
    )
    if not sqlite:
        return newest.where(events.c.recorded_at <= when).scalar_subquery()
    minute = sa.bindparam("minute", type_=sa.BigInteger())
    earlier = (
        sa.select(recorded_minute)
        .select_from(events)
        .where(recorded_minute < minute)
        .order_by(recorded_minute.desc())
        .limit(1)
        .scalar_subquery()
    )
    in_minute = newest.where(recorded_minute == minute, events.c.recorded_at <= when)
    in_earlier = newest.where(recorded_minute == earlier)
    return sa.func.coalesce(in_minute.scalar_subquery(), in_earlier.scalar_subquery())


@functools.cache
def _position_at(sqlite: bool) -> sa.Select[Any]:
    return sa.select(newest_recorded_by(sqlite))

"""Searches of the stream index ``(master_id, version)``: where each master's stream
stood at a position, and where it ends now. Index seeks only, whatever the length of the
log; the events themselves are then read by position (:func:`eventstore.reads.events_at`).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.schema import events


def stream_ends(
    conn: Connection, position: int, *, archived: bool = False
) -> list[tuple[int, int]]:
    """``(first, newest)`` event positions at or before ``position`` of every master whose
    first event in the table (its registration, unless archived) is at or before it, in
    one statement of index seeks (:func:`_search`): the first event names a master, the
    newest describes its state there (every event records the master's state after it)."""
    mariadb = conn.dialect.name in ("mysql", "mariadb")
    ends = conn.execute(_search(mariadb, archived), {"at": position})
    return [(int(first), int(newest)) for first, newest in ends]


def stream_tails(
    conn: Connection, master_ids: sa.Select[Any], *, count: int
) -> dict[int, list[int]]:
    """The positions of the newest ``count`` events (oldest first) of each master that
    ``master_ids`` (a one-column select, e.g. of a view's ids) names, by master id, in one
    statement; a master without events maps to an empty list."""
    ids = master_ids.subquery("wanted")
    id_column = next(iter(ids.c))
    newest = (  # not max(): MariaDB would read every version of the master for it
        sa.select(events.c.version)
        .where(events.c.master_id == id_column)
        .order_by(events.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    tops = sa.select(id_column.label("id"), newest.label("version")).subquery("tops")
    seeks = []
    for back in range(count):
        seek = events.alias(f"back{back}")
        seeks.append(
            sa.select(seek.c.position)
            .where(seek.c.master_id == tops.c.id, seek.c.version == tops.c.version - back)
            .scalar_subquery()
        )
    found: dict[int, list[int]] = {}
    for row in conn.execute(sa.select(tops.c.id, *seeks)):
        found[int(row[0])] = sorted(int(p) for p in row[1:] if p is not None)
    return found


@functools.cache
def _search(mariadb: bool, archived: bool) -> sa.Select[int, int]:
    """The statement of :func:`stream_ends`, built once; ``at`` is the position.

    For each master id (:func:`_master_ids`) whose first event in the table (version 1;
    with ``archived``, the first after the archived ones) is at or before ``at``, since a
    stream's positions grow with its versions, a binary search over its versions finds the newest
    at or before ``at``: each recursive step holds a range ``low..high`` of versions, whose
    ``low`` is at or before ``at``, and the position of its middle, sought once (about 20
    steps for a million events, whatever the number of masters).
    """
    at = sa.bindparam("at", type_=sa.BigInteger())
    ids = _master_ids(mariadb)
    top = events.alias("top")
    newest = (  # not max(): MariaDB would read every version of the master for it
        sa.select(top.c.version)
        .where(top.c.master_id == ids.c.id)
        .order_by(top.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    if archived:  # a seek more per master: where its stream starts in the table
        bottom = events.alias("bottom")
        lowest = (
            sa.select(bottom.c.version)
            .where(bottom.c.master_id == ids.c.id)
            .order_by(bottom.c.version)
            .limit(1)
            .scalar_subquery()
        )
        bounds = (
            sa.select(ids.c.id, lowest.label("low"), newest.label("high"))
            .where(ids.c.id.is_not(None))
            .cte("bounds")
        )
        known = sa.select(
            bounds.c.id,
            _position_of(bounds.c.id, bounds.c.low).label("first"),
            bounds.c.low,
            bounds.c.high,
        ).cte("known")
    else:
        known = (
            sa.select(
                ids.c.id,
                _position_of(ids.c.id, 1).label("first"),
                sa.literal(1, sa.Integer()).label("low"),
                newest.label("high"),
            )
            .where(ids.c.id.is_not(None))
            .cte("known")
        )
    middle = (known.c.low + known.c.high + 1) // 2
    search = (
        sa.select(
            known.c.id,
            known.c.first,
            known.c.low,
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
        # FOR SYSTEM_TIME ALL: the log is system-versioned (revision 0005), and on the rows
        # of now only, MariaDB reads every entry of the index instead of a loose scan. The
        # past rows can only add ids of masters no longer in the table, which find no
        # event in the searches below.
        return (
            sa.select(events.c.master_id.label("id"))
            .with_hint(events, "FOR SYSTEM_TIME ALL")
            .distinct()
            .cte("ids")
        )
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

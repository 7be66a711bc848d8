"""Searches of the stream index ``(master_id, version)``: where each master's stream
stood at a position or a moment, and where it ends now. Index seeks only, whatever the
length of the log.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.reads import to_recorded
from eventstore.recorded import RecordedEvent
from eventstore.schema import archive_segments, events, texts
from eventstore.timeindex import newest_recorded_by, recorded_by


@attrs.frozen
class StreamsAt:
    """Every master's stream as the events table held it at a position: what
    :func:`streams_at` read, in one snapshot."""

    #: The position asked about; for a moment, that of the newest event recorded by then
    #: (0: none in the table).
    position: int
    #: The last position the archive's segments hold (0: nothing archived): events at or
    #: below it are no longer in the table.
    sealed: int
    #: For each master with an event in the table at or before :attr:`position`, by id:
    #: its first event in the table (its registration, unless archived) and its newest at
    #: or before the position (the same event when it has one).
    ends: dict[int, tuple[RecordedEvent, RecordedEvent]]


def streams_at(
    conn: Connection, *, position: int | None = None, when: int | None = None
) -> StreamsAt:
    """Where every master's stream stood at ``position`` (included), or at the moment
    ``when`` (microseconds: at the position of the newest event recorded by then), with
    the events that say so: one statement of index seeks (:func:`_as_of`), whatever the
    length of the log."""
    if when is not None:
        params: dict[str, int] = recorded_by(when)
    elif position is not None:
        params = {"at": position}
    else:
        raise TypeError("streams_at takes a position or a moment")
    ends: dict[int, tuple[RecordedEvent, RecordedEvent]] = {}
    asked = sealed = 0
    for row in conn.execute(_as_of(conn.dialect.name, by_time=when is not None), params):
        asked, sealed = int(row.asked), int(row.sealed)
        if row.first_position is not None:
            first = to_recorded(_Prefixed(row, _FIRST))
            newest = to_recorded(_Prefixed(row, _NEWEST))
            ends[first.master_id] = (first, newest)
    return StreamsAt(position=asked, sealed=sealed, ends=dict(sorted(ends.items())))


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
def _as_of(dialect: str, *, by_time: bool) -> sa.Select[Any]:
    """The statement of :func:`streams_at`, built once per database and kind of question;
    its parameter is the position ``at``, or ``by_time`` those of
    :func:`~eventstore.timeindex.recorded_by`.

    The CTE ``asked`` holds the position asked about (for a moment, the newest event
    recorded by then: one seek of the time index) and the archive's last position. For
    each master id (:func:`_master_ids`) whose first event in the table (version 1; when
    something is archived, its lowest version in the table) is at or before that position,
    since a stream's positions grow with its versions, a binary search over its versions
    finds the newest at or before it: each recursive step holds a range ``low..high`` of
    versions, whose ``low`` is at or before the position, and the position of its middle,
    sought once (about 20 steps for a million events, whatever the number of masters).
    The rows are the events at the first and newest positions found, each with the two
    values of ``asked`` (one row of NULL events when no master had one by then).
    """
    at = (
        sa.func.coalesce(newest_recorded_by(dialect == "sqlite"), 0)
        if by_time
        else sa.bindparam("at", type_=sa.BigInteger())
    )
    last_segment = (
        sa.select(archive_segments.c.last_position)
        .order_by(archive_segments.c.first_position.desc())
        .limit(1)
        .scalar_subquery()
    )
    sealed = sa.func.coalesce(last_segment, 0)
    asked = sa.select(at.label("asked"), sealed.label("sealed")).cte("asked")
    ids = _master_ids(dialect in ("mysql", "mariadb"))
    top, bottom = events.alias("top"), events.alias("bottom")
    newest = (  # not max(): MariaDB would read every version of the master for it
        sa.select(top.c.version)
        .where(top.c.master_id == ids.c.id)
        .order_by(top.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    lowest = (  # read only when something is archived: else every stream starts at 1
        sa.select(bottom.c.version)
        .where(bottom.c.master_id == ids.c.id)
        .order_by(bottom.c.version)
        .limit(1)
        .scalar_subquery()
    )
    bounds = (
        sa.select(
            ids.c.id,
            sa.case((asked.c.sealed == 0, 1), else_=lowest).label("low"),
            newest.label("high"),
            asked.c.asked.label("at"),
        )
        .select_from(ids.join(asked, sa.true()))
        .where(ids.c.id.is_not(None))
        .cte("bounds")
    )
    known = sa.select(
        bounds.c.id,
        _position_of(bounds.c.id, bounds.c.low).label("first"),
        bounds.c.low,
        bounds.c.high,
        bounds.c.at,
    ).cte("known")
    middle = (known.c.low + known.c.high + 1) // 2
    search = (
        sa.select(
            known.c.id,
            known.c.first,
            known.c.low,
            known.c.high,
            middle.label("middle"),
            _position_of(known.c.id, middle).label("found"),
            known.c.at,
        )
        .where(known.c.first <= known.c.at)
        .cte("search", recursive=True)
    )
    step = search.alias("step")
    fits = step.c.found <= step.c.at
    low = sa.case((fits, step.c.middle), else_=step.c.low)
    high = sa.case((fits, step.c.high), else_=step.c.middle - 1)
    middle = (low + high + 1) // 2
    search = search.union_all(
        sa.select(
            step.c.id, step.c.first, low, high, middle, _position_of(step.c.id, middle), step.c.at
        ).where(step.c.low < step.c.high)
    )
    # Where low = high, the middle is low: its position is the newest event's. One row per
    # master: its first and newest events, each joined by its position.
    ends = (
        sa.select(search.c.first, search.c.found)
        .where(search.c.low == search.c.high)
        .subquery("ends")
    )
    (first_event, at_first), first_columns = _event_at(_FIRST, ends.c.first)
    (newest_event, at_newest), newest_columns = _event_at(_NEWEST, ends.c.found)
    found = (
        sa.select(*first_columns, *newest_columns)
        .select_from(ends.join(first_event, at_first).join(newest_event, at_newest))
        .subquery("found")
    )
    return sa.select(asked.c.asked, asked.c.sealed, *found.c).select_from(
        asked.outerjoin(found, sa.true())
    )


#: The prefixes of the first and the newest event's columns in :func:`_as_of`'s rows.
_FIRST, _NEWEST = "first_", "newest_"


def _event_at(
    prefix: str, position: Any
) -> tuple[tuple[sa.Join, sa.ColumnElement[bool]], list[sa.Label[Any]]]:
    """The event at ``position``: an alias of the log joined to its texts with the
    condition that joins it at that position, and its columns as
    :data:`~eventstore.reads.EVENT_ROWS` names them, each name after ``prefix``."""
    row = events.alias(f"{prefix}event")
    type_text, metadata_text = texts.alias(f"{prefix}type"), texts.alias(f"{prefix}metadata")
    joined = row.outerjoin(type_text, type_text.c.id == row.c.type_id).outerjoin(
        metadata_text, metadata_text.c.id == row.c.metadata_id
    )
    columns = {
        **{name: row.c[name] for name in ("position", "event_id", "master_id", "version")},
        "type": type_text.c.text,
        "schema_version": row.c.schema_version,
        "data": row.c.data,
        "metadata": metadata_text.c.text,
        "recorded_at": row.c.recorded_at,
        "hash": row.c.hash,
    }
    labeled = [column.label(prefix + name) for name, column in columns.items()]
    return (joined, row.c.position == position), labeled


@attrs.frozen
class _Prefixed:
    """The columns of one event in a row of :func:`_as_of`, as
    :func:`~eventstore.reads.to_recorded` reads a row of its own."""

    row: Any
    prefix: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, self.prefix + name)


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

"""An append's writes as one statement: moving the head, inserting the events and the
caller's own update (its view row), sent in one round trip where the database allows it.

Every write here moves the head only if it is still where the caller read it
(:data:`MOVE_HEAD`), and writes the rest only if it did; see
:func:`eventstore.store.append_after`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import prebuilt
from eventstore.schema import HEAD_ROW_ID, events, head

#: A statement of the caller's, with its parameters, to run along with an append.
Also = tuple[sa.Update, Mapping[str, Any]]

#: Move the head from ``seen_*`` to the new position, hash and master id, if the whole head
#: row is still as seen (the lock of an append that locked first makes it so).
MOVE_HEAD = (
    head.update()
    .where(
        head.c.id == sa.literal_column(str(HEAD_ROW_ID)),
        head.c.position == sa.bindparam("seen_position"),
        head.c.hash == sa.bindparam("seen_hash"),
        head.c.last_master_id == sa.bindparam("seen_last_master_id"),
    )
    .values(
        position=sa.bindparam("new_position"),
        hash=sa.bindparam("new_hash"),
        last_master_id=sa.bindparam("last_master_id"),
    )
)

_COLUMNS = tuple(column.name for column in events.columns)
_INSERT = events.insert()

#: The message of the error a MariaDB compound statement raises when the head had moved.
_MOVED_ON = "mastertrail: the log moved on since it was read"


def write(
    conn: Connection, rows: list[dict[str, Any]], head_params: dict[str, Any], also: Also | None
) -> bool:
    """Move the head, insert ``rows`` and run ``also``; False (nothing written) if the head
    had moved. One statement on PostgreSQL and MariaDB, three elsewhere (SQLite); all sent
    as the driver's own call (:mod:`eventstore.prebuilt`)."""
    statement = None if also is None else also[0]
    if conn.dialect.name == "postgresql":
        fused = _with_ctes(len(rows), statement)
        params = _one_statement_params(rows, head_params, also)
        return bool(prebuilt.execute(conn, fused, params).scalar_one())
    if conn.dialect.name == "mysql" and getattr(conn.dialect, "is_mariadb", False):
        params = _one_statement_params(rows, head_params, also)
        for i, row in enumerate(rows):  # the driver's own call: no SQLAlchemy type to bind
            params[f"r{i}_event_id"] = row["event_id"].bytes
        try:
            conn.exec_driver_sql(_compound(len(rows), statement, conn.dialect), params)
        except sa.exc.DBAPIError as error:
            if _MOVED_ON in str(error.orig):
                return False
            raise
        return True
    if not prebuilt.execute(conn, MOVE_HEAD, head_params).rowcount:
        return False
    prebuilt.execute(conn, _INSERT, [{**row, "event_id": row["event_id"].bytes} for row in rows])
    if also is not None:
        prebuilt.execute(conn, *also)
    return True


def _one_statement_params(
    rows: list[dict[str, Any]], head_params: dict[str, Any], also: Also | None
) -> dict[str, Any]:
    """The parameters of the one-statement write: the head's, each row's as ``r{i}_name``,
    and ``also``'s."""
    return {
        **head_params,
        **{f"r{i}_{name}": value for i, row in enumerate(rows) for name, value in row.items()},
        **({} if also is None else also[1]),
    }


@functools.cache
def _with_ctes(count: int, also: sa.Update | None) -> sa.Select[int]:
    """PostgreSQL: data-modifying CTEs whose insert and ``also`` select from the head
    update's RETURNING, so they happen only if it matched; selects 1 if it did, else 0.
    Built once per shape, so SQLAlchemy's compiled cache serves it."""
    claim = MOVE_HEAD.returning(head.c.id).cte("moved")
    chosen = [
        sa.select(
            *(sa.bindparam(f"r{i}_{name}", type_=events.c[name].type) for name in _COLUMNS)
        ).select_from(claim)
        for i in range(count)
    ]
    source = chosen[0] if count == 1 else sa.union_all(*chosen)
    statement = sa.select(sa.func.count()).select_from(claim)
    statement = statement.add_cte(events.insert().from_select(_COLUMNS, source).cte("appended"))
    if also is not None:
        statement = statement.add_cte(also.where(sa.exists(sa.select(claim.c.id))).cte("also"))
    return statement


@functools.cache
def _compound(count: int, also: sa.Update | None, dialect: sa.Dialect) -> str:
    """MariaDB: an anonymous compound statement (``BEGIN NOT ATOMIC``: one statement, no
    multi-statement flag needed on the connection) that signals before writing anything
    else when the head update matched no row."""

    def sql(statement: sa.ClauseElement) -> str:
        return str(statement.compile(dialect=dialect))

    insert = events.insert().values(
        [{name: sa.bindparam(f"r{i}_{name}") for name in _COLUMNS} for i in range(count)]
    )
    parts = [
        sql(MOVE_HEAD),
        f"IF ROW_COUNT() = 0 THEN SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{_MOVED_ON}'; END IF",
        sql(insert),
    ]
    if also is not None:
        parts.append(sql(also))
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"

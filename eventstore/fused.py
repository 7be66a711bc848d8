"""An append's writes as one statement: moving the head, inserting the events and the
caller's own update (its view row), sent in one round trip where the database allows it.

:func:`write` moves the head only if it is still where the caller read it
(:data:`MOVE_HEAD`), and writes the rest only if it did; see
:func:`eventstore.store.append_after`. :func:`write_chained` reads nothing of the caller's:
the database numbers one event after wherever the head is and chains its hash itself; see
:func:`eventstore.store.append_chained`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import prebuilt
from eventstore.schema import HEAD_ROW_ID, events, head, texts
from eventstore.texts import NOT_STORED

#: A statement of the caller's, with its parameters, to run along with an append.
Also = tuple[sa.Update, Mapping[str, Any]]

#: Move the head from ``seen_position``/``seen_hash`` to the new position and hash, if it is
#: still there (the lock of an append that locked first makes it so). The highest master id
#: is raised to the appending master's in the database, from the row's own value, never
#: from a value the caller read.
MOVE_HEAD = (
    head.update()
    .where(
        head.c.id == sa.literal_column(str(HEAD_ROW_ID)),
        head.c.position == sa.bindparam("seen_position"),
        head.c.hash == sa.bindparam("seen_hash"),
    )
    .values(
        position=sa.bindparam("new_position"),
        hash=sa.bindparam("new_hash"),
        last_master_id=sa.case(
            (head.c.last_master_id > sa.bindparam("head_master_id"), head.c.last_master_id),
            else_=sa.bindparam("head_master_id"),
        ),
    )
)

_COLUMNS = tuple(column.name for column in events.columns)

#: The columns naming a text, and the row's key holding the digest the write finds it by:
#: an event's row carries the digests of its texts, never their ids (see
#: :mod:`eventstore.texts`).
TEXT_COLUMNS = {"type_id": "type_digest", "metadata_id": "metadata_digest"}


def _text_id(key: str) -> sa.ScalarSelect[int]:
    """The id of the text whose digest is the parameter ``key``: NULL when none is stored,
    which the column's NOT NULL refuses."""
    digest = sa.bindparam(key, type_=texts.c.digest.type)
    return sa.select(texts.c.id).where(texts.c.digest == digest).scalar_subquery()


def _row_values(prefix: str = "", *, declared: bool = False) -> dict[str, Any]:
    """An event row's values as parameters named ``prefix`` + column (its texts found by
    their digests; ``declared``: in the variables :func:`texts_declared` set)."""
    return {
        name: (
            sa.literal_column(f"{prefix}{TEXT_COLUMNS[name]}_id")
            if declared
            else _text_id(prefix + TEXT_COLUMNS[name])
        )
        if name in TEXT_COLUMNS
        else sa.bindparam(prefix + name, type_=events.c[name].type)
        for name in _COLUMNS
    }


_INSERT = events.insert().values(_row_values())

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
    if _is_mariadb(conn.dialect):
        params = _one_statement_params(rows, head_params, also)
        for i, row in enumerate(rows):  # the driver's own call: no SQLAlchemy type to bind
            params[f"r{i}_event_id"] = id_bytes(row["event_id"])
        try:
            conn.exec_driver_sql(_compound(len(rows), statement, conn.dialect), params)
        except sa.exc.DBAPIError as error:
            if _MOVED_ON in str(error.orig):
                return False
            raise
        return True
    if not prebuilt.execute(conn, MOVE_HEAD, head_params).rowcount:
        return False
    prebuilt.execute(
        conn, _INSERT, [{**row, "event_id": id_bytes(row["event_id"])} for row in rows]
    )
    if also is not None:
        prebuilt.execute(conn, *also)
    return True


def id_bytes(stored: uuid.UUID | None) -> bytes | None:
    """A stored event id as the driver's own call binds it (None: derived, not stored)."""
    return None if stored is None else stored.bytes


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
    chosen = [sa.select(*_row_values(f"r{i}_").values()).select_from(claim) for i in range(count)]
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
    when a text it names is not stored, and before writing anything else when the head
    update matched no row."""

    def sql(statement: sa.ClauseElement) -> str:
        return str(statement.compile(dialect=dialect))

    insert = events.insert().values([_row_values(f"r{i}_", declared=True) for i in range(count)])
    keys = [f"r{i}_{key}" for i in range(count) for key in TEXT_COLUMNS.values()]
    parts = [
        *texts_declared(keys),
        sql(MOVE_HEAD),
        f"IF ROW_COUNT() = 0 THEN SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{_MOVED_ON}'; END IF",
        sql(insert),
    ]
    if also is not None:
        parts.append(sql(also))
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"


# -- one event numbered and chained by the database ------------------------------------------

#: The stream constraint, named in the error of an insert that lost a race for a version.
_STREAM_CONSTRAINT = "mastertrail_events_stream"


def chains_in_database(dialect: sa.Dialect) -> bool:
    """Whether :func:`write_chained` runs on ``dialect``: PostgreSQL and MariaDB, which
    compute SHA-256 (SQLite has no such function; MySQL's compound statements differ)."""
    return dialect.name == "postgresql" or _is_mariadb(dialect)


def texts_declared(keys: list[str]) -> list[str]:
    """MariaDB: the first statements of a compound write. Each text's id, found by the
    digest parameter ``key``, goes into the variable ``<key>_id``, which the insert names;
    a text that is not stored signals before anything is written. Without the check a
    NOT NULL column would take a missing text's NULL as 0 in a multi-row or ``INSERT ...
    SELECT`` under a non-strict ``sql_mode``."""
    declared = [
        f"DECLARE {key}_id INT DEFAULT (SELECT id FROM {texts.name} WHERE digest = %({key})s)"
        for key in keys
    ]
    missing = " OR ".join(f"{key}_id IS NULL" for key in keys)
    signal = f"SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{NOT_STORED}'"
    return [*declared, f"IF {missing} THEN {signal}; END IF"]


def _is_mariadb(dialect: sa.Dialect) -> bool:
    return dialect.name == "mysql" and bool(getattr(dialect, "is_mariadb", False))


def write_chained(
    conn: Connection,
    row: dict[str, Any],
    tail: bytes,
    last: tuple[int, bytes] | None,
    also: Also | None,
) -> tuple[int, bytes] | None:
    """Insert the event ``row`` (every column but ``position`` and ``hash``) right after
    the head as this transaction finds it once it holds the head's lock, chaining its hash
    in the database (``tail`` as :func:`eventstore.chain.link_tail` made it), move the
    head and run ``also``: one statement. ``last`` is the version and hash of the stream's
    newest event (None for an empty stream): if the stream has no such event, or an event
    after it, nothing is inserted. Returns the event's position and hash, or None (the
    transaction must then be rolled back)."""
    sql, params = chained_statement(conn.dialect, row, tail, last, also)
    try:
        found = conn.exec_driver_sql(sql, params).first()
        return None if found is None else (int(found[0]), bytes(found[1]))
    except sa.exc.DBAPIError as error:
        if _STREAM_CONSTRAINT in str(error.orig):
            return None
        raise


def chained_statement(
    dialect: sa.Dialect,
    row: dict[str, Any],
    tail: bytes,
    last: tuple[int, bytes] | None,
    also: Also | None,
) -> tuple[str, dict[str, Any]]:
    """The SQL text and driver parameters of :func:`write_chained` on ``dialect``."""
    params = {**row, "tail": tail, **({} if also is None else also[1])}
    if last is not None:
        params["last_version"], params["last_hash"] = last
    statement = None if also is None else also[0]
    # The driver's own call: no SQLAlchemy type converts the UUID.
    if dialect.name == "postgresql":
        stored = row["event_id"]
        params["event_id"] = None if stored is None else str(stored)  # cast in the statement
        return _chained_ctes(statement, dialect, last is None), params
    params["event_id"] = id_bytes(row["event_id"])
    return _chained_compound(statement, dialect, last is None), params


#: The columns an event brings itself: all but those the database gives it.
_OWN = tuple(name for name in _COLUMNS if name not in ("position", "hash"))
#: The insert's column list, matching the ``SELECT position, <own>, hash`` of its source.
_CHAINED_COLUMNS = ", ".join(("position", *_OWN, "hash"))


def _event_values(cast: dict[str, str], *, declared: bool = False) -> str:
    """The event's own columns as parameters, with their SQL casts where the database
    wants them; its texts' ids found by their digests (``declared``: in the variables
    :func:`texts_declared` set)."""

    def value(name: str) -> str:
        if name in TEXT_COLUMNS and declared:
            return f"{TEXT_COLUMNS[name]}_id"
        if name in TEXT_COLUMNS:
            digest = f"%({TEXT_COLUMNS[name]})s{cast.get('digest', '')}"
            return f"(SELECT id FROM {texts.name} WHERE digest = {digest})"
        return f"%({name})s{cast.get(name, '')}"

    return ", ".join(value(name) for name in _OWN)


_MOVED = sa.table("moved")


@functools.cache
def _chained_ctes(also: sa.Update | None, dialect: sa.Dialect, first: bool) -> str:
    """PostgreSQL: the head update numbers and chains the event under the head's lock if
    the stream's newest event is the one expected (its version and hash: the hash chains
    the whole log up to it); the insert selects from its RETURNING, and the stream
    constraint refuses it if an event came after (in a snapshot older than the lock).
    ``first``: an empty stream, with no event to find."""
    casts = {
        "event_id": "::uuid",
        "master_id": "::integer",
        "version": "::integer",
        "schema_version": "::smallint",
        "data": "::text",
        "digest": "::bytea",
        "recorded_at": "::bigint",
    }
    found = (
        ""
        if first
        else f" AND EXISTS (SELECT 1 FROM {events.name} WHERE master_id = %(master_id)s::integer "
        "AND version = %(last_version)s::integer AND hash = %(last_hash)s::bytea)"
    )
    parts = [
        f"moved AS (UPDATE {head.name} SET position = position + 1, "
        "hash = sha256(hash || convert_to((position + 1)::text, 'UTF8') || %(tail)s::bytea), "
        "last_master_id = GREATEST(last_master_id, %(master_id)s::integer) "
        f"WHERE id = {HEAD_ROW_ID}{found} RETURNING position, hash)",
        f"appended AS (INSERT INTO {events.name} ({_CHAINED_COLUMNS}) "
        f"SELECT position, {_event_values(casts)}, hash FROM moved)",
    ]
    if also is not None:
        # Selecting from moved orders the update after the head's: every writer locks the
        # head first, so a view row is never locked before it.
        after_move = also.where(sa.exists(sa.select(sa.literal_column("1")).select_from(_MOVED)))
        parts.append(f"also AS ({after_move.compile(dialect=dialect)})")
    return "WITH " + ",\n".join(parts) + "\nSELECT position, hash FROM moved"


@functools.cache
def _chained_compound(also: sa.Update | None, dialect: sa.Dialect, first: bool) -> str:
    """MariaDB: after checking that the event's texts are stored, the head update chains
    the event under the head's lock (the hash set
    before the position: MariaDB assigns left to right), and the insert selects the new
    position and hash from the head joined to the stream's newest event as expected (its
    version and hash), so that it inserts nothing if that event is not there; the stream
    constraint refuses it if an event came after. ``first``: an empty stream, with no
    event to join. It returns the position and hash it inserted."""
    parts = [
        *texts_declared(list(TEXT_COLUMNS.values())),
        f"UPDATE {head.name} SET "
        "hash = UNHEX(SHA2(CONCAT(hash, CAST(position + 1 AS CHAR), %(tail)s), 256)), "
        "position = position + 1, "
        "last_master_id = GREATEST(last_master_id, %(master_id)s) "
        f"WHERE id = {HEAD_ROW_ID}",
    ]
    if also is not None:
        parts.append(str(also.compile(dialect=dialect)))
    joined = (
        ""
        if first
        else f" JOIN {events.name} AS known ON known.master_id = %(master_id)s "
        "AND known.version = %(last_version)s AND known.hash = %(last_hash)s"
    )
    parts.append(
        f"INSERT INTO {events.name} ({_CHAINED_COLUMNS}) "
        f"SELECT {head.name}.position, {_event_values({}, declared=True)}, {head.name}.hash "
        f"FROM {head.name}{joined} WHERE {head.name}.id = {HEAD_ROW_ID} "
        f"RETURNING position, hash"
    )
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"

"""MariaDB's writer: every append is one anonymous compound statement (``BEGIN NOT
ATOMIC``: one statement, no multi-statement flag needed on the connection), and MySQL's,
which sends the three statements of SQLite's.

A check-in sent at once (:func:`commands.retry.run`, :func:`eventstore.session.commits_itself`)
is the same statement ending with its own ``COMMIT``: one round trip, and the head's lock
let go as the statement ends (:func:`eventstore.session.end_committed` sends no
``COMMIT`` after it). Whatever it does not find as expected signals before the
``COMMIT``, and the caller rolls back what it began. The session prepares that statement
once and executes it by name from then on (:func:`run_prepared`).

The compound statement first finds each text's id by its digest, into a variable the
insert names, and signals before writing anything when one is not stored: without the
check a NOT NULL column would take a missing text's NULL as 0 in a multi-row or ``INSERT
... SELECT`` under a non-strict ``sql_mode``. Reads under the head's lock are locking reads,
which see the newest committed rows even under REPEATABLE READ.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.chaining_writer import ChainingWriter, Result
from eventstore.fused import (
    CHAINED_COLUMNS,
    TEXT_COLUMNS,
    event_values,
    id_bytes,
    one_statement_params,
    row_values,
)
from eventstore.head import MOVE_HEAD
from eventstore.schema import HEAD_ROW_ID, events, head, texts
from eventstore.session import commits_itself
from eventstore.sqlite_writer import write_in_three
from eventstore.texts import NOT_STORED
from eventstore.unwritable import driver_code
from eventstore.writer import Row, ViewUpdate, Writer

#: The message of the error the compound statement raises when the head had moved.
_MOVED_ON = "mastertrail: the log moved on since it was read"


class MySQLWriter(Writer):
    """The writer of MySQL: SQLite's three statements, with locking reads."""

    locking_reads = True

    def write(
        self,
        conn: Connection,
        rows: list[Row],
        head_params: dict[str, Any],
        view_update: ViewUpdate | None,
    ) -> bool:
        return write_in_three(conn, rows, head_params, view_update)


class MariaDBWriter(ChainingWriter, MySQLWriter):
    """The writer of MariaDB."""

    commits_inside = True

    def write(
        self,
        conn: Connection,
        rows: list[Row],
        head_params: dict[str, Any],
        view_update: ViewUpdate | None,
    ) -> bool:
        params = one_statement_params(rows, head_params, view_update and view_update[1])
        for i, row in enumerate(rows):  # the driver's own call: no SQLAlchemy type to bind
            params[f"r{i}_event_id"] = id_bytes(row["event_id"])
        statement = None if view_update is None else view_update[0]
        sql = _compound(len(rows), statement, conn.dialect, commits_itself(conn))
        try:
            self.run(conn, sql, params)
        except sa.exc.DBAPIError as error:
            if _MOVED_ON in str(error.orig):
                return False
            raise
        return True

    def run(self, conn: Connection, sql: str, params: dict[str, Any]) -> Result:
        # A statement that commits itself is a heartbeat's: prepared once per session.
        if commits_itself(conn):
            return run_prepared(conn, sql, params)
        return conn.exec_driver_sql(sql, params)

    def found_moved(self, error: sa.exc.DBAPIError) -> bool:
        # The statement that commits itself signals when its insert found nothing.
        return _MOVED_ON in str(error.orig) or super().found_moved(error)

    def stream_moved(self, conn: Connection, master_id: int, version: int) -> bool:
        # MariaDB may name the id's index first; its transaction survives the failed
        # statement, so the stream can be read.
        return self.stream_version(conn, master_id) != version

    def event_id_param(self, stored: uuid.UUID | None) -> object:
        return id_bytes(stored)

    def chained_sql(self, view_update: sa.Update | None, conn: Connection, first: bool) -> str:
        return _chained_compound(view_update, conn.dialect, first, commits_itself(conn))


#: The names of the statements prepared in a connection's session, in its ``info``.
_PREPARED = "mastertrail_prepared"

#: Marks a connection whose session the server refused to prepare a statement for.
_REFUSED = "mastertrail_prepare_refused"

#: MariaDB's error for an ``EXECUTE`` of a name the session has not prepared.
_UNKNOWN_STATEMENT = 1243

#: MariaDB's error for a ``PREPARE`` beyond the server's ``max_prepared_stmt_count``.
_TOO_MANY_PREPARED = 1461

_PARAMETER = re.compile(r"%\((\w+)\)s")


@attrs.frozen
class Prepared:
    """A statement as its session prepares it: its ``name``, its ``text`` with a ``?`` for
    each parameter, and the parameters' ``names`` in their order (repeated where the
    statement names one twice)."""

    name: str
    text: str
    names: tuple[str, ...]


@functools.cache
def prepared_form(sql: str) -> Prepared | None:
    """``sql`` (PyMySQL's ``%(name)s`` parameters) as a prepared statement; None when it
    holds a ``?`` or a ``%`` of its own, which the conversion could not tell apart."""
    names = tuple(_PARAMETER.findall(sql))
    text = _PARAMETER.sub("?", sql)
    if "%" in text or text.count("?") != len(names):
        return None
    digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()[:32]
    return Prepared(f"mastertrail_{digest}", text, names)


def run_prepared(conn: Connection, sql: str, params: dict[str, Any]) -> Result:
    """Run the compound statement ``sql`` as a statement this connection's session
    prepared: ``EXECUTE name USING`` the parameters, preparing it the first time.

    The server parses a compound statement sent as text each time it runs it: about a
    tenth of a millisecond of a heartbeat's (see "Round trips" in
    ``docs/performance.rst``). A prepared one is parsed once per session, and needs no
    object in the schema, as a stored procedure would (which a dump without its routines
    would lose). The name derives from the text, so a process running other code
    prepares its own. A session that lost the name (the server says it does not know it,
    having run nothing) prepares it again; one whose server refuses to prepare more
    (``max_prepared_stmt_count``) sends its statements as text from then on."""
    form = prepared_form(sql)
    if form is None:
        return conn.exec_driver_sql(sql, params)
    info = conn.connection.info
    if info.get(_REFUSED):
        return conn.exec_driver_sql(sql, params)
    using = f"EXECUTE {form.name} USING " + ", ".join(f"%({name})s" for name in form.names)
    prepared: set[str] = info.setdefault(_PREPARED, set())
    if form.name in prepared:
        try:
            return conn.exec_driver_sql(using, params)
        except sa.exc.DBAPIError as error:
            if driver_code(error) != _UNKNOWN_STATEMENT:
                raise
            prepared.discard(form.name)
    try:
        conn.exec_driver_sql(f"PREPARE {form.name} FROM %(text)s", {"text": form.text})
    except sa.exc.DBAPIError as error:
        if driver_code(error) != _TOO_MANY_PREPARED:
            raise
        info[_REFUSED] = True  # the server's limit: this session sends its text
        return conn.exec_driver_sql(sql, params)
    prepared.add(form.name)
    return conn.exec_driver_sql(using, params)


def texts_declared(keys: list[str], also: list[str] | None = None) -> list[str]:
    """The first statements of a compound write: each text's id, found by the digest
    parameter ``key``, goes into the variable ``<key>_id``, which the insert names; a text
    that is not stored signals before anything is written. ``also``: more declarations,
    which must come before the signal too."""
    declared = [
        *(also or []),
        *(
            f"DECLARE {key}_id INT DEFAULT (SELECT id FROM {texts.name} WHERE digest = %({key})s)"
            for key in keys
        ),
    ]
    missing = " OR ".join(f"{key}_id IS NULL" for key in keys)
    signal = f"SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{NOT_STORED}'"
    return [*declared, f"IF {missing} THEN {signal}; END IF"]


@functools.cache
def _compound(count: int, also: sa.Update | None, dialect: sa.Dialect, commit: bool) -> str:
    """Signals before writing anything when a text it names is not stored, and before
    writing anything else when the head update matched no row. ``commit``: it ends with
    its own ``COMMIT``."""

    def sql(statement: sa.ClauseElement) -> str:
        return str(statement.compile(dialect=dialect))

    insert = events.insert().values([row_values(f"r{i}_", declared=True) for i in range(count)])
    keys = [f"r{i}_{key}" for i in range(count) for key in TEXT_COLUMNS.values()]
    parts = [
        *texts_declared(keys),
        sql(MOVE_HEAD),
        f"IF ROW_COUNT() = 0 THEN SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{_MOVED_ON}'; END IF",
        sql(insert),
    ]
    if also is not None:
        parts.append(sql(also))
    if commit:
        parts.append("COMMIT")
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"


@functools.cache
def _chained_compound(
    also: sa.Update | None, dialect: sa.Dialect, first: bool, commit: bool = False
) -> str:
    """After checking that the event's texts are stored, the head update chains the event
    under the head's lock (the hash set before the position: MariaDB assigns left to
    right), and the insert selects the new position and hash from the head joined to the
    stream's newest event as expected (its version and hash), so that it inserts nothing
    if that event is not there; the stream constraint refuses it if an event came after.
    ``first``: an empty stream, with no event to join. It returns the position and hash it
    inserted.

    ``commit``: it ends with its own ``COMMIT``, having signalled first if it inserted
    nothing, and returns the position and hash only then, from variables: a row sent
    before the ``COMMIT`` (``RETURNING``) would leave its ``ROW_COUNT()`` unknown."""
    landed = ["DECLARE landed_position BIGINT", "DECLARE landed_hash VARBINARY(64)"]
    parts = [
        *texts_declared(list(TEXT_COLUMNS.values()), also=landed if commit else []),
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
        f"INSERT INTO {events.name} ({CHAINED_COLUMNS}) "
        f"SELECT {head.name}.position, {event_values({}, declared=True)}, {head.name}.hash "
        f"FROM {head.name}{joined} WHERE {head.name}.id = {HEAD_ROW_ID}"
        + ("" if commit else " RETURNING position, hash")
    )
    if commit:
        parts += [
            f"IF ROW_COUNT() = 0 THEN SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = '{_MOVED_ON}'; "
            "END IF",
            f"SELECT position, hash INTO landed_position, landed_hash FROM {head.name} "
            f"WHERE id = {HEAD_ROW_ID}",
            "COMMIT",
            "SELECT landed_position, landed_hash",
        ]
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"

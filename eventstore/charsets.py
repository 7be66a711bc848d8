"""Whether the database can store a master's name exactly, checked before anything of it is
written.

The log hashes the name as Python holds it; the view and the log must then store exactly
that. A MariaDB connection in ``utf8`` (3 bytes: Buildbot's engine connects so), or a
column in ``utf8mb3`` or ``latin1`` (a database whose default it was), cannot carry a
4-byte character such as U+1F680: a strict ``sql_mode`` fails the write with a raw
``DataError``, a non-strict one stores ``?`` while the hash covers the real name, and
``verify`` fails for ever. PostgreSQL does the same with a server encoding such as
``LATIN1``. Such a name is refused with :class:`~eventstore.errors.UnstorableName` (a
``ValueError``) and nothing is written. An ASCII name goes through every character set,
so only other names are checked: one query, on registering a new name only.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from eventstore.errors import UnstorableName
from eventstore.schema import EVENTS_TABLE


def _mariadb(table: str, column: str) -> str:
    """MariaDB: the character sets a name passes through on its way into ``table.column``
    and the log: the connection's, and the columns' that hold it."""
    return (
        "SELECT @@character_set_client, @@character_set_connection, "
        "(SELECT character_set_name FROM information_schema.columns WHERE table_schema = "
        f"DATABASE() AND table_name = '{table}' AND column_name = '{column}'), "
        "(SELECT character_set_name FROM information_schema.columns WHERE table_schema = "
        f"DATABASE() AND table_name = '{EVENTS_TABLE}' AND column_name = 'data')"
    )


def check_storable(conn: Connection, name: str, *, column: tuple[str, str]) -> None:
    """Raise :class:`UnstorableName` if ``name`` cannot be stored exactly through ``conn``
    into the caller's ``column`` (table, column) and the log."""
    if name.isascii():
        return
    for place, charset, holds in _charsets(conn, *column):
        bad = next((char for char in name if not holds(char)), None)
        if bad is not None:
            raise UnstorableName(name, f"U+{ord(bad):04X}", charset, place)


Holds = Callable[[str], bool]


def _charsets(conn: Connection, table: str, column: str) -> list[tuple[str, str, Holds]]:
    """The character sets the name passes through: where, which, and whether it holds a
    character."""
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        row = conn.exec_driver_sql(_mariadb(table, column)).one()
        places = ("the connection", "the connection", f"{table}.{column}", f"{EVENTS_TABLE}.data")
        return [
            (place, str(charset), _MARIADB_HOLDS.get(str(charset), _codec(str(charset))))
            for place, charset in zip(places, row, strict=True)
            if charset
        ]
    if dialect == "postgresql":
        encoding = str(conn.exec_driver_sql("SHOW server_encoding").scalar())
        return [("the database", encoding, _PG_HOLDS.get(encoding, _codec(encoding)))]
    return []  # SQLite stores UTF-8


def _in_bmp(char: str) -> bool:
    return ord(char) < 0x10000


def _any(char: str) -> bool:
    return True


def _codec(charset: str) -> Holds:
    """By the Python codec of (about) the same name; with none known, ASCII only."""

    def holds(char: str) -> bool:
        try:
            char.encode(charset)
        except (LookupError, UnicodeEncodeError):
            return char.isascii()
        return True

    return holds


#: MariaDB's character sets (its ``utf8`` is ``utf8mb3``, 3 bytes; its ``latin1`` is
#: Windows-1252).
_MARIADB_HOLDS: dict[str, Holds] = {
    "utf8mb4": _any,
    "utf8mb3": _in_bmp,
    "utf8": _in_bmp,
    "ucs2": _in_bmp,
    "utf16": _any,
    "utf16le": _any,
    "utf32": _any,
    "binary": _any,
    "latin1": _codec("cp1252"),
}
#: PostgreSQL's server encodings (``SQL_ASCII`` stores the bytes as they come).
_PG_HOLDS: dict[str, Holds] = {
    "UTF8": _any,
    "SQL_ASCII": _any,
    "LATIN1": _codec("latin-1"),
    "WIN1252": _codec("cp1252"),
}

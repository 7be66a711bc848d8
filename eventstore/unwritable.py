"""Driver errors that mean the database cannot take a write, made typed with a message an
operator can act on: a full disk (:class:`StoreFull`), a read-only database
(:class:`StoreReadOnly`), or a file that is no database at all (:class:`NotADatabase`)."""

from __future__ import annotations

from sqlalchemy import exc

from eventstore.errors import NotADatabase, RegistryError, StoreFull, StoreReadOnly

# PostgreSQL: disk full, out of memory, program limit exceeded
_PG_FULL = frozenset({"53100", "53200", "54000"})
# MariaDB/MySQL: disk full, the table is full, out of disk space while writing
_MYSQL_FULL = frozenset({1021, 1114, 3})


def driver_code(error: exc.DBAPIError) -> object:
    """The first of the driver's arguments to ``error``: PyMySQL's is the server's error
    number (psycopg's, a message); None when there is none."""
    orig = error.orig
    return orig.args[0] if orig is not None and orig.args else None


def typed_error(error: exc.DBAPIError) -> RegistryError | None:
    """The typed error ``error`` stands for, or None when it is none of these."""
    orig = error.orig
    code = driver_code(error)
    sqlstate = getattr(orig, "sqlstate", None)
    text = str(orig).lower()
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    if (
        "database or disk is full" in text
        or sqlstate in _PG_FULL
        or (isinstance(code, int) and code in _MYSQL_FULL)
    ):
        return StoreFull(
            f"the database is full ({first}): free space on the disk that holds it (or raise "
            "its size limit); nothing was written, and reading still works"
        )
    if "readonly database" in text or "read-only" in text or sqlstate == "25006":
        return StoreReadOnly(
            f"the database is read-only ({first}): writing needs write access to the "
            "database (for SQLite, to the file and to its directory, on a writable mount, "
            "with a URL without mode=ro); nothing was written, and reading still works"
        )
    if "file is not a database" in text:
        return NotADatabase(
            f"the database URL names a file that is not a SQLite database ({first}): "
            "check the path in the database URL"
        )
    return None


__all__ = ["typed_error"]

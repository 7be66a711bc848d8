"""Database URLs, read as Buildbot reads the ``db_url`` of a ``master.cfg``.

The same URL that configures a buildmaster names its database here (Buildbot 4.3's
``buildbot/db/enginestrategy.py``, mirrored without importing Buildbot):

- SQLite: ``%(basedir)s`` in the path is the master's base directory (for mastertrail, the
  current directory unless one is given), and ``serialize_access`` is dropped. SQLite's
  URI options (``?mode=ro``) are honoured, with or without SQLAlchemy's ``uri=true``.
- MySQL/MariaDB: ``max_idle`` is the seconds a pooled connection may stay idle
  (``pool_recycle``, default 3600); ``storage_engine`` is accepted and dropped, since
  mastertrail's tables are InnoDB whatever the default; ``use_unicode`` must be ``True``
  and ``charset`` ``utf8`` (or ``utf8mb4``) when given, and the connection speaks utf8mb4.
- A URL without a driver (``mysql://``, ``mariadb://``, ``postgresql://``) uses the driver
  mastertrail's extras install: PyMySQL, psycopg 3.
"""

from __future__ import annotations

import os
import re
import urllib.parse

import attrs
import sqlalchemy as sa
from sqlalchemy import exc

from eventstore.errors import InvalidArgument, InvalidArgumentType

#: The driver a URL without one gets, and the extra that installs it.
DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql"}
EXTRAS = {
    ("postgresql", "psycopg"): "mastertrail[postgres]",
    ("mysql", "pymysql"): "mastertrail[mysql]",
}
#: The seconds a pooled MySQL connection may idle when the URL has no ``max_idle``.
MYSQL_POOL_RECYCLE = 3600

#: SQLite's URI parameters (https://sqlite.org/uri.html), honoured without ``uri=true``.
_URI_OPTIONS = frozenset({"mode", "cache", "immutable", "nolock", "psow", "vfs"})
_ENGINE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@attrs.frozen
class DatabaseUrl:
    """A URL as SQLAlchemy is to be given it, its backend (``sqlite``, ``postgresql`` or
    ``mysql``), and the pool settings the URL asked for."""

    url: sa.URL
    backend: str
    pool_recycle: int = -1

    @property
    def extra(self) -> str | None:
        """The mastertrail extra that installs this URL's driver, if one does."""
        return EXTRAS.get((self.backend, self.url.get_driver_name()))


def parse_db_url(url: str | sa.URL, *, basedir: str | None = None) -> DatabaseUrl:
    """``url`` as Buildbot's ``master.cfg`` means it; ``basedir`` (default: the current
    directory) replaces ``%(basedir)s`` in a SQLite path. Anything Buildbot refuses, or
    that names another database, is :class:`InvalidArgument`."""
    if not isinstance(url, str | sa.URL):
        raise InvalidArgumentType("db", "a database URL (str) or a SQLAlchemy Engine", url)
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise InvalidArgument("db", "is not a database URL", url) from error
    backend = parsed.get_backend_name()
    if backend == "mariadb":
        backend = "mysql"
    if backend not in ("sqlite", "postgresql", "mysql"):
        raise InvalidArgument(
            "db", "names an unsupported database: use sqlite, postgresql or mysql", redact(parsed)
        )
    if backend == "sqlite":
        return DatabaseUrl(_sqlite(parsed, basedir), backend)
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{parsed.drivername}+{DEFAULT_DRIVERS[backend]}")
    if backend == "mysql":
        return _mysql(parsed, given=redact(sa.make_url(url)))
    return DatabaseUrl(parsed, backend)


def redact(url: sa.URL) -> str:
    """``url`` with its password hidden, for messages."""
    return url.render_as_string(hide_password=True)


def _sqlite(url: sa.URL, basedir: str | None) -> sa.URL:
    query = {key: value for key, value in url.query.items() if key != "serialize_access"}
    database = url.database
    if database and "%" in database:
        try:
            database = database % {"basedir": basedir or os.getcwd()}
        except (KeyError, ValueError, TypeError) as error:
            raise InvalidArgument(
                "db", "has a '%' in its path other than %(basedir)s or %%", redact(url)
            ) from error
    if database and not database.startswith("file:") and _URI_OPTIONS & set(query):
        # sqlite:///state.sqlite?mode=ro: SQLAlchemy would ignore the option (and open the
        # file for writing); SQLite's URI form honours it.
        database = "file:" + urllib.parse.quote(database, safe="/")
        query["uri"] = "true"
    return url.set(database=database, query=query)


def _mysql(url: sa.URL, *, given: str) -> DatabaseUrl:
    query = dict(url.query)
    recycle = _single(given, query.pop("max_idle", str(MYSQL_POOL_RECYCLE)), "max_idle")
    if not recycle.strip().lstrip("-").isdigit():
        raise InvalidArgument("db", "max_idle must be a whole number of seconds", given)
    storage_engine = _single(given, query.pop("storage_engine", "InnoDB"), "storage_engine")
    if not _ENGINE_NAME.fullmatch(storage_engine):
        raise InvalidArgument("db", "storage_engine must name a storage engine", given)
    if _single(given, query.get("use_unicode", "True"), "use_unicode") != "True":
        raise InvalidArgument("db", "use_unicode must be True (as Buildbot requires)", given)
    if _single(given, query.pop("charset", "utf8"), "charset") not in ("utf8", "utf8mb4"):
        raise InvalidArgument("db", "charset must be utf8 (as Buildbot requires) or utf8mb4", given)
    return DatabaseUrl(url.set(query=query), "mysql", pool_recycle=int(recycle))


def _single(given: str, value: str | tuple[str, ...], key: str) -> str:
    if isinstance(value, tuple):
        raise InvalidArgument("db", f"gives {key} more than once", given)
    return value


__all__ = ["DEFAULT_DRIVERS", "DatabaseUrl", "parse_db_url", "redact"]

"""Statements a master sends all the time, run at the cost of the driver's own call.

``Connection.execute`` of a prebuilt statement still looks its compiled form up in
SQLAlchemy's cache, builds and processes the parameters and wraps the result: on SQLite,
where a statement costs no round trip, that was most of a heartbeat's time outside the
commit, several times the driver's own call (measured in ``docs/performance.rst``).
:func:`execute`
compiles each statement once per dialect and sends its SQL text with
``Connection.exec_driver_sql``, which keeps SQLAlchemy's error handling and events (the
statement counts of ``make bench`` included) but skips the rest.

Only for statements whose parameters need no conversion by a SQLAlchemy type: the caller
passes what the driver takes (``bytes``, ``int``, ``str``, ``None``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult

Params = Mapping[str, Any]


def execute(
    conn: Connection, statement: sa.Executable, params: Params | Sequence[Params]
) -> CursorResult[Any]:
    """Run ``statement`` with ``params`` (one set, or a list for many rows) through the
    driver, with its SQL compiled once for the connection's dialect."""
    sql, names, defaults = compiled(statement, conn.dialect)
    if isinstance(params, Mapping):
        return conn.exec_driver_sql(sql, _bind(names, defaults, params))
    return conn.exec_driver_sql(sql, [_bind(names, defaults, one) for one in params])


def _bind(names: tuple[str, ...] | None, defaults: Params, params: Params) -> Any:
    """The parameters as the driver's paramstyle wants them."""
    if names is None:
        return {**defaults, **params}
    return tuple(params[name] if name in params else defaults[name] for name in names)


def bind(statement: sa.Executable, dialect: sa.Dialect, params: Params) -> tuple[str, Any]:
    """The SQL text of ``statement`` and ``params`` as the driver takes them, for a caller
    that holds the bare driver connection."""
    sql, names, defaults = compiled(statement, dialect)
    return sql, _bind(names, defaults, params)


@functools.lru_cache(maxsize=128)
def compiled(
    statement: sa.Executable, dialect: sa.Dialect
) -> tuple[str, tuple[str, ...] | None, Params]:
    """The SQL text ``statement`` is sent as on ``dialect``, its parameter names in order
    for a positional paramstyle (None for a named one), and the values of its own
    literals (a parameter the caller must give has none: leaving it out is an error)."""
    column_keys = None
    if isinstance(statement, sa.Insert) and statement.table is not None:
        column_keys = [column.key for column in statement.table.columns]
    form = statement.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
    names = tuple(form.positiontup) if form.positional else None
    literals = {name: value for name, value in form.params.items() if not form.binds[name].required}
    return str(form), names, literals

"""Whether the database can store a master's name exactly, checked before anything of it is
written (see :mod:`eventstore.charsets`, which knows what each database can carry)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from eventstore import check_storable as check_storable_in


def check_storable(conn: Connection, name: str) -> None:
    """Raise :class:`~eventstore.UnstorableName` if ``name`` cannot be stored exactly
    through ``conn`` into the ``masters`` view and the log."""
    check_storable_in(conn, name, column=("masters", "name"))

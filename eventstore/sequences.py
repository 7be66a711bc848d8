"""Serial columns: a table whose ids are given by us as well as by its sequence."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def advance_serial(conn: Connection, table: str, column: str = "id") -> None:
    """Move the sequence behind ``table.column`` past every value in the table, so that an
    insert taking its value from the sequence never collides with one we wrote ourselves.

    Only PostgreSQL keeps a sequence apart from the table; SQLite and MariaDB number from
    the table's own largest value, so there is nothing to do.
    """
    if conn.dialect.name != "postgresql":
        return
    sequence = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": table, "column": column},
    ).scalar()
    if sequence is None:
        return
    quoted = conn.dialect.identifier_preparer
    conn.execute(
        sa.text(
            f"SELECT setval(CAST(:seq AS regclass), m) FROM (SELECT max({quoted.quote(column)})"
            f" AS m FROM {quoted.quote(table)}) t WHERE m >= (SELECT last_value FROM {sequence})"
        ),
        {"seq": sequence},
    )

"""The results of ``verify``, kept so that a dashboard and ``/metrics`` can show the last
one without verifying again (a verify reads the whole log).

One row per run in ``mastertrail_verifications``, created on first use: it is not the log
(nothing else is derived from it), so it needs no migration, and a database that has never
been verified simply has no such table.
"""

from __future__ import annotations

import datetime as dt

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import from_micros, to_micros

VERIFICATIONS_TABLE = "mastertrail_verifications"

verifications_metadata = sa.MetaData()

verifications = sa.Table(
    VERIFICATIONS_TABLE,
    verifications_metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("checked_at", sa.BigInteger(), nullable=False),  # microseconds, UTC
    sa.Column("ok", sa.Integer(), nullable=False),
    sa.Column("events_checked", sa.BigInteger(), nullable=False),
    sa.Column("problems", sa.Integer(), nullable=False),
    sa.Column("first_problem", sa.Text(), nullable=True),
)

#: Longest first problem kept (a problem names a position or a master; this is plenty).
MAX_DETAIL = 1000


@attrs.frozen(kw_only=True)
class Verification:
    """One run of ``verify``: when, whether the log and view were sound, and the first
    problem found."""

    checked_at: dt.datetime
    ok: bool
    events_checked: int
    problems: int
    first_problem: str | None = None


def create(conn: Connection) -> None:
    """Create the table if it is missing."""
    verifications_metadata.create_all(conn, checkfirst=True)


def record(conn: Connection, verification: Verification) -> None:
    """Keep the result of one run."""
    create(conn)
    detail = verification.first_problem
    conn.execute(
        verifications.insert().values(
            checked_at=to_micros(verification.checked_at),
            ok=int(verification.ok),
            events_checked=verification.events_checked,
            problems=verification.problems,
            first_problem=None if detail is None else detail[:MAX_DETAIL],
        )
    )


def last(conn: Connection) -> Verification | None:
    """The newest result, or None when the database was never verified."""
    if not sa.inspect(conn).has_table(VERIFICATIONS_TABLE):
        return None
    row = conn.execute(
        sa.select(verifications).order_by(verifications.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return Verification(
        checked_at=from_micros(int(row.checked_at)),
        ok=bool(row.ok),
        events_checked=int(row.events_checked),
        problems=int(row.problems),
        first_problem=row.first_problem,
    )


__all__ = ["VERIFICATIONS_TABLE", "Verification", "create", "last", "record"]

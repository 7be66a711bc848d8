"""The ``masters`` view repaired to what the log says, in the caller's transaction.

Every id of the log is kept. A row is deleted only when it has no history, carries the
name of a master of the log (Buildbot's unique ``name_hash`` has no room for both) and no
other table references it; a referenced one makes the repair refuse, naming it, before
anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import RebuildRefused, log
from projections import view
from projections.drift import parked_hash, plan_repair
from projections.model import MasterState


def repair_view(conn: Connection, states: Mapping[int, MasterState]) -> None:
    """Make every row of ``masters`` what ``states`` (the fold of the whole log) says;
    raises :class:`RebuildRefused` (nothing written) when that would delete a row another
    table references."""
    rows = {row.id: row for row in view.load_rows(conn)}
    _refuse_duplicate_names(states)
    plan = plan_repair(states, rows.values())
    if plan.strays:
        references = referencing_columns(conn)
        for row_id in plan.strays:
            found = [f"{t}.{c}" for t, c in references if _references(conn, t, c, row_id)]
            if found:
                raise RebuildRefused(
                    row_id,
                    f"({rows[row_id].name!r}) has no history but the name of a master of the "
                    f"log, and {', '.join(found)} reference(s) it: move those rows to the "
                    "log's master, or delete them, and rebuild again",
                )
    masters = view.masters
    for row_id in plan.strays:
        row = rows[row_id]
        conn.execute(masters.delete().where(masters.c.id == row_id))
        log.warning(
            "view_row_deleted",
            master_id=row_id,
            name=row.name,
            active=row.active,
            last_active=row.last_active,
            reason="no history, and the name of a master of the log",
        )
    for row_id in plan.parked:
        conn.execute(
            masters.update().where(masters.c.id == row_id).values(name_hash=parked_hash(row_id))
        )
    for state in plan.save:
        view.save_row(conn, state)


def referencing_columns(conn: Connection) -> list[tuple[str, str]]:
    """``(table, column)`` of every foreign key to ``masters.id`` in the database (Buildbot's
    builds, claims, links, workers ...)."""
    inspector = sa.inspect(conn)
    found: list[tuple[str, str]] = []
    for table in inspector.get_table_names():
        for key in inspector.get_foreign_keys(table):
            if key["referred_table"] == view.masters.name and key["referred_columns"] == ["id"]:
                found.extend((table, column) for column in key["constrained_columns"])
    return sorted(found)


def _references(conn: Connection, table: str, column: str, row_id: int) -> bool:
    query: sa.Select[tuple[int]] = (
        sa.select(sa.literal_column("1"))
        .select_from(sa.table(table))
        .where(sa.column(column) == row_id)
        .limit(1)
    )
    return conn.execute(query).first() is not None


def _refuse_duplicate_names(states: Mapping[int, MasterState]) -> None:
    """Two masters of the log with one name (a forged log) cannot both have a row."""
    seen: dict[str, int] = {}
    for master_id, state in sorted(states.items()):
        if state.name in seen:
            raise RebuildRefused(
                master_id,
                f"would have the name {state.name!r} of master {seen[state.name]}: the log "
                "gives both one name, and Buildbot's unique name_hash allows one",
            )
        seen[state.name] = master_id

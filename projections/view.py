"""The persisted view: Buildbot's own ``masters`` table, one row per master.

In a Buildbot database this *is* Buildbot's table, so its columns and index are Buildbot's
(``buildbot/db/model.py``) and rows are only ever inserted or updated in place, never
deleted: builds, claims and links reference them with ON DELETE CASCADE.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore import (
    Head,
    InvalidArgument,
    InvalidArgumentType,
    advance_serial,
    execute_prebuilt,
    seen_in,
    stream_version_of,
    with_head,
)
from projections.drift import ViewRow
from projections.model import MasterModel, MasterState, epoch_to_datetime, name_hash

view_metadata = sa.MetaData()

masters = sa.Table(
    "masters",
    view_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_hash", sa.String(40), nullable=False),
    sa.Column("active", sa.Integer, nullable=False),
    sa.Column("last_active", sa.Integer, nullable=False),
    mysql_engine="InnoDB",
    # Made by mastertrail (outside a Buildbot database): any name, whatever the default.
    mysql_charset="utf8mb4",
)
sa.Index("master_name_hashes", masters.c.name_hash, unique=True)  # Buildbot's name

#: Buildbot tables holding a master's links, deleted when the master is deactivated.
LINK_TABLES = ("scheduler_masters", "changesource_masters")

ORDER_COLUMNS = ("id", "name", "active", "last_active")

_stream_version = stream_version_of(masters.c.id)


def create(conn: Connection) -> None:
    """Create the ``masters`` table if it is missing (Buildbot's database already has it)."""
    view_metadata.create_all(conn, checkfirst=True)


def load_state(conn: Connection, master_id: int) -> MasterState | None:
    """The state of one master: its view row and the version of its stream, or None."""
    row = conn.execute(
        sa.select(masters, _stream_version.label("version")).where(masters.c.id == master_id)
    ).first()
    return None if row is None else _state(row)


def load_state_and_head(conn: Connection, master_id: int) -> tuple[MasterState, Head] | None:
    """The state of one master and the log's head, read in one statement without a lock
    (what :class:`eventstore.AfterSeen` needs), or None for a master with no row. Raises
    :class:`~eventstore.errors.HeadMissing` when the head row is gone."""
    row = execute_prebuilt(conn, _LOAD_STATE_AND_HEAD, {"master_id": master_id}).first()
    return None if row is None else (_state(row), seen_in(row))


# The statements of the calls a master makes all the time are built once, with bound
# parameters, so each call skips building and hashing a new statement.
_LOAD_STATE_AND_HEAD = with_head(
    sa.select(masters, _stream_version.label("version")).where(
        masters.c.id == sa.bindparam("master_id")
    ),
    onto=masters,
)
_FIND_ID = sa.select(masters.c.id, masters.c.name).where(
    masters.c.name_hash == sa.bindparam("name_hash")
)
_ROWS = sa.select(masters.c.id, masters.c.name, masters.c.active, masters.c.last_active)
_ROW = _ROWS.where(masters.c.id == sa.bindparam("master_id"))
_MASTER = sa.select(masters).where(masters.c.id == sa.bindparam("master_id"))


def load_state_by_name(conn: Connection, name: str) -> MasterState | None:
    """The state of the master called exactly ``name``, or None."""
    row = conn.execute(
        sa.select(masters, _stream_version.label("version")).where(
            masters.c.name_hash == name_hash(name)
        )
    ).first()
    return None if row is None or row.name != name else _state(row)


def find_id(conn: Connection, name: str) -> int | None:
    """The id of the master called exactly ``name``, or None (one index lookup)."""
    row = conn.execute(_FIND_ID, {"name_hash": name_hash(name)}).first()
    return None if row is None or row.name != name else int(row.id)


def load_states(conn: Connection, *, active: bool | None = None) -> list[MasterState]:
    """The states of every master (or only the active or inactive ones), by id."""
    query = sa.select(masters, _stream_version.label("version")).order_by(masters.c.id)
    if active is not None:
        query = query.where(masters.c.active == int(active))
    return [_state(row) for row in conn.execute(query)]


def max_id(conn: Connection) -> int:
    """The greatest id in the view (0 when empty)."""
    return int(conn.execute(sa.select(sa.func.max(masters.c.id))).scalar() or 0)


def insert_row(conn: Connection, state: MasterState) -> None:
    """Insert the row of a new master (raises IntegrityError when the name exists)."""
    conn.execute(
        masters.insert().values(id=state.id, name_hash=name_hash(state.name), **_columns(state))
    )


def align_id_sequence(conn: Connection) -> None:
    """Move the database's sequence for ``masters.id`` past every id in the table, so an
    insert that takes its id from the sequence (as Buildbot's own connector does) never
    collides with an id we recorded."""
    advance_serial(conn, masters.name, "id")


def update_row(conn: Connection, state: MasterState) -> bool:
    """Set a master's row to ``state``; False when there is no such row."""
    return conn.execute(*update_statement(state)).rowcount > 0


def update_statement(state: MasterState) -> tuple[sa.Update, dict[str, object]]:
    """The update setting a master's row to ``state``, and its parameters (one statement
    for every state, so that it is compiled once)."""
    columns = _columns(state)
    return _UPDATE_ROW, {"view_id": state.id, **{f"view_{k}": v for k, v in columns.items()}}


_UPDATE_ROW = (
    masters.update()
    .where(masters.c.id == sa.bindparam("view_id"))
    .values(
        name=sa.bindparam("view_name"),
        active=sa.bindparam("view_active"),
        last_active=sa.bindparam("view_last_active"),
    )
)


def save_row(conn: Connection, state: MasterState) -> None:
    """Update the master's row in place (``name_hash`` included), or insert it when it went
    missing."""
    result = conn.execute(
        masters.update()
        .where(masters.c.id == state.id)
        .values(name_hash=name_hash(state.name), **_columns(state))
    )
    if result.rowcount == 0:
        insert_row(conn, state)


def load_rows(conn: Connection) -> list[ViewRow]:
    """Every row exactly as stored, by id (``verify`` compares them with the log)."""
    query = sa.select(
        masters.c.id, masters.c.name, masters.c.name_hash, masters.c.active, masters.c.last_active
    ).order_by(masters.c.id)
    return [
        ViewRow(int(r.id), r.name, r.name_hash, r.active, r.last_active)
        for r in conn.execute(query)
    ]


#: The link tables of each engine's database, found once (Buildbot creates them with its
#: schema, before any master runs).
_LINK_TABLES: weakref.WeakKeyDictionary[Engine, tuple[str, ...]] = weakref.WeakKeyDictionary()


def link_tables(conn: Connection) -> tuple[str, ...]:
    """The link tables present in ``conn``'s database, looked up once per engine."""
    found = _LINK_TABLES.get(conn.engine)
    if found is None:
        present = set(sa.inspect(conn).get_table_names())
        found = _LINK_TABLES[conn.engine] = tuple(n for n in LINK_TABLES if n in present)
    return found


def load_links(conn: Connection, master_id: int, tables: Sequence[str]) -> dict[str, list[int]]:
    """The ids the master's rows of the given link tables link it to, by table (a
    ``scheduler_masters`` row names a ``schedulerid``, a ``changesource_masters`` row a
    ``changesourceid``)."""
    found: dict[str, list[int]] = {}
    for name in tables:
        column = name.removesuffix("_masters") + "id"
        rows = conn.execute(
            sa.text(f"SELECT {column} FROM {name} WHERE masterid = :id ORDER BY {column}"),
            {"id": master_id},
        )
        found[name] = [int(row[0]) for row in rows]
    return found


def delete_links(conn: Connection, master_id: int, tables: Sequence[str]) -> None:
    """Delete the master's rows from the given link tables."""
    for name in tables:
        conn.execute(sa.text(f"DELETE FROM {name} WHERE masterid = :id"), {"id": master_id})


def read_rows(conn: Connection, master_id: int | None = None) -> list[tuple[int, str, bool, int]]:
    """``(id, name, active, last_active epoch seconds)`` of one master (by id) or of every
    master: for adapters that build their own model objects."""
    rows = (
        conn.execute(_ROWS) if master_id is None else conn.execute(_ROW, {"master_id": master_id})
    )
    return [(int(i), str(n), bool(a), int(t)) for i, n, a, t in rows]


def get_master(conn: Connection, master_id: int) -> MasterModel | None:
    """The master with this id, or None."""
    row = conn.execute(_MASTER, {"master_id": master_id}).first()
    return None if row is None else _model(row)


def get_masters(
    conn: Connection,
    *,
    active: bool | None = None,
    order: Sequence[str] = ("id",),
    limit: int | None = None,
    offset: int = 0,
) -> list[MasterModel]:
    """Masters, filtered by ``active``, sorted by ``order`` (``-name`` descends), paged."""
    query = sa.select(masters)
    if active is not None:
        query = query.where(masters.c.active == int(active))
    query = query.order_by(*order_by(order))
    if limit is not None or offset:
        query = query.limit(limit).offset(offset)
    return [_model(row) for row in conn.execute(query)]


def order_by(order: Sequence[str]) -> list[sa.ColumnElement[object]]:
    """The ORDER BY clauses of ``order``; ``id`` breaks ties so pages are stable."""
    if isinstance(order, str) or not isinstance(order, Sequence):
        raise InvalidArgumentType("order", "a sequence of column names", order)
    clauses: list[sa.ColumnElement[object]] = []
    for item in order:
        if not isinstance(item, str):
            raise InvalidArgumentType("order item", "a column name", item)
        column = item.removeprefix("-")
        if column not in ORDER_COLUMNS:
            raise InvalidArgument("order", f"names an unknown column; use {ORDER_COLUMNS}", item)
        clause = masters.c[column]
        clauses.append(clause.desc() if item.startswith("-") else clause.asc())
    if "id" not in {item.removeprefix("-") for item in order}:
        clauses.append(masters.c.id.asc())
    return clauses


def _columns(state: MasterState) -> dict[str, object]:
    return {"name": state.name, "active": int(state.active), "last_active": state.last_active}


def _state(row: sa.Row[tuple[object, ...]]) -> MasterState:
    return MasterState(
        id=row.id,
        name=row.name,
        active=bool(row.active),
        last_active=int(row.last_active),
        version=int(row.version or 0),
    )


def _model(row: sa.Row[tuple[object, ...]]) -> MasterModel:
    return MasterModel(row.id, row.name, bool(row.active), epoch_to_datetime(int(row.last_active)))

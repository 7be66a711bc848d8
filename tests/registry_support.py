"""Helpers shared by the registry's tests: snapshots of the stored rows, raw writes,
Buildbot's link tables."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa

import eventstore
from mastertrail import (
    RecordedEvent,
    Registry,
)
from projections import view

UTC = dt.UTC


#: The FakeClock's start, 2023-11-14T22:13:20Z.
T0 = 1_700_000_000


EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


Snapshot = dict[str, list[tuple[Any, ...]]]


def at(seconds: float) -> dt.datetime:
    """The aware UTC datetime of POSIX seconds."""
    return dt.datetime.fromtimestamp(seconds, UTC)


def snapshot(registry: Registry) -> Snapshot:
    """Every row of the log, its head and the view, as stored."""
    with registry.engine.connect() as conn:
        return {
            table: [
                tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))
            ]
            for table in ("mastertrail_events", "mastertrail_head", "masters")
        }


def head(registry: Registry) -> int:
    """The position of the newest event."""
    with registry.engine.connect() as conn:
        return eventstore.head_position(conn)


def log_of(registry: Registry) -> list[RecordedEvent]:
    return list(registry.events())


def insert_raw_master(
    registry: Registry, master_id: int, name: str, *, active: bool, last_active: int
) -> None:
    """A ``masters`` row written behind the log's back, as Buildbot itself would have."""
    with registry.engine.begin() as conn:
        conn.execute(
            view.masters.insert().values(
                id=master_id,
                name=name,
                name_hash=hashlib.sha1(name.encode()).hexdigest(),
                active=int(active),
                last_active=last_active,
            )
        )


def execute(registry: Registry, statement: str, **params: object) -> None:
    with registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


link_metadata = sa.MetaData()


scheduler_masters = sa.Table(
    "scheduler_masters",
    link_metadata,
    sa.Column("schedulerid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("masterid", sa.Integer, nullable=False),
)


changesource_masters = sa.Table(
    "changesource_masters",
    link_metadata,
    sa.Column("changesourceid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("masterid", sa.Integer, nullable=False),
)


def links(registry: Registry) -> dict[str, list[tuple[int, int]]]:
    """The rows of both link tables, by table."""
    with registry.engine.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in (scheduler_masters, changesource_masters)
        }

"""Tampering as someone with raw access to the database could: the guard triggers of the
log's tables dropped (whatever their names), then plain SQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.links import GENESIS, link_stored
from eventstore.reads import EVENT_ROWS
from eventstore.schema import events, head
from mastertrail import Registry
from tests.conftest import FakeClock

#: The log's tables whose rows the chain depends on.
LOG_TABLES = ("mastertrail_events", "mastertrail_texts", "mastertrail_head")


def drop_guards(conn: Connection, tables: tuple[str, ...] = LOG_TABLES) -> None:
    """Drop every trigger on ``tables``, found in the database's own catalogue."""
    dialect = conn.dialect.name
    for table in tables:
        if dialect == "sqlite":
            names = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                (table,),
            ).scalars()
            statements = [f"DROP TRIGGER {name}" for name in names]
        elif dialect == "postgresql":
            names = conn.execute(
                sa.text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                    "AND NOT tgisinternal"
                ),
                {"t": table},
            ).scalars()
            statements = [f"DROP TRIGGER {name} ON {table}" for name in names]
        else:
            names = conn.execute(
                sa.text(
                    "SELECT trigger_name FROM information_schema.triggers "
                    "WHERE trigger_schema = DATABASE() AND event_object_table = :t"
                ),
                {"t": table},
            ).scalars()
            statements = [f"DROP TRIGGER {name}" for name in names]
        for statement in list(statements):
            conn.exec_driver_sql(statement)


def tamper(engine: Engine, *statements: str, **params: object) -> None:
    """Drop the guards and run ``statements`` in one transaction."""
    with engine.begin() as conn:
        drop_guards(conn)
        for statement in statements:
            conn.execute(sa.text(statement), params)


def count_events(engine: Engine) -> int:
    """How many rows the events table holds."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM mastertrail_events").scalar_one())


def rechain(engine: Engine, *statements: str, dml_only: bool = False) -> None:
    """Drop the guards (or, ``dml_only``, on PostgreSQL, switch them off for the
    transaction, as a superuser may, dropping nothing), run ``statements``, then recompute
    every hash of the log and the head from the rows as they now are: a rewrite the chain
    alone cannot reveal."""
    with engine.begin() as conn:
        if dml_only:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            drop_guards(conn)
        for statement in statements:
            conn.execute(sa.text(statement))
        previous, position = GENESIS, 0
        for row in conn.execute(EVENT_ROWS.order_by(events.c.position)).all():
            previous = link_stored(previous, row)
            position = row.position
            conn.execute(events.update().where(events.c.position == position).values(hash=previous))
        conn.execute(head.update().values(position=position, hash=previous))


def three_masters(registry: Registry, clock: FakeClock) -> Registry:
    """Three masters, positions 1-12: registered (1-3), started (4-6), checked in (7-9);
    bravo stops (10), alpha checks in (11) and expires charlie (12). The log verifies."""
    ids = [registry.find_master_id(f"{name}:/srv") for name in ("alpha", "bravo", "charlie")]
    for master_id in ids:
        registry.set_master_state(master_id, True)
    clock.advance(60)
    for master_id in ids:
        registry.set_master_state(master_id, True)
    clock.advance(60)
    registry.set_master_state(ids[1], False)
    clock.advance(1000)
    registry.set_master_state(ids[0], True)
    assert [m.id for m in registry.expire_masters(timeout=600)] == [ids[2]]
    assert registry.verify().ok
    return registry

"""Section 3: the core heartbeat, ``Registry.set_master_state(id, True)``, against the
eventsourcing library recording a heartbeat event on an aggregate, alternating call by
call, each on its own database of the same backend.

The library's heartbeat is its idiomatic command: ``repository.get`` (with its aggregate
cache, which fast-forwards from the database, so one query for newer events), trigger the
event, ``save``. Its bare ``save`` of an aggregate held in memory is timed in the same loop
as a floor: that is one insert and no read at all.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.clock import MinuteClock
from bench.databases import Backend, Database
from bench.history import master_name
from bench.stats import alternate, comparison
from eventstore import begins_in_dialect
from mastertrail import Registry

OURS, ANCHOR, FLOOR = "mastertrail", "eventsourcing", "eventsourcing_save_only"


class Master(Aggregate):
    """A Buildbot master as an eventsourcing aggregate."""

    @event("Registered")
    def __init__(self, name: str, last_active: int) -> None:
        self.name = name
        self.active = False
        self.last_active = last_active

    @event("CheckedIn")
    def check_in(self, last_active: int) -> None:
        self.active = True
        self.last_active = last_active


class Masters(Application[uuid.UUID]):
    """The masters registry written with the eventsourcing library."""

    def register(self, name: str, now: int) -> uuid.UUID:
        master = Master(name=name, last_active=now)
        self.save(master)
        return master.id

    def heartbeat(self, master_id: uuid.UUID, now: int) -> None:
        master: Master = self.repository.get(master_id)
        master.check_in(last_active=now)
        self.save(master)


def library_env(database: Database) -> dict[str, str]:
    """The eventsourcing settings for ``database`` (SQLite file or PostgreSQL)."""
    common = {"AGGREGATE_CACHE_MAXSIZE": "1000"}
    if database.backend == "sqlite":
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(database.path),
        }
    url = database.sa_url()
    return {
        **common,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.database or "",
        "POSTGRES_HOST": url.host or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "",
        "POSTGRES_PASSWORD": str(url.password or ""),
    }


def heartbeat(backend: Backend, iterations: int, warmup: int) -> dict[str, Any]:
    """Alternate the three heartbeats and compare mastertrail's with the library's."""
    ours, theirs = backend.new_database("core"), backend.new_database("eventsourcing")
    registry = Registry(ours.url, actor=master_name(1), clock=MinuteClock())
    clock = MinuteClock()
    app = Masters(env=library_env(theirs))
    try:
        registry.upgrade()
        master_id = registry.find_master_id(master_name(1))
        registry.set_master_state(master_id, True)
        aggregate_id = app.register(master_name(1), int(clock()))
        # The floor saves another aggregate, so the two never race for a version.
        held: Master = app.repository.get(app.register(master_name(2), int(clock())))

        def save_only() -> None:
            held.check_in(last_active=int(clock()))
            app.save(held)

        samples = alternate(
            {
                OURS: lambda: registry.set_master_state(master_id, True),
                ANCHOR: lambda: app.heartbeat(aggregate_id, int(clock())),
                FLOOR: save_only,
            },
            iterations,
            warmup,
        )
        result = {"backend": backend.name, **comparison(samples, OURS, ANCHOR)}
        floor = comparison(samples, OURS, FLOOR)
        result[FLOOR] = floor[FLOOR]
        result["ratio_save_only"] = floor["ratio"]
        result["round_trips"] = {OURS: statements_per_heartbeat(registry, master_id)}
        return result
    finally:
        registry.close()
        app.close()
        backend.drop(ours)
        backend.drop(theirs)


def statements_per_heartbeat(registry: Registry, master_id: int, calls: int = 5) -> float:
    """SQL statements mastertrail sends per heartbeat (BEGIN and COMMIT included)."""
    count = 0

    def bump(*_args: Any, **_kwargs: Any) -> None:
        nonlocal count
        count += 1

    names = ["before_cursor_execute", "commit"]
    if begins_in_dialect(registry.engine):
        names.append("begin")  # BEGIN IMMEDIATE, sent by the dialect's do_begin
    for name in names:
        sa.event.listen(registry.engine, name, bump)
    try:
        for _ in range(calls):
            registry.set_master_state(master_id, True)
    finally:
        for name in names:
            sa.event.remove(registry.engine, name, bump)
    return count / calls

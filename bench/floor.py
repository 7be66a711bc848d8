"""The database's share of a heartbeat: the statements of mastertrail's heartbeat and of
Buildbot's, alternating call by call on one connection, each sent with SQLAlchemy's
driver-level call (no component, no thread pool, no retries, no command around them).

Buildbot's heartbeat reads the master's ``active`` and updates its row. mastertrail's is
the writer's append (:mod:`eventstore.writer`) of one check-in with its view row, from a
master whose own last write is the newest of the log: it reads nothing
(:class:`~eventstore.writer.AfterSeen` the tip that write left): one statement on
PostgreSQL and MariaDB, three on SQLite. A third contender sends what the heartbeat sends
when another master wrote since: on PostgreSQL and MariaDB the append after the master's
own event (:class:`~eventstore.writer.AfterOwn`), one statement in which the database
numbers and chains the event after wherever the head is; on SQLite, the read of the row,
the stream version and the head, then the same writes. All of it is the real write path,
chained into a log that verifies. What it costs above Buildbot's here is the database's
work of keeping the history, which no code above the driver can take away.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs

from bench.clock import MinuteClock
from bench.databases import Backend
from bench.history import master_name
from bench.stats import alternate, comparison
from eventstore import (
    CODEC,
    AfterOwn,
    AfterSeen,
    MasterCheckedIn,
    NewEvent,
    Tip,
    event_id_for,
    verify_chain,
    writer_for,
)
from mastertrail import Registry
from projections import view

OURS, ANCHOR = "mastertrail", "buildbot"
#: mastertrail's heartbeat statements when another master wrote since.
SHARED = "mastertrail_shared"


def heartbeat_floor(backend: Backend, iterations: int, warmup: int) -> dict[str, Any]:
    """Alternate the two heartbeats' statements on one connection; compare them."""
    database = backend.new_database("floor")
    registry = Registry(database.url, actor=master_name(1), clock=MinuteClock())
    try:
        registry.upgrade()
        ours, theirs = (registry.find_master_id(master_name(k)) for k in (1, 2))
        for master_id in (ours, theirs):
            registry.set_master_state(master_id, True)
            registry.set_master_state(master_id, True)  # its texts are stored and known
        engine = registry.engine
        writer = writer_for(engine)
        metadata = {"actor": master_name(1), "reason": "heartbeat"}
        clock = MinuteClock()
        conn = engine.connect()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"

        def buildbot() -> None:
            conn.exec_driver_sql(f"SELECT active FROM masters WHERE id = {mark}", (theirs,)).all()
            conn.exec_driver_sql(
                f"UPDATE masters SET active = 1, last_active = {mark} WHERE id = {mark}",
                (int(clock()), theirs),
            )
            conn.commit()

        loaded = view.load_state_and_head(conn, ours)
        assert loaded is not None
        conn.rollback()
        # What the master's last write left: its state, and where the log ended.
        known: list[Any] = [loaded[0], Tip(loaded[1].position, loaded[1].hash)]

        def mastertrail(*, shared: bool = False) -> None:
            now = clock()
            seconds, micros = int(now), round(now * 1_000_000)
            state, tip = known
            type_name, schema_version, data = CODEC.encode(
                MasterCheckedIn(last_active=seconds), recorded_at=micros
            )
            event = NewEvent(
                event_id=event_id_for(ours, state.version + 1, micros),
                type=type_name,
                schema_version=schema_version,
                data=data,
                metadata=metadata,
                recorded_at=micros,
            )
            after = attrs.evolve(state, active=True, last_active=seconds, version=state.version + 1)
            also = view.update_statement(after)
            expect: AfterSeen | AfterOwn = AfterSeen(state.version, tip)
            if shared and writer.chains_in_database:  # the database numbers and chains it
                expect = AfterOwn(state.version, tip)  # the stream's newest: the last write's
            elif shared:  # SQLite: the read
                read = view.load_state_and_head(conn, ours)
                assert read is not None
                expect = AfterSeen(read[0].version, read[1])
            result = writer.append(conn, ours, expect, [event], view_update=also)
            conn.commit()
            assert result.tip is not None
            known[:] = [after, result.tip]

        contenders = {
            OURS: mastertrail,
            SHARED: functools.partial(mastertrail, shared=True),
            ANCHOR: buildbot,
        }
        samples = alternate(contenders, iterations, warmup)
        conn.close()
        # The writes chained a log that verifies (the anchor's master drifts from its log
        # by design: its row is written without events).
        assert verify_chain(engine).ok
        return {
            "backend": backend.name,
            **comparison(samples, OURS, ANCHOR),
            "shared": comparison(samples, SHARED, ANCHOR),
        }
    finally:
        registry.close()
        backend.drop(database)

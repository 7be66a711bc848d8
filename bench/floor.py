"""The database's share of a heartbeat: the statements of mastertrail's heartbeat and of
Buildbot's, sent through the bare driver (no SQLAlchemy, no component, no thread pool),
alternating call by call on one database.

Buildbot's heartbeat reads the master's ``active`` and updates its row. mastertrail's, from
a master whose own last write is the newest of the log, reads nothing
(:mod:`commands.known`): one statement on PostgreSQL and MariaDB, three on SQLite, moves the
head if it is still where that write left it, inserts the event with its indexes and
updates the row. A third contender sends what the heartbeat sends when another master wrote
since: on PostgreSQL and MariaDB, one statement in which the database numbers and chains
the event after wherever the head is; on SQLite, the read of the row, the stream version
and the head, then the same writes. All of it is the SQL mastertrail sends, with the same
parameters, chained into a log that verifies. What it costs above Buildbot's here is the
database's work of keeping the history, which no code above the driver can take away.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs

from bench.clock import MinuteClock
from bench.databases import Backend
from bench.history import master_name
from bench.stats import alternate, comparison
from eventstore import fused, prebuilt, store
from eventstore.chain import verify_chain
from eventstore.events import CODEC, MasterCheckedIn
from eventstore.ids import event_id_for
from eventstore.recorded import NewEvent, canonical_json
from eventstore.store import Tip
from eventstore.texts import text_ids
from mastertrail import Registry
from projections import view

OURS, ANCHOR = "mastertrail", "buildbot"
#: mastertrail's heartbeat statements when another master wrote since.
SHARED = "mastertrail_shared"


def heartbeat_floor(backend: Backend, iterations: int, warmup: int) -> dict[str, Any]:
    """Alternate the two heartbeats' statements through the driver; compare them."""
    database = backend.new_database("floor")
    registry = Registry(database.url, actor=master_name(1), clock=MinuteClock())
    try:
        registry.upgrade()
        ours, theirs = (registry.find_master_id(master_name(k)) for k in (1, 2))
        for master_id in (ours, theirs):
            registry.set_master_state(master_id, True)
        engine, dialect = registry.engine, registry.engine.dialect
        metadata = {"actor": master_name(1), "reason": "heartbeat"}
        texts = [MasterCheckedIn.type_name, canonical_json(metadata)]
        with engine.begin() as conn:
            text_ids(conn, texts)
        # Found committed, the digests are remembered: building the rows sends nothing
        # through it.
        cache = engine.connect()
        text_ids(cache, texts)
        cache.rollback()
        raw = engine.raw_connection()
        cursor, sqlite = raw.cursor(), dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        clock = MinuteClock()

        def buildbot() -> None:
            if sqlite:
                cursor.execute("BEGIN")
            cursor.execute(f"SELECT active FROM masters WHERE id = {mark}", (theirs,))
            cursor.fetchall()
            cursor.execute(
                f"UPDATE masters SET active = 1, last_active = {mark} WHERE id = {mark}",
                (int(clock()), theirs),
            )
            raw.commit()

        with engine.connect() as conn:
            loaded = view.load_state_and_head(conn, ours)
        assert loaded is not None
        # What the master's last write left: its state, and where the log ended.
        known: list[Any] = [loaded[0], Tip(loaded[1].position, loaded[1].hash)]
        chained = fused.chains_in_database(dialect)

        def mastertrail(*, shared: bool = False) -> None:
            now = clock()
            seconds, micros = int(now), round(now * 1_000_000)
            state, tip = known
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
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
            if shared and chained:  # the database numbers and chains the event
                row, tail = store._chained_row(cache, ours, state.version, event)
                last = (state.version, tip.hash)  # the stream's newest event: the last write's
                cursor.execute(*fused.chained_statement(dialect, row, tail, last, also))
                found = cursor.fetchone()
                while cursor.nextset():  # MariaDB: the compound statement's end
                    pass
                tip = Tip(found[0], bytes(found[1]))
            else:
                if shared:  # SQLite: the read
                    statement = view._LOAD_STATE_AND_HEAD
                    cursor.execute(*prebuilt.bind(statement, dialect, {"master_id": ours}))
                    names = [column[0] for column in cursor.description]
                    read = dict(zip(names, cursor.fetchone(), strict=True))
                    tip = Tip(read["head_position"], bytes(read["head_hash"]))
                rows = store._rows(cache, tip, ours, state.version, [event])
                if not _write(cursor, dialect, rows, store._head_params(tip, rows, ours), also):
                    raise AssertionError("the head moved under a master that writes alone")
                tip = Tip(rows[-1]["position"], rows[-1]["hash"])
            raw.commit()
            known[:] = [after, tip]

        contenders = {
            OURS: mastertrail,
            SHARED: functools.partial(mastertrail, shared=True),
            ANCHOR: buildbot,
        }
        samples = alternate(contenders, iterations, warmup)
        raw.close()
        cache.close()
        # The bare writes chained a log that verifies (the anchor's master drifts from its
        # log by design: its row is written without events).
        assert verify_chain(engine).ok
        return {
            "backend": backend.name,
            **comparison(samples, OURS, ANCHOR),
            "shared": comparison(samples, SHARED, ANCHOR),
        }
    finally:
        registry.close()
        backend.drop(database)


def _write(
    cursor: Any, dialect: Any, rows: list[dict[str, Any]], head: dict[str, Any], also: fused.Also
) -> bool:
    """mastertrail's write statements for ``rows``, as :func:`eventstore.fused.write`
    sends them, through the driver's cursor; False if the head had moved."""
    if dialect.name == "postgresql":
        params = fused._one_statement_params(rows, head, also)
        cursor.execute(*prebuilt.bind(fused._with_ctes(len(rows), also[0]), dialect, params))
        return bool(cursor.fetchone()[0])
    rows = [{**row, "event_id": fused.id_bytes(row["event_id"])} for row in rows]
    if dialect.name == "mysql":
        params = fused._one_statement_params(rows, head, also)
        cursor.execute(fused._compound(len(rows), also[0], dialect), params)
        return True  # a moved head raises
    cursor.execute(*prebuilt.bind(fused.MOVE_HEAD, dialect, head))
    if not cursor.rowcount:
        return False
    for row in rows:
        cursor.execute(*prebuilt.bind(fused._INSERT, dialect, row))
    cursor.execute(*prebuilt.bind(also[0], dialect, also[1]))
    return True

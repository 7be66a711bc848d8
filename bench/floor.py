"""The database's share of a heartbeat: the statements of mastertrail's heartbeat and of
Buildbot's, sent through the bare driver (no SQLAlchemy, no component, no thread pool),
alternating call by call on one database.

Buildbot's heartbeat reads the master's ``active`` and updates its row. mastertrail's reads
the row with its stream version and the log's head, then (one statement on PostgreSQL and
MariaDB, three on SQLite) moves the head, inserts the event with its indexes and updates the
row: the SQL mastertrail sends, with the same parameters, chained into a log that verifies.
What it costs above Buildbot's here is the database's work of keeping the history, which no
code above the driver can take away.
"""

from __future__ import annotations

from typing import Any

from bench.clock import MinuteClock
from bench.databases import Backend
from bench.history import master_name
from bench.stats import alternate, comparison
from eventstore import fused, prebuilt
from eventstore.chain import link, verify_chain
from eventstore.events import MasterCheckedIn
from eventstore.ids import new_event_id
from eventstore.recorded import canonical_json
from eventstore.texts import text_ids
from mastertrail import Registry
from projections import view

OURS, ANCHOR = "mastertrail", "buildbot"


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
        metadata = canonical_json({"actor": master_name(1), "reason": "heartbeat"})
        with engine.begin() as conn:
            ids = text_ids(conn, [MasterCheckedIn.type_name, metadata])
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

        def mastertrail() -> None:
            now = clock()
            seconds, micros = int(now), round(now * 1_000_000)
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(*prebuilt.bind(view._LOAD_STATE_AND_HEAD, dialect, {"master_id": ours}))
            names = [column[0] for column in cursor.description]
            state = dict(zip(names, cursor.fetchone(), strict=True))
            row = _event_row(state, ours, ids, metadata, seconds, micros)
            head = {
                "seen_position": state["head_position"],
                "seen_hash": bytes(state["head_hash"]),
                "new_position": row["position"],
                "new_hash": row["hash"],
                "last_master_id": max(state["head_last_master_id"], ours),
            }
            update = {
                "view_id": ours,
                "view_name": state["name"],
                "view_active": 1,
                "view_last_active": seconds,
            }
            _write(cursor, dialect, row, head, update)
            raw.commit()

        samples = alternate({OURS: mastertrail, ANCHOR: buildbot}, iterations, warmup)
        raw.close()
        # The bare writes chained a log that verifies (the anchor's master drifts from its
        # log by design: its row is written without events).
        assert verify_chain(engine).ok
        return {"backend": backend.name, **comparison(samples, OURS, ANCHOR)}
    finally:
        registry.close()
        backend.drop(database)


def _event_row(
    state: dict[str, Any],
    master_id: int,
    ids: dict[str, int],
    metadata: str,
    seconds: int,
    micros: int,
) -> dict[str, Any]:
    """The stored row of a check-in after ``state``, chained after its head."""
    position, version = state["head_position"] + 1, state["version"] + 1
    event_id, data = new_event_id(micros), f'{{"last_active":{seconds}}}'
    digest = link(
        bytes(state["head_hash"]),
        position=position,
        event_id=event_id,
        master_id=master_id,
        version=version,
        type=MasterCheckedIn.type_name,
        schema_version=MasterCheckedIn.schema_version,
        data=data,
        metadata=metadata,
        recorded_at=micros,
    )
    return {
        "position": position,
        "event_id": event_id,
        "master_id": master_id,
        "version": version,
        "type_id": ids[MasterCheckedIn.type_name],
        "schema_version": MasterCheckedIn.schema_version,
        "data": data,
        "metadata_id": ids[metadata],
        "recorded_at": micros,
        "hash": digest,
    }


def _write(
    cursor: Any, dialect: Any, row: dict[str, Any], head: dict[str, Any], update: dict[str, Any]
) -> None:
    """mastertrail's write statements for one event, as :func:`eventstore.fused.write`
    sends them, through the driver's cursor."""
    if dialect.name == "postgresql":
        params = {**head, **{f"r0_{k}": v for k, v in row.items()}, **update}
        cursor.execute(*prebuilt.bind(fused._with_ctes(1, view._UPDATE_ROW), dialect, params))
        return
    row = {**row, "event_id": row["event_id"].bytes}
    if dialect.name == "mysql":
        params = {**head, **{f"r0_{k}": v for k, v in row.items()}, **update}
        cursor.execute(fused._compound(1, view._UPDATE_ROW, dialect), params)
        return
    cursor.execute(*prebuilt.bind(fused.MOVE_HEAD, dialect, head))
    cursor.execute(*prebuilt.bind(fused._INSERT, dialect, row))
    cursor.execute(*prebuilt.bind(view._UPDATE_ROW, dialect, update))

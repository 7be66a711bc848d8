"""Helpers shared by the event store's tests: events to append and views of the log."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import eventstore
import eventstore.fused
from eventstore import (
    NewEvent,
    RecordedEvent,
)
from eventstore.engine import reading
from tests.tamper_support import drop_guards

#: 2023-11-14T22:13:20.123456Z in microseconds since the epoch.
T0 = 1_700_000_000_123_456


def new_event(
    type: str = "test.happened",
    data: dict[str, Any] | None = None,
    *,
    recorded_at: int = T0,
    event_id: uuid.UUID | None = None,
    metadata: dict[str, Any] | None = None,
    schema_version: int = 1,
) -> NewEvent:
    """An encoded event ready to append."""
    return NewEvent(
        event_id=event_id or uuid.uuid4(),
        type=type,
        schema_version=schema_version,
        data={} if data is None else data,
        metadata={"actor": "tester", "reason": "test"} if metadata is None else metadata,
        recorded_at=recorded_at,
    )


def append(
    engine: Engine, master_id: int, expected: int, batch: Sequence[NewEvent]
) -> eventstore.AppendResult:
    """Append ``batch`` in a transaction of its own."""
    with engine.begin() as conn:
        return eventstore.append(conn, master_id, expected, batch)


def head(engine: Engine) -> int:
    with reading(engine) as conn:
        return eventstore.head_position(conn)


def count_events(engine: Engine) -> int:
    with reading(engine) as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM mastertrail_events")).scalar_one())


def all_events(engine: Engine) -> list[RecordedEvent]:
    with reading(engine) as conn:
        return eventstore.read_after(conn, 0, limit=1_000_000)


def micros(when: dt.datetime) -> int:
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def once_the_head_lock_is_released(
    engine: Engine, backend: str, late: Callable[[], object]
) -> object:
    """Run ``late`` in a thread while another transaction holds the head's lock, having
    appended version 2 of master 1's stream; commit that transaction once ``late`` waits
    for the lock, and return what ``late`` returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(late())
        except BaseException as error:
            outcome.append(error)

    with engine.connect() as writer:
        writer.begin()
        eventstore.append(writer, 1, 1, [new_event()])  # holds the head lock
        thread = threading.Thread(target=run)
        thread.start()
        wait_for_lock_waiter(engine, backend)
        writer.commit()
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert len(outcome) == 1
    return outcome[0]


def wait_for_lock_waiter(engine: Engine, backend: str, deadline: float = 30.0) -> None:
    """Return once some transaction of the server waits for a row lock."""
    query = {
        "postgresql": "SELECT count(*) FROM pg_locks WHERE NOT granted",
        "mysql": "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'",
    }[backend]
    # InnoDB refreshes its transaction tables only once they have gone unread for 0.1 s:
    # polled faster, they never show a wait that began after the first look.
    pause = 0.15 if backend == "mysql" else 0.005
    give_up = time.monotonic() + deadline
    with engine.connect() as conn:
        while not conn.execute(sa.text(query)).scalar():
            conn.rollback()
            assert time.monotonic() < give_up, "no transaction ever waited for the lock"
            time.sleep(pause)


def drop_immutability_triggers(conn: Connection) -> None:
    """Remove the triggers that refuse changes to the log, its texts and its head, as a
    hostile operator could."""
    drop_guards(conn)

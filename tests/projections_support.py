"""Helpers shared by the projections' tests: recorded events, raw rows, a busy log."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st

from eventstore.events import (
    CODEC,
)
from eventstore.recorded import RecordedEvent
from mastertrail import MasterModel, Registry
from projections import (
    MasterState,
)
from tests.conftest import FakeClock
from tests.tamper_support import drop_guards

UTC = dt.UTC


EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


T0 = 1_700_000_000


def recorded(position: int, master_id: int, version: int, event: Any) -> RecordedEvent:
    """An event as the log would hand it back."""
    type_name, schema_version, data = CODEC.encode(event)
    return RecordedEvent(
        position=position,
        event_id=uuid.uuid4(),
        master_id=master_id,
        version=version,
        type=type_name,
        schema_version=schema_version,
        data=data,
        metadata={},
        recorded_at=EPOCH,
        hash="",
    )


def models(states: dict[int, MasterState]) -> list[MasterModel]:
    """The masters of a fold as the registry returns them, by id."""
    return [states[master_id].to_model() for master_id in sorted(states)]


def execute(registry: Registry, statement: str, **params: object) -> None:
    with registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def insert_raw_master(
    registry: Registry, master_id: int, name: str, *, active: bool, last_active: int
) -> None:
    """A ``masters`` row written behind the log's back."""
    execute(
        registry,
        "INSERT INTO masters (id, name, name_hash, active, last_active) "
        "VALUES (:id, :name, :hash, :active, :last_active)",
        id=master_id,
        name=name,
        hash=hashlib.sha1(name.encode()).hexdigest(),
        active=int(active),
        last_active=last_active,
    )


def view_rows(registry: Registry) -> list[tuple[Any, ...]]:
    """Every row of ``masters`` as stored, by id."""
    with registry.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM masters ORDER BY id"))]


def drop_immutability_triggers(registry: Registry) -> None:
    """Let a test tamper with the log, as someone with raw database access could."""
    with registry.engine.begin() as conn:
        drop_guards(conn)


#: One step of a master's life: (master index, command).
step = st.tuples(
    st.integers(0, 2),
    st.sampled_from(["find", "start", "check_in", "stop", "expire", "force"]),
    st.integers(0, 900),
)


def make_busy(registry: Registry, clock: FakeClock) -> list[RecordedEvent]:
    """Give the registry a history of every kind of event; returns its log."""
    a = registry.find_master_id("host:/srv/a")
    clock.advance(10)
    registry.set_master_state(a, True)
    b = registry.find_master_id("host:/srv/b")
    clock.advance(10)
    registry.set_master_state(b, True)
    registry.set_master_state(a, True)
    clock.advance(700)
    registry.set_master_state(b, True)
    registry.expire_masters()
    insert_raw_master(registry, 40, "old:/srv/c", active=True, last_active=T0 - 50)
    clock.advance(5)
    registry.adopt()
    registry.find_master_id("host:/srv/d")
    clock.advance(5)
    registry.set_all_masters_active_long_time_ago()
    clock.advance(5)
    registry.set_master_state(b, True)
    registry.set_master_state(40, False)
    return list(registry.events())


def second(seconds: int, micro: int = 0) -> int:
    """Microseconds since the epoch of ``T0 + seconds`` and ``micro`` microseconds."""
    return (T0 + seconds) * 1_000_000 + micro

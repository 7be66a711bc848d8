"""A long history, written fast: ``masters`` masters checking in every ``interval`` seconds.

The events are encoded by the codec and loaded by :func:`eventstore.load_events`, which
stores them as an append would (the same texts, ids and chain) with the driver's bulk
path; the view is built by ``Registry.rebuild()``. The result passes ``verify``: the same
chain, the same view.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import attrs
import sqlalchemy as sa

import eventstore
from eventstore import (
    CODEC,
    EVENTS_TABLE,
    BulkEvent,
    MasterActivated,
    MasterCheckedIn,
    MasterRegistered,
    canonical_json,
    load_events,
)
from mastertrail import Registry

#: The first event of every generated history: 2025-01-01T00:00:00Z.
START = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())
#: Bump when the generated rows change, so cached histories are made again.
GENERATOR_VERSION = 3


def master_name(number: int) -> str:
    """The name of generated master ``number`` (1-based), as ``BuildMaster`` makes one."""
    return f"bench-master-{number:02d}.example.org:/srv/buildbot/master"


def host_name(number: int) -> str:
    return f"bench-master-{number:02d}.example.org"


@attrs.frozen
class HistoryPlan:
    """``events`` events of ``masters`` masters: each registers, starts, then checks in
    every ``interval`` seconds, the masters a second apart."""

    events: int
    masters: int = 10
    interval: int = 60
    start: int = START

    def moment(self, fraction: float) -> int:
        """Epoch seconds ``fraction`` of the way through the history."""
        rounds = self.events // self.masters
        return self.start + int(rounds * self.interval * fraction)


def _metadata(plan: HistoryPlan) -> dict[str, list[str]]:
    """The metadata texts of each master (by number - 1), per reason."""
    return {
        reason: [
            canonical_json(
                {"actor": master_name(k), "host": host_name(k), "pid": 4000 + k, "reason": reason}
            )
            for k in range(1, plan.masters + 1)
        ]
        for reason in ("registered", "started", "heartbeat")
    }


def rows(plan: HistoryPlan) -> Iterator[BulkEvent]:
    """Every event of ``plan`` in position order."""
    metadata = _metadata(plan)
    checked_in, cls_version = MasterCheckedIn.type_name, MasterCheckedIn.schema_version
    # A check-in recorded within the second it is active at stores no data of its own.
    assert CODEC.encode(MasterCheckedIn(last_active=7), recorded_at=7_250_000) == (
        checked_in,
        cls_version,
        {},
    )
    position = 0
    while position < plan.events:
        round_ = position // plan.masters
        k = position % plan.masters + 1
        seconds = plan.start + round_ * plan.interval + k
        if round_ == 0:
            kind, schema, data = CODEC.encode(
                MasterRegistered(name=master_name(k), last_active=seconds)
            )
            text, meta = canonical_json(data), metadata["registered"][k - 1]
        elif round_ == 1:
            kind, schema, data = CODEC.encode(MasterActivated(last_active=seconds))
            text, meta = canonical_json(data), metadata["started"][k - 1]
        else:
            kind, schema = checked_in, cls_version
            text, meta = "{}", metadata["heartbeat"][k - 1]
        position += 1
        yield BulkEvent(k, round_ + 1, kind, schema, text, meta, seconds * 1_000_000 + 250_000)


def write(url: str, plan: HistoryPlan, *, batch: int = 50_000) -> None:
    """Create the log's schema in the database at ``url`` (which may already hold
    Buildbot's), load the history and rebuild the view."""
    registry = Registry(url, actor="bench")
    registry.upgrade()
    engine = registry.engine
    load_events(engine, rows(plan), batch=batch)
    registry.rebuild()
    eventstore.settle(engine)
    registry.close()


def event_count(url: str) -> int:
    """The head position of the log at ``url`` (0 when it has none)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(EVENTS_TABLE):
                return 0
            return eventstore.head_position(conn)
    finally:
        engine.dispose()


def schema_fingerprint(workdir: os.PathLike[str]) -> str:
    """A short digest of the log's schema as this mastertrail creates it on SQLite, so a
    cached history made under another schema is not reused."""
    import hashlib

    from bench.databases import remove_sqlite

    path = os.path.join(workdir, "fingerprint.sqlite")
    remove_sqlite(path)
    engine = eventstore.create_engine(f"sqlite:///{path}")
    try:
        eventstore.upgrade(engine)
        with engine.connect() as conn:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
            ).scalars()
            text = "\n".join(ddl)
    finally:
        engine.dispose()
        remove_sqlite(path)
    return hashlib.sha256(f"{GENERATOR_VERSION}\n{text}".encode()).hexdigest()[:12]

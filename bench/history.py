"""A long history, written fast: ``masters`` masters checking in every ``interval`` seconds.

The rows are built in position order exactly as :func:`eventstore.store.append` builds
them (canonical JSON, the hash chained with :func:`eventstore.chain.link`), written with
the driver's bulk path (``executemany`` on SQLite and MariaDB, ``COPY`` on PostgreSQL),
the head row is moved to the last event, and the view is built by ``Registry.rebuild()``.
The result passes ``verify``: the same chain, the same view.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import sqlalchemy as sa

import eventstore
from eventstore import fused
from eventstore.chain import GENESIS, link
from eventstore.events import CODEC, MasterActivated, MasterCheckedIn, MasterRegistered
from eventstore.ids import derived_event_id
from eventstore.recorded import canonical_json
from eventstore.schema import HEAD_ROW_ID, events, head
from eventstore.texts import text_ids
from mastertrail import Registry

#: The first event of every generated history: 2025-01-01T00:00:00Z.
START = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())
#: Bump when the generated rows change, so cached histories are made again.
GENERATOR_VERSION = 3

COLUMNS = (
    "position",
    "event_id",
    "master_id",
    "version",
    "type_id",
    "schema_version",
    "data",
    "metadata_id",
    "recorded_at",
    "hash",
)

#: An event as the chain sees it: its type name and metadata as texts, its id as stored
#: (None: derived, see eventstore.ids).
Row = tuple[int, uuid.UUID | None, int, int, str, int, str, str, int, bytes]
#: An event as the log stores it: its type name and metadata as the ids of their texts.
Stored = tuple[int, uuid.UUID | None, int, int, int, int, str, int, int, bytes]


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


def texts(plan: HistoryPlan) -> list[str]:
    """Every type name and metadata text the events of ``plan`` use."""
    types = [cls.type_name for cls in (MasterRegistered, MasterActivated, MasterCheckedIn)]
    return types + [text for per_master in _metadata(plan).values() for text in per_master]


def rows(plan: HistoryPlan) -> Iterator[Row]:
    """Every event of ``plan`` in position order, hashed into the chain."""
    metadata = _metadata(plan)
    checked_in, cls_version = MasterCheckedIn.type_name, MasterCheckedIn.schema_version
    # A check-in recorded within the second it is active at stores no data of its own.
    assert CODEC.encode(MasterCheckedIn(last_active=7), recorded_at=7_250_000) == (
        checked_in,
        cls_version,
        {},
    )
    previous, position = GENESIS, 0
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
        recorded_at = seconds * 1_000_000 + 250_000
        event_id = derived_event_id(k, round_ + 1, recorded_at)
        assert event_id is not None
        previous = link(
            previous,
            position=position,
            event_id=event_id,
            master_id=k,
            version=round_ + 1,
            type=kind,
            schema_version=schema,
            data=text,
            metadata=meta,
            recorded_at=recorded_at,
        )
        # The id is derived, so the log stores none.
        yield (position, None, k, round_ + 1, kind, schema, text, meta, recorded_at, previous)


def write(url: str, plan: HistoryPlan, *, batch: int = 50_000) -> None:
    """Create the log's schema in the database at ``url`` (which may already hold
    Buildbot's), write the history, move the head and rebuild the view."""
    registry = Registry(url, actor="bench")
    registry.upgrade()
    engine = registry.engine
    last: Stored | None = None
    with engine.begin() as conn:
        ids = text_ids(conn, texts(plan))
    stored = (
        (p, event_id, k, v, ids[kind], schema, data, ids[meta], at, digest)
        for p, event_id, k, v, kind, schema, data, meta, at, digest in rows(plan)
    )
    raw = engine.raw_connection()
    try:
        writer = _WRITERS[engine.dialect.name]
        last = writer(raw, stored, batch)
        raw.commit()
    finally:
        raw.close()
    assert last is not None
    with engine.begin() as conn:
        conn.execute(
            head.update()
            .where(head.c.id == HEAD_ROW_ID)
            .values(position=last[0], hash=last[-1], last_master_id=plan.masters)
        )
    registry.rebuild()
    if engine.dialect.name == "sqlite":
        import sqlite3

        with contextlib.closing(sqlite3.connect(engine.url.database or "")) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {events.name}")
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ANALYZE TABLE {events.name}").all()
    registry.close()


def _chunks(source: Iterator[Stored], size: int) -> Iterator[list[Stored]]:
    chunk: list[Stored] = []
    for row in source:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_sqlite(raw: Any, source: Iterator[Stored], batch: int) -> Stored | None:
    cursor = raw.cursor()
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB while the indexes grow
    insert = f"INSERT INTO {events.name} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 10)})"
    last = None
    for chunk in _chunks(source, batch):
        cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(insert, [(*r[:1], fused.id_bytes(r[1]), *r[2:]) for r in chunk])
        cursor.execute("COMMIT")
        last = chunk[-1]
    cursor.close()
    return last


def _write_postgresql(raw: Any, source: Iterator[Stored], batch: int) -> Stored | None:
    conn = raw.driver_connection
    last = None
    with conn.cursor() as cursor:
        for chunk in _chunks(source, batch):
            with cursor.copy(f"COPY {events.name} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in chunk:
                    copy.write_row(row)
            conn.commit()
            last = chunk[-1]
    return last


def _write_mysql(raw: Any, source: Iterator[Stored], batch: int) -> Stored | None:
    insert = f"INSERT INTO {events.name} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 10)})"
    last = None
    cursor = raw.cursor()
    for chunk in _chunks(source, batch):
        cursor.executemany(insert, [(*r[:1], fused.id_bytes(r[1]), *r[2:]) for r in chunk])
        raw.commit()
        last = chunk[-1]
    cursor.close()
    return last


_WRITERS = {"sqlite": _write_sqlite, "postgresql": _write_postgresql, "mysql": _write_mysql}


def event_count(url: str) -> int:
    """The head position of the log at ``url`` (0 when it has none)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(head.name):
                return 0
            return int(conn.execute(sa.select(head.c.position)).scalar() or 0)
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

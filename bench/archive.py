"""The archive section: a long log with a horizon, archived beside a heartbeating master,
then read through its segments.

On the same events, in one run: ``rebuild`` (the rate the others are measured against),
``masters_as_of`` in the part about to be archived and in the hot part; then ``archive``
while another process heartbeats (its heartbeats timed against the same process's
heartbeats just before); then the sizes (the hot table with its indexes, the segment files
per archived event), ``masters_as_of`` inside the archive and in the hot log again, and
``verify`` of the whole log, hot and archived.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.databases import Database
from bench.history import HistoryPlan
from bench.replay import storage
from bench.stats import alternate, summary
from mastertrail import Registry

#: The horizon as a part of the log: 30 days of a year (a smaller log keeps the proportion).
HORIZON = 30 / 365
#: The name of the master that heartbeats while the log is archived.
HEARTBEATER = "bench-archive-heartbeat.example.org:/srv/buildbot/master"


def run(
    database: Database,
    plan: HistoryPlan,
    workdir: Path,
    *,
    iterations: int,
    warmup: int,
) -> dict[str, Any]:
    """The whole section on the long log of ``database`` (which it archives: run it last)."""
    to = workdir / "archive-segments"
    to.mkdir(parents=True, exist_ok=True)
    registry = Registry(database.url, actor="bench-archive")
    before = dt.datetime.fromtimestamp(plan.moment(1 - HORIZON), tz=dt.UTC)
    moments = {
        "archived": dt.datetime.fromtimestamp(plan.moment(0.25), tz=dt.UTC),
        "hot": dt.datetime.fromtimestamp(plan.moment(1 - HORIZON / 2), tz=dt.UTC),
    }
    try:
        start = time.perf_counter()
        replayed = registry.rebuild()
        rebuild_rate = replayed / (time.perf_counter() - start)
        expected = {key: registry.masters_as_of(when) for key, when in moments.items()}
        as_of_before = _as_of(registry, moments, iterations, warmup)
        quiet = _heartbeats(database.url)
        hot_before = _hot_bytes(database)
        with _Heartbeating(database.url) as beating:
            start = time.perf_counter()
            report = registry.archive(before=before, to=to)
            archive_seconds = time.perf_counter() - start
        busy = beating.latencies
        hot_after = _hot_bytes(database)
        segment_bytes = sum(path.stat().st_size for path in to.iterdir() if path.is_file())
        found = {key: registry.masters_as_of(when) for key, when in moments.items()}
        assert found == expected, "masters_as_of answers otherwise after archiving"
        as_of_after = _as_of(registry, moments, iterations, warmup)
        start = time.perf_counter()
        verified = registry.verify()
        verify_seconds = time.perf_counter() - start
        assert verified.ok, verified.problems
    finally:
        registry.close()
    archived = int(report.events)
    return {
        "backend": database.backend,
        "events": plan.events,
        "masters": plan.masters,
        "horizon_fraction": HORIZON,
        "archived_events": archived,
        "segments": int(report.segments),
        "rebuild_events_per_s": rebuild_rate,
        "archive_events_per_s": archived / archive_seconds,
        "archive_seconds": archive_seconds,
        "archive_ratio": archived / archive_seconds / rebuild_rate,
        "heartbeat_quiet": summary(quiet),
        "heartbeat_archiving": summary(busy),
        "heartbeat_p99_ratio": summary(busy)["p99_ms"] / summary(quiet)["p99_ms"],
        "hot_bytes_before": hot_before,
        "hot_bytes_after": hot_after,
        "segment_bytes": segment_bytes,
        "segment_bytes_per_event": segment_bytes / archived,
        "as_of_before": as_of_before,
        "as_of_after": as_of_after,
        "as_of_hot_ratio": as_of_after["hot"]["median_ms"] / as_of_before["hot"]["median_ms"],
        "verify_events": verified.events_checked,
        "verify_events_per_s": verified.events_checked / verify_seconds,
        "verify_ratio": verified.events_checked / verify_seconds / rebuild_rate,
    }


def _as_of(
    registry: Registry, moments: dict[str, dt.datetime], iterations: int, warmup: int
) -> dict[str, dict[str, float]]:
    samples = alternate(
        {key: functools.partial(registry.masters_as_of, when) for key, when in moments.items()},
        iterations,
        warmup,
        budget=30.0,
    )
    return {key: summary(values) for key, values in samples.items()}


def _hot_bytes(database: Database) -> int:
    """The bytes of the long log's rows in the log's table with its indexes (not its texts,
    the same few rows whatever the length of the log): the table's bytes per row, times
    the rows of the long log, leaving out those :data:`HEARTBEATER` appended while the
    section ran (a few seconds of one master's heartbeats, back to back, are not part of a
    year of ten masters)."""
    found = storage(database)
    parts = found["parts_bytes_per_event"]
    per_row = sum(size for name, size in parts.items() if "texts" not in name)
    return round(per_row * (found["events"] - _heartbeater_rows(database.url)))


def _heartbeater_rows(url: str) -> int:
    """The rows :data:`HEARTBEATER` appended to the log's table."""
    registry = Registry(url, actor="bench-archive")
    try:
        ids = [master.id for master in registry.get_masters() if master.name == HEARTBEATER]
    finally:
        registry.close()
    if not ids:
        return 0
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            count = sa.text("SELECT count(*) FROM mastertrail_events WHERE master_id = :id")
            return int(conn.execute(count, {"id": ids[0]}).scalar_one())
    finally:
        engine.dispose()


#: Heartbeats timed without archiving, and the most timed while archiving.
QUIET_BEATS = 300
#: The pause between two heartbeats: the process leaves the machine's other core alone
#: part of the time, as a master checking in every minute leaves it nearly always.
PAUSE = 0.005


def _heartbeats(url: str) -> list[float]:
    """The latencies of :data:`QUIET_BEATS` heartbeats of another process, alone."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=heartbeat, args=(url, child, QUIET_BEATS), daemon=True
    )
    process.start()
    parent.recv()  # ready
    parent.send("go")
    latencies: list[float] = parent.recv()
    process.join()
    return latencies


class _Heartbeating:
    """Another process heartbeating, back to back with a short pause, while the block runs."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=heartbeat, args=(url, child, None), daemon=True)
        self.latencies: list[float] = []

    def __enter__(self) -> _Heartbeating:
        self._process.start()
        self._pipe.recv()  # ready: connected, the master registered
        self._pipe.send("go")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pipe.send("stop")
        self.latencies = self._pipe.recv()
        self._process.join()


def heartbeat(url: str, pipe: Connection, count: int | None) -> None:
    """In a process of its own: heartbeat the master :data:`HEARTBEATER` ``count`` times
    (or until told to stop) and send back the seconds each took."""
    registry = Registry(url, actor=HEARTBEATER)
    try:
        master_id = registry.find_master_id(HEARTBEATER)
        registry.set_master_state(master_id, True)
        pipe.send("ready")
        pipe.recv()
        latencies: list[float] = []
        while count is None or len(latencies) < count:
            start = time.perf_counter()
            registry.set_master_state(master_id, True)
            latencies.append(time.perf_counter() - start)
            if count is None and pipe.poll(PAUSE):
                pipe.recv()
                break
            if count is not None:
                time.sleep(PAUSE)
        pipe.send(latencies)
    finally:
        registry.close()


def hot_events(url: str) -> int:
    """The rows left in the log's table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM mastertrail_events").scalar_one())
    finally:
        engine.dispose()


__all__ = ["HORIZON", "heartbeat", "hot_events", "run"]

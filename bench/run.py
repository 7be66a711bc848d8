"""One benchmark run: every section on every backend, in one process and one reactor."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from bench import archive, connector, core, fleet, floor, history, independent, replay, storage
from bench.config import Config
from bench.databases import Backend, Database, remove_sqlite
from bench.harness import close_connector, open_connector
from bench.history import HistoryPlan

SECTIONS = (
    "connector",
    "long_history",
    "floor",
    "core",
    "rebuild",
    "as_of",
    "storage",
    "independent",
    "fleet",
    "archive",
)
#: Sections that need the long log (made once per backend for all of them).
LONG_LOG_SECTIONS = ("long_history", "rebuild", "as_of", "storage", "archive")
#: Backends the eventsourcing library has persistence modules for (of ours).
LIBRARY_BACKENDS = ("sqlite", "postgresql")


class Progress:
    """One line per step on stderr, with the time since the run began."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, backend: str, message: str) -> None:
        elapsed = time.monotonic() - self.start
        print(f"[{elapsed:7.1f}s] {backend}: {message}", file=sys.stderr, flush=True)


async def run(
    reactor: Any,
    backends: list[Backend],
    config: Config,
    out: Path,
    *,
    fresh: bool,
    checkpoint: Callable[[dict[str, Any]], None],
    only: tuple[str, ...] = SECTIONS,
) -> dict[str, Any]:
    """Every section of ``only`` on every backend; the results by section, also handed to
    ``checkpoint`` after each backend (so an interrupted run leaves what it measured)."""
    results: dict[str, Any] = {section: [] for section in SECTIONS}
    progress = Progress()
    for backend in backends:
        try:
            await run_backend(
                reactor, backend, config, out, results, progress, fresh=fresh, only=only
            )
        finally:
            backend.drop_all()
        checkpoint(results)
    return results


async def run_backend(
    reactor: Any,
    backend: Backend,
    config: Config,
    out: Path,
    results: dict[str, Any],
    progress: Progress,
    *,
    fresh: bool,
    only: tuple[str, ...] = SECTIONS,
) -> None:
    name = backend.name
    if "connector" in only:
        progress(name, f"connector, {', '.join(map(str, config.masters))} masters")
        results["connector"] += await connector.no_history(
            reactor, backend, config.masters, config.iterations, config.warmup
        )
    if "independent" in only:
        progress(name, "independent harness, quiet and beside a background writer")
        results["independent"] += await independent.independent(
            reactor, backend, independent.plan_for(config.quick)
        )
    if "fleet" in only:
        plan = fleet.plan_for(config.quick)
        progress(name, f"fleet: {plan.masters} masters at once, each a process of its own")
        results["fleet"] += await fleet.fleet(reactor, backend, plan)
    if any(section in only for section in LONG_LOG_SECTIONS):
        await long_log_sections(reactor, backend, config, out, results, progress, fresh, only)
    if "floor" in only:
        progress(name, "heartbeat statements through the bare driver")
        results["floor"].append(
            floor.heartbeat_floor(backend, config.core_iterations, config.warmup)
        )
    if "core" in only and name in LIBRARY_BACKENDS:
        progress(name, "core heartbeat vs eventsourcing")
        results["core"].append(core.heartbeat(backend, config.core_iterations, config.warmup))


async def long_log_sections(
    reactor: Any,
    backend: Backend,
    config: Config,
    out: Path,
    results: dict[str, Any],
    progress: Progress,
    fresh: bool,
    only: tuple[str, ...],
) -> None:
    """The sections on the long log (and the short one), which is made once for them; the
    archive section last, as it archives the long log."""
    name = backend.name
    plan = HistoryPlan(config.history(name))
    short_plan = attrs.evolve(plan, events=max(plan.events // config.short_divisor, 100))
    progress(name, f"long log of {plan.events:,} events")
    long = await long_log(reactor, backend, plan, out, fresh=fresh, progress=progress)
    if "storage" in only:
        results["storage"].append(storage.storage(long))
    if "long_history" in only:
        progress(name, "connector with the long log")
        results["long_history"] += await connector.long_history(
            reactor, backend, long, plan.events, plan.masters, config.iterations, config.warmup
        )
    if "as_of" in only:
        progress(name, "masters_as_of")
        short = backend.new_database("short")
        history.write(short.url, short_plan)
        results["as_of"].append(
            replay.as_of(long, plan, short, short_plan, config.as_of_iterations, config.warmup)
        )
        backend.drop(short)
    if "rebuild" in only:
        progress(name, "rebuild and raw scan")
        results["rebuild"].append(replay.rebuild_vs_scan(long, config.rebuild_repeats))
    if "archive" in only:
        progress(name, f"archive with a horizon of {archive.HORIZON:.1%} of the log")
        results["archive"].append(
            archive.run(
                long,
                plan,
                backend.workdir,
                iterations=config.as_of_iterations,
                warmup=config.warmup,
            )
        )
    backend.drop(long)


async def long_log(
    reactor: Any,
    backend: Backend,
    plan: HistoryPlan,
    out: Path,
    *,
    fresh: bool,
    progress: Progress,
) -> Database:
    """A Buildbot database holding the long log. On SQLite it is a copy of a cached file,
    made once (the benchmark's heartbeats then write to the copy, never to the cache)."""
    if backend.name != "sqlite":
        database = backend.new_database("history")
        await buildbot_schema(reactor, database, backend.workdir / "schema")
        history.write(database.url, plan)
        return database
    fingerprint = history.schema_fingerprint(out)
    cache = out / f"history-{plan.events}-{fingerprint}.sqlite"
    if fresh or not cache.exists():
        for stale in out.glob(f"history-{plan.events}-*.sqlite"):
            remove_sqlite(stale)
        partial_path = out / "history-partial.sqlite"
        remove_sqlite(partial_path)
        partial = backend.sqlite_database(partial_path)
        progress("sqlite", f"writing {cache.name} (cached for later runs)")
        await buildbot_schema(reactor, partial, backend.workdir / "schema")
        history.write(partial.url, plan)
        os.replace(partial_path, cache)
    database = backend.new_database("history")
    assert database.path is not None
    shutil.copyfile(cache, database.path)
    return database


async def buildbot_schema(reactor: Any, database: Database, basedir: Path) -> None:
    """Create Buildbot's schema in ``database`` with Buildbot's own upgrade."""
    db = await open_connector(
        reactor, database.buildbot_url, basedir, mastertrail_component=False, name="bench:schema"
    )
    await close_connector(db)


def stamp() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()

"""Sections 1 and 2: Buildbot's masters operations through mastertrail's component and
through Buildbot 4.3's own, each in its own real Buildbot DB connector on its own
database, alternating call by call on the same reactor."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.databases import Backend, Database
from bench.harness import close_connector, open_connector
from bench.history import master_name
from bench.stats import alternate_async, comparison

OURS, ANCHOR = "mastertrail", "buildbot"
#: The heartbeat of a master that shares its database with another master writing between
#: its heartbeats, as several masters of one Buildbot do.
SHARED = "heartbeat, another master writing"
OPERATIONS = ("heartbeat", "findMasterId", "getMaster", "getMasters", SHARED)


class Pair:
    """The two contenders: mastertrail's component and Buildbot's, on their own databases.
    For the shared heartbeat each side has another master too: a DB connector of its own
    (its own thread pool and connections, as another buildmaster process has) with the
    same component, on the same database."""

    def __init__(self, reactor: Any, ours: Database, anchor: Database, workdir: Path) -> None:
        self.reactor, self.workdir = reactor, workdir
        self.databases = {OURS: ours, ANCHOR: anchor}
        self.dbs: dict[str, Any] = {}
        self.ids: dict[str, list[int]] = {OURS: [], ANCHOR: []}

    @contextlib.asynccontextmanager
    async def _connectors(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """A connector on each side for the master ``name``, all closed at the end (also
        those opened before one failed to open)."""
        async with contextlib.AsyncExitStack() as stack:
            opened = {}
            for side in (OURS, ANCHOR):
                db = await open_connector(
                    self.reactor,
                    self.databases[side].buildbot_url,
                    self.workdir / f"{side}-{name.split('.')[0]}",
                    mastertrail_component=side == OURS,
                    name=name,
                )
                stack.push_async_callback(close_connector, db)
                opened[side] = db
            yield opened

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Pair]:
        """The pair with the two timed masters' connectors open."""
        async with self._connectors(master_name(1)) as dbs:
            self.dbs = dbs
            yield self

    @contextlib.asynccontextmanager
    async def others(self) -> AsyncIterator[dict[str, Callable[[], Awaitable[object]]]]:
        """Each side's other master checking in, through a connector of its own that is
        closed afterwards, so that nothing of it stays open on the database for the reads
        timed after."""
        async with self._connectors(master_name(2)) as opened:
            yield {
                side: _call(db.masters, "heartbeat", self.ids[side][1], "")
                for side, db in opened.items()
            }

    async def grow(self, masters: int) -> None:
        """Register masters until each side has ``masters``; the first one is active."""
        for side, db in self.dbs.items():
            ids = self.ids[side]
            while len(ids) < masters:
                ids.append(await db.masters.findMasterId(master_name(len(ids) + 1)))
                if len(ids) == 1:
                    await db.masters.setMasterState(ids[0], True)

    def calls(self, operation: str) -> dict[str, Callable[[], Awaitable[object]]]:
        """The call each side makes for ``operation``, on its first master."""
        return {
            side: _call(db.masters, operation, self.ids[side][0], master_name(1))
            for side, db in self.dbs.items()
        }

    async def round_trips(
        self,
        operation: str,
        before: Mapping[str, Callable[[], Awaitable[object]]],
        calls: int = 5,
    ) -> dict[str, dict[str, float]]:
        """Statements, commits and new connections per call of ``operation``, per side (the
        other master's writes, ``before`` each call, not counted)."""
        counts: dict[str, dict[str, float]] = {}
        for side, call in self.calls(operation).items():
            db = self.dbs[side]
            # Buildbot's engine, and the one mastertrail's component keeps a connection of.
            kept = getattr(db.masters, "calls_engine", None)
            engines = {db.pool.engine} | ({kept()} if kept else set())
            tally = {"statements": 0.0, "commits": 0.0, "connects": 0.0}
            listeners: list[tuple[Any, str, Callable[..., None]]] = [
                listener
                for engine in engines
                for listener in (
                    (engine, "before_cursor_execute", _bump(tally, "statements")),
                    (engine, "commit", _bump(tally, "commits")),
                    (engine.pool, "connect", _bump(tally, "connects")),
                )
            ]
            for _ in range(calls):
                if side in before:
                    await before[side]()
                for target, name, listener in listeners:
                    sa.event.listen(target, name, listener)
                try:
                    await call()
                finally:
                    for target, name, listener in listeners:
                        sa.event.remove(target, name, listener)
            counts[side] = {key: value / calls for key, value in tally.items()}
        return counts

    async def compare(
        self, operation: str, iterations: int, warmup: int, **labels: object
    ) -> dict[str, Any]:
        async with contextlib.AsyncExitStack() as stack:
            before = await stack.enter_async_context(self.others()) if operation == SHARED else {}
            calls = self.calls(operation)
            samples = await alternate_async(calls, iterations, warmup, before=before or None)
            result = {"operation": operation, **labels, **comparison(samples, OURS, ANCHOR)}
            result["round_trips"] = await self.round_trips(operation, before)
        return result

    async def compare_all(
        self, masters: int, iterations: int, warmup: int, **labels: object
    ) -> list[dict[str, Any]]:
        """Register masters until each side has ``masters``, then compare every operation."""
        await self.grow(masters)
        return [
            await self.compare(operation, iterations, warmup, masters=masters, **labels)
            for operation in OPERATIONS
        ]


def _call(
    masters: Any, operation: str, master_id: int, name: str
) -> Callable[[], Awaitable[object]]:
    if operation in ("heartbeat", SHARED):
        return functools.partial(masters.setMasterState, master_id, True)
    if operation == "findMasterId":
        return functools.partial(masters.findMasterId, name)
    if operation == "getMaster":
        return functools.partial(masters.getMaster, master_id)
    if operation == "getMasters":
        return functools.partial(masters.getMasters)
    raise ValueError(f"unknown operation {operation!r}")


def _bump(tally: dict[str, float], key: str) -> Callable[..., None]:
    def listener(*_args: Any, **_kwargs: Any) -> None:
        tally[key] += 1

    return listener


async def no_history(
    reactor: Any, backend: Backend, sizes: tuple[int, ...], iterations: int, warmup: int
) -> list[dict[str, Any]]:
    """Section 1: each operation at each number of masters, on two fresh databases."""
    ours, anchor = backend.new_database("connector"), backend.new_database("anchor")
    results = []
    try:
        async with Pair(reactor, ours, anchor, backend.workdir / "connector").opened() as pair:
            for masters in sizes:
                results += await pair.compare_all(
                    masters, iterations, warmup, backend=backend.name, history_events=0
                )
    finally:
        backend.drop(ours)
        backend.drop(anchor)
    return results


async def long_history(
    reactor: Any,
    backend: Backend,
    history: Database,
    events: int,
    masters: int,
    iterations: int,
    warmup: int,
) -> list[dict[str, Any]]:
    """Section 2: the same operations on a database holding a long log, against Buildbot's
    component on a database with the same masters and no history."""
    anchor = backend.new_database("anchor_long")
    results = []
    try:
        async with Pair(reactor, history, anchor, backend.workdir / "long").opened() as pair:
            results += await pair.compare_all(
                masters, iterations, warmup, backend=backend.name, history_events=events
            )
    finally:
        backend.drop(anchor)
    return results

"""Section: the independent harness. The connector's operations measured as a new user
would measure them, in rounds rather than call by call, quiet and beside a background
writer on the same database server.

Each component runs in a real Buildbot ``DBConnector`` with its thread pool, on a fresh
database of its own made by Buildbot's upgrade (mastertrail's tables are made by its
component's first call), its reactor's clock moving a minute per reading. A round times
``calls`` calls of one contender, then ``calls`` of the other; the next round starts with
the other one. No call is untimed: the first round meets the pools cold, as a new user's
first round does. Each round gives a median per contender; the result is the median of
the round medians, and the spread is the range of the rounds' own ratios.

The background writer is another process, writing small transactions at a fixed rate into
a table of its own in both contenders' databases in turn: on PostgreSQL and MariaDB the
same server work beside either contender; on SQLite the same lock to share on each file.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import attrs
import sqlalchemy as sa

from bench.databases import Backend, Database
from bench.harness import close_connector, open_connector
from bench.history import master_name

OURS, ANCHOR = "mastertrail", "buildbot"
SIDES = (OURS, ANCHOR)
#: (operation, masters): the cases of the issue, in the order they are measured.
CASES = (
    ("heartbeat", 10),
    ("findMasterId", 10),
    ("getMaster", 10),
    ("getMasters", 10),
    ("getMasters", 100),
    ("getMasters", 1000),
)
QUIET, LOADED = "quiet", "background writer"


@attrs.frozen
class Plan:
    """How much the section does."""

    rounds: int  # rounds per case, alternating which contender goes first
    calls: int  # timed calls per contender and round
    background_rate: float  # background transactions per second, over both databases
    background_rows: int  # rows inserted by each background transaction


FULL = Plan(rounds=6, calls=60, background_rate=200.0, background_rows=5)
QUICK = Plan(rounds=4, calls=8, background_rate=50.0, background_rows=5)


def round_ratio_summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """The median of each contender's round medians, their ratio, and the spread of the
    rounds' own ratios (ours over the anchor's median in the same round)."""
    ours = statistics.median(r[OURS] for r in rounds)
    anchor = statistics.median(r[ANCHOR] for r in rounds)
    ratios = [r[OURS] / r[ANCHOR] for r in rounds]
    return {
        OURS: {"median_ms": ours * 1e3},
        ANCHOR: {"median_ms": anchor * 1e3},
        "ratio": ours / anchor,
        "round_ratios": ratios,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "round_medians_ms": [{side: r[side] * 1e3 for side in SIDES} for r in rounds],
    }


class Contender:
    """One component in its own DB connector on its own database; ``name`` is the master
    its ``findMasterId`` looks up."""

    def __init__(self, side: str, database: Database, db: Any, name: str = master_name(1)) -> None:
        self.side, self.database, self.db, self.name = side, database, db, name
        self.ids: list[int] = []

    async def grow(self, masters: int) -> None:
        """Register masters until there are ``masters``; the first is active."""
        while len(self.ids) < masters:
            self.ids.append(await self.db.masters.findMasterId(master_name(len(self.ids) + 1)))
            if len(self.ids) == 1:
                await self.db.masters.setMasterState(self.ids[0], True)

    def call(self, operation: str) -> Callable[[], Awaitable[object]]:
        masters = self.db.masters
        if operation == "heartbeat":
            return functools.partial(masters.setMasterState, self.ids[0], True)
        if operation == "findMasterId":
            return functools.partial(masters.findMasterId, self.name)
        if operation == "getMaster":
            return functools.partial(masters.getMaster, self.ids[0])
        if operation == "getMasters":
            return functools.partial(masters.getMasters)
        raise ValueError(f"unknown operation {operation!r}")

    async def meets(self, operation: str, calls: int) -> dict[str, int]:
        """Untimed: the threads, the pooled connections and the new connections that
        ``calls`` calls of ``operation`` meet (pool events, listened to only here)."""
        pool = self.db.pool.engine.pool
        threads: set[int] = set()
        connections: set[int] = set()
        connects = [0]

        def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            threads.add(threading.get_ident())
            connections.add(id(dbapi_connection))

        def connect(_dbapi_connection: Any, _record: Any) -> None:
            connects[0] += 1

        sa.event.listen(pool, "checkout", checkout)
        sa.event.listen(pool, "connect", connect)
        try:
            call = self.call(operation)
            for _ in range(calls):
                await call()
        finally:
            sa.event.remove(pool, "checkout", checkout)
            sa.event.remove(pool, "connect", connect)
        return {"threads": len(threads), "connections": len(connections), "connects": connects[0]}


@contextlib.asynccontextmanager
async def contenders(reactor: Any, backend: Backend, label: str) -> AsyncIterator[list[Contender]]:
    """Both contenders, each on a fresh database made by Buildbot's upgrade, dropped at the
    end."""
    async with contextlib.AsyncExitStack() as stack:
        opened = []
        for side in SIDES:
            database = backend.new_database(f"{label}_{side}")
            stack.callback(backend.drop, database)
            db = await open_connector(
                reactor,
                database.buildbot_url,
                backend.workdir / label / side,
                mastertrail_component=side == OURS,
                name=master_name(1),
            )
            stack.push_async_callback(close_connector, db)
            opened.append(Contender(side, database, db))
        yield opened


async def rounds(
    contenders: list[Contender], operation: str, plan: Plan, first: int
) -> list[dict[str, float]]:
    """``plan.rounds`` rounds; round ``i`` starts with contender ``(first + i) % 2``. Each
    round's median seconds per contender."""
    clock = time.perf_counter
    found = []
    for number in range(plan.rounds):
        start = (first + number) % 2
        order = [contenders[start], contenders[1 - start]]
        medians = {}
        for contender in order:
            call = contender.call(operation)
            samples = []
            for _ in range(plan.calls):
                began = clock()
                await call()
                samples.append(clock() - began)
            medians[contender.side] = statistics.median(samples)
        found.append(medians)
    return found


async def measure(
    reactor: Any, backend: Backend, plan: Plan, *, background: bool
) -> list[dict[str, Any]]:
    """Every case of :data:`CASES` on a fresh pair of databases, quiet or beside the
    background writer."""
    load = LOADED if background else QUIET
    label = "indep_bg" if background else "indep"
    results = []
    async with contenders(reactor, backend, label) as pair:
        writer = (
            BackgroundWriter([c.database.url for c in pair], plan)
            if background
            else contextlib.nullcontext()
        )
        with writer as running:
            for number, (operation, masters) in enumerate(CASES):
                for contender in pair:
                    await contender.grow(masters)
                started = time.monotonic()
                before = running.transactions() if running is not None else 0
                found = await rounds(pair, operation, plan, first=number % 2)
                elapsed = time.monotonic() - started
                item: dict[str, Any] = {
                    "backend": backend.name,
                    "operation": operation,
                    "masters": masters,
                    "load": load,
                    "rounds": plan.rounds,
                    "calls": plan.calls,
                    **round_ratio_summary(found),
                }
                if running is not None:
                    item["background_tx_per_s"] = (running.transactions() - before) / elapsed
                results.append(item)
            meets = {c.side: await c.meets("heartbeat", plan.calls) for c in pair}
        for item in results:
            item["heartbeat_meets"] = meets
    return results


async def independent(reactor: Any, backend: Backend, plan: Plan) -> list[dict[str, Any]]:
    """The section on one backend: quiet, then beside the background writer."""
    return [
        *await measure(reactor, backend, plan, background=False),
        *await measure(reactor, backend, plan, background=True),
    ]


# -- the background writer ---------------------------------------------------------------------

BACKGROUND_TABLE = "bench_background"


class BackgroundWriter:
    """A process writing at ``plan.background_rate`` transactions per second into a table
    of its own in each database of ``urls`` in turn, until the context ends."""

    def __init__(self, urls: list[str], plan: Plan) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._ready = context.Event()
        self._count = context.Value("q", 0)
        self._process = context.Process(
            target=_write_in_background,
            args=(urls, plan.background_rate, plan.background_rows),
            kwargs={"stop": self._stop, "ready": self._ready, "count": self._count},
            daemon=True,
        )

    def transactions(self) -> int:
        return int(self._count.value)

    def __enter__(self) -> BackgroundWriter:
        self._process.start()
        deadline = time.monotonic() + 60
        while not self._ready.wait(0.5):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self._process.kill()
                raise RuntimeError("the background writer did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _write_in_background(
    urls: list[str], rate: float, rows: int, *, stop: Any, ready: Any, count: Any
) -> None:
    engines = [_background_engine(url) for url in urls]
    table = sa.table(
        BACKGROUND_TABLE, sa.column("id"), sa.column("payload"), sa.column("written_at")
    )
    for engine in engines:
        with engine.begin() as conn:
            conn.exec_driver_sql(_create_table(engine.dialect.name))
    ready.set()
    period = 1.0 / rate
    due = time.monotonic()
    payload = "x" * 200
    for engine in _cycle(engines):
        if stop.is_set():
            break
        with contextlib.suppress(sa.exc.OperationalError), engine.begin() as conn:
            conn.execute(
                table.insert(), [{"payload": payload, "written_at": time.time_ns()}] * rows
            )
        with count.get_lock():
            count.value += 1
        due += period
        pause = due - time.monotonic()
        if pause > 0:
            stop.wait(pause)  # the writer's pace: a fixed rate, whatever the machine does
        else:
            due = time.monotonic()
    for engine in engines:
        engine.dispose()


def _background_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": 30.0})
    return sa.create_engine(url)


def _create_table(dialect: str) -> str:
    key = {
        "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "postgresql": "BIGSERIAL PRIMARY KEY",
    }.get(dialect, "BIGINT AUTO_INCREMENT PRIMARY KEY")
    tail = " ENGINE=InnoDB" if dialect in ("mysql", "mariadb") else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {BACKGROUND_TABLE} "
        f"(id {key}, payload VARCHAR(200), written_at BIGINT){tail}"
    )


def _cycle(items: list[sa.Engine]) -> Iterator[sa.Engine]:
    while True:
        yield from items


def plan_for(quick: bool) -> Plan:
    """The plan of a quick or a full run."""
    return QUICK if quick else FULL

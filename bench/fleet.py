"""Section: a fleet. Eight masters heartbeating at once through their own connectors, as
the masters of one Buildbot share its database.

Each master is a process of its own (``spawn``), with a real Buildbot ``DBConnector``,
its thread pool and its own reactor, whose clock moves a minute per reading. Each
contender has a fleet of such processes on a database of its own made by Buildbot's
upgrade (the masters registered beforehand, by a connector that is closed before the
fleets start). A round runs one fleet, then the other; the next round starts with the
other one. In a fleet's turn every master waits at a barrier, so that they start
together, then makes ``calls`` timed calls back to back. The round's median is that of
every call of every master of the fleet; the result is the median of the round medians
and the spread is the range of the rounds' own ratios, as in :mod:`bench.independent`.
No call is untimed: the first round meets the pools cold.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import threading
import time
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import attrs

from bench.databases import Backend, Database
from bench.harness import close_connector, open_connector, quiet_logging, run_on_reactor
from bench.history import master_name
from bench.independent import OURS, SIDES, Contender, round_ratio_summary

#: The operations each master of a fleet times, in the order they are measured.
OPERATIONS = ("heartbeat", "findMasterId", "getMaster", "getMasters")
#: Seconds a master may take to start, or a fleet to finish one turn, before the run fails.
TIMEOUT = 300.0


@attrs.frozen
class Plan:
    """How much the section does."""

    masters: int  # masters per fleet, each a process
    rounds: int  # rounds per operation, alternating which fleet goes first
    calls: int  # timed calls per master and turn


FULL = Plan(masters=8, rounds=6, calls=40)
QUICK = Plan(masters=3, rounds=2, calls=5)


def plan_for(quick: bool) -> Plan:
    """The plan of a quick or a full run."""
    return QUICK if quick else FULL


@attrs.frozen
class Spec:
    """What one master process needs to start: picklable, for ``spawn``."""

    side: str
    database: Database
    basedir: Path
    number: int  # the master's number, 1-based: its name is master_name(number)


class Fleet:
    """One contender's masters, each in a process of its own, started together at a
    barrier for every turn."""

    def __init__(self, side: str, database: Database, basedir: Path, masters: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.side = side
        self._barrier = context.Barrier(masters + 1)  # the masters and this process
        self._pipes: list[Connection] = []
        self._processes = []
        for number in range(1, masters + 1):
            ours, theirs = context.Pipe()
            spec = Spec(side, database, basedir / f"{side}-{number}", number)
            process = context.Process(
                target=_master, args=(spec, theirs, self._barrier), daemon=True
            )
            self._pipes.append(ours)
            self._processes.append(process)

    def start(self) -> None:
        for process in self._processes:
            process.start()

    def wait_ready(self) -> None:
        self._receive()

    def turn(self, operation: str, calls: int) -> tuple[list[float], float]:
        """Every master makes ``calls`` timed calls of ``operation``, all starting together;
        every call's seconds, and the seconds from the start to the last master's end."""
        for pipe in self._pipes:
            pipe.send((operation, calls))
        try:
            self._barrier.wait(TIMEOUT)
        except threading.BrokenBarrierError:
            self._receive()  # raises the error of the master that broke it
            raise
        began = time.perf_counter()
        found = self._receive()
        wall = time.perf_counter() - began
        return [seconds for samples in found for seconds in samples], wall

    def _receive(self) -> list[Any]:
        found = []
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            deadline = time.monotonic() + TIMEOUT
            while not pipe.poll(1.0):
                if not process.is_alive() and not pipe.poll():
                    raise RuntimeError(f"{self.side} master {process.name} ended unannounced")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.side} master {process.name} did not answer")
            kind, value = pipe.recv()
            if kind == "error":
                raise RuntimeError(f"{self.side} master {process.name} failed:\n{value}")
            found.append(value)
        return found

    def stop(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        self._barrier.abort()  # a master still waiting for a turn stops waiting
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()


@contextlib.contextmanager
def fleets(databases: dict[str, Database], basedir: Path, masters: int) -> Iterator[list[Fleet]]:
    """Both contenders' fleets, started at once and stopped at the end."""
    started = [Fleet(side, databases[side], basedir, masters) for side in SIDES]
    try:
        for fleet in started:
            fleet.start()
        for fleet in started:
            fleet.wait_ready()
        yield started
    finally:
        for fleet in started:
            fleet.stop()


def rounds(pair: list[Fleet], operation: str, plan: Plan, first: int) -> list[dict[str, Any]]:
    """``plan.rounds`` rounds; round ``i`` starts with fleet ``(first + i) % 2``. Each
    round's median seconds per fleet, and each fleet's calls per second in its turn."""
    found = []
    for number in range(plan.rounds):
        start = (first + number) % 2
        medians: dict[str, Any] = {"calls_per_s": {}}
        for fleet in (pair[start], pair[1 - start]):
            samples, wall = fleet.turn(operation, plan.calls)
            medians[fleet.side] = statistics.median(samples)
            medians["calls_per_s"][fleet.side] = len(samples) / wall
        found.append(medians)
    return found


async def register(reactor: Any, backend: Backend, plan: Plan) -> dict[str, Database]:
    """A fresh database per contender with Buildbot's schema (and mastertrail's tables on
    its side) and the fleet's masters registered, by a connector closed afterwards."""
    databases = {}
    for side in SIDES:
        database = backend.new_database(f"fleet_{side}")
        databases[side] = database
        db = await open_connector(
            reactor,
            database.buildbot_url,
            backend.workdir / "fleet" / f"{side}-setup",
            mastertrail_component=side == OURS,
            name=master_name(1),
        )
        try:
            await Contender(side, database, db).grow(plan.masters)
        finally:
            await close_connector(db)
    return databases


async def fleet(reactor: Any, backend: Backend, plan: Plan) -> list[dict[str, Any]]:
    """The section on one backend: every operation of :data:`OPERATIONS`, both fleets."""
    databases = await register(reactor, backend, plan)
    results = []
    try:
        with fleets(databases, backend.workdir / "fleet", plan.masters) as pair:
            for number, operation in enumerate(OPERATIONS):
                load = os.getloadavg()
                found = rounds(pair, operation, plan, first=number % 2)
                results.append(
                    {
                        "backend": backend.name,
                        "operation": operation,
                        "masters": plan.masters,
                        "rounds": plan.rounds,
                        "calls": plan.calls,
                        "load_average": list(load),
                        **round_ratio_summary(found),
                        "calls_per_s": {
                            side: statistics.median(r["calls_per_s"][side] for r in found)
                            for side in SIDES
                        },
                    }
                )
    finally:
        for database in databases.values():
            backend.drop(database)
    return results


# -- one master's process ----------------------------------------------------------------------


def _master(spec: Spec, pipe: Connection, barrier: Any) -> None:
    """A master: its connector, then a turn of timed calls for every command received, until
    ``None``. Errors are sent back, not printed."""
    try:
        spec.basedir.mkdir(parents=True, exist_ok=True)
        quiet_logging(spec.basedir / "mastertrail.log")
        run_on_reactor(lambda reactor: _serve(reactor, spec, pipe, barrier))
    except Exception:  # everything goes back to the coordinator
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
        barrier.abort()  # the coordinator, waiting for the turn to start, reads the error


async def _serve(reactor: Any, spec: Spec, pipe: Connection, barrier: Any) -> None:
    name = master_name(spec.number)
    db = await open_connector(
        reactor,
        spec.database.buildbot_url,
        spec.basedir,
        mastertrail_component=spec.side == OURS,
        name=name,
    )
    try:
        contender = Contender(spec.side, spec.database, db, name=name)
        contender.ids.append(await db.masters.findMasterId(name))
        await db.masters.setMasterState(contender.ids[0], True)  # the master starts
        pipe.send(("ready", contender.ids[0]))
        clock = time.perf_counter
        while (command := pipe.recv()) is not None:
            operation, calls = command
            call = contender.call(operation)
            barrier.wait(TIMEOUT)  # the reactor has nothing to do meanwhile
            samples = []
            for _ in range(calls):
                began = clock()
                await call()
                samples.append(clock() - began)
            pipe.send(("samples", samples))
    finally:
        await close_connector(db)

"""Racing masters: real processes, each a master checking in, some of them expiring the
others, and one tailing the log, all on one database (every backend).

Each master's clock is injected and moves one step per call; the expiring masters' clocks
move two steps per call, so they run ahead and find the others silent, and the others come
back on their next check-in. Every call's outcome is reported to the test, which then
accounts for every event of the log.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from typing import Any

import attrs
import pytest

from eventstore import CODEC
from mastertrail import Registry
from tests.conftest import BACKENDS, FakeClock, Server
from tests.reliability_support import (
    DEADLINE,
    SPAWN,
    dump,
    get,
    own_database,
    quiet_logging,
    sized,
    stop_all,
)

pytestmark = pytest.mark.slow

#: Masters racing (processes), besides the one tailing the log.
MASTERS = 8
#: Check-ins per master, by backend: a server's round trips make PostgreSQL and MariaDB
#: slower per call, so ``make test`` runs fewer there (``make soak`` runs more everywhere).
CHECK_INS = {
    "sqlite": sized(500, 1000),
    "postgresql": sized(200, 1000),
    "mysql": sized(200, 1000),
}
#: The first EXPIRERS masters also expire the others every EXPIRE_EVERY check-ins.
EXPIRERS = 2
EXPIRE_EVERY = 10
#: Seconds of silence after which an expirer deactivates a master.
TIMEOUT = 10
T0 = 1_700_000_000


# -- what each process runs (module level, so that 'spawn' can import it) --------------------


def run_master(url: str, number: int, check_ins: int, start: Any, results: Any) -> None:
    """Register as ``master-<number>``, then check in ``check_ins`` times; an expirer also
    expires the silent masters every EXPIRE_EVERY check-ins. Reports every outcome."""
    quiet_logging()
    expirer = number < EXPIRERS
    clock = FakeClock(T0)
    name = f"master-{number}"
    registry = Registry(url, clock=clock, actor=name)
    report: dict[str, Any] = {"name": name, "check_ins": [], "expired": []}
    try:
        start.wait(DEADLINE)
        report["id"] = registry.find_master_id(name)
        for call in range(1, check_ins + 1):
            clock.advance(2 if expirer else 1)
            changed = registry.set_master_state(report["id"], True)
            report["check_ins"].append((int(clock.now), changed))
            if expirer and call % EXPIRE_EVERY == 0:
                report["expired"].extend(m.id for m in registry.expire_masters(timeout=TIMEOUT))
        results.put(("master", report))
    except BaseException:
        results.put(("failed", f"{name}: {traceback.format_exc()}"))
        raise
    finally:
        registry.close()


def run_tail(url: str, start: Any, done: Any, results: Any) -> None:
    """Tail the log by position until the masters are done, then drain it; reports every
    position in the order seen, and how many reads found something new."""
    quiet_logging()
    registry = Registry(url, clock=FakeClock(T0), actor="tail")
    seen: list[int] = []
    reads = 0
    try:
        start.wait(DEADLINE)
        while True:
            finished = done.is_set()  # read before the log: the drain after it is complete
            new = [event.position for event in registry.events(after=seen[-1] if seen else 0)]
            seen.extend(new)
            reads += bool(new)
            if finished:
                break
            if not new:
                time.sleep(0.005)
        results.put(("tail", {"seen": seen, "reads": reads}))
    except BaseException:
        results.put(("failed", f"tail: {traceback.format_exc()}"))
        raise
    finally:
        registry.close()


# -- the parent's side -----------------------------------------------------------------------


@attrs.frozen
class Raced:
    """A finished race: a registry on its database, the masters' reports and the tail's."""

    registry: Registry
    check_ins: int
    masters: list[dict[str, Any]]
    tail: dict[str, Any]


@pytest.fixture(scope="module", params=BACKENDS)
def raced(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Raced]:
    """One race per backend, on a database of its own, shared by the tests that examine it."""
    with own_database(str(request.param), servers, tmp_path_factory.mktemp("race")) as url:
        registry = Registry(url, clock=FakeClock(T0), actor="tester")
        started: list[SpawnProcess] = []
        try:
            registry.upgrade()
            check_ins = CHECK_INS[str(request.param)]
            masters, tail = race(url, check_ins, started)
            yield Raced(registry, check_ins, masters, tail)
        finally:
            stop_all(started)
            registry.close()


def race(
    url: str, check_ins: int, started: list[SpawnProcess]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the masters and the tail; the masters' reports and the tail's."""
    start = SPAWN.Barrier(MASTERS + 1)
    done = SPAWN.Event()
    results = SPAWN.Queue()
    for number in range(MASTERS):
        started.append(
            SPAWN.Process(target=run_master, args=(url, number, check_ins, start, results))
        )
    started.append(SPAWN.Process(target=run_tail, args=(url, start, done, results)))
    for process in started:
        process.start()
    masters: list[dict[str, Any]] = []
    tail: dict[str, Any] | None = None
    while len(masters) < MASTERS or tail is None:
        kind, report = get(results, "the racing masters")
        assert kind != "failed", report
        if kind == "master":
            masters.append(report)
            if len(masters) == MASTERS:
                done.set()
        else:
            tail = report
    for process in started:
        process.join(DEADLINE)
        assert process.exitcode == 0
    return masters, tail


class TestRacingMasters:
    def test_every_call_is_in_the_log_exactly_once(self, raced: Raced) -> None:
        """Each master's stream is its registration, one event per check-in (at that
        check-in's clock reading) and one deactivation per time an expirer reported it."""
        registry, masters = raced.registry, raced.masters
        expired = Counter(m for report in masters for m in report["expired"])
        assert sum(expired.values()) > 0, "no master was ever expired: the race proved little"
        for report in masters:
            trail = registry.history(report["id"])
            types = Counter(event.type for event in trail)
            assert trail[0].type == "master.registered"
            assert trail[0].data["name"] == report["name"]
            assert types["master.deactivated"] == expired[report["id"]]
            check_ins = [
                CODEC.decode(e).last_active
                for e in trail
                if e.type in ("master.activated", "master.checked_in")
            ]
            assert check_ins == [at for at, _changed in report["check_ins"]]
            assert len(trail) == 1 + raced.check_ins + expired[report["id"]]

    def test_set_master_state_says_true_exactly_when_it_activated(self, raced: Raced) -> None:
        """A check-in returned True exactly when it appended master.activated: the first one,
        and the first after each expiry."""
        registry, masters = raced.registry, raced.masters
        for report in masters:
            trail = [
                e
                for e in registry.history(report["id"])
                if e.type in ("master.activated", "master.checked_in")
            ]
            assert [e.type == "master.activated" for e in trail] == [
                changed for _at, changed in report["check_ins"]
            ]

    def test_versions_have_no_gap_and_positions_are_unique(self, raced: Raced) -> None:
        """Every master's versions are 1..n in position order, and the log's positions are
        1..N, each once."""
        registry, masters = raced.registry, raced.masters
        log = list(registry.events())
        assert [e.position for e in log] == list(range(1, len(log) + 1))
        versions: dict[int, list[int]] = defaultdict(list)
        for event in log:
            versions[event.master_id].append(event.version)
        assert sorted(versions) == sorted(report["id"] for report in masters)
        for master_versions in versions.values():
            assert master_versions == list(range(1, len(master_versions) + 1))

    def test_the_tail_saw_every_position_once_in_order(self, raced: Raced) -> None:
        """The process tailing the log by position while the others wrote saw every
        position exactly once, in increasing order, over many reads."""
        registry, tail = raced.registry, raced.tail
        total = sum(1 for _ in registry.events())
        assert tail["seen"] == list(range(1, total + 1))
        assert tail["reads"] > 1, "the tail read everything at once: it raced nobody"

    def test_verify_is_clean(self, raced: Raced) -> None:
        """After the race the hash chain holds and the view matches a fold of the log."""
        registry = raced.registry
        report = registry.verify()
        assert report.ok, report.problems
        assert report.events_checked == sum(1 for _ in registry.events())

    def test_rebuild_reproduces_the_view_exactly(self, raced: Raced) -> None:
        """Rebuilding the view from the log, after deleting every row of it, gives back the
        very same rows."""
        registry = raced.registry
        before = dump(registry.engine)["masters"]
        masters_before = registry.get_masters()
        with registry.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM masters")
        assert registry.rebuild() == sum(1 for _ in registry.events())
        assert dump(registry.engine)["masters"] == before
        assert registry.get_masters() == masters_before

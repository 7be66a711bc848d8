"""Races between real processes (the 'spawn' start method) on every backend: registering
one new name, expiring one silent master, heartbeating while stopping each other's
masters, and upgrading one empty database at once."""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from mastertrail import Registry
from tests.conftest import FakeClock

pytestmark = pytest.mark.slow

#: Processes racing each other (the CI machine has 2 cores; more would only queue).
PROCESSES = 4
#: Seconds any one step of a race may take before the test fails instead of hanging.
DEADLINE = 120.0
T0 = 1_700_000_000
#: Seconds between the last check-ins of the masters expired in successive rounds.
SPACING = 10_000


# -- what each process runs (module level, so that 'spawn' can import it) --------------------


def register_in_rounds(
    url: str, actor: str, barrier: Any, rounds: int, results: multiprocessing.Queue[Any]
) -> None:
    """Every round: wait for the others, then look up the round's new name."""
    registry = Registry(url, clock=FakeClock(T0), actor=actor)
    try:
        for round_number in range(rounds):
            barrier.wait(DEADLINE)
            master_id = registry.find_master_id(f"race:/srv/{round_number}")
            results.put((actor, round_number, master_id))
    except BaseException:
        results.put((actor, -1, traceback.format_exc()))
        raise
    finally:
        registry.close()


def expire_in_rounds(
    url: str, actor: str, barrier: Any, rounds: int, results: multiprocessing.Queue[Any]
) -> None:
    """Every round: wait for the others, then expire with the clock just past that round's
    silent masters' timeout."""
    clock = FakeClock(T0)
    registry = Registry(url, clock=clock, actor=actor)
    try:
        for round_number in range(rounds):
            clock.now = T0 + round_number * SPACING + 601
            barrier.wait(DEADLINE)
            expired = [m.id for m in registry.expire_masters(timeout=600)]
            results.put((actor, round_number, expired))
    except BaseException:
        results.put((actor, -1, traceback.format_exc()))
        raise
    finally:
        registry.close()


def upgrade_and_register(
    url: str, actor: str, barrier: Any, rounds: int, results: multiprocessing.Queue[Any]
) -> None:
    """Wait for the others, then create the schema and register a name of one's own."""
    registry = Registry(url, clock=FakeClock(T0), actor=actor)
    try:
        barrier.wait(DEADLINE)
        registry.upgrade()
        results.put((actor, 0, registry.find_master_id(f"own:/srv/{actor}")))
    except BaseException:
        results.put((actor, -1, traceback.format_exc()))
        raise
    finally:
        registry.close()


def heartbeat_in_rounds(
    url: str, actor: str, barrier: Any, rounds: int, results: multiprocessing.Queue[Any]
) -> None:
    """Every round: wait for the others, then check in one's own master (the heartbeat that
    guesses from its own last write); every other round also stop the next process's
    master, as an expiring master would. Reports each call's master, flag and answer."""
    registry = Registry(url, clock=FakeClock(T0), actor=actor)
    number = int(actor.rsplit("-", 1)[1])
    try:
        own = registry.find_master_id(f"hb:/srv/racer-{number}")
        neighbour = registry.find_master_id(f"hb:/srv/racer-{(number + 1) % PROCESSES}")
        for round_number in range(rounds):
            barrier.wait(DEADLINE)
            calls = [(own, True, registry.set_master_state(own, True))]
            if round_number % 2:
                calls.append((neighbour, False, registry.set_master_state(neighbour, False)))
            results.put((actor, round_number, calls))
    except BaseException:
        results.put((actor, -1, traceback.format_exc()))
        raise
    finally:
        registry.close()


# -- the parent's side -----------------------------------------------------------------------


Race = Callable[[Callable[..., None], int], list[tuple[str, int, Any]]]


@pytest.fixture
def race(db_url: str) -> Iterator[Race]:
    """Runs a function in PROCESSES spawned processes and returns what they reported."""
    context: SpawnContext = multiprocessing.get_context("spawn")
    started: list[BaseProcess] = []

    def run(target: Callable[..., None], rounds: int) -> list[tuple[str, int, Any]]:
        barrier = context.Barrier(PROCESSES)
        results: multiprocessing.Queue[Any] = context.Queue()
        for number in range(PROCESSES):
            process = context.Process(
                target=target, args=(db_url, f"racer-{number}", barrier, rounds, results)
            )
            process.start()
            started.append(process)
        reports = []
        for _ in range(PROCESSES * rounds):
            try:
                report = results.get(timeout=DEADLINE)
            except queue.Empty:
                pytest.fail("a racing process reported nothing before the deadline")
            assert report[1] != -1, f"{report[0]} failed: {report[2]}"
            reports.append(report)
        for racer in started:
            racer.join(DEADLINE)
            assert racer.exitcode == 0
        return reports

    yield run
    for process in started:
        if process.is_alive():
            process.kill()
            process.join()


class TestRegistrationRace:
    def test_processes_registering_one_new_name_get_one_id(
        self, registry: Registry, race: Race
    ) -> None:
        """Each round, every process asking for the same new name at once gets the same id,
        and the log holds exactly one master.registered event for it."""
        rounds = 5
        reports = race(register_in_rounds, rounds)
        ids_by_round: dict[int, set[int]] = {}
        for _actor, round_number, master_id in reports:
            ids_by_round.setdefault(round_number, set()).add(master_id)
        assert all(len(ids) == 1 for ids in ids_by_round.values()), ids_by_round
        registered = Counter(
            e.data["name"] for e in registry.events() if e.type == "master.registered"
        )
        assert registered == Counter({f"race:/srv/{n}": 1 for n in range(rounds)})
        masters = registry.get_masters()
        assert [m.name for m in masters] == [f"race:/srv/{n}" for n in range(rounds)]
        assert [{m.id} for m in masters] == [ids_by_round[n] for n in range(rounds)]
        assert registry.verify().ok


class TestExpiryRace:
    def test_processes_expiring_one_silent_master_deactivate_it_once(
        self, registry: Registry, clock: FakeClock, race: Race
    ) -> None:
        """Each round, processes expiring the same silent masters at once produce exactly one
        deactivation per master, reported by exactly one of them."""
        rounds, per_round = 3, 2
        silent: dict[int, list[int]] = {}
        for round_number in range(rounds):
            clock.now = T0 + round_number * SPACING
            silent[round_number] = []
            for n in range(per_round):
                master_id = registry.find_master_id(f"silent:/srv/{round_number}-{n}")
                registry.set_master_state(master_id, True)
                silent[round_number].append(master_id)
        reports = race(expire_in_rounds, rounds)
        for round_number in range(rounds):
            returned = Counter(
                master_id
                for _actor, number, expired in reports
                if number == round_number
                for master_id in expired
            )
            assert returned == Counter({i: 1 for i in silent[round_number]}), round_number
        for master_ids in silent.values():
            for master_id in master_ids:
                trail = [e.type for e in registry.history(master_id)]
                assert trail.count("master.deactivated") == 1, trail
        assert registry.get_masters(active=True) == []
        assert registry.verify().ok


class TestHeartbeatRace:
    def test_processes_checking_in_and_stopping_each_other_answer_what_they_wrote(
        self, registry: Registry, race: Race
    ) -> None:
        """Processes heartbeat their own masters at once while stopping each other's: every
        answer matches the event its call wrote (a guess from a process's last write is
        never trusted once another process wrote), and the log and view verify."""
        rounds = 20
        reports = race(heartbeat_in_rounds, rounds)
        answers: Counter[tuple[int, bool, bool]] = Counter(
            call for _actor, _round, calls in reports for call in calls
        )
        masters = registry.get_masters()
        assert len(masters) == PROCESSES
        for master in masters:
            trail = Counter(e.type for e in registry.history(master.id))
            assert trail["master.activated"] == answers[master.id, True, True]
            assert trail["master.checked_in"] == answers[master.id, True, False]
            assert trail["master.deactivated"] == answers[master.id, False, True]
            assert trail["master.activated"] + trail["master.checked_in"] == rounds
            assert answers[master.id, False, True] >= 1  # some stops found it running
        assert registry.verify().ok


class TestUpgradeRace:
    def test_processes_upgrading_an_empty_database_at_once_all_succeed(
        self, db_url: str, clock: FakeClock, race: Race
    ) -> None:
        """Several processes creating the schema at once all succeed and can all register."""
        reports = race(upgrade_and_register, 1)
        registry = Registry(db_url, clock=clock)
        assert sorted(m.name for m in registry.get_masters()) == sorted(
            f"own:/srv/{actor}" for actor, _, _ in reports
        )
        assert len({master_id for _, _, master_id in reports}) == PROCESSES
        assert registry.verify().ok
        registry.close()

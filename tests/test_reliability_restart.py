"""The database server restarted under load (PostgreSQL and MariaDB): a process keeps
making calls while the test stops the server and starts it again. Calls made while it is
down fail fast with StoreUnavailable, the same process's calls succeed again once it is
back, and every call that succeeded is in the log exactly once.

The test stops and starts a server of its own (:mod:`tests.private_servers`), never the
shared servers the rest of the suite uses.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from typing import Any

import pytest
import sqlalchemy as sa

from eventstore import CODEC, StoreUnavailable
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.private_servers import PrivateServer, private_server
from tests.reliability_support import DEADLINE, SPAWN, get, quiet_logging, stop_all, wait_until

pytestmark = pytest.mark.slow

#: Seconds within which a call to a server that is down must fail: the documented bound
#: (docs/reliability.rst), generous on purpose; it is a correctness property, not speed.
FAIL_FAST_BOUND = 15.0
#: Calls that must succeed before the restart, and again after it.
CALLS_AROUND = 10
#: Calls that must fail while the server is down.
CALLS_DURING = 3
T0 = 1_700_000_000


# -- the servers ----------------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The servers a test can restart."""
    return str(request.param)


@pytest.fixture
def server(backend: str) -> Iterator[PrivateServer]:
    """A private server of ``backend``, started for this test alone and removed after it:
    the shared servers are never stopped."""
    with private_server(backend) as started:
        yield started


@pytest.fixture
def db_url(server: PrivateServer) -> str:
    """The private server's database, for the ``registry`` fixture."""
    return server.url


# -- the process making calls (module level, so that 'spawn' can import it) -----------------


def call_until_stopped(url: str, name: str, ok: Any, failed: Any, stop: Any, results: Any) -> None:
    """Check in, register new names and read, one call after the other, until told to
    stop; report every call: its number, kind, clock reading, outcome and duration."""
    quiet_logging()
    clock = FakeClock(T0)
    registry = Registry(url, clock=clock, actor=name)
    calls: list[tuple[int, str, int, str, float, Any]] = []
    try:
        master_id = registry.find_master_id(name)
        number = 0
        while not stop.is_set():
            number += 1
            clock.advance(1)
            kind = "register" if number % 5 == 0 else "read" if number % 7 == 0 else "check_in"
            started = time.monotonic()
            result: Any = None
            try:
                if kind == "register":
                    result = registry.find_master_id(f"{name}-{number}")
                elif kind == "read":
                    result = len(registry.get_masters())
                else:
                    result = registry.set_master_state(master_id, True)
                outcome = "ok"
            except StoreUnavailable:
                outcome = "unavailable"
            except Exception as error:
                outcome = f"{type(error).__module__}.{type(error).__name__}: {error}"
            calls.append(
                (number, kind, int(clock.now), outcome, time.monotonic() - started, result)
            )
            counter = ok if outcome == "ok" else failed
            with counter.get_lock():
                counter.value += 1
            if outcome != "ok":
                time.sleep(0.05)  # the server is down: do not spin
        results.put(("calls", master_id, calls))
    except BaseException:
        results.put(("failed", None, traceback.format_exc()))
        raise
    finally:
        registry.close()


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[list[SpawnProcess]]:
    """The processes a test starts; killed if the test fails half-way."""
    started: list[SpawnProcess] = []
    yield started
    stop_all(started)


class TestServerRestartUnderLoad:
    def test_calls_fail_fast_then_recover_and_nothing_is_lost(
        self,
        server: PrivateServer,
        db_url: str,
        registry: Registry,
        processes: list[SpawnProcess],
    ) -> None:
        """While the server is down every call fails with StoreUnavailable within
        FAIL_FAST_BOUND seconds; afterwards the same process's calls succeed again; every
        call that succeeded is in the log exactly once (and one that failed at most once),
        and verify is clean."""
        ok, failed = SPAWN.Value("i", 0), SPAWN.Value("i", 0)
        stop, results = SPAWN.Event(), SPAWN.Queue()
        caller = SPAWN.Process(
            target=call_until_stopped, args=(db_url, "caller", ok, failed, stop, results)
        )
        processes.append(caller)
        caller.start()
        wait_until(lambda: ok.value >= CALLS_AROUND, "calls before the restart")
        server.stop()
        wait_until(lambda: failed.value >= CALLS_DURING, "calls failing while the server is down")
        server.start()
        wait_until(server.is_up, "the server to start again", timeout=120)
        back = ok.value
        wait_until(lambda: ok.value >= back + CALLS_AROUND, "calls after the restart")
        stop.set()
        kind, master_id, calls = get(results, "the calling process")
        assert kind == "calls", calls
        caller.join(DEADLINE)

        failures = [call for call in calls if call[3] != "ok"]
        assert failures, "no call failed: the outage was not observed"
        assert {call[3] for call in failures} == {"unavailable"}, failures
        slowest = max(call[4] for call in failures)
        assert slowest < FAIL_FAST_BOUND, f"a failing call took {slowest:.1f} s"
        print(f"{len(failures)} of {len(calls)} calls failed, the slowest in {slowest:.2f} s")
        assert all(call[3] == "ok" for call in calls[-CALLS_AROUND:])
        assert calls.index(failures[-1]) < len(calls) - CALLS_AROUND

        log = list(registry.events())
        check_ins = Counter(
            CODEC.decode(e).last_active
            for e in log
            if e.master_id == master_id and e.type in ("master.activated", "master.checked_in")
        )
        registered = Counter(e.data["name"] for e in log if e.type == "master.registered")
        masters = {m.name: m.id for m in registry.get_masters()}
        for number, kind, at, outcome, _duration, result in calls:
            if kind == "check_in":
                count = check_ins.pop(at, 0)
            elif kind == "register":
                count = registered.pop(f"caller-{number}", 0)
                if outcome == "ok":
                    assert masters[f"caller-{number}"] == result
            else:
                continue
            assert count == 1 if outcome == "ok" else count <= 1, (number, kind, outcome, count)
        assert not check_ins, f"check-ins no call made: {check_ins}"
        assert registered == Counter({"caller": 1}), registered
        report = registry.verify()
        assert report.ok, report.problems
        with registry.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1

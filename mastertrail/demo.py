"""The demo: a simulated fleet of Buildbot masters living through a simulated day.

Every master has its own :class:`~mastertrail.Registry` (its name is the actor of its
events) on one shared database, and they all read one simulated clock, so a day passes in
seconds. The simulated day ends now; its hours count from its start:

- 00:00 five masters register and start; every 5 minutes each running master checks in,
  and one of them (in turn) expires the masters silent for more than 10 minutes;
- 06:00 ``ci-04`` stops cleanly and stays down;
- 09:00 ``ci-03`` crashes (it just stops checking in) and another master expires it;
- 13:00 ``ci-03`` comes back;
- 15:00 a sixth master, ``ci-06``, joins;
- 19:00 the fleet stops for an upgrade, ``buildbot upgrade-master`` marks every master
  active long ago, and at 19:30 the masters start again; the first housekeeping then
  expires ``ci-04``, which is still down.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import attrs
from sqlalchemy.engine import Engine

import eventstore
from mastertrail.registry import Progress, Registry

FLEET = tuple(f"ci-0{n}:/srv/buildbot/master" for n in range(1, 7))
STOPPED, CRASHED, LATECOMER = FLEET[3], FLEET[2], FLEET[5]
UPGRADER = "buildbot upgrade-master"
#: Seconds between check-ins of the simulated masters, and the expiry timeout.
STEP = 300
TIMEOUT = 600
DAY = 86_400
#: The past moment the demo shows: 10:00, after the crash was noticed, before the return.
PAST_MOMENT = 10 * 3600


@attrs.define
class SimulatedClock:
    """POSIX seconds that move only when the simulation moves them."""

    now: float

    def __call__(self) -> float:
        return self.now


@attrs.frozen
class DemoDay:
    """What the simulation did: the day it covered and the moments worth looking at."""

    start: dt.datetime
    end: dt.datetime
    past_moment: dt.datetime
    fleet: tuple[str, ...] = FLEET
    crashed: str = CRASHED
    stopped: str = STOPPED


@attrs.define
class _Master:
    name: str
    registry: Registry
    id: int = 0
    running: bool = False
    just_started: bool = False

    def start(self) -> None:
        if not self.id:
            self.id = self.registry.find_master_id(self.name)
        self.registry.set_master_state(self.id, True)
        self.running = self.just_started = True

    def check_in(self) -> None:
        if self.just_started:
            self.just_started = False
        else:
            self.registry.set_master_state(self.id, True)

    def stop(self) -> None:
        self.registry.set_master_state(self.id, False)
        self.running = False


def simulate_day(url: str, *, end: float, progress: Progress | None = None) -> DemoDay:
    """Run the simulated day on the (empty) database at ``url``, ending at ``end`` (POSIX
    seconds, rounded down to the check-in step)."""
    last = int(end) // STEP * STEP
    first = last - DAY
    clock = SimulatedClock(float(first))
    first_registry = Registry(_demo_engine(url), clock=clock, actor=FLEET[0])
    first_registry.upgrade()
    fleet = [_Master(FLEET[0], first_registry)] + [
        _Master(name, Registry(first_registry.engine, clock=clock, actor=name))
        for name in FLEET[1:]
    ]
    upgrader = Registry(first_registry.engine, clock=clock, actor=UPGRADER)
    by_name = {master.name: master for master in fleet}

    def start_fleet() -> None:
        for master in fleet[:5]:
            master.start()

    def crash() -> None:
        by_name[CRASHED].running = False  # no event: it just falls silent

    def upgrade() -> None:
        for master in fleet:
            if master.running:
                master.stop()
        upgrader.set_all_masters_active_long_time_ago()

    def restart() -> None:
        for master in fleet:
            if master.name != STOPPED:
                master.start()

    script: dict[int, Callable[[], None]] = {
        0: start_fleet,
        6 * 3600: by_name[STOPPED].stop,
        9 * 3600: crash,
        13 * 3600: by_name[CRASHED].start,
        15 * 3600: by_name[LATECOMER].start,
        19 * 3600: upgrade,
        19 * 3600 + 1800: restart,
    }
    ticks = DAY // STEP
    try:
        for tick in range(ticks + 1):
            offset = tick * STEP
            clock.now = float(first + offset)
            action = script.get(offset)
            if action is not None:
                action()
            running = [m for m in fleet if m.running]
            for master in running:
                master.check_in()
            if running:
                running[tick % len(running)].registry.expire_masters(timeout=TIMEOUT)
            if progress is not None:
                progress(tick + 1, ticks + 1)
    finally:
        first_registry.close()
    return DemoDay(
        start=_utc(first),
        end=_utc(last),
        past_moment=_utc(first + PAST_MOMENT),
    )


def _demo_engine(url: str) -> Engine:
    """The log's engine for ``url``; on SQLite without a sync to disk at every commit
    (WAL keeps the file consistent; a throwaway demo needs no more), so the day runs fast."""
    engine = eventstore.create_engine(url)
    eventstore.without_sync_per_commit(engine)
    return engine


def is_demo_database(path: Path) -> bool:
    """True when the SQLite file at ``path`` holds nothing but a demo's data (or nothing at
    all), so it may be replaced; False for any other file."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
            tables = {row[0] for row in conn.execute(query)}
            if any(not _demo_table(name) for name in tables):
                return False
            if "masters" not in tables:
                return True
            names = {row[0] for row in conn.execute("SELECT name FROM masters")}
            return names <= set(FLEET)
    except sqlite3.DatabaseError:
        return False


def _demo_table(name: str) -> bool:
    """A table the demo's database holds: the log's, the view, SQLite's own."""
    return name == "masters" or name.startswith(("mastertrail_", "sqlite_"))


def remove_database(path: Path) -> None:
    """Delete the SQLite file at ``path`` with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


__all__ = [
    "FLEET",
    "DemoDay",
    "SimulatedClock",
    "is_demo_database",
    "remove_database",
    "simulate_day",
]

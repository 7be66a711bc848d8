"""What the bad-input tests share: the small fleet they run against, and the check
that a case left its tables byte for byte as they were."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from mastertrail import Registry
from tests.conftest import FakeClock, Server, own_database
from tests.reliability_support import dump

T0 = 1_700_000_000.0


NAIVE = dt.datetime(2023, 11, 14, 22, 13, 20)


AWARE = NAIVE.replace(tzinfo=dt.UTC)


HUGE = 2**80


UNREACHABLE = {
    "postgresql": "postgresql+psycopg://root@127.0.0.1:1/mastertrail",
    "mysql": "mysql+pymysql://root@127.0.0.1:1/mastertrail",
}


@attrs.frozen
class Fleet:
    """Two masters with a history on one backend: ``alpha`` active, ``bravo`` expired."""

    backend: str
    url: str
    registry: Registry
    clock: FakeClock
    alpha: int
    bravo: int


@contextlib.contextmanager
def small_fleet(backend: str, servers: dict[str, Server | str], tmp: Path) -> Iterator[Fleet]:
    """A small fleet on a database of its own on ``backend``: ``alpha`` checked in last,
    ``bravo`` expired by it."""
    with own_database(backend, servers, tmp) as url:
        clock = FakeClock(T0)
        registry = Registry(url, clock=clock, actor="tester")
        registry.upgrade()
        alpha = registry.find_master_id("alpha:/srv")
        bravo = registry.find_master_id("bravo:/srv")
        registry.set_master_state(alpha, True)
        registry.set_master_state(bravo, True)
        clock.advance(1000)
        registry.set_master_state(alpha, True)
        registry.expire_masters(timeout=600)
        yield Fleet(backend, url, registry, clock, alpha, bravo)
        registry.close()


@contextlib.contextmanager
def newer_schema_of(registry: Registry) -> Iterator[Registry]:
    """``registry``'s database, holding a master, with a schema revision this mastertrail
    does not know (a newer one's); a fresh registry on it. Fails unless the database is
    left as it was."""
    master_id = registry.find_master_id("alpha:/srv")
    registry.set_master_state(master_id, True)
    with registry.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE mastertrail_alembic_version SET version_num = '9999_future'")
    fresh = Registry(registry.engine, actor="tester")
    before = dump(registry.engine)
    yield fresh
    assert dump(registry.engine) == before


@contextlib.contextmanager
def unchanged(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet; fails unless its tables are byte for byte the same at the end."""
    before = dump(fleet.registry.engine)
    yield fleet
    assert dump(fleet.registry.engine) == before


Call = Callable[[Registry, Fleet], object]

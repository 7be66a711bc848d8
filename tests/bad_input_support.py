"""What the bad-input tests share: the small fleet they run against, and the check
that a case left its tables byte for byte as they were."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator

import attrs

from mastertrail import Registry
from tests.conftest import FakeClock
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
def unchanged(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet; fails unless its tables are byte for byte the same at the end."""
    before = dump(fleet.registry.engine)
    yield fleet
    assert dump(fleet.registry.engine) == before


Call = Callable[[Registry, Fleet], object]

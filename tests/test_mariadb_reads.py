"""MariaDB's system-versioned log (revision 0005) reads in proportion to what is asked, not to
the log's length.

On a system-versioned table MariaDB adds the row's end to every key and a condition on it
to every query, which turns a ``max()`` into a read of every index entry it covers and a
``DISTINCT`` into a full index scan. The readings below count the index entries the server
reads (its ``Handler_read_*`` counters) on a log, then on the same log ten times longer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.anchors import check_anchors
from eventstore.restore import head_of_log
from mastertrail import Registry
from projections import latest, queries, view
from tests.conftest import FakeClock

#: Index entries a reading may read more on the ten times longer log: the as-of search's
#: binary search takes a few more steps per master.
SLACK = 40


def rows_read(conn: Connection, reading: Callable[[Connection], object]) -> int:
    """The index and table entries the server read for ``reading`` on ``conn``."""

    def counters() -> int:
        found = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Handler_read%%'").all()
        return sum(int(value) for _name, value in found)

    first = counters()
    own = counters() - first  # what a SHOW reads itself
    before = counters()
    reading(conn)
    return counters() - before - own


@pytest.mark.parametrize("backend", ["mysql"])
def test_readings_do_not_grow_with_the_log(registry: Registry, clock: FakeClock) -> None:
    ids = [registry.find_master_id(name) for name in ("a:/m", "b:/m")]

    def beat(times: int) -> None:
        for _ in range(times):
            clock.advance(60)
            for master_id in ids:
                registry.set_master_state(master_id, True)

    def readings() -> dict[str, int]:
        anchor = registry.anchor()
        found: dict[str, Any] = {
            "masters_as_of": lambda c: queries.masters_as_of(c, anchor.position),
            "view with versions": view.load_states,
            "head of the log": head_of_log,
            "anchors checked": lambda c: check_anchors(c, [anchor]),
            "streams' newest events": latest.latest_events,
        }
        with registry.engine.connect() as conn:
            return {name: rows_read(conn, reading) for name, reading in found.items()}

    beat(50)
    short = readings()
    beat(450)
    long = readings()
    assert len(list(registry.events())) > 1000
    grown = {
        name: (count, long[name]) for name, count in short.items() if long[name] > count + SLACK
    }
    assert grown == {}


def test_the_counters_see_a_full_read(registry: Registry, clock: FakeClock) -> None:
    """The measure above can fail: a ``max()`` over the log reads every row on MariaDB."""
    if registry.engine.dialect.name != "mysql":
        pytest.skip("MariaDB's handler counters")
    master_id = registry.find_master_id("a:/m")
    for _ in range(300):
        clock.advance(60)
        registry.set_master_state(master_id, True)
    with registry.engine.connect() as conn:
        read = rows_read(
            conn, lambda c: c.execute(sa.text("SELECT max(position) FROM mastertrail_events"))
        )
    assert read >= 300

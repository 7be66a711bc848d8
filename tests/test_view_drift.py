"""The ``masters`` view tampered with behind the log's back: ``verify`` reports each row as
Buildbot reads it, and ``rebuild`` repairs every row it reports, or refuses naming the
row."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from mastertrail import Registry
from tests.conftest import FakeClock

NAMES = ("alpha:/srv", "bravo:/srv", "charlie:/srv")


@pytest.fixture
def trio(registry: Registry, clock: FakeClock) -> Registry:
    """Three masters (ids 1-3): alpha and charlie active, bravo registered only."""
    ids = [registry.find_master_id(name) for name in NAMES]
    assert ids == [1, 2, 3]
    clock.advance(10)
    registry.set_master_state(1, True)
    registry.set_master_state(3, True)
    assert registry.verify().ok
    return registry


def execute(registry: Registry, statement: str, **params: object) -> None:
    """Run raw SQL on the registry's database, as someone with database access could."""
    with registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def rows(registry: Registry) -> list[tuple[Any, ...]]:
    """Every ``masters`` row as stored, by id."""
    with registry.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text("SELECT id, name, name_hash, active, last_active FROM masters ORDER BY id")
            )
        ]


class TestVerifyReadsTheViewAsBuildbot:
    @pytest.mark.parametrize("active", [2, -1])
    def test_an_active_flag_other_than_0_or_1_is_reported(
        self, trio: Registry, active: int
    ) -> None:
        """active=2 or -1 (which Buildbot's active filter and expiry skip) is a view problem
        even where the log says the master is active."""
        execute(trio, "UPDATE masters SET active = :a WHERE id = 1", a=active)
        report = trio.verify()
        assert [(p.kind, p.master_id) for p in report.problems] == [("view", 1)]
        assert report.problems[0].detail == f"active is {active}, the log says 1"

    def test_every_column_of_a_row_is_compared(self, trio: Registry) -> None:
        """A changed name, name_hash and last_active of one row are each reported."""
        execute(
            trio,
            "UPDATE masters SET name = 'Alpha:/srv', name_hash = :h, last_active = last_active + 1 "
            "WHERE id = 1",
            h="f" * 40,
        )
        fields = sorted(p.detail.split(" ")[0] for p in trio.verify().problems)
        assert fields == ["last_active", "name", "name_hash"]

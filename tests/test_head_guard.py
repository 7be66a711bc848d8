"""PostgreSQL's guard of the head row is a PL/pgSQL function that an append never calls: its
trigger's condition lets a move forward through, and calls it for anything else (what it
refuses is in tests/test_guards.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mastertrail import Registry
from tests.conftest import FakeClock

#: The head's guard replaced by one that refuses everything it is asked about.
REFUSE_ALL = (
    "CREATE OR REPLACE FUNCTION mastertrail_head_moves_forward() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the guard was called'; END $$"
)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
class TestTheHeadGuardOnPostgreSQL:
    def test_appends_never_call_the_guard(self, registry: Registry, clock: FakeClock) -> None:
        """With the guard refusing everything, heartbeats, a new master (a new master id)
        and a stop still go through: their trigger never called it."""
        alpha = registry.find_master_id("alpha")
        with registry.engine.begin() as conn:
            conn.exec_driver_sql(REFUSE_ALL)
        for active in (True, True, False):
            clock.advance(60)
            registry.set_master_state(alpha, active)
        assert registry.find_master_id("bravo") == alpha + 1
        assert registry.verify().ok

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE mastertrail_head SET position = position - 1",
            "UPDATE mastertrail_head SET hash = sha256(hash)",
            "UPDATE mastertrail_head SET position = position + 1, last_master_id = 0",
            "DELETE FROM mastertrail_head",
            "INSERT INTO mastertrail_head VALUES (2, 0, '\\x00'::bytea, 0)",
        ],
        ids=["back", "rehashed", "ids-back", "delete", "insert"],
    )
    def test_anything_else_calls_it(self, registry: Registry, statement: str) -> None:
        """Any other change of the head row calls the guard."""
        registry.find_master_id("alpha")
        with registry.engine.begin() as conn:
            conn.exec_driver_sql(REFUSE_ALL)
        with (
            pytest.raises(sa.exc.DBAPIError, match="the guard was called"),
            registry.engine.begin() as conn,
        ):
            conn.exec_driver_sql(statement)

"""The head row's guard looks at the log only for a change that is not a move forward: on
PostgreSQL a PL/pgSQL function that an append never calls (its trigger's condition lets a
move forward through), on MariaDB the second test of its trigger. What the guard refuses
is in tests/test_guards.py."""

from __future__ import annotations

from collections.abc import Iterator

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


#: The log's table moved out of the guard's sight (MariaDB).
HIDDEN = "mastertrail_events_hidden"


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
class TestTheHeadGuardOnMariaDB:
    @pytest.fixture
    def hidden(self, registry: Registry) -> Iterator[sa.Engine]:
        """The log's table renamed: a trigger statement that reads it fails."""
        registry.find_master_id("alpha")
        engine = registry.engine
        with engine.begin() as conn:
            conn.exec_driver_sql(f"RENAME TABLE mastertrail_events TO {HIDDEN}")
        try:
            yield engine
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"RENAME TABLE {HIDDEN} TO mastertrail_events")

    def test_a_move_forward_does_not_read_the_log(self, hidden: sa.Engine) -> None:
        """The head moved forward, or given a new master id, goes through without the
        trigger reading the log."""
        with hidden.connect() as conn:
            conn.begin()
            conn.exec_driver_sql("UPDATE mastertrail_head SET last_master_id = last_master_id + 1")
            conn.exec_driver_sql("UPDATE mastertrail_head SET position = position + 1")
            conn.rollback()

    def test_anything_else_reads_it(self, hidden: sa.Engine) -> None:
        """A move back meets the test that reads the log."""
        with (
            pytest.raises(sa.exc.DBAPIError, match="doesn't exist"),
            hidden.begin() as conn,
        ):
            conn.exec_driver_sql("UPDATE mastertrail_head SET position = position - 1")

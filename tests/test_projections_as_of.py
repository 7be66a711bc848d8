"""Projections: the view as of a past moment or log position."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

import projections.queries
from eventstore.recorded import RecordedEvent, to_micros
from mastertrail import Registry
from projections import (
    fold,
    position_at,
)
from tests.conftest import FakeClock, Shared
from tests.projections_support import (
    EPOCH,
    make_busy,
    models,
)


@pytest.fixture
def busy(registry: Registry, clock: FakeClock) -> list[RecordedEvent]:
    """A registry with a history of every kind of event; returns its log."""
    return make_busy(registry, clock)


@pytest.fixture(scope="class")
def shared_busy(shared: Shared) -> list[RecordedEvent]:
    """:func:`busy` on the class's shared registry."""
    return make_busy(shared.registry, shared.clock)


class TestMastersAsOf:
    @pytest.fixture
    def registry(self, shared_registry: Registry) -> Registry:
        """The class's shared registry: these tests only read, and fail if they write."""
        return shared_registry

    @pytest.fixture
    def busy(self, shared_busy: list[RecordedEvent]) -> list[RecordedEvent]:
        return shared_busy

    def test_as_of_a_position_is_the_fold_of_the_log_up_to_it(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """masters_as_of(P) equals the fold of events 1..P (P included), for every P."""
        for position in range(len(busy) + 2):
            expected = models(fold(busy[:position]))
            assert registry.masters_as_of(position) == expected, position

    def test_as_of_a_moment_is_the_fold_of_what_was_recorded_by_then(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """masters_as_of(t) equals the fold of every event recorded at or before t."""
        moments = sorted({e.recorded_at for e in busy})
        micro = dt.timedelta(microseconds=1)
        for moment in [moments[0] - micro, *moments, *(m + micro for m in moments)]:
            expected = models(fold(e for e in busy if e.recorded_at <= moment))
            assert registry.masters_as_of(moment) == expected, moment

    def test_a_moment_in_another_time_zone_is_the_same_instant(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """An aware datetime at UTC-05:00 gives the answer of its UTC equivalent: the fold
        of what was recorded by then (not of what was recorded by its wall-clock time read
        as UTC, five hours before anything happened)."""
        moment = busy[5].recorded_at
        expected = models(fold(e for e in busy if e.recorded_at <= moment))
        assert expected
        minus_five = dt.timezone(dt.timedelta(hours=-5))
        assert registry.masters_as_of(moment.astimezone(minus_five)) == expected

    def test_before_anything_happened_there_were_no_masters(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Position 0, or a moment before the first event, has no masters."""
        assert registry.masters_as_of(0) == []
        assert registry.masters_as_of(EPOCH) == []


class TestMastersAsOfSearch:
    """The newest event of each master at a position is found by a binary search of its
    stream, and the newest event at a moment by the minute it was recorded in (SQLite)."""

    def test_uneven_streams_at_every_position(self, registry: Registry, clock: FakeClock) -> None:
        """Masters whose streams differ in length and start late: every position's answer
        is the fold of the log up to it."""
        first = registry.find_master_id("first")
        names = iter(("late", "later"))
        ids = [first]
        for step in range(60):
            clock.advance(1)
            if step in (14, 41):
                ids.append(registry.find_master_id(next(names)))
            # The first master writes most; the others now and then, so that the
            # binary search meets streams of many lengths.
            chosen = ids[0] if step % 3 else ids[step % len(ids)]
            registry.set_master_state(chosen, step % 11 != 5)
        log = list(registry.events())
        for position in range(len(log) + 2):
            assert registry.masters_as_of(position) == models(fold(log[:position])), position

    def test_every_master_whatever_the_databases_recursion_limit(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """More masters than MariaDB lets a recursive query iterate (lowered here from
        its default of 1000): every one of them is in the answer."""
        if registry.engine.dialect.name != "mysql":
            pytest.skip("MariaDB's max_recursive_iterations")
        for n in range(8):
            master_id = registry.find_master_id(f"m{n}")
            clock.advance(1)
            registry.set_master_state(master_id, True)
        log = list(registry.events())
        with registry.engine.connect() as conn:
            conn.exec_driver_sql("SET SESSION max_recursive_iterations = 4")
            found = projections.queries.masters_as_of(conn, len(log))
        assert found == models(fold(log))
        assert len(found) == 8

    def test_a_clock_out_of_order_across_minutes(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """With times out of log order and minutes apart, a moment's position is that of
        the newest event recorded at or before it (by time, then position), also when
        the moment's own minute has none, or only later ones."""
        master_id = registry.find_master_id("m")
        for step in (30, 95, -70, 200, -150, 0.000001, 61, 0, -61):
            clock.advance(step)
            registry.set_master_state(master_id, True)
        log = list(registry.events())
        micro = dt.timedelta(microseconds=1)
        minutes = {e.recorded_at.replace(second=0, microsecond=0) for e in log}
        moments = {e.recorded_at + d for e in log for d in (-micro, dt.timedelta(0), micro)}
        moments |= (
            minutes | {m - micro for m in minutes} | {m + dt.timedelta(seconds=59) for m in minutes}
        )
        for moment in sorted(moments):
            recorded = [e for e in log if e.recorded_at <= moment]
            newest = max(recorded, key=lambda e: (e.recorded_at, e.position), default=None)
            with registry.engine.connect() as conn:
                found = position_at(conn, to_micros(moment))
            assert found == (0 if newest is None else newest.position), moment


class TestMastersAsOfCost:
    def test_the_answer_does_not_replay_the_log(self, registry: Registry, clock: FakeClock) -> None:
        """The number of queries depends on the number of masters, not on the log's length."""
        ids = [registry.find_master_id(n) for n in ("a", "b")]

        def queries_for_as_of() -> int:
            statements = []

            def count(*args: Any) -> None:
                statements.append(args)

            sa.event.listen(registry.engine, "before_cursor_execute", count)
            try:
                registry.masters_as_of(10**9)
            finally:
                sa.event.remove(registry.engine, "before_cursor_execute", count)
            return len(statements)

        for master_id in ids:
            registry.set_master_state(master_id, True)
        short = queries_for_as_of()
        for _ in range(100):
            clock.advance(1)
            for master_id in ids:
                registry.set_master_state(master_id, True)
        assert queries_for_as_of() == short

    def test_the_answer_is_one_statement(self, registry: Registry, clock: FakeClock) -> None:
        """With nothing archived, masters_as_of a position or a moment sends one
        statement: the moment's position, every stream's ends and their events at once."""
        ids = [registry.find_master_id(n) for n in ("a", "b")]
        for _ in range(3):
            clock.advance(60)
            for master_id in ids:
                registry.set_master_state(master_id, True)
        registry.masters_as_of(1)  # the schema checked once
        middle = dt.datetime.fromtimestamp(clock.now - 90, dt.UTC)
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            statements.append(statement)

        for when in (5, middle):
            statements.clear()
            sa.event.listen(registry.engine, "before_cursor_execute", count)
            try:
                found = registry.masters_as_of(when)
            finally:
                sa.event.remove(registry.engine, "before_cursor_execute", count)
            assert len(statements) == 1, statements
            assert [m.id for m in found] == ids

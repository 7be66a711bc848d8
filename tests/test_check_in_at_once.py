"""On PostgreSQL a heartbeat of a master the process remembers is one statement that is a
transaction of its own (:func:`commands.retry.run`'s ``at_once``): its lock wait is its
own, a lost connection never makes it land twice, and whatever it does not find as it
expects goes the ordinary way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import commands
import commands.retry
from commands.clock import Now
from mastertrail import Registry
from tests.conftest import FakeClock

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def known_master(registry: Registry, clock: FakeClock) -> int:
    """A master started and checked in by ``registry``, which remembers it and knows its
    check-in's texts stored (found by a transaction after the one that stored them)."""
    master_id = registry.find_master_id("m")
    for _ in range(3):
        registry.set_master_state(master_id, True)
        clock.advance(60)
    return master_id


def moved_by_another(registry: Registry, clock: FakeClock, db_url: str) -> int:
    """:func:`known_master`, whose stream another process then moved on a minute ago: the
    tip ``registry`` remembers is stale."""
    master_id = known_master(registry, clock)
    other = Registry(db_url, clock=clock, actor="other")
    try:
        other.set_master_state(master_id, True)
    finally:
        other.close()
    clock.advance(60)
    return master_id


def types(registry: Registry) -> list[str]:
    return [event.type for event in registry.events()]


@contextlib.contextmanager
def statements_seen(engine: sa.Engine) -> Iterator[list[tuple[str, bool]]]:
    """Each statement sent on ``engine``, with whether its driver was in autocommit."""
    seen: list[tuple[str, bool]] = []

    def before(conn: sa.Connection, _cursor: Any, sql: str, *_args: Any) -> None:
        driver = conn.connection.dbapi_connection
        seen.append((sql, getattr(driver, "autocommit", False) is True))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def in_autocommit(conn: sa.Connection, sql: str) -> bool:
    """Whether ``sql`` is sent at once on PostgreSQL: its driver is in autocommit."""
    return getattr(conn.connection.dbapi_connection, "autocommit", False) is True


def losing_the_statement(
    monkeypatch: pytest.MonkeyPatch,
    *,
    sent: bool,
    at_once: Callable[[sa.Connection, str], bool] = in_autocommit,
    error: Exception | None = None,
) -> Callable[[], int]:
    """Make the next statement sent at once (``at_once``) lose its connection (``error``,
    the driver's), after (``sent``) or instead of running; returns a counter of the
    statements lost."""
    real = sa.Connection.exec_driver_sql
    lost: list[int] = []
    error = error or Exception("server closed the connection")

    def exec_driver_sql(self: sa.Connection, sql: str, *args: Any, **kwargs: Any) -> Any:
        if lost or not at_once(self, sql):
            return real(self, sql, *args, **kwargs)
        lost.append(1)
        if sent:
            real(self, sql, *args, **kwargs)
        self.invalidate(error)
        raise sa.exc.OperationalError(sql, {}, error, connection_invalidated=True)

    monkeypatch.setattr(sa.Connection, "exec_driver_sql", exec_driver_sql)
    return lambda: len(lost)


def test_a_heartbeat_is_one_statement_in_autocommit(registry: Registry, clock: FakeClock) -> None:
    master_id = known_master(registry, clock)
    with statements_seen(registry.engine) as seen:
        assert registry.set_master_state(master_id, True) is False
    assert [autocommit for _, autocommit in seen] == [True], [sql[:120] for sql, _ in seen]
    assert "set_config(" in seen[0][0]  # its own lock wait
    assert types(registry)[-1] == "master.checked_in"
    assert registry.verify().ok
    with registry.engine.connect() as conn:  # the driver went back to transactions
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]


def test_a_deactivation_is_a_transaction(registry: Registry, clock: FakeClock) -> None:
    """A stop reads the master's links with its write: never at once."""
    master_id = known_master(registry, clock)
    with statements_seen(registry.engine) as seen:
        assert registry.set_master_state(master_id, False) is True
    assert seen
    assert not any(autocommit for _, autocommit in seen)


@pytest.mark.parametrize("sent", [True, False], ids=["after-it-ran", "before-it-ran"])
def test_a_heartbeat_whose_connection_is_lost_lands_once(
    registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, sent: bool
) -> None:
    master_id = known_master(registry, clock)
    before = len(types(registry))
    lost = losing_the_statement(monkeypatch, sent=sent)
    assert registry.set_master_state(master_id, True) is False
    assert lost() == 1
    assert types(registry)[before:] == ["master.checked_in"]
    assert registry.verify().ok
    # What the process remembers afterwards is right: the next heartbeat chains on it.
    clock.advance(60)
    assert registry.set_master_state(master_id, True) is False
    assert types(registry)[before:] == ["master.checked_in"] * 2
    assert registry.verify().ok


def test_a_stream_moved_by_another_process_goes_the_ordinary_way(
    registry: Registry, clock: FakeClock, db_url: str
) -> None:
    master_id = moved_by_another(registry, clock, db_url)
    with statements_seen(registry.engine) as seen:
        assert registry.set_master_state(master_id, True) is False
    autocommits = [autocommit for _, autocommit in seen]
    assert autocommits[:2] == [True, True]  # after its own tip, then after its own event
    assert len(autocommits) > 2
    assert not any(autocommits[2:])  # then read and written in a transaction
    assert types(registry)[-2:] == ["master.checked_in", "master.checked_in"]
    assert registry.verify().ok


def test_a_held_head_bounds_the_statements_wait(registry: Registry, clock: FakeClock) -> None:
    """On a session whose own lock wait is unbounded (as Buildbot's are), the statement
    gives up after its own: the call returns while the head is still held, having written
    nothing, and the session's setting is as it was."""
    master_id = known_master(registry, clock)
    before = len(types(registry))
    now = Now.read(clock)
    at_once = commands.check_in_at_once(registry.actor, master_id, True, now, registry._known)
    assert at_once is not None
    plain = sa.create_engine(registry.engine.url)  # no lock wait of mastertrail's
    try:
        with registry.engine.connect() as holder, plain.connect() as conn:
            holder.exec_driver_sql("SELECT 1 FROM mastertrail_head FOR UPDATE")
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
            conn.rollback()
            done = commands.retry._at_once(
                conn, lambda: at_once, float("inf"), clock, lambda _: None
            )
            assert done is None
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
            conn.rollback()
            holder.rollback()
    finally:
        plain.dispose()
    assert len(types(registry)) == before


def test_a_check_in_whose_texts_are_not_stored_goes_the_ordinary_way(
    registry: Registry, clock: FakeClock
) -> None:
    """A statement that is its own transaction stores no text: the first check-in after
    the start (its type and metadata never stored) is written in a transaction that
    stores them."""
    master_id = registry.find_master_id("m")
    registry.set_master_state(master_id, True)  # started: remembered
    clock.advance(60)
    with statements_seen(registry.engine) as seen:
        assert registry.set_master_state(master_id, True) is False
    autocommits = [autocommit for _, autocommit in seen]
    assert autocommits[0] is True
    assert "mastertrail_texts" in seen[0][0]  # found missing
    assert not any(autocommits[1:])
    assert any("INSERT INTO mastertrail_texts" in sql for sql, _ in seen[1:])
    assert types(registry)[-1] == "master.checked_in"
    assert registry.verify().ok

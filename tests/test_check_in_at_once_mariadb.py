"""On MariaDB a heartbeat of a master the process remembers is one compound statement
that ends with its own ``COMMIT`` (:func:`commands.retry.run`'s ``at_once``): no
``SET TRANSACTION`` before it and no ``COMMIT`` after; whatever it does not find as it
expects writes nothing and leaves no transaction open; a lost connection never makes it
land twice. What the driver sends is read off PyMySQL's one call that sends a query."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pymysql
import pymysql.constants
import pytest
import sqlalchemy as sa

import eventstore.mariadb_writer
from eventstore import ends_only_if_open, writing_at_once
from eventstore.head import read_head as head_state
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.test_check_in_at_once import (
    known_master,
    losing_the_statement,
    moved_by_another,
    types,
)

pytestmark = pytest.mark.parametrize("backend", ["mysql"])


@pytest.fixture(autouse=True)
def _mariadb(registry: Registry) -> None:
    with registry.engine.connect() as conn:
        if "mariadb" not in str(conn.exec_driver_sql("SELECT VERSION()").scalar()).lower():
            pytest.skip("MariaDB's compound statements")


#: The text of each statement a session prepared (by name), as SQLAlchemy sent it.
PREPARED: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _prepared() -> Iterator[None]:
    def record(conn: object, cursor: object, statement: str, params: Any, *_: object) -> None:
        if statement.startswith("PREPARE mastertrail_"):
            PREPARED[statement.split()[1]] = params["text"]

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    yield
    sa.event.remove(sa.Engine, "before_cursor_execute", record)


class Sent(list[str]):
    """What PyMySQL sent: each query, a prepared statement's ``EXECUTE`` as the statement
    it runs and its ``PREPARE`` left out; ``raw``: every query as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[str] = []

    def add(self, text: str) -> None:
        self.raw.append(text)
        if text.startswith("EXECUTE mastertrail_"):
            self.append(PREPARED[text.split()[1]])
        elif not text.startswith("PREPARE mastertrail_"):
            self.append(text)


@contextlib.contextmanager
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    """Every query PyMySQL sends meanwhile (``COMMIT`` and ``ROLLBACK`` included; not the
    pool's pings, which are not queries)."""
    queries = Sent()
    real = pymysql.connections.Connection._execute_command

    def spy(self: Any, command: int, sql: str | bytes | bytearray) -> Any:
        if command == pymysql.constants.COMMAND.COM_QUERY:
            queries.add(sql if isinstance(sql, str) else bytes(sql).decode("utf-8", "replace"))
        return real(self, command, sql)

    with monkeypatch.context() as patch:
        patch.setattr(pymysql.connections.Connection, "_execute_command", spy)
        yield queries


def head_free(registry: Registry) -> bool:
    """Whether no transaction holds the head's row (a locking read that does not wait)."""
    with registry.engine.connect() as conn:
        try:
            conn.exec_driver_sql("SELECT position FROM mastertrail_head FOR UPDATE NOWAIT")
        except sa.exc.OperationalError:
            return False
        finally:
            conn.rollback()
    return True


def writes(queries: list[str]) -> list[str]:
    """The queries that are not the pool's rollback on check-in."""
    return [q for q in queries if q != "ROLLBACK"]


@pytest.mark.parametrize("engine", ["own", "foreign"])
def test_a_heartbeat_is_one_statement_committing_itself(
    registry: Registry,
    clock: FakeClock,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    """On mastertrail's engine and on one made elsewhere (as Buildbot's, whose sessions
    are not at mastertrail's isolation level: no ``SET TRANSACTION`` either)."""
    foreign = sa.create_engine(db_url) if engine == "foreign" else None
    use = registry if foreign is None else Registry(foreign, clock=clock, actor="tester")
    try:
        master_id = known_master(use, clock)
        before = len(types(use))
        with sent(monkeypatch) as queries:
            assert use.set_master_state(master_id, True) is False
        (statement,) = queries  # nor the pool's ROLLBACK: nothing is open
        assert statement.startswith("BEGIN NOT ATOMIC")
        # After the head this process left (the chained statement's end is tested below).
        assert statement.endswith("\nCOMMIT;\nEND")
        *prepared, execute = queries.raw  # prepared by an earlier heartbeat, or now
        assert execute.startswith("EXECUTE mastertrail_")
        assert all(q.startswith("PREPARE mastertrail_") for q in prepared)
        name = execute.split()[1]
        # A new session prepares it once, then executes it (Buildbot's, once its session's
        # lock wait is set: the ordinary way first).
        use.engine.dispose()
        raw = []
        for _ in range(3):
            clock.advance(60)
            with sent(monkeypatch) as again:
                assert use.set_master_state(master_id, True) is False
            raw.append(again.raw)
        assert len([q for r in raw for q in r if q.startswith(f"PREPARE {name} ")]) == 1
        assert raw[-1] == [raw[-1][0]]
        assert raw[-1][0].startswith(f"EXECUTE {name} USING ")
        assert types(use)[before:] == ["master.checked_in"] * 4
        assert head_free(use)
        assert use.verify().ok
    finally:
        if foreign is not None:
            use.close()
            foreign.dispose()


def test_a_session_that_lost_the_statement_prepares_it_again(
    registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server no longer knows the name (deallocated behind the process's back): the
    ``EXECUTE`` fails having run nothing, and the statement is prepared again."""
    master_id = known_master(registry, clock)
    with sent(monkeypatch) as queries:
        assert registry.set_master_state(master_id, True) is False
    name = queries.raw[-1].split()[1]
    with contextlib.ExitStack() as stack:
        for _ in range(registry.engine.pool.checkedin()):  # type: ignore[attr-defined]
            conn = stack.enter_context(registry.engine.connect())
            conn.exec_driver_sql(f"DEALLOCATE PREPARE {name}")
    clock.advance(60)
    before = len(types(registry))
    with sent(monkeypatch) as queries:
        assert registry.set_master_state(master_id, True) is False
    assert [q.split()[:2] for q in queries.raw] == [
        ["EXECUTE", name],
        ["PREPARE", name],
        ["EXECUTE", name],
    ]
    assert types(registry)[before:] == ["master.checked_in"]
    assert head_free(registry)
    assert registry.verify().ok


def test_a_statement_the_server_will_not_prepare_is_sent_as_text(
    registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the server's ``max_prepared_stmt_count`` (a global setting, not changed here:
    the server's refusal is what the driver raises) the heartbeat goes as before."""
    master_id = known_master(registry, clock)
    registry.engine.dispose()  # sessions that prepared nothing yet
    real = sa.Connection.exec_driver_sql

    def exec_driver_sql(self: sa.Connection, sql: str, *args: Any, **kwargs: Any) -> Any:
        if not sql.startswith("PREPARE mastertrail_"):
            return real(self, sql, *args, **kwargs)
        refused.append(sql)
        error = pymysql.err.OperationalError(1461, "Can't create more than max_prepared_stmt_count")
        raise sa.exc.OperationalError(sql, {}, error)

    refused: list[str] = []
    monkeypatch.setattr(sa.Connection, "exec_driver_sql", exec_driver_sql)
    before = len(types(registry))
    for _ in range(3):
        clock.advance(60)
        with sent(monkeypatch) as queries:
            assert registry.set_master_state(master_id, True) is False
        (statement,) = queries.raw
        assert statement.startswith("BEGIN NOT ATOMIC")
        assert statement.endswith("\nCOMMIT;\nEND")
    assert len(refused) == 1  # asked once on the session, which then sends the text
    assert types(registry)[before:] == ["master.checked_in"] * 3
    assert head_free(registry)
    assert registry.verify().ok


def test_a_deactivation_is_a_transaction(
    registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    master_id = known_master(registry, clock)
    with sent(monkeypatch) as queries:
        assert registry.set_master_state(master_id, False) is True
    assert queries[-1] == "COMMIT"  # and no ROLLBACK after it
    assert not any(q.startswith("BEGIN NOT ATOMIC") and "COMMIT;" in q for q in queries)


def in_transaction(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("SELECT @@in_transaction").scalar_one())


def open_in_pool(engine: sa.Engine) -> list[int]:
    """``@@in_transaction`` of every connection waiting in ``engine``'s pool."""
    waiting = engine.pool.checkedin()  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(engine.connect()) for _ in range(waiting)]
        return [in_transaction(conn) for conn in idle]


@pytest.mark.parametrize("engine", ["own", "foreign"])
def test_a_connection_back_in_the_pool_has_no_transaction_open(
    registry: Registry, clock: FakeClock, db_url: str, engine: str
) -> None:
    """The pool's ROLLBACK is left out after a commit only: nothing stays open."""
    foreign = sa.create_engine(db_url) if engine == "foreign" else None
    use = registry if foreign is None else Registry(foreign, clock=clock, actor="tester")
    try:
        master_id = known_master(use, clock)
        for active in (True, False, True):  # at once, then transactions
            clock.advance(60)
            use.set_master_state(master_id, active)
            assert set(open_in_pool(use.engine)) == {0}
    finally:
        if foreign is not None:
            use.close()
            foreign.dispose()


def test_a_read_after_a_commit_is_still_rolled_back_in_the_pool(
    registry: Registry, clock: FakeClock, db_url: str
) -> None:
    """The next call on the connection sees what was committed since: no snapshot kept."""
    master_id = known_master(registry, clock)
    pooled = sa.create_engine(db_url, pool_size=1, max_overflow=0)
    try:
        with pooled.connect() as conn:
            conn.exec_driver_sql("SELECT 1 FROM mastertrail_head FOR UPDATE").all()
            conn.commit()
            ends_only_if_open(conn)
            counted = conn.exec_driver_sql("SELECT COUNT(*) FROM mastertrail_events").scalar()
            assert in_transaction(conn) == 1  # a read opens one
        clock.advance(60)
        registry.set_master_state(master_id, True)  # another connection commits
        with pooled.connect() as conn:
            assert in_transaction(conn) == 0  # the read's was rolled back
            count = conn.exec_driver_sql("SELECT COUNT(*) FROM mastertrail_events").scalar()
            assert count == counted + 1
    finally:
        pooled.dispose()


def test_a_heartbeat_after_another_masters_is_one_statement_too(
    registry: Registry, clock: FakeClock, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chained statement (the head moved by another process: after this master's own
    event) ends with a result: no ``COMMIT`` and no ``ROLLBACK`` after it either."""
    master_id = known_master(registry, clock)
    foreign = sa.create_engine(db_url)
    other = Registry(foreign, clock=clock, actor="tester")
    try:
        other.set_master_state(other.find_master_id("other"), True)
        clock.advance(60)
        with sent(monkeypatch) as queries:
            assert registry.set_master_state(master_id, True) is False
    finally:
        other.close()
        foreign.dispose()
    assert len(queries) == 2  # no COMMIT, no ROLLBACK
    assert queries[0].endswith("\nCOMMIT;\nEND")  # after its own tip: the head moved
    assert queries[-1].endswith("COMMIT;\nSELECT landed_position, landed_hash;\nEND")
    assert types(registry)[-1] == "master.checked_in"
    assert head_free(registry)
    assert registry.verify().ok


@pytest.mark.parametrize("opened", ["statement", "streaming", "begun"])
def test_the_rollback_after_a_commit_is_sent_when_a_transaction_is_open(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, opened: str
) -> None:
    """As the pool rolls back: the driver's ``rollback``, whatever SQLAlchemy knows."""
    with registry.engine.connect() as conn:
        driver: Any = conn.connection.dbapi_connection
        conn.exec_driver_sql("SELECT 1 FROM mastertrail_head FOR UPDATE").all()
        conn.commit()
        ends_only_if_open(conn)
        if opened == "statement":
            conn.exec_driver_sql("SELECT position FROM mastertrail_head FOR UPDATE").all()
        elif opened == "begun":  # not a query: the server's OK says a transaction is open
            driver.begin()
        else:
            streamed = conn.execution_options(stream_results=True).exec_driver_sql(
                "SELECT position FROM mastertrail_head FOR UPDATE"
            )
        with sent(monkeypatch) as queries, contextlib.ExitStack() as stack:
            if opened == "streaming":
                stack.enter_context(pytest.warns(UserWarning, match="unbuffered"))
            driver.rollback()
        assert queries == ["ROLLBACK"]
        assert in_transaction(conn) == 0
        conn.rollback()
        if opened == "streaming":
            streamed.close()
    assert head_free(registry)


def test_a_stream_moved_by_another_process_writes_nothing_and_goes_the_ordinary_way(
    registry: Registry, clock: FakeClock, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    master_id = moved_by_another(registry, clock, db_url)
    with sent(monkeypatch) as queries:
        assert registry.set_master_state(master_id, True) is False
    at_once = [q for q in queries if q.startswith("BEGIN NOT ATOMIC") and "COMMIT;" in q]
    assert len(at_once) == 2  # after its own tip, then after its own event
    assert at_once[1].endswith("COMMIT;\nSELECT landed_position, landed_hash;\nEND")
    assert queries.index(at_once[1]) + 1 < len(queries)
    assert queries[queries.index(at_once[1]) + 1] == "ROLLBACK"  # what it began, undone
    assert "COMMIT" in queries  # then read and written in a transaction
    assert types(registry)[-2:] == ["master.checked_in", "master.checked_in"]
    assert head_free(registry)
    assert registry.verify().ok


def test_an_event_not_found_signals_before_its_commit(registry: Registry, clock: FakeClock) -> None:
    """The statement after a master's own event that is not there (a hash the log does
    not hold) inserts nothing: it moved the head and updated the view first, and neither
    is committed; the caller's rollback ends what it began."""
    master_id = known_master(registry, clock)
    with registry.engine.connect() as conn, registry.engine.connect() as watcher:
        before = head_state(watcher)
        watcher.rollback()
        stored = watcher.exec_driver_sql(
            "SELECT t.digest, m.digest FROM mastertrail_events e "
            "JOIN mastertrail_texts t ON t.id = e.type_id "
            "JOIN mastertrail_texts m ON m.id = e.metadata_id "
            "ORDER BY e.position DESC LIMIT 1"
        ).one()
        watcher.rollback()
        row = {
            "event_id": None,
            "master_id": master_id,
            "version": 99,
            "type_digest": stored[0],
            "schema_version": 1,
            "data": "{}",
            "metadata_digest": stored[1],
            "recorded_at": 0,
        }
        writer = eventstore.mariadb_writer.MariaDBWriter()
        with writing_at_once(conn):
            landed = writer.write_chained(conn, row, b"tail", (98, b"\1" * 32), None)
        assert landed is None
        assert conn.exec_driver_sql("SELECT @@in_transaction").scalar() == 1  # not committed
        assert head_state(watcher) == before
        watcher.rollback()
        conn.rollback()
        assert head_state(conn) == before
        conn.rollback()
    assert head_free(registry)
    assert registry.verify().ok


@pytest.mark.parametrize("ran", [True, False], ids=["after-it-ran", "before-it-ran"])
def test_a_heartbeat_whose_connection_is_lost_lands_once(
    registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, ran: bool
) -> None:
    master_id = known_master(registry, clock)
    before = len(types(registry))
    lost = losing_the_statement(
        monkeypatch,
        sent=ran,
        at_once=lambda conn, sql: sql.startswith("EXECUTE mastertrail_"),
        error=pymysql.err.OperationalError(2013, "Lost connection to server during query"),
    )
    assert registry.set_master_state(master_id, True) is False
    assert lost() == 1
    assert types(registry)[before:] == ["master.checked_in"]
    assert registry.verify().ok
    clock.advance(60)  # what the process remembers afterwards is right
    assert registry.set_master_state(master_id, True) is False
    assert types(registry)[before:] == ["master.checked_in"] * 2
    assert registry.verify().ok


def test_a_session_without_the_logs_lock_wait_goes_the_ordinary_way(
    registry: Registry, clock: FakeClock, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection of an engine made elsewhere, whose session mastertrail has not set
    yet, would wait for a lock as long as the server's default: its first heartbeat is a
    transaction (which sets it), the next ones are sent at once."""
    foreign = sa.create_engine(db_url, pool_size=1, max_overflow=0)
    other = Registry(foreign, clock=clock, actor="tester")
    try:
        master_id = known_master(registry, clock)  # remembered by ``registry`` only
        other.set_master_state(master_id, True)  # ``other`` reads it, then remembers it
        foreign.dispose()  # a new connection, its session not set
        clock.advance(60)
        with sent(monkeypatch) as queries:
            assert other.set_master_state(master_id, True) is False
        assert "COMMIT" in queries
        assert not any(q.startswith("BEGIN NOT ATOMIC") and "COMMIT;" in q for q in queries)
        clock.advance(60)
        with sent(monkeypatch) as queries:
            assert other.set_master_state(master_id, True) is False
        assert len(writes(queries)) == 1
    finally:
        other.close()
        foreign.dispose()
    assert types(registry)[-3:] == ["master.checked_in"] * 3
    assert registry.verify().ok


def test_a_check_in_whose_texts_are_not_stored_goes_the_ordinary_way(
    registry: Registry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    master_id = registry.find_master_id("m")
    registry.set_master_state(master_id, True)  # started: remembered
    clock.advance(60)
    with sent(monkeypatch) as queries:
        assert registry.set_master_state(master_id, True) is False
    assert "mastertrail_texts" in writes(queries)[0]  # found missing
    assert any("INSERT INTO mastertrail_texts" in q for q in queries)
    assert types(registry)[-1] == "master.checked_in"
    assert head_free(registry)
    assert registry.verify().ok

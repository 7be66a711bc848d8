"""Type names and metadata are stored once each, in ``mastertrail_texts``; what an append
caches of them never outlives a rollback."""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from eventstore.texts import digest, text_ids
from tests.test_eventstore import (
    all_events,
    append,
    drop_immutability_triggers,
    new_event,
    wait_for_lock_waiter,
)


def stored_texts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT text, id FROM mastertrail_texts"))
        return {row.text: row.id for row in rows}


class StatementLog:
    """The SQL statements an engine sends while this is open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> list[str]:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self.statements

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)


def test_each_text_is_stored_once(engine: Engine) -> None:
    """Many events of one type and one metadata document store two texts."""
    for version in range(5):
        append(engine, 1, 2 * version, [new_event(), new_event()])
    assert set(stored_texts(engine)) == {
        "test.happened",
        '{"actor":"tester","reason":"test"}',
    }


def test_texts_differing_only_in_case_or_spaces_are_kept_apart(engine: Engine) -> None:
    """Texts are told apart by their bytes, whatever the database's collation thinks."""
    metadata = [{"actor": "Tester"}, {"actor": "tester"}, {"actor": "tester "}, {"actor": "tëster"}]
    append(engine, 1, 0, [new_event(metadata=m) for m in metadata])
    assert [event.metadata for event in all_events(engine)] == metadata
    assert eventstore.verify_chain(engine).ok


def test_an_append_of_known_texts_sends_no_statement_for_them(engine: Engine) -> None:
    """Once a process knows its texts are committed, its appends send no statement for
    them: on SQLite, where the append that stored them may yet be rolled back, from the
    append after the one that finds them committed; elsewhere, where a new text is
    committed apart at once, from the append after the one that stored them."""
    append(engine, 1, 0, [new_event()])  # stores them
    with StatementLog(engine) as statements:
        append(engine, 1, 1, [new_event()])
    looked_up = [s for s in statements if "mastertrail_texts" in s]
    assert bool(looked_up) is (engine.dialect.name == "sqlite")
    with StatementLog(engine) as statements:
        append(engine, 1, 2, [new_event()])
    assert statements
    assert not [s for s in statements if "mastertrail_texts" in s]


def test_a_rolled_back_append_leaves_no_stale_id(engine: Engine) -> None:
    """After an append that stored a new text is rolled back, the next append of that
    text works and its event reads back with it. On SQLite the text went with the rollback
    (and its id may be taken by another text); elsewhere it was stored apart, committed,
    and stays."""
    with engine.connect() as conn:
        conn.begin()
        eventstore.append(conn, 1, 0, [new_event("test.first")])
        conn.rollback()
    kept = "test.first" in stored_texts(engine)
    assert kept is (engine.dialect.name != "sqlite")
    append(engine, 2, 0, [new_event("test.other")])  # may take the id the rollback freed
    append(engine, 1, 0, [new_event("test.first")])
    assert [event.type for event in all_events(engine)] == ["test.other", "test.first"]
    assert eventstore.verify_chain(engine).ok


def test_texts_stored_in_one_transaction_serve_its_later_appends(engine: Engine) -> None:
    with engine.begin() as conn:
        eventstore.append(conn, 1, 0, [new_event("test.first")])
        eventstore.append(conn, 2, 0, [new_event("test.first")])
    assert list(stored_texts(engine)).count("test.first") == 1
    assert [event.type for event in all_events(engine)] == ["test.first"] * 2


def test_a_text_changed_behind_the_digest_is_refused(engine: Engine) -> None:
    """A stored text that no longer matches its digest is never handed out as an id."""
    with engine.begin() as conn:
        text_ids(conn, ["test.kept"])
        drop_immutability_triggers(conn)
        conn.execute(sa.text("UPDATE mastertrail_texts SET text = 'test.forged'"))
    fresh = eventstore.create_engine(
        engine.url.render_as_string(hide_password=False)
    )  # nothing cached
    try:
        with fresh.begin() as conn, pytest.raises(eventstore.DecodeError, match="digest"):
            text_ids(conn, ["test.kept"])
    finally:
        fresh.dispose()


def test_the_digest_is_the_sha256_of_the_text() -> None:
    assert digest("abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


SPAWN = multiprocessing.get_context("spawn")
STORERS = 4
SHARED_TEXTS = [f"test.shared_{n}" for n in range(6)]


def store_when_released(url: str, order: int, start: Barrier, ids: Queue[dict[str, int]]) -> None:
    """Store :data:`SHARED_TEXTS` (in an order of this process's own) in one transaction,
    once every process is ready; report the ids it got."""
    engine = eventstore.create_engine(url)
    values = SHARED_TEXTS[order:] + SHARED_TEXTS[:order]
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":  # there BEGIN IMMEDIATE would wait for the others
            conn.execute(sa.text("SELECT 1"))  # connected, in a transaction already
        start.wait()
        got = text_ids(conn, values)
        conn.commit()
    ids.put(got)
    engine.dispose()


def test_processes_storing_the_same_new_texts_at_once_share_one_id_each(
    db_url: str, engine: Engine
) -> None:
    """Writers storing the same new texts at the same moment neither fail nor deadlock:
    each text is stored once and every writer gets its id."""
    start, results = SPAWN.Barrier(STORERS + 1), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=store_when_released, args=(db_url, n, start, results), daemon=True)
        for n in range(STORERS)
    ]
    for process in processes:
        process.start()
    try:
        start.wait(timeout=60)
        got = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    assert [process.exitcode for process in processes] == [0] * STORERS
    stored = stored_texts(engine)
    assert {text: stored[text] for text in SHARED_TEXTS} == got[0]
    assert all(ids == got[0] for ids in got)


def test_a_heartbeat_and_an_append_storing_one_new_text_do_not_deadlock(
    engine: Engine, backend: str
) -> None:
    """An append locks the log's head before it stores its texts; a heartbeat
    (``append_after``) stores them before it moves the head. With the same new text, neither
    waits for the other in a cycle: the heartbeat waits for the head, the append goes
    through, and the heartbeat finds the head moved (a conflict its command retries)."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: the heartbeat waits at BEGIN")
    append(engine, 1, 0, [new_event()])
    outcome: list[BaseException | None] = []

    def heartbeat() -> None:
        with engine.connect() as conn:
            conn.begin()
            seen = eventstore.read_head(conn)
            version = eventstore.stream_version(conn, 1)
            try:
                eventstore.append_after(conn, seen, 1, version, [new_event("test.new")])
                outcome.append(None)
            except BaseException as error:
                outcome.append(error)
            conn.rollback()

    with engine.connect() as holder:
        holder.begin()
        locked = eventstore.lock_head(holder)
        thread = threading.Thread(target=heartbeat)
        thread.start()
        wait_for_lock_waiter(engine, backend)  # the heartbeat waits for the head
        eventstore.append(holder, 2, 0, [new_event("test.new")], locked=locked)
        holder.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], eventstore.ConcurrencyError)
    assert [event.type for event in all_events(engine)] == ["test.happened", "test.new"]


def test_a_broken_connection_makes_the_engine_forget_its_ids(engine: Engine, backend: str) -> None:
    """Ids are cached only while the database is known to be the same: once a connection
    is found broken (a restart, perhaps of a restored database), they are looked up again."""
    if backend == "sqlite":
        pytest.skip("a server connection killed by the server")
    append(engine, 1, 0, [new_event()])
    append(engine, 1, 1, [new_event()])  # now known committed, and cached
    with StatementLog(engine) as statements:
        append(engine, 1, 2, [new_event()])
    assert not [s for s in statements if "mastertrail_texts" in s]
    with engine.connect() as victim, engine.connect() as killer:
        dbapi: Any = victim.connection.dbapi_connection
        if backend == "postgresql":
            killer.execute(
                sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": dbapi.info.backend_pid}
            )
        else:
            killer.exec_driver_sql(f"KILL {int(dbapi.thread_id())}")
        with pytest.raises(sa.exc.DBAPIError):
            victim.execute(sa.text("SELECT 1"))
    with StatementLog(engine) as statements:
        append(engine, 1, 3, [new_event()])
    assert [s for s in statements if "mastertrail_texts" in s]
    assert [e.version for e in all_events(engine)] == [1, 2, 3, 4]

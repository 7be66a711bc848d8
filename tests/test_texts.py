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
from eventstore import AfterOwn, AfterSeen, texts
from eventstore.schema import texts as texts_table
from eventstore.texts import digest, text_ids
from tests.eventstore_support import (
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
    """The statements an engine sends while this is open: the statement object where
    SQLAlchemy compiled one, else the SQL as sent."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[object] = []

    def _record(
        self, _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, *_: Any
    ) -> None:
        compiled = getattr(context, "compiled", None)
        self.statements.append(statement if compiled is None else compiled.statement)

    def __enter__(self) -> list[object]:
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


def texts_sent(statements: list[object]) -> list[object]:
    """The statements that look texts up or store them (not the writes that name them),
    known by their statement object: a select from the texts table or an insert into it."""
    return [
        s
        for s in statements
        if (isinstance(s, sa.Select) and texts_table in s.get_final_froms())
        or (isinstance(s, sa.Insert) and s.table is texts_table)
    ]


def test_an_append_of_known_texts_sends_no_statement_for_them(engine: Engine) -> None:
    """Once a process knows its texts are committed, its appends send no statement for
    them: the append that stored them may yet be rolled back, so from the append after
    the one that finds them committed."""
    append(engine, 1, 0, [new_event()])  # stores them
    with StatementLog(engine) as statements:
        append(engine, 1, 1, [new_event()])
    assert texts_sent(statements)
    with StatementLog(engine) as statements:
        append(engine, 1, 2, [new_event()])
    assert statements
    assert not texts_sent(statements)


def test_a_rolled_back_append_leaves_no_stale_id(engine: Engine) -> None:
    """After an append that stored a new text is rolled back, the text is gone with it
    (its id may be taken by another text), and the next append of that text stores it
    again and reads back with it."""
    with engine.connect() as conn:
        conn.begin()
        eventstore.append(conn, 1, 0, [new_event("test.first")])
        conn.rollback()
    assert "test.first" not in stored_texts(engine)
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
STARTUP_BOUND = 300
SHARED_TEXTS = [f"test.shared_{n}" for n in range(6)]


def store_when_released(url: str, order: int, start: Barrier, ids: Queue[int]) -> None:
    """Append events of :data:`SHARED_TEXTS` (in an order of this process's own) as a
    heartbeat does, once every process is ready, retrying when another moved the head;
    report the master it appended to."""
    engine = eventstore.create_engine(url)
    values = SHARED_TEXTS[order:] + SHARED_TEXTS[:order]
    master_id = order + 1
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # connected, in a transaction already
        conn.rollback()
        start.wait()
        while True:
            conn.begin()
            seen = eventstore.read_head(conn)
            try:
                eventstore.append(
                    conn, master_id, AfterSeen(0, seen), [new_event(v) for v in values]
                )
                conn.commit()
                break
            except eventstore.ConcurrencyError:
                conn.rollback()
    ids.put(master_id)
    engine.dispose()


def test_processes_storing_the_same_new_texts_at_once_share_one_id_each(
    db_url: str, engine: Engine
) -> None:
    """Writers storing the same new texts at the same moment neither fail nor deadlock:
    each text is stored once and every event names it."""
    start, results = SPAWN.Barrier(STORERS + 1), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=store_when_released, args=(db_url, n, start, results), daemon=True)
        for n in range(STORERS)
    ]
    for process in processes:
        process.start()
    try:
        # Generous bounds, for a deadlock only: on a loaded machine, spawning and importing
        # four interpreters alone can take tens of seconds.
        start.wait(timeout=STARTUP_BOUND)
        got = [results.get(timeout=STARTUP_BOUND) for _ in processes]
        for process in processes:
            process.join(timeout=STARTUP_BOUND)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    assert [process.exitcode for process in processes] == [0] * STORERS
    assert sorted(got) == list(range(1, STORERS + 1))
    assert sorted(stored_texts(engine)) == sorted(
        [*SHARED_TEXTS, '{"actor":"tester","reason":"test"}']
    )
    events = all_events(engine)
    assert sorted(e.type for e in events) == sorted(SHARED_TEXTS * STORERS)
    assert eventstore.verify_chain(engine).ok


def test_a_heartbeat_and_an_append_storing_one_new_text_do_not_deadlock(
    engine: Engine, backend: str
) -> None:
    """Every writer locks the log's head before it stores a new text, a heartbeat
    (``AfterSeen``) too. With the same new text, neither waits for the other in a
    cycle: the heartbeat waits for the head, the append goes through, and the heartbeat
    finds the head moved (a conflict its command retries)."""
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
                eventstore.append(conn, 1, AfterSeen(version, seen), [new_event("test.new")])
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


def test_a_text_wrongly_remembered_as_stored_fails_the_write_and_writes_nothing(
    engine: Engine, backend: str
) -> None:
    """A write that names a text by a digest no stored text has (the process remembered
    it stored: a restore took it away) raises TextNotStored and writes nothing, through
    each writer, on MariaDB under a non-strict ``sql_mode`` too."""
    if backend == "mysql":

        def non_strict(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = ''")

        sa.event.listen(engine, "connect", non_strict)
        engine.dispose()
    append(engine, 1, 0, [new_event()])
    (first,) = all_events(engine)
    writes = {
        "append": lambda conn: eventstore.append(conn, 1, 1, [new_event("test.gone")]),
        "after_seen": lambda conn: eventstore.append(
            conn, 1, AfterSeen(1, eventstore.read_head(conn)), [new_event("test.gone")]
        ),
    }
    if eventstore.writer_for(engine).chains_in_database:
        last = eventstore.Tip(first.position, bytes.fromhex(first.hash))
        writes["after_own"] = lambda conn: eventstore.append(
            conn, 1, AfterOwn(1, last), [new_event("test.gone")]
        )
    for name, write in writes.items():
        texts._KNOWN.setdefault(engine, set()).add(digest("test.gone"))
        with engine.connect() as conn:
            conn.begin()
            with pytest.raises(eventstore.TextNotStored):
                write(conn)
            conn.rollback()
        assert texts._KNOWN.get(engine) is None, name  # forgotten: the next attempt stores
    assert [event.type for event in all_events(engine)] == ["test.happened"]
    with engine.begin() as conn:
        eventstore.append(conn, 1, 1, [new_event("test.gone")])
    assert [event.type for event in all_events(engine)] == ["test.happened", "test.gone"]
    assert eventstore.verify_chain(engine).ok

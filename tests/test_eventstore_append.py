"""The event store's appends under an expectation: a stream version, the head read
before, the tip of the stream written last."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from eventstore import (
    AfterOwn,
    AfterSeen,
    ConcurrencyError,
    EventIdConflict,
    NewEvent,
)
from eventstore.engine import reading
from tests.eventstore_support import (
    all_events,
    append,
    count_events,
    head,
    new_event,
    once_the_head_lock_is_released,
)


class TestConcurrencyConflict:
    """A stale expected version is refused."""

    @pytest.mark.parametrize("expected", [0, 1, 3])
    def test_stale_expected_version_raises_and_writes_nothing(
        self, engine: Engine, expected: int
    ) -> None:
        """Appending at a stale or future version raises ConcurrencyError and writes nothing."""
        append(engine, 1, 0, [new_event(), new_event()])
        with pytest.raises(ConcurrencyError) as caught:
            append(engine, 1, expected, [new_event()])
        assert (caught.value.master_id, caught.value.expected, caught.value.actual) == (
            1,
            expected,
            2,
        )
        assert isinstance(caught.value, eventstore.RegistryError)
        assert head(engine) == 2
        assert count_events(engine) == 2
        with reading(engine) as conn:
            assert eventstore.stream_version(conn, 1) == 2

    def test_other_streams_do_not_conflict(self, engine: Engine) -> None:
        """The expected version is per master: another master's appends do not make it stale."""
        append(engine, 1, 0, [new_event()])
        append(engine, 2, 0, [new_event()])
        assert append(engine, 1, 1, [new_event()]).positions == (3,)


class TestAppendAfter:
    """``AfterSeen``: the heartbeat's append after an unlocked read of the head."""

    @pytest.fixture
    def counters(self, engine: Engine) -> Iterator[sa.Table]:
        """A caller's table for ``also`` (as the view is for the registry)."""
        table = sa.Table(
            "test_counters",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("n", sa.Integer, nullable=False),
        )
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(table.insert().values(id=1, n=0))
        yield table
        with engine.begin() as conn:
            table.drop(conn)

    @staticmethod
    def bump(table: sa.Table, n: int) -> eventstore.ViewUpdate:
        statement = (
            table.update().where(table.c.id == sa.bindparam("c_id")).values(n=sa.bindparam("c_n"))
        )
        return statement, {"c_id": 1, "c_n": n}

    @staticmethod
    def counter(engine: Engine, table: sa.Table) -> int:
        with reading(engine) as conn:
            return int(conn.execute(sa.select(table.c.n)).scalar_one())

    def test_appends_after_the_head_read_and_runs_also(
        self, engine: Engine, counters: sa.Table
    ) -> None:
        """Batches land right after the head read, chained, with the caller's update."""
        append(engine, 1, 0, [new_event()])
        for expected, size in ((1, 1), (2, 3)):
            with engine.begin() as conn:
                seen = eventstore.read_head(conn)
                result = eventstore.append(
                    conn,
                    1,
                    AfterSeen(expected, seen),
                    [new_event(data={"k": i}) for i in range(size)],
                    view_update=self.bump(counters, expected),
                )
            assert result.positions == tuple(range(seen.position + 1, seen.position + 1 + size))
        assert head(engine) == 5
        with reading(engine) as conn:
            assert [e.version for e in eventstore.read_stream(conn, 1)] == [1, 2, 3, 4, 5]
            assert eventstore.read_head(conn).position == 5
        assert self.counter(engine, counters) == 2
        assert eventstore.verify_chain(engine).ok

    def test_a_head_that_moved_since_the_read_writes_nothing(
        self, engine: Engine, counters: sa.Table
    ) -> None:
        """Another append between the read and the append: ConcurrencyError, and neither
        the event, nor the head, nor the caller's update is written."""
        append(engine, 1, 0, [new_event()])
        with reading(engine) as conn:
            seen = eventstore.read_head(conn)
        append(engine, 2, 0, [new_event()])
        with pytest.raises(ConcurrencyError) as caught, engine.begin() as conn:
            eventstore.append(
                conn, 1, AfterSeen(1, seen), [new_event()], view_update=self.bump(counters, 9)
            )
        assert caught.value.actual is None
        assert "moved on" in str(caught.value)
        assert (head(engine), count_events(engine), self.counter(engine, counters)) == (2, 2, 0)
        assert eventstore.verify_chain(engine).ok

    def test_a_head_moved_by_a_writer_it_waited_for_writes_nothing(
        self, engine: Engine, counters: sa.Table, backend: str
    ) -> None:
        """The read happens, another writer takes the lock and appends, the append
        waits for that lock, the writer commits: the waiting append sees the moved head (not
        its old snapshot) and writes nothing."""
        if backend == "sqlite":
            pytest.skip("SQLite's BEGIN IMMEDIATE takes the write lock before any read")
        append(engine, 1, 0, [new_event()])
        with engine.connect() as reader:
            reader.begin()
            seen = eventstore.read_head(reader)
            version = eventstore.stream_version(reader, 1)
            outcome = once_the_head_lock_is_released(
                engine,
                backend,
                lambda: eventstore.append(
                    reader,
                    1,
                    AfterSeen(version, seen),
                    [new_event()],
                    view_update=self.bump(counters, 9),
                ),
            )
            reader.rollback()
        assert isinstance(outcome, ConcurrencyError), outcome
        assert (head(engine), count_events(engine), self.counter(engine, counters)) == (2, 2, 0)
        assert eventstore.verify_chain(engine).ok

    def test_a_stored_event_id_raises_event_id_conflict(self, engine: Engine) -> None:
        """An event id already in the log is refused; rolled back, nothing is written."""
        stored = new_event()
        append(engine, 1, 0, [stored])
        with pytest.raises(EventIdConflict), engine.begin() as conn:
            eventstore.append(conn, 2, AfterSeen(0, eventstore.read_head(conn)), [stored])
        assert (head(engine), count_events(engine)) == (1, 1)

    def test_refuses_an_empty_batch(self, engine: Engine) -> None:
        with pytest.raises(ValueError, match="at least one event"), engine.begin() as conn:
            eventstore.append(conn, 1, AfterSeen(0, eventstore.read_head(conn)), [])


def after_own(version: int, last_hash: bytes | None) -> AfterOwn:
    """The stream's newest event, at ``version``, known by its hash."""
    return AfterOwn(version, None if last_hash is None else eventstore.Tip(0, last_hash))


class TestAppendChained:
    """``AfterOwn``: one event numbered and chained by the database itself, after
    wherever the head is, if the stream's newest event is the one the caller knows."""

    @pytest.fixture(autouse=True)
    def _chaining(self, engine: Engine) -> None:
        if not eventstore.writer_for(engine).chains_in_database:
            pytest.skip("SQLite has no SHA-256 to chain with")

    @staticmethod
    def chained(
        engine: Engine, master_id: int, version: int, last: bytes | None, event: NewEvent
    ) -> eventstore.AppendResult:
        with engine.begin() as conn:
            return eventstore.append(conn, master_id, after_own(version, last), [event])

    def test_streams_new_and_old_chain_as_verify_recomputes(self, engine: Engine) -> None:
        """From an empty stream on, between another stream's appends, with data and
        metadata beyond ASCII: positions follow the head, and the hashes are Python's."""
        append(engine, 2, 0, [new_event()])
        first = self.chained(engine, 1, 0, None, new_event(data={"n": "ü€"}))
        append(engine, 2, 1, [new_event(), new_event()])
        clef = "\N{MUSICAL SYMBOL G CLEF}"
        second = self.chained(engine, 1, 1, first.hash, new_event(metadata={"actor": clef}))
        assert (first.positions, second.positions) == ((2,), (5,))
        stored = all_events(engine)
        assert [(e.position, e.master_id, e.version) for e in stored] == [
            (1, 2, 1),
            (2, 1, 1),
            (3, 2, 2),
            (4, 2, 3),
            (5, 1, 2),
        ]
        assert [first.hash, second.hash] == [bytes.fromhex(stored[i].hash) for i in (1, 4)]
        assert stored[4].metadata == {"actor": clef}
        assert eventstore.verify_chain(engine).ok

    @pytest.mark.parametrize(
        ("version", "last"),
        [(0, None), (1, 0), (3, 1), (2, 0), (2, None)],
        ids=[
            "stream ahead of empty",
            "stream ahead",
            "stream behind",
            "same version, another history",
            "same version, no hash",
        ],
    )
    def test_a_stream_elsewhere_writes_nothing(
        self, engine: Engine, version: int, last: int | None
    ) -> None:
        """The stream (two events) is not where the caller knows it: a conflict, or, for
        what cannot describe a stream at all, a ValueError; nothing written either way."""
        append(engine, 1, 0, [new_event(), new_event()])
        before = all_events(engine)
        last_hash = None if last is None else bytes.fromhex(before[last].hash)
        expected: type[Exception] = (
            ValueError if (last is None) != (version == 0) else (ConcurrencyError)
        )
        with pytest.raises(expected), engine.begin() as conn:
            eventstore.append(conn, 1, after_own(version, last_hash), [new_event()])
        assert all_events(engine) == before
        assert head(engine) == 2

    def test_a_stream_moved_while_waiting_for_the_head_writes_nothing(
        self, engine: Engine, backend: str
    ) -> None:
        """An append to the same stream holds the head's lock; the chained append waits
        for it, then finds the next version taken (PostgreSQL's snapshot predates the
        wait: its stream constraint refuses the insert) and writes nothing."""
        first = append(engine, 1, 0, [new_event()])
        with engine.connect() as waiting:
            waiting.begin()
            outcome = once_the_head_lock_is_released(
                engine,
                backend,
                lambda: eventstore.append(waiting, 1, after_own(1, first.hash), [new_event()]),
            )
            waiting.rollback()
        assert isinstance(outcome, ConcurrencyError), outcome
        assert (head(engine), count_events(engine)) == (2, 2)
        assert eventstore.verify_chain(engine).ok

"""The event store's contract, written once and run on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import eventstore
import eventstore.fused
from eventstore import (
    ConcurrencyError,
    EventIdConflict,
    NewEvent,
    RecordedEvent,
    StoreUnavailable,
)
from eventstore.engine import reading
from eventstore.errors import InvalidArgument
from eventstore.ids import derived_event_id
from eventstore.schema import events
from tests.tamper_support import drop_guards

#: 2023-11-14T22:13:20.123456Z in microseconds since the epoch.
T0 = 1_700_000_000_123_456


def new_event(
    type: str = "test.happened",
    data: dict[str, Any] | None = None,
    *,
    recorded_at: int = T0,
    event_id: uuid.UUID | None = None,
    metadata: dict[str, Any] | None = None,
    schema_version: int = 1,
) -> NewEvent:
    """An encoded event ready to append."""
    return NewEvent(
        event_id=event_id or uuid.uuid4(),
        type=type,
        schema_version=schema_version,
        data={} if data is None else data,
        metadata={"actor": "tester", "reason": "test"} if metadata is None else metadata,
        recorded_at=recorded_at,
    )


def append(
    engine: Engine, master_id: int, expected: int, batch: Sequence[NewEvent]
) -> eventstore.AppendResult:
    """Append ``batch`` in a transaction of its own."""
    with engine.begin() as conn:
        return eventstore.append(conn, master_id, expected, batch)


def head(engine: Engine) -> int:
    with reading(engine) as conn:
        return eventstore.head_position(conn)


def count_events(engine: Engine) -> int:
    with reading(engine) as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM mastertrail_events")).scalar_one())


def all_events(engine: Engine) -> list[RecordedEvent]:
    with reading(engine) as conn:
        return eventstore.read_after(conn, 0, limit=1_000_000)


def micros(when: dt.datetime) -> int:
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


class TestRoundTrip:
    """What is appended reads back exactly, through every reader."""

    @pytest.fixture
    def appended(self, engine: Engine) -> dict[int, list[NewEvent]]:
        """Two streams written in three interleaved batches (positions 1..6)."""
        first = [
            new_event(
                "master.registered",
                {"name": "héllo:/srv/master ✓", "last_active": 1_700_000_000},
                recorded_at=T0,
                metadata={"actor": "a", "host": "h", "pid": 1, "reason": "started"},
            ),
            new_event(
                "master.activated",
                {"last_active": 1_700_000_060, "nested": {"list": [1, 2.5, None, True]}},
                recorded_at=T0 + 60_000_000,
            ),
        ]
        second = [new_event("master.registered", {"name": "other"}, recorded_at=T0 + 1)]
        third = [
            new_event("master.checked_in", {"last_active": n}, recorded_at=T0 + 120_000_000 + n)
            for n in range(3)
        ]
        assert append(engine, 1, 0, first).positions == (1, 2)
        assert append(engine, 2, 0, second).positions == (3,)
        assert append(engine, 1, 2, third).positions == (4, 5, 6)
        return {1: first + third, 2: second}

    @staticmethod
    def assert_same(recorded: RecordedEvent, new: NewEvent, master_id: int, version: int) -> None:
        assert recorded.event_id == new.event_id
        assert recorded.master_id == master_id
        assert recorded.version == version
        assert recorded.type == new.type
        assert recorded.schema_version == new.schema_version
        assert recorded.data == new.data
        assert recorded.metadata == new.metadata
        assert recorded.recorded_at.utcoffset() == dt.timedelta(0)
        assert micros(recorded.recorded_at) == new.recorded_at
        assert len(bytes.fromhex(recorded.hash)) == 32

    def test_read_stream_returns_each_stream_in_version_order(
        self, engine: Engine, appended: dict[int, list[NewEvent]]
    ) -> None:
        """read_stream returns one master's events with versions 1..n, exactly as appended."""
        with reading(engine) as conn:
            for master_id, batch in appended.items():
                stream = eventstore.read_stream(conn, master_id)
                assert [e.version for e in stream] == list(range(1, len(batch) + 1))
                for version, (recorded, new) in enumerate(zip(stream, batch, strict=True), 1):
                    self.assert_same(recorded, new, master_id, version)
            assert [e.position for e in eventstore.read_stream(conn, 1)] == [1, 2, 4, 5, 6]
            assert [e.version for e in eventstore.read_stream(conn, 1, from_version=3)] == [3, 4, 5]
            assert [e.version for e in eventstore.read_stream(conn, 1, limit=2)] == [1, 2]
            assert eventstore.read_stream(conn, 99) == []

    def test_read_after_returns_the_log_gap_free_in_position_order(
        self, engine: Engine, appended: dict[int, list[NewEvent]]
    ) -> None:
        """read_after returns the events after a position, at most limit, positions gap-free."""
        with reading(engine) as conn:
            log = eventstore.read_after(conn, 0)
            assert [e.position for e in log] == [1, 2, 3, 4, 5, 6]
            assert [e.event_id for e in log] == [
                appended[1][0].event_id,
                appended[1][1].event_id,
                appended[2][0].event_id,
                *(new.event_id for new in appended[1][2:]),
            ]
            assert [e.position for e in eventstore.read_after(conn, 2, limit=2)] == [3, 4]
            assert eventstore.read_after(conn, 6) == []

    def test_read_range_selects_by_recorded_at_and_master(
        self, engine: Engine, appended: dict[int, list[NewEvent]]
    ) -> None:
        """read_range returns the events recorded in [since, until], both ends inclusive."""
        with reading(engine) as conn:
            assert [e.position for e in eventstore.read_range(conn)] == [1, 2, 3, 4, 5, 6]
            assert [e.position for e in eventstore.read_range(conn, since=T0 + 1)] == [
                2,
                3,
                4,
                5,
                6,
            ]
            assert [e.position for e in eventstore.read_range(conn, until=T0 + 1)] == [1, 3]
            window = eventstore.read_range(conn, since=T0 + 1, until=T0 + 120_000_001)
            assert [e.position for e in window] == [2, 3, 4, 5]
            assert [e.position for e in eventstore.read_range(conn, master_id=2)] == [3]
            assert eventstore.read_range(conn, since=T0 + 10**12) == []

    def test_read_range_across_minutes_with_times_out_of_order(self, engine: Engine) -> None:
        """Ends on, next to and between minute boundaries (SQLite's time index holds
        minutes), with times out of log order: the events in [since, until] exactly."""
        minute = 60_000_000
        start = T0 - T0 % minute  # a minute boundary
        offsets = [5, minute - 1, minute, 3 * minute + 7, minute + 1, 0, 2 * minute, -1]
        for version, offset in enumerate(offsets, 1):
            append(engine, 1, version - 1, [new_event(recorded_at=start + offset)])
        log = all_events(engine)
        ends = sorted({start + o + d for o in (*offsets, 90_000_000) for d in (-1, 0, 1)})
        with reading(engine) as conn:
            for since in ends[::3]:
                for until in ends:
                    found = [
                        e.position for e in eventstore.read_range(conn, since=since, until=until)
                    ]
                    wanted = [e.position for e in log if since <= micros(e.recorded_at) <= until]
                    assert found == wanted, (since - start, until - start)

    def test_iter_log_streams_every_event_in_batches(
        self, engine: Engine, appended: dict[int, list[NewEvent]]
    ) -> None:
        """iter_log yields the whole log in position order across batch boundaries."""
        every = list(eventstore.iter_log(engine, batch_size=2))
        assert [e.position for e in every] == [1, 2, 3, 4, 5, 6]
        assert every == all_events(engine)
        assert [e.position for e in eventstore.iter_log(engine, after=2, batch_size=3)] == [
            3,
            4,
            5,
            6,
        ]
        assert [e.position for e in eventstore.iter_log(engine, after=1, limit=3)] == [2, 3, 4]
        assert list(eventstore.iter_log(engine, after=6)) == []

    def test_head_position_is_the_newest_position(
        self, engine: Engine, appended: dict[int, list[NewEvent]]
    ) -> None:
        """head_position is the position of the newest event, and verify_chain accepts the log."""
        assert head(engine) == 6
        assert eventstore.verify_chain(engine).ok

    def test_empty_log_reads_empty(self, engine: Engine) -> None:
        """A fresh log has head 0 and every reader returns nothing."""
        assert head(engine) == 0
        assert list(eventstore.iter_log(engine)) == []
        with reading(engine) as conn:
            assert eventstore.read_after(conn) == []
            assert eventstore.stream_version(conn, 1) == 0
        report = eventstore.verify_chain(engine)
        assert report.ok
        assert report.checked == 0

    def test_stored_event_decodes_with_the_catalogue(self, engine: Engine) -> None:
        """An event encoded with the catalogue's codec decodes back equal after storage."""
        event = eventstore.events.MasterDeactivated(last_active=1_700_000_000, timeout=600)
        type_name, schema_version, data = eventstore.CODEC.encode(event)
        append(engine, 7, 0, [new_event(type_name, data, schema_version=schema_version)])
        with reading(engine) as conn:
            (recorded,) = eventstore.read_stream(conn, 7)
        assert eventstore.CODEC.decode(recorded) == event

    def test_append_refuses_an_empty_batch(self, engine: Engine) -> None:
        """Appending no events is a ValueError and writes nothing."""
        with pytest.raises(ValueError, match="at least one"):
            append(engine, 1, 0, [])
        assert head(engine) == 0


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
    """``append_after``: the heartbeat's append after an unlocked read of the head."""

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
    def bump(table: sa.Table, n: int) -> eventstore.fused.Also:
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
                result = eventstore.append_after(
                    conn,
                    seen,
                    1,
                    expected,
                    [new_event(data={"k": i}) for i in range(size)],
                    also=self.bump(counters, expected),
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
        """Another append between the read and append_after: ConcurrencyError, and neither
        the event, nor the head, nor the caller's update is written."""
        append(engine, 1, 0, [new_event()])
        with reading(engine) as conn:
            seen = eventstore.read_head(conn)
        append(engine, 2, 0, [new_event()])
        with pytest.raises(ConcurrencyError) as caught, engine.begin() as conn:
            eventstore.append_after(conn, seen, 1, 1, [new_event()], also=self.bump(counters, 9))
        assert caught.value.actual is None
        assert "moved on" in str(caught.value)
        assert (head(engine), count_events(engine), self.counter(engine, counters)) == (2, 2, 0)
        assert eventstore.verify_chain(engine).ok

    def test_a_head_moved_by_a_writer_it_waited_for_writes_nothing(
        self, engine: Engine, counters: sa.Table, backend: str
    ) -> None:
        """The read happens, another writer takes the lock and appends, the append_after
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
                lambda: eventstore.append_after(
                    reader, seen, 1, version, [new_event()], also=self.bump(counters, 9)
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
            eventstore.append_after(conn, eventstore.read_head(conn), 2, 0, [stored])
        assert (head(engine), count_events(engine)) == (1, 1)

    def test_refuses_an_empty_batch(self, engine: Engine) -> None:
        with pytest.raises(ValueError, match="at least one event"), engine.begin() as conn:
            eventstore.append_after(conn, eventstore.read_head(conn), 1, 0, [])


class TestAppendChained:
    """``append_chained``: one event numbered and chained by the database itself, after
    wherever the head is, if the stream's newest event is the one the caller knows."""

    @pytest.fixture(autouse=True)
    def _chaining(self, engine: Engine) -> None:
        if not eventstore.fused.chains_in_database(engine.dialect):
            pytest.skip("SQLite has no SHA-256 to chain with")

    @staticmethod
    def chained(
        engine: Engine, master_id: int, version: int, last: bytes | None, event: NewEvent
    ) -> eventstore.AppendResult:
        with engine.begin() as conn:
            return eventstore.append_chained(conn, master_id, version, last, event)

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
            eventstore.append_chained(conn, 1, version, last_hash, new_event())
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
                lambda: eventstore.append_chained(waiting, 1, 1, first.hash, new_event()),
            )
            waiting.rollback()
        assert isinstance(outcome, ConcurrencyError), outcome
        assert (head(engine), count_events(engine)) == (2, 2)
        assert eventstore.verify_chain(engine).ok


def once_the_head_lock_is_released(
    engine: Engine, backend: str, late: Callable[[], object]
) -> object:
    """Run ``late`` in a thread while another transaction holds the head's lock, having
    appended version 2 of master 1's stream; commit that transaction once ``late`` waits
    for the lock, and return what ``late`` returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(late())
        except BaseException as error:
            outcome.append(error)

    with engine.connect() as writer:
        writer.begin()
        eventstore.append(writer, 1, 1, [new_event()])  # holds the head lock
        thread = threading.Thread(target=run)
        thread.start()
        wait_for_lock_waiter(engine, backend)
        writer.commit()
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert len(outcome) == 1
    return outcome[0]


def wait_for_lock_waiter(engine: Engine, backend: str, deadline: float = 30.0) -> None:
    """Return once some transaction of the server waits for a row lock."""
    query = {
        "postgresql": "SELECT count(*) FROM pg_locks WHERE NOT granted",
        "mysql": "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'",
    }[backend]
    # InnoDB refreshes its transaction tables only once they have gone unread for 0.1 s:
    # polled faster, they never show a wait that began after the first look.
    pause = 0.15 if backend == "mysql" else 0.005
    give_up = time.monotonic() + deadline
    with engine.connect() as conn:
        while not conn.execute(sa.text(query)).scalar():
            conn.rollback()
            assert time.monotonic() < give_up, "no transaction ever waited for the lock"
            time.sleep(pause)


class TestIdempotentRetry:
    """Re-appending what is stored is safe; reusing an id for something else is not."""

    def test_reappending_a_stored_batch_returns_its_positions(self, engine: Engine) -> None:
        """A retried batch returns its original positions, marked duplicate, and writes nothing."""
        batch = [new_event(), new_event()]
        first = append(engine, 1, 0, batch)
        append(engine, 2, 0, [new_event()])
        retry = append(engine, 1, 0, batch)
        assert retry.positions == first.positions == (1, 2)
        assert retry.duplicate is True
        assert first.duplicate is False
        assert head(engine) == 3
        assert count_events(engine) == 3

    def test_retry_after_the_stream_moved_on_returns_original_positions(
        self, engine: Engine
    ) -> None:
        """A batch retried after later appends to its stream still returns its own positions."""
        batch = [new_event()]
        append(engine, 1, 0, batch)
        append(engine, 1, 1, [new_event()])
        assert append(engine, 1, 0, batch).positions == (1,)
        assert head(engine) == 2

    @pytest.mark.parametrize("expected", [0, 1], ids=["stale", "current"])
    def test_batch_mixing_stored_and_new_ids_conflicts(self, engine: Engine, expected: int) -> None:
        """A batch holding a stored event id next to a new one raises EventIdConflict."""
        stored = new_event()
        append(engine, 1, 0, [stored])
        fresh = new_event()
        with pytest.raises(EventIdConflict) as caught:
            append(engine, 1, expected, [stored, fresh])
        assert str(stored.event_id) in caught.value.event_ids
        assert isinstance(caught.value, ValueError)
        assert head(engine) == 1
        assert count_events(engine) == 1

    def test_event_id_reused_on_another_stream_conflicts(self, engine: Engine) -> None:
        """An event id stored on one master cannot be appended to another master."""
        event = new_event()
        append(engine, 1, 0, [event])
        with pytest.raises(EventIdConflict):
            append(engine, 2, 0, [event])
        assert head(engine) == 1
        with reading(engine) as conn:
            assert eventstore.read_stream(conn, 2) == []

    def test_stored_batch_retried_on_another_stream_conflicts(self, engine: Engine) -> None:
        """A stored batch sent to another master at a stale version is a conflict, not a retry."""
        batch = [new_event()]
        append(engine, 1, 0, batch)
        append(engine, 2, 0, [new_event()])
        with pytest.raises(EventIdConflict):
            append(engine, 2, 0, batch)
        assert head(engine) == 2

    def test_stored_batch_retried_at_another_version_conflicts(self, engine: Engine) -> None:
        """A stored batch offered at a different expected version is not its retry."""
        append(engine, 1, 0, [new_event()])
        batch = [new_event()]
        append(engine, 1, 1, batch)
        with pytest.raises(EventIdConflict):
            append(engine, 1, 0, batch)
        assert head(engine) == 2

    def test_stored_batch_retried_in_another_order_conflicts(self, engine: Engine) -> None:
        """The same event ids in another order are not the stored batch."""
        batch = [new_event(), new_event()]
        append(engine, 1, 0, batch)
        with pytest.raises(EventIdConflict):
            append(engine, 1, 0, batch[::-1])
        assert head(engine) == 2


class TestDerivedEventIds:
    """Ids derived from the event's master, version and time are not stored, yet found."""

    @staticmethod
    def derived(master_id: int, version: int, recorded_at: int = T0) -> NewEvent:
        event_id = derived_event_id(master_id, version, recorded_at)
        assert event_id is not None
        return new_event(event_id=event_id, recorded_at=recorded_at)

    @staticmethod
    def stored_ids(engine: Engine) -> list[uuid.UUID | None]:
        with reading(engine) as conn:
            return list(
                conn.execute(sa.select(events.c.event_id).order_by(events.c.position)).scalars()
            )

    def test_a_derived_id_is_not_stored_and_reads_back(self, engine: Engine) -> None:
        batch = [self.derived(1, 1), self.derived(1, 2, T0 + 1)]
        kept = new_event()  # a version 4 id: stored
        append(engine, 1, 0, batch)
        append(engine, 2, 0, [kept])
        assert self.stored_ids(engine) == [None, None, kept.event_id]
        assert [e.event_id for e in all_events(engine)] == [
            *(new.event_id for new in batch),
            kept.event_id,
        ]
        assert eventstore.verify_chain(engine).ok

    def test_a_derived_batch_retried_returns_its_positions(self, engine: Engine) -> None:
        batch = [self.derived(1, 1), self.derived(1, 2)]
        first = append(engine, 1, 0, batch)
        append(engine, 1, 2, [self.derived(1, 3)])
        retry = append(engine, 1, 0, batch)
        assert retry.positions == first.positions == (1, 2)
        assert retry.duplicate
        assert count_events(engine) == 3

    def test_another_event_in_the_place_and_time_an_id_names_is_not_it(
        self, engine: Engine
    ) -> None:
        """Two writers deciding on one stream version at one microsecond derive one id; the
        second is a stale append, not a retry of the first, unless its event is the same."""
        first = self.derived(1, 1)
        append(engine, 1, 0, [first])
        for other in (
            attrs.evolve(first, metadata={"actor": "another", "reason": "test"}),
            attrs.evolve(first, data={"other": True}),
            attrs.evolve(first, type="test.other"),
        ):
            with pytest.raises(ConcurrencyError):
                append(engine, 1, 0, [other])
        assert append(engine, 1, 0, [attrs.evolve(first)]).duplicate
        assert count_events(engine) == 1

    def test_a_derived_id_of_a_stored_event_elsewhere_conflicts(self, engine: Engine) -> None:
        stored = self.derived(1, 1)
        append(engine, 1, 0, [stored])
        with pytest.raises(EventIdConflict):
            append(engine, 1, 1, [stored])  # as version 2: not what it names
        with pytest.raises(EventIdConflict):
            append(engine, 2, 0, [stored])
        assert count_events(engine) == 1

    def test_a_version_8_id_naming_another_event_is_refused(self, engine: Engine) -> None:
        stray = self.derived(5, 9)  # names version 9 of master 5, which is not stored
        with pytest.raises(InvalidArgument, match="version 8"):
            append(engine, 1, 0, [stray])
        assert count_events(engine) == 0
        assert head(engine) == 0

    def test_a_derived_id_of_another_time_names_another_event(self, engine: Engine) -> None:
        event_id = derived_event_id(1, 1, T0)
        assert event_id is not None
        with pytest.raises(InvalidArgument):
            append(engine, 1, 0, [new_event(event_id=event_id, recorded_at=T0 + 1)])
        assert count_events(engine) == 0


class TestBatchAtomicity:
    """A batch is written whole or not at all, and a failed one costs no position."""

    def test_duplicate_id_inside_a_batch_writes_nothing(self, engine: Engine) -> None:
        """A batch failing part-way (its third event repeats the first id) leaves no event."""
        append(engine, 1, 0, [new_event()])
        first = new_event()
        with pytest.raises(EventIdConflict), engine.begin() as conn:
            eventstore.append(conn, 2, 0, [first, new_event(), first])
        assert head(engine) == 1
        assert count_events(engine) == 1
        with reading(engine) as conn:
            assert eventstore.read_stream(conn, 2) == []
        assert eventstore.verify_chain(engine).ok

    def test_rolled_back_transaction_leaves_no_event_and_no_gap(self, engine: Engine) -> None:
        """A rolled-back transaction's batches vanish; the next append takes the next position."""
        append(engine, 1, 0, [new_event()])
        with engine.connect() as conn, conn.begin() as transaction:
            assert eventstore.append(conn, 1, 1, [new_event(), new_event()]).positions == (2, 3)
            assert eventstore.append(conn, 2, 0, [new_event()]).positions == (4,)
            transaction.rollback()
        assert head(engine) == 1
        assert count_events(engine) == 1
        assert append(engine, 2, 0, [new_event()]).positions == (2,)
        assert eventstore.verify_chain(engine).ok

    def test_several_batches_in_one_transaction_commit_together(self, engine: Engine) -> None:
        """Two batches appended in one transaction are numbered consecutively and chain."""
        with engine.begin() as conn:
            eventstore.append(conn, 1, 0, [new_event()])
            eventstore.append(conn, 1, 1, [new_event()])
            eventstore.append(conn, 2, 0, [new_event()])
        assert [(e.master_id, e.version) for e in all_events(engine)] == [(1, 1), (1, 2), (2, 1)]
        assert eventstore.verify_chain(engine).ok


class TestMasterIds:
    """Master ids handed out by the head row are never in use."""

    def test_allocated_ids_are_above_every_recorded_master(self, engine: Engine) -> None:
        """allocate_master_id returns ids above every master with events, and above ``above``."""
        append(engine, 5, 0, [new_event()])
        with engine.begin() as conn:
            assert eventstore.allocate_master_id(conn) == 6
            assert eventstore.allocate_master_id(conn) == 7
            assert eventstore.allocate_master_id(conn, above=20) == 21
        with engine.begin() as conn:
            assert eventstore.allocate_master_id(conn) == 22


class TestImmutability:
    """The database itself refuses to change or remove a stored event."""

    @pytest.fixture
    def log(self, engine: Engine) -> list[RecordedEvent]:
        append(engine, 1, 0, [new_event(data={"n": n}) for n in range(3)])
        return all_events(engine)

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE mastertrail_events SET data = '{}' WHERE position = 2",
            "UPDATE mastertrail_events SET master_id = 9",
            "UPDATE mastertrail_events SET metadata_id = type_id",
            "DELETE FROM mastertrail_events WHERE position = 3",
            "DELETE FROM mastertrail_events",
            "UPDATE mastertrail_texts SET text = 'test.forged' WHERE text = 'test.happened'",
            "DELETE FROM mastertrail_texts",
        ],
    )
    def test_raw_update_and_delete_are_refused(
        self, engine: Engine, log: list[RecordedEvent], statement: str
    ) -> None:
        """Raw-SQL UPDATE and DELETE on mastertrail_events and on the texts its events
        refer to fail, naming the table, and the log stays intact."""
        table = next(word for word in statement.split() if word.startswith("mastertrail_"))
        refused = f"{table} is append-only"
        with pytest.raises(sa.exc.DBAPIError, match=refused), engine.begin() as conn:
            conn.execute(sa.text(statement))
        assert all_events(engine) == log
        assert head(engine) == 3
        assert eventstore.verify_chain(engine).ok

    @pytest.mark.parametrize("table", ["mastertrail_events", "mastertrail_texts"])
    def test_truncate_is_refused(
        self, engine: Engine, log: list[RecordedEvent], table: str
    ) -> None:
        """TRUNCATE of the log or its texts is refused: by a trigger on PostgreSQL, and on
        MariaDB (whose TRUNCATE fires no trigger) by system versioning."""
        if engine.dialect.name == "sqlite":
            pytest.skip("SQLite has no TRUNCATE")
        message = "append-only" if engine.dialect.name == "postgresql" else "System-versioned"
        with pytest.raises(sa.exc.DBAPIError, match=message), engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {table}"))
        assert all_events(engine) == log
        assert eventstore.verify_chain(engine).ok

    def test_appends_still_work_after_a_refused_change(
        self, engine: Engine, log: list[RecordedEvent]
    ) -> None:
        """A refused UPDATE does not disturb later appends or the chain."""
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
            conn.execute(sa.text("UPDATE mastertrail_events SET version = 7"))
        assert append(engine, 1, 3, [new_event()]).positions == (4,)
        assert eventstore.verify_chain(engine).ok


def drop_immutability_triggers(conn: Connection) -> None:
    """Remove the triggers that refuse changes to the log, its texts and its head, as a
    hostile operator could."""
    drop_guards(conn)


class TestTamperDetection:
    """verify_chain finds a changed or removed row, at the exact first bad position."""

    @pytest.fixture
    def tamperable(self, engine: Engine) -> Engine:
        """Five events on two streams, with the immutability triggers dropped."""
        append(engine, 1, 0, [new_event(data={"n": 1}), new_event(data={"n": 2})])
        append(engine, 2, 0, [new_event(data={"n": 3})])
        append(engine, 1, 2, [new_event(data={"n": 4}), new_event(data={"n": 5})])
        assert eventstore.verify_chain(engine).ok
        with engine.begin() as conn:
            drop_immutability_triggers(conn)
        return engine

    @pytest.mark.parametrize(
        ("assignment", "position"),
        [
            ("data = '{\"n\": 33}'", 3),
            ("metadata_id = type_id", 2),
            ("type_id = metadata_id", 4),
            ("recorded_at = recorded_at + 1", 1),
            ("master_id = 3", 5),
        ],
    )
    def test_updated_row_is_the_first_bad_position(
        self, tamperable: Engine, assignment: str, position: int
    ) -> None:
        """A row changed behind the log's back is reported at its own position, first."""
        with tamperable.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE mastertrail_events SET {assignment} WHERE position = :p"),
                {"p": position},
            )
        report = eventstore.verify_chain(tamperable)
        assert not report.ok
        assert report.first_bad_position == position
        assert report.checked == position

    def test_deleted_middle_row_is_the_first_bad_position(self, tamperable: Engine) -> None:
        """A row removed from the middle of the log is reported at its position."""
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_events WHERE position = 3"))
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 3
        assert "missing" in report.problems[0].problem

    def test_deleted_newest_row_is_the_first_bad_position(self, tamperable: Engine) -> None:
        """Removing the newest row is found: the head row still names it."""
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_events WHERE position = 5"))
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 5
        assert report.checked == 4

    def test_positions_of_removed_newest_rows_are_never_reused(self, tamperable: Engine) -> None:
        """After the newest rows are removed, appends continue after the old head."""
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_events WHERE position >= 4"))
        assert append(tamperable, 2, 1, [new_event()]).positions == (6,)
        assert [e.position for e in all_events(tamperable)] == [1, 2, 3, 6]
        assert eventstore.verify_chain(tamperable).first_bad_position == 4

    def test_row_written_past_the_head_is_found(self, tamperable: Engine) -> None:
        """A row inserted behind append's back, after the newest event, is reported."""
        with tamperable.begin() as conn:
            conn.execute(
                events.insert().values(
                    position=6,
                    event_id=uuid.uuid4(),
                    master_id=3,
                    version=1,
                    type_id=1,
                    schema_version=1,
                    data="{}",
                    metadata_id=1,
                    recorded_at=T0,
                    hash=bytes(32),
                )
            )
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 6
        assert report.checked == 5

    def test_changed_text_is_found_at_the_first_event_using_it(self, tamperable: Engine) -> None:
        """A type name changed in the texts table is found at the first event of that type."""
        append(tamperable, 2, 1, [new_event("test.rare")])
        with tamperable.begin() as conn:
            conn.execute(
                sa.text("UPDATE mastertrail_texts SET text = 'test.forged' WHERE text = :t"),
                {"t": "test.rare"},
            )
        assert eventstore.verify_chain(tamperable).first_bad_position == 6

    def test_missing_text_is_found_and_its_events_are_refused(self, tamperable: Engine) -> None:
        """An event whose text was removed is still read, refused, and reported: not skipped."""
        append(tamperable, 2, 1, [new_event("test.rare")])
        with tamperable.begin() as conn:
            conn.execute(sa.text("DELETE FROM mastertrail_texts WHERE text = 'test.rare'"))
        report = eventstore.verify_chain(tamperable)
        assert report.first_bad_position == 6
        assert "missing" in report.problems[0].problem
        with pytest.raises(eventstore.DecodeError, match="position 6"):
            all_events(tamperable)

    def test_swapped_rows_are_found(self, tamperable: Engine) -> None:
        """Exchanging the contents of two rows (each hash kept) is found at the earlier one."""
        with tamperable.begin() as conn:
            rows = {
                row.position: row.data
                for row in conn.execute(
                    sa.text(
                        "SELECT position, data FROM mastertrail_events WHERE position IN (2, 4)"
                    )
                )
            }
            for position, other in ((2, 4), (4, 2)):
                conn.execute(
                    sa.text("UPDATE mastertrail_events SET data = :d WHERE position = :p"),
                    {"d": rows[other], "p": position},
                )
        assert eventstore.verify_chain(tamperable).first_bad_position == 2


class TestVerifyChainWhileWriting:
    """verify_chain on a log that other transactions keep appending to."""

    def test_appends_committed_during_verification_are_not_problems(self, engine: Engine) -> None:
        """Events committed while verify_chain reads (before each of its queries) are no problem."""
        append(engine, 1, 0, [new_event() for _ in range(5)])
        appended: list[eventstore.AppendResult] = []
        appending = False

        def commit_an_append(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            nonlocal appending
            if appending or not statement.lstrip().startswith("SELECT"):
                return  # the append's own statements, and BEGIN
            appending = True
            try:
                appended.append(append(engine, 2, len(appended), [new_event()]))
            finally:
                appending = False

        sa.event.listen(engine, "before_cursor_execute", commit_an_append)
        try:
            report = eventstore.verify_chain(engine, batch_size=2)
        finally:
            sa.event.remove(engine, "before_cursor_execute", commit_an_append)
        assert len(appended) >= 3
        assert report.ok, report.problems
        assert report.checked >= 5
        assert eventstore.verify_chain(engine).checked == 5 + len(appended)


class TestStoreUnavailable:
    """An unreachable database is a StoreUnavailable, never a raw driver error."""

    @pytest.fixture(
        params=[
            "postgresql+psycopg://root@127.0.0.1:1/test",
            "mysql+pymysql://root@127.0.0.1:1/test",
            "sqlite:////nonexistent-directory/mastertrail.sqlite",
        ],
        ids=["postgresql", "mysql", "sqlite"],
    )
    def unreachable(self, request: pytest.FixtureRequest) -> Engine:
        return eventstore.create_engine(str(request.param))

    def test_upgrade_raises_store_unavailable(self, unreachable: Engine) -> None:
        """upgrade on an unreachable database raises StoreUnavailable."""
        with pytest.raises(StoreUnavailable) as caught:
            eventstore.upgrade(unreachable)
        assert isinstance(caught.value, eventstore.RegistryError)
        assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)

    def test_readers_raise_store_unavailable(self, unreachable: Engine) -> None:
        """iter_log and verify_chain on an unreachable database raise StoreUnavailable."""
        with pytest.raises(StoreUnavailable):
            list(eventstore.iter_log(unreachable))
        with pytest.raises(StoreUnavailable):
            eventstore.verify_chain(unreachable)

    def test_translate_errors_covers_a_caller_transaction(self, unreachable: Engine) -> None:
        """A transaction opened under translate_errors fails with StoreUnavailable."""
        with (
            pytest.raises(StoreUnavailable),
            eventstore.translate_errors(),
            unreachable.begin() as conn,
        ):
            eventstore.append(conn, 1, 0, [new_event()])

    def test_query_errors_are_not_unavailability(self, engine: Engine) -> None:
        """A wrong query on a reachable database stays a driver error, not StoreUnavailable."""
        with (
            pytest.raises(sa.exc.DBAPIError) as caught,
            eventstore.translate_errors(),
            engine.begin() as conn,
        ):
            conn.execute(sa.text("SELECT no_such_column FROM mastertrail_events"))
        assert not isinstance(caught.value, StoreUnavailable)

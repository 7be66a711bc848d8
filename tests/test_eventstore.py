"""The event store's contract, written once and run on SQLite, PostgreSQL and MariaDB:
reading back what was appended, batches, master ids, an unreachable store."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
import eventstore.fused
from eventstore import (
    EventIdConflict,
    NewEvent,
    RecordedEvent,
    StoreUnavailable,
)
from eventstore.engine import reading
from tests.eventstore_support import (
    T0,
    all_events,
    append,
    count_events,
    head,
    micros,
    new_event,
)


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

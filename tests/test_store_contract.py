"""What every writer guarantees, on every backend and every write path.

A write path is what the caller knows when it appends (:mod:`eventstore.writer`):

* ``locking``: the stream's version only (:class:`eventstore.StreamAt`), as expiry,
  adoption and registration append;
* ``first``: the head and the version it read (:class:`eventstore.AfterSeen`), as the
  first heartbeat of a process appends;
* ``after_own``: the tip its own last write left (:class:`eventstore.AfterSeen`), as a
  heartbeat appends when nobody wrote since;
* ``after_other``: its stream's newest event, which it wrote, with another process's
  write after it (:class:`eventstore.AfterOwn`), as a heartbeat appends when another
  master wrote since.

Every test starts from a log where this process wrote one event of master 1 and the path's
own history; the append under test is the stream's second event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
from eventstore import (
    AfterOwn,
    AfterSeen,
    ConcurrencyError,
    EventIdConflict,
    Expectation,
    NewEvent,
    StreamAt,
    Tip,
    ViewUpdate,
    writer_for,
)
from eventstore.engine import reading
from tests.eventstore_support import all_events, new_event

OURS, OTHER = 1, 2
PATHS = ("locking", "first", "after_own", "after_other")


@attrs.frozen
class Ready:
    """The log as a write path finds it: this process's first event of OURS (and, on
    ``after_other``, another process's event after it), and how the path forms what it
    expects."""

    path: str
    first: NewEvent  # OURS's first event, written by this process
    own: Tip  # where that write left the log
    expect: Callable[[], Expectation]

    @property
    def batch_size(self) -> int:
        """Events the path appends at once (one, after the caller's own event)."""
        return 1 if self.path == "after_other" else 2


def write(
    engine: Engine, master_id: int, expect: Expectation, batch: list[NewEvent], **kw: Any
) -> eventstore.AppendResult:
    """Append in a transaction of its own, with the writer of ``engine``'s database."""
    with engine.begin() as conn:
        return writer_for(conn).append(conn, master_id, expect, batch, **kw)


def seen_and_version(engine: Engine) -> AfterSeen:
    """What a first write reads: the head, then the stream's version (in this order, so
    that an append between the two moves the head the write checks)."""
    with reading(engine) as conn:
        seen = eventstore.read_head(conn)
        return AfterSeen(eventstore.stream_version(conn, OURS), Tip(seen.position, seen.hash))


def version_of(engine: Engine) -> StreamAt:
    with reading(engine) as conn:
        return StreamAt(eventstore.stream_version(conn, OURS))


@pytest.fixture(params=PATHS)
def ready(request: pytest.FixtureRequest, engine: Engine) -> Ready:
    """The log as the write path under test finds it."""
    path = str(request.param)
    first = new_event(data={"n": 1})
    result = write(engine, OURS, StreamAt(0), [first])
    assert result.tip is not None
    own = result.tip
    expect: Callable[[], Expectation]
    if path == "locking":
        expect = lambda: version_of(engine)  # noqa: E731
    elif path == "first":
        expect = lambda: seen_and_version(engine)  # noqa: E731
    elif path == "after_own":
        expect = lambda: AfterSeen(1, own)  # noqa: E731
    else:
        write(engine, OTHER, StreamAt(0), [new_event(data={"other": 1})])
        expect = lambda: AfterOwn(1, own)  # noqa: E731
    return Ready(path, first, own, expect)


@pytest.fixture
def counters(engine: Engine) -> Iterator[sa.Table]:
    """A caller's table for the view update (as ``masters`` is for the registry)."""
    table = sa.Table(
        "test_contract_counters",
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


def bump(table: sa.Table, n: int) -> ViewUpdate:
    """The caller's own update: set the counter to ``n``."""
    statement = (
        table.update().where(table.c.id == sa.bindparam("c_id")).values(n=sa.bindparam("c_n"))
    )
    return statement, {"c_id": 1, "c_n": n}


def counter(engine: Engine, table: sa.Table) -> int:
    with reading(engine) as conn:
        return int(conn.execute(sa.select(table.c.n)).scalar_one())


def head_row(engine: Engine) -> eventstore.Head:
    with reading(engine) as conn:
        return eventstore.read_head(conn)


def log(engine: Engine) -> list[tuple[int, int, int]]:
    """``(position, master_id, version)`` of every event, in position order."""
    return [(e.position, e.master_id, e.version) for e in all_events(engine)]


def batch(ready: Ready, **data: Any) -> list[NewEvent]:
    return [new_event(data={**data, "k": k}) for k in range(ready.batch_size)]


class TestStoreContract:
    def test_a_batch_lands_right_after_the_head_which_moves_to_it(
        self, engine: Engine, ready: Ready, counters: sa.Table
    ) -> None:
        """The batch takes the positions right after the head, versions right after the
        stream's, the head moves to its last event, the chain verifies, and the caller's
        update is written with it."""
        before = head_row(engine)
        events = batch(ready)
        result = write(engine, OURS, ready.expect(), events, view_update=bump(counters, 7))
        size = len(events)
        assert result.positions == tuple(range(before.position + 1, before.position + 1 + size))
        assert not result.duplicate
        assert result.tip == Tip(head_row(engine).position, head_row(engine).hash)
        stored = all_events(engine)[-size:]
        assert [(e.event_id, e.master_id, e.version) for e in stored] == [
            (new.event_id, OURS, 2 + k) for k, new in enumerate(events)
        ]
        assert [p for p, _, _ in log(engine)] == list(range(1, result.last_position + 1))
        assert counter(engine, counters) == 7
        assert eventstore.verify_chain(engine).ok

    def test_writes_follow_each_other_in_commit_order(self, engine: Engine, ready: Ready) -> None:
        """A write after the one under test lands after it: positions are gap-free in the
        order the writes committed, and every stream's versions count up from 1."""
        ours = write(engine, OURS, ready.expect(), batch(ready))
        theirs = write(engine, OTHER, version_of_other(engine), [new_event()])
        assert theirs.positions == (ours.last_position + 1,)
        found = log(engine)
        assert [p for p, _, _ in found] == list(range(1, len(found) + 1))
        for master_id in (OURS, OTHER):
            versions = [v for _, m, v in found if m == master_id]
            assert versions == list(range(1, len(versions) + 1))
        assert eventstore.verify_chain(engine).ok

    def test_a_stale_expectation_raises_and_writes_nothing(
        self, engine: Engine, ready: Ready, counters: sa.Table
    ) -> None:
        """Another process appended to the stream after this one formed what it expects:
        ConcurrencyError, and neither the batch nor the caller's update is written."""
        expect = ready.expect()
        write(engine, OURS, StreamAt(1), [new_event(data={"theirs": True})])
        before, log_before = head_row(engine), log(engine)
        with engine.connect() as conn:
            conn.begin()
            with pytest.raises(ConcurrencyError) as raised:
                writer_for(conn).append(
                    conn, OURS, expect, batch(ready), view_update=bump(counters, 9)
                )
            conn.rollback()
        assert raised.value.master_id == OURS
        assert head_row(engine) == before
        assert log(engine) == log_before
        assert counter(engine, counters) == 0
        assert eventstore.verify_chain(engine).ok

    def test_a_rolled_back_append_leaves_neither_the_events_nor_the_update(
        self, engine: Engine, ready: Ready, counters: sa.Table
    ) -> None:
        """The caller's update runs in the append's transaction: rolled back, neither is
        there."""
        before, log_before = head_row(engine), log(engine)
        with engine.connect() as conn:
            conn.begin()
            writer_for(conn).append(
                conn, OURS, ready.expect(), batch(ready), view_update=bump(counters, 5)
            )
            conn.rollback()
        assert (head_row(engine), log(engine), counter(engine, counters)) == (before, log_before, 0)

    def test_retried_with_what_it_expected_a_batch_is_stored_once(
        self, engine: Engine, ready: Ready, counters: sa.Table
    ) -> None:
        """A committed batch appended again with the expectation it was made under (a
        retry after a lost commit) is never stored twice: the locking append returns its
        positions as a duplicate, without the update; the others refuse with
        ConcurrencyError."""
        expect, events = ready.expect(), batch(ready)
        first = write(engine, OURS, expect, events, view_update=bump(counters, 1))
        log_before = log(engine)
        if ready.path == "locking":
            again = write(engine, OURS, expect, events, view_update=bump(counters, 2))
            assert again == eventstore.AppendResult(first.positions, duplicate=True)
        else:
            with pytest.raises(ConcurrencyError):
                write(engine, OURS, expect, events, view_update=bump(counters, 2))
        assert log(engine) == log_before
        assert counter(engine, counters) == 1
        ids = [e.event_id for e in all_events(engine)]
        assert len(ids) == len(set(ids))

    def test_an_event_id_stored_elsewhere_is_refused(self, engine: Engine, ready: Ready) -> None:
        """An event carrying the id of an event stored at another version: EventIdConflict,
        nothing written."""
        before, log_before = head_row(engine), log(engine)
        reused = attrs.evolve(new_event(), event_id=ready.first.event_id)
        with pytest.raises(EventIdConflict) as raised:
            write(engine, OURS, ready.expect(), [reused])
        assert raised.value.event_ids == [str(ready.first.event_id)]
        assert (head_row(engine), log(engine)) == (before, log_before)

    def test_new_texts_are_stored_and_read_back(self, engine: Engine, ready: Ready) -> None:
        """A type name and metadata never written before are stored with the event, and
        read back as they were given."""
        tag = uuid.uuid4().hex
        event = new_event(f"test.new_{tag}", metadata={"actor": tag, "reason": "contract"})
        write(engine, OURS, ready.expect(), [event])
        (stored,) = all_events(engine)[-1:]
        assert (stored.type, stored.metadata) == (event.type, event.metadata)
        assert eventstore.verify_chain(engine).ok


def version_of_other(engine: Engine) -> StreamAt:
    with reading(engine) as conn:
        return StreamAt(eventstore.stream_version(conn, OTHER))

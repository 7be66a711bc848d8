"""Appends from several processes at once, read by a tail that must see every position
exactly once, in order, on every backend."""

from __future__ import annotations

import functools
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy.engine import Engine

import eventstore
from eventstore import AfterSeen, ConcurrencyError, NewEvent, RecordedEvent
from eventstore.engine import reading
from tests.eventstore_support import new_event

WRITERS = 4
EVENTS_PER_WRITER = 500
SHARED_MASTER = 1
#: Events per append when the writers share one stream (so batches race, too).
SHARED_BATCH = 5
#: Seconds the whole test may take before it is declared stuck (never reached when healthy).
DEADLINE = 240.0

SPAWN = multiprocessing.get_context("spawn")


def write_own_stream(url: str, worker: int, count: int, start: Barrier) -> None:
    """Append ``count`` events to master ``worker + 1``, one per transaction."""
    engine = eventstore.create_engine(url)
    master_id = worker + 1
    start.wait()
    for seq in range(count):
        with engine.begin() as conn:
            eventstore.append(conn, master_id, seq, [new_event(data={"w": worker, "seq": seq})])
    engine.dispose()


def append_after_reading_the_version(engine: Engine, batch: list[NewEvent]) -> None:
    """Read the stream version, then append in a transaction of its own."""
    with reading(engine) as conn:
        version = eventstore.stream_version(conn, SHARED_MASTER)
    with engine.begin() as conn:
        eventstore.append(conn, SHARED_MASTER, version, batch)


def append_after_reading_the_head(engine: Engine, batch: list[NewEvent]) -> None:
    """The way a heartbeat appends: the head and the stream version read without a lock,
    then the append after it (``AfterSeen``), which writes only if the head has not moved,
    in one transaction."""
    with engine.begin() as conn:
        seen = eventstore.read_head(conn)
        version = eventstore.stream_version(conn, SHARED_MASTER)
        eventstore.append(conn, SHARED_MASTER, AfterSeen(version, seen), batch)


def write_shared_stream(
    url: str,
    worker: int,
    count: int,
    start: Barrier,
    attempt: Callable[[Engine, list[NewEvent]], None] = append_after_reading_the_version,
) -> None:
    """Append ``count`` events to the shared master in batches of SHARED_BATCH with
    ``attempt``, retrying on ConcurrencyError as a command would."""
    engine = eventstore.create_engine(url)
    start.wait()
    for first in range(0, count, SHARED_BATCH):
        batch = [
            new_event(data={"w": worker, "seq": seq}) for seq in range(first, first + SHARED_BATCH)
        ]
        while True:
            try:
                attempt(engine, batch)
            except ConcurrencyError:
                continue
            break
    engine.dispose()


Writer = Callable[[str, int, int, Barrier], None]


@pytest.fixture
def run_writers(db_url: str) -> Iterator[Callable[[Writer], list[SpawnProcess]]]:
    """Start WRITERS spawned processes running a writer, released together once all are up."""
    started: list[SpawnProcess] = []

    def run(writer: Writer) -> list[SpawnProcess]:
        start = SPAWN.Barrier(WRITERS + 1)
        for worker in range(WRITERS):
            process = SPAWN.Process(
                target=writer, args=(db_url, worker, EVENTS_PER_WRITER, start), daemon=True
            )
            process.start()
            started.append(process)
        start.wait(timeout=DEADLINE)
        return started

    yield run
    for process in started:
        if process.is_alive():
            process.terminate()
        process.join(timeout=10)


def tail(engine: Engine, processes: list[SpawnProcess], total: int) -> list[RecordedEvent]:
    """Poll ``read_after(last)`` while the writers run, asserting that each event read has
    position ``last + 1``, until ``total`` events were seen."""
    seen: list[RecordedEvent] = []
    last = 0
    deadline = time.monotonic() + DEADLINE
    while last < total:
        failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
        assert not failed, f"a writer process failed with exit code {failed}"
        assert time.monotonic() < deadline, f"the tail stalled at position {last} of {total}"
        with reading(engine) as conn:
            batch = eventstore.read_after(conn, last, limit=200)
        for event in batch:
            assert event.position == last + 1, f"after {last} the tail read {event.position}"
            last = event.position
        seen.extend(batch)
        time.sleep(0.002)  # leave the CPU to the writers between polls
    for process in processes:
        process.join(timeout=DEADLINE)
        assert process.exitcode == 0
    with reading(engine) as conn:
        assert eventstore.read_after(conn, last) == []
    return seen


def assert_each_writer_in_order(seen: list[RecordedEvent]) -> None:
    """Every writer's events are all there, once each, in the order it appended them."""
    by_writer: dict[int, list[int]] = defaultdict(list)
    for event in seen:
        by_writer[event.data["w"]].append(event.data["seq"])
    assert by_writer == {w: list(range(EVENTS_PER_WRITER)) for w in range(WRITERS)}


@pytest.mark.slow
class TestConcurrentAppends:
    """Several processes appending at once never lose, duplicate or reorder an event."""

    def test_writers_on_own_streams_are_tailed_gap_free(
        self, engine: Engine, run_writers: Callable[[Writer], list[SpawnProcess]]
    ) -> None:
        """Four processes each appending 500 events to its own master are tailed in order."""
        total = WRITERS * EVENTS_PER_WRITER
        seen = tail(engine, run_writers(write_own_stream), total)
        assert [e.position for e in seen] == list(range(1, total + 1))
        assert len({e.event_id for e in seen}) == total
        assert_each_writer_in_order(seen)
        with reading(engine) as conn:
            for worker in range(WRITERS):
                stream = eventstore.read_stream(conn, worker + 1)
                assert [e.version for e in stream] == list(range(1, EVENTS_PER_WRITER + 1))
                assert {e.data["w"] for e in stream} == {worker}
            assert eventstore.head_position(conn) == total
        assert eventstore.verify_chain(engine).ok

    @pytest.mark.parametrize(
        "writer",
        [
            write_shared_stream,
            functools.partial(write_shared_stream, attempt=append_after_reading_the_head),
        ],
        ids=["append", "append_after"],
    )
    def test_writers_contending_on_one_stream_are_tailed_gap_free(
        self,
        engine: Engine,
        run_writers: Callable[[Writer], list[SpawnProcess]],
        writer: Writer,
    ) -> None:
        """Four processes appending 500 events each to one master in batches, retrying on
        conflicts, give one stream with versions 1..2000, each batch whole and contiguous,
        and a tail that sees every position once."""
        total = WRITERS * EVENTS_PER_WRITER
        seen = tail(engine, run_writers(writer), total)
        assert [e.position for e in seen] == list(range(1, total + 1))
        assert [e.version for e in seen] == list(range(1, total + 1))
        assert {e.master_id for e in seen} == {SHARED_MASTER}
        assert_each_writer_in_order(seen)
        batches: dict[tuple[int, int], list[int]] = defaultdict(list)
        for event in seen:
            batches[event.data["w"], event.data["seq"] // SHARED_BATCH].append(event.position)
        for positions in batches.values():
            assert positions == list(range(positions[0], positions[0] + SHARED_BATCH))
        assert eventstore.verify_chain(engine).ok

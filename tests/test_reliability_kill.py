"""Writers killed with SIGKILL at random moments while they append (SQLite, PostgreSQL
and MariaDB, on every write path): no partial batch, log and view agree, the chain holds,
and a retried append of the same batch (the same event ids) never duplicates.

Each writer is one master appending batches of its own events and updating its view row in
the same transaction, as a command does, on one write path of :mod:`eventstore.writer`
(the writers of a round take every path): the locking append, the append after the head it
read, after the tip its own last write left, or after its stream's own newest event. Before
each append it records the batch it is about to append (event ids and all) in a file and
syncs it, so that after the kill the test knows every batch the writer meant to store,
including the one it may have died in; a batch refused with a conflict is marked withdrawn.
"""

from __future__ import annotations

import json
import os
import random
import time
import traceback
import uuid
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from commands.retry import is_conflict
from eventstore import (
    AfterOwn,
    AfterSeen,
    AppendResult,
    ConcurrencyError,
    Expectation,
    NewEvent,
    StreamAt,
    TextNotStored,
    Tip,
    lock_head,
    writer_for,
)
from eventstore.events import CODEC, MasterActivated, MasterCheckedIn, MasterDeactivated
from eventstore.schema import events
from mastertrail import Registry
from projections import view
from projections.fold import apply
from projections.model import MasterState
from tests.conftest import FakeClock, Server
from tests.reliability_support import (
    DEADLINE,
    SPAWN,
    get,
    own_database,
    quiet_logging,
    sized,
    stop_all,
)

pytestmark = pytest.mark.slow

#: Writers started (and killed) at once in a round.
WRITERS = sized(9, 10)
#: Rounds per backend: WRITERS * ROUNDS kills on each of SQLite, PostgreSQL and MariaDB.
ROUNDS = sized(3, 25)
#: A writer is killed this many seconds (uniformly at random) after all of the round's
#: writers have begun appending.
KILL_AFTER = (0.0, 0.4)
T0 = 1_700_000_000
#: The write paths, taken in turn by the writers of a round.
PATHS = ("locking", "first", "after_own", "after_other")
#: The line that withdraws the batch recorded before it (refused with a conflict).
WITHDRAWN = {"withdrawn": True}


# -- the writer (module level, so that 'spawn' can import it) --------------------------------


def write_until_killed(
    url: str, name: str, path: str, intents: str, seed: int, results: Any
) -> None:
    """Register ``name``, then append batches to its stream on the write ``path`` until
    killed, recording each batch in ``intents`` (synced) before appending it."""
    quiet_logging()
    rng = random.Random(seed)
    clock = FakeClock(T0)
    registry = Registry(url, clock=clock, actor=name)
    known: tuple[MasterState, Tip] | None = None  # what this process's last write left
    conflicted = False  # the last batch was withdrawn: lock first, as a command's retry does
    try:
        master_id = registry.find_master_id(name)
        with open(intents, "a", encoding="utf-8") as record:
            sequence = 0
            while True:
                clock.advance(1)
                try:
                    with registry.engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite
                        if conflicted:  # never starved by the other writers
                            lock_head(conn)
                        state, expect = expectation(conn, master_id, path, known)
                        events = batch_for(state, int(clock.now), rng)
                        if isinstance(expect, AfterOwn):
                            events = events[:1]
                        intent = Intent.of(master_id, state.version, name, events, clock.now)
                        synced(record, intent.to_json())
                        after, result = store(conn, state, intent, expect)
                    assert result.tip is not None
                    known, conflicted = (after, result.tip), False
                except (ConcurrencyError, TextNotStored, sa.exc.DBAPIError) as error:
                    if not is_conflict(error):  # a conflict is withdrawn, as a command retries
                        raise
                    synced(record, WITHDRAWN)
                    known, conflicted = None, True
                    continue
                sequence += 1
                if sequence == 1:
                    results.put(("appending", name))
    except BaseException:
        results.put(("failed", f"{name}: {traceback.format_exc()}"))
        raise


def expectation(
    conn: sa.Connection, master_id: int, path: str, known: tuple[MasterState, Tip] | None
) -> tuple[MasterState, Expectation]:
    """The master's state and what the write ``path`` expects: read, or remembered from
    this process's last write."""
    if known is not None and path == "after_own":
        return known[0], AfterSeen(known[0].version, known[1])
    if known is not None and path == "after_other":
        return known[0], AfterOwn(known[0].version, known[1])
    if path == "locking":
        state = view.load_state(conn, master_id)
        assert state is not None
        return state, StreamAt(state.version)
    loaded = view.load_state_and_head(conn, master_id)
    assert loaded is not None
    return loaded[0], AfterSeen(loaded[0].version, loaded[1])


def synced(record: Any, line: dict[str, Any]) -> None:
    record.write(json.dumps(line) + "\n")
    record.flush()
    os.fsync(record.fileno())


def batch_for(state: MasterState, now: int, rng: random.Random) -> list[Any]:
    """One to four events that make sense after ``state``: a start or check-ins, sometimes
    ending with a stop."""
    events: list[Any] = [
        MasterCheckedIn(last_active=now) if state.active else MasterActivated(last_active=now)
    ]
    events += [MasterCheckedIn(last_active=now) for _ in range(rng.randrange(3))]
    if rng.random() < 0.2:
        events.append(MasterDeactivated(last_active=now))
    return events


@attrs.frozen
class Intent:
    """A batch a writer is about to append: enough to append it again, identically."""

    master_id: int
    expected_version: int
    events: tuple[NewEvent, ...]

    @classmethod
    def of(cls, master_id: int, version: int, actor: str, events: list[Any], now: float) -> Intent:
        batch = []
        for event in events:
            type_name, schema_version, data = CODEC.encode(event)
            batch.append(
                NewEvent(
                    event_id=uuid.uuid4(),
                    type=type_name,
                    schema_version=schema_version,
                    data=data,
                    metadata={"actor": actor, "reason": "heartbeat"},
                    recorded_at=round(now * 1_000_000),
                )
            )
        return cls(master_id, version, tuple(batch))

    @property
    def event_ids(self) -> list[uuid.UUID]:
        return [new.event_id for new in self.events]

    def to_json(self) -> dict[str, Any]:
        return {
            "master_id": self.master_id,
            "expected_version": self.expected_version,
            "events": [{**attrs.asdict(new), "event_id": str(new.event_id)} for new in self.events],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Intent:
        return cls(
            value["master_id"],
            value["expected_version"],
            tuple(
                NewEvent(**{**new, "event_id": uuid.UUID(new["event_id"])})
                for new in value["events"]
            ),
        )


def store(
    conn: sa.Connection, state: MasterState, intent: Intent, expect: Expectation | None = None
) -> tuple[MasterState, AppendResult]:
    """Append the intended batch after what ``expect`` says (by default the locking append)
    with the view row's update, as one command does: in the caller's one transaction. A
    batch stored before is not written again, nor its update."""
    after = state
    for offset, new in enumerate(intent.events, start=1):
        event = CODEC.decode_data(new.type, new.schema_version, new.data)
        after = apply(after, state.id, intent.expected_version + offset, event)
    result = writer_for(conn).append(
        conn,
        intent.master_id,
        StreamAt(intent.expected_version) if expect is None else expect,
        list(intent.events),
        view_update=view.update_statement(after),
    )
    return after, result


def read_intents(path: Path) -> list[Intent]:
    """The batches a writer recorded, but those withdrawn; a last line cut short by the
    kill was never appended (the record is synced before the append begins) and is left
    out."""
    intents: list[Intent] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            break
        if value == WITHDRAWN:
            intents.pop()
        else:
            intents.append(Intent.from_json(value))
    return intents


# -- the parent's side -----------------------------------------------------------------------


@attrs.frozen
class Killed:
    """A writer that was killed, and the batches it recorded."""

    name: str
    intents: list[Intent]


def kill_writers(
    url: str, directory: Path, round_number: int, rng: random.Random, started: list[SpawnProcess]
) -> list[Killed]:
    """Start WRITERS writers, kill each at a random moment after it began appending, and
    return what they had recorded."""
    results = SPAWN.Queue()
    writers: dict[str, tuple[SpawnProcess, Path]] = {}
    for number in range(WRITERS):
        name = f"writer-{round_number}-{number}"
        intents = directory / f"{name}.jsonl"
        intents.touch()
        process = SPAWN.Process(
            target=write_until_killed,
            args=(
                url,
                name,
                PATHS[number % len(PATHS)],
                str(intents),
                rng.randrange(2**32),
                results,
            ),
        )
        process.start()
        started.append(process)
        writers[name] = (process, intents)
    for _ in range(WRITERS):
        kind, name = get(results, "the writers")
        assert kind == "appending", name
    # Every writer is appending now; kill each at its own random moment from here.
    began = time.monotonic()
    for name, delay in sorted(
        ((name, rng.uniform(*KILL_AFTER)) for name in writers), key=lambda pair: pair[1]
    ):
        time.sleep(max(0.0, began + delay - time.monotonic()))
        writers[name][0].kill()
    killed: list[Killed] = []
    for name, (process, intents) in writers.items():
        process.join(DEADLINE)
        assert process.exitcode == -9, f"{name} ended before it was killed"
        killed.append(Killed(name, read_intents(intents)))
    return killed


@attrs.frozen
class Trials:
    """Every writer killed on one backend, and the registry on its database."""

    registry: Registry
    killed: list[Killed]


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def trials(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Trials]:
    """ROUNDS rounds of WRITERS writers killed at random on a fresh database, per backend
    (SQLite, PostgreSQL and MariaDB), shared by the tests that examine the aftermath."""
    seed = random.randrange(2**32)
    print(f"kill trials seed: {seed}")
    rng = random.Random(seed)
    directory = tmp_path_factory.mktemp("kill")
    with own_database(str(request.param), servers, directory) as url:
        registry = Registry(url, clock=FakeClock(T0), actor="tester")
        started: list[SpawnProcess] = []
        try:
            registry.upgrade()
            killed = []
            for round_number in range(ROUNDS):
                killed += kill_writers(url, directory, round_number, rng, started)
            yield Trials(registry, killed)
        finally:
            stop_all(started)
            registry.close()


def stored(registry: Registry, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """``{event_id: (position, version)}`` of those of ``event_ids`` in the log."""
    query = sa.select(events.c.event_id, events.c.position, events.c.version).where(
        events.c.event_id.in_(event_ids)
    )
    with registry.engine.connect() as conn:
        return {row.event_id: (row.position, row.version) for row in conn.execute(query)}


class TestKilledWriters:
    def test_every_batch_is_whole_or_absent(self, trials: Trials) -> None:
        """Every batch a killed writer had committed is stored whole, at consecutive
        positions and versions; the one it died in is stored whole or not at all."""
        assert len(trials.killed) == WRITERS * ROUNDS
        log = {e.event_id: e for e in trials.registry.events()}
        for writer in trials.killed:
            assert writer.intents, f"{writer.name} recorded nothing before it appended"
            for number, intent in enumerate(writer.intents, start=1):
                found = [log[i] for i in intent.event_ids if i in log]
                if number == len(writer.intents) and not found:
                    continue  # killed before this batch committed
                assert len(found) == len(intent.events), (writer.name, number)
                first = found[0]
                assert [(e.position, e.version) for e in found] == [
                    (first.position + k, intent.expected_version + 1 + k) for k in range(len(found))
                ]
                assert [e.master_id for e in found] == [intent.master_id] * len(found)

    def test_log_and_view_agree_after_the_kills(self, trials: Trials) -> None:
        """Right after the kills, the hash chain holds and the view is the fold of the log."""
        report = trials.registry.verify()
        assert report.ok, report.problems

    def test_retrying_the_last_batch_never_duplicates(self, trials: Trials) -> None:
        """Appending a killed writer's last batch again, with the same event ids, returns
        the original positions when it had committed and appends it once when it had not;
        a second retry changes nothing; every event id is in the log exactly once."""
        registry = trials.registry
        outcomes = {"committed": 0, "lost": 0}
        for writer in trials.killed:
            last = writer.intents[-1]
            before = stored(registry, last.event_ids)
            with registry.engine.begin() as conn:
                state = view.load_state(conn, last.master_id)
                assert state is not None
                _, result = store(conn, state, last)
            after = stored(registry, last.event_ids)
            assert sorted(after) == sorted(last.event_ids)
            assert list(result.positions) == [after[i][0] for i in last.event_ids]
            assert result.duplicate == bool(before)
            outcomes["committed" if before else "lost"] += 1
            with registry.engine.begin() as conn:
                state = view.load_state(conn, last.master_id)
                assert state is not None
                _, again = store(conn, state, last)
            assert again == AppendResult(result.positions, duplicate=True)
        print(f"last batches: {outcomes}")
        ids = [e.event_id for e in registry.events()]
        assert len(ids) == len(set(ids))
        report = registry.verify()
        assert report.ok, report.problems

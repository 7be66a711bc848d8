"""Archivers killed with SIGKILL at random moments, beside a master heartbeating in its own
process (SQLite, PostgreSQL and MariaDB): every event is still there exactly once, either
hot or in a sealed segment, the chain holds across both, and the next run finishes."""

from __future__ import annotations

import itertools
import random
import time
import traceback
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import attrs
import pytest

import eventstore
from eventstore import archive_seal
from eventstore.archive import list_segments, read_segment
from eventstore.recorded import RecordedEvent
from mastertrail import Registry
from tests.conftest import FakeClock, Server
from tests.reliability_support import DEADLINE, SPAWN, get, own_database, quiet_logging, sized

pytestmark = pytest.mark.slow

#: Archivers killed per backend.
ROUNDS = sized(6, 30)
#: Events per segment in the archivers, so that each run seals many.
SEGMENT = 7
#: An archiver is killed this many seconds (uniformly at random) after it began.
KILL_AFTER = (0.0, 0.5)
T0 = 1_700_000_000


# -- the processes (module level, so that 'spawn' can import them) ---------------------------


def archive_until_killed(url: str, directory: str, before: int, results: Any) -> None:
    """Archive the events below ``before`` into ``directory`` in small segments."""
    quiet_logging()
    archive_seal.SEGMENT_EVENTS = SEGMENT
    registry = Registry(url, actor="archiver")
    try:
        results.put(("archiving", None))
        registry.archive(before=before, to=directory)
        results.put(("done", None))
    except BaseException:
        results.put(("failed", traceback.format_exc()))
        raise


def heartbeat_until_killed(url: str, name: str, results: Any) -> None:
    """Check a master in, a second apart on its own clock, until killed."""
    quiet_logging()
    clock = FakeClock(T0 + 10**6)
    registry = Registry(url, clock=clock, actor=name)
    try:
        master_id = registry.find_master_id(name)
        registry.set_master_state(master_id, True)
        results.put(("beating", None))
        while True:
            clock.advance(1)
            registry.set_master_state(master_id, True)
    except BaseException:
        results.put(("failed", traceback.format_exc()))
        raise


# -- the parent's side -----------------------------------------------------------------------


def whole_log(registry: Registry, directory: Path) -> list[RecordedEvent]:
    """Every event: the archived ones from their segments, then the hot ones."""
    archived = [e for s in list_segments(registry.engine) for e in read_segment(s, directory)]
    return archived + list(eventstore.iter_log(registry.engine))


def build_log(registry: Registry, clock: FakeClock) -> None:
    """Four masters checking in for a while, one of them stopping and starting."""
    ids = [registry.find_master_id(f"m{n}:/srv") for n in range(4)]
    for round_ in range(60):
        clock.advance(60)
        for master_id in ids:
            registry.set_master_state(master_id, not (master_id == ids[3] and round_ % 9 == 8))


@attrs.frozen
class Aftermath:
    registry: Registry
    directory: Path
    before: list[RecordedEvent]
    kills: int
    after_each: list[tuple[int, bool]]  # (archived through, chain ok) after each kill


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def aftermath(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Aftermath]:
    """ROUNDS archivers killed at random beside a heartbeating master, per backend."""
    seed = random.randrange(2**32)
    print(f"archive kill seed: {seed}")
    rng = random.Random(seed)
    workdir = tmp_path_factory.mktemp("archive-kill")
    directory = workdir / "archive"
    with own_database(str(request.param), servers, workdir) as url:
        clock = FakeClock(T0)
        registry = Registry(url, clock=clock, actor="tester")
        started: list[SpawnProcess] = []
        try:
            registry.upgrade()
            build_log(registry, clock)
            before = list(registry.events())
            results = SPAWN.Queue()
            beating = SPAWN.Process(target=heartbeat_until_killed, args=(url, "beat", results))
            beating.start()
            started.append(beating)
            assert get(results, "the heartbeat")[0] == "beating"
            after_each = []
            kills = 0
            for _ in range(ROUNDS):
                archiver = SPAWN.Process(
                    target=archive_until_killed,
                    args=(url, str(directory), len(before), results),
                )
                archiver.start()
                started.append(archiver)
                kind, detail = get(results, "the archiver")
                assert kind == "archiving", detail
                time.sleep(rng.uniform(*KILL_AFTER))
                archiver.kill()
                archiver.join(DEADLINE)
                kills += archiver.exitcode == -9
                while not results.empty():
                    kind, detail = results.get()
                    assert kind != "failed", detail
                segments = list_segments(registry.engine)
                through = segments[-1].last_position if segments else 0
                after_each.append((through, eventstore.verify_chain(registry.engine).ok))
            assert beating.is_alive(), "the heartbeat stopped"
            beating.kill()
            beating.join(DEADLINE)
            archive_seal.SEGMENT_EVENTS = SEGMENT
            registry.archive(before=len(before), to=directory)
            yield Aftermath(registry, directory, before, kills, after_each)
        finally:
            archive_seal.SEGMENT_EVENTS = 2048
            for process in started:
                if process.is_alive():
                    process.kill()
                process.join(10)
            registry.close()


class TestKilledArchivers:
    def test_every_event_is_there_once_and_unchanged(self, aftermath: Aftermath) -> None:
        """The archived and hot events together are the log as it was, field by field,
        followed by the heartbeats appended meanwhile, at consecutive positions."""
        found = whole_log(aftermath.registry, aftermath.directory)
        assert found[: len(aftermath.before)] == aftermath.before
        assert [e.position for e in found] == list(range(1, len(found) + 1))
        assert len(found) > len(aftermath.before)  # the heartbeats went on

    def test_the_chain_held_after_every_kill(self, aftermath: Aftermath) -> None:
        """After each kill the hot log chains on from the last sealed segment."""
        assert all(ok for _, ok in aftermath.after_each), aftermath.after_each
        throughs = [through for through, _ in aftermath.after_each]
        assert throughs == sorted(throughs)
        print(f"kills: {aftermath.kills}, archived through after each: {throughs}")

    def test_the_next_run_finished(self, aftermath: Aftermath) -> None:
        """The run after the kills sealed everything it was asked to, in contiguous
        segments whose files are all readable."""
        segments = list_segments(aftermath.registry.engine)
        assert segments[0].first_position == 1
        assert all(a.last_position + 1 == b.first_position for a, b in itertools.pairwise(segments))
        assert segments[-1].last_position >= len(aftermath.before) - 4 - 1
        leftovers = {p.name for p in aftermath.directory.iterdir()} - {
            s.file_name for s in segments
        }
        assert all(name.endswith(".partial") or "segment-" in name for name in leftovers)

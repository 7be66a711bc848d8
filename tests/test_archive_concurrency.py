"""Two archivers at once, in separate processes, on every backend: each segment is sealed
once, the segments are contiguous, and every event is there exactly once."""

from __future__ import annotations

import itertools
import traceback
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import archive_seal
from eventstore.archive import list_segments, read_segment
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.reliability_support import DEADLINE, SPAWN, get, quiet_logging

pytestmark = pytest.mark.slow

#: Events per segment in the archivers.
SEGMENT = 5


def archive_at_once(url: str, directory: str, before: int, gate: Any, results: Any) -> None:
    """Wait at ``gate``, then archive the events below ``before``."""
    quiet_logging()
    archive_seal.SEGMENT_EVENTS = SEGMENT
    registry = Registry(url, actor="archiver")
    try:
        gate.wait(DEADLINE)
        report = registry.archive(before=before, to=directory)
        results.put(("done", report.segments))
    except BaseException:
        results.put(("failed", traceback.format_exc()))
        raise


class TestTwoArchivers:
    def test_each_segment_is_sealed_once(
        self, registry: Registry, clock: FakeClock, db_url: str, tmp_path: Path
    ) -> None:
        """Two processes archiving the same range at once both finish; between them they
        sealed each segment once, and the log reads back whole."""
        ids = [registry.find_master_id(f"m{n}:/srv") for n in range(3)]
        for _ in range(40):
            clock.advance(60)
            for master_id in ids:
                registry.set_master_state(master_id, True)
        before = list(registry.events())
        gate, results = SPAWN.Barrier(2), SPAWN.Queue()
        processes = [
            SPAWN.Process(
                target=archive_at_once,
                args=(db_url, str(tmp_path / "archive"), 100, gate, results),
            )
            for _ in range(2)
        ]
        for process in processes:
            process.start()
        try:
            outcomes = [get(results, "the archivers") for _ in processes]
        finally:
            for process in processes:
                process.join(DEADLINE)
        assert [kind for kind, _ in outcomes] == ["done", "done"], outcomes
        segments = list_segments(registry.engine)
        assert sum(count for _, count in outcomes) == len(segments)
        assert segments[0].first_position == 1
        assert segments[-1].last_position == 99
        assert all(a.last_position + 1 == b.first_position for a, b in itertools.pairwise(segments))
        archived = [e for s in segments for e in read_segment(s)]
        assert archived + list(eventstore.iter_log(registry.engine)) == before

"""Folding inside a kept segment from its nearest checkpoint: every reading answers as
before archiving, whatever order the readings come in, and folds fewer events than lie
between two checkpoints."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from eventstore import FoldRow
from mastertrail import Registry
from projections import segment_fold
from projections.fold import RowFold
from tests.archive_support import MOMENTS, build_log
from tests.conftest import FakeClock


@pytest.fixture
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> int:
    """Checkpoints every 4 events, so that the fleet's segments hold several."""
    monkeypatch.setattr(segment_fold, "CHECKPOINT", 4)
    return 4


class TestFoldFromCheckpoints:
    def test_every_position_and_moment_answers_as_before(
        self, registry: Registry, clock: FakeClock, tmp_path: Path, small_checkpoints: int
    ) -> None:
        """masters_as_of at every archived position and moment, asked in a shuffled order
        (so that checkpoints are taken out of order), answers as before archiving."""
        build_log(registry, clock)
        last = registry.log_position()
        moments = [*MOMENTS, *(e.recorded_at for e in registry.events())]
        wanted: list[int | object] = [*range(last + 1), *moments]
        random.Random(7).shuffle(wanted)
        before = [registry.masters_as_of(when) for when in wanted]  # type: ignore[arg-type]
        registry.archive(before=last // 2, to=tmp_path)
        registry.archive(before=last - 3, to=tmp_path)
        after = [registry.masters_as_of(when) for when in wanted]  # type: ignore[arg-type]
        assert after == before

    def test_a_reading_folds_fewer_events_than_a_checkpoint_holds(
        self,
        registry: Registry,
        clock: FakeClock,
        tmp_path: Path,
        small_checkpoints: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Once the segment's checkpoints are taken, a reading at any of its positions
        feeds the fold fewer than CHECKPOINT events."""
        build_log(registry, clock)
        last = registry.log_position()
        registry.archive(before=last - 3, to=tmp_path)
        registry.masters_as_of(last - 5)  # before the segment's last: every checkpoint
        fed: list[int] = []

        class Counting(RowFold):
            def feed(self, rows: Sequence[FoldRow]) -> None:
                fed.append(len(rows))
                super().feed(rows)

        monkeypatch.setattr(segment_fold, "RowFold", Counting)
        for position in range(1, last - 3):
            registry.masters_as_of(position)
        assert fed
        assert max(fed) < small_checkpoints

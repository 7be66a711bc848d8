"""Folding a sealed segment up to a position or a moment: its header's states (every
master just before its first event) with its events up to there folded on them.

A segment never changes, so what folding it learns is kept with the opened segment (as
long as :func:`eventstore.open_segment_kept` keeps that): its rows, read once and only as
far as a fold has needed, and the states after every :data:`CHECKPOINT` events, taken when
a fold first passes them. A fold then starts from the checkpoint at or before its end and
folds fewer than :data:`CHECKPOINT` events. It reads, and so may refuse (a
:class:`~eventstore.DecodeError`), exactly the events up to its end, as folding them from
the header does.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Iterator

from eventstore import SegmentFile, SegmentRow
from projections.fold import RowFold
from projections.model import MasterState
from projections.snapshots import to_state

#: Events between two kept states of a segment.
CHECKPOINT = 128


def fold_segment(
    opened: SegmentFile, *, upto: int | None = None, until: int | None = None
) -> dict[int, MasterState]:
    """The masters' states after the events of ``opened`` up to position ``upto`` (None:
    its last) and before the first recorded after ``until`` (microseconds; None: any), by
    id: those of :class:`RowFold` from its header's states over those events."""
    with _lock:
        folded = _FOLDED.get(opened)
        if folded is None:
            folded = _FOLDED[opened] = _Folded(opened)
    with folded.lock:
        return folded.states(upto, until)


class _Folded:
    """What folding one segment has learnt so far."""

    def __init__(self, opened: SegmentFile) -> None:
        self.lock = threading.Lock()
        self._first = opened.header.first_position
        self._last = opened.header.last_position
        self._source: Iterator[SegmentRow] | None = opened.rows()
        self._failed: ValueError | None = None
        self._rows: list[SegmentRow] = []
        #: The newest ``recorded_at`` of the rows up to each: where a moment ends a fold.
        self._reach: list[int] = []
        #: The states after ``k * CHECKPOINT`` rows, for k = 0, 1, ...
        self._kept: list[dict[int, MasterState]] = [
            {m.id: to_state(m) for m in opened.header.masters}
        ]

    def states(self, upto: int | None, until: int | None) -> dict[int, MasterState]:
        count = self._last - self._first + 1
        if upto is not None:
            count = max(0, min(upto, self._last) - self._first + 1)
        if until is not None:
            count = self._count_by(until, count)
        self._read(count)
        count = min(count, len(self._rows))
        mark = count // CHECKPOINT
        while len(self._kept) <= mark:
            start = (len(self._kept) - 1) * CHECKPOINT
            self._kept.append(self._fold(self._kept[-1], start, start + CHECKPOINT))
        return self._fold(self._kept[mark], mark * CHECKPOINT, count)

    def _fold(self, states: dict[int, MasterState], start: int, end: int) -> dict[int, MasterState]:
        folder = RowFold(states=states)
        folder.feed(self._rows[start:end])
        return dict(folder.states())

    def _count_by(self, until: int, limit: int) -> int:
        """How many of the first ``limit`` rows come before the first recorded after
        ``until``."""
        while (
            len(self._rows) < limit
            and (not self._reach or self._reach[-1] <= until)
            and self._more()
        ):
            pass
        return min(limit, bisect.bisect_right(self._reach, until))

    def _read(self, count: int) -> None:
        while len(self._rows) < count and self._more():
            pass

    def _more(self) -> bool:
        """Read one more row; False when there is none. A row that cannot be read raises
        (a :class:`~eventstore.SegmentFile`'s ``SegmentFormatError``), again at every
        later read past it."""
        if self._failed is not None:
            raise self._failed
        if self._source is None:
            return False
        try:
            row = next(self._source, None)
        except ValueError as error:
            self._failed = error
            raise
        if row is None:
            self._source = None
            return False
        self._rows.append(row)
        self._reach.append(max(row[6], self._reach[-1]) if self._reach else row[6])
        return True


#: What folding each kept segment has learnt, for as long as the segment is kept.
_FOLDED: weakref.WeakKeyDictionary[SegmentFile, _Folded] = weakref.WeakKeyDictionary()
_lock = threading.Lock()

__all__ = ["CHECKPOINT", "fold_segment"]

"""The masters' states an archive segment's header records (:class:`MasterSnapshot`), as
folds carry them (:class:`MasterState`), and the fold the archive seals with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventstore import MasterSnapshot, RecordedEvent
from projections.fold import apply_recorded
from projections.model import MasterState


def to_state(snapshot: MasterSnapshot) -> MasterState:
    """The fold's state of a header's snapshot."""
    return MasterState(
        id=snapshot.id,
        name=snapshot.name,
        active=snapshot.active,
        last_active=snapshot.last_active,
        version=snapshot.version,
    )


def to_snapshot(state: MasterState) -> MasterSnapshot:
    """The header's snapshot of a fold's state."""
    return MasterSnapshot(
        id=state.id,
        name=state.name,
        active=state.active,
        last_active=state.last_active,
        version=state.version,
    )


def fold_snapshots(
    before: Mapping[int, MasterSnapshot], events: Sequence[RecordedEvent]
) -> dict[int, MasterSnapshot]:
    """The masters' states after ``events`` (in log order), from those ``before`` them.

    Every event but a registration describes its master's whole state after it but the
    name (see :mod:`eventstore.events`), which only the first event of a stream gives: so
    each master's first event here and its last are what is folded, in log order (the
    archive hands over no others: :meth:`eventstore.SegmentFile.check`)."""
    firsts: dict[int, RecordedEvent] = {}
    lasts: dict[int, RecordedEvent] = {}
    for recorded in events:
        firsts.setdefault(recorded.master_id, recorded)
        lasts[recorded.master_id] = recorded
    picked = sorted(
        {e.position: e for e in (*firsts.values(), *lasts.values())}.values(),
        key=lambda e: e.position,
    )
    states = {key: to_state(snapshot) for key, snapshot in before.items()}
    for recorded in picked:
        states[recorded.master_id] = apply_recorded(states.get(recorded.master_id), recorded)
    return {key: to_snapshot(state) for key, state in states.items()}

"""The pure fold of master events into :class:`MasterState`: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from eventstore.codec import Codec
from eventstore.errors import DecodeError
from eventstore.events import (
    CODEC,
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
)
from eventstore.recorded import RecordedEvent
from projections.model import MasterState


class FoldError(DecodeError):
    """The events of a stream do not make a master (e.g. a check-in before registration)."""


#: ``masters.last_active`` is an SQL INTEGER of epoch seconds.
MAX_LAST_ACTIVE = 2**31 - 1


def apply(state: MasterState | None, master_id: int, version: int, event: Any) -> MasterState:
    """The state after ``event`` (the stream's event number ``version``) on ``state``."""
    last_active = getattr(event, "last_active", 0)
    if not 0 <= last_active <= MAX_LAST_ACTIVE:
        raise FoldError(
            f"master {master_id}: version {version} has last_active {last_active}, outside "
            f"0..{MAX_LAST_ACTIVE} (the masters table's INTEGER)"
        )
    if isinstance(event, MasterRegistered | MasterAdopted):
        if state is not None:
            raise FoldError(f"master {master_id}: {event.type_name} at version {version}")
        active = event.active if isinstance(event, MasterAdopted) else False
        return MasterState(
            id=master_id,
            name=event.name,
            active=active,
            last_active=event.last_active,
            version=version,
        )
    if state is None:
        raise FoldError(f"master {master_id}: {type(event).__name__} before registration")
    if isinstance(event, MasterActivated | MasterCheckedIn | MasterHousekeepingForced):
        return attrs.evolve(state, active=True, last_active=event.last_active, version=version)
    if isinstance(event, MasterDeactivated):
        return attrs.evolve(state, active=False, last_active=event.last_active, version=version)
    raise FoldError(f"master {master_id}: no fold for {type(event).__name__}")


def apply_recorded(
    state: MasterState | None, recorded: RecordedEvent, codec: Codec = CODEC
) -> MasterState:
    """:func:`apply` for an event as the log holds it."""
    return apply(state, recorded.master_id, recorded.version, codec.decode(recorded))


def fold(events: Iterable[RecordedEvent], codec: Codec = CODEC) -> dict[int, MasterState]:
    """Every master of ``events`` (in log order) folded to its last state, by id."""
    states: dict[int, MasterState] = {}
    for recorded in events:
        states[recorded.master_id] = apply_recorded(states.get(recorded.master_id), recorded, codec)
    return states

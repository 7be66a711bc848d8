"""Pure decisions: (state, command, now) -> the events to append. No I/O, no clock."""

from __future__ import annotations

import attrs

from eventstore import (
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterEvent,
    MasterHousekeepingForced,
    MasterRegistered,
)
from projections.model import MasterState


@attrs.frozen
class Decision:
    """The events a command appends, each with its reason, and the command's answer."""

    events: tuple[tuple[MasterEvent, str], ...] = ()
    changed: bool = False


def register(name: str, now: int) -> Decision:
    """A new name: the master exists from now on, inactive, last active now."""
    return Decision(((MasterRegistered(name=name, last_active=now), "registered"),), True)


def set_state(state: MasterState, active: bool, now: int, *, stop_reason: str) -> Decision:
    """``setMasterState``: activate, check in, deactivate, or nothing; ``changed`` is True
    only when ``active`` differs from the current state."""
    if active:
        event: MasterEvent = (
            MasterCheckedIn(last_active=now) if state.active else MasterActivated(last_active=now)
        )
        reason = "heartbeat" if state.active else "started"
    elif state.active:
        event, reason = MasterDeactivated(last_active=state.last_active), stop_reason
    else:
        return _adopting(state, Decision())
    return _adopting(state, Decision(((event, reason),), changed=active != state.active))


def expire(state: MasterState, now: int, timeout: int) -> Decision:
    """Deactivate an active master whose last check-in is older than ``now - timeout``."""
    if not state.active or state.last_active >= now - timeout:
        return _adopting(state, Decision())
    event = MasterDeactivated(last_active=state.last_active, timeout=timeout)
    return _adopting(state, Decision(((event, "expired"),), changed=True))


def force_housekeeping(state: MasterState) -> Decision:
    """Mark the master active at the epoch so that the next housekeeping expires it."""
    return _adopting(
        state, Decision(((MasterHousekeepingForced(last_active=0), "upgrade"),), changed=True)
    )


def adopt(state: MasterState) -> Decision:
    """Record a ``masters`` row that has no history, as found."""
    return _adopting(state, Decision())


def _adopting(state: MasterState, decision: Decision) -> Decision:
    """Put the adoption of a row with no history before anything else of that master."""
    if state.version:
        return decision
    adopted = MasterAdopted(name=state.name, active=state.active, last_active=state.last_active)
    return Decision(((adopted, "adopted"), *decision.events), decision.changed)

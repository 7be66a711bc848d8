"""Questions the log answers: a master's trail, and every master as of a past moment.

``masters_as_of`` never replays the log: every event records the master's ``last_active``
after it, so a master's state at position P is its newest event at or before P (found by
:func:`eventstore.stream_ends`), named by its first event.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from eventstore import RecordedEvent, events_at, position_at, read_stream, stream_ends
from projections.fold import apply_recorded
from projections.model import MasterModel, MasterState


def history(
    conn: Connection, master_id: int, *, since: int | None = None, until: int | None = None
) -> list[RecordedEvent]:
    """The events of one master, optionally within ``[since, until]`` (microseconds since
    the epoch), in order (a stream's versions follow its positions)."""
    return read_stream(conn, master_id, since=since, until=until)


def masters_as_of(
    conn: Connection, position: int, base: Mapping[int, MasterState] | None = None
) -> list[MasterModel]:
    """Every master as the log stood right after ``position`` (inclusive), by id.

    Two statements, index seeks only, whatever the length of the log: one finds, for every
    master, the position of its first event in the table (its name) and of its newest
    event at or before ``position`` (its state); the other fetches those events. ``base``:
    the masters' states where the table starts, when older events were archived (a master
    whose first event in the table is not its registration is named there).
    """
    pairs = stream_ends(conn, position, archived=base is not None)
    found = events_at(conn, (p for pair in pairs for p in pair))
    states = dict(base or {})
    for first, newest in pairs:
        earliest = found[first]
        state = None if earliest.version == 1 else states.get(earliest.master_id)
        state = apply_recorded(state, earliest)
        if newest != first:
            state = apply_recorded(state, found[newest])
        states[state.id] = state
    return sorted((state.to_model() for state in states.values()), key=lambda m: m.id)


__all__ = ["history", "masters_as_of", "position_at"]

"""Questions the log answers: a master's trail, and every master as of a past moment.

``masters_as_of`` never replays the log: every event records the master's ``last_active``
after it, so a master's state at position P is its newest event at or before P, named by
its first event (both found by :func:`eventstore.streams_at`, in one statement).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from eventstore import RecordedEvent, StreamsAt, position_at, read_stream, streams_at
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
    """Every master as the log stood right after ``position`` (inclusive), by id: one
    statement of index seeks, whatever the length of the log (see :func:`masters_at`)."""
    return masters_at(streams_at(conn, position=position), base)


def masters_at(
    streams: StreamsAt, base: Mapping[int, MasterState] | None = None
) -> list[MasterModel]:
    """Every master, by id, as ``streams`` found the events table: each master's first
    event there names it, its newest describes its state. ``base``: the masters' states
    where the table starts, when older events were archived (a master whose first event
    in the table is not its registration is named there)."""
    states = dict(base or {})
    for earliest, newest in streams.ends.values():
        state = None if earliest.version == 1 else states.get(earliest.master_id)
        state = apply_recorded(state, earliest)
        if newest.position != earliest.position:
            state = apply_recorded(state, newest)
        states[state.id] = state
    return sorted((state.to_model() for state in states.values()), key=lambda m: m.id)


__all__ = ["history", "masters_as_of", "masters_at", "position_at"]

"""Which events of a batch the log holds already: the idempotent re-append, and the ids
that conflict with what is stored.

An id the log stores is found by its unique index. A derived id (:mod:`eventstore.ids`)
names a stream version and a time, so it is found by the stream's ``(master_id,
version)``, and only where the event stored there is this very event: two writers deciding
on one version at one microsecond derive the same id for two events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.errors import EventIdConflict, InvalidArgument
from eventstore.ids import derivation, derived_event_id, is_derived, stored_event_id
from eventstore.reads import EVENT_ROWS
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import events


def stored_id(conn: Connection, new: NewEvent, master_id: int, version: int) -> uuid.UUID | None:
    """What the log stores of ``new``'s id at ``version`` of ``master_id``
    (:func:`eventstore.ids.stored_event_id`); a derived id naming an event that is stored
    elsewhere is an :class:`EventIdConflict`, as a stored id found twice is."""
    try:
        return stored_event_id(new.event_id, master_id, version, new.recorded_at)
    except InvalidArgument:
        if _find_stored(conn, [new]):
            raise EventIdConflict([str(new.event_id)]) from None
        raise


def stored_positions(
    conn: Connection, master_id: int, expected_version: int, batch: Sequence[NewEvent]
) -> tuple[int, ...] | None:
    """The positions of ``batch`` if it is stored exactly as appending it now would store
    it (same stream, same versions, same order); None if none of its ids is stored."""
    ids = [new.event_id for new in batch]
    found = _find_stored(conn, batch)
    if not found:
        return None
    same_batch = len(found) == len(ids) and all(
        (found[event_id].master_id, found[event_id].version)
        == (master_id, expected_version + 1 + offset)
        for offset, event_id in enumerate(ids)
    )
    if not same_batch:
        raise EventIdConflict([str(i) for i in ids if i in found])
    return tuple(found[event_id].position for event_id in ids)


def _find_stored(conn: Connection, batch: Sequence[NewEvent]) -> dict[uuid.UUID, Any]:
    """The events of ``batch`` that are stored, by id: rows with their position, master id
    and version."""
    kept = [new.event_id for new in batch if not is_derived(new.event_id)]
    named = {new.event_id: (new, place) for new in batch if (place := derivation(new.event_id))}
    found: dict[uuid.UUID, Any] = {}
    if kept:
        query = sa.select(
            events.c.event_id, events.c.position, events.c.master_id, events.c.version
        ).where(events.c.event_id.in_(kept))
        found.update({row.event_id: row for row in conn.execute(query)})
    if named:
        streams = sa.or_(
            *(
                sa.and_(events.c.master_id == m, events.c.version == v)
                for _, (m, v, _) in named.values()
            )
        )
        for row in conn.execute(EVENT_ROWS.where(streams, events.c.event_id.is_(None))):
            derived = derived_event_id(row.master_id, row.version, row.recorded_at)
            if derived in named and _is_stored_as(named[derived][0], row):
                found[derived] = row
    return found


def _is_stored_as(new: NewEvent, row: Any) -> bool:
    """Whether ``row`` (of :data:`~eventstore.reads.EVENT_ROWS`) holds ``new``."""
    return bool(
        row.recorded_at == new.recorded_at
        and row.type == new.type
        and row.schema_version == new.schema_version
        and row.data == canonical_json(new.data)
        and row.metadata == canonical_json(new.metadata)
    )

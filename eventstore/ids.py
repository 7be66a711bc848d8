"""Event ids: UUIDs that start with the time they carry (RFC 9562).

An event mastertrail writes gets a version 8 id derived from its master, version and time
(:func:`derived_event_id`). The log does not store it: the event's own columns give it
back, and the stream's unique ``(master_id, version)`` keeps it unique, so such an event
costs no id column and no index entry (the log's bytes per event, see
``docs/performance.rst``). An id of another form that a caller brings (version 4, or the
version 7 ids of older logs) is stored and kept unique by its own index. Either way an id
starts with its time, so where an index holds ids, appends grow it at its right edge: the
pages they touch are the same few, already cached.
"""

from __future__ import annotations

import os
import uuid

from eventstore.errors import InvalidArgument

#: The greatest time a version 7 id can carry: 48 bits of milliseconds.
MAX_MICROS = 2**48 * 1000 - 1


def new_event_id(micros: int) -> uuid.UUID:
    """A new event id carrying ``micros`` (microseconds since the epoch).

    The layout is RFC 9562's: 48 bits of milliseconds, the version, then the
    sub-millisecond part scaled into the 12 bits of ``rand_a`` (its section 6.2, method 3),
    the variant, and 62 random bits. Ids of later times sort after earlier ones, as UUIDs
    and as the 16 bytes the log stores.
    """
    if not 0 <= micros <= MAX_MICROS:
        raise ValueError(f"an event id carries 0 to {MAX_MICROS} microseconds, not {micros}")
    millis, sub = divmod(micros, 1000)
    rand_a = sub * 4096 // 1000
    rand_b = int.from_bytes(os.urandom(8), "big") >> 2
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def event_id_millis(event_id: uuid.UUID) -> int:
    """The milliseconds since the epoch that a version 7 or 8 (derived) id carries."""
    if event_id.version not in (7, 8):
        raise ValueError(f"{event_id} is not a version 7 or 8 UUID")
    return event_id.int >> 80


#: Master ids and versions a derived id can carry: 31 bits each.
MAX_DERIVED = 2**31 - 1


def derived_event_id(master_id: int, version: int, micros: int) -> uuid.UUID | None:
    """The event id that names the event at ``version`` of ``master_id``'s stream,
    recorded at ``micros``: a version 8 UUID (RFC 9562, section 5.8) that the log need not
    store, since the event's own columns give it back (see :func:`stored_event_id`).

    The layout: 48 bits of milliseconds, the version, the sub-millisecond microseconds
    (0..999) in 12 bits, the variant, then 31 bits of master id and 31 of version. Ids sort
    by time like version 7 ones. The stream's unique ``(master_id, version)`` makes them
    unique in the log, with no index of their own. None when a value is out of range.
    """
    if not (0 <= micros <= MAX_MICROS and 0 < master_id <= MAX_DERIVED):
        return None
    if not 0 < version <= MAX_DERIVED:
        return None
    millis, sub = divmod(micros, 1000)
    return uuid.UUID(
        int=millis << 80 | 0x8 << 76 | sub << 64 | 0b10 << 62 | master_id << 31 | version
    )


def event_id_for(master_id: int, version: int, micros: int) -> uuid.UUID:
    """The id of a new event at ``version`` of ``master_id`` recorded at ``micros``: the
    derived one, which the log need not store, else (out of its range) a version 7 one."""
    return derived_event_id(master_id, version, micros) or new_event_id(micros)


def is_derived(event_id: uuid.UUID) -> bool:
    """Whether ``event_id`` has the form of :func:`derived_event_id`'s ids (version 8)."""
    return event_id.version == 8


def derivation(event_id: uuid.UUID) -> tuple[int, int, int] | None:
    """``(master_id, version, micros)`` that a derived id names; None for another id."""
    if not is_derived(event_id):
        return None
    value = event_id.int
    mask = MAX_DERIVED
    found = (value >> 31 & mask, value & mask, (value >> 80) * 1000 + (value >> 64 & 0xFFF))
    return found if derived_event_id(*found) == event_id else None


def stored_event_id(
    event_id: uuid.UUID, master_id: int, version: int, micros: int
) -> uuid.UUID | None:
    """What the log stores for ``event_id`` of an event at ``version`` of ``master_id``,
    recorded at ``micros``: nothing (None) when the id is the one those columns derive,
    the id itself otherwise. A version 8 id that names another event is refused
    (:class:`InvalidArgument`): stored, it could equal the derived id of that event."""
    if not is_derived(event_id):
        return event_id
    if event_id != derived_event_id(master_id, version, micros):
        raise InvalidArgument(
            "event_id",
            f"is of version 8, which the log keeps for ids derived from an event's master, "
            f"version and time, and does not name version {version} of master {master_id} "
            f"recorded at {micros}",
            event_id,
        )
    return None


def as_uuid(stored: uuid.UUID | bytes | memoryview) -> uuid.UUID:
    """A stored event id as a driver gives it (a UUID, or its 16 bytes) as a UUID."""
    return stored if isinstance(stored, uuid.UUID) else uuid.UUID(bytes=bytes(stored))


def event_id_of(stored: uuid.UUID | None, master_id: int, version: int, micros: int) -> uuid.UUID:
    """The id of a stored event: the stored one, else the one its columns derive."""
    if stored is not None:
        return stored
    derived = derived_event_id(master_id, version, micros)
    if derived is None:
        raise ValueError(f"master {master_id} version {version} has no event id, stored or derived")
    return derived

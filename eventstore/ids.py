"""Event ids: UUIDs of version 7 (RFC 9562), ordered by the time they carry.

A random (version 4) id lands anywhere in the unique index on event ids, so every append
touches a different page of it, and on a long log that page is rarely in memory. A
version 7 id starts with its time, so appends, like the log itself, grow the index at its
right edge: the pages they touch are the same few, already cached.
"""

from __future__ import annotations

import os
import uuid

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
    """The milliseconds since the epoch that a version 7 id carries."""
    if event_id.version != 7:
        raise ValueError(f"{event_id} is not a version 7 UUID")
    return event_id.int >> 80

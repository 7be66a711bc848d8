"""One event's link in the hash chain: SHA-256 of the previous event's hash, the event's
position and its content, so a changed, removed or reordered row breaks every hash after
it. How a link is made (:func:`link`, and :func:`chain_link`, the chaining loops' fast
form of it); :mod:`eventstore.chain` verifies the table's chain with it."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from eventstore.ids import MAX_DERIVED, MAX_MICROS, event_id_of

#: The "previous hash" of the first event.
GENESIS = bytes(32)


def link(previous: bytes, *, position: int, **columns: Any) -> bytes:
    """The hash of one event given its predecessor's hash and its stored columns (those
    :func:`link_tail` takes): SHA-256 of the previous hash, the position in decimal, and
    the link's tail."""
    return extend(previous, position, link_tail(**columns))


def link_stored(previous: bytes, row: Any, event_id: uuid.UUID | None = None) -> bytes:
    """The hash of a stored event, a row as :data:`~eventstore.reads.EVENT_ROWS` reads it,
    given its predecessor's hash; ``event_id`` when the caller already derived it."""
    if event_id is None:
        event_id = event_id_of(row.event_id, row.master_id, row.version, row.recorded_at)
    return link(
        previous,
        position=row.position,
        event_id=event_id,
        master_id=row.master_id,
        version=row.version,
        type=row.type,
        schema_version=row.schema_version,
        data=row.data,
        metadata=row.metadata,
        recorded_at=row.recorded_at,
    )


def extend(previous: bytes, position: int, tail: bytes) -> bytes:
    """The hash at ``position`` after ``previous``, of an event whose :func:`link_tail` is
    ``tail``."""
    return hashlib.sha256(previous + str(position).encode() + tail).digest()


def link_tail(
    *,
    event_id: uuid.UUID,
    master_id: int,
    version: int,
    type: str,
    schema_version: int,
    data: str,
    metadata: str,
    recorded_at: int,
) -> bytes:
    """What an event's hash covers after its predecessor's hash and its position: all of
    it known before the event has a position, so that a database can chain an event it
    numbers itself (see :mod:`eventstore.fused`)."""
    return (
        f"\x00{event_id}\x00{master_id}\x00{version}\x00{type}\x00"
        f"{schema_version}\x00{recorded_at}\x00{len(data)}\x00{data}\x00{metadata}"
    ).encode()


def derived_id_text(master_id: int, version: int, micros: int) -> str:
    """``str(derived_event_id(...))`` without making the UUID; :class:`ValueError` when the
    event has no derived id. :func:`chain_link` makes the same text, with what is its
    master's made once per master."""
    bits = master_bits(master_id)
    if not (0 < version <= MAX_DERIVED and 0 <= micros <= MAX_MICROS):
        raise ValueError(f"master {master_id} version {version} has no event id")
    h = id_hex(bits, version, micros)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_hex(bits: int, version: int, micros: int) -> str:
    """The 32 hex digits of a derived event id, given its :func:`master_bits` (in range:
    see :func:`derived_id_text`): its time's milliseconds, its version (8) and
    sub-millisecond microseconds, then the bits and the version."""
    value = (micros // 1000 << 16 | 0x8000 | micros % 1000) << 64 | bits | version
    return value.to_bytes(16, "big").hex()


def master_bits(master_id: int) -> int:
    """The low 64 bits of a derived event id (:func:`~eventstore.ids.derived_event_id`)
    before its version is or-ed in: the variant and the master id. :class:`ValueError` when
    no id derives from ``master_id``."""
    if type(master_id) is not int or not 0 < master_id <= MAX_DERIVED:
        raise ValueError(f"master {master_id!r} has no derived event ids")
    return 0b10 << 62 | master_id << 31


def text_parts(type_: str, schema_version: int, data: str, metadata: str) -> tuple[str, bytes]:
    """The parts of an event's :func:`link_tail` around its time that the chaining loops
    make once per kind of event: before the time (its type and schema version) and after
    it (its data and metadata, encoded). The link of an event is then ``SHA-256(previous +
    f"{position}\\x00{event_id}\\x00{master_id}\\x00{version}{before}{recorded_at}".encode() +
    after)``, the bytes :func:`link` hashes."""
    return (
        f"\x00{type_}\x00{schema_version}\x00",
        f"\x00{len(data)}\x00{data}\x00{metadata}".encode(),
    )


#: Kinds of events whose :func:`text_parts` a chaining loop keeps, at most (events whose
#: data is their own would otherwise keep every one).
TEXT_PARTS_KEPT = 4096

#: What :func:`chain_link` keeps of each master from one event to the next (a dict, empty
#: at first, kept for a whole chaining loop): the low 48 bits of its derived ids before the
#: version is or-ed in, and the text of the 16 bits above them, between dashes.
MasterIdParts = dict[int, tuple[int, str]]

_sha256 = hashlib.sha256


def chain_link(
    previous: bytes,
    position: int,
    event_id: str | None,
    master_id: int,
    version: int,
    micros: int,
    parts: tuple[str, bytes],
    masters: MasterIdParts,
) -> bytes:
    """The hash of an event after ``previous`` (the one :func:`link` makes), from its
    position, its stored event id's text (None: derived, the text of
    :func:`derived_id_text`), master id, version, ``recorded_at`` in microseconds and
    :func:`text_parts`, with ``masters`` kept from one event to the next; raises
    :class:`ValueError` when the event id is neither stored nor derived.

    The link of the chaining loops (:func:`eventstore.chain.verify_chain` and
    :meth:`eventstore.archive_read.SegmentFile.check`), whose cost is mostly its own: the
    id's text is made from its time's 64 bits and from what :data:`MasterIdParts` keeps of
    its master, the version or-ed into the low bits."""
    if event_id is None:
        master = masters.get(master_id)
        if master is None:
            bits = master_bits(master_id)
            master = masters[master_id] = (bits & 0xFFFF_FFFF_FFFF, f"-{bits >> 48:04x}-")
        if not (0 < version <= MAX_DERIVED and 0 <= micros <= MAX_MICROS):
            raise ValueError(f"master {master_id} version {version} has no event id")
        low, middle = master
        h = (micros // 1000 << 16 | 0x8000 | micros % 1000).to_bytes(8, "big").hex()
        fields = (
            f"{position}\x00{h[:8]}-{h[8:12]}-{h[12:]}{middle}"
            f"{(low | version).to_bytes(6, 'big').hex()}\x00"
            f"{master_id}\x00{version}{parts[0]}{micros}"
        )
    else:
        fields = f"{position}\x00{event_id}\x00{master_id}\x00{version}{parts[0]}{micros}"
    return _sha256(previous + fields.encode() + parts[1]).digest()

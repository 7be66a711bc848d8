"""The hash chain: each event's hash covers its predecessor's hash and its own content,
so a changed, removed or reordered row breaks every hash after it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.engine import reading, translate_errors
from eventstore.ids import MAX_DERIVED, MAX_MICROS, as_uuid, event_id_of
from eventstore.reads import driver_rows
from eventstore.schema import HEAD_ROW_ID, archive_segments, archive_tips, events, head, texts

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

    The link of the chaining loops (:func:`verify_chain` and
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


@attrs.frozen
class ChainProblem:
    """One place where the stored log is not what was appended."""

    position: int
    problem: str


@attrs.frozen
class ChainReport:
    """The result of :func:`verify_chain`: events checked, and the problems in log order."""

    checked: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_position(self) -> int | None:
        return self.problems[0].position if self.problems else None


def verify_chain(engine: Engine, *, batch_size: int = 5000) -> ChainReport:
    """Recompute every hash of the log in position order and compare with the stored ones.

    The chain starts from the last archive segment's last hash, right after it (the
    segments themselves are checked by :func:`eventstore.archive_verify.verify_segments`).
    Reports the first position whose hash does not match (every later hash is then
    suspect and not reported again), a missing position, a head row that is missing (the
    log is then checked to its last row), that does not point at the last event or whose
    highest master id is below one the log uses, and rows past the head row. The log is
    checked up to the head as it stood when verification began, so appends committed
    meanwhile are not problems.
    """
    with translate_errors(), reading(engine) as conn:
        stored = conn.execute(
            sa.select(head.c.position, head.c.hash, head.c.last_master_id).where(
                head.c.id == HEAD_ROW_ID
            )
        ).first()
        if stored is None:  # checked to the last row stored, and reported below
            last = conn.execute(sa.select(sa.func.max(events.c.position))).scalar() or 0
        else:
            last = stored.position
        # The hot log continues the archive's chain from its last sealed event.
        sealed = conn.execute(
            sa.select(archive_segments.c.last_position, archive_segments.c.last_hash)
            .order_by(archive_segments.c.first_position.desc())
            .limit(1)
        ).first()
    problems: list[ChainProblem] = []
    previous, expected_position, checked = GENESIS, 1, 0
    if sealed is not None:
        previous, expected_position = bytes(sealed.last_hash), sealed.last_position + 1
    # The links computed as link_stored does, with what repeats made once (see text_parts).
    masters: MasterIdParts = {}
    parts: dict[tuple[int, int, str, int], tuple[str, bytes]] = {}
    names = Texts()
    for row in _rows(engine, batch_size, last, expected_position - 1, names):
        position, stored_id, master_id, version, type_id, schema, data, meta_id, at, hash_ = row
        checked += 1
        if position > expected_position:
            resumed = _archived_meanwhile(engine, expected_position, position)
            if resumed is not None:  # sealed while this ran: verify_segments checks them
                previous, expected_position = resumed, position
        if position != expected_position:
            problems.append(
                ChainProblem(
                    expected_position,
                    f"positions {expected_position}..{position - 1} are missing",
                )
            )
            break
        key = (type_id, schema, data, meta_id)
        around = parts.get(key)
        if around is None:
            type_, metadata = names.get(type_id), names.get(meta_id)
            if type_ is None or metadata is None:
                problems.append(ChainProblem(position, "its type or metadata text is missing"))
                break
            if len(parts) >= TEXT_PARTS_KEPT:
                parts.clear()
            around = parts[key] = text_parts(type_, schema, data, metadata)
        try:
            computed = chain_link(
                previous,
                position,
                None if stored_id is None else str(as_uuid(stored_id)),
                master_id,
                version,
                at,
                around,
                masters,
            )
        except ValueError:
            problems.append(ChainProblem(position, "its event id is neither stored nor derived"))
            break
        if computed != hash_:
            problems.append(ChainProblem(position, "hash does not match the event"))
            break
        previous, expected_position = computed, expected_position + 1
    if stored is None:
        problems.append(ChainProblem(last + 1, _HEAD_MISSING))
    elif not problems and (
        stored.position != expected_position - 1 or bytes(stored.hash) != previous
    ):
        problems.append(
            ChainProblem(
                expected_position,
                f"the head row says position {stored.position}, the log ends at "
                f"{expected_position - 1}",
            )
        )
    if not problems:
        problems.extend(_rows_past_head(engine))
    if not problems and stored is not None:
        problems.extend(_master_ids_past_head(engine, stored.last_master_id, last))
    return ChainReport(checked, problems)


def _archived_meanwhile(engine: Engine, expected: int, found: int) -> bytes | None:
    """The hash to chain the event at ``found`` on from, when the positions ``expected``
    .. ``found - 1`` went missing because an archive run sealed them after this
    verification began (a segment now ends right before ``found``); None otherwise."""
    with translate_errors(), reading(engine) as conn:
        # Segments are contiguous from position 1: one ending there covers ``expected``.
        segment = conn.execute(
            sa.select(archive_segments.c.last_hash).where(
                archive_segments.c.last_position == found - 1,
                archive_segments.c.first_position <= found - 1,
            )
        ).first()
    return None if segment is None or expected > found - 1 else bytes(segment.last_hash)


_HEAD_MISSING = (
    "the head row (mastertrail_head) is missing: nothing can be appended; "
    "`rebuild` restores it from the log"
)


def _rows(
    engine: Engine, batch_size: int, last: int, after: int, names: Texts
) -> Iterator[StoredRow]:
    """The log's rows of the positions ``(after, last]`` as the driver gives them
    (:data:`StoredRow`), a batch of ``batch_size`` at a time, each in a short read of its
    own with the texts it names not in ``names`` yet."""
    while True:
        with translate_errors(), reading(engine) as conn:
            rows = stored_rows(conn, after, last, batch_size)
            names.read(conn, rows)
        yield from rows
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


#: A stored event as the driver reads it: ``(position, event_id, master_id, version,
#: type_id, schema_version, data, metadata_id, recorded_at, hash)``, its texts by their
#: ids (see :class:`Texts`), the event id as the driver gives it (None when derived).
StoredRow = tuple[Any, ...]


def stored_rows(conn: Connection, after: int, upto: int, limit: int) -> list[StoredRow]:
    """The stored events of the positions ``(after, upto]``, the first ``limit`` of them
    in position order, read with the driver's own cursor in the connection's transaction:
    row objects, and each row's texts, would cost more than the chaining."""
    sql = (
        "SELECT position, event_id, master_id, version, type_id, schema_version, data, "
        f"metadata_id, recorded_at, hash FROM {events.name} "
        f"WHERE position > {int(after)} AND position <= {int(upto)} ORDER BY position "
        f"LIMIT {int(limit)}"
    )
    return driver_rows(conn, sql)


class Texts(dict[int, "str | None"]):
    """The texts of the log's rows by id (None: missing), read as rows need them."""

    def read(self, conn: Connection, rows: Sequence[StoredRow]) -> None:
        """Read the texts of ``rows`` not read yet (in ``conn``'s transaction)."""
        wanted = {row[4] for row in rows}
        wanted.update(row[7] for row in rows)
        wanted.difference_update(self)
        if not wanted:
            return
        found = conn.execute(
            sa.select(texts.c.id, texts.c.text).where(texts.c.id.in_(sorted(wanted)))
        )
        self.update(dict.fromkeys(wanted))
        self.update({int(key): str(text) for key, text in found})


def _rows_past_head(engine: Engine) -> list[ChainProblem]:
    """The rows stored past the head row, which only a write bypassing append makes.

    One statement reads both, so it sees one snapshot: an append commits its rows and the
    head together, and never makes them disagree.
    """
    newest = sa.select(sa.func.max(events.c.position)).scalar_subquery()
    with translate_errors(), reading(engine) as conn:
        row = conn.execute(
            sa.select(head.c.position, newest.label("newest")).where(head.c.id == HEAD_ROW_ID)
        ).one()
    if row.newest is None or row.newest <= row.position:
        return []
    return [
        ChainProblem(
            row.position + 1,
            f"positions {row.position + 1}..{row.newest} are stored past the head row",
        )
    ]


def _master_ids_past_head(engine: Engine, last_master_id: int, last: int) -> list[ChainProblem]:
    """A head row whose highest master id is below one the log uses (in the table, or a
    master whose whole stream is archived: its tip), which would hand that id out again
    to a new master."""
    with translate_errors(), reading(engine) as conn:
        top = max(
            conn.execute(sa.select(sa.func.max(table.c.master_id))).scalar() or 0
            for table in (events, archive_tips)
        )
    if top <= last_master_id:
        return []
    return [
        ChainProblem(
            last + 1,
            f"the head row's highest master id is {last_master_id}, the log uses master "
            f"{top}: a new master could be given an id in use; `rebuild` restores it",
        )
    ]

"""The hash chain: each event's hash covers its predecessor's hash and its own content,
so a changed, removed or reordered row breaks every hash after it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore.engine import reading, translate_errors
from eventstore.ids import event_id_of
from eventstore.reads import EVENT_ROWS
from eventstore.schema import HEAD_ROW_ID, archive_segments, archive_tips, events, head

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
    for row in _rows(engine, batch_size, last, expected_position - 1):
        checked += 1
        if row.position > expected_position:
            resumed = _archived_meanwhile(engine, expected_position, row.position)
            if resumed is not None:  # sealed while this ran: verify_segments checks them
                previous, expected_position = resumed, row.position
        if row.position != expected_position:
            problems.append(
                ChainProblem(
                    expected_position,
                    f"positions {expected_position}..{row.position - 1} are missing",
                )
            )
            break
        if row.type is None or row.metadata is None:
            problems.append(ChainProblem(row.position, "its type or metadata text is missing"))
            break
        try:
            event_id = event_id_of(row.event_id, row.master_id, row.version, row.recorded_at)
        except ValueError:
            problems.append(
                ChainProblem(row.position, "its event id is neither stored nor derived")
            )
            break
        computed = link_stored(previous, row, event_id)
        if computed != bytes(row.hash):
            problems.append(ChainProblem(row.position, "hash does not match the event"))
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


def _rows(engine: Engine, batch_size: int, last: int, after: int) -> Iterator[Any]:
    while True:
        with translate_errors(), reading(engine) as conn:
            rows = conn.execute(
                EVENT_ROWS.where(events.c.position > after, events.c.position <= last)
                .order_by(events.c.position)
                .limit(batch_size)
            ).all()
        yield from rows
        if len(rows) < batch_size:
            return
        after = rows[-1].position


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

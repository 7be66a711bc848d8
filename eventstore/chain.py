"""The hash chain of the log's table verified: every event's link (:mod:`eventstore.links`)
recomputed in position order from where the archive ends, and compared with the one
stored, with the head row and the master ids checked against the log."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.engine import reading, translate_errors
from eventstore.ids import as_uuid
from eventstore.links import GENESIS, TEXT_PARTS_KEPT, MasterIdParts, chain_link, text_parts
from eventstore.reads import driver_rows
from eventstore.schema import HEAD_ROW_ID, archive_segments, archive_tips, events, head, texts


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

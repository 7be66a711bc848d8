"""The masters' states where the archive ends, kept in the database
(``mastertrail_archive_states``, revision ``0010_archive_end_states``).

A reading of the table at a position after the archive starts from every master's state
at the archive's last position: :func:`recorded_end_states` reads them without opening a
segment. The transaction that records a sealed segment records them
(:func:`record_end_states`) for each master whose state the segment changed; a master's
row with the highest ``archived_through`` at or below a segment's last position is its
state there.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.archive_format import MasterSnapshot
from eventstore.engine import reading, translate_errors
from eventstore.schema import archive_states


def record_end_states(
    conn: Connection, states: Mapping[int, MasterSnapshot], *, archived_through: int
) -> int:
    """In the caller's transaction, which records the segment ending at position
    ``archived_through``, record the masters' ``states`` after it: those of the masters
    whose newest recorded state is of another version, or who have none (after segments
    sealed before revision ``0010``: every master). Returns the rows written."""
    recorded = {state.id: state.version for state, _ in _newest(conn, archived_through)}
    rows = [
        {
            "master_id": state.id,
            "archived_through": archived_through,
            "version": state.version,
            "name": state.name,
            "active": int(state.active),
            "last_active": state.last_active,
        }
        for _, state in sorted(states.items())
        if recorded.get(state.id) != state.version
    ]
    if rows:
        conn.execute(archive_states.insert(), rows)
    return len(rows)


def recorded_end_states(
    conn: Connection, archived_through: int
) -> dict[int, MasterSnapshot] | None:
    """Every master's state right after position ``archived_through``, the last of a
    sealed segment, by id; None when none were recorded with that segment (it was sealed
    before revision ``0010``, and none since). One statement of index seeks, a few per
    master, whatever the length of the archive."""
    found = _newest(conn, archived_through)
    if all(through != archived_through for _, through in found):
        return None  # every segment records a state: its last event's master's
    return {state.id: state for state, _ in found}


def state_recorded_after(conn: Connection, master_id: int, version: int) -> int | None:
    """The last position of the first segment after which a state of ``master_id`` at
    ``version`` or later was recorded (None: none was): the segment holding that version,
    since a state is recorded after every segment that changes the master's (unless the
    segment was sealed before revision ``0010``). One seek of the table's key."""
    found = conn.execute(
        sa.select(archive_states.c.archived_through)
        .where(archive_states.c.master_id == master_id, archive_states.c.version >= version)
        .order_by(archive_states.c.archived_through)
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def _newest(conn: Connection, archived_through: int) -> list[tuple[MasterSnapshot, int]]:
    """Each master's newest state recorded at or before ``archived_through``, with the
    position it was recorded at."""
    mariadb = conn.dialect.name in ("mysql", "mariadb")
    return [
        (_snapshot(row), int(row.archived_through))
        for row in conn.execute(_search(mariadb), {"through": archived_through})
    ]


@functools.cache
def _search(mariadb: bool) -> sa.Select[tuple[int, int, int, str, int, int]]:
    """The statement of :func:`_newest`, built once: for every master id of the table, a
    seek of the key for its row with the highest ``archived_through`` up to ``through``.
    The ids: MariaDB lists them with a loose scan of the key (its recursion would stop,
    silently, after ``max_recursive_iterations``); SQLite and PostgreSQL, which have no
    loose scan, skip from id to id recursively."""
    table = archive_states
    if mariadb:
        ids = sa.select(table.c.master_id.label("id")).distinct().cte("ids")
    else:
        later = table.alias("later")
        ids = sa.select(sa.func.min(table.c.master_id).label("id")).cte("ids", recursive=True)
        ids = ids.union_all(
            sa.select(
                sa.select(sa.func.min(later.c.master_id))
                .where(later.c.master_id > ids.c.id)
                .scalar_subquery()
            ).where(ids.c.id.is_not(None))
        )
    seek = table.alias("seek")
    newest = (
        sa.select(seek.c.archived_through)
        .where(
            seek.c.master_id == ids.c.id,
            seek.c.archived_through <= sa.bindparam("through", type_=sa.BigInteger()),
        )
        .order_by(seek.c.archived_through.desc())
        .limit(1)
        .scalar_subquery()
    )
    picked = sa.select(ids.c.id, newest.label("through")).where(ids.c.id.is_not(None)).subquery()
    return (
        sa.select(
            table.c.master_id,
            table.c.archived_through,
            table.c.version,
            table.c.name,
            table.c.active,
            table.c.last_active,
        )
        .join(
            picked,
            sa.and_(table.c.master_id == picked.c.id, table.c.archived_through == picked.c.through),
        )
        .order_by(table.c.master_id)
    )


class RecordedStates:
    """The recorded states replayed segment by segment, for ``verify``: after each
    segment, once any are recorded, the states a reading would start from there must be
    the fold of the log up to its last event."""

    def __init__(self, rows: list[tuple[int, MasterSnapshot]]) -> None:
        self._rows = rows  # (archived_through, state), in order of archived_through
        self._next = 0
        self._states: dict[int, MasterSnapshot] = {}

    @classmethod
    def read(cls, engine: Engine, archived_through: int) -> RecordedStates:
        """Every row recorded up to position ``archived_through``, in a short read."""
        table = archive_states
        with translate_errors(), reading(engine) as conn:
            rows = conn.execute(
                sa.select(table)
                .where(table.c.archived_through <= archived_through)
                .order_by(table.c.archived_through, table.c.master_id)
            ).all()
        return cls([(int(row.archived_through), _snapshot(row)) for row in rows])

    def problem_after(
        self, file_name: str, last_position: int, folded: Mapping[int, MasterSnapshot] | None
    ) -> str | None:
        """What is wrong with the states recorded up to ``last_position``, the last of the
        segment ``file_name``, given ``folded``, the fold of the log up to there (None:
        unknown); None when nothing is."""
        while self._next < len(self._rows) and self._rows[self._next][0] <= last_position:
            state = self._rows[self._next][1]
            self._states[state.id] = state
            self._next += 1
        if not self._states or folded is None or self._states == dict(folded):
            return None
        return (
            f"the masters' states recorded after archive segment {file_name} are not what "
            f"the events up to it make ({archive_states.name})"
        )


def _snapshot(row: sa.Row[tuple[int, int, int, str, int, int]]) -> MasterSnapshot:
    return MasterSnapshot(
        id=int(row.master_id),
        name=str(row.name),
        active=bool(row.active),
        last_active=int(row.last_active),
        version=int(row.version),
    )


__all__ = [
    "RecordedStates",
    "record_end_states",
    "recorded_end_states",
    "state_recorded_after",
]

"""The head row restored from the log: where the log ends, that event's hash, and the
highest master id it uses.

The head row holds nothing the events do not: every append moves it to its last event.
When it is gone or disagrees with the events (a partial restore, a row deleted or edited
by hand), nothing can be appended on it, and :func:`restore_head` sets it back from the
rows of the log. It checks no hash: ``verify`` does, before or after.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.engine import is_unavailable
from eventstore.errors import LogDamaged
from eventstore.links import GENESIS
from eventstore.schema import HEAD_ROW_ID, archive_segments, archive_tips, events, head
from eventstore.store import Head

_STORED = sa.select(head.c.position, head.c.hash, head.c.last_master_id).where(
    head.c.id == HEAD_ROW_ID
)


def head_of_log(conn: Connection) -> Head:
    """The head the log's rows give: its last position and hash (0 and the genesis hash
    when empty) and the highest master id of its events (0 when none). With every event
    archived, the log ends at the last sealed segment, and the masters whose whole stream
    is archived are those of the archived tips."""
    last = conn.execute(
        sa.select(events.c.position, events.c.hash).order_by(events.c.position.desc()).limit(1)
    ).first()
    top = conn.execute(
        sa.select(
            # not max(): on the system-versioned log MariaDB reads every row for it
            sa.func.coalesce(
                sa.select(events.c.master_id)
                .order_by(events.c.master_id.desc())
                .limit(1)
                .scalar_subquery(),
                0,
            ),
            sa.func.coalesce(sa.select(sa.func.max(archive_tips.c.master_id)).scalar_subquery(), 0),
        )
    ).one()
    highest = max(int(top[0]), int(top[1]))
    if last is None:
        last = conn.execute(
            sa.select(
                archive_segments.c.last_position.label("position"),
                archive_segments.c.last_hash.label("hash"),
            )
            .order_by(archive_segments.c.first_position.desc())
            .limit(1)
        ).first()
    if last is None:
        return Head(0, GENESIS, highest)
    return Head(int(last.position), bytes(last.hash), highest)


def restore_head(conn: Connection, *, only_if_missing: bool = False) -> Head | None:
    """Set the head row to :func:`head_of_log`, in the caller's transaction (see
    :func:`_restore`); a database that refuses it (a guard trigger) raises
    :class:`~eventstore.errors.LogDamaged`."""
    try:
        return _restore(conn, only_if_missing=only_if_missing)
    except sa.exc.DBAPIError as error:
        if is_unavailable(error):
            raise
        raise LogDamaged(
            f"the head row cannot be restored from the log, the database refuses it: "
            f"{str(error.orig).strip().splitlines()[0] if error.orig else error}"
        ) from error


def _restore(conn: Connection, *, only_if_missing: bool) -> Head | None:
    """Set the head row to :func:`head_of_log`, in the caller's transaction: insert it when
    it is missing, or (unless ``only_if_missing``) update it when its position or hash is
    not the log's last event, or its highest master id is below one the log uses (a higher
    one is kept: an id is never handed out twice). Returns the head written, or None when
    the row was right."""
    stored = conn.execute(_STORED.with_for_update()).first()
    wanted = head_of_log(conn)
    if stored is None:
        conn.execute(
            head.insert().values(
                id=HEAD_ROW_ID,
                position=wanted.position,
                hash=wanted.hash,
                last_master_id=wanted.last_master_id,
            )
        )
        return wanted
    if only_if_missing:
        return None
    if (
        stored.position == wanted.position
        and bytes(stored.hash) == wanted.hash
        and stored.last_master_id >= wanted.last_master_id
    ):
        return None
    restored = Head(
        wanted.position, wanted.hash, max(int(stored.last_master_id), wanted.last_master_id)
    )
    conn.execute(
        head.update()
        .where(head.c.id == HEAD_ROW_ID)
        .values(
            position=restored.position, hash=restored.hash, last_master_id=restored.last_master_id
        )
    )
    return restored

"""What every writer shares: an event's stored row and the tail of its link, its insert
with its texts found by their digests in the statement that writes it, the head's move,
and driver errors made typed.

An event's row carries the digests of its texts, never their ids (see
:mod:`eventstore.texts`): the statement finds the ids itself, so an event can only name the
text it was hashed with. Each database's whole statement is in its writer
(:mod:`eventstore.writer`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore import texts as stored_texts
from eventstore.errors import EventIdConflict
from eventstore.head import Tip
from eventstore.links import link_tail
from eventstore.recorded import NewEvent, canonical_json
from eventstore.schema import archive_tips, events, texts

#: An event's stored row, by column (its texts by digest), as the writers build it.
Row = dict[str, Any]
W = TypeVar("W")

#: The columns naming a text, and the row's key holding the digest the write finds it by.
TEXT_COLUMNS = {"type_id": "type_digest", "metadata_id": "metadata_digest"}

COLUMNS = tuple(column.name for column in events.columns)
#: The columns an event brings itself: all but those the database gives it when it chains.
OWN = tuple(name for name in COLUMNS if name not in ("position", "hash"))
#: An insert's column list matching a ``SELECT position, <own>, hash`` source.
CHAINED_COLUMNS = ", ".join(("position", *OWN, "hash"))


def text_id(key: str) -> sa.ScalarSelect[int]:
    """The id of the text whose digest is the parameter ``key``: NULL when none is stored,
    which the column's NOT NULL refuses."""
    digest = sa.bindparam(key, type_=texts.c.digest.type)
    return sa.select(texts.c.id).where(texts.c.digest == digest).scalar_subquery()


def row_values(prefix: str = "", *, declared: bool = False) -> dict[str, Any]:
    """An event row's values as parameters named ``prefix`` + column (its texts found by
    their digests; ``declared``: in variables named ``<prefix><digest key>_id``, which a
    MariaDB compound statement set)."""
    return {
        name: (
            sa.literal_column(f"{prefix}{TEXT_COLUMNS[name]}_id")
            if declared
            else text_id(prefix + TEXT_COLUMNS[name])
        )
        if name in TEXT_COLUMNS
        else sa.bindparam(prefix + name, type_=events.c[name].type)
        for name in COLUMNS
    }


#: One event's insert, its parameters named by column.
INSERT = events.insert().values(row_values())


def id_bytes(stored: uuid.UUID | None) -> bytes | None:
    """A stored event id as the driver's own call binds it (None: derived, not stored)."""
    return None if stored is None else stored.bytes


def one_statement_params(
    rows: list[dict[str, Any]], head_params: Mapping[str, Any], also: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The parameters of a one-statement write: the head's, each row's as ``r{i}_name``,
    and the caller's own update's."""
    return {
        **head_params,
        **{f"r{i}_{name}": value for i, row in enumerate(rows) for name, value in row.items()},
        **({} if also is None else also),
    }


def event_values(cast: Mapping[str, str], *, declared: bool = False) -> str:
    """An event's own columns as driver parameters in SQL text, with their casts where the
    database wants them; its texts' ids found by their digests (``declared``: in variables
    a MariaDB compound statement set)."""

    def value(name: str) -> str:
        if name in TEXT_COLUMNS and declared:
            return f"{TEXT_COLUMNS[name]}_id"
        if name in TEXT_COLUMNS:
            digest = f"%({TEXT_COLUMNS[name]})s{cast.get('digest', '')}"
            return f"(SELECT id FROM {texts.name} WHERE digest = {digest})"
        return f"%({name})s{cast.get(name, '')}"

    return ", ".join(value(name) for name in OWN)


def newest_version(master_id: int, *, locking: bool = False) -> sa.Select[Any]:
    """The version of the newest event of ``master_id``: its newest in the table, else
    (every event of the stream archived) its newest archived tip; NULL for an empty stream.
    ``locking``: each read a locking read (see :attr:`eventstore.writer.Writer.locking_reads`)."""
    hot = (
        sa.select(events.c.version)
        .where(events.c.master_id == master_id)
        .order_by(events.c.version.desc())
        .limit(1)
    )
    # Only a stream with no event in the table reads its tip: the table's newest event is
    # newer than any archived one.
    tip = (
        sa.select(archive_tips.c.version)
        .where(archive_tips.c.master_id == master_id)
        .order_by(archive_tips.c.version.desc())
        .limit(1)
    )
    if locking:
        hot, tip = hot.with_for_update(read=True), tip.with_for_update(read=True)
    return sa.select(sa.func.coalesce(hot.scalar_subquery(), tip.scalar_subquery()))


def typed_errors(conn: Connection, batch: Sequence[NewEvent], write: Callable[[], W]) -> W:
    """Run ``write``, its driver errors made typed: a text it names that is not stored
    (:class:`~eventstore.errors.TextNotStored`), or an event id stored already."""
    try:
        return write()
    except sa.exc.DBAPIError as error:
        missing = stored_texts.not_stored(conn, error)
        if missing is not None:
            raise missing from error
        if isinstance(error, sa.exc.IntegrityError):
            raise EventIdConflict([str(new.event_id) for new in batch]) from error
        raise


def own_columns(
    new: NewEvent,
    stored_id: uuid.UUID | None,
    master_id: int,
    version: int,
    digests: dict[str, bytes],
    metadata: str,
) -> tuple[Row, bytes]:
    """The columns of ``new`` that do not depend on where it lands (all but position and
    hash; its type name and metadata by the digests the write finds their texts by), its
    id stored as ``stored_id``, and the tail of its link."""
    data = canonical_json(new.data)
    row = {
        "event_id": stored_id,
        "master_id": master_id,
        "version": version,
        "type_digest": digests[new.type],
        "schema_version": new.schema_version,
        "data": data,
        "metadata_digest": digests[metadata],
        "recorded_at": new.recorded_at,
    }
    tail = link_tail(
        event_id=new.event_id,
        master_id=master_id,
        version=version,
        type=new.type,
        schema_version=new.schema_version,
        data=data,
        metadata=metadata,
        recorded_at=new.recorded_at,
    )
    return row, tail


def head_params(before: Tip, rows: list[Row], master_id: int) -> dict[str, Any]:
    """The parameters of :data:`~eventstore.head.MOVE_HEAD` moving the head from
    ``before`` past ``rows``."""
    return {
        "seen_position": before.position,
        "seen_hash": before.hash,
        "new_position": rows[-1]["position"],
        "new_hash": rows[-1]["hash"],
        "head_master_id": master_id,
    }

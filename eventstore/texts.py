"""Interned texts: every event type name and every metadata document is stored once, in
``mastertrail_texts``, and events refer to it by id.

A process writes the same metadata (actor, host, pid, reason) on every heartbeat; kept in
each row it was most of the row. Texts are append-only like the log (the same triggers
refuse UPDATE and DELETE), and the hash chain covers the texts, not their ids, so a changed
text breaks the chain at the first event that uses it.

Each text is found by the SHA-256 of its UTF-8 (``digest``, unique), computed here, never by
the database, whose collation may call different texts equal. The ids a process has seen
committed are cached per engine, so an append whose texts are all known sends no statement
for them.

A new text is stored apart from the caller's transaction on PostgreSQL and MariaDB, in a
short transaction of its own on another connection, committed at once: the caller then holds
no lock on a text while it waits for the log's head, and another writer holding the head
never waits for it (an append locks the head before it stores its texts, a heartbeat after).
A text whose append is rolled back stays stored, unused. SQLite has one writer at a time,
so there the text is stored in the caller's transaction, and an id it stored is not cached
until a later transaction finds it committed: a rollback would take it away.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from eventstore.errors import DecodeError
from eventstore.schema import texts

#: Committed text ids, per engine: text -> id.
_KNOWN: weakref.WeakKeyDictionary[Engine, dict[str, int]] = weakref.WeakKeyDictionary()
#: Engines whose broken connections make them forget their ids.
_WATCHED: weakref.WeakSet[Engine] = weakref.WeakSet()
#: ``Connection.info`` key of the texts stored by the connection's current transaction.
_STORED_NOW = "mastertrail_texts_stored"

_FIND = sa.select(texts.c.id, texts.c.digest, texts.c.text).where(
    texts.c.digest.in_(sa.bindparam("digests", expanding=True))
)


def digest(text: str) -> bytes:
    """The key a text is stored under: the SHA-256 of its UTF-8."""
    return hashlib.sha256(text.encode()).digest()


def text_ids(conn: Connection, values: Collection[str]) -> dict[str, int]:
    """The ids of ``values``, storing those not stored yet.

    A text another writer is storing at the same moment is waited for and then taken from
    it. Raises :class:`~eventstore.errors.DecodeError` when a stored text does not match
    its digest (it was changed outside mastertrail).
    """
    known = _known(conn.engine)
    ids = {value: known[value] for value in values if value in known}
    missing = {digest(value): value for value in values if value not in ids}
    if not missing:
        return ids
    if conn.dialect.name == "sqlite":
        ids.update(_store(conn, missing, known, _stored_now(conn)))
        return ids
    with conn.engine.connect() as apart:
        stored = _store(apart, missing, known, {})
        apart.commit()
    known.update(stored)
    ids.update(stored)
    return ids


def _store(
    conn: Connection, missing: dict[bytes, str], known: dict[str, int], stored_now: dict[str, int]
) -> dict[str, int]:
    """The ids of the ``missing`` texts (by digest), stored in ``conn``'s transaction when
    not found; ``stored_now`` holds what this transaction stored (never cached here)."""
    ids = {}
    for row in conn.execute(_FIND, {"digests": list(missing)}).all():
        value = missing.pop(bytes(row.digest))
        ids[value] = _checked(row, value)
        if value not in stored_now:
            known[value] = ids[value]  # visible and not ours: committed
    for key, value in sorted(missing.items()):  # one order for all: no deadlock
        text_id = _insert(conn, key, value)
        if text_id is not None:
            ids[value] = stored_now[value] = text_id
        else:  # another transaction stored it first, and committed
            ids[value] = known[value] = _stored_by_another(conn, key, value)
    return ids


def _insert(conn: Connection, key: bytes, value: str) -> int | None:
    """Store a text; its id, or None when another transaction stored it first (waited for
    until it committed). SQLite has one writer, so no other transaction can."""
    if conn.dialect.name == "postgresql":
        statement = (
            postgresql.insert(texts)
            .values(digest=key, text=value)
            .on_conflict_do_nothing(index_elements=[texts.c.digest])
            .returning(texts.c.id)
        )
        return conn.execute(statement).scalar()
    try:
        primary_key = conn.execute(
            texts.insert().values(digest=key, text=value)
        ).inserted_primary_key
    except sa.exc.IntegrityError:
        if conn.dialect.name != "mysql":
            raise
        return None  # InnoDB undid the statement only: the transaction goes on
    assert primary_key is not None
    return int(primary_key[0])


def _stored_by_another(conn: Connection, key: bytes, value: str) -> int:
    """The id of a text another transaction just committed: a locking read, which sees the
    newest committed row even in a MariaDB transaction's older snapshot."""
    return _checked(conn.execute(_FIND.with_for_update(read=True), {"digests": [key]}).one(), value)


def _checked(row: Any, value: str) -> int:
    """The id of a stored text found by the digest of ``value``, if it holds ``value``."""
    if row.text != value:
        raise DecodeError(f"text {row.id} does not match its digest: it was changed")
    return int(row.id)


def forget(engine: Engine) -> None:
    """Drop the cached ids of ``engine`` (after its schema was made anew)."""
    _KNOWN.pop(engine, None)


def _known(engine: Engine) -> dict[str, int]:
    """The cached ids of ``engine``, forgotten whenever one of its connections is found
    broken: the database it connects to again may have been restored or made anew, with
    its texts under other ids."""
    known = _KNOWN.get(engine)
    if known is None:
        known = _KNOWN[engine] = {}
        if engine not in _WATCHED:
            _WATCHED.add(engine)
            watched = weakref.ref(engine)

            def forget_on_invalidate(*_: object) -> None:
                found = watched()
                if found is not None:
                    forget(found)

            sa.event.listen(engine, "invalidate", forget_on_invalidate)
    return known


def _stored_now(conn: Connection) -> dict[str, int]:
    """The texts the connection's current transaction stored."""
    transaction = conn.get_transaction()
    entry = conn.info.get(_STORED_NOW)
    if entry is None or entry[0] is not transaction:
        entry = conn.info[_STORED_NOW] = (transaction, {})
    stored: dict[str, int] = entry[1]
    return stored

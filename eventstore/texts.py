"""Interned texts: every event type name and every metadata document is stored once, in
``mastertrail_texts``, and events refer to it by id.

A process writes the same metadata (actor, host, pid, reason) on every heartbeat; kept in
each row it was most of the row. Texts are append-only like the log (the same triggers
refuse UPDATE and DELETE), and the hash chain covers the texts, not their ids, so a changed
text breaks the chain at the first event that uses it.

Each text is found by the SHA-256 of its UTF-8 (``digest``, unique), computed here, never by
the database, whose collation may call different texts equal.

No process ever holds a text's id. The statement that writes an event finds the ids of its
type name and metadata itself, from their digests, in the database it writes to
(:mod:`eventstore.fused`): an event can only ever name the text it was hashed with, even
when the database was restored, or made anew, under a running process. What a process
remembers, per engine, is only which digests it has seen stored, so that an append of known
texts sends no statement for them. If that memory is wrong (the database was restored since,
or the transaction that stored a text was rolled back), the write finds no text for a
digest and fails before it writes anything (:class:`TextNotStored`); the process forgets
what it remembered, and the command's next attempt stores the texts again.

A new text is stored in the writer's own transaction, after it has locked the log's head
(:func:`eventstore.store.lock_head`): texts are stored by one writer at a time, so two
writers never wait for each other's new texts, and a write needs one connection only.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Collection, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.errors import DecodeError, TextNotStored
from eventstore.schema import texts

#: Digests of texts seen committed, per engine: a hint, never trusted by a write.
_KNOWN: weakref.WeakKeyDictionary[Engine, set[bytes]] = weakref.WeakKeyDictionary()
_NONE: frozenset[bytes] = frozenset()
#: ``Connection.info`` key of the digests stored by the connection's current transaction.
_STORED_NOW = "mastertrail_texts_stored"
#: The message of the error a MariaDB write raises when a text it names is not stored.
NOT_STORED = "mastertrail: a text of the event is not stored"

_FIND = sa.select(texts.c.digest, texts.c.text).where(
    texts.c.digest.in_(sa.bindparam("digests", expanding=True))
)
#: MariaDB: a locking read sees the newest committed texts even in an older snapshot.
_FIND_LOCKING = _FIND.with_for_update(read=True)


def digest(text: str) -> bytes:
    """The key a text is stored under: the SHA-256 of its UTF-8."""
    return hashlib.sha256(text.encode()).digest()


def unknown(conn: Connection, digests: Mapping[str, bytes]) -> dict[bytes, str]:
    """Those of the texts (with their ``digests``) not known to be stored, by digest: to
    be stored by :func:`store` (under the head's lock) before an event names them."""
    known = _KNOWN.get(conn.engine, _NONE)
    missing = {key: value for value, key in digests.items() if key not in known}
    if missing:
        now = _stored_now(conn)
        missing = {key: value for key, value in missing.items() if key not in now}
    return missing


def find(conn: Connection, missing: dict[bytes, str]) -> dict[bytes, str]:
    """Those of the ``missing`` texts (by digest) that are not stored; the others are
    remembered as stored. Raises :class:`~eventstore.errors.DecodeError` when a stored
    text does not match its digest (it was changed outside mastertrail)."""
    find = _FIND_LOCKING if conn.dialect.name == "mysql" else _FIND
    known = _KNOWN.setdefault(conn.engine, set())
    now = _stored_now(conn)
    missing = dict(missing)
    for row in conn.execute(find, {"digests": list(missing)}):
        key = bytes(row.digest)
        if row.text != missing.pop(key):
            raise DecodeError(f"text {key.hex()} does not match its digest: it was changed")
        if key not in now:
            known.add(key)  # stored, and not by this transaction: committed
    return missing


def store(conn: Connection, missing: dict[bytes, str]) -> None:
    """Store the ``missing`` texts (by digest) that are not stored yet, in ``conn``'s
    transaction, which must hold the head's lock (so no other writer stores a text at the
    same time)."""
    missing = find(conn, missing)
    if missing:
        rows = [{"digest": key, "text": value} for key, value in sorted(missing.items())]
        conn.execute(texts.insert(), rows)
        _stored_now(conn).update(missing)  # known once a later transaction finds them


def text_ids(conn: Connection, values: Collection[str]) -> dict[str, int]:
    """The ids of ``values`` as stored now, storing those not stored yet (for a bulk
    loader that writes events with their ids; the caller holds the head's lock or is the
    only writer). Looked up afresh, never cached."""
    store(conn, {digest(value): value for value in values})
    keys = {digest(value): value for value in values}
    found = conn.execute(
        sa.select(texts.c.id, texts.c.digest).where(texts.c.digest.in_(list(keys)))
    )
    return {keys[bytes(row.digest)]: int(row.id) for row in found}


def not_stored(conn: Connection, error: sa.exc.DBAPIError) -> TextNotStored | None:
    """If ``error`` is a write finding no text for a digest, forget what ``conn``'s engine
    remembers of stored texts and return the error to raise instead; else None."""
    message = str(error.orig)
    lowered = message.lower()
    missing_id = ("type_id" in message or "metadata_id" in message) and (
        "null" in lowered or "1048" in message
    )
    if not (missing_id or NOT_STORED in message):
        return None
    forget(conn.engine)
    return TextNotStored()


def forget(engine: Engine) -> None:
    """Forget which texts ``engine`` has seen stored (its database was restored or made
    anew)."""
    _KNOWN.pop(engine, None)


def _stored_now(conn: Connection) -> set[bytes]:
    """The digests the connection's current transaction stored."""
    transaction = conn.get_transaction()
    entry = conn.info.get(_STORED_NOW)
    if entry is None or entry[0] is not transaction:
        entry = conn.info[_STORED_NOW] = (transaction, set())
    stored: set[bytes] = entry[1]
    return stored

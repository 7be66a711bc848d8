"""The stored envelope: what goes into the log (:class:`NewEvent`) and what comes out
(:class:`RecordedEvent`). Domain events are mapped to and from it by :mod:`eventstore.codec`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import attrs

UTC = dt.UTC


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def to_micros(when: dt.datetime) -> int:
    """Microseconds since the POSIX epoch of an aware datetime."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> dt.datetime:
    """The aware UTC datetime of microseconds since the POSIX epoch."""
    return EPOCH + dt.timedelta(microseconds=micros)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class NewEvent:
    """An event about to be appended: already encoded, not yet positioned."""

    event_id: uuid.UUID
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: int  # microseconds since the epoch, UTC


@attrs.frozen(kw_only=True)
class RecordedEvent:
    """An event as the log holds it.

    ``position`` is its place in the global, gap-free order; ``version`` its place in its
    master's stream (1..n); ``data`` is as stored, in schema ``schema_version``.
    """

    position: int
    event_id: uuid.UUID
    master_id: int
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: dt.datetime
    hash: str  # hex SHA-256 chained to the previous event of the log

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of this event (times in ISO 8601, ids as strings)."""
        return {
            "position": self.position,
            "event_id": str(self.event_id),
            "master_id": self.master_id,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
            "hash": self.hash,
        }

"""What a caller tells a writer it knows when it appends, and what the writer answers
(:mod:`eventstore.writer`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import sqlalchemy as sa

from eventstore.head import Tip

#: A statement of the caller's, with its parameters, run along with an append (its view
#: row's update). Its parameter names must not start with ``r<digit>_``, ``seen_``,
#: ``new_`` or ``head_``.
ViewUpdate = tuple[sa.Update, Mapping[str, Any]]


@attrs.frozen
class StreamAt:
    """The caller knows the stream's version only: the writer locks the head and checks
    it."""

    version: int


@attrs.frozen
class AfterSeen:
    """The caller read the stream at ``version`` in the same snapshot as the head at
    ``seen`` (one statement, :func:`eventstore.head.with_head`), or both are what its own
    last write left: the append happens only if the head is still at ``seen``."""

    version: int
    seen: Tip


@attrs.frozen
class AfterOwn:
    """The stream's newest event is the caller's own write, at ``version`` and ending at
    ``last`` (None for an empty stream, at version 0): its hash chains the whole log up
    to it, so the stream is exactly what the caller knows, whoever wrote since."""

    version: int
    last: Tip | None

    def __attrs_post_init__(self) -> None:
        if (self.last is None) != (self.version == 0):
            raise ValueError("last is the stream's newest event: None only for an empty stream")


Expectation = StreamAt | AfterSeen | AfterOwn


@attrs.frozen
class AppendResult:
    """Where a batch landed and the hash of its last event, which the head now holds;
    ``duplicate`` when it had been stored before and nothing was written now (an idempotent
    retry; no hash then)."""

    positions: tuple[int, ...]
    duplicate: bool = False
    hash: bytes | None = None

    @property
    def last_position(self) -> int:
        return self.positions[-1]

    @property
    def tip(self) -> Tip | None:
        """Where the log ends after this write (None if nothing was written)."""
        return None if self.hash is None else Tip(self.positions[-1], self.hash)

"""The read model: :class:`MasterModel` as callers see it, :class:`MasterState` as folds
carry it (with the stream version)."""

from __future__ import annotations

import datetime as dt
import hashlib

import attrs

from eventstore import EPOCH


def name_hash(name: str) -> str:
    """Buildbot's ``name_hash``: the SHA-1 hex digest of the UTF-8 name."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def epoch_to_datetime(seconds: int) -> dt.datetime:
    """Aware UTC datetime of whole epoch seconds, as Buildbot's ``epoch2datetime``."""
    return EPOCH + dt.timedelta(seconds=seconds)


@attrs.frozen
class MasterModel:
    """A master as ``getMaster``/``getMasters`` return it."""

    id: int
    name: str
    active: bool
    last_active: dt.datetime  # aware UTC, whole seconds


@attrs.frozen(kw_only=True)
class MasterState:
    """One master folded from its stream; ``version`` is the newest event's version (0 for a
    ``masters`` row that has no history yet)."""

    id: int
    name: str
    active: bool
    last_active: int  # epoch seconds
    version: int

    def to_model(self) -> MasterModel:
        return MasterModel(self.id, self.name, self.active, epoch_to_datetime(self.last_active))

"""How a master stopped, read from the log: a pure reading of a ``master.deactivated``
event and the event before it in the master's stream.

* **stopped**: a clean stop, recorded by the process that ran the master (or by someone
  who is not a master, naming themselves).
* **found dead**: the master's own name deactivated it from another process than the one
  that last showed it alive: a buildmaster that restarts after a crash (``kill -9``, a
  lost host) first marks itself stopped. The silence is how long it was gone.
* **expired by a master**: another master's housekeeping found it silent.
* **expired by an operator**: ``mastertrail expire`` (an actor that is no master).

No event format changes for this: the metadata of every event names its actor, host and
process, and a deactivation records the last sign of life (``last_active``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container
from typing import Literal

import attrs

from eventstore import CODEC, MasterDeactivated, RecordedEvent

StopKind = Literal["stopped", "found_dead", "expired_by_master", "expired_by_operator"]

DEACTIVATED = MasterDeactivated.type_name


@attrs.frozen(kw_only=True)
class Stop:
    """A deactivation as a person reads it: what kind, by whom, when, after how long a
    silence (seconds from the last sign of life to the deactivation)."""

    kind: StopKind
    by: str
    at: dt.datetime
    silence: int | None  # None when the last sign of life was a reset "long ago"
    timeout: int | None = None

    def describe(self, name: str | None = None) -> str:
        """A short sentence: ``expired by m2 after 11 min of silence``."""
        # A master marked active "long ago" (the epoch) by an upgrade has no silence.
        after = (
            " after a reset long ago"
            if self.silence is None
            else f" after {duration_text(self.silence)} of silence"
        )
        if self.kind == "found_dead":
            return f"found dead at restart{after}"
        if self.kind == "expired_by_master":
            return f"expired by {self.by}{after}"
        if self.kind == "expired_by_operator":
            limit = "" if self.timeout is None else f", timeout {self.timeout} s"
            return f"expired by operator {self.by}{after}{limit}"
        if name is not None and self.by != name:
            return f"stopped by {self.by}"
        return "stopped cleanly"


def classify_stop(
    event: RecordedEvent, before: RecordedEvent | None, masters: Container[str]
) -> Stop | None:
    """The :class:`Stop` a deactivation ``event`` records (None for another event).

    ``before`` is the event before it in the same stream (None if unknown); ``masters``
    holds the names of the masters, to tell an expiry by a master from one by an operator.
    The deactivation is read through the codec: one it cannot decode is refused
    (:class:`eventstore.DecodeError`).
    """
    if event.type != DEACTIVATED:
        return None
    deactivated: MasterDeactivated = CODEC.decode(event)  # upcast, as the fold reads it
    by = str(event.metadata.get("actor", ""))
    last_active, timeout = deactivated.last_active, deactivated.timeout
    seconds = int(event.recorded_at.timestamp())
    silence = max(seconds - last_active, 0) if last_active > 0 else None
    kind: StopKind
    if event.metadata.get("reason") == "expired" or timeout is not None:
        kind = "expired_by_master" if by in masters else "expired_by_operator"
    elif before is not None and _same_actor(event, before) and not _same_process(event, before):
        kind = "found_dead"
    else:
        kind = "stopped"
    return Stop(kind=kind, by=by, at=event.recorded_at, silence=silence, timeout=timeout)


def duration_text(seconds: int) -> str:
    """``45 s``, ``11 min``, ``3 h 20 min``, ``2 d 4 h``: a duration at a glance."""
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _same_actor(one: RecordedEvent, other: RecordedEvent) -> bool:
    return one.metadata.get("actor") == other.metadata.get("actor")


def _same_process(one: RecordedEvent, other: RecordedEvent) -> bool:
    return (one.metadata.get("host"), one.metadata.get("pid")) == (
        other.metadata.get("host"),
        other.metadata.get("pid"),
    )


__all__ = ["Stop", "StopKind", "classify_stop", "duration_text"]

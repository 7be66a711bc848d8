"""A master's trail as the page shows it: runs of check-ins folded into one row, and each
deactivation read as what it was (:mod:`projections.stops`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Sequence

import attrs

from eventstore import RecordedEvent
from projections.stops import classify_stop


@attrs.frozen(kw_only=True)
class TrailRow:
    """One row: a single event, or a run of ``count`` check-ins from ``first`` to ``last``."""

    first: RecordedEvent
    last: RecordedEvent
    count: int
    what: str

    @property
    def positions(self) -> str:
        if self.count == 1:
            return str(self.first.position)
        return f"{self.first.position}…{self.last.position}"

    @property
    def when(self) -> str:
        start = _text(self.first.recorded_at)
        return start if self.count == 1 else f"{start} … {_text(self.last.recorded_at)}"

    @property
    def reason(self) -> str:
        return str(self.first.metadata.get("reason", ""))

    @property
    def actor(self) -> str:
        return str(self.first.metadata.get("actor", ""))


def trail_rows(
    events: Sequence[RecordedEvent], name: str, masters: Container[str]
) -> list[TrailRow]:
    """The rows of one master's events (in stream order)."""
    rows: list[TrailRow] = []
    before: RecordedEvent | None = None
    for event in events:
        last = rows[-1] if rows else None
        if last is not None and event.type == last.last.type == "master.checked_in":
            count = last.count + 1
            rows[-1] = attrs.evolve(last, last=event, count=count, what=f"checked in {count} times")
        else:
            rows.append(
                TrailRow(first=event, last=event, count=1, what=_what(event, before, name, masters))
            )
        before = event
    return rows


def _what(
    event: RecordedEvent, before: RecordedEvent | None, name: str, masters: Container[str]
) -> str:
    stop = classify_stop(event, before, masters)
    if stop is not None:
        return f"deactivated: {stop.describe(name)}{_unlinked(event)}"
    kind = event.type.removeprefix("master.").replace("_", " ")
    if event.type == "master.checked_in":
        return "checked in"
    if event.type == "master.housekeeping_forced":
        return "marked active long ago (next housekeeping expires it)"
    return kind


def _unlinked(event: RecordedEvent) -> str:
    """The links a deactivation removed, as a clause (nothing when it removed none)."""
    parts = []
    for field, label in (("schedulers", "schedulers"), ("changesources", "change sources")):
        ids = event.data.get(field)
        if isinstance(ids, list) and ids:
            parts.append(f"{label} {', '.join(str(i) for i in ids)}")
    return f"; unlinked {' and '.join(parts)}" if parts else ""


def _text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


__all__ = ["TrailRow", "trail_rows"]

"""The activity timeline: one lane per master, its active intervals as bars, its silences,
and marks for registration, clean stop, a crash found at restart, expiry (naming who
expired it), adoption and the long-time-ago reset.

:func:`build_timeline` is a pure fold of the log into :class:`Timeline` (no I/O, no
drawing); it streams, so memory grows with the number of intervals and marks, never with
the number of check-ins. A lane is active only while check-ins arrive: a gap longer than
``silence`` seconds between two signs of life ends the bar, and a deactivation is read by
:func:`projections.stops.classify_stop` (a crash ends the bar at the last check-in, not at
the restart that found it). :func:`draw_timeline` writes SVG (:mod:`mastertrail.timeline_svg`)
or PNG (:mod:`mastertrail.timeline_png`, with matplotlib).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import attrs

from eventstore import (
    CODEC,
    EPOCH,
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
    RecordedEvent,
)
from projections.model import MasterModel
from projections.stops import classify_stop

MarkKind = Literal["registered", "stopped", "found_dead", "expired", "adopted", "reset"]
#: How an active interval ended: cleanly, found dead at a restart, by expiry, by the
#: long-time-ago reset, by a silence between check-ins ("gap"), or not yet.
Ending = Literal["stopped", "found_dead", "expired", "reset", "gap", "open"]

#: Expiries labelled with the master that expired them; the newest ones win beyond this.
MAX_LABELS = 30
#: Longest lane label; longer master names are shortened in the middle.
MAX_NAME = 40
#: Seconds without a sign of life after which a lane is drawn silent (three of Buildbot's
#: one-minute heartbeats missed), or more for a master that checks in less often.
SILENCE = 180
#: Buildbot's expiry timeout: the longest gap that is not silence before a heartbeat is seen.
EXPIRY = dt.timedelta(seconds=600)


@attrs.frozen
class Interval:
    """A stretch of activity: from ``start`` to the last sign of life ``end``; ``closed`` is
    when the activity was known to be over (the deactivation, the next sign of life after
    a gap, or the window's end for a master still marked active but silent): from ``end``
    to ``closed`` the master was silent, except after a clean stop."""

    start: dt.datetime
    end: dt.datetime
    ending: Ending
    closed: dt.datetime | None = None


@attrs.frozen
class Mark:
    """Something that happened to a master, at the event at ``position``; ``by`` names the
    actor (for an expiry: the master that expired it)."""

    kind: MarkKind
    at: dt.datetime
    position: int
    by: str
    detail: str = ""


@attrs.frozen
class Lane:
    """One master's row of the picture."""

    master_id: int
    name: str
    intervals: tuple[Interval, ...]
    marks: tuple[Mark, ...]


@attrs.frozen
class Timeline:
    """What the picture shows: lanes by master id over ``[start, end]``."""

    start: dt.datetime
    end: dt.datetime
    lanes: tuple[Lane, ...]

    @property
    def marks(self) -> list[Mark]:
        """Every mark of every lane, in log order."""
        return sorted((m for lane in self.lanes for m in lane.marks), key=lambda m: m.position)


@attrs.define
class _LaneBuilder:
    master_id: int
    name: str
    intervals: list[Interval] = attrs.Factory(list)
    marks: list[Mark] = attrs.Factory(list)
    open_start: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    previous: RecordedEvent | None = None

    heartbeat: dt.timedelta | None = None  # the shortest gap between its signs of life

    def alive(self, at: dt.datetime, silence: dt.timedelta) -> None:
        if self.last_seen is not None:
            gap = at - self.last_seen
            if gap > self.quiet_after(silence):
                self.close("gap", at)
            elif gap > dt.timedelta(0):
                self.heartbeat = gap if self.heartbeat is None else min(self.heartbeat, gap)
        if self.open_start is None:
            self.open_start = at
        self.last_seen = at

    def quiet_after(self, silence: dt.timedelta) -> dt.timedelta:
        """How long a gap between signs of life may last before the lane is silent: the
        ``silence``, or two and a half of the master's own heartbeats when it checks in
        less often; until a heartbeat is seen, Buildbot's expiry timeout."""
        if self.heartbeat is None:
            return max(silence, EXPIRY)
        return max(silence, self.heartbeat * 5 / 2)

    def close(self, ending: Ending, closed: dt.datetime) -> None:
        if self.open_start is not None and self.last_seen is not None:
            end = closed if ending == "stopped" else self.last_seen
            self.intervals.append(Interval(self.open_start, end, ending, closed))
        self.open_start = self.last_seen = None


def build_timeline(
    events: Iterable[RecordedEvent],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    silence: int = SILENCE,
    fleet: Iterable[MasterModel] = (),
) -> Timeline:
    """Fold ``events`` (the log, in position order) into lanes over ``[since, until]``.

    Every event is read through the codec (:data:`eventstore.CODEC`), as the fold reads
    it: old schema versions are upcast, and an event it cannot decode is refused
    (:class:`eventstore.DecodeError`). Events before ``since`` still count (a master
    active then has a bar from the window's start); events after ``until`` are left out.
    Without bounds the window spans the events. Every master that exists by the window's
    end gets a lane. ``silence`` is the gap between signs of life, in seconds, beyond which
    a lane is drawn silent.

    ``fleet`` is the fleet as it stood before the first of ``events`` (from
    :meth:`Registry.masters_as_of`), so that a window needs only the events after its start
    rather than the whole log: each of its masters gets a lane, active from its last check-in
    if it was active then.
    """
    gap = dt.timedelta(seconds=silence)
    lanes: dict[int, _LaneBuilder] = {}
    names: set[str] = set()
    for master in fleet:
        seeded = lanes[master.id] = _LaneBuilder(master.id, master.name)
        names.add(master.name)
        if master.active and master.last_active > EPOCH:
            seeded.alive(master.last_active, gap)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    for event in events:
        at = event.recorded_at
        if until is not None and at > until:
            continue
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        decoded = CODEC.decode(event)
        lane = lanes.get(event.master_id)
        if lane is None:
            named = isinstance(decoded, MasterRegistered | MasterAdopted)
            lane = lanes[event.master_id] = _LaneBuilder(
                event.master_id, decoded.name if named else f"master {event.master_id}"
            )
            names.add(lane.name)
        _apply(lane, event, decoded, gap, names)
        lane.previous = event
    start = since or first or until or dt.datetime.now(dt.UTC)
    end = until or last or start
    return Timeline(
        start,
        end,
        tuple(_finish(lanes[master_id], start, end, gap) for master_id in sorted(lanes)),
    )


def _apply(
    lane: _LaneBuilder, event: RecordedEvent, decoded: object, gap: dt.timedelta, names: set[str]
) -> None:
    """``event`` (decoded by the codec as ``decoded``, upcast to its current schema) on
    ``lane``."""
    at, by = event.recorded_at, str(event.metadata.get("actor", ""))
    if isinstance(decoded, MasterRegistered):
        lane.marks.append(Mark("registered", at, event.position, by))
    elif isinstance(decoded, MasterAdopted):
        lane.marks.append(Mark("adopted", at, event.position, by))
        if decoded.active:
            seconds = decoded.last_active
            lane.alive(min(at, _from_epoch(seconds)) if seconds > 0 else at, gap)
    elif isinstance(decoded, MasterActivated | MasterCheckedIn):
        lane.alive(at, gap)
    elif isinstance(decoded, MasterDeactivated):
        stop = classify_stop(event, lane.previous, names)
        assert stop is not None
        mark: Literal["stopped", "found_dead", "expired"]
        if stop.kind == "expired_by_master" or stop.kind == "expired_by_operator":
            mark = "expired"
        else:
            mark = stop.kind
        ending: Ending = mark
        lane.marks.append(Mark(mark, at, event.position, by, stop.describe(lane.name)))
        lane.close(ending, at)
    elif isinstance(decoded, MasterHousekeepingForced):
        lane.marks.append(Mark("reset", at, event.position, by))
        lane.close("reset", at)


def _finish(lane: _LaneBuilder, start: dt.datetime, end: dt.datetime, gap: dt.timedelta) -> Lane:
    intervals = list(lane.intervals)
    if lane.open_start is not None and lane.last_seen is not None:
        silent = end - lane.last_seen > lane.quiet_after(gap)
        intervals.append(Interval(lane.open_start, lane.last_seen, "open", end if silent else None))
    clipped = tuple(
        _clip(interval, start, end)
        for interval in intervals
        if interval.start <= end and (interval.closed or interval.end) >= start
    )
    marks = tuple(mark for mark in lane.marks if start <= mark.at <= end)
    return Lane(lane.master_id, lane.name, clipped, marks)


def _clip(interval: Interval, start: dt.datetime, end: dt.datetime) -> Interval:
    first = max(interval.start, start)
    return attrs.evolve(
        interval,
        start=first,
        end=min(max(interval.end, first), end),
        closed=None if interval.closed is None else min(interval.closed, end),
    )


def _from_epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def labelled_expiries(
    timeline: Timeline, *, limit: int = MAX_LABELS, spacing: float = 0.25
) -> list[tuple[int, Mark]]:
    """The expiries worth a label naming who expired them, as ``(master_id, mark)``: newest
    first, at most ``limit``, none closer than ``spacing`` (a fraction of the window) to
    another label in its lane."""
    gap = (timeline.end - timeline.start) * spacing
    chosen: dict[int, list[dt.datetime]] = {}
    picked: list[tuple[int, Mark]] = []
    expiries = [
        (lane.master_id, m) for lane in timeline.lanes for m in lane.marks if m.kind == "expired"
    ]
    for master_id, mark in sorted(expiries, key=lambda item: -item[1].position):
        if len(picked) == limit:
            break
        taken = chosen.setdefault(master_id, [])
        if all(abs(mark.at - other) >= gap for other in taken):
            taken.append(mark.at)
            picked.append((master_id, mark))
    return picked


def draw_timeline(timeline: Timeline, out: str | Path, *, title: str | None = None) -> Path:
    """Draw ``timeline`` into ``out`` (``.svg``, written directly, or ``.png``, drawn with
    matplotlib from the ``png`` extra) and return the path."""
    path = Path(out)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "svg":
        from mastertrail.timeline_svg import write_svg

        return write_svg(timeline, path, title=title)
    if fmt == "png":
        from mastertrail.timeline_png import draw_png

        return draw_png(timeline, path, title=title)
    raise ValueError(f"the timeline is drawn as .svg or .png, not {path.name!r}")


def shorten(name: str, limit: int = MAX_NAME) -> str:
    """``name`` cut in the middle to at most ``limit`` characters."""
    if len(name) <= limit:
        return name
    keep = limit - 1
    return name[: keep - keep // 2] + "…" + name[-(keep // 2) :]


__all__ = [
    "MAX_LABELS",
    "Interval",
    "Lane",
    "Mark",
    "Timeline",
    "build_timeline",
    "draw_timeline",
    "labelled_expiries",
    "shorten",
]

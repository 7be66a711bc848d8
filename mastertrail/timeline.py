"""The activity timeline: one lane per master, its active intervals as bars, and marks for
registration, clean stop, expiry (naming the master that expired it), adoption and the
long-time-ago reset.

:func:`build_timeline` is a pure fold of the log into :class:`Timeline` (no I/O, no
plotting); it streams, so memory grows with the number of intervals and marks, never with
the number of check-ins. :func:`draw_timeline` turns a :class:`Timeline` into an SVG or
PNG file with matplotlib.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import attrs

from eventstore.recorded import RecordedEvent

MarkKind = Literal["registered", "stopped", "expired", "adopted", "reset"]
#: How an active interval ended: cleanly, by expiry, by the long-time-ago reset, or not yet.
Ending = Literal["stopped", "expired", "reset", "open"]

#: Expiries labelled with the master that expired them; the newest ones win beyond this.
MAX_LABELS = 30
#: Longest lane label; longer master names are shortened in the middle.
MAX_NAME = 40


@attrs.frozen
class Interval:
    """A stretch of activity: from ``start`` to the last sign of life ``end``; ``closed`` is
    when the master was marked inactive (after ``end`` when it was expired)."""

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

    def alive(self, at: dt.datetime) -> None:
        if self.open_start is None:
            self.open_start = at
        self.last_seen = at

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
) -> Timeline:
    """Fold ``events`` (the log, in position order) into lanes over ``[since, until]``.

    Events before ``since`` still count (a master active then has a bar from the window's
    start); events after ``until`` are left out. Without bounds the window spans the
    events. Every master that exists by the window's end gets a lane.
    """
    lanes: dict[int, _LaneBuilder] = {}
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    for event in events:
        at = event.recorded_at
        if until is not None and at > until:
            continue
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        lane = lanes.get(event.master_id)
        if lane is None:
            lane = lanes[event.master_id] = _LaneBuilder(
                event.master_id, str(event.data.get("name", f"master {event.master_id}"))
            )
        _apply(lane, event)
    start = since or first or until or dt.datetime.now(dt.UTC)
    end = until or last or start
    return Timeline(
        start, end, tuple(_finish(lanes[master_id], start, end) for master_id in sorted(lanes))
    )


def _apply(lane: _LaneBuilder, event: RecordedEvent) -> None:
    at, by = event.recorded_at, str(event.metadata.get("actor", ""))
    kind = event.type.removeprefix("master.")
    if kind == "registered":
        lane.marks.append(Mark("registered", at, event.position, by))
    elif kind == "adopted":
        lane.marks.append(Mark("adopted", at, event.position, by))
        if event.data.get("active"):
            seconds = int(event.data.get("last_active") or 0)
            lane.alive(min(at, _from_epoch(seconds)) if seconds > 0 else at)
    elif kind in ("activated", "checked_in"):
        lane.alive(at)
    elif kind == "deactivated":
        expired = event.metadata.get("reason") == "expired" or event.data.get("timeout") is not None
        lane.marks.append(Mark("expired" if expired else "stopped", at, event.position, by))
        lane.close("expired" if expired else "stopped", at)
    elif kind == "housekeeping_forced":
        lane.marks.append(Mark("reset", at, event.position, by))
        lane.close("reset", at)


def _finish(lane: _LaneBuilder, start: dt.datetime, end: dt.datetime) -> Lane:
    intervals = list(lane.intervals)
    if lane.open_start is not None and lane.last_seen is not None:
        intervals.append(Interval(lane.open_start, lane.last_seen, "open"))
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


# -- drawing -------------------------------------------------------------------------------

_MARK_STYLE: dict[MarkKind, tuple[str, str, str]] = {
    # kind: (marker, colour, legend label)
    "registered": ("o", "#1f77b4", "registered"),
    "adopted": ("D", "#9467bd", "adopted"),
    "stopped": ("|", "#303030", "stopped cleanly"),
    "expired": ("x", "#d62728", "expired (by)"),
    "reset": ("v", "#8c564b", "reset long ago (upgrade)"),
}
_BAR = "#2ca02c"
_SILENT = "#ff7f0e"
#: Marks per lane beyond which the marks are drawn small, so the bars stay visible.
_DENSE = 60


def draw_timeline(timeline: Timeline, out: str | Path, *, title: str | None = None) -> Path:
    """Draw ``timeline`` into ``out`` (``.svg`` or ``.png``) and return the path."""
    from matplotlib import dates as mdates
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    path = Path(out)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ValueError(f"the timeline is drawn as .svg or .png, not {path.name!r}")
    count = max(len(timeline.lanes), 1)
    fig = Figure(figsize=(14, 1.8 + 0.32 * count), layout="constrained")
    ax = fig.add_subplot()

    def x(when: dt.datetime) -> float:
        return float(mdates.date2num(when))  # type: ignore[no-untyped-call]

    rows = {lane.master_id: row for row, lane in enumerate(timeline.lanes)}
    for row, lane in enumerate(timeline.lanes):
        bars = [(x(i.start), max(x(i.end) - x(i.start), 0.0)) for i in lane.intervals]
        ax.broken_barh(bars, (row - 0.3, 0.6), facecolors=_BAR, linewidth=0)
        silent = [
            (x(i.end), x(i.closed) - x(i.end))
            for i in lane.intervals
            if i.ending == "expired" and i.closed is not None and i.closed > i.end
        ]
        if silent:
            ax.broken_barh(silent, (row - 0.3, 0.6), facecolors=_SILENT, alpha=0.35, linewidth=0)

    dense = len(timeline.marks) > _DENSE * count
    for kind, (marker, colour, _label) in _MARK_STYLE.items():
        lift = 0.3 if kind == "reset" else 0.0  # on the lane's top edge: a stop often coincides
        points = [
            (x(mark.at), rows[lane.master_id] - lift)
            for lane in timeline.lanes
            for mark in lane.marks
            if mark.kind == kind
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            size = (12 if dense else 40) * (3 if marker == "|" else 1)
            ax.scatter(xs, ys, marker=marker, color=colour, s=size, zorder=3, linewidths=1.2)

    labels = labelled_expiries(timeline)
    late = timeline.start + (timeline.end - timeline.start) * 0.75
    for master_id, mark in labels:
        ax.annotate(
            f"by {shorten(mark.by, 28)}",
            (x(mark.at), rows[master_id]),
            xytext=(-4 if mark.at > late else 4, 5),  # leftwards near the right edge
            textcoords="offset points",
            horizontalalignment="right" if mark.at > late else "left",
            fontsize=7,
            color=_MARK_STYLE["expired"][1],
        )
    unlabelled = sum(1 for m in timeline.marks if m.kind == "expired") - len(labels)
    note = f"; {unlabelled} expiries marked without a label" if unlabelled else ""

    ax.set_yticks(range(len(timeline.lanes)), [shorten(lane.name) for lane in timeline.lanes])
    ax.set_ylim(len(timeline.lanes) - 0.5, -0.5)
    left, right = x(timeline.start), x(timeline.end)
    if right <= left:
        right = left + 1 / 24
    margin = (right - left) * 0.01  # room for the marks at either end
    ax.set_xlim(left - margin, right + margin)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(f"time (UTC){note}")
    span = f"{timeline.start:%Y-%m-%d %H:%M} to {timeline.end:%Y-%m-%d %H:%M} UTC"
    ax.set_title(title or f"Master activity, {span}")
    handles = [
        Patch(facecolor=_BAR, label="active (checking in)"),
        Patch(facecolor=_SILENT, alpha=0.35, label="silent until expired"),
    ] + [
        Line2D([], [], marker=marker, color=colour, linestyle="", label=label)
        for marker, colour, label in _MARK_STYLE.values()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, smaller
        fig.savefig(path, format=fmt, dpi=110, metadata=_metadata(fmt))
    return path


def shorten(name: str, limit: int = MAX_NAME) -> str:
    """``name`` cut in the middle to at most ``limit`` characters."""
    if len(name) <= limit:
        return name
    keep = limit - 1
    return name[: keep - keep // 2] + "…" + name[-(keep // 2) :]


def _metadata(fmt: str) -> dict[str, str | None]:
    # No creation date: the same log draws the same file.
    return {"Date": None} if fmt == "svg" else {"Software": "mastertrail"}


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

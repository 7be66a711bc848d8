"""The activity timeline as SVG, written directly (no plotting library): lanes, bars of
activity, silences, marks with tooltips, labels that never overlap, a legend of only what
is drawn, and text in any script (the viewer's fonts fall back per glyph).

Every text from the log is escaped, so a master's name is shown as text whatever it holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import attrs

from mastertrail.timeline import Lane, Mark, Timeline, labelled_expiries, shorten

FONTS = (
    "system-ui, 'DejaVu Sans', 'Noto Sans', 'Noto Sans CJK JP', 'Noto Sans CJK SC', "
    "'Noto Sans Arabic', 'Noto Sans Devanagari', sans-serif"
)
ACTIVE = "#2ca02c"
SILENT = "#ff7f0e"
LANE = 24
CHAR = 7.0  # average advance of one character at 12px, for laying out labels

#: kind: (legend label, colour)
MARKS: dict[str, tuple[str, str]] = {
    "registered": ("registered", "#1f77b4"),
    "adopted": ("adopted", "#9467bd"),
    "stopped": ("stopped cleanly", "#303030"),
    "found_dead": ("found dead at restart", "#e377c2"),
    "expired": ("expired (by)", "#d62728"),
    "reset": ("reset long ago (upgrade)", "#8c564b"),
}


@attrs.frozen
class _Frame:
    left: float
    width: float
    start: dt.datetime
    end: dt.datetime

    def x(self, when: dt.datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        share = (when - self.start).total_seconds() / span
        return round(self.left + self.width * min(max(share, 0.0), 1.0), 1)


def render_svg(timeline: Timeline, *, title: str | None = None, width: int = 1000) -> str:
    """The SVG document of ``timeline``; ``title`` replaces the heading, never the range
    shown under it."""
    names = [shorten(lane.name) for lane in timeline.lanes]
    label_width = min(max((len(n) for n in names), default=8) * CHAR + 16, width * 0.4)
    end = timeline.end if timeline.end > timeline.start else timeline.start + dt.timedelta(hours=1)
    frame = _Frame(label_width, width - label_width - 16, timeline.start, end)
    top = 52
    body: list[str] = []
    drawn: set[str] = set()
    labels = {(master_id, mark.position) for master_id, mark in labelled_expiries(timeline)}
    for row, (lane, name) in enumerate(zip(timeline.lanes, names, strict=True)):
        y = top + row * LANE
        body.append(_lane(frame, lane, name, y, labels, drawn))
    axis_y = top + len(timeline.lanes) * LANE + 4
    body.append(_axis(frame, axis_y))
    legend, legend_height = _legend(drawn, width, axis_y + 30)
    height = axis_y + 30 + legend_height + 8
    span = f"{timeline.start:%Y-%m-%d %H:%M} to {timeline.end:%Y-%m-%d %H:%M} UTC"
    heading = title or "Master activity"
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family={quoteattr(FONTS)} font-size="12" '
            'role="img" aria-labelledby="mt-title">',
            f'<title id="mt-title">{escape(heading)}, {escape(span)}</title>',
            '<rect width="100%" height="100%" fill="#ffffff"/>',
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" '
            f'font-weight="bold">{escape(heading)}</text>',
            f'<text x="{width / 2}" y="38" text-anchor="middle" fill="#555555">'
            f"{escape(span)}</text>",
            *body,
            legend,
            "</svg>",
        ]
    )


def write_svg(timeline: Timeline, out: str | Path, *, title: str | None = None) -> Path:
    """Write :func:`render_svg` of ``timeline`` to ``out`` and return the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(timeline, title=title) + "\n", encoding="utf-8")
    return path


def _lane(
    frame: _Frame,
    lane: Lane,
    name: str,
    y: float,
    labels: set[tuple[int, int]],
    drawn: set[str],
) -> str:
    parts = [
        f'<g class="lane" data-master={quoteattr(str(lane.master_id))}>',
        f"<g><title>{escape(lane.name)}</title>"
        f'<text x="{frame.left - 8}" y="{y + 16}" text-anchor="end">{escape(name)}</text></g>',
        f'<line x1="{frame.left}" x2="{frame.left + frame.width}" y1="{y + 12}" '
        f'y2="{y + 12}" stroke="#eeeeee"/>',
    ]
    for interval in lane.intervals:
        x0, x1 = frame.x(interval.start), frame.x(interval.end)
        parts.append(
            f'<rect class="active" x="{x0}" y="{y + 5}" width="{max(x1 - x0, 1.5)}" '
            f'height="14" fill="{ACTIVE}"><title>active {interval.start:%Y-%m-%d %H:%M:%S} '
            f"to {interval.end:%Y-%m-%d %H:%M:%S} UTC</title></rect>"
        )
        drawn.add("active")
        quiet = interval.closed if interval.ending != "stopped" else None
        if quiet is not None and quiet > interval.end:
            parts.append(_silence(frame, interval.end, quiet, y))
            drawn.add("silent")
    label_right = -1.0
    for mark in sorted(lane.marks, key=lambda m: m.position):
        parts.append(_mark(frame, mark, y))
        drawn.add(mark.kind)
        if (lane.master_id, mark.position) in labels:
            text = f"by {shorten(mark.by, 28)}"
            x = frame.x(mark.at)
            size = len(text) * CHAR * 0.85
            right_edge = frame.left + frame.width
            anchor_end = x + 6 + size > right_edge
            begin = x - 6 - size if anchor_end else x + 6
            if begin > label_right:  # never over the previous label of the lane
                anchor = "end" if anchor_end else "start"
                parts.append(
                    f'<text class="by" x="{x - 6 if anchor_end else x + 6}" y="{y + 4}" '
                    f'text-anchor="{anchor}" font-size="10" fill="{MARKS["expired"][1]}">'
                    f"{escape(text)}</text>"
                )
                label_right = begin + size
    parts.append("</g>")
    return "\n".join(parts)


def _silence(frame: _Frame, start: dt.datetime, end: dt.datetime, y: float) -> str:
    x0, x1 = frame.x(start), frame.x(end)
    return (
        f'<rect class="silent" x="{x0}" y="{y + 8}" width="{max(x1 - x0, 1.0)}" height="8" '
        f'fill="{SILENT}" fill-opacity="0.35"><title>silent from {start:%Y-%m-%d %H:%M:%S} '
        f"to {end:%Y-%m-%d %H:%M:%S} UTC: no check-in</title></rect>"
    )


def _mark(frame: _Frame, mark: Mark, y: float) -> str:
    label, colour = MARKS.get(mark.kind, (mark.kind, "#000000"))
    x, cy = frame.x(mark.at), y + 12
    tip = f"<title>{escape(label)} at {mark.at:%Y-%m-%d %H:%M:%S} UTC by {escape(mark.by)}"
    tip += f"{': ' + escape(mark.detail) if mark.detail else ''}</title>"
    return _shape(mark.kind, x, cy, colour, tip)


def _shape(kind: str, x: float, y: float, colour: str, tip: str) -> str:
    cls = f'class="mark {kind}"'
    if kind == "registered":
        return f'<circle {cls} cx="{x}" cy="{y}" r="4" fill="{colour}">{tip}</circle>'
    if kind == "adopted":
        points = f"{x},{y - 5} {x + 5},{y} {x},{y + 5} {x - 5},{y}"
        return f'<polygon {cls} points="{points}" fill="{colour}">{tip}</polygon>'
    if kind == "stopped":
        return (
            f'<line {cls} x1="{x}" x2="{x}" y1="{y - 8}" y2="{y + 8}" stroke="{colour}" '
            f'stroke-width="2.5">{tip}</line>'
        )
    if kind == "reset":
        points = f"{x - 5},{y - 10} {x + 5},{y - 10} {x},{y - 3}"
        return f'<polygon {cls} points="{points}" fill="{colour}">{tip}</polygon>'
    if kind == "found_dead":
        return (
            f'<rect {cls} x="{x - 4}" y="{y - 4}" width="8" height="8" fill="{colour}" '
            f'transform="rotate(45 {x} {y})">{tip}</rect>'
        )
    return (  # expired: a cross
        f'<path {cls} d="M{x - 5},{y - 5}L{x + 5},{y + 5}M{x - 5},{y + 5}L{x + 5},{y - 5}" '
        f'stroke="{colour}" stroke-width="2">{tip}</path>'
    )


def _axis(frame: _Frame, y: float) -> str:
    parts = [
        f'<line x1="{frame.left}" x2="{frame.left + frame.width}" y1="{y}" y2="{y}" '
        'stroke="#888888"/>'
    ]
    seconds = frame.end - frame.start < dt.timedelta(minutes=5)  # ticks less than a minute apart
    for tick in _ticks(frame.start, frame.end):
        x = frame.x(tick)
        text = f"{tick:%H:%M}" if tick.date() == frame.start.date() else f"{tick:%m-%d %H:%M}"
        if seconds:
            text = f"{tick:%H:%M:%S}"
        half = len(text) * CHAR / 2  # a label at either edge stays inside the picture
        anchor = "middle"
        if x + half > frame.left + frame.width + 12:
            anchor = "end"
        parts.append(
            f'<line x1="{x}" x2="{x}" y1="{y}" y2="{y + 5}" stroke="#888888"/>'
            f'<text x="{x}" y="{y + 18}" text-anchor="{anchor}" fill="#555555">{text}</text>'
        )
    return "\n".join(parts)


_STEPS = [
    dt.timedelta(seconds=s)
    for s in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400)
]


def _ticks(start: dt.datetime, end: dt.datetime, most: int = 8) -> list[dt.datetime]:
    span = end - start
    step = next((s for s in _STEPS if span / s <= most), dt.timedelta(days=30))
    seconds = int(step.total_seconds())
    first = int(start.timestamp()) // seconds * seconds + seconds
    ticks = []
    for stamp in range(first, int(end.timestamp()) + 1, seconds):
        ticks.append(dt.datetime.fromtimestamp(stamp, dt.UTC))
    return ticks[: most + 1]


def _legend(drawn: set[str], width: int, y: float) -> tuple[str, int]:
    items: list[tuple[str, str]] = []
    if "active" in drawn:
        items.append(
            (f'<rect y="-9" width="14" height="10" fill="{ACTIVE}"/>', "active (checking in)")
        )
    if "silent" in drawn:
        items.append(
            (
                f'<rect y="-7" width="14" height="6" fill="{SILENT}" fill-opacity="0.35"/>',
                "silent (no check-in)",
            )
        )
    for kind, (label, colour) in MARKS.items():
        if kind in drawn:
            items.append((_shape(kind, 7, -4, colour, ""), label))
    parts, x, row = ['<g class="legend">'], 10.0, 0
    for symbol, label in items:
        size = 22 + len(label) * CHAR
        if x + size > width and x > 10:
            x, row = 10.0, row + 1
        parts.append(
            f'<g transform="translate({x} {y + row * 18})">{symbol}'
            f'<text x="20" y="0">{escape(label)}</text></g>'
        )
        x += size + 14
    parts.append("</g>")
    return "\n".join(parts), (row + 1) * 18 if items else 0


__all__ = ["FONTS", "render_svg", "write_svg"]

"""The activity timeline as PNG, drawn with matplotlib (the ``png`` extra:
``pip install 'mastertrail[png]'``). SVG needs none of it (:mod:`mastertrail.timeline_svg`).

Names in any script: the font list falls back per glyph to the fonts installed (Noto CJK
and others, when present); a glyph no font has is drawn as a box, without a warning.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

from mastertrail.timeline import MarkKind, Timeline, labelled_expiries, shorten

_MARK_STYLE: dict[MarkKind, tuple[str, str, str]] = {
    # kind: (marker, colour, legend label)
    "registered": ("o", "#1f77b4", "registered"),
    "adopted": ("D", "#9467bd", "adopted"),
    "stopped": ("|", "#303030", "stopped cleanly"),
    "found_dead": ("D", "#e377c2", "found dead at restart"),
    "expired": ("x", "#d62728", "expired (by)"),
    "reset": ("v", "#8c564b", "reset long ago (upgrade)"),
}
_BAR = "#2ca02c"
_SILENT = "#ff7f0e"
#: Marks per lane beyond which the marks are drawn small, so the bars stay visible.
_DENSE = 60
#: Preferred fonts, the first that has a glyph drawing it; those not installed are skipped.
FONT_FALLBACK = (
    "DejaVu Sans",
    "Noto Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK KR",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "Noto Sans Arabic",
    "Noto Sans Devanagari",
)


class PngUnavailable(ImportError):
    """matplotlib is not installed: the PNG timeline needs the ``png`` extra."""


def draw_png(timeline: Timeline, out: str | Path, *, title: str | None = None) -> Path:
    """Draw ``timeline`` into the PNG file ``out`` and return the path."""
    try:
        from matplotlib import dates as mdates
        from matplotlib import font_manager, rc_context
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError as error:
        raise PngUnavailable(
            "a PNG timeline needs matplotlib: pip install 'mastertrail[png]' (or write .svg)"
        ) from error

    path = Path(out)
    installed = {font.name for font in font_manager.fontManager.ttflist}
    families = [name for name in FONT_FALLBACK if name in installed] or ["sans-serif"]
    count = max(len(timeline.lanes), 1)
    with rc_context({"font.family": families}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig = Figure(figsize=(14, 1.8 + 0.32 * count), layout="constrained")
        ax = fig.add_subplot()

        def x(when: dt.datetime) -> float:
            return float(mdates.date2num(when))  # type: ignore[no-untyped-call]

        drawn: set[str] = set()
        rows = {lane.master_id: row for row, lane in enumerate(timeline.lanes)}
        for row, lane in enumerate(timeline.lanes):
            bars = [(x(i.start), max(x(i.end) - x(i.start), 0.0)) for i in lane.intervals]
            if bars:
                ax.broken_barh(bars, (row - 0.3, 0.6), facecolors=_BAR, linewidth=0)
                drawn.add("active")
            silent = [
                (x(i.end), x(i.closed) - x(i.end))
                for i in lane.intervals
                if i.ending != "stopped" and i.closed is not None and i.closed > i.end
            ]
            if silent:
                ax.broken_barh(
                    silent, (row - 0.15, 0.3), facecolors=_SILENT, alpha=0.35, linewidth=0
                )
                drawn.add("silent")

        dense = len(timeline.marks) > _DENSE * count
        for kind, (marker, colour, _label) in _MARK_STYLE.items():
            lift = 0.3 if kind == "reset" else 0.0  # on the lane's top edge
            points = [
                (x(mark.at), rows[lane.master_id] - lift)
                for lane in timeline.lanes
                for mark in lane.marks
                if mark.kind == kind
            ]
            if points:
                drawn.add(kind)
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
        ax.set_title(f"{title or 'Master activity'}\n{span}")
        handles: list[Any] = []
        if "active" in drawn:
            handles.append(Patch(facecolor=_BAR, label="active (checking in)"))
        if "silent" in drawn:
            handles.append(Patch(facecolor=_SILENT, alpha=0.35, label="silent (no check-in)"))
        handles += [
            Line2D([], [], marker=marker, color=colour, linestyle="", label=label)
            for kind, (marker, colour, label) in _MARK_STYLE.items()
            if kind in drawn
        ]
        if handles:
            fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=110, metadata={"Software": "mastertrail"})
    return path


__all__ = ["FONT_FALLBACK", "PngUnavailable", "draw_png"]

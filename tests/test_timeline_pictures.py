"""What the drawn timeline shows: labels that never overlap, a legend of only what is
drawn, names in any script, and a custom title that keeps the range."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eventstore.recorded import RecordedEvent
from mastertrail.timeline import build_timeline, draw_timeline
from mastertrail.timeline_svg import CHAR, render_svg

T0 = 1_700_000_000
SVG = "{http://www.w3.org/2000/svg}"
CJK = "ビルド-マスター:/srv/构建"
EXPIRER = "m2-with-a-long-name:/srv/buildbot/master"


def event(position: int, master: int, kind: str, offset: float, **extra: object) -> RecordedEvent:
    actor = str(extra.pop("actor", f"m{master}"))
    reason = str(extra.pop("reason", kind))
    return RecordedEvent(
        position=position,
        event_id=uuid.uuid4(),
        master_id=master,
        version=position,
        type=f"master.{kind}",
        schema_version=1,
        data={"last_active": T0 + int(offset), **extra},
        metadata={"actor": actor, "host": "h", "pid": 1, "reason": reason},
        recorded_at=dt.datetime.fromtimestamp(T0 + offset, dt.UTC),
        hash="",
    )


def crowded() -> list[RecordedEvent]:
    """Two masters; m1 is expired by the other forty times, a few seconds apart."""
    events = [
        event(1, 1, "registered", 0, name=CJK),
        event(2, 2, "registered", 0, name=EXPIRER),
    ]
    position = 3
    for n in range(40):
        events.append(event(position, 1, "activated", n * 10))
        events.append(
            event(position + 1, 1, "deactivated", n * 10 + 5, actor=EXPIRER, reason="expired")
        )
        position += 2
    return events


def texts(svg: str) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter(f"{SVG}text"))


class TestSvgPicture:
    def test_labels_never_overlap(self) -> None:
        """Expiry labels in a lane are laid out so that no two overlap, even in a narrow
        picture where long labels crowd."""
        svg = render_svg(build_timeline(crowded()), width=500)
        labels = [node for node in texts(svg) if node.get("class") == "by"]
        assert labels
        spans = []
        for node in labels:
            x, width = float(node.get("x", "0")), len(node.text or "") * CHAR * 0.85
            start = x - width if node.get("text-anchor") == "end" else x
            spans.append((start, start + width))
        spans.sort()
        assert all(left[1] <= right[0] for left, right in itertools.pairwise(spans))

    def test_the_legend_lists_only_what_is_drawn(self) -> None:
        """No reset, adoption or crash in the log: none in the legend."""
        svg = render_svg(build_timeline(crowded()))
        legend = " ".join(
            "".join(node.itertext())
            for group in ET.fromstring(svg).iter(f"{SVG}g")
            if group.get("class") == "legend"
            for node in group.iter(f"{SVG}text")
        )
        assert "expired (by)" in legend
        assert "registered" in legend
        for absent in ("adopted", "reset long ago", "found dead", "stopped cleanly"):
            assert absent not in legend

    def test_a_custom_title_keeps_the_range(self) -> None:
        """--title replaces the heading; the window's range is still printed under it."""
        svg = render_svg(build_timeline(crowded()), title="Fleet <prod>")
        shown = ["".join(node.itertext()) for node in texts(svg)]
        assert "Fleet <prod>" in shown
        assert any(text.endswith(" UTC") and " to " in text for text in shown)

    def test_names_in_any_script_are_kept_as_text(self) -> None:
        """A CJK name is in the SVG as text, with a font list that falls back to CJK fonts."""
        svg = render_svg(build_timeline(crowded()))
        assert CJK in ["".join(node.itertext()) for node in texts(svg)]
        assert "Noto Sans CJK" in (ET.fromstring(svg).get("font-family") or "")


class TestPngPicture:
    def test_cjk_names_draw_without_warnings(self, tmp_path: Path) -> None:
        """matplotlib draws a CJK name with the fonts at hand and warns about no glyph."""
        pytest.importorskip("matplotlib")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = draw_timeline(build_timeline(crowded()), tmp_path / "cjk.png", title="CJK")
        assert out.read_bytes().startswith(b"\x89PNG")

    def test_without_matplotlib_png_says_which_extra(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without matplotlib a PNG asks for the png extra; SVG needs nothing."""
        import builtins

        real_import = builtins.__import__

        def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
            if name.startswith("matplotlib"):
                raise ImportError("blocked")
            return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(builtins, "__import__", no_matplotlib)
        with pytest.raises(ImportError, match=r"mastertrail\[png\]"):
            draw_timeline(build_timeline(crowded()), tmp_path / "x.png")
        assert draw_timeline(build_timeline(crowded()), tmp_path / "x.svg").exists()

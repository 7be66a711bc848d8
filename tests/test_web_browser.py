"""The page in a real browser: headless chromium loads it from a real server on
127.0.0.1, and the tests assert what a person sees; the screenshots are kept."""

from __future__ import annotations

import html.parser
from collections.abc import Iterator
from pathlib import Path

import pytest

from mastertrail import Registry
from mastertrail.web import create_app
from tests.browser_support import dump_dom, need_chromium, png_size, screenshot, serving
from tests.conftest import FakeClock

EVIL = "<img src=x onerror=alert(1)>"
CJK = "ビルド-01:/srv/master"

pytestmark = pytest.mark.slow


class Page(html.parser.HTMLParser):
    """What a dumped DOM shows: its visible text, its <img> elements, the rows of a table."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._skip = 0
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        if tag in ("script", "style", "title"):
            self._skip += 1
        if tag == "table":
            self._table.append(dict(attrs).get("id") or "")
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None and self._table:
            self.rows.setdefault(self._table[-1], []).append(self._row)
            self._row = None
        if tag == "table" and self._table:
            self._table.pop()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """A fleet on SQLite served on 127.0.0.1: alpha active, bravo stopped, charlie expired
    by alpha, a CJK name and the evil name active."""
    clock = FakeClock()
    registry = Registry(f"sqlite:///{tmp_path}/site.sqlite", clock=clock, actor="tester")
    registry.upgrade()
    alpha = Registry(registry.engine, clock=clock, actor="alpha")
    names = ("alpha", "bravo", "charlie", CJK, EVIL)
    ids = {name: registry.find_master_id(name) for name in names}
    for name in names:
        registry.set_master_state(ids[name], True)
    clock.advance(60)
    registry.set_master_state(ids["bravo"], False)
    for _ in range(12):
        clock.advance(60)
        for name in ("alpha", CJK, EVIL):
            registry.set_master_state(ids[name], True)
    alpha.expire_masters(timeout=600)
    registry.verify()
    with serving(create_app(registry)) as url:
        yield url, ids
    registry.close()


class TestPageInBrowser:
    def test_a_person_sees_the_fleet(
        self, site: tuple[str, dict[str, int]], tmp_path: Path
    ) -> None:
        """Every name, its state and how it stopped, in the fleet table; the verify result."""
        url, _ = site
        dom = dump_dom(tmp_path / "profile", f"{url}/")
        assert 'class="mastertrail mt-js"' in dom  # the script ran
        page = Page(dom)
        rows = {row[0].split(" #")[0]: row for row in page.rows["fleet"][1:]}
        assert set(rows) == {"alpha", "bravo", "charlie", CJK, EVIL}
        assert rows["alpha"][1] == "active"
        assert rows["bravo"][1] == "inactive"
        assert rows["bravo"][3] == "stopped by tester"
        assert rows["charlie"][3].startswith("expired by alpha after")
        assert "verify ok" in page.visible

    def test_the_evil_name_is_only_text(
        self, site: tuple[str, dict[str, int]], tmp_path: Path
    ) -> None:
        """The browser made no <img> of the name: it shows as the text it is."""
        url, _ = site
        page = Page(dump_dom(tmp_path / "profile", f"{url}/"))
        assert page.images == []
        assert EVIL in page.visible

    def test_the_timeline_shows_every_lane(
        self, site: tuple[str, dict[str, int]], tmp_path: Path
    ) -> None:
        """The inline timeline names each master's lane and who expired charlie."""
        url, _ = site
        dom = dump_dom(tmp_path / "profile", f"{url}/")
        timeline = Page(dom[dom.index('id="timeline"') : dom.index("</svg>")])
        for name in ("alpha", "bravo", "charlie", CJK, EVIL):
            assert name in timeline.visible
        assert "by alpha" in timeline.visible

    def test_works_with_javascript_off(
        self, site: tuple[str, dict[str, int]], tmp_path: Path
    ) -> None:
        """Without scripts the fleet table, a trail (by its link) and the as-of form work."""
        url, ids = site
        profile = tmp_path / "profile"
        dom = dump_dom(profile, f"{url}/?master={ids['charlie']}", javascript=False)
        assert "mt-js" not in dom  # the script did not run
        page = Page(dom)
        assert len(page.rows["fleet"]) == 6
        assert "Trail of charlie" in page.visible
        assert "deactivated: expired by alpha" in page.visible
        past = Page(dump_dom(profile, f"{url}/?as_of=%403", javascript=False))
        assert [row[1] for row in past.rows["fleet-as-of"][1:]] == ["inactive"] * 3

    def test_screenshots_on_a_laptop_and_a_phone(
        self, site: tuple[str, dict[str, int]], tmp_path: Path
    ) -> None:
        """The page renders at a laptop's and at a phone's width; the pictures are kept."""
        url, _ = site
        need_chromium()
        for name, width, height in (("laptop", 1280, 900), ("phone", 390, 844)):
            out = screenshot(
                tmp_path / f"profile-{name}",
                f"{url}/",
                tmp_path / f"mastertrail-page-{name}.png",
                width=width,
                height=height,
            )
            assert png_size(out) == (width, height)
            assert out.stat().st_size > 10_000  # a page, not a blank

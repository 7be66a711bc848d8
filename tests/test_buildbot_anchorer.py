"""``mastertrail.buildbot.anchorer``: a buildmaster appends an anchor of the log at a fixed
interval, timed by the reactor (Buildbot's test reactor, a ``task.Clock``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("buildbot")

from twisted.internet import defer

import mastertrail.buildbot
from mastertrail import Anchor, InvalidArgument, InvalidArgumentType
from tests.buildmaster_support import SOMETIME, FakeBuildmasterCase


@pytest.fixture(autouse=True)
def _tmp(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The test's own directory, for its database and files."""
    if request.instance is not None:
        request.instance.tmp = tmp_path


class TestAnchorer(FakeBuildmasterCase):
    @property
    def anchors(self) -> Path:
        return self.tmp / "anchors.jsonl"

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.masterid = yield self.master.db.masters.findMasterId("some:master")

    def taken(self) -> list[Anchor]:
        if not self.anchors.exists():
            return []
        return [Anchor.from_json(line) for line in self.anchors.read_text().splitlines()]

    @defer.inlineCallbacks
    def test_an_anchor_at_start_and_one_every_interval(self) -> Any:
        """Started, it appends an anchor at once, then one each time the reactor's clock
        passes the interval, of the log as it then ends; stopped, no more."""
        service = mastertrail.buildbot.anchorer(every=600, to=self.anchors)
        yield service.setServiceParent(self.master)
        yield service.startService()
        assert [a.position for a in self.taken()] == [1]
        yield self.master.db.masters.setMasterState(self.masterid, True)
        self.reactor.advance(599)
        assert len(self.taken()) == 1
        self.reactor.advance(1)
        yield self.master.db.masters.setMasterState(self.masterid, False)
        self.reactor.advance(600)
        anchors = self.taken()
        assert [a.position for a in anchors] == [1, 2, 3]
        assert [a.recorded_at.timestamp() for a in anchors] == [
            SOMETIME,
            SOMETIME + 600,
            SOMETIME + 1200,
        ]
        assert self.master.db.masters._registry.verify(anchors=self.anchors).ok
        yield service.stopService()
        self.reactor.advance(3600)
        assert len(self.taken()) == 3

    @defer.inlineCallbacks
    def test_without_a_file_the_anchor_goes_to_the_log(self) -> Any:
        """Without ``to`` the anchor's JSON line is written to the buildmaster's log."""
        seen: list[str] = []
        self.patch(mastertrail.buildbot.log, "msg", lambda text, **_: seen.append(text))
        service = mastertrail.buildbot.anchorer(every=60)
        yield service.setServiceParent(self.master)
        yield service.startService()
        # The anchor's own line; mastertrail's structured log lines may be routed there too.
        (line,) = [text for text in seen if text.startswith("mastertrail anchor: ")]
        assert Anchor.from_json(line.removeprefix("mastertrail anchor: ")).position == 1
        yield service.stopService()

    @defer.inlineCallbacks
    def test_a_failed_anchor_is_logged_and_the_next_taken(self) -> Any:
        """A file that cannot be written is logged, and the anchor after it is taken on
        time once it can."""
        seen: list[str] = []
        self.patch(mastertrail.buildbot.log, "msg", lambda text, **_: seen.append(text))
        self.anchors.mkdir()  # a directory: not appendable
        service = mastertrail.buildbot.anchorer(every=60, to=self.anchors)
        yield service.setServiceParent(self.master)
        yield service.startService()
        assert any("taking an anchor failed" in text for text in seen)
        self.anchors.rmdir()
        self.reactor.advance(60)
        assert [a.position for a in self.taken()] == [1]
        yield service.stopService()

    def test_bad_configuration_is_a_typed_error(self) -> None:
        """A non-positive or non-numeric interval and a path that is not one are refused
        when the configuration is read."""
        with pytest.raises(InvalidArgument):
            mastertrail.buildbot.anchorer(every=0)
        with pytest.raises(InvalidArgumentType):
            mastertrail.buildbot.anchorer(every=True)
        with pytest.raises(InvalidArgumentType):
            mastertrail.buildbot.anchorer(to=42)  # type: ignore[arg-type]

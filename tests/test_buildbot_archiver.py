"""``mastertrail.buildbot.archiver``: a buildmaster seals the log's old events every day at
the hour configured, timed by the reactor (Buildbot's test reactor, a ``task.Clock``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("buildbot")

from twisted.internet import defer

import eventstore
import mastertrail.buildbot
from eventstore.archive import list_segments, read_segment
from mastertrail import InvalidArgument, InvalidArgumentType
from tests.buildmaster_support import SOMETIME, FakeBuildmasterCase


@pytest.fixture(autouse=True)
def _tmp(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The test's own directory, for its database and files."""
    if request.instance is not None:
        request.instance.tmp = tmp_path


class TestArchiver(FakeBuildmasterCase):
    @property
    def archive(self) -> Path:
        return self.tmp / "archive"

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.ids = []
        for name in ("a:/m", "b:/m"):
            self.ids.append((yield self.master.db.masters.findMasterId(name)))

    @defer.inlineCallbacks
    def beat(self, times: int) -> Any:
        """Both masters check in ``times`` times, ten minutes apart."""
        for _ in range(times):
            self.reactor.advance(600)
            for master_id in self.ids:
                yield self.master.db.masters.setMasterState(master_id, True)

    @defer.inlineCallbacks
    def test_archives_past_the_horizon_at_the_hour(self) -> Any:
        """Nothing is archived before 03:00 UTC; at 03:00 the events older than the
        horizon are sealed, read back as they were; the next run is a day later."""
        service = mastertrail.buildbot.archiver(
            horizon=dt.timedelta(minutes=20), to=self.archive, hour=3
        )
        yield service.setServiceParent(self.master)
        yield service.startService()
        yield self.beat(3)  # 02:56:32
        registry = self.master.db.masters._registry
        before = list(registry.events())
        assert list_segments(registry.engine) == []
        self.reactor.advance(208)  # 03:00:00
        segments = list_segments(registry.engine)
        assert [s.file_name for s in segments] == [p.name for p in sorted(self.archive.iterdir())]
        cut = dt.datetime(2012, 9, 30, 2, 40, tzinfo=dt.UTC)
        expected = max(e.position for e in before if e.recorded_at < cut)
        assert segments[-1].last_position == expected
        archived = [e for s in segments for e in read_segment(s)]
        assert archived + list(eventstore.iter_log(registry.engine)) == before
        yield self.beat(6)
        self.reactor.advance(86_400 - 3600)
        assert list_segments(registry.engine)[-1].last_position > expected
        yield service.stopService()

    @defer.inlineCallbacks
    def test_stopped_it_archives_nothing(self) -> Any:
        """A stopped archiver does not run at its hour."""
        service = mastertrail.buildbot.archiver(
            horizon=dt.timedelta(minutes=1), to=self.archive, hour=3
        )
        yield service.setServiceParent(self.master)
        yield service.startService()
        yield self.beat(2)
        yield service.stopService()
        self.reactor.advance(86_400)
        assert list_segments(self.master.db.masters._registry.engine) == []

    def test_bad_configuration_is_refused(self) -> None:
        """A horizon that is not a positive timedelta, or an hour outside 0-23, is refused
        when the configuration is checked."""
        with pytest.raises(InvalidArgumentType):
            mastertrail.buildbot.archiver(horizon=30)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            mastertrail.buildbot.archiver(horizon=dt.timedelta(0))
        with pytest.raises(InvalidArgument):
            mastertrail.buildbot.archiver(hour=24)


class TestNextRun:
    def test_later_today_or_tomorrow(self) -> None:
        """The next run is today at the hour if it is still ahead, else tomorrow."""
        assert mastertrail.buildbot.next_run(SOMETIME, 3, 0) == SOMETIME + 2008
        assert mastertrail.buildbot.next_run(SOMETIME, 2, 0) == SOMETIME - 1592 + 86_400

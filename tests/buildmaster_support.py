"""What the tests of mastertrail's buildmaster services share: Buildbot's fake master on
a SQLite file of the test's own, with mastertrail's masters connector installed, its test
reactor (a ``task.Clock``) set to a fixed moment. Import it after
``pytest.importorskip("buildbot")``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from buildbot.db import masters as buildbot_masters
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer
from twisted.trial import unittest

import mastertrail.buildbot

#: 2012-09-30 02:26:32 UTC.
SOMETIME = 1_348_971_992


class FakeBuildmasterCase(TestReactorMixin, unittest.TestCase):  # type: ignore[misc]
    """``self.master``: a fake buildmaster whose database is ``self.tmp``/state.sqlite
    (``self.tmp`` is set by the module's fixture before ``setUp``), its reactor at
    ``SOMETIME``."""

    tmp = Path()

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.reactor.advance(SOMETIME)
        self.patch(
            buildbot_masters,
            "MastersConnectorComponent",
            mastertrail.buildbot.MastersConnectorComponent,
        )
        self.master = yield fakemaster.make_master(
            self, wantDb=True, db_url=f"sqlite:///{self.tmp}/state.sqlite"
        )

"""Bad input to the Buildbot component: the Deferred fails with the same typed error as
the API, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventstore import (
    InvalidArgument,
    InvalidArgumentType,
    RegistryError,
)
from tests.bad_input_support import T0
from tests.conftest import Server, empty_database
from tests.reliability_support import dump

buildbot = pytest.importorskip("buildbot")

from buildbot.db import masters as buildbot_masters  # noqa: E402
from buildbot.test.fake import fakemaster  # noqa: E402
from buildbot.test.reactor import TestReactorMixin  # noqa: E402
from twisted.internet import defer  # noqa: E402
from twisted.python import failure  # noqa: E402
from twisted.trial import unittest  # noqa: E402

import mastertrail.buildbot  # noqa: E402

COMPONENT_CASES: list[tuple[str, Callable[[Any, int], Any], type[Exception]]] = [
    ("name None", lambda c, i: c.findMasterId(None), InvalidArgumentType),
    ("name bytes", lambda c, i: c.findMasterId(b"some:master"), InvalidArgumentType),
    ("name empty", lambda c, i: c.findMasterId(""), InvalidArgument),
    ("name NUL", lambda c, i: c.findMasterId("some:\x00master"), InvalidArgument),
    ("name newline", lambda c, i: c.findMasterId("some:\nmaster"), InvalidArgument),
    ("name huge", lambda c, i: c.findMasterId("m" * 100_000), InvalidArgument),
    ("id bool", lambda c, i: c.setMasterState(True, True), InvalidArgumentType),
    ("id str", lambda c, i: c.setMasterState(str(i), True), InvalidArgumentType),
    ("id negative", lambda c, i: c.setMasterState(-i, True), InvalidArgument),
    ("id huge", lambda c, i: c.setMasterState(2**63, True), InvalidArgument),
    ("active str", lambda c, i: c.setMasterState(i, "yes"), InvalidArgumentType),
    ("active None", lambda c, i: c.setMasterState(i, None), InvalidArgumentType),
    ("getMaster float", lambda c, i: c.getMaster(float(i)), InvalidArgumentType),
    ("getMaster zero", lambda c, i: c.getMaster(0), InvalidArgument),
]


@pytest.fixture(autouse=True)
def _buildbot_database(
    request: pytest.FixtureRequest, servers: dict[str, Server | str], tmp_path: Path
) -> None:
    """Give a component test case a fresh database URL for its backend."""
    case = request.instance
    if not isinstance(case, ComponentBadInput):
        return
    case.db_url = empty_database(case.backend, servers, tmp_path / "state.sqlite")


class ComponentBadInput(TestReactorMixin):
    """The Buildbot component, in a fake master with a real database, given bad input."""

    backend = "sqlite"
    db_url = ""

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.setup_test_reactor()
        self.reactor.advance(T0)
        self.patch(
            buildbot_masters,
            "MastersConnectorComponent",
            mastertrail.buildbot.MastersConnectorComponent,
        )
        self.master = yield fakemaster.make_master(self, wantDb=True, db_url=self.db_url)

    @defer.inlineCallbacks
    def test_each_bad_call_fails_with_a_typed_error_and_writes_nothing(self) -> Any:
        """Every bad argument fails the Deferred with its typed error (a RegistryError and
        the matching builtin) and leaves the log and masters table as they were; an
        unknown id is False, writing nothing."""
        component = self.master.db.masters
        master_id = yield component.findMasterId("some:master")
        yield component.setMasterState(master_id, True)
        engine = component._registry.engine
        before = dump(engine)
        for description, call, error in COMPONENT_CASES:
            outcome = yield defer.maybeDeferred(call, component, master_id).addBoth(
                lambda result: result.value if isinstance(result, failure.Failure) else result
            )
            assert isinstance(outcome, error), (description, outcome)
            assert isinstance(outcome, RegistryError), description
            assert dump(engine) == before, description
        assert (yield component.setMasterState(999, True)) is False
        assert (yield component.getMaster(999)) is None
        assert dump(engine) == before
        # Buildbot's DB pool also logs each error it hands back ("Got fatal Exception on DB").
        self.flushLoggedErrors(RegistryError)


class TestComponentBadInputSQLite(ComponentBadInput, unittest.TestCase):
    backend = "sqlite"


class TestComponentBadInputPostgreSQL(ComponentBadInput, unittest.TestCase):
    backend = "postgresql"


class TestComponentBadInputMariaDB(ComponentBadInput, unittest.TestCase):
    backend = "mysql"

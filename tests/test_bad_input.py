"""Bad input to the API: each kind gets a typed error (a RegistryError that is also a
TypeError or ValueError), and the log and the view are byte for byte what they were.

The cases run against one small fleet per backend, shared by the module: every case dumps
the tables before and after itself, so none can change what the next one sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eventstore import (
    InvalidArgument,
    InvalidArgumentType,
    RegistryError,
)
from mastertrail import Registry
from tests.bad_input_support import AWARE, HUGE, NAIVE, Call, Fleet, small_fleet, unchanged
from tests.conftest import BACKENDS, Server


@pytest.fixture(scope="module", params=BACKENDS)
def fleet(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """A small fleet on a database of its own per backend, shared by the cases."""
    with small_fleet(str(request.param), servers, tmp_path_factory.mktemp("fleet")) as fleet:
        yield fleet


API_CASES: list[Any] = [
    # names
    pytest.param(lambda r, f: r.find_master_id(None), InvalidArgumentType, id="name-none"),
    pytest.param(
        lambda r, f: r.find_master_id(b"alpha:/srv"), InvalidArgumentType, id="name-bytes"
    ),
    pytest.param(lambda r, f: r.find_master_id(42), InvalidArgumentType, id="name-int"),
    pytest.param(lambda r, f: r.find_master_id(""), InvalidArgument, id="name-empty"),
    pytest.param(lambda r, f: r.find_master_id("m" * 1025), InvalidArgument, id="name-long"),
    pytest.param(lambda r, f: r.find_master_id("m" * 10**7), InvalidArgument, id="name-10MB"),
    pytest.param(lambda r, f: r.find_master_id("a\nb"), InvalidArgument, id="name-newline"),
    pytest.param(lambda r, f: r.find_master_id("a\x00b"), InvalidArgument, id="name-nul"),
    pytest.param(lambda r, f: r.find_master_id("a\x1b[2Jb"), InvalidArgument, id="name-escape"),
    pytest.param(lambda r, f: r.find_master_id("a\u2028b"), InvalidArgument, id="name-linesep"),
    pytest.param(lambda r, f: r.find_master_id("a\ud800b"), InvalidArgument, id="name-surrogate"),
    # master ids
    pytest.param(lambda r, f: r.set_master_state(True, True), InvalidArgumentType, id="id-bool"),
    pytest.param(lambda r, f: r.set_master_state("1", True), InvalidArgumentType, id="id-str"),
    pytest.param(lambda r, f: r.set_master_state(1.0, True), InvalidArgumentType, id="id-float"),
    pytest.param(lambda r, f: r.set_master_state(None, True), InvalidArgumentType, id="id-none"),
    pytest.param(lambda r, f: r.set_master_state(0, True), InvalidArgument, id="id-zero"),
    pytest.param(lambda r, f: r.set_master_state(-1, True), InvalidArgument, id="id-negative"),
    pytest.param(lambda r, f: r.set_master_state(2**31, True), InvalidArgument, id="id-past-int"),
    pytest.param(lambda r, f: r.set_master_state(HUGE, False), InvalidArgument, id="id-huge"),
    pytest.param(lambda r, f: r.get_master(False), InvalidArgumentType, id="get-id-bool"),
    pytest.param(lambda r, f: r.get_master(-7), InvalidArgument, id="get-id-negative"),
    pytest.param(lambda r, f: r.history(HUGE), InvalidArgument, id="history-id-huge"),
    # the active flag
    pytest.param(lambda r, f: r.set_master_state(f.alpha, 1), InvalidArgumentType, id="active-int"),
    pytest.param(
        lambda r, f: r.set_master_state(f.alpha, None), InvalidArgumentType, id="active-none"
    ),
    pytest.param(
        lambda r, f: r.set_master_state(f.alpha, "false"), InvalidArgumentType, id="active-str"
    ),
    pytest.param(lambda r, f: r.get_masters(active="yes"), InvalidArgumentType, id="filter-str"),
    # ordering and paging
    pytest.param(lambda r, f: r.get_masters(order="name"), InvalidArgumentType, id="order-str"),
    pytest.param(lambda r, f: r.get_masters(order=(1,)), InvalidArgumentType, id="order-int"),
    pytest.param(lambda r, f: r.get_masters(order=("rowid",)), InvalidArgument, id="order-unknown"),
    pytest.param(
        lambda r, f: r.get_masters(order=("name; DROP TABLE masters",)),
        InvalidArgument,
        id="order-injection",
    ),
    pytest.param(lambda r, f: r.get_masters(limit=-1), InvalidArgument, id="limit-negative"),
    pytest.param(lambda r, f: r.get_masters(limit=True), InvalidArgumentType, id="limit-bool"),
    pytest.param(lambda r, f: r.get_masters(limit=HUGE), InvalidArgument, id="limit-huge"),
    pytest.param(lambda r, f: r.get_masters(offset="2"), InvalidArgumentType, id="offset-str"),
    pytest.param(lambda r, f: r.get_masters(offset=HUGE), InvalidArgument, id="offset-huge"),
    # expiry
    pytest.param(lambda r, f: r.expire_masters(timeout=-1), InvalidArgument, id="timeout-negative"),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=math.nan), InvalidArgument, id="timeout-nan"
    ),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=math.inf), InvalidArgument, id="timeout-inf"
    ),
    pytest.param(lambda r, f: r.expire_masters(timeout=10**12), InvalidArgument, id="timeout-huge"),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=True), InvalidArgumentType, id="timeout-bool"
    ),
    pytest.param(
        lambda r, f: r.expire_masters(timeout="600"), InvalidArgumentType, id="timeout-str"
    ),
    pytest.param(lambda r, f: r.expire_masters(timeout=0, by=""), InvalidArgument, id="by-empty"),
    pytest.param(
        lambda r, f: r.expire_masters(timeout=0, by="a\x00"), InvalidArgument, id="by-nul"
    ),
    pytest.param(lambda r, f: r.expire_masters(timeout=0, by=7), InvalidArgumentType, id="by-int"),
    # times and positions
    pytest.param(lambda r, f: r.history(f.alpha, since=NAIVE), InvalidArgument, id="since-naive"),
    pytest.param(lambda r, f: r.history(f.alpha, until=NAIVE), InvalidArgument, id="until-naive"),
    pytest.param(
        lambda r, f: r.history(f.alpha, since="2023-11-14"), InvalidArgumentType, id="since-str"
    ),
    pytest.param(
        lambda r, f: r.history(f.alpha, until=AWARE.date()), InvalidArgumentType, id="until-date"
    ),
    pytest.param(lambda r, f: r.masters_as_of(NAIVE), InvalidArgument, id="as-of-naive"),
    pytest.param(lambda r, f: r.masters_as_of("@3"), InvalidArgumentType, id="as-of-str"),
    pytest.param(lambda r, f: r.masters_as_of(-1), InvalidArgument, id="as-of-negative"),
    pytest.param(lambda r, f: r.masters_as_of(True), InvalidArgumentType, id="as-of-bool"),
    pytest.param(lambda r, f: r.masters_as_of(2.5), InvalidArgumentType, id="as-of-float"),
    pytest.param(lambda r, f: r.masters_as_of(HUGE), InvalidArgument, id="as-of-huge"),
    pytest.param(lambda r, f: list(r.events(after=-1)), InvalidArgument, id="after-negative"),
    pytest.param(lambda r, f: list(r.events(after=HUGE)), InvalidArgument, id="after-huge"),
    pytest.param(lambda r, f: list(r.events(after=None)), InvalidArgumentType, id="after-none"),
    pytest.param(lambda r, f: list(r.events(limit=-5)), InvalidArgument, id="events-limit"),
]


CLOCK_CASES: list[Any] = [
    pytest.param(lambda: math.nan, InvalidArgument, id="nan"),
    pytest.param(lambda: math.inf, InvalidArgument, id="inf"),
    pytest.param(lambda: -1.0, InvalidArgument, id="before-epoch"),
    pytest.param(lambda: "1700000000", InvalidArgumentType, id="str"),
    pytest.param(lambda: None, InvalidArgumentType, id="none"),
    pytest.param(lambda: True, InvalidArgumentType, id="bool"),
    pytest.param(
        lambda: 1e300,
        InvalidArgument,
        id="huge",
    ),
    pytest.param(
        lambda: 2.0**31,
        InvalidArgument,
        id="past-2038",
    ),
]


CLOCKED_CALLS: list[Call] = [
    lambda r, f: r.find_master_id("new:/srv"),
    lambda r, f: r.set_master_state(f.alpha, True),
    lambda r, f: r.set_master_state(f.bravo, True),
    lambda r, f: r.expire_masters(timeout=0),
    lambda r, f: r.set_all_masters_active_long_time_ago(),
]


class TestApiBadInput:
    @pytest.mark.parametrize(("call", "error"), API_CASES)
    def test_is_a_typed_error_and_writes_nothing(
        self, fleet: Fleet, call: Call, error: type[RegistryError]
    ) -> None:
        """The bad argument raises its typed error (also the matching builtin) and leaves
        the log and the view as they were."""
        with unchanged(fleet), pytest.raises(error) as raised:
            call(fleet.registry, fleet)
        assert isinstance(raised.value, RegistryError)
        assert isinstance(raised.value, TypeError | ValueError)

    @pytest.mark.parametrize(("reading", "error"), CLOCK_CASES)
    def test_a_bad_clock_reading_is_a_typed_error_and_writes_nothing(
        self, fleet: Fleet, reading: Callable[[], object], error: type[RegistryError]
    ) -> None:
        """A clock returning something that is not POSIX seconds a view row can hold makes
        every writing command raise a typed error, writing nothing."""
        registry = Registry(fleet.registry.engine, clock=reading, actor="tester")  # type: ignore[arg-type]
        for call in CLOCKED_CALLS:
            with unchanged(fleet), pytest.raises(error):
                call(registry, fleet)

    def test_unknown_master_ids_write_nothing(self, fleet: Fleet) -> None:
        """An id no master has: set_master_state returns False and get_master None, as
        Buildbot's connector does, and nothing is written."""
        registry = fleet.registry
        with unchanged(fleet):
            assert registry.set_master_state(999, True) is False
            assert registry.set_master_state(2**31 - 1, False) is False
            assert registry.get_master(999) is None
            assert registry.history(999) == []

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            pytest.param({"clock": "now"}, InvalidArgumentType, id="clock-str"),
            pytest.param({"actor": 5}, InvalidArgumentType, id="actor-int"),
            pytest.param(
                {"actor": ""},
                InvalidArgument,
                id="actor-empty",
            ),
            pytest.param(
                {"actor": "ops\x00"},
                InvalidArgument,
                id="actor-nul",
            ),
        ],
    )
    def test_bad_registry_options_are_typed_errors(
        self, fleet: Fleet, options: dict[str, Any], error: type[RegistryError]
    ) -> None:
        """A clock that is not callable and an actor that is not a printable name are
        refused when the registry is made."""
        with pytest.raises(error):
            Registry(fleet.registry.engine, **options)

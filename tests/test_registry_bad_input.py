"""Bad input to every registry operation: a typed error, and nothing written."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import pytest

from mastertrail import (
    InvalidArgument,
    InvalidArgumentType,
    Registry,
    RegistryError,
)
from tests.conftest import Shared
from tests.registry_support import (
    snapshot,
)


@pytest.fixture(scope="class")
def target(shared: Shared) -> int:
    """An active master whose state any write would change."""
    master_id = shared.registry.find_master_id("host:/srv/active")
    shared.registry.set_master_state(master_id, True)
    return master_id


def bad_calls() -> list[Any]:
    """(call, error) pairs that must be refused without writing anything."""
    naive = dt.datetime(2024, 1, 1)
    long_name = "x" * 1025
    cases: list[tuple[str, Callable[[Registry, int], object], type[Exception]]] = [
        ("name-none", lambda r, m: r.find_master_id(None), InvalidArgumentType),  # type: ignore[arg-type]
        ("name-int", lambda r, m: r.find_master_id(5), InvalidArgumentType),  # type: ignore[arg-type]
        ("name-bytes", lambda r, m: r.find_master_id(b"a"), InvalidArgumentType),  # type: ignore[arg-type]
        ("name-empty", lambda r, m: r.find_master_id(""), InvalidArgument),
        ("name-too-long", lambda r, m: r.find_master_id(long_name), InvalidArgument),
        ("name-nul", lambda r, m: r.find_master_id("a\x00b"), InvalidArgument),
        ("name-newline", lambda r, m: r.find_master_id("a\nb"), InvalidArgument),
        ("name-escape", lambda r, m: r.find_master_id("a\x1b[31m"), InvalidArgument),
        ("id-bool-true", lambda r, m: r.set_master_state(True, True), InvalidArgumentType),
        ("id-bool-false", lambda r, m: r.set_master_state(False, False), InvalidArgumentType),
        ("id-str", lambda r, m: r.set_master_state(str(m), False), InvalidArgumentType),  # type: ignore[arg-type]
        ("id-float", lambda r, m: r.set_master_state(float(m), False), InvalidArgumentType),  # type: ignore[arg-type]
        ("id-none", lambda r, m: r.set_master_state(None, False), InvalidArgumentType),  # type: ignore[arg-type]
        ("id-zero", lambda r, m: r.set_master_state(0, True), InvalidArgument),
        ("id-negative", lambda r, m: r.set_master_state(-m, False), InvalidArgument),
        ("id-huge", lambda r, m: r.set_master_state(2**31, True), InvalidArgument),
        ("id-enormous", lambda r, m: r.set_master_state(10**100, True), InvalidArgument),
        ("active-int", lambda r, m: r.set_master_state(m, 0), InvalidArgumentType),  # type: ignore[arg-type]
        ("active-str", lambda r, m: r.set_master_state(m, "False"), InvalidArgumentType),  # type: ignore[arg-type]
        ("active-none", lambda r, m: r.set_master_state(m, None), InvalidArgumentType),  # type: ignore[arg-type]
        ("get-master-bool", lambda r, m: r.get_master(True), InvalidArgumentType),
        ("get-master-zero", lambda r, m: r.get_master(0), InvalidArgument),
        ("filter-int", lambda r, m: r.get_masters(active=1), InvalidArgumentType),  # type: ignore[arg-type]
        ("order-unknown", lambda r, m: r.get_masters(order=("bogus",)), InvalidArgument),
        (
            "order-sql",
            lambda r, m: r.get_masters(order=("name; DROP TABLE masters",)),
            InvalidArgument,
        ),
        ("order-str", lambda r, m: r.get_masters(order="name"), InvalidArgumentType),
        ("order-item", lambda r, m: r.get_masters(order=(1,)), InvalidArgumentType),  # type: ignore[arg-type]
        ("order-name-hash", lambda r, m: r.get_masters(order=("name_hash",)), InvalidArgument),
        ("limit-negative", lambda r, m: r.get_masters(limit=-1), InvalidArgument),
        ("limit-bool", lambda r, m: r.get_masters(limit=True), InvalidArgumentType),
        ("limit-huge", lambda r, m: r.get_masters(limit=2**63), InvalidArgument),
        ("offset-negative", lambda r, m: r.get_masters(offset=-1), InvalidArgument),
        ("offset-huge", lambda r, m: r.get_masters(offset=10**30), InvalidArgument),
        ("offset-str", lambda r, m: r.get_masters(offset="1"), InvalidArgumentType),  # type: ignore[arg-type]
        ("timeout-negative", lambda r, m: r.expire_masters(timeout=-1), InvalidArgument),
        ("timeout-nan", lambda r, m: r.expire_masters(timeout=math.nan), InvalidArgument),  # type: ignore[arg-type]
        ("timeout-str", lambda r, m: r.expire_masters(timeout="600"), InvalidArgumentType),  # type: ignore[arg-type]
        ("timeout-bool", lambda r, m: r.expire_masters(timeout=True), InvalidArgumentType),
        ("by-int", lambda r, m: r.expire_masters(by=5), InvalidArgumentType),  # type: ignore[arg-type]
        ("by-empty", lambda r, m: r.expire_masters(by=""), InvalidArgument),
        ("by-control", lambda r, m: r.expire_masters(by="a\x00"), InvalidArgument),
        ("history-id", lambda r, m: r.history(0), InvalidArgument),
        ("history-since-naive", lambda r, m: r.history(m, since=naive), InvalidArgument),
        ("history-until-naive", lambda r, m: r.history(m, until=naive), InvalidArgument),
        ("history-since-str", lambda r, m: r.history(m, since="2024"), InvalidArgumentType),  # type: ignore[arg-type]
        ("events-after-negative", lambda r, m: r.events(after=-1), InvalidArgument),
        ("events-limit-negative", lambda r, m: r.events(limit=-1), InvalidArgument),
        ("events-after-huge", lambda r, m: r.events(after=2**63), InvalidArgument),
        ("events-after-str", lambda r, m: r.events(after="0"), InvalidArgumentType),  # type: ignore[arg-type]
        ("as-of-naive", lambda r, m: r.masters_as_of(naive), InvalidArgument),
        ("as-of-negative", lambda r, m: r.masters_as_of(-1), InvalidArgument),
        ("as-of-huge", lambda r, m: r.masters_as_of(10**30), InvalidArgument),
        ("as-of-bool", lambda r, m: r.masters_as_of(True), InvalidArgumentType),
        ("as-of-str", lambda r, m: r.masters_as_of("yesterday"), InvalidArgumentType),  # type: ignore[arg-type]
        ("as-of-float", lambda r, m: r.masters_as_of(1.5), InvalidArgumentType),  # type: ignore[arg-type]
        ("as-of-date", lambda r, m: r.masters_as_of(dt.date(2024, 1, 1)), InvalidArgumentType),  # type: ignore[arg-type]
    ]
    return [pytest.param(call, error, id=name) for name, call, error in cases]


class TestBadInput:
    @pytest.mark.parametrize(("call", "error"), bad_calls())
    def test_bad_input_raises_a_typed_error_and_writes_nothing(
        self,
        shared: Shared,
        target: int,
        call: Callable[[Registry, int], object],
        error: type[Exception],
    ) -> None:
        """Each bad argument raises a RegistryError that is also the builtin; log, head and
        view are byte-for-byte unchanged."""
        registry = shared.registry
        before = snapshot(registry)
        shared.clock.advance(10_000)  # the target would expire, were anything to run
        with pytest.raises(error) as raised:
            call(registry, target)
        assert isinstance(raised.value, RegistryError)
        builtin = TypeError if error is InvalidArgumentType else ValueError
        assert isinstance(raised.value, builtin)
        assert snapshot(registry) == before

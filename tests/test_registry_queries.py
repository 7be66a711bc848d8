"""The registry's readings of the view and of one master's trail: get_masters, history."""

from __future__ import annotations

import datetime as dt

import pytest

from mastertrail import (
    Registry,
)
from tests.conftest import Shared
from tests.registry_support import (
    T0,
    at,
)


@pytest.fixture(scope="class")
def fleet(shared: Shared) -> list[int]:
    """Five masters: names out of id order, three active with distinct last_active."""
    registry, clock = shared.registry, shared.clock
    ids = [registry.find_master_id(n) for n in ("m:c", "m:a", "m:e", "m:b", "m:d")]
    for offset, master_id in zip((30, 10, 20), ids[::2], strict=True):
        clock.now = T0 + offset
        registry.set_master_state(master_id, True)
    return ids


class TestGetMasters:
    @pytest.fixture
    def registry(self, shared_registry: Registry) -> Registry:
        """The class's shared registry: these tests only read, and fail if they write."""
        return shared_registry

    def test_the_plain_call_returns_every_master_by_id(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """get_masters() returns all masters in id order."""
        assert [m.id for m in registry.get_masters()] == fleet

    def test_get_master_of_an_unknown_id_is_none(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """An id nobody registered reads as None."""
        assert registry.get_master(max(fleet) + 1) is None

    @pytest.mark.parametrize(("active", "indexes"), [(True, [0, 2, 4]), (False, [1, 3])])
    def test_active_filters(
        self, registry: Registry, fleet: list[int], active: bool, indexes: list[int]
    ) -> None:
        """active=True/False returns only the active/inactive masters."""
        masters = registry.get_masters(active=active)
        assert [m.id for m in masters] == [fleet[i] for i in indexes]
        assert {m.active for m in masters} == {active}

    @pytest.mark.parametrize(
        ("order", "names"),
        [
            (("name",), ["m:a", "m:b", "m:c", "m:d", "m:e"]),
            (("-name",), ["m:e", "m:d", "m:c", "m:b", "m:a"]),
            (("-id",), ["m:d", "m:b", "m:e", "m:a", "m:c"]),
            (("-active", "last_active"), ["m:e", "m:d", "m:c", "m:a", "m:b"]),
            (("active", "-name"), ["m:b", "m:a", "m:e", "m:d", "m:c"]),
            ((), ["m:c", "m:a", "m:e", "m:b", "m:d"]),
        ],
    )
    def test_order_takes_column_names_and_minus_for_descending(
        self, registry: Registry, fleet: list[int], order: tuple[str, ...], names: list[str]
    ) -> None:
        """Sorting by one or more columns, ``-`` descending, ties broken by id."""
        assert [m.name for m in registry.get_masters(order=order)] == names

    def test_limit_and_offset_page_through_the_order(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """Pages of two, concatenated, are the whole sorted list."""
        everything = registry.get_masters(order=("-name",))
        pages = [registry.get_masters(order=("-name",), limit=2, offset=n) for n in (0, 2, 4, 6)]
        assert [len(page) for page in pages] == [2, 2, 1, 0]
        assert [m for page in pages for m in page] == everything

    def test_the_largest_limit_and_offset_are_accepted(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """A limit or offset of 2**63 - 1 is a valid (if unhelpful) page on every backend."""
        assert [m.id for m in registry.get_masters(limit=2**63 - 1)] == fleet
        assert registry.get_masters(offset=2**63 - 1) == []
        assert list(registry.events(after=2**63 - 1)) == []
        assert len(registry.masters_as_of(2**63 - 1)) == len(fleet)

    def test_offset_without_limit_and_limit_zero(
        self, registry: Registry, fleet: list[int]
    ) -> None:
        """An offset alone skips; limit=0 returns nothing."""
        assert [m.id for m in registry.get_masters(offset=3)] == fleet[3:]
        assert registry.get_masters(limit=0) == []

    def test_filter_order_and_page_combine(self, registry: Registry, fleet: list[int]) -> None:
        """active, order, limit and offset apply together."""
        page = registry.get_masters(active=True, order=("name",), limit=1, offset=1)
        assert [m.name for m in page] == ["m:d"]


@pytest.fixture(scope="class")
def trail(shared: Shared) -> int:
    """One master with four events 10 s apart, another master interleaved."""
    registry, clock = shared.registry, shared.clock
    master_id = registry.find_master_id("host:/srv/a")
    for active in (True, True, False):
        clock.advance(10)
        registry.set_master_state(master_id, active)
        registry.find_master_id(f"host:/srv/other-{clock.now}")
    return master_id


class TestHistory:
    @pytest.fixture
    def registry(self, shared_registry: Registry) -> Registry:
        """The class's shared registry: these tests only read, and fail if they write."""
        return shared_registry

    def test_history_is_the_masters_trail_in_order(self, registry: Registry, trail: int) -> None:
        """All of a master's events, versions 1..n, and none of another master's."""
        events = registry.history(trail)
        assert [e.type for e in events] == [
            "master.registered",
            "master.activated",
            "master.checked_in",
            "master.deactivated",
        ]
        assert [e.version for e in events] == [1, 2, 3, 4]
        assert {e.master_id for e in events} == {trail}
        assert [e.recorded_at for e in events] == [at(T0 + s) for s in (0, 10, 20, 30)]

    def test_since_and_until_are_inclusive(self, registry: Registry, trail: int) -> None:
        """since and until select recorded_at within both bounds, ends included."""
        assert [e.version for e in registry.history(trail, since=at(T0 + 10))] == [2, 3, 4]
        assert [e.version for e in registry.history(trail, until=at(T0 + 20))] == [1, 2, 3]
        window = registry.history(trail, since=at(T0 + 10), until=at(T0 + 10))
        assert [e.version for e in window] == [2]
        assert registry.history(trail, since=at(T0 + 31)) == []

    def test_bounds_in_another_time_zone_mean_the_same_instant(
        self, registry: Registry, trail: int
    ) -> None:
        """An aware datetime at UTC+02:00 bounds the same instants as its UTC equivalent."""
        plus_two = dt.timezone(dt.timedelta(hours=2))
        since = at(T0 + 20).astimezone(plus_two)
        assert [e.version for e in registry.history(trail, since=since)] == [3, 4]

    def test_an_unknown_master_has_no_history(self, registry: Registry, trail: int) -> None:
        """history of an id nobody registered is empty."""
        assert registry.history(trail + 1000) == []

"""Adoption: ``masters`` rows without history are recorded before anything touches them."""

from __future__ import annotations

from mastertrail import (
    MasterModel,
    Registry,
)
from tests.conftest import FakeClock
from tests.registry_support import (
    T0,
    at,
    insert_raw_master,
    snapshot,
)


class TestAdoption:
    def test_upgrade_adopts_rows_without_history(self, db_url: str, clock: FakeClock) -> None:
        """Rows written straight into masters before upgrade get an adoption event, as found."""
        registry = Registry(db_url, clock=clock, actor="tester")
        registry.upgrade()
        insert_raw_master(registry, 5, "old:/srv/a", active=True, last_active=T0 - 100)
        registry.upgrade()
        (event,) = registry.history(5)
        assert (event.type, event.version) == ("master.adopted", 1)
        assert event.data == {"name": "old:/srv/a", "active": True, "last_active": T0 - 100}
        assert event.metadata["reason"] == "adopted"
        assert registry.get_master(5) == MasterModel(5, "old:/srv/a", True, at(T0 - 100))
        assert registry.verify().ok
        registry.close()

    def test_adopt_returns_the_adopted_masters_once(
        self, registry: Registry, active_master: int
    ) -> None:
        """adopt() returns the rows it recorded; a second call finds none and writes nothing."""
        insert_raw_master(registry, 50, "old:/srv/b", active=False, last_active=T0 - 5)
        assert registry.adopt() == [MasterModel(50, "old:/srv/b", False, at(T0 - 5))]
        before = snapshot(registry)
        assert registry.adopt() == []
        assert snapshot(registry) == before

    def test_a_command_adopts_lazily_before_its_own_event(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """set_master_state on a row with no history records the adoption first."""
        insert_raw_master(registry, 7, "old:/srv/c", active=True, last_active=T0 - 100)
        clock.advance(5)
        assert registry.set_master_state(7, True) is False
        trail = registry.history(7)
        assert [(e.type, e.metadata["reason"]) for e in trail] == [
            ("master.adopted", "adopted"),
            ("master.checked_in", "heartbeat"),
        ]
        assert [e.version for e in trail] == [1, 2]
        assert trail[0].data["last_active"] == T0 - 100

    def test_expiry_adopts_before_deactivating(self, registry: Registry, clock: FakeClock) -> None:
        """An expired row without history: adoption, then the deactivation."""
        insert_raw_master(registry, 8, "old:/srv/d", active=True, last_active=T0 - 10_000)
        assert [m.id for m in registry.expire_masters()] == [8]
        assert [e.type for e in registry.history(8)] == ["master.adopted", "master.deactivated"]

    def test_housekeeping_adopts_before_forcing(self, registry: Registry) -> None:
        """set_all_masters_active_long_time_ago adopts a row without history first."""
        insert_raw_master(registry, 9, "old:/srv/e", active=False, last_active=T0)
        registry.set_all_masters_active_long_time_ago()
        assert [e.type for e in registry.history(9)] == [
            "master.adopted",
            "master.housekeeping_forced",
        ]

    def test_looking_up_a_row_without_history_writes_nothing(self, registry: Registry) -> None:
        """find_master_id of an unadopted name returns its id and writes nothing."""
        insert_raw_master(registry, 11, "old:/srv/f", active=False, last_active=T0)
        before = snapshot(registry)
        assert registry.find_master_id("old:/srv/f") == 11
        assert snapshot(registry) == before

    def test_new_ids_stay_clear_of_adopted_rows(self, registry: Registry) -> None:
        """A new registration gets an id above a row written without history."""
        insert_raw_master(registry, 100, "old:/srv/g", active=False, last_active=T0)
        assert registry.find_master_id("host:/srv/new") > 100

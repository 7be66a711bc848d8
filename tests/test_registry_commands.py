"""The registry's commands: find_master_id, set_master_state, housekeeping and expiry."""

from __future__ import annotations

import pytest
import structlog.testing

import eventstore
from mastertrail import (
    MasterModel,
    Registry,
)
from tests.conftest import FakeClock
from tests.registry_support import (
    EPOCH,
    T0,
    at,
    log_of,
    snapshot,
)


class TestFindMasterId:
    def test_a_new_name_is_registered_inactive_and_last_active_now(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """A new name gets an id; it reads back inactive with last_active = now."""
        clock.advance(5)
        master_id = registry.find_master_id("host:/srv/new")
        assert registry.get_master(master_id) == MasterModel(
            master_id, "host:/srv/new", False, at(T0 + 5)
        )

    def test_registration_is_one_event(self, registry: Registry, clock: FakeClock) -> None:
        """The log gets one master.registered event, version 1, with the name and now."""
        master_id = registry.find_master_id("host:/srv/new")
        (event,) = log_of(registry)
        assert (event.master_id, event.version, event.type) == (master_id, 1, "master.registered")
        assert event.data == {"name": "host:/srv/new", "last_active": T0}
        assert event.metadata["reason"] == "registered"

    def test_an_existing_name_returns_its_id(self, registry: Registry, clock: FakeClock) -> None:
        """Looking a name up again returns the id it was registered with."""
        master_id = registry.find_master_id("host:/srv/a")
        clock.advance(60)
        assert registry.find_master_id("host:/srv/a") == master_id

    def test_looking_up_an_existing_name_writes_nothing(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """The lookup leaves log, head and view exactly as they were."""
        before = snapshot(registry)
        clock.advance(60)
        registry.find_master_id("host:/srv/active")
        assert snapshot(registry) == before

    def test_names_are_case_sensitive(self, registry: Registry) -> None:
        """``some:master`` and ``some:Master`` are two masters."""
        lower = registry.find_master_id("some:master")
        upper = registry.find_master_id("some:Master")
        assert lower != upper
        assert [m.name for m in registry.get_masters()] == ["some:master", "some:Master"]
        assert registry.find_master_id("some:Master") == upper

    def test_new_names_get_distinct_growing_ids(self, registry: Registry) -> None:
        """Each new name gets an id greater than every id before it."""
        ids = [registry.find_master_id(f"host:/srv/{n}") for n in range(5)]
        assert ids == sorted(set(ids))
        assert ids[0] >= 1

    @pytest.mark.parametrize(
        "name",
        ["x" * 1024, "emoji:🚀/ünïcode", "é" * 1024, "trailing ", "tab-free:/a b"],
    )
    def test_any_valid_name_round_trips(self, registry: Registry, name: str) -> None:
        """Long and non-ASCII names are stored and found again exactly."""
        master_id = registry.find_master_id(name)
        master = registry.get_master(master_id)
        assert master is not None
        assert master.name == name
        assert registry.find_master_id(name) == master_id
        assert registry.verify().ok

    def test_names_differing_only_in_trailing_space_are_two_masters(
        self, registry: Registry
    ) -> None:
        """``a`` and ``a `` are different names, even where SQL pads comparisons."""
        assert registry.find_master_id("a") != registry.find_master_id("a ")


class TestSetMasterState:
    def test_inactive_to_active_returns_true_and_moves_last_active(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """Activating an inactive master: True, active, last_active = now, master.activated."""
        master_id = registry.find_master_id("host:/srv/a")
        clock.advance(30)
        assert registry.set_master_state(master_id, True) is True
        assert registry.get_master(master_id) == MasterModel(
            master_id, "host:/srv/a", True, at(T0 + 30)
        )
        event = log_of(registry)[-1]
        assert (event.type, event.metadata["reason"]) == ("master.activated", "started")

    def test_active_to_active_is_a_check_in(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Activating an active master: False, last_active moves to now, master.checked_in."""
        clock.advance(45)
        assert registry.set_master_state(active_master, True) is False
        master = registry.get_master(active_master)
        assert master is not None
        assert (master.active, master.last_active) == (True, at(T0 + 55))
        event = log_of(registry)[-1]
        assert (event.type, event.metadata["reason"]) == ("master.checked_in", "heartbeat")
        # last_active is the second the event was recorded in: left out of the data.
        assert (event.schema_version, event.data) == (2, {})
        assert eventstore.CODEC.decode(event).last_active == T0 + 55

    def test_active_to_inactive_returns_true_and_keeps_last_active(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Deactivating: True, inactive, last_active unchanged, master.deactivated (stopped)."""
        clock.advance(300)
        assert registry.set_master_state(active_master, False) is True
        master = registry.get_master(active_master)
        assert master is not None
        assert (master.active, master.last_active) == (False, at(T0 + 10))
        event = log_of(registry)[-1]
        assert (event.type, event.metadata["reason"]) == ("master.deactivated", "stopped")
        assert event.data == {
            "last_active": T0 + 10,
            "timeout": None,
            "schedulers": [],
            "changesources": [],
        }

    def test_inactive_to_inactive_returns_false_and_writes_nothing(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """Deactivating an inactive master: False, and log and view are unchanged."""
        master_id = registry.find_master_id("host:/srv/a")
        before = snapshot(registry)
        clock.advance(30)
        assert registry.set_master_state(master_id, False) is False
        assert snapshot(registry) == before

    @pytest.mark.parametrize("active", [True, False])
    def test_an_unknown_id_returns_false_and_writes_nothing(
        self, registry: Registry, active_master: int, active: bool
    ) -> None:
        """A master id nobody registered: False, nothing written, nothing created."""
        before = snapshot(registry)
        assert registry.set_master_state(active_master + 1, active) is False
        assert registry.get_master(active_master + 1) is None
        assert snapshot(registry) == before

    def test_deactivation_by_another_master_is_recorded_as_expiry(
        self, registry: Registry, db_url: str, clock: FakeClock, active_master: int
    ) -> None:
        """A registered master deactivating another records reason expired and its name."""
        other = Registry(db_url, clock=clock, actor="host:/srv/other")
        other.find_master_id("host:/srv/other")
        assert other.set_master_state(active_master, False) is True
        event = log_of(registry)[-1]
        assert event.metadata["reason"] == "expired"
        assert event.metadata["actor"] == "host:/srv/other"
        other.close()


class TestSetAllMastersActiveLongTimeAgo:
    def test_every_master_becomes_active_at_the_epoch(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Active and inactive masters alike read back active with last_active at the epoch."""
        inactive = registry.find_master_id("host:/srv/inactive")
        clock.advance(60)
        registry.set_all_masters_active_long_time_ago()
        assert registry.get_masters() == [
            MasterModel(active_master, "host:/srv/active", True, EPOCH),
            MasterModel(inactive, "host:/srv/inactive", True, EPOCH),
        ]

    def test_each_masters_trail_shows_it(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Each master's newest event is master.housekeeping_forced, reason upgrade."""
        inactive = registry.find_master_id("host:/srv/inactive")
        registry.set_all_masters_active_long_time_ago()
        for master_id in (active_master, inactive):
            event = registry.history(master_id)[-1]
            assert event.type == "master.housekeeping_forced"
            assert event.metadata["reason"] == "upgrade"
            assert event.data == {"last_active": 0}

    def test_the_next_housekeeping_expires_them_all(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """After it, expire_masters() deactivates every master."""
        inactive = registry.find_master_id("host:/srv/inactive")
        registry.set_all_masters_active_long_time_ago()
        expired = registry.expire_masters()
        assert [m.id for m in expired] == [active_master, inactive]
        assert registry.get_masters(active=True) == []

    def test_with_no_masters_nothing_is_written(self, registry: Registry) -> None:
        """On an empty registry it writes nothing."""
        before = snapshot(registry)
        registry.set_all_masters_active_long_time_ago()
        assert snapshot(registry) == before


class TestExpireMasters:
    def test_a_master_silent_exactly_the_timeout_is_kept(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """last_active exactly now - timeout is not older than it: nothing is expired or written."""
        clock.advance(600)
        before = snapshot(registry)
        assert registry.expire_masters(timeout=600) == []
        assert snapshot(registry) == before

    def test_a_master_silent_longer_than_the_timeout_is_expired(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """One second more and it is deactivated and returned, last_active unchanged."""
        clock.advance(601)
        expected = MasterModel(active_master, "host:/srv/active", False, at(T0 + 10))
        assert registry.expire_masters(timeout=600) == [expected]
        assert registry.get_master(active_master) == expected

    def test_the_default_timeout_is_600_seconds(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Without ``timeout=`` 600 s of silence is allowed and 601 s is not."""
        clock.advance(600)
        assert registry.expire_masters() == []
        clock.advance(1)
        assert [m.id for m in registry.expire_masters()] == [active_master]

    def test_only_silent_active_masters_are_returned(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Recent and inactive masters are left alone and not returned."""
        inactive = registry.find_master_id("host:/srv/inactive")
        recent = registry.find_master_id("host:/srv/recent")
        clock.advance(1000)
        registry.set_master_state(recent, True)
        assert [m.id for m in registry.expire_masters(timeout=600)] == [active_master]
        assert {m.id for m in registry.get_masters(active=False)} == {active_master, inactive}
        assert [m.id for m in registry.get_masters(active=True)] == [recent]

    def test_the_expiry_names_actor_reason_and_timeout(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """The deactivation names the registry's actor, reason expired, and the timeout."""
        clock.advance(1000)
        registry.expire_masters(timeout=120)
        event = registry.history(active_master)[-1]
        assert event.type == "master.deactivated"
        assert event.data == {
            "last_active": T0 + 10,
            "timeout": 120,
            "schedulers": [],
            "changesources": [],
        }
        assert event.metadata["actor"] == "tester"
        assert event.metadata["reason"] == "expired"

    def test_by_names_who_expired_them(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """expire_masters(by=...) records that name as the actor of the deactivation."""
        clock.advance(1000)
        with structlog.testing.capture_logs() as logs:
            registry.expire_masters(by="host:/srv/housekeeper")
        event = registry.history(active_master)[-1]
        assert event.metadata["actor"] == "host:/srv/housekeeper"
        assert event.metadata["reason"] == "expired"
        assert logs[0]["actor"] == "host:/srv/housekeeper"

    def test_expiring_again_writes_nothing(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """A second housekeeping finds nothing left to expire."""
        clock.advance(1000)
        registry.expire_masters()
        before = snapshot(registry)
        assert registry.expire_masters() == []
        assert snapshot(registry) == before

"""End to end: the registry answers the five Buildbot operations on every backend."""

from __future__ import annotations

from mastertrail import Registry
from tests.conftest import FakeClock


class TestSmoke:
    def test_register_activate_and_read_back(self, registry: Registry, clock: FakeClock) -> None:
        """A registered master, once activated, reads back active with last_active = now."""
        master_id = registry.find_master_id("host:/srv/master")
        clock.advance(60)
        assert registry.set_master_state(master_id, True) is True
        master = registry.get_master(master_id)
        assert master is not None
        assert master.active is True
        assert master.last_active.timestamp() == int(clock.now)
        assert registry.verify().ok

"""Buildbot's link tables: a deactivation deletes the master's links in its transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mastertrail import (
    Registry,
)
from tests.conftest import FakeClock
from tests.registry_support import (
    changesource_masters,
    link_metadata,
    links,
    scheduler_masters,
    snapshot,
)


class TestLinks:
    @pytest.fixture
    def linked(self, registry: Registry, clock: FakeClock) -> tuple[int, int]:
        """Two active masters, each with a scheduler and a change source link."""
        with registry.engine.begin() as conn:
            link_metadata.create_all(conn)
        first = registry.find_master_id("host:/srv/first")
        second = registry.find_master_id("host:/srv/second")
        for master_id in (first, second):
            registry.set_master_state(master_id, True)
        with registry.engine.begin() as conn:
            conn.execute(
                scheduler_masters.insert(),
                [
                    {"schedulerid": 1, "masterid": first},
                    {"schedulerid": 2, "masterid": second},
                    {"schedulerid": 3, "masterid": first},
                ],
            )
            conn.execute(
                changesource_masters.insert(),
                [
                    {"changesourceid": 1, "masterid": first},
                    {"changesourceid": 2, "masterid": second},
                ],
            )
        return first, second

    def test_deactivation_deletes_the_masters_links_only(
        self, registry: Registry, linked: tuple[int, int]
    ) -> None:
        """A deactivated master loses its scheduler and change source links; others keep theirs."""
        first, second = linked
        assert registry.set_master_state(first, False) is True
        assert links(registry) == {
            "scheduler_masters": [(2, second)],
            "changesource_masters": [(2, second)],
        }

    def test_the_deactivation_records_the_links_it_removed(
        self, registry: Registry, linked: tuple[int, int], clock: FakeClock
    ) -> None:
        """The stop's event names the scheduler and change source links it deleted, and so
        does an expiry's; the trail keeps what the tables forget."""
        first, second = linked
        registry.set_master_state(first, False)
        stop = registry.history(first)[-1]
        assert (stop.schema_version, stop.data["schedulers"], stop.data["changesources"]) == (
            2,
            [1, 3],
            [1],
        )
        clock.advance(700)
        registry.expire_masters()
        expiry = registry.history(second)[-1]
        assert (expiry.data["schedulers"], expiry.data["changesources"]) == ([2], [2])

    def test_activation_and_check_ins_keep_links(
        self, registry: Registry, linked: tuple[int, int], clock: FakeClock
    ) -> None:
        """Checking in, and activating an inactive master, do not touch links."""
        with registry.engine.begin() as conn:
            conn.execute(scheduler_masters.insert().values(schedulerid=4, masterid=99))
        before = links(registry)
        clock.advance(10)
        registry.set_master_state(linked[0], True)
        registry.set_master_state(registry.find_master_id("host:/srv/third"), True)
        assert links(registry) == before

    def test_expiry_deletes_links(
        self, registry: Registry, linked: tuple[int, int], clock: FakeClock
    ) -> None:
        """A master expired by housekeeping loses its links too."""
        clock.advance(700)
        registry.set_master_state(linked[1], True)
        expired = registry.expire_masters()
        assert [m.id for m in expired] == [linked[0]]
        assert links(registry) == {
            "scheduler_masters": [(2, linked[1])],
            "changesource_masters": [(2, linked[1])],
        }

    def test_links_are_deleted_in_the_deactivations_transaction(
        self, registry: Registry, active_master: int
    ) -> None:
        """When deleting links fails, the deactivation is not recorded either."""
        with registry.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE scheduler_masters (schedulerid INTEGER)"))
        before = snapshot(registry)
        with pytest.raises(sa.exc.DBAPIError):
            registry.set_master_state(active_master, False)
        assert snapshot(registry) == before
        master = registry.get_master(active_master)
        assert master is not None
        assert master.active is True

    def test_deactivation_works_without_link_tables(
        self, registry: Registry, active_master: int
    ) -> None:
        """In a database with no link tables a deactivation deletes nothing, and records
        that it removed no link."""
        assert registry.set_master_state(active_master, False) is True
        stop = registry.history(active_master)[-1]
        assert (stop.data["schedulers"], stop.data["changesources"]) == ([], [])

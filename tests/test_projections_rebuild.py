"""Projections: rebuilding the view from the log, and verify finding view drift."""

from __future__ import annotations

import hashlib

import pytest

from eventstore.recorded import RecordedEvent
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.projections_support import (
    drop_immutability_triggers,
    execute,
    insert_raw_master,
    make_busy,
    view_rows,
)


@pytest.fixture
def busy(registry: Registry, clock: FakeClock) -> list[RecordedEvent]:
    """A registry with a history of every kind of event; returns its log."""
    return make_busy(registry, clock)


class TestRebuild:
    def test_rebuild_returns_the_number_of_events_replayed(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """rebuild() replays every event of the log and says how many."""
        assert registry.rebuild() == len(busy)

    def test_a_rebuild_of_a_correct_view_changes_nothing(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Rebuilding a view that agrees with the log leaves every row as it was."""
        before = view_rows(registry)
        registry.rebuild()
        assert view_rows(registry) == before

    def test_rebuild_restores_missing_rows_with_their_ids(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Rows deleted from masters come back with their recorded ids and values."""
        before = view_rows(registry)
        execute(registry, "DELETE FROM masters WHERE id IN (1, 40)")
        registry.rebuild()
        assert view_rows(registry) == before
        assert registry.verify().ok

    def test_rebuild_updates_drifted_rows_in_place(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Rows whose name, name_hash, active or last_active drifted get the log's values back."""
        before = view_rows(registry)
        execute(registry, "UPDATE masters SET active = 1 - active, last_active = 7 WHERE id = 1")
        execute(registry, "UPDATE masters SET name = 'forged', name_hash = 'x' WHERE id = 2")
        registry.rebuild()
        assert view_rows(registry) == before

    def test_rebuild_never_deletes_a_row(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """A row the log knows nothing of survives the rebuild untouched."""
        insert_raw_master(registry, 99, "stray:/srv/x", active=True, last_active=5)
        before = view_rows(registry)
        registry.rebuild()
        assert view_rows(registry) == before

    def test_new_registrations_after_a_rebuild_get_fresh_ids(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """With rows deleted and rebuilt, a new name gets an id no replayed master has."""
        replayed = {e.master_id for e in busy}
        execute(registry, "DELETE FROM masters")
        registry.rebuild()
        fresh = registry.find_master_id("host:/srv/fresh")
        assert fresh not in replayed
        assert fresh > max(replayed)
        assert registry.verify().ok

    def test_ids_taken_by_the_table_after_a_rebuild_are_fresh(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """An insert that lets the database choose the id (as Buildbot's own code does)
        collides with no replayed master either."""
        replayed = {e.master_id for e in busy}
        execute(registry, "DELETE FROM masters")
        registry.rebuild()
        execute(
            registry,
            "INSERT INTO masters (name, name_hash, active, last_active) "
            "VALUES ('auto', :hash, 0, 0)",
            hash=hashlib.sha1(b"auto").hexdigest(),
        )
        ids = [row[0] for row in view_rows(registry)]
        assert len(ids) == len(replayed) + 1
        assert set(ids) - replayed

    def test_registrations_never_reuse_the_id_of_a_missing_row(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Even before a rebuild, the newest master's row being gone does not free its id."""
        newest = max(e.master_id for e in busy)
        execute(registry, "DELETE FROM masters WHERE id = :id", id=newest)
        assert registry.find_master_id("host:/srv/fresh") > newest

    def test_progress_is_reported(self, registry: Registry, busy: list[RecordedEvent]) -> None:
        """progress(done, total) ends with every event done."""
        calls: list[tuple[int, int]] = []
        registry.rebuild(progress=lambda done, total: calls.append((done, total)))
        assert calls[-1] == (len(busy), len(busy))

    def test_events_committed_during_the_rebuild_are_folded_in(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """A registration that commits while the log streams is in the rebuilt view."""
        late: list[int] = []

        def register_meanwhile(done: int, total: int) -> None:
            if not late:
                late.append(registry.find_master_id("host:/srv/late"))

        execute(registry, "DELETE FROM masters")
        assert registry.rebuild(progress=register_meanwhile) == len(busy) + 1
        assert registry.get_master(late[0]) is not None
        assert registry.verify().ok


class TestVerify:
    def test_a_consistent_registry_verifies(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Log and view agree: ok, no problems, every event checked."""
        report = registry.verify()
        assert report.ok
        assert report.problems == []
        assert report.events_checked == len(busy)

    def test_every_difference_is_listed(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Drifted fields, a missing row and a row without history are each reported."""
        execute(registry, "UPDATE masters SET active = 1 - active, last_active = 7 WHERE id = 1")
        execute(registry, "UPDATE masters SET name = 'forged' WHERE id = 2")
        execute(registry, "DELETE FROM masters WHERE id = 40")
        insert_raw_master(registry, 99, "stray:/srv/x", active=False, last_active=5)
        report = registry.verify()
        assert not report.ok
        found = {(p.kind, p.master_id, p.detail.split(" ")[0]) for p in report.problems}
        assert found == {
            ("view", 1, "active"),
            ("view", 1, "last_active"),
            ("view", 2, "name"),
            ("view", 40, "row"),
            ("view", 99, "row"),
        }
        details = {p.master_id: p.detail for p in report.problems if p.master_id in (40, 99)}
        assert "missing" in details[40]
        assert "no history" in details[99]

    def test_a_drifted_name_hash_is_reported(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """A row whose name_hash is not the SHA-1 of its name is a difference."""
        execute(registry, "UPDATE masters SET name_hash = :h WHERE id = 1", h="0" * 40)
        report = registry.verify()
        assert [(p.kind, p.master_id) for p in report.problems] == [("view", 1)]
        assert "name_hash" in report.problems[0].detail

    def test_a_broken_chain_is_reported_at_its_position(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """An event changed behind the log's back breaks the chain at its position."""
        drop_immutability_triggers(registry)
        execute(registry, "UPDATE mastertrail_events SET metadata_id = type_id WHERE position = 3")
        report = registry.verify()
        assert not report.ok
        assert [(p.kind, p.position) for p in report.problems] == [("chain", 3)]
        assert "position 3" in str(report.problems[0])

    def test_verify_changes_nothing(self, registry: Registry, busy: list[RecordedEvent]) -> None:
        """verify() only reads: a drifted view stays drifted."""
        execute(registry, "UPDATE masters SET last_active = 7 WHERE id = 1")
        before = view_rows(registry)
        registry.verify()
        assert view_rows(registry) == before

"""Event ids in the event store: a retried batch returns its positions, a reused id
conflicts, derived ids name exactly one stored event."""

from __future__ import annotations

import uuid

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import eventstore
import eventstore.fused
from eventstore import (
    ConcurrencyError,
    EventIdConflict,
    NewEvent,
)
from eventstore.engine import reading
from eventstore.errors import InvalidArgument
from eventstore.ids import derived_event_id
from eventstore.schema import events
from tests.eventstore_support import (
    T0,
    all_events,
    append,
    count_events,
    head,
    new_event,
)


class TestIdempotentRetry:
    """Re-appending what is stored is safe; reusing an id for something else is not."""

    def test_reappending_a_stored_batch_returns_its_positions(self, engine: Engine) -> None:
        """A retried batch returns its original positions, marked duplicate, and writes nothing."""
        batch = [new_event(), new_event()]
        first = append(engine, 1, 0, batch)
        append(engine, 2, 0, [new_event()])
        retry = append(engine, 1, 0, batch)
        assert retry.positions == first.positions == (1, 2)
        assert retry.duplicate is True
        assert first.duplicate is False
        assert head(engine) == 3
        assert count_events(engine) == 3

    def test_retry_after_the_stream_moved_on_returns_original_positions(
        self, engine: Engine
    ) -> None:
        """A batch retried after later appends to its stream still returns its own positions."""
        batch = [new_event()]
        append(engine, 1, 0, batch)
        append(engine, 1, 1, [new_event()])
        assert append(engine, 1, 0, batch).positions == (1,)
        assert head(engine) == 2

    @pytest.mark.parametrize("expected", [0, 1], ids=["stale", "current"])
    def test_batch_mixing_stored_and_new_ids_conflicts(self, engine: Engine, expected: int) -> None:
        """A batch holding a stored event id next to a new one raises EventIdConflict."""
        stored = new_event()
        append(engine, 1, 0, [stored])
        fresh = new_event()
        with pytest.raises(EventIdConflict) as caught:
            append(engine, 1, expected, [stored, fresh])
        assert str(stored.event_id) in caught.value.event_ids
        assert isinstance(caught.value, ValueError)
        assert head(engine) == 1
        assert count_events(engine) == 1

    def test_event_id_reused_on_another_stream_conflicts(self, engine: Engine) -> None:
        """An event id stored on one master cannot be appended to another master."""
        event = new_event()
        append(engine, 1, 0, [event])
        with pytest.raises(EventIdConflict):
            append(engine, 2, 0, [event])
        assert head(engine) == 1
        with reading(engine) as conn:
            assert eventstore.read_stream(conn, 2) == []

    def test_stored_batch_retried_on_another_stream_conflicts(self, engine: Engine) -> None:
        """A stored batch sent to another master at a stale version is a conflict, not a retry."""
        batch = [new_event()]
        append(engine, 1, 0, batch)
        append(engine, 2, 0, [new_event()])
        with pytest.raises(EventIdConflict):
            append(engine, 2, 0, batch)
        assert head(engine) == 2

    def test_stored_batch_retried_at_another_version_conflicts(self, engine: Engine) -> None:
        """A stored batch offered at a different expected version is not its retry."""
        append(engine, 1, 0, [new_event()])
        batch = [new_event()]
        append(engine, 1, 1, batch)
        with pytest.raises(EventIdConflict):
            append(engine, 1, 0, batch)
        assert head(engine) == 2

    def test_stored_batch_retried_in_another_order_conflicts(self, engine: Engine) -> None:
        """The same event ids in another order are not the stored batch."""
        batch = [new_event(), new_event()]
        append(engine, 1, 0, batch)
        with pytest.raises(EventIdConflict):
            append(engine, 1, 0, batch[::-1])
        assert head(engine) == 2


class TestDerivedEventIds:
    """Ids derived from the event's master, version and time are not stored, yet found."""

    @staticmethod
    def derived(master_id: int, version: int, recorded_at: int = T0) -> NewEvent:
        event_id = derived_event_id(master_id, version, recorded_at)
        assert event_id is not None
        return new_event(event_id=event_id, recorded_at=recorded_at)

    @staticmethod
    def stored_ids(engine: Engine) -> list[uuid.UUID | None]:
        with reading(engine) as conn:
            return list(
                conn.execute(sa.select(events.c.event_id).order_by(events.c.position)).scalars()
            )

    def test_a_derived_id_is_not_stored_and_reads_back(self, engine: Engine) -> None:
        batch = [self.derived(1, 1), self.derived(1, 2, T0 + 1)]
        kept = new_event()  # a version 4 id: stored
        append(engine, 1, 0, batch)
        append(engine, 2, 0, [kept])
        assert self.stored_ids(engine) == [None, None, kept.event_id]
        assert [e.event_id for e in all_events(engine)] == [
            *(new.event_id for new in batch),
            kept.event_id,
        ]
        assert eventstore.verify_chain(engine).ok

    def test_a_derived_batch_retried_returns_its_positions(self, engine: Engine) -> None:
        batch = [self.derived(1, 1), self.derived(1, 2)]
        first = append(engine, 1, 0, batch)
        append(engine, 1, 2, [self.derived(1, 3)])
        retry = append(engine, 1, 0, batch)
        assert retry.positions == first.positions == (1, 2)
        assert retry.duplicate
        assert count_events(engine) == 3

    def test_another_event_in_the_place_and_time_an_id_names_is_not_it(
        self, engine: Engine
    ) -> None:
        """Two writers deciding on one stream version at one microsecond derive one id; the
        second is a stale append, not a retry of the first, unless its event is the same."""
        first = self.derived(1, 1)
        append(engine, 1, 0, [first])
        for other in (
            attrs.evolve(first, metadata={"actor": "another", "reason": "test"}),
            attrs.evolve(first, data={"other": True}),
            attrs.evolve(first, type="test.other"),
        ):
            with pytest.raises(ConcurrencyError):
                append(engine, 1, 0, [other])
        assert append(engine, 1, 0, [attrs.evolve(first)]).duplicate
        assert count_events(engine) == 1

    def test_a_derived_id_of_a_stored_event_elsewhere_conflicts(self, engine: Engine) -> None:
        stored = self.derived(1, 1)
        append(engine, 1, 0, [stored])
        with pytest.raises(EventIdConflict):
            append(engine, 1, 1, [stored])  # as version 2: not what it names
        with pytest.raises(EventIdConflict):
            append(engine, 2, 0, [stored])
        assert count_events(engine) == 1

    def test_a_version_8_id_naming_another_event_is_refused(self, engine: Engine) -> None:
        stray = self.derived(5, 9)  # names version 9 of master 5, which is not stored
        with pytest.raises(InvalidArgument, match="version 8"):
            append(engine, 1, 0, [stray])
        assert count_events(engine) == 0
        assert head(engine) == 0

    def test_a_derived_id_of_another_time_names_another_event(self, engine: Engine) -> None:
        event_id = derived_event_id(1, 1, T0)
        assert event_id is not None
        with pytest.raises(InvalidArgument):
            append(engine, 1, 0, [new_event(event_id=event_id, recorded_at=T0 + 1)])
        assert count_events(engine) == 0

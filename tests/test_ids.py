"""Event ids carry the time they were recorded and are ordered by it: version 7 UUIDs, or
version 8 ones derived from the event's master, version and time, which the log does not
store."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from eventstore import schema
from eventstore.errors import InvalidArgument
from eventstore.ids import (
    MAX_DERIVED,
    MAX_MICROS,
    derivation,
    derived_event_id,
    event_id_for,
    event_id_millis,
    event_id_of,
    is_derived,
    new_event_id,
    stored_event_id,
)
from eventstore.recorded import to_micros
from mastertrail import Registry
from tests.conftest import FakeClock


class TestNewEventId:
    def test_is_an_rfc_9562_version_7_uuid(self) -> None:
        event_id = new_event_id(1_700_000_000_123_456)
        assert event_id.version == 7
        assert event_id.variant == uuid.RFC_4122

    def test_carries_the_milliseconds_it_was_given(self) -> None:
        assert event_id_millis(new_event_id(1_700_000_000_123_456)) == 1_700_000_000_123
        assert event_id_millis(new_event_id(0)) == 0
        assert event_id_millis(new_event_id(MAX_MICROS)) == MAX_MICROS // 1000

    @pytest.mark.parametrize(
        ("earlier", "later"),
        [
            (1_700_000_000_000_000, 1_700_000_001_000_000),  # a second apart
            (1_700_000_000_000_000, 1_700_000_000_001_000),  # a millisecond apart
            (1_700_000_000_000_000, 1_700_000_000_000_250),  # within one millisecond
            (1_700_000_000_000_998, 1_700_000_000_000_999),  # a microsecond apart
            (0, MAX_MICROS),
        ],
    )
    def test_a_later_time_sorts_after_an_earlier_one_as_uuid_and_as_bytes(
        self, earlier: int, later: int
    ) -> None:
        for _ in range(50):  # whatever the random bits
            first, second = new_event_id(earlier), new_event_id(later)
            assert first < second
            assert first.bytes < second.bytes

    def test_ids_of_one_moment_differ(self) -> None:
        ids = {new_event_id(1_700_000_000_000_000) for _ in range(10_000)}
        assert len(ids) == 10_000

    @pytest.mark.parametrize("micros", [-1, MAX_MICROS + 1])
    def test_a_time_out_of_range_is_refused(self, micros: int) -> None:
        with pytest.raises(ValueError, match="microseconds"):
            new_event_id(micros)

    def test_the_time_of_another_version_is_refused(self) -> None:
        with pytest.raises(ValueError, match="version 7 or 8"):
            event_id_millis(uuid.uuid4())


class TestDerivedEventId:
    @pytest.mark.parametrize(
        ("master_id", "version", "micros"),
        [
            (1, 1, 0),
            (3, 525_600, 1_735_689_600_123_456),
            (MAX_DERIVED, MAX_DERIVED, MAX_MICROS),
            (7, 2, 1_700_000_000_000_999),
        ],
    )
    def test_names_its_master_version_and_time(
        self, master_id: int, version: int, micros: int
    ) -> None:
        event_id = derived_event_id(master_id, version, micros)
        assert event_id is not None
        assert (event_id.version, event_id.variant) == (8, uuid.RFC_4122)
        assert is_derived(event_id)
        assert derivation(event_id) == (master_id, version, micros)
        assert event_id_millis(event_id) == micros // 1000

    @pytest.mark.parametrize(
        ("master_id", "version", "micros"),
        [
            (0, 1, 0),
            (1, 0, 0),
            (MAX_DERIVED + 1, 1, 0),
            (1, MAX_DERIVED + 1, 0),
            (1, 1, -1),
            (1, 1, MAX_MICROS + 1),
        ],
    )
    def test_out_of_range_there_is_none(self, master_id: int, version: int, micros: int) -> None:
        assert derived_event_id(master_id, version, micros) is None
        assert event_id_for(master_id, version, max(0, min(micros, MAX_MICROS))).version in (7, 8)

    def test_any_column_changed_changes_the_id(self) -> None:
        base = derived_event_id(2, 5, 1_700_000_000_000_000)
        others = {
            derived_event_id(3, 5, 1_700_000_000_000_000),
            derived_event_id(2, 6, 1_700_000_000_000_000),
            derived_event_id(2, 5, 1_700_000_000_000_001),
        }
        assert base not in others
        assert len(others) == 3

    def test_a_later_time_sorts_after_an_earlier_one(self) -> None:
        earlier = derived_event_id(9, 9, 1_700_000_000_000_998)
        later = derived_event_id(1, 1, 1_700_000_000_000_999)
        assert earlier is not None
        assert later is not None
        assert earlier < later
        assert earlier.bytes < later.bytes

    def test_other_ids_name_no_event(self) -> None:
        assert derivation(uuid.uuid4()) is None
        assert derivation(new_event_id(1_700_000_000_000_000)) is None
        # Version 8 but not of this layout: sub-millisecond bits past 999.
        stray = uuid.UUID(int=1 << 80 | 0x8 << 76 | 0xFFF << 64 | 0b10 << 62 | 1 << 31 | 1)
        assert derivation(stray) is None

    def test_what_the_log_stores_of_an_id(self) -> None:
        derived = derived_event_id(2, 5, 1_700_000_000_000_000)
        assert derived is not None
        assert stored_event_id(derived, 2, 5, 1_700_000_000_000_000) is None
        random = uuid.uuid4()
        assert stored_event_id(random, 2, 5, 1_700_000_000_000_000) == random
        with pytest.raises(InvalidArgument, match="version 8"):
            stored_event_id(derived, 2, 6, 1_700_000_000_000_000)
        assert event_id_of(None, 2, 5, 1_700_000_000_000_000) == derived
        assert event_id_of(random, 2, 5, 1_700_000_000_000_000) == random


def test_the_registry_records_derived_ids_in_the_order_of_the_log_and_stores_none(
    registry: Registry, clock: FakeClock
) -> None:
    master_id = registry.find_master_id("m1")
    for _ in range(5):
        clock.advance(0.0004)  # less than a millisecond
        registry.set_master_state(master_id, True)
    events = list(registry.events())
    assert len(events) == 6
    for event in events:
        assert derivation(event.event_id) == (
            master_id,
            event.version,
            to_micros(event.recorded_at),
        )
    ids = [event.event_id for event in events]
    assert ids == sorted(ids)
    with registry.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).where(schema.events.c.event_id.is_not(None))
        )
        assert stored.scalar_one() == 0

"""Event ids are version 7 UUIDs carrying the time they were recorded, ordered by it."""

from __future__ import annotations

import uuid

import pytest

from eventstore.ids import MAX_MICROS, event_id_millis, new_event_id
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
        with pytest.raises(ValueError, match="version 7"):
            event_id_millis(uuid.uuid4())


def test_the_registry_records_version_7_ids_in_the_order_of_the_log(
    registry: Registry, clock: FakeClock
) -> None:
    master_id = registry.find_master_id("m1")
    for _ in range(5):
        clock.advance(0.0004)  # less than a millisecond
        registry.set_master_state(master_id, True)
    events = list(registry.events())
    assert len(events) == 6
    for event in events:
        assert event.event_id.version == 7
        assert event_id_millis(event.event_id) == to_micros(event.recorded_at) // 1000
    ids = [event.event_id for event in events]
    assert ids == sorted(ids)

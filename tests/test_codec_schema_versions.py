"""The codec across schema versions: upcasting old events, check-ins stored relative to
their recorded second, the links a deactivation records."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import attrs
import pytest
from sqlalchemy.engine import Engine

import eventstore
from eventstore import (
    CODEC,
    Codec,
    DecodeError,
    UnsupportedSchemaVersion,
)
from eventstore.engine import reading
from eventstore.events import MasterActivated, MasterCheckedIn, MasterDeactivated
from eventstore.recorded import canonical_json, from_micros
from tests.codec_support import recorded
from tests.eventstore_support import new_event


def upcasting_codec(*, with_v2_step: bool = True) -> Codec:
    """A codec whose one event went through three schema versions:

    v1 ``{host, basedir}`` -> v2 ``{name}`` (``host:basedir``) -> v3 ``{name, port}``.
    """
    codec = Codec()

    @codec.register
    @attrs.frozen(kw_only=True)
    class MasterNamed:
        type_name: ClassVar[str] = "test.master_named"
        schema_version: ClassVar[int] = 3

        name: str
        port: int

    @codec.upcaster("test.master_named", 1)
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"name": f"{data.pop('host')}:{data.pop('basedir')}"}

    if with_v2_step:

        @codec.upcaster("test.master_named", 2)
        def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
            data["port"] = 9989
            return data

    return codec


class TestUpcasting:
    """Old schema versions are brought to the current one, one step at a time."""

    def test_v1_is_upcast_through_v2_to_v3(self) -> None:
        """Data of schema version 1 decodes as the version 3 class through both upcasters."""
        codec = upcasting_codec()
        event = codec.decode(recorded("test.master_named", 1, {"host": "h", "basedir": "/m"}))
        assert (type(event).schema_version, event.name, event.port) == (3, "h:/m", 9989)

    def test_v2_takes_only_the_last_step(self) -> None:
        """Data of schema version 2 goes through the v2 -> v3 upcaster only."""
        event = upcasting_codec().decode_data("test.master_named", 2, {"name": "h:/m"})
        assert (event.name, event.port) == ("h:/m", 9989)

    def test_current_version_is_not_upcast(self) -> None:
        """Data of the current schema version decodes as it is."""
        event = upcasting_codec().decode_data("test.master_named", 3, {"name": "n", "port": 1})
        assert (event.name, event.port) == ("n", 1)

    def test_upcasting_leaves_the_stored_data_unchanged(self) -> None:
        """Upcasters work on a copy: the recorded event's data is not modified."""
        stored = recorded("test.master_named", 1, {"host": "h", "basedir": "/m"})
        upcasting_codec().decode(stored)
        assert stored.data == {"host": "h", "basedir": "/m"}

    def test_a_missing_step_is_unsupported(self) -> None:
        """Without an upcaster for one step of the chain, old data is UnsupportedSchemaVersion."""
        codec = upcasting_codec(with_v2_step=False)
        with pytest.raises(UnsupportedSchemaVersion):
            codec.decode_data("test.master_named", 1, {"host": "h", "basedir": "/m"})
        with pytest.raises(UnsupportedSchemaVersion):
            codec.decode_data("test.master_named", 2, {"name": "h:/m"})

    def test_an_old_event_in_the_log_reads_back_upcast(self, engine: Engine) -> None:
        """An event stored at schema version 1 is read from the log and decoded as version 3."""
        old = new_event("test.master_named", {"host": "h", "basedir": "/m"}, schema_version=1)
        with engine.begin() as conn:
            eventstore.append(conn, 1, 0, [old])
        with reading(engine) as conn:
            (stored,) = eventstore.read_stream(conn, 1)
        assert stored.schema_version == 1
        event = upcasting_codec().decode(stored)
        assert (event.name, event.port) == ("h:/m", 9989)


class TestAtRecordedTime:
    """A check-in's ``last_active`` is left out of its data when it is the second the event
    was recorded in (``at_recorded_time``), and taken from ``recorded_at`` on decoding."""

    @pytest.mark.parametrize(
        "recorded_at",
        [1_000_000_000, 1_000_000_001, 1_000_500_000, 1_000_999_999],
        ids=["on-the-second", "one-micro-in", "half-way", "last-micro"],
    )
    def test_a_value_equal_to_the_recorded_second_is_left_out(self, recorded_at: int) -> None:
        """last_active 1000 recorded anywhere in second 1000 (floor of micros / 10**6) is
        stored as no data at all, at schema version 2."""
        encoded = CODEC.encode(MasterCheckedIn(last_active=1000), recorded_at=recorded_at)
        assert encoded == ("master.checked_in", 2, {})

    @pytest.mark.parametrize(
        "recorded_at", [999_999_999, 1_001_000_000, 0, -1_000_000_000], ids=str
    )
    def test_a_value_differing_from_the_recorded_second_is_kept(self, recorded_at: int) -> None:
        """last_active 1000 recorded in any other second is stored as it is."""
        encoded = CODEC.encode(MasterCheckedIn(last_active=1000), recorded_at=recorded_at)
        assert encoded == ("master.checked_in", 2, {"last_active": 1000})

    def test_a_clock_reading_just_below_a_second_keeps_the_value(self) -> None:
        """A reading that truncates to one second but rounds to the micro of the next (as
        commands.Now takes it) differs from the recorded second, so it is kept and
        reads back as the truncated second, not the recorded one."""
        value = 1000.9999997
        seconds, micros = int(value), round(value * 1_000_000)
        assert (seconds, micros) == (1000, 1_001_000_000)
        type_name, schema_version, data = CODEC.encode(
            MasterCheckedIn(last_active=seconds), recorded_at=micros
        )
        assert data == {"last_active": 1000}
        event = CODEC.decode_data(type_name, schema_version, data, recorded_at=micros)
        assert event.last_active == 1000

    def test_without_recorded_at_the_value_is_kept(self) -> None:
        """Encoded without a recorded_at, every field is stored."""
        assert CODEC.encode(MasterCheckedIn(last_active=1000)) == (
            "master.checked_in",
            2,
            {"last_active": 1000},
        )

    def test_other_event_types_keep_their_last_active(self) -> None:
        """Only the check-in declares last_active as the recorded time; an activation at its
        recorded second still stores it."""
        assert MasterActivated.__dict__.get("at_recorded_time") is None
        assert CODEC.encode(MasterActivated(last_active=1000), recorded_at=1_000_000_000) == (
            "master.activated",
            1,
            {"last_active": 1000},
        )

    @pytest.mark.parametrize(
        ("micros", "second"),
        [
            (1_000_000_000, 1000),
            (1_000_999_999, 1000),
            (1_001_000_000, 1001),
            (1_699_920_000_123_456, 1_699_920_000),
            (-1, -1),
        ],
    )
    def test_decoding_fills_the_left_out_value_from_recorded_at(
        self, micros: int, second: int
    ) -> None:
        """Data without last_active decodes with recorded_at in whole seconds (the floor),
        from the micros given to decode_data and from a recorded event's datetime alike."""
        assert CODEC.decode_data("master.checked_in", 2, {}, recorded_at=micros) == (
            MasterCheckedIn(last_active=second)
        )
        stored = recorded("master.checked_in", 2, {}, recorded_at=from_micros(micros))
        assert CODEC.decode(stored) == MasterCheckedIn(last_active=second)
        assert stored.data == {}

    def test_a_stored_value_wins_over_recorded_at(self) -> None:
        """Data that keeps last_active decodes to it, whatever recorded_at says."""
        stored = recorded("master.checked_in", 2, {"last_active": 5})
        assert CODEC.decode(stored) == MasterCheckedIn(last_active=5)

    def test_version_1_data_decodes_through_the_upcaster(self) -> None:
        """A version 1 check-in holds last_active explicitly and reads back as version 2
        with that value, also where it differs from the recorded second."""
        stored = recorded("master.checked_in", 1, {"last_active": 5})
        event = CODEC.decode(stored)
        assert (type(event).schema_version, event) == (2, MasterCheckedIn(last_active=5))
        assert stored.data == {"last_active": 5}
        assert CODEC.decode_data("master.checked_in", 1, {"last_active": 7}) == (
            MasterCheckedIn(last_active=7)
        )

    def test_a_left_out_value_without_recorded_at_is_unsupported(self) -> None:
        """decode_data of data without last_active and without recorded_at is missing a
        field: UnsupportedSchemaVersion, as any data of another shape."""
        with pytest.raises(UnsupportedSchemaVersion):
            CODEC.decode_data("master.checked_in", 2, {})

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"surprise": 2}, UnsupportedSchemaVersion),
            ({"last_active": 1, "surprise": 2}, UnsupportedSchemaVersion),
            ({"last_active": "soon"}, DecodeError),
            ({"last_active": True}, DecodeError),
            ({"last_active": None}, DecodeError),
        ],
        ids=["unknown-field", "unknown-field-beside", "string", "bool", "null"],
    )
    def test_bad_data_is_still_a_decode_error(
        self, data: dict[str, Any], error: type[DecodeError]
    ) -> None:
        """Unknown fields and values of the wrong type are refused with recorded_at given,
        at either schema version."""
        for schema_version in (1, 2):
            with pytest.raises(error):
                CODEC.decode_data(
                    "master.checked_in", schema_version, data, recorded_at=1_000_000_000
                )

    def test_a_recorded_at_that_is_not_an_int_is_a_decode_error(self) -> None:
        """A recorded_at of another type (a tampered column) cannot fill a field."""
        with pytest.raises(DecodeError, match="recorded_at"):
            CODEC.decode_data("master.checked_in", 2, {}, recorded_at="soon")  # type: ignore[arg-type]

    def test_a_bool_equal_to_the_recorded_second_is_kept(self) -> None:
        """True equals 1, but is not an int field's value: it is stored, not left out."""
        encoded = CODEC.encode(MasterCheckedIn(last_active=True), recorded_at=1_000_000)
        assert encoded[2] == {"last_active": True}

    def test_at_recorded_time_must_name_fields(self) -> None:
        """A class naming a field it does not have in at_recorded_time is refused."""

        @attrs.frozen(kw_only=True)
        class Typo:
            type_name: ClassVar[str] = "test.typo"
            schema_version: ClassVar[int] = 1
            at_recorded_time: ClassVar[tuple[str, ...]] = ("last_activ",)
            last_active: int

        with pytest.raises(ValueError, match="at_recorded_time"):
            Codec().register(Typo)

    def test_another_codec_can_declare_several_fields(self) -> None:
        """Each declared field is left out or kept on its own."""
        codec = Codec()

        @codec.register
        @attrs.frozen(kw_only=True)
        class Seen:
            type_name: ClassVar[str] = "test.seen"
            schema_version: ClassVar[int] = 1
            at_recorded_time: ClassVar[tuple[str, ...]] = ("first", "last")
            first: int
            last: int
            note: str

        _, _, data = codec.encode(Seen(first=9, last=10, note="n"), recorded_at=10_000_001)
        assert data == {"first": 9, "note": "n"}
        assert codec.decode_data("test.seen", 1, data, recorded_at=10_000_001) == Seen(
            first=9, last=10, note="n"
        )


class TestDeactivatedLinks:
    def test_version_1_reads_as_links_not_recorded(self) -> None:
        """A version 1 deactivation decodes as version 2 with both link lists None."""
        event = CODEC.decode_data("master.deactivated", 1, {"last_active": 5, "timeout": None})
        assert (event.schedulers, event.changesources) == (None, None)

    def test_version_2_round_trips_the_links(self) -> None:
        """The links encode as JSON lists and decode back as tuples."""
        event = MasterDeactivated(last_active=5, schedulers=[3, 4], changesources=[])
        type_name, version, data = CODEC.encode(event)
        assert json.loads(canonical_json(data)) == {
            "last_active": 5,
            "timeout": None,
            "schedulers": [3, 4],
            "changesources": [],
        }
        assert version == 2
        assert CODEC.decode_data(type_name, version, data) == event

    @pytest.mark.parametrize("links", [["3"], [True], 3, {"a": 1}])
    def test_links_that_are_not_ids_are_refused(self, links: object) -> None:
        """Link ids stored outside mastertrail must be a list of ints."""
        with pytest.raises(DecodeError):
            CODEC.decode_data("master.deactivated", 2, {"last_active": 5, "schedulers": links})

    def test_version_1_with_links_is_not_version_1(self) -> None:
        """Version 1 data holding links was written in another shape."""
        with pytest.raises(UnsupportedSchemaVersion):
            CODEC.decode_data("master.deactivated", 1, {"last_active": 5, "schedulers": []})

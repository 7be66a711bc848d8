"""The codec: stable type names, encode/decode round trips, clear decode errors, and the
catalogue's registration rules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventstore
from eventstore import (
    CODEC,
    Codec,
    DecodeError,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from eventstore.recorded import canonical_json, from_micros, to_micros
from tests.codec_support import recorded

#: The catalogue as stored in existing logs: renaming or dropping a type breaks them.
CATALOGUE = {
    "master.registered": 1,
    "master.adopted": 1,
    "master.activated": 1,
    "master.checked_in": 2,
    "master.deactivated": 2,
    "master.housekeeping_forced": 1,
}


#: The microseconds since the epoch an aware datetime can hold.
DATETIME_MICROS = (
    to_micros(dt.datetime.min.replace(tzinfo=dt.UTC)),
    to_micros(dt.datetime.max.replace(tzinfo=dt.UTC)),
)


class TestCatalogue:
    """Every event of the master catalogue survives encoding, storage as JSON and decoding."""

    def test_type_names_and_versions_are_stable(self) -> None:
        """The catalogue registers exactly the documented type names at their versions."""
        assert {name: cls.schema_version for name, cls in CODEC.types.items()} == CATALOGUE

    @pytest.mark.parametrize("cls", list(CODEC.types.values()), ids=list(CODEC.types))
    @given(data=st.data())
    def test_every_event_round_trips_through_json(
        self, cls: type[Any], data: st.DataObject
    ) -> None:
        """decode(encode(event)) equals the event, also after the data went through JSON."""
        event = data.draw(st.from_type(cls))
        type_name, schema_version, encoded = CODEC.encode(event)
        assert (type_name, schema_version) == (cls.type_name, cls.schema_version)
        stored = json.loads(canonical_json(encoded))
        assert CODEC.decode_data(type_name, schema_version, stored) == event
        assert CODEC.decode(recorded(type_name, schema_version, stored)) == event

    @pytest.mark.parametrize("cls", list(CODEC.types.values()), ids=list(CODEC.types))
    @given(data=st.data())
    def test_every_event_round_trips_encoded_with_its_time(
        self, cls: type[Any], data: st.DataObject
    ) -> None:
        """Encoded with a ``recorded_at`` (often in the second of ``last_active``, so the
        field is left out), the data decodes back to the event with that ``recorded_at``."""
        event = data.draw(st.from_type(cls))
        second = getattr(event, "last_active", 0)
        recorded_at = data.draw(
            st.integers(second * 1_000_000, second * 1_000_000 + 999_999)
            | st.integers(-(2**62), 2**62)
        )
        type_name, schema_version, encoded = CODEC.encode(event, recorded_at=recorded_at)
        stored = json.loads(canonical_json(encoded))
        decoded = CODEC.decode_data(type_name, schema_version, stored, recorded_at=recorded_at)
        assert decoded == event
        if DATETIME_MICROS[0] <= recorded_at <= DATETIME_MICROS[1]:
            when = from_micros(recorded_at)
            assert CODEC.decode(recorded(type_name, schema_version, stored, recorded_at=when)) == (
                event
            )

    def test_events_are_frozen(self) -> None:
        """A decoded event cannot be changed in place."""
        event = CODEC.decode_data("master.checked_in", 1, {"last_active": 5})
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.last_active = 6


class TestDecodeErrors:
    """What the codec cannot read is a clear DecodeError, never a bare KeyError or TypeError."""

    def test_unknown_type_is_unknown_event_type(self) -> None:
        """A type name the codec does not know raises UnknownEventType, also a ValueError."""
        with pytest.raises(UnknownEventType) as caught:
            CODEC.decode(recorded("master.teleported", 1, {}))
        assert caught.value.type_name == "master.teleported"
        assert isinstance(caught.value, DecodeError)
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, eventstore.RegistryError)

    @pytest.mark.parametrize("schema_version", [3, 99, 0, -1])
    def test_unknown_schema_version_is_unsupported(self, schema_version: int) -> None:
        """A schema version newer than the class (or below 1) raises UnsupportedSchemaVersion."""
        with pytest.raises(UnsupportedSchemaVersion) as caught:
            CODEC.decode_data("master.checked_in", schema_version, {"last_active": 1})
        assert (caught.value.type_name, caught.value.schema_version, caught.value.current) == (
            "master.checked_in",
            schema_version,
            2,
        )
        assert isinstance(caught.value, ValueError)

    def test_data_not_matching_the_class_is_a_decode_error(self) -> None:
        """Stored data with fields the class does not have raises a DecodeError."""
        with pytest.raises(DecodeError):
            CODEC.decode_data("master.checked_in", 1, {"last_active": 1, "surprise": 2})

    def test_encoding_an_unregistered_class_is_unknown_event_type(self) -> None:
        """Encoding an object whose class is not registered raises UnknownEventType."""

        @attrs.frozen(kw_only=True)
        class Impostor:
            type_name: ClassVar[str] = "master.checked_in"
            schema_version: ClassVar[int] = 1
            last_active: int

        with pytest.raises(UnknownEventType):
            CODEC.encode(Impostor(last_active=1))

    @pytest.mark.parametrize("value", [object(), {"last_active": 1}, None])
    def test_encoding_a_non_event_is_unknown_event_type(self, value: object) -> None:
        """Encoding something that is not an event class instance raises UnknownEventType."""
        with pytest.raises(UnknownEventType):
            CODEC.encode(value)


class TestRegistration:
    """The codec accepts only stable, well-formed type names, once each."""

    @pytest.mark.parametrize(
        "name", ["Master.Registered", "registered", "master..x", "x." + "y" * 64]
    )
    def test_malformed_type_name_is_refused(self, name: str) -> None:
        """A type name that is not lower-case dotted words of at most 64 characters is refused."""

        @attrs.frozen
        class Event:
            type_name: ClassVar[str] = name
            schema_version: ClassVar[int] = 1

        with pytest.raises(ValueError, match="bad event type name"):
            Codec().register(Event)

    def test_type_registered_twice_is_refused(self) -> None:
        """Two classes cannot share one type name."""
        codec = Codec()

        @attrs.frozen
        class First:
            type_name: ClassVar[str] = "test.same"
            schema_version: ClassVar[int] = 1

        @attrs.frozen
        class Second:
            type_name: ClassVar[str] = "test.same"
            schema_version: ClassVar[int] = 1

        codec.register(First)
        with pytest.raises(ValueError, match="twice"):
            codec.register(Second)

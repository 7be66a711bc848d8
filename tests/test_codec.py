"""The codec: stable type names, encode/decode round trips, clear decode errors, and
upcasting of old schema versions."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

import eventstore
from eventstore import (
    CODEC,
    Codec,
    DecodeError,
    RecordedEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from eventstore.recorded import canonical_json
from tests.test_eventstore import new_event, read_only

#: The catalogue as stored in existing logs: renaming or dropping a type breaks them.
CATALOGUE = {
    "master.registered": 1,
    "master.adopted": 1,
    "master.activated": 1,
    "master.checked_in": 1,
    "master.deactivated": 1,
    "master.housekeeping_forced": 1,
}


def recorded(type_name: str, schema_version: int, data: dict[str, Any]) -> RecordedEvent:
    """A stored event of the given type, version and data."""
    return RecordedEvent(
        position=1,
        event_id=uuid.uuid4(),
        master_id=1,
        version=1,
        type=type_name,
        schema_version=schema_version,
        data=data,
        metadata={},
        recorded_at=dt.datetime(2023, 11, 14, tzinfo=dt.UTC),
        hash="00" * 32,
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

    @pytest.mark.parametrize("schema_version", [2, 99, 0, -1])
    def test_unknown_schema_version_is_unsupported(self, schema_version: int) -> None:
        """A schema version newer than the class (or below 1) raises UnsupportedSchemaVersion."""
        with pytest.raises(UnsupportedSchemaVersion) as caught:
            CODEC.decode_data("master.checked_in", schema_version, {"last_active": 1})
        assert (caught.value.type_name, caught.value.schema_version, caught.value.current) == (
            "master.checked_in",
            schema_version,
            1,
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
        with read_only(engine) as conn:
            (stored,) = eventstore.read_stream(conn, 1)
        assert stored.schema_version == 1
        event = upcasting_codec().decode(stored)
        assert (event.name, event.port) == ("h:/m", 9989)

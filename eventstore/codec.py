"""Mapping between domain events (frozen attrs classes) and the stored envelope.

Each event class is registered under a stable type name (``master.checked_in``), never its
Python path, with a schema version. Stored data of an older schema version is brought to
the current one by upcasters, one step at a time; a type or version the codec does not
know is a :class:`~eventstore.errors.DecodeError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

import attrs

from eventstore.errors import UnknownEventType, UnsupportedSchemaVersion
from eventstore.recorded import RecordedEvent
from eventstore.schema import TYPE_NAME_LENGTH

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class DomainEvent(Protocol):
    """What a registered event class looks like: an attrs class with two class variables."""

    type_name: ClassVar[str]
    schema_version: ClassVar[int]
    __attrs_attrs__: ClassVar[Any]


E = TypeVar("E", bound=type[Any])


class Codec:
    """A catalogue of event types and their upcasters."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Any]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: E) -> E:
        """Register an attrs event class; usable as a class decorator."""
        name = cls.type_name
        if not _TYPE_NAME.match(name) or len(name) > TYPE_NAME_LENGTH:
            raise ValueError(f"bad event type name {name!r}")
        if name in self._classes:
            raise ValueError(f"event type {name!r} registered twice")
        self._classes[name] = cls
        return cls

    def upcaster(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning data of ``from_version`` into ``from_version + 1``."""

        def decorate(function: Upcaster) -> Upcaster:
            self._upcasters[(type_name, from_version)] = function
            return function

        return decorate

    @property
    def types(self) -> dict[str, type[Any]]:
        """The registered classes by type name."""
        return dict(self._classes)

    def encode(self, event: Any) -> tuple[str, int, dict[str, Any]]:
        """``(type name, schema version, data)`` of a registered event."""
        cls = type(event)
        name = getattr(cls, "type_name", None)
        if not isinstance(name, str) or self._classes.get(name) is not cls:
            raise UnknownEventType(name if isinstance(name, str) else cls.__qualname__)
        return name, cls.schema_version, attrs.asdict(event)

    def decode(self, recorded: RecordedEvent) -> Any:
        """The domain event of ``recorded``, upcast to its current schema version."""
        return self.decode_data(recorded.type, recorded.schema_version, recorded.data)

    def decode_data(self, type_name: str, schema_version: int, data: dict[str, Any]) -> Any:
        """The domain event of type ``type_name`` from data of ``schema_version``."""
        cls = self._classes.get(type_name)
        if cls is None:
            raise UnknownEventType(type_name)
        current: int = cls.schema_version
        if not 1 <= schema_version <= current:
            raise UnsupportedSchemaVersion(type_name, schema_version, current)
        for version in range(schema_version, current):
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise UnsupportedSchemaVersion(type_name, schema_version, current)
            data = step(dict(data))
        try:
            return cls(**data)
        except TypeError as error:
            raise UnsupportedSchemaVersion(type_name, schema_version, current) from error

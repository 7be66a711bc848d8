"""Mapping between domain events (frozen attrs classes) and the stored envelope.

Each event class is registered under a stable type name (``master.checked_in``), never its
Python path, with a schema version. Stored data of an older schema version is brought to
the current one by upcasters, one step at a time; a type or version the codec does not
know is a :class:`~eventstore.errors.DecodeError`.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

import attrs

from eventstore.errors import DecodeError, UnknownEventType, UnsupportedSchemaVersion
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
            event = cls(**data)
        except TypeError as error:
            _check_names(type_name, schema_version, current, cls, data, error)
            raise DecodeError(f"event type {type_name!r}: {error}") from error
        except ValueError as error:
            raise DecodeError(f"event type {type_name!r}: {error}") from error
        _check_field_types(type_name, event)
        return event


def _check_names(
    type_name: str,
    schema_version: int,
    current: int,
    cls: type[Any],
    data: dict[str, Any],
    error: TypeError,
) -> None:
    """Raise :class:`UnsupportedSchemaVersion` when ``data`` does not have the fields of
    ``cls`` (missing or unknown ones): it was written in another shape."""
    fields = attrs.fields_dict(cls)
    required = {name for name, field in fields.items() if field.default is attrs.NOTHING}
    if set(data) - set(fields) or required - set(data):
        raise UnsupportedSchemaVersion(type_name, schema_version, current) from error


def _check_field_types(type_name: str, event: Any) -> None:
    """Raise :class:`DecodeError` unless every field holds a value of its declared type
    (stored data may have been written outside mastertrail). Checks ``int``, ``str``,
    ``bool``, ``float`` and their unions with ``None``; a ``bool`` is not an ``int``."""
    for field, hint in _field_types(type(event)).items():
        value = getattr(event, field)
        allowed = typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,)
        if not all(kind in _SCALARS for kind in allowed):
            continue
        if not any(_is(value, kind) for kind in allowed):
            raise DecodeError(
                f"event type {type_name!r}: field {field!r} holds {type(value).__name__} "
                f"{value!r:.40}, not {hint}"
            )


_SCALARS = (int, str, bool, float, type(None))
_UNIONS = (typing.Union, types.UnionType)


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


_FIELD_TYPES: dict[type[Any], dict[str, Any]] = {}


def _field_types(cls: type[Any]) -> dict[str, Any]:
    """The declared types of ``cls``'s fields (none when they cannot be resolved)."""
    if cls not in _FIELD_TYPES:
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):
            hints = {}
        _FIELD_TYPES[cls] = {f.name: hints[f.name] for f in attrs.fields(cls) if f.name in hints}
    return _FIELD_TYPES[cls]

"""Mapping between domain events (frozen attrs classes) and the stored envelope.

Each event class is registered under a stable type name (``master.checked_in``), never its
Python path, with a schema version. Stored data of an older schema version is brought to
the current one by upcasters, one step at a time; a type or version the codec does not
know is a :class:`~eventstore.errors.DecodeError`.

A class may name, in ``at_recorded_time``, int fields that usually hold the time the event
was recorded, in whole seconds. Encoded with the event's ``recorded_at``, such a field is
left out of the data when it equals that second, and decoding fills it back in from the
envelope's ``recorded_at``: a check-in stores ``{}`` instead of its ``last_active``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

import attrs

from eventstore.errors import DecodeError, UnknownEventType, UnsupportedSchemaVersion
from eventstore.recorded import RecordedEvent, to_micros
from eventstore.schema import TYPE_NAME_LENGTH

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class DomainEvent(Protocol):
    """What a registered event class looks like: an attrs class with two class variables.

    It may declare a third, ``at_recorded_time: ClassVar[tuple[str, ...]]``: the names of
    its int fields that, when absent from the stored data, are the event's ``recorded_at``
    in whole seconds (see :meth:`Codec.encode`).
    """

    type_name: ClassVar[str]
    schema_version: ClassVar[int]
    __attrs_attrs__: ClassVar[Any]


E = TypeVar("E", bound=type[Any])


class Codec:
    """A catalogue of event types and their upcasters."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Any]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._at_recorded_time: dict[str, tuple[str, ...]] = {}

    def register(self, cls: E) -> E:
        """Register an attrs event class; usable as a class decorator."""
        name = cls.type_name
        if not _TYPE_NAME.match(name) or len(name) > TYPE_NAME_LENGTH:
            raise ValueError(f"bad event type name {name!r}")
        if name in self._classes:
            raise ValueError(f"event type {name!r} registered twice")
        at_recorded_time = getattr(cls, "at_recorded_time", ())
        if not isinstance(at_recorded_time, tuple) or not all(
            isinstance(field, str) for field in at_recorded_time
        ):
            raise ValueError(f"event type {name!r}: at_recorded_time is not a tuple of names")
        unknown = set(at_recorded_time) - set(attrs.fields_dict(cls))
        if unknown:
            raise ValueError(f"event type {name!r}: at_recorded_time names no field {unknown}")
        self._classes[name] = cls
        if at_recorded_time:
            self._at_recorded_time[name] = at_recorded_time
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

    def encode(
        self, event: Any, *, recorded_at: int | None = None
    ) -> tuple[str, int, dict[str, Any]]:
        """``(type name, schema version, data)`` of a registered event.

        With ``recorded_at`` (microseconds since the epoch, the envelope's), a field the
        class names in ``at_recorded_time`` is left out of the data when its value equals
        ``recorded_at`` in whole seconds (``recorded_at // 1_000_000``), and kept otherwise;
        :meth:`decode` fills it back in. Without ``recorded_at`` every field is kept.
        """
        cls = type(event)
        name = getattr(cls, "type_name", None)
        if not isinstance(name, str) or self._classes.get(name) is not cls:
            raise UnknownEventType(name if isinstance(name, str) else cls.__qualname__)
        data = attrs.asdict(event)
        if recorded_at is not None:
            fields = self._at_recorded_time.get(name)
            if fields:
                second = recorded_at // 1_000_000
                for field in fields:
                    value = data[field]
                    if _is(value, int) and value == second:
                        del data[field]
        return name, cls.schema_version, data

    def decode(self, recorded: RecordedEvent) -> Any:
        """The domain event of ``recorded``, upcast to its current schema version, with its
        ``at_recorded_time`` fields that the data leaves out taken from ``recorded_at``."""
        recorded_at = (
            to_micros(recorded.recorded_at) if recorded.type in self._at_recorded_time else None
        )
        return self.decode_data(
            recorded.type, recorded.schema_version, recorded.data, recorded_at=recorded_at
        )

    def decode_data(
        self,
        type_name: str,
        schema_version: int,
        data: dict[str, Any],
        *,
        recorded_at: int | None = None,
    ) -> Any:
        """The domain event of type ``type_name`` from data of ``schema_version``.

        ``recorded_at`` (microseconds since the epoch) fills the class's ``at_recorded_time``
        fields the data leaves out, after upcasting; without it such data is missing a field
        (:class:`UnsupportedSchemaVersion`, as any data of another shape).
        """
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
        fields = self._at_recorded_time.get(type_name)
        if fields and recorded_at is not None:
            absent = [field for field in fields if field not in data]
            if absent:
                if not _is(recorded_at, int):
                    raise DecodeError(
                        f"event type {type_name!r}: recorded_at {recorded_at!r:.40} is not an int"
                    )
                data = dict(data)
                for field in absent:
                    data[field] = recorded_at // 1_000_000
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

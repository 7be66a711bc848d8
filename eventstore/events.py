"""The event catalogue: every event a master's stream can hold.

Each event records the master's ``last_active`` after it (epoch seconds), so the state of
a master at any position is the state its latest event there describes; see
``docs/events.rst``. Type names are stable; a change of fields gets a new schema version
and an upcaster in this module.

Schema versions above 1:

* ``master.deactivated`` 2: records the links the deactivation removed, the ids of the
  master's ``scheduler_masters`` and ``changesource_masters`` rows (``schedulers``,
  ``changesources``; empty where the database has no such tables). Version 1 did not
  record them: it reads as version 2 with both ``None``, "not recorded".
* ``master.checked_in`` 2: ``last_active`` is left out of the data when it equals the
  event's ``recorded_at`` in whole seconds (nearly always: both come from one clock
  reading), and decoding takes it from there (``at_recorded_time``). Check-ins are most of
  the log, so this saves the ``{"last_active":...}`` of almost every event. Version 1 data
  always holds ``last_active`` and reads as version 2 unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from eventstore.codec import Codec
from eventstore.errors import UnsupportedSchemaVersion

#: The codec of the master event catalogue.
CODEC = Codec()


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterRegistered:
    """A new master name was seen: it exists from now on, inactive."""

    type_name: ClassVar[str] = "master.registered"
    schema_version: ClassVar[int] = 1

    name: str
    last_active: int


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterAdopted:
    """A ``masters`` row with no history (written before mastertrail) was recorded as found."""

    type_name: ClassVar[str] = "master.adopted"
    schema_version: ClassVar[int] = 1

    name: str
    active: bool
    last_active: int


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterActivated:
    """An inactive master became active (it started)."""

    type_name: ClassVar[str] = "master.activated"
    schema_version: ClassVar[int] = 1

    last_active: int


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterCheckedIn:
    """An active master checked in again (a heartbeat).

    Schema version 2: ``last_active`` is stored only when it differs from the event's
    ``recorded_at`` in whole seconds; data without it (``{}``) means exactly that second.
    Version 1 data always stores it, and is upcast unchanged.
    """

    type_name: ClassVar[str] = "master.checked_in"
    schema_version: ClassVar[int] = 2
    at_recorded_time: ClassVar[tuple[str, ...]] = ("last_active",)

    last_active: int


@CODEC.upcaster(MasterCheckedIn.type_name, from_version=1)
def _checked_in_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 stores ``last_active`` explicitly, which version 2 reads as it is. Data of
    version 1 without it is not of version 1: it is not filled in from the time."""
    if "last_active" not in data:
        raise UnsupportedSchemaVersion(MasterCheckedIn.type_name, 1, MasterCheckedIn.schema_version)
    return data


def _link_ids(value: list[int] | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Link ids as a tuple of ints (None: not recorded)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise ValueError(f"link ids must be a list of ints, not {value!r:.40}")
    return tuple(value)


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterDeactivated:
    """An active master became inactive: it stopped, or another master expired it.

    ``last_active`` is unchanged by deactivation and recorded as it was; ``timeout`` is
    the expiry timeout in seconds when the deactivation was an expiry by timeout.
    ``schedulers`` and ``changesources`` are the ids of the links to the master that the
    deactivation deleted (Buildbot's ``scheduler_masters`` and ``changesource_masters``).

    Schema version 2 added the links; version 1 data reads with both ``None``.
    """

    type_name: ClassVar[str] = "master.deactivated"
    schema_version: ClassVar[int] = 2

    last_active: int
    timeout: int | None = None
    schedulers: tuple[int, ...] | None = attrs.field(default=None, converter=_link_ids)
    changesources: tuple[int, ...] | None = attrs.field(default=None, converter=_link_ids)


@CODEC.upcaster(MasterDeactivated.type_name, from_version=1)
def _deactivated_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 did not record the links removed: they stay ``None``, "not recorded"."""
    if "schedulers" in data or "changesources" in data:
        raise UnsupportedSchemaVersion(
            MasterDeactivated.type_name, 1, MasterDeactivated.schema_version
        )
    return data


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterHousekeepingForced:
    """The master was marked active a long time ago (``last_active`` at the epoch), so the
    next housekeeping expires it; written by ``set_all_masters_active_long_time_ago``."""

    type_name: ClassVar[str] = "master.housekeeping_forced"
    schema_version: ClassVar[int] = 1

    last_active: int = 0


MasterEvent = (
    MasterRegistered
    | MasterAdopted
    | MasterActivated
    | MasterCheckedIn
    | MasterDeactivated
    | MasterHousekeepingForced
)

"""The event catalogue: every event a master's stream can hold.

Each event records the master's ``last_active`` after it (epoch seconds), so the state of
a master at any position is the state its latest event there describes; see
``docs/events.rst``. Type names are stable; a change of fields gets a new schema version
and an upcaster in this module.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from eventstore.codec import Codec

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
    """An active master checked in again (a heartbeat)."""

    type_name: ClassVar[str] = "master.checked_in"
    schema_version: ClassVar[int] = 1

    last_active: int


@CODEC.register
@attrs.frozen(kw_only=True)
class MasterDeactivated:
    """An active master became inactive: it stopped, or another master expired it.

    ``last_active`` is unchanged by deactivation and recorded as it was; ``timeout`` is
    the expiry timeout in seconds when the deactivation was an expiry by timeout.
    """

    type_name: ClassVar[str] = "master.deactivated"
    schema_version: ClassVar[int] = 1

    last_active: int
    timeout: int | None = None


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

"""Input checks: every command validates before it touches the database."""

from __future__ import annotations

import math
import unicodedata

from eventstore import InvalidArgument, InvalidArgumentType

#: Longest master name accepted, in characters (Buildbot names are ``hostname:basedir``).
MAX_NAME_LENGTH = 1024
#: Master ids are SQL INTEGERs.
MAX_MASTER_ID = 2**31 - 1
#: ``last_active`` is an SQL INTEGER of epoch seconds (Buildbot's column): until 2038-01-19.
MAX_EPOCH_SECONDS = 2**31 - 1
#: Longest expiry timeout accepted, in seconds (ten years).
MAX_TIMEOUT = 10 * 365 * 86_400


def master_name(name: object) -> str:
    """A non-empty string of at most :data:`MAX_NAME_LENGTH` printable characters."""
    if not isinstance(name, str):
        raise InvalidArgumentType("name", "a str", name)
    if not name:
        raise InvalidArgument("name", "must not be empty", name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument("name", f"is longer than {MAX_NAME_LENGTH} characters", name)
    for char in name:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn") or char in "\u2028\u2029":
            raise InvalidArgument(
                "name", f"contains the control or unassigned character U+{ord(char):04X}", name
            )
    return name


def actor(value: object, argument: str = "by") -> str:
    """Who acts, as recorded in the events' metadata: the same rules as a master name."""
    if not isinstance(value, str):
        raise InvalidArgumentType(argument, "a str", value)
    try:
        return master_name(value)
    except InvalidArgument as error:
        raise InvalidArgument(argument, error.reason, value) from None


def master_id(value: object, argument: str = "masterid") -> int:
    """A positive int that fits an SQL INTEGER (a bool is not accepted)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(argument, "an int", value)
    if not 1 <= value <= MAX_MASTER_ID:
        raise InvalidArgument(argument, f"must be between 1 and {MAX_MASTER_ID}", value)
    return value


def active_flag(value: object) -> bool:
    """Exactly ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise InvalidArgumentType("active", "a bool", value)
    return value


def timeout(value: object) -> int:
    """A whole number of seconds, 0 to :data:`MAX_TIMEOUT`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentType("timeout", "a number of seconds", value)
    if not math.isfinite(value) or not 0 <= value <= MAX_TIMEOUT:
        raise InvalidArgument("timeout", f"must be between 0 and {MAX_TIMEOUT} seconds", value)
    return int(value)


def clock_reading(value: object) -> float:
    """What a clock returned: finite POSIX seconds, not before the epoch."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentType("clock()", "POSIX seconds as a number", value)
    if not math.isfinite(value) or not 0 <= value <= MAX_EPOCH_SECONDS:
        raise InvalidArgument(
            "clock()", f"must return seconds since the epoch, 0 to {MAX_EPOCH_SECONDS}", value
        )
    return float(value)

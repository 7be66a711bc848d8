"""WHEN: the moments the command line accepts.

Three spellings, one meaning each:

- an ISO 8601 time (``2024-05-01``, ``2024-05-01T12:30``, ``2024-05-01T12:30:00+02:00``,
  ``...Z``); a time without an offset is read as UTC, never as local time;
- a relative time: ``now`` or an amount before now, such as ``2h ago``, ``30m ago``,
  ``3d ago``, ``1h30m ago`` or ``90 minutes ago`` (units: s, m, h, d, w and their names);
- a log position: ``@1234`` (the state right after the event at that position).
"""

from __future__ import annotations

import datetime as dt
import re

from eventstore import InvalidArgument

#: A parsed WHEN: an aware UTC datetime, or a log position.
When = dt.datetime | int

_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86_400,
    "day": 86_400,
    "days": 86_400,
    "w": 604_800,
    "week": 604_800,
    "weeks": 604_800,
}
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_RELATIVE = re.compile(r"((?:\d+(?:\.\d+)?\s*[a-z]+\s*)+)ago")
_POSITION = re.compile(r"@(\d+)")

#: What a person can type, for error messages and help texts.
SPELLINGS = "an ISO 8601 time (UTC unless it has an offset), 'now', '2h ago' or '@POSITION'"


def parse_when(text: str, *, now: dt.datetime | None = None) -> When:
    """The moment ``text`` names: an aware UTC datetime, or an int log position.

    ``now`` (aware) anchors relative times; it defaults to the current time. Raises
    :class:`~mastertrail.InvalidArgument` (a ``ValueError``) for anything else.
    """
    spelled = text.strip().lower()
    if spelled == "now":
        return _anchor(now)
    position = _POSITION.fullmatch(spelled)
    if position:
        return int(position.group(1))
    relative = _RELATIVE.fullmatch(spelled)
    if relative:
        try:
            return _anchor(now) - _duration(text, relative.group(1))
        except OverflowError:
            raise InvalidArgument("WHEN", "is too far in the past", text) from None
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument("WHEN", f"must be {SPELLINGS}", text) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is a time before year 1 in UTC
        raise InvalidArgument("WHEN", "is outside the years 1 to 9999 in UTC", text) from None


def _duration(text: str, amounts: str) -> dt.timedelta:
    seconds = 0.0
    for number, unit in _AMOUNT.findall(amounts):
        if unit not in _UNITS:
            raise InvalidArgument(
                "WHEN", f"has an unknown unit {unit!r}; use s, m, h, d or w", text
            )
        seconds += float(number) * _UNITS[unit]
    return dt.timedelta(seconds=seconds)


def _anchor(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise InvalidArgument("now", "must be timezone-aware", now)
    return now.astimezone(dt.UTC)


__all__ = ["SPELLINGS", "When", "parse_when"]

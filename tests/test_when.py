"""WHEN parsing: ISO 8601 times, relative times and log positions."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from mastertrail import InvalidArgument
from mastertrail.when import parse_when

UTC = dt.UTC
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class TestParseWhen:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-05-01T10:30:00Z", dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
            ("2024-05-01T10:30:00+02:00", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
            ("2024-05-01 10:30", dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
            ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=UTC)),
            ("2024-05-01T10:30:00.250000", dt.datetime(2024, 5, 1, 10, 30, 0, 250000, tzinfo=UTC)),
        ],
    )
    def test_iso_times(self, text: str, expected: dt.datetime) -> None:
        """ISO 8601 times parse to aware UTC datetimes; a time without an offset is UTC."""
        parsed = parse_when(text, now=NOW)
        assert parsed == expected
        assert isinstance(parsed, dt.datetime)
        assert parsed.utcoffset() == dt.timedelta(0)

    @pytest.mark.parametrize(
        ("text", "ago"),
        [
            ("now", dt.timedelta(0)),
            ("2h ago", dt.timedelta(hours=2)),
            ("30m ago", dt.timedelta(minutes=30)),
            ("3d ago", dt.timedelta(days=3)),
            ("1w ago", dt.timedelta(weeks=1)),
            ("45s ago", dt.timedelta(seconds=45)),
            ("1h30m ago", dt.timedelta(hours=1, minutes=30)),
            ("1h 30m ago", dt.timedelta(hours=1, minutes=30)),
            ("90 minutes ago", dt.timedelta(minutes=90)),
            ("1.5h ago", dt.timedelta(minutes=90)),
            ("  2 Hours AGO ", dt.timedelta(hours=2)),
        ],
    )
    def test_relative_times(self, text: str, ago: dt.timedelta) -> None:
        """Relative times count back from the given now."""
        assert parse_when(text, now=NOW) == NOW - ago

    @freeze_time("2024-06-01T08:00:00Z")
    def test_relative_times_default_to_the_current_time(self) -> None:
        """Without an explicit now, relative times count back from the current UTC time."""
        assert parse_when("2h ago") == dt.datetime(2024, 6, 1, 6, 0, tzinfo=UTC)
        assert parse_when("now") == dt.datetime(2024, 6, 1, 8, 0, tzinfo=UTC)

    @freeze_time("2024-06-01T08:00:00Z")
    def test_naive_iso_times_do_not_depend_on_now(self) -> None:
        """A naive ISO time is read as UTC, whatever the current time or local zone."""
        assert parse_when("2024-01-01T00:00") == dt.datetime(2024, 1, 1, tzinfo=UTC)

    @pytest.mark.parametrize(("text", "position"), [("@0", 0), ("@1", 1), ("@1234", 1234)])
    def test_positions(self, text: str, position: int) -> None:
        """@N names the log position N, as an int."""
        parsed = parse_when(text, now=NOW)
        assert parsed == position
        assert type(parsed) is int

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "yesterday",
            "2h",
            "ago",
            "2 fortnights ago",
            "@",
            "@-1",
            "@1.5",
            "@abc",
            "2024-13-01",
        ],
    )
    def test_rejects_anything_else(self, text: str) -> None:
        """Anything that is none of the three spellings is an InvalidArgument (a ValueError)."""
        with pytest.raises(InvalidArgument) as raised:
            parse_when(text, now=NOW)
        assert isinstance(raised.value, ValueError)
        assert "WHEN" in str(raised.value)

    def test_rejects_a_span_too_long_to_subtract(self) -> None:
        """A relative time before year 1 is bad input, not an overflow."""
        with pytest.raises(InvalidArgument):
            parse_when("999999999d ago", now=NOW)

    def test_rejects_a_naive_now(self) -> None:
        """The anchor of relative times must be timezone-aware."""
        with pytest.raises(InvalidArgument):
            parse_when("2h ago", now=dt.datetime(2024, 5, 1, 12, 0))

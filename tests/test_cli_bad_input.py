"""Bad input on the command line ends with one line and exit 2, never a traceback or an
empty answer to a question that cannot have one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mastertrail import Registry
from tests.cli_support import Invoke, assert_failed_cleanly, json_lines, make_invoke
from tests.conftest import FakeClock

T0 = 1_700_000_000.0


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """``mastertrail ARGS`` in-process on the injected clock."""
    return make_invoke(clock)


@pytest.fixture
def url(tmp_path: Path, clock: FakeClock) -> str:
    """A SQLite registry where alpha registers and starts at T0 (positions 1, 2) and checks
    in at T0 + 60 (position 3); the clock then stands at T0 + 120."""
    url = f"sqlite:///{tmp_path}/bad-input.sqlite"
    registry = Registry(url, clock=clock)
    registry.upgrade()
    master_id = registry.find_master_id("alpha")
    registry.set_master_state(master_id, True)
    clock.advance(60)
    registry.set_master_state(master_id, True)
    clock.advance(60)
    registry.close()
    return url


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


class TestWhenOutOfRange:
    @pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
    @pytest.mark.parametrize("option", ["masters --as-of", "history alpha --since"])
    def test_offset_beyond_the_years_is_bad_input(
        self, url: str, invoke: Invoke, when: str, option: str
    ) -> None:
        """A WHEN whose offset takes it out of the years 1 to 9999 in UTC exits 2, one line."""
        line = assert_failed_cleanly(invoke("--db", url, *option.split(), when), 2)
        assert "outside the years" in line


class TestFollowInterval:
    @pytest.mark.parametrize("interval", ["nan", "inf", "-inf", "1e400", "86401"])
    def test_a_pause_that_is_no_number_of_seconds_is_bad_input(
        self, url: str, invoke: Invoke, interval: str
    ) -> None:
        """log --follow --interval refuses nan and infinite or absurd pauses before reading."""
        line = assert_failed_cleanly(
            invoke("--db", url, "log", "--follow", "--interval", interval), 2
        )
        assert "--interval" in line

    def test_a_day_is_accepted(self, url: str, invoke: Invoke) -> None:
        """The longest pause, a day, is still a pause."""
        result = invoke("--db", url, "log", "--follow", "--interval", "86400", "--limit", "3")
        assert result.exit_code == 0, result.output


class TestHistoryWindow:
    @pytest.mark.parametrize(
        ("since", "until"),
        [(iso(T0 + 100), iso(T0 + 10)), ("@3", "@1"), ("@3", iso(T0)), (iso(T0 + 100), "@1")],
    )
    def test_inverted_window_is_bad_input(
        self, url: str, invoke: Invoke, since: str, until: str
    ) -> None:
        """A window that ends before it starts exits 2 instead of printing no events."""
        line = assert_failed_cleanly(
            invoke("--db", url, "history", "alpha", "--since", since, "--until", until), 2
        )
        assert "ends before it starts" in line

    @pytest.mark.parametrize("since", [iso(T0 + 3600), "@4"])
    def test_window_in_the_future_is_bad_input(self, url: str, invoke: Invoke, since: str) -> None:
        """A window starting after now (or after the last position) exits 2."""
        assert_failed_cleanly(invoke("--db", url, "history", "alpha", "--since", since), 2)

    def test_a_window_of_one_moment_is_answered(self, url: str, invoke: Invoke) -> None:
        """since equal to until is a window, and now is not the future."""
        result = invoke(
            "--db", url, "history", "alpha", "--since", iso(T0 + 60), "--until", "now", "--json"
        )
        assert [r["position"] for r in json_lines(result)] == [3]


class TestTimelineWindow:
    @pytest.mark.parametrize(
        ("since", "until"),
        [(iso(T0 + 3600), None), (iso(T0 + 100), iso(T0 + 10)), ("@3", "@2")],
    )
    def test_future_or_inverted_window_is_bad_input(
        self, url: str, invoke: Invoke, tmp_path: Path, since: str, until: str | None
    ) -> None:
        """timeline refuses a window in the future or inverted, and draws nothing."""
        out = tmp_path / "t.svg"
        bounds = ["--since", since] + ([] if until is None else ["--until", until])
        assert_failed_cleanly(invoke("--db", url, "timeline", "--out", str(out), *bounds), 2)
        assert not out.exists()

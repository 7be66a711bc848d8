"""Storing segments beside the run that checks the next: the transactions are spaced, and
the interpreter's switch interval is shortened only while a run stores segments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from eventstore import archive_store
from eventstore.archive_store import Pace
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.tamper_support import three_masters


class FakeTime:
    """``time.monotonic`` and ``time.sleep`` of a clock that moves only when slept on or
    advanced."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(archive_store.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(archive_store.time, "sleep", fake.sleep)
    return fake


class TestPace:
    def test_the_first_transaction_does_not_wait(self, fake_time: FakeTime) -> None:
        """Nothing recorded yet: the first transaction begins at once."""
        Pace().wait()
        assert fake_time.slept == []

    def test_the_next_waits_pause_times_as_long_as_the_last_took(self, fake_time: FakeTime) -> None:
        """After a transaction of 4 ms, the next begins PAUSE times 4 ms after it ended,
        less the time spent meanwhile (writing the next file)."""
        pace = Pace()
        began = fake_time.now
        fake_time.now += 0.004
        pace.took(began)
        fake_time.now += 0.001
        pace.wait()
        assert fake_time.slept == [pytest.approx(0.004 * archive_store.PAUSE - 0.001)]

    def test_no_wait_when_the_time_passed(self, fake_time: FakeTime) -> None:
        """When the next segment took longer to write than the transaction, it does not
        wait."""
        pace = Pace()
        began = fake_time.now
        fake_time.now += 0.004
        pace.took(began)
        fake_time.now += 0.004 * archive_store.PAUSE + 0.001
        pace.wait()
        assert fake_time.slept == []

    def test_unspaced_never_waits(self, fake_time: FakeTime) -> None:
        """Where a transaction holds no lock a heartbeat needs (PostgreSQL, MariaDB), the
        next begins at once."""
        pace = Pace(spaced=False)
        began = fake_time.now
        fake_time.now += 0.004
        pace.took(began)
        pace.wait()
        assert fake_time.slept == []


class TestSwitchInterval:
    def test_short_while_storing_then_as_before(
        self, registry: Registry, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While segments are stored the interpreter switches threads at least every
        SWITCH_INTERVAL; after the run, as often as before it."""
        three_masters(registry, clock)
        before = sys.getswitchinterval()
        write_file = archive_store.write_file
        seen: list[float] = []

        def writing(*args: object) -> archive_store.Written:
            seen.append(sys.getswitchinterval())
            return write_file(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(archive_store, "write_file", writing)
        assert registry.archive(before=registry.log_position(), to=tmp_path).segments == 1
        assert archive_store.SWITCH_INTERVAL is not None
        assert seen == [min(before, archive_store.SWITCH_INTERVAL)]
        assert sys.getswitchinterval() == before

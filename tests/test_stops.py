"""How a deactivation is read: a clean stop, a crash found at restart, an expiry by a
master or by an operator (projections.stops), and the newest events it is read from."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from eventstore import DecodeError
from eventstore.recorded import RecordedEvent
from mastertrail import Registry
from projections.stops import classify_stop, duration_text
from tests.conftest import FakeClock

T0 = 1_700_000_000


def event(
    kind: str, offset: int, *, actor: str = "m1", pid: int = 10, **data: Any
) -> RecordedEvent:
    return RecordedEvent(
        position=offset + 1,
        event_id=uuid.uuid4(),
        master_id=1,
        version=offset + 1,
        type=f"master.{kind}",
        schema_version=1,
        data=data,
        metadata={"actor": actor, "host": "h", "pid": pid, "reason": data.pop("reason", "")},
        recorded_at=dt.datetime.fromtimestamp(T0 + offset, dt.UTC),
        hash="",
    )


class TestClassifyStop:
    def test_a_clean_stop_by_the_running_process(self) -> None:
        """The process that checked in stops the master: a clean stop, seconds of silence."""
        before = event("checked_in", 0, last_active=T0)
        stop = classify_stop(
            event("deactivated", 30, last_active=T0, reason="stopped"), before, {"m1"}
        )
        assert stop is not None
        assert (stop.kind, stop.silence, stop.describe("m1")) == ("stopped", 30, "stopped cleanly")

    def test_a_crash_found_at_restart(self) -> None:
        """The master's own name, from a new process, deactivating it: found dead after the
        silence since the old process's last check-in."""
        before = event("checked_in", 0, last_active=T0)
        found = event("deactivated", 900, pid=11, last_active=T0, reason="stopped")
        stop = classify_stop(found, before, {"m1"})
        assert stop is not None
        assert stop.kind == "found_dead"
        assert stop.describe("m1") == "found dead at restart after 15 min of silence"

    def test_an_expiry_by_another_master(self) -> None:
        """An expiry whose actor is a master of the fleet."""
        found = event("deactivated", 700, actor="m2", last_active=T0, reason="expired")
        stop = classify_stop(found, None, {"m1", "m2"})
        assert stop is not None
        assert stop.describe() == "expired by m2 after 11 min of silence"

    def test_an_expiry_by_an_operator(self) -> None:
        """An expiry with a timeout, by an actor that is no master."""
        found = event("deactivated", 700, actor="ops:42", last_active=T0, timeout=600)
        stop = classify_stop(found, None, {"m1"})
        assert stop is not None
        assert stop.kind == "expired_by_operator"
        assert stop.describe().endswith("timeout 600 s")

    def test_a_stop_by_someone_else(self) -> None:
        """A deactivation by an actor that is not the master names that actor."""
        found = event("deactivated", 5, actor="script", last_active=T0, reason="stopped")
        stop = classify_stop(found, event("checked_in", 0, last_active=T0), {"m1"})
        assert stop is not None
        assert stop.describe("m1") == "stopped by script"

    def test_other_events_are_no_stop(self) -> None:
        """Only deactivations are read as stops."""
        assert classify_stop(event("checked_in", 0, last_active=T0), None, set()) is None

    def test_reads_the_deactivation_through_the_codec(self) -> None:
        """A deactivation is read as the codec decodes it: one whose data no schema
        version holds (version 1 never recorded links) is refused, not guessed at."""
        found = event("deactivated", 30, last_active=T0, reason="stopped", schedulers=[1])
        with pytest.raises(DecodeError):
            classify_stop(found, None, {"m1"})


class TestDurationText:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (0, "0 s"),
            (119, "119 s"),
            (660, "11 min"),
            (7200, "2 h"),
            (12_000, "3 h 20 min"),
            (3 * 86_400 + 3600, "3 d 1 h"),
        ],
    )
    def test_at_a_glance(self, seconds: int, text: str) -> None:
        """Seconds, minutes, hours and minutes, days and hours."""
        assert duration_text(seconds) == text


class TestLatestEvents:
    def test_the_newest_two_of_every_master(self, registry: Registry, clock: FakeClock) -> None:
        """Every master of the view maps to its two newest events, oldest first, whatever
        the length of its stream."""
        one, two = registry.find_master_id("one"), registry.find_master_id("two")
        for _ in range(5):
            registry.set_master_state(one, True)
            clock.advance(60)
        registry.set_master_state(one, False)
        latest = registry.latest_events()
        assert [e.type for e in latest[one]] == ["master.checked_in", "master.deactivated"]
        assert [e.type for e in latest[two]] == ["master.registered"]
        assert [e.version for e in latest[one]] == [6, 7]


class TestResetLongAgo:
    def test_an_expiry_after_a_reset_has_no_silence(self) -> None:
        """A master marked active at the epoch by an upgrade, then expired: no made-up
        silence of fifty years."""
        found = event("deactivated", 700, actor="m2", last_active=0, reason="expired")
        stop = classify_stop(found, None, {"m1", "m2"})
        assert stop is not None
        assert stop.silence is None
        assert stop.describe() == "expired by m2 after a reset long ago"

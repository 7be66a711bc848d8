"""The registry's commands read the injected clock once, log one line, and retry
conflicts inside the command."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
import structlog.testing
from freezegun import freeze_time

import commands.retry
import eventstore
from eventstore.errors import ConcurrencyError
from mastertrail import (
    Registry,
    StoreUnavailable,
)
from tests.conftest import FakeClock
from tests.registry_support import (
    UTC,
    head,
    log_of,
    snapshot,
)


def commands_by_name() -> list[Any]:
    """Every command as a callable of (registry, active master id), with its log line and
    that line's level (None: a command that changed nothing on several masters, no line)."""
    cases: list[tuple[str, Callable[[Registry, int], object], str | None, str | None]] = [
        ("register", lambda r, m: r.find_master_id("host:/srv/new"), "master_registered", "info"),
        ("find", lambda r, m: r.find_master_id("host:/srv/active"), "master_found", "debug"),
        ("check-in", lambda r, m: r.set_master_state(m, True), "master_checked_in", "debug"),
        ("stop", lambda r, m: r.set_master_state(m, False), "master_deactivated", "info"),
        ("unknown", lambda r, m: r.set_master_state(m + 1, False), "master_unknown", "debug"),
        ("unknown-up", lambda r, m: r.set_master_state(m + 1, True), "master_unknown", "debug"),
        ("expire", lambda r, m: r.expire_masters(timeout=0), "masters_expired", "info"),
        ("expire-none", lambda r, m: r.expire_masters(), None, None),
        (
            "housekeeping",
            lambda r, m: r.set_all_masters_active_long_time_ago(),
            "housekeeping_forced",
            "info",
        ),
        ("adopt", lambda r, m: r.adopt(), None, None),
    ]
    return [pytest.param(call, line, level, id=name) for name, call, line, level in cases]


class TestClockAndLogging:
    @pytest.mark.parametrize(("call", "line", "level"), commands_by_name())
    def test_each_command_reads_the_clock_once_and_logs_one_line(
        self,
        registry: Registry,
        active_master: int,
        clock: FakeClock,
        call: Callable[[Registry, int], object],
        line: str | None,
        level: str | None,
    ) -> None:
        """Every command reads the injected clock exactly once and writes exactly one
        structlog line, named for what it did: at DEBUG for what a master does every minute
        (or what changes nothing), at INFO for a registration or a change of state, which
        operators look for; none for a housekeeping or adoption that found nothing."""
        clock.advance(1)
        clock.readings = 0
        with structlog.testing.capture_logs() as logs:
            call(registry, active_master)
        assert clock.readings == 1
        expected = [] if line is None else [(line, level)]
        assert [(entry["event"], entry["log_level"]) for entry in logs] == expected

    def test_a_single_master_line_has_its_key_values(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """A check-in's line carries master_id, name, position, changed and actor; it is
        routine, so DEBUG."""
        with structlog.testing.capture_logs() as logs:
            registry.set_master_state(active_master, True)
        assert logs == [
            {
                "event": "master_checked_in",
                "log_level": "debug",
                "master_id": active_master,
                "name": "host:/srv/active",
                "position": 3,
                "changed": False,
                "actor": "tester",
            }
        ]

    def test_inactive_to_inactive_is_debug(self, registry: Registry) -> None:
        """A stop of a master that is not active changes nothing: DEBUG."""
        master = registry.find_master_id("host:/srv/idle")
        with structlog.testing.capture_logs() as logs:
            registry.set_master_state(master, False)
        assert [(entry["event"], entry["log_level"]) for entry in logs] == [
            ("master_unchanged", "debug")
        ]

    def test_one_line_for_several_expired_masters(
        self, registry: Registry, active_master: int, clock: FakeClock
    ) -> None:
        """Expiring two masters logs one line listing both."""
        other = registry.find_master_id("host:/srv/other")
        registry.set_master_state(other, True)
        clock.advance(1000)
        with structlog.testing.capture_logs() as logs:
            registry.expire_masters()
        (entry,) = logs
        assert entry["master_ids"] == [active_master, other]
        assert entry["timeout"] == 600

    def test_the_default_clock_is_the_system_clock(self, db_url: str) -> None:
        """Without ``clock=``, a frozen time.time() is what the events record."""
        with freeze_time("2024-05-01 12:00:00.5"):
            registry = Registry(db_url, actor="tester")
            registry.upgrade()
            master_id = registry.find_master_id("host:/srv/frozen")
        master = registry.get_master(master_id)
        assert master is not None
        assert master.last_active == dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
        (event,) = log_of(registry)
        assert event.recorded_at == dt.datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
        registry.close()


class TestRetries:
    def test_a_conflict_is_retried_inside_the_command(
        self,
        registry: Registry,
        active_master: int,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A stale-version conflict on the first attempt is retried; the caller never sees it,
        the clock is still read once and exactly one event is written."""
        calls = []

        real = eventstore.Writer.append

        def conflicting_once(writer: eventstore.Writer, *args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            if len(calls) == 1:
                raise ConcurrencyError(active_master, 2, 3)
            return real(writer, *args, **kwargs)

        monkeypatch.setattr(eventstore.Writer, "append", conflicting_once)
        registry._known.forget(active_master)  # read, then written: one append an attempt
        clock.advance(5)
        clock.readings = 0
        assert registry.set_master_state(active_master, True) is False
        assert len(calls) == 2
        assert clock.readings == 1
        assert [e.type for e in registry.history(active_master)][-1] == "master.checked_in"
        assert head(registry) == 3

    def test_a_duplicate_is_another_calls_event_and_decided_again(
        self, registry: Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A command never sends a batch twice, so a batch the store finds stored is another
        call's, the same to the byte (one process, one instant): the command decides again
        on fresh state rather than report that call's change as its own."""
        calls = []
        real = eventstore.Writer.append

        def duplicate_once(writer: eventstore.Writer, *args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            if len(calls) == 1:
                return eventstore.AppendResult((1,), duplicate=True)
            return real(writer, *args, **kwargs)

        monkeypatch.setattr(eventstore.Writer, "append", duplicate_once)
        master_id = registry.find_master_id("m")
        assert len(calls) == 2
        assert [(e.master_id, e.type) for e in registry.events()] == [
            (master_id, "master.registered")
        ]

    def test_retries_are_bounded(
        self, registry: Registry, active_master: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A conflict on every attempt is retried until RETRY_FOR seconds have passed (on
        the retries' own clock), then the call raises StoreUnavailable, having written
        nothing."""
        transactions = []
        real_begin = commands.retry.begin_write
        ticks = iter(range(1000))

        def counting_begin(conn: sa.Connection) -> None:
            transactions.append(conn)
            real_begin(conn)

        def always_conflicting(writer: eventstore.Writer, *args: Any, **kwargs: Any) -> Any:
            raise ConcurrencyError(active_master, 2, 3)

        monkeypatch.setattr(eventstore.Writer, "append", always_conflicting)
        monkeypatch.setattr(commands.retry, "begin_write", counting_begin)
        monkeypatch.setattr(commands.retry, "monotonic", lambda: float(next(ticks)))
        monkeypatch.setattr(commands.retry, "pause", lambda _seconds: None)
        monkeypatch.setattr(commands.retry, "RETRY_FOR", 3.0)
        before = snapshot(registry)
        with pytest.raises(StoreUnavailable, match="gave up after 3 attempts"):
            registry.set_master_state(active_master, False)
        assert len(transactions) == 3
        assert snapshot(registry) == before

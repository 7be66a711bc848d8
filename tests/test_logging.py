"""mastertrail's log lines go through the host's logging: structlog's configuration when
there is one, else a routed sink (Twisted's log in a buildmaster), else the standard
library's logging; never stdout, nothing below INFO, no line for a no-op."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import structlog.testing

from eventstore import logs
from mastertrail import Registry
from tests.conftest import FakeClock


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """structlog as a library finds it in a program that did not configure it."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    logs.route(None)  # a Buildbot component made by an earlier test routes to Twisted's log
    yield
    logs.route(None)
    structlog.configure(**saved)


class ListSink:
    """A sink that keeps the lines it is given, with their level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def debug(self, line: str) -> None:
        self.lines.append(("debug", line))

    def info(self, line: str) -> None:
        self.lines.append(("info", line))

    def warning(self, line: str) -> None:
        self.lines.append(("warning", line))

    def error(self, line: str) -> None:
        self.lines.append(("error", line))


def exercise(url: str, clock: FakeClock) -> None:
    """Upgrade an empty database, register a master, start it and check in twice."""
    registry = Registry(url, clock=clock, actor="tester")
    registry.upgrade()
    master_id = registry.find_master_id("m")
    registry.set_master_state(master_id, True)
    registry.set_master_state(master_id, True)
    registry.set_master_state(master_id, True)
    registry.close()


class TestCapturedLines:
    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    def test_no_line_for_a_no_op(self, db_url: str, clock: FakeClock) -> None:
        """An upgrade that adopts nothing logs no line; a registration and an activation
        are INFO, the check-ins DEBUG."""
        with structlog.testing.capture_logs() as captured:
            exercise(db_url, clock)
        assert [(line["event"], line["log_level"]) for line in captured] == [
            ("master_registered", "info"),
            ("master_activated", "info"),
            ("master_checked_in", "debug"),
            ("master_checked_in", "debug"),
        ]


class TestUnconfiguredStructlog:
    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    def test_lines_go_to_stdlib_logging_not_stdout(
        self,
        unconfigured: None,
        db_url: str,
        clock: FakeClock,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With structlog unconfigured nothing is printed to stdout; the INFO lines go to
        the standard library's logger ``mastertrail`` as ``event key=value``, without a
        time stamp of their own, and nothing below INFO is passed on."""
        caplog.set_level(logging.DEBUG, logger="mastertrail")
        exercise(db_url, clock)
        assert capsys.readouterr().out == ""
        records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
        assert [(name, level) for name, level, _ in records] == [
            ("mastertrail", logging.INFO),
            ("mastertrail", logging.INFO),
        ]
        assert records[0][2].startswith("master_registered master_id=1 name='m'")
        assert not any(re.search(r"\d{4}-\d\d-\d\d", message) for _, _, message in records)

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    def test_a_routed_sink_gets_the_lines(
        self, unconfigured: None, db_url: str, clock: FakeClock
    ) -> None:
        """A sink installed with route() gets the INFO lines and nothing below."""
        sink = ListSink()
        logs.route(sink)
        exercise(db_url, clock)
        assert [level for level, _ in sink.lines] == ["info", "info"]
        assert sink.lines[1][1].startswith("master_activated master_id=1")


class TestTwistdLog:
    @pytest.mark.slow
    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    def test_a_buildmaster_logs_through_twisted(self, tmp_path: Path, db_url: str) -> None:
        """In a real buildmaster checking in every second, twistd.log has mastertrail's
        registration and activation once each, through Twisted's log (one time stamp a
        line), no check-in line and no line for the adoption of nothing."""
        pytest.importorskip("buildbot")
        from tests.test_buildbot_real import create_master, start, stop
        from tests.test_buildbot_resilience import check_ins, wait_for

        basedir = create_master(tmp_path / "master", db_url, heartbeat=1)
        start(basedir)
        registry = Registry(db_url)
        try:
            name = next(m.name for m in registry.get_masters())
            wait_for(lambda: check_ins(registry, name) >= 4)
        finally:
            stop(basedir)
            registry.close()
        lines = (basedir / "twistd.log").read_text().splitlines()
        ours = [line for line in lines if "mastertrail" in line or "master_" in line]
        registered = [line for line in ours if "master_registered" in line]
        assert len(registered) == 1, ours
        assert re.match(
            r"^\d{4}-\d\d-\d\d[ T][\d:.+-]+ \[-\] mastertrail: master_registered ", registered[0]
        )
        assert any("mastertrail: master_activated " in line for line in ours), ours
        assert not any("master_checked_in" in line or "masters_adopted" in line for line in ours)
        stamps = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
        assert not [line for line in lines if len(stamps.findall(line)) > 1]

"""Real buildmasters (``buildbot create-master`` / ``start`` / ``stop``) with mastertrail
enabled by the two lines in ``buildbot.tac``, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventstore.archive import list_segments
from mastertrail import Registry
from tests.conftest import FakeClock

pytest.importorskip("buildbot")

BUILDBOT = str(Path(sys.executable).parent / "buildbot")

MASTER_CFG = """\
from buildbot.plugins import schedulers, util, worker
c = BuildmasterConfig = {{}}
c['workers'] = [worker.Worker('w1', 'pass')]
c['protocols'] = {{'pb': {{'port': 'tcp:0:interface=127.0.0.1'}}}}
c['builders'] = [util.BuilderConfig(name='b1', workernames=['w1'], factory=util.BuildFactory())]
c['schedulers'] = [schedulers.Triggerable(name='t', builderNames=['b1'])]
c['title'] = 'mastertrail test'
c['buildbotURL'] = 'http://localhost:8010/'
c['buildbotNetUsageData'] = None
c['db'] = {{'db_url': {db_url!r}}}
"""

# The two lines the README documents, and (for the expiry test) a shorter heartbeat and
# expiry set in the master's own configuration file.
ENABLE = "import mastertrail.buildbot\nmastertrail.buildbot.install()\n"
FAST_HOUSEKEEPING = (
    "\nm.masterHeartbeatService.step = {heartbeat}\n"
    "import buildbot.data.masters\n"
    "buildbot.data.masters.EXPIRE_MINUTES = {expire_minutes}\n"
)

pytestmark = pytest.mark.slow


def buildbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUILDBOT, *args], capture_output=True, text=True, timeout=120, check=False
    )


def create_master(
    basedir: Path,
    db_url: str,
    *,
    heartbeat: float | None = None,
    expire_minutes: float = 10,
    config: str = "",
) -> Path:
    """A master directory with mastertrail enabled in its buildbot.tac, and ``config``
    added to its master.cfg."""
    result = buildbot("create-master", "-q", "--db", db_url, str(basedir))
    assert result.returncode == 0, result.stdout + result.stderr
    (basedir / "master.cfg").write_text(MASTER_CFG.format(db_url=db_url) + config)
    tac = basedir / "buildbot.tac"
    text = tac.read_text()
    anchor = "from buildbot.master import BuildMaster\n"
    assert anchor in text
    text = text.replace(anchor, anchor + ENABLE)
    if heartbeat is not None:
        text += FAST_HOUSEKEEPING.format(heartbeat=heartbeat, expire_minutes=expire_minutes)
    tac.write_text(text)
    return basedir


def start(basedir: Path) -> None:
    result = buildbot("start", str(basedir))
    log = (basedir / "twistd.log").read_text() if (basedir / "twistd.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-3000:]


def stop(basedir: Path) -> None:
    result = buildbot("stop", str(basedir))
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


@pytest.fixture
def masters_started() -> Iterator[list[Path]]:
    """Directories of masters started by the test; any still running are killed after."""
    started: list[Path] = []
    yield started
    for basedir in started:
        pidfile = basedir / "twistd.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


def buildbot_url(db_url: str) -> str:
    """``db_url`` as a ``master.cfg`` gives it: on MariaDB with Buildbot's tables in InnoDB,
    as ``docs/buildbot.rst`` asks (Buildbot's default is MyISAM)."""
    return f"{db_url}?storage_engine=InnoDB" if db_url.startswith("mysql") else db_url


def master_name(basedir: Path) -> str:
    return f"{os.uname().nodename}:{basedir}"


class TestRealMaster:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"], indirect=True)
    def test_start_and_stop(self, tmp_path: Path, db_url: str, masters_started: list[Path]) -> None:
        """A started master is active with registration and activation events; once
        stopped it is inactive with a stop event."""
        basedir = create_master(tmp_path / "master", buildbot_url(db_url))
        masters_started.append(basedir)
        start(basedir)
        registry = Registry(db_url)
        name = master_name(basedir)
        masters = registry.get_masters()
        assert [(m.name, m.active) for m in masters] == [(name, True)]
        started = [(e.type, e.metadata["reason"], e.metadata["actor"]) for e in registry.events()]
        assert started[:2] == [
            ("master.registered", "registered", name),
            ("master.activated", "started", name),
        ]
        stop(basedir)
        master = registry.get_master(masters[0].id)
        assert master is not None
        assert master.active is False
        last = list(registry.events())[-1]
        assert (last.type, last.metadata["reason"], last.metadata["actor"]) == (
            "master.deactivated",
            "stopped",
            name,
        )
        assert registry.verify().ok
        registry.close()

    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
    def test_killed_master_is_expired_by_the_other(
        self, tmp_path: Path, db_url: str, masters_started: list[Path]
    ) -> None:
        """Two masters share PostgreSQL; one is killed with SIGKILL and the other expires
        it; the log names the expiring master."""
        first = create_master(tmp_path / "first", db_url, heartbeat=1, expire_minutes=0.2)
        second = create_master(tmp_path / "second", db_url, heartbeat=1, expire_minutes=0.2)
        masters_started.extend([first, second])
        start(first)
        start(second)
        registry = Registry(db_url)
        wait_until(lambda: sum(m.active for m in registry.get_masters()) == 2)
        victim = next(m for m in registry.get_masters() if m.name == master_name(first))
        os.kill(int((first / "twistd.pid").read_text()), signal.SIGKILL)
        wait_until(lambda: not registry.get_master(victim.id).active, timeout=90)  # type: ignore[union-attr]
        deactivation = [e for e in registry.history(victim.id) if e.type == "master.deactivated"]
        assert len(deactivation) == 1
        assert deactivation[0].metadata["reason"] == "expired"
        assert deactivation[0].metadata["actor"] == master_name(second)
        survivor = next(m for m in registry.get_masters() if m.name == master_name(second))
        assert survivor.active
        stop(second)
        assert registry.verify().ok
        registry.close()


# The archiver as docs/buildbot.rst configures it, at a minute the test picks.
ARCHIVER = """
import datetime
import mastertrail.buildbot
c['services'] = [
    mastertrail.buildbot.archiver(
        horizon=datetime.timedelta(days=30), to="archive/", hour={hour}, minute={minute}
    )
]
"""

#: Events of old masters written before the master starts: two segments' worth.
OLD_EVENTS = 2500


def old_log(db_url: str) -> tuple[int, dt.datetime, list[tuple[str, bool, int]]]:
    """Three masters checking in, a few years back (older than any horizon): the last
    position, a moment in the middle of it, and the masters as of then."""
    clock = FakeClock()
    registry = Registry(db_url, clock=clock, actor="old")
    registry.upgrade()
    ids = [registry.find_master_id(f"old-{n}:/srv/buildbot") for n in range(3)]
    while registry.log_position() < OLD_EVENTS:
        clock.advance(60)
        for master_id in ids:
            registry.set_master_state(master_id, True)
    middle = dt.datetime.fromtimestamp(clock.now - 60 * 300, dt.UTC)
    as_of = [(m.name, m.active, m.last_active) for m in registry.masters_as_of(middle)]
    last = registry.log_position()
    registry.close()
    return last, middle, as_of


class TestRealArchiver:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"], indirect=True)
    def test_it_seals_the_old_events_at_its_hour_beside_the_heartbeats(
        self, tmp_path: Path, db_url: str, masters_started: list[Path]
    ) -> None:
        """A buildmaster with ``mastertrail.buildbot.archiver`` in ``c['services']`` seals
        the events older than the horizon at the minute configured, while it heartbeats
        every second; every reading of them answers as before, and the log verifies."""
        at = math.ceil((time.time() + 20) / 60) * 60  # the next minute, 20-80 s from now
        hour, minute = time.gmtime(at)[3:5]
        basedir = create_master(
            tmp_path / "master",
            buildbot_url(db_url),
            heartbeat=1,
            config=ARCHIVER.format(hour=hour, minute=minute),
        )
        masters_started.append(basedir)
        last, middle, as_of = old_log(db_url)
        start(basedir)
        registry = Registry(db_url, archive_dir=basedir / "archive")
        wait_until(lambda: bool(list_segments(registry.engine)), timeout=at - time.time() + 60)
        wait_until(lambda: "mastertrail archive: sealed" in (basedir / "twistd.log").read_text())
        segments = list_segments(registry.engine)
        assert (len(segments), segments[-1].last_position) == (2, last)
        assert all(s.sealed_at.timestamp() >= at - 5 for s in segments)
        assert [(m.name, m.active, m.last_active) for m in registry.masters_as_of(middle)] == as_of
        # The master goes on checking in after the run.
        own = next(m for m in registry.get_masters() if m.name == master_name(basedir))
        wait_until(lambda: registry.get_master(own.id).last_active > own.last_active)  # type: ignore[union-attr]
        stop(basedir)
        report = registry.verify()
        assert report.ok, report.problems
        assert report.events_checked == registry.log_position()
        registry.close()

"""Real buildmasters (``buildbot create-master`` / ``start`` / ``stop``) with mastertrail
enabled by the two lines in ``buildbot.tac``, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mastertrail import Registry

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
    basedir: Path, db_url: str, *, heartbeat: float | None = None, expire_minutes: float = 10
) -> Path:
    """A master directory with mastertrail enabled in its buildbot.tac."""
    result = buildbot("create-master", "-q", "--db", db_url, str(basedir))
    assert result.returncode == 0, result.stdout + result.stderr
    (basedir / "master.cfg").write_text(MASTER_CFG.format(db_url=db_url))
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


def master_name(basedir: Path) -> str:
    return f"{os.uname().nodename}:{basedir}"


class TestRealMaster:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
    def test_start_and_stop(self, tmp_path: Path, db_url: str, masters_started: list[Path]) -> None:
        """A started master is active with registration and activation events; once
        stopped it is inactive with a stop event."""
        basedir = create_master(tmp_path / "master", db_url)
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

"""Database servers of a test's own, for tests that stop, restart or starve a server.

The shared servers the suite is pointed at (``MASTERTRAIL_TEST_*_URL``) are used by other
work on the same machine: a test never stops them. A test that needs to stop one starts its
own instead, in a temporary directory, on a free port of 127.0.0.1, from the server binaries
installed on the machine (PostgreSQL's ``initdb``/``pg_ctl``, MariaDB's
``mariadb-install-db``/``mariadbd``), and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Seconds a private server may take to start or stop.
START_TIMEOUT = 120.0
IN_CI = os.environ.get("CI", "").lower() == "true"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unavailable(reason: str) -> None:
    """Skip, or fail in CI, where the server binaries are expected."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary directory, a free
    port, trust authentication for ``root``), which the test may stop and start."""

    backend = "postgresql"

    def __init__(self) -> None:
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="mastertrail-pg-"))
        shutil.chown(self.dir, "postgres")
        self.port = _free_port()
        self.data = self.dir / "data"
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "root")
        self.url = f"postgresql+psycopg://root@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> str | None:
        """Why this machine cannot run one, or None."""
        if shutil.which("runuser") is None or not list(Path("/usr/lib/postgresql").glob("*/bin")):
            return "needs PostgreSQL's server binaries and runuser"
        return None

    def run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        log = str(self.dir / "server.log")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def is_up(self) -> bool:
        probe = [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def remove(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateMariaDB:
    """A MariaDB server of the test's own (``mariadb-install-db`` in a temporary directory,
    a free port, ``root`` without a password, a database ``test``), which the test may stop
    and start."""

    backend = "mysql"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mastertrail-mariadb-"))
        shutil.chown(self.dir, "mysql")
        self.port = _free_port()
        self.data = self.dir / "data"
        self.socket = self.dir / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None
        result = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                f"--datadir={self.data}",
            ],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/test"

    @staticmethod
    def available() -> str | None:
        """Why this machine cannot run one, or None."""
        if not (shutil.which("mariadb-install-db") and Path("/usr/sbin/mariadbd").exists()):
            return "needs MariaDB's server binaries (mariadb-install-db, mariadbd)"
        return None

    def start(self) -> None:
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the server's own output
        self.process = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={self.data}",
                f"--socket={self.socket}",
                f"--pid-file={self.dir / 'mariadbd.pid'}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.is_up():
            assert self.process.poll() is None, (self.dir / "server.log").read_text()
            assert time.monotonic() < deadline, "the private MariaDB did not start"
            time.sleep(0.1)  # polling a starting server; no test outcome depends on it
        self._sql("CREATE DATABASE IF NOT EXISTS test")

    def _sql(self, statement: str) -> None:
        subprocess.run(
            ["mariadb", f"--socket={self.socket}", "-uroot", "-e", statement],
            capture_output=True,
            timeout=START_TIMEOUT,
            check=True,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)  # mariadbd's clean shutdown
        self.process.wait(timeout=START_TIMEOUT)
        self.process = None

    def is_up(self) -> bool:
        probe = ["mysqladmin", f"--socket={self.socket}", "-uroot", "status"]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def remove(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop()
            if self.process is not None:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


PrivateServer = PrivatePostgres | PrivateMariaDB
SERVER_KINDS: dict[str, type[PrivatePostgres] | type[PrivateMariaDB]] = {
    "postgresql": PrivatePostgres,
    "mysql": PrivateMariaDB,
}


@contextlib.contextmanager
def private_server(backend: str) -> Iterator[PrivateServer]:
    """A started private server of ``backend``, removed afterwards; skipped (failed in
    CI) where the machine has no server binaries."""
    kind = SERVER_KINDS[backend]
    reason = kind.available()
    if reason is not None:
        _unavailable(reason)
    server = kind()
    try:
        server.start()
        yield server
    finally:
        server.remove()

"""SQLite files that cannot take a write: a full disk, a read-only file or directory, a
read-only URL, and a file that is no database. Reads work where SQLite can read; writes
fail typed, with a message an operator can act on, and the CLI exits 2 with one line."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mastertrail import NotADatabase, Registry, StoreFull, StoreReadOnly
from tests.cli_support import Invoke, assert_failed_cleanly, files_under, json_lines, make_invoke
from tests.conftest import FakeClock

ALPHA = "alpha:/srv/master"


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """``mastertrail ARGS`` in-process on the injected clock."""
    return make_invoke(clock)


def fill(directory: Path) -> Path:
    """A registry file in ``directory`` with alpha registered and started, every connection
    closed (no ``-wal`` or ``-shm`` file left)."""
    path = directory / "registry.sqlite"
    registry = Registry(f"sqlite:///{path}", clock=FakeClock())
    registry.upgrade()
    registry.set_master_state(registry.find_master_id(ALPHA), True)
    registry.close()
    assert sorted(p.name for p in directory.iterdir()) == ["registry.sqlite"]
    return path


def write_until_full(registry: Registry, master_id: int) -> int:
    """Heartbeats until the store is full; the number that went through."""
    done = 0
    while True:
        try:
            registry.set_master_state(master_id, True)
        except StoreFull:
            break
        done += 1
    with pytest.raises(StoreFull, match="free space"):
        registry.set_master_state(master_id, True)
    return done


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A private 512 KiB tmpfs, mounted for the test (root only; skipped elsewhere)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


class TestDiskFull:
    def test_a_full_tmpfs_raises_store_full_and_reads_go_on(self, tmpfs: Path) -> None:
        """On a private 512 KiB tmpfs filled by heartbeats, the write that does not fit
        raises StoreFull, commits nothing, and the registry still reads and verifies."""
        clock = FakeClock()
        registry = Registry(f"sqlite:///{tmpfs}/full.sqlite", clock=clock)
        registry.upgrade()
        master_id = registry.find_master_id(ALPHA)
        clock.advance(1)
        done = write_until_full(registry, master_id)
        assert done > 1
        assert len(list(registry.events())) == 1 + done
        assert registry.get_master(master_id) is not None
        with pytest.raises(StoreFull):
            registry.find_master_id("bravo:/srv/master")
        registry.close()

    def test_the_cli_exits_two_on_a_full_tmpfs(
        self, tmpfs: Path, invoke: Invoke, clock: FakeClock
    ) -> None:
        """A command that needs to write to a full disk says so in one line, exit 2."""
        url = f"sqlite:///{tmpfs}/full.sqlite"
        registry = Registry(url, clock=FakeClock())
        registry.upgrade()
        write_until_full(registry, registry.find_master_id(ALPHA))
        registry.close()
        assert registry_master_is_active(url)
        clock.advance(700)  # silent longer than Buildbot's expiry: expire must write
        line = assert_failed_cleanly(invoke("--db", url, "expire"), 2)
        assert "full" in line
        assert invoke("--db", url, "masters", "--json").exit_code == 0

    def test_a_size_limit_raises_store_full(self, tmp_path: Path) -> None:
        """With SQLite's max_page_count held at the file's size (a full store simulated
        without a mount), a write that needs a page raises StoreFull."""
        path = fill(tmp_path)
        registry = Registry(f"sqlite:///{path}", clock=FakeClock())
        pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]

        @sa.event.listens_for(registry.engine, "connect")
        def _limit(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

        master_id = registry.find_master_id(ALPHA)
        done = write_until_full(registry, master_id)
        assert len(list(registry.events())) == 2 + done
        assert registry.verify().ok
        registry.close()


def registry_master_is_active(url: str) -> bool:
    registry = Registry(url)
    try:
        return [m.active for m in registry.get_masters()] == [True]
    finally:
        registry.close()


def run_as_reader(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``mastertrail --db URL ARGS`` in another process, as a user without write access.

    Root may write anything: there the process keeps its user, so it can still read the
    checkout and its virtual environment wherever they are, but loses the capabilities that
    override file modes (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``, ``CAP_FOWNER``), so
    the modes 0444 and 0555 bind it as they bind any owner."""
    command = [sys.executable, "-m", "mastertrail", "--db", url, *args]
    if os.geteuid() == 0:
        dropped = "-dac_override,-dac_read_search,-fowner,-linux_immutable"
        command = ["setpriv", f"--bounding-set={dropped}", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def read_only_directory() -> Iterator[Path]:
    """A directory a reader may enter but not write, holding a registry file of mode 0444."""
    directory = Path(tempfile.mkdtemp(prefix="mastertrail-ro-"))
    directory.chmod(0o755)
    fill(directory).chmod(0o444)
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)
    shutil.rmtree(directory)


class TestReadOnlyFile:
    @pytest.mark.parametrize("args", [["masters"], ["log"], ["history", ALPHA], ["verify"]])
    def test_reads_work_and_leave_the_directory_as_it_was(
        self, read_only_directory: Path, args: list[str]
    ) -> None:
        """A file of mode 0444 in a directory of mode 0555 is read by every reading command
        (verify too: its result is not kept), and no file appears or changes."""
        before = files_under(read_only_directory)
        url = f"sqlite:///{read_only_directory}/registry.sqlite"
        result = run_as_reader(url, *args, "--json")
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert ALPHA in result.stdout or json.loads(result.stdout)["ok"] is True
        assert files_under(read_only_directory) == before

    def test_a_write_fails_typed_with_exit_two(self, read_only_directory: Path) -> None:
        """A command that writes exits 2 with one line naming the read-only database."""
        url = f"sqlite:///{read_only_directory}/registry.sqlite"
        result = run_as_reader(url, "expire")  # its master has been silent for years
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert "read-only" in result.stderr


class TestReadOnlyUrl:
    @pytest.mark.parametrize(
        "form", ["sqlite:///file:{path}?mode=ro&uri=true", "sqlite:///{path}?mode=ro"]
    )
    def test_reads_work_and_writes_raise_store_read_only(self, tmp_path: Path, form: str) -> None:
        """Through a mode=ro URL (with or without uri=true) reads work, a write raises
        StoreReadOnly and nothing is written."""
        path = fill(tmp_path)
        registry = Registry(form.format(path=path), clock=FakeClock())
        assert [m.name for m in registry.get_masters()] == [ALPHA]
        assert len(list(registry.events())) == 2
        with pytest.raises(StoreReadOnly, match="read-only"):
            registry.find_master_id("bravo:/srv/master")
        registry.close()
        assert len(list(Registry(f"sqlite:///{path}").events())) == 2

    def test_the_cli_reads_and_refuses_to_write(
        self, tmp_path: Path, invoke: Invoke, clock: FakeClock
    ) -> None:
        """masters works through a mode=ro URL; expire exits 2 with one line."""
        clock.advance(700)  # silent longer than Buildbot's expiry: expire must write
        url = f"sqlite:///{fill(tmp_path)}?mode=ro"
        assert [m["name"] for m in json_lines(invoke("--db", url, "masters", "--json"))] == [ALPHA]
        assert "read-only" in assert_failed_cleanly(invoke("--db", url, "expire"), 2)


class TestNotADatabase:
    def test_the_cli_exits_two_and_leaves_the_file(self, tmp_path: Path, invoke: Invoke) -> None:
        """--db naming a file that is not SQLite is one line and exit 2, for reads and the
        upgrade alike, and the file is left as it was."""
        (tmp_path / "notes.txt").write_text("not a database, " * 100)
        before = files_under(tmp_path)
        url = f"sqlite:///{tmp_path}/notes.txt"
        for args in (["masters"], ["upgrade"], ["adopt"]):
            line = assert_failed_cleanly(invoke("--db", url, *args), 2)
            assert "not a SQLite database" in line
        assert files_under(tmp_path) == before

    def test_the_api_raises_not_a_database(self, tmp_path: Path) -> None:
        """The registry raises NotADatabase, a ValueError."""
        (tmp_path / "notes.txt").write_text("not a database, " * 100)
        registry = Registry(f"sqlite:///{tmp_path}/notes.txt")
        with pytest.raises(NotADatabase) as error:
            registry.get_masters()
        assert isinstance(error.value, ValueError)
        registry.close()

"""The examples of README.md and docs/*.rst run, so that a change breaking one fails here.

Each document's blocks run in order in a directory of their own, holding the demo's fleet
as ``demo.sqlite`` (and as ``state.sqlite``, a Buildbot master's file), like a reader who
ran ``make demo`` and tries the examples one after another:

- Python blocks run in one namespace per document, in that directory. Database URLs
  naming a server (``postgresql...``, ``mysql...``) are replaced by the demo's SQLite
  file; paths under ``/mnt`` and ``/srv/archive`` by paths in the directory. A ``master.cfg``
  fragment finds ``c`` and ``mastertrail.buildbot`` as in a master; a block that changes
  Buildbot itself (``install()``) runs in a Python process of its own.
- Shell blocks: each ``mastertrail ...`` line runs through the command line in-process and
  must exit 0; ``export MASTERTRAIL_DB=`` sets the database of the next ones; ``cd`` stays
  in the directory (it stands for the master's base directory).
- Everything else is named in :data:`ILLUSTRATIVE` (a whole block) or :data:`NOT_COMMANDS`
  (a line of a shell block), each with the reason it does not run here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mastertrail.cli import Runtime, cli
from tests.doc_examples import DOCUMENTS, NOT_RUN, Block, blocks

#: Blocks that do not run, by document and first line, with the reason.
ILLUSTRATIVE: dict[tuple[str, str], str] = {
    ("buildbot.rst", "import os"): (
        "a whole buildbot.tac with elided parts (...); its two mastertrail lines run as "
        "README.md's and index.rst's blocks"
    ),
    ("events.rst", "@CODEC.register"): (
        "a future schema version 3 of master.checked_in, shown as what a change would look "
        "like; registering it would change the codec of every other test"
    ),
}

#: Shell lines that are not ``mastertrail`` commands, or commands that do not end, by a
#: pattern of the line, with the reason they do not run here.
NOT_COMMANDS: dict[str, str] = {
    r"^make\b": "builds the virtualenv and runs the suite, the benchmarks or Sphinx: this is them",
    r"^pip\b": "installs the package this test runs from",
    r"^export MASTERTRAIL_TEST_": "points the suite at its servers: conftest.py reads them",
    r"^mastertrail\b.*\sserve\b": "serves until interrupted; tests/test_cli_serve.py runs it",
    r"\$\(hostname\)": "names this machine's master through the shell",
    r"^xz\b": "reads a segment file with xz, sed and jq, programs outside Python",
}

#: Blocks that must not share the test's interpreter: they change Buildbot for good.
OWN_PROCESS = re.compile(r"mastertrail\.buildbot\.install\(\)")

SERVER_URL = re.compile(r"(?:postgresql|mysql)(?:\+\w+)?://[^\s'\"]+")
OUTSIDE_PATHS = re.compile(r"/mnt/\S+?(?=[\s'\"]|$)|/srv/archive")


def runnable(block: Block) -> str | None:
    """Why ``block`` does not run, or None when it does."""
    if block.language in NOT_RUN:
        return NOT_RUN[block.language]
    return ILLUSTRATIVE.get((block.path.name, block.first_line))


class Reader:
    """A reader trying one document's examples in order, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.db = f"sqlite:///{directory}/demo.sqlite"
        self.env: dict[str, str] = {"MASTERTRAIL_DB": self.db}
        import mastertrail.buildbot  # what a master.cfg imports before using it

        self.namespace: dict[str, Any] = {
            name: getattr(mastertrail, name) for name in mastertrail.__all__
        }
        self.namespace |= {"mastertrail": mastertrail, "c": {"www": {"plugins": {}}}}

    def local(self, code: str) -> str:
        """``code`` pointed at this reader's database and directory."""
        code = SERVER_URL.sub(self.db, code)
        return OUTSIDE_PATHS.sub(lambda found: str(self.directory / found[0].lstrip("/")), code)

    def run(self, block: Block) -> None:
        if block.language == "python":
            self.python(block)
        elif block.language in ("sh", "console"):
            self.shell(block)
        else:
            raise AssertionError(f"{block.where}: no way to run a {block.language} block")

    def python(self, block: Block) -> None:
        code = self.local(block.code)
        if OWN_PROCESS.search(code):
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=self.directory,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert done.returncode == 0, f"{block.where}:\n{block.code}\n{done.stderr}"
            return
        try:
            exec(compile(code, block.where, "exec"), self.namespace)
        except Exception as error:
            raise AssertionError(f"{block.where}:\n{block.code}") from error

    def shell(self, block: Block) -> None:
        for line in self.local(block.code).splitlines():
            if block.language == "console":
                if not line.startswith("$ "):
                    continue  # what the command printed
                line = line.removeprefix("$ ")
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if any(re.search(pattern, line) for pattern in NOT_COMMANDS):
                continue
            words = shlex.split(line, comments=True)
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                self.env[name] = value
            elif words[0] == "cd":
                continue  # the master's base directory is this directory
            elif words[0] == "mastertrail":
                self.command(words[1:], block, line)
            else:
                raise AssertionError(f"{block.where}: {line!r} is neither run nor explained")

    def command(self, args: list[str], block: Block, line: str) -> None:
        def interrupt(_seconds: float) -> None:
            raise KeyboardInterrupt  # how a reader ends --follow

        result = CliRunner().invoke(cli, args, obj=Runtime(sleep=interrupt), env=self.env)
        assert result.exit_code == 0, f"{block.where}: {line}\n{result.output}"


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's fleet, simulated once for every document, and an anchor of its log
    (what the audit mount holds)."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    for args in (["demo"], ["anchor", "--to", str(path.parent / "anchors.jsonl")]):
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{path}", *args], obj=Runtime())
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def reader(tmp_path: Path, demo_database: Path, monkeypatch: pytest.MonkeyPatch) -> Reader:
    """A working directory holding the demo's database (as ``demo.sqlite`` and as a
    master's ``state.sqlite``) and the audit mount with an anchor of it."""
    for name in ("demo.sqlite", "state.sqlite"):
        shutil.copy(demo_database, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MASTERTRAIL_DB", raising=False)
    monkeypatch.delenv("MASTERTRAIL_ARCHIVE", raising=False)
    (tmp_path / "mnt" / "audit").mkdir(parents=True)
    shutil.copy(demo_database.parent / "anchors.jsonl", tmp_path / "mnt" / "audit")
    return Reader(tmp_path)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_the_documents_examples_run(document: Path, reader: Reader) -> None:
    """Every block of the document that is not named as illustrative runs, in order."""
    for block in blocks(document):
        if runnable(block) is None:
            reader.run(block)


def test_every_illustrative_block_is_still_there() -> None:
    """A block named as illustrative that left its document would hide nothing: its entry
    goes too."""
    present = {(path.name, block.first_line) for path in DOCUMENTS for block in blocks(path)}
    assert set(ILLUSTRATIVE) <= present


def test_the_documents_have_examples_that_run() -> None:
    """The extraction finds the blocks, so that the test above cannot pass by finding
    none: README.md's Python session and command lines are among those that run."""
    runs = [b for path in DOCUMENTS for b in blocks(path) if runnable(b) is None]
    readme = {(b.language, b.first_line) for b in runs if b.path.name == "README.md"}
    assert ("python", "from mastertrail import Registry") in readme
    commands = [
        line.split("#")[0].strip()
        for b in runs
        if b.path.name == "README.md" and b.language == "sh"
        for line in b.code.splitlines()
    ]
    assert "mastertrail masters --active" in commands
    assert len([b for b in runs if b.language == "python"]) >= 15
    assert len([b for b in runs if b.language in ("sh", "console")]) >= 10

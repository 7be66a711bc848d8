"""What the command-line tests share: running ``mastertrail`` in-process, and reading what
it printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from click.testing import CliRunner, Result

from mastertrail import Registry
from mastertrail.cli import Runtime, cli
from tests.conftest import FakeClock

Invoke = Callable[..., Result]


def make_invoke(clock: FakeClock) -> Invoke:
    """Run ``mastertrail ARGS`` in-process on the injected clock; a command that would
    pause (``log --follow``) fails instead of sleeping."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), obj=Runtime(clock=clock, sleep=_no_sleep))

    return run


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"the command paused for {seconds} s")


def json_lines(result: Result) -> list[dict[str, Any]]:
    """Every JSON object the command printed on stdout."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_failed_cleanly(result: Result, exit_code: int) -> str:
    """The command exited with ``exit_code``, one line on stderr, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in lines[0]
    return lines[0]


def files_under(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its content, to compare before and after."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


ALPHA, BRAVO, CHARLIE = "alpha:/srv/master", "bravo:/srv/master", "charlie:/srv/master"


UNREACHABLE = [
    "postgresql+psycopg://root@127.0.0.1:1/x",
    "mysql+pymysql://root@127.0.0.1:1/x",
]


@attrs.frozen
class Fleet:
    """Three masters with a story: bravo stopped cleanly, alpha expired charlie."""

    url: str
    registry: Registry
    clock: FakeClock
    ids: dict[str, int]

    @property
    def t0(self) -> float:
        return 1_700_000_000.0

    def events(self) -> list[Any]:
        return list(self.registry.events())

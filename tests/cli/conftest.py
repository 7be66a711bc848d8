"""Fixtures of the command-line tests: a fleet with a story, databases to point
``mastertrail`` at, and the in-process runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mastertrail import Registry
from mastertrail.cli import Runtime, cli
from tests.cli_support import (
    ALPHA,
    BRAVO,
    CHARLIE,
    Fleet,
    Invoke,
)
from tests.conftest import FakeClock, Server, own_database


@pytest.fixture
def fleet(db_url: str, registry: Registry, clock: FakeClock) -> Fleet:
    """alpha, bravo and charlie register (positions 1-3) and start (4-6) at T0, check in at
    +60 (7-9); bravo stops at +120 (10); at +1000 alpha checks in (11) and expires charlie
    (12)."""
    ids = {name: registry.find_master_id(name) for name in (ALPHA, BRAVO, CHARLIE)}
    for name in (ALPHA, BRAVO, CHARLIE):
        registry.set_master_state(ids[name], True)
    clock.advance(60)
    for name in (ALPHA, BRAVO, CHARLIE):
        registry.set_master_state(ids[name], True)
    clock.advance(60)
    registry.set_master_state(ids[BRAVO], False)
    clock.now = 1_700_000_000.0 + 1000
    registry.set_master_state(ids[ALPHA], True)
    expirer = Registry(registry.engine, clock=clock, actor=ALPHA)
    assert [m.name for m in expirer.expire_masters(timeout=600)] == [CHARLIE]
    return Fleet(db_url, registry, clock, ids)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path}/cli.sqlite"


@pytest.fixture
def sandbox_url(backend: str, servers: dict[str, Server | str], tmp_path: Path) -> Iterator[str]:
    """A second empty database on the backend under test, for replay."""
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    with own_database(backend, servers, sandbox) as url:
        yield url


@pytest.fixture
def invoke(clock: FakeClock) -> Invoke:
    """Run ``mastertrail ARGS`` in-process on the injected clock; ``sleep`` replaces the
    pause between --follow polls."""

    def run(*args: str, sleep: Callable[[float], None] | None = None) -> Result:
        runtime = Runtime(clock=clock) if sleep is None else Runtime(clock=clock, sleep=sleep)
        return CliRunner().invoke(cli, list(args), obj=runtime)

    return run

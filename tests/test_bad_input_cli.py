"""Bad input on the command line: one line on stderr, exit status 2, and the log and the
view byte for byte what they were.

The cases run against one small fleet per backend, shared by the module: every case dumps
the tables before and after itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from mastertrail import Registry
from mastertrail.cli import Runtime, cli
from tests.bad_input_support import (
    HUGE,
    UNREACHABLE,
    Fleet,
    newer_schema_of,
    small_fleet,
    unchanged,
)
from tests.conftest import BACKENDS, FakeClock, Server, server_of


@pytest.fixture(scope="module", params=BACKENDS)
def fleet(
    request: pytest.FixtureRequest,
    servers: dict[str, Server | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """A small fleet on a database of its own per backend, shared by the cases."""
    with small_fleet(str(request.param), servers, tmp_path_factory.mktemp("fleet")) as fleet:
        yield fleet


@pytest.fixture
def newer_schema(registry: Registry) -> Iterator[Registry]:
    """A database with a newer schema revision than this mastertrail knows, holding a
    master; a fresh registry on it."""
    with newer_schema_of(registry) as fresh:
        yield fresh


def invoke(fleet: Fleet, *args: str) -> Result:
    """``mastertrail ARGS`` in-process on the fleet's clock."""
    return CliRunner().invoke(cli, list(args), obj=Runtime(clock=fleet.clock))


def assert_one_line_exit_2(result: Result) -> None:
    """Exit status 2 with one line on stderr and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output


CLI_CASES: list[Any] = [
    pytest.param(("masters", "--as-of", "last tuesday"), id="when-words"),
    pytest.param(("masters", "--as-of", "@-1"), id="when-negative-position"),
    pytest.param(("masters", "--as-of", "@x"), id="when-bad-position"),
    pytest.param(("masters", "--as-of", "2024-13-45T00:00"), id="when-bad-date"),
    pytest.param(("masters", "--as-of", f"@{HUGE}"), id="when-huge-position"),
    pytest.param(("masters", "--as-of", "99999999d ago"), id="when-before-epoch"),
    pytest.param(("history", "nosuch:/srv"), id="history-unknown-name"),
    pytest.param(("history", ""), id="history-empty-name"),
    pytest.param(("history", "alpha:/srv\x00"), id="history-nul"),
    pytest.param(("history", "0"), id="history-id-zero"),
    pytest.param(("history", str(HUGE)), id="history-id-huge"),
    pytest.param(
        ("history", "\u00b2"),
        id="history-superscript-digit",
    ),
    pytest.param(("history", "alpha:/srv", "--since", "soon"), id="history-bad-since"),
    pytest.param(("log", "--after", "-1"), id="log-after-negative"),
    pytest.param(("log", "--after", "abc"), id="log-after-text"),
    pytest.param(("log", "--after", str(HUGE)), id="log-after-huge"),
    pytest.param(("log", "--limit", "0"), id="log-limit-zero"),
    pytest.param(("expire", "--timeout", "-5"), id="expire-negative"),
    pytest.param(("expire", "--timeout", "ten"), id="expire-text"),
    pytest.param(("expire", "--timeout", str(10**12)), id="expire-huge"),
    pytest.param(
        ("--actor", "", "expire", "--timeout", "0", "--force"),
        id="actor-empty",
    ),
    pytest.param(
        ("--actor", "ops\x00", "expire", "--timeout", "0", "--force"),
        id="actor-nul",
    ),
    pytest.param(("timeline", "--out", "picture.txt"), id="timeline-bad-suffix"),
    pytest.param(("replay", "--until", "whenever", "--into", "sqlite://"), id="replay-bad-until"),
    pytest.param(("masters", "--no-such-option"), id="unknown-option"),
    pytest.param(("no-such-command",), id="unknown-command"),
]


class TestCliBadInput:
    @pytest.mark.parametrize("args", CLI_CASES)
    def test_is_one_line_and_exit_2(self, fleet: Fleet, args: tuple[str, ...]) -> None:
        """The bad argument ends the command with one line on stderr and status 2, and
        leaves the log and the view as they were."""
        with unchanged(fleet):
            assert_one_line_exit_2(invoke(fleet, "--db", fleet.url, *args))

    def test_replay_into_itself_is_refused(self, fleet: Fleet) -> None:
        """replay --into the very database it reads is bad input."""
        with unchanged(fleet):
            result = invoke(
                fleet, "--db", fleet.url, "replay", "--until", "@2", "--into", fleet.url
            )
            assert_one_line_exit_2(result)

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("nonsense", id="not-a-url"),
            pytest.param("oracle://scott@db/orcl", id="unsupported"),
            pytest.param("sqlite:///{tmp}/missing.sqlite", id="sqlite-missing-file"),
            pytest.param("sqlite:///{tmp}/no/such/dir.sqlite", id="sqlite-missing-dir"),
            pytest.param(UNREACHABLE["postgresql"], id="postgresql-unreachable"),
            pytest.param(UNREACHABLE["mysql"], id="mysql-unreachable"),
            pytest.param("postgresql://{missing}", id="pg-no-db"),
            pytest.param("mysql://{missing}", id="mysql-no-db"),
        ],
    )
    def test_an_unusable_database_is_one_line_and_exit_2(
        self, url: str, tmp_path: Path, clock: FakeClock, servers: dict[str, Server | str]
    ) -> None:
        """--db naming no usable database ends every command with one line and status 2,
        creating nothing."""
        missing = f"missing_{uuid.uuid4().hex[:8]}"
        for backend in ("postgresql", "mysql"):
            if url.startswith(backend):
                server = server_of(backend, servers)
                if "{missing}" in url:  # a database the configured server does not have
                    url = server.admin_url.set(database=missing).render_as_string(
                        hide_password=False
                    )
        url = url.format(tmp=tmp_path, missing=missing)
        for command in (["masters"], ["log"], ["verify"], ["expire"]):
            result = CliRunner().invoke(cli, ["--db", url, *command], obj=Runtime(clock=clock))
            assert_one_line_exit_2(result)
        assert list(tmp_path.iterdir()) == []

    def test_a_database_without_the_schema_is_one_line_and_exit_2(
        self, db_url: str, clock: FakeClock
    ) -> None:
        """--db naming a database with no mastertrail schema says to run upgrade, with
        status 2, and creates nothing."""
        for command in (["masters"], ["history", "1"], ["log"], ["verify"], ["rebuild"]):
            result = CliRunner().invoke(cli, ["--db", db_url, *command], obj=Runtime(clock=clock))
            assert_one_line_exit_2(result)
            assert "upgrade" in result.stderr
        engine = sa.create_engine(db_url)
        assert sa.inspect(engine).get_table_names() == []
        engine.dispose()

    def test_a_newer_schema_is_one_line_and_exit_2(
        self, newer_schema: Registry, db_url: str, clock: FakeClock
    ) -> None:
        """--db naming a database of a newer schema revision ends with status 2 and one
        line, and leaves it as it was."""
        for command in (["masters"], ["log"], ["verify"], ["rebuild"], ["expire"], ["upgrade"]):
            result = CliRunner().invoke(cli, ["--db", db_url, *command], obj=Runtime(clock=clock))
            assert_one_line_exit_2(result)

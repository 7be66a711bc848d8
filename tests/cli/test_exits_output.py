"""How ``mastertrail`` fails (exit codes, one line, no traceback), where its output goes,
and its progress bars."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from rich.console import Console

from mastertrail import Registry
from mastertrail.cli.app import exit_code_of
from mastertrail.cli.render import Output
from tests.cli_support import (
    ALPHA,
    UNREACHABLE,
    Invoke,
    assert_failed_cleanly,
    json_lines,
)
from tests.conftest import FakeClock


class TestFailures:
    @pytest.mark.parametrize("url", UNREACHABLE)
    @pytest.mark.parametrize(
        "args",
        [["masters"], ["history", "x"], ["log"], ["expire"], ["rebuild"], ["verify"], ["adopt"]],
    )
    def test_unreachable_database_exits_two(
        self, url: str, args: list[str], invoke: Invoke
    ) -> None:
        """A database that cannot be reached exits 2 with one line naming the problem."""
        line = assert_failed_cleanly(invoke("--db", url, *args), 2)
        assert "unavailable" in line

    def test_missing_schema_exits_two(self, db_url: str, invoke: Invoke) -> None:
        """A reachable database without the schema says to run upgrade, exit 2."""
        if db_url.startswith("sqlite"):
            empty = Registry(db_url)
            empty.engine.connect().close()  # an empty file
            empty.close()
        line = assert_failed_cleanly(invoke("--db", db_url, "masters"), 2)
        assert "mastertrail upgrade" in line

    def test_missing_sqlite_file_exits_two_and_creates_nothing(
        self, sqlite_url: str, invoke: Invoke
    ) -> None:
        """A SQLite path that does not exist is bad input; no empty file is left behind."""
        line = assert_failed_cleanly(invoke("--db", sqlite_url, "masters"), 2)
        assert "upgrade" in line
        assert not Path(sa.make_url(sqlite_url).database or "").exists()

    @pytest.mark.parametrize("url", ["not a url", "oracle://x/y", "postgresql+nodriver://x/y"])
    def test_unusable_url_exits_two(self, url: str, invoke: Invoke) -> None:
        """A URL that names no usable database exits 2 with one line."""
        assert "database URL" in assert_failed_cleanly(invoke("--db", url, "masters"), 2)

    def test_unknown_command_and_missing_argument_exit_two(self, invoke: Invoke) -> None:
        """Usage errors are one line too."""
        assert_failed_cleanly(invoke("frobnicate"), 2)
        assert_failed_cleanly(invoke("history"), 2)

    def test_exit_codes_of_registry_errors(self) -> None:
        """Bad input and an unusable database map to 2, other registry errors to 1."""
        from mastertrail import (
            ConcurrencyError,
            InvalidArgument,
            SchemaMissing,
            StoreUnavailable,
        )

        assert exit_code_of(InvalidArgument("x", "is bad", 1)) == 2
        assert exit_code_of(StoreUnavailable("down")) == 2
        assert exit_code_of(SchemaMissing("none")) == 2
        assert exit_code_of(ConcurrencyError(1, 2, 3)) == 1


class TestOutputStreams:
    def test_logs_go_to_stderr_never_to_json_stdout(
        self, sqlite_url: str, invoke: Invoke, clock: FakeClock
    ) -> None:
        """With --verbose, structlog writes JSON lines to stderr; stdout stays pure JSON."""
        invoke("--db", sqlite_url, "upgrade")
        registry = Registry(sqlite_url, clock=clock)
        master_id = registry.find_master_id(ALPHA)
        registry.set_master_state(master_id, True)
        registry.close()
        clock.advance(3600)
        result = invoke("--db", sqlite_url, "-v", "--json", "expire")
        assert result.exit_code == 0, result.output
        assert [r["name"] for r in json_lines(result)] == [ALPHA]
        logged = [json.loads(line) for line in result.stderr.splitlines()]
        assert logged
        assert all("event" in entry for entry in logged)
        assert any("expire" in entry["event"] for entry in logged)

    def test_quiet_by_default(self, sqlite_url: str, invoke: Invoke) -> None:
        """Without --verbose, a successful command logs nothing."""
        result = invoke("--db", sqlite_url, "upgrade")
        assert result.exit_code == 0
        assert result.stderr == ""

    def test_logging_configuration_is_restored(self, sqlite_url: str, invoke: Invoke) -> None:
        """The command configures structlog only while it runs."""
        before = structlog.get_config()
        invoke("--db", sqlite_url, "-v", "upgrade")
        assert structlog.get_config() == before


class TestProgress:
    def test_drawn_on_a_terminal(self) -> None:
        """On a terminal, the progress callback draws a bar."""
        screen = io.StringIO()
        output = Output(json_mode=False, console=Console(file=screen, force_terminal=True))
        with output.progress("replaying") as progress:
            progress(5, 10)
        assert "replaying" in screen.getvalue()

    def test_silent_elsewhere(self) -> None:
        """Written to a file or a pipe, no progress is drawn."""
        screen = io.StringIO()
        output = Output(json_mode=False, console=Console(file=screen, force_terminal=False))
        with output.progress("replaying") as progress:
            progress(5, 10)
        assert screen.getvalue() == ""

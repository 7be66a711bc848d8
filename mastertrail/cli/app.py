"""The ``mastertrail`` command group: the options every command shares, the runtime the
commands draw on, and how a failure ends (one line on stderr, an exit code, no traceback).

Exit codes: 0 on success, 1 when ``verify`` finds problems (or an unexpected database
error), 2 on bad input or a database that cannot be reached or has no schema.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import click
import sqlalchemy as sa
import structlog

import eventstore
from eventstore import (
    ArchiveUnavailable,
    InvalidArgument,
    RegistryError,
    SchemaMissing,
    SchemaTooNew,
    StoreUnavailable,
)
from mastertrail.cli.render import Output
from mastertrail.registry import Registry
from mastertrail.when import SPELLINGS, When, parse_when

DEFAULT_DB = "sqlite:///mastertrail.sqlite"


@attrs.define
class Runtime:
    """What the commands share: the options, the lazily opened registry, and the clock and
    sleep they use (injected by tests)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    db: str = DEFAULT_DB
    actor: str | None = None
    archive: str | None = None
    json: bool = False
    verbose: bool = False
    _registry: Registry | None = None

    def now(self) -> dt.datetime:
        """The current time by the runtime's clock, aware UTC."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def registry(self, *, create: bool = False) -> Registry:
        """The registry on ``--db``, opened on first use and closed when the command ends.

        A SQLite file that does not exist is created only with ``create``; otherwise it is
        bad input (a mistyped path would leave an empty file behind).
        """
        if self._registry is None:
            self._registry = open_registry(
                self.db, clock=self.clock, actor=self.actor, create=create, archive=self.archive
            )
        return self._registry

    def output(self, json_flag: bool = False) -> Output:
        """Where a command prints: JSON lines or tables."""
        return Output(json_mode=self.json or json_flag)

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def open_registry(
    url: str,
    *,
    clock: Callable[[], float] = time.time,
    actor: str | None = None,
    create: bool = False,
    archive: str | None = None,
) -> Registry:
    """A registry on ``url``; a URL that names no usable database is bad input, and so is
    a SQLite file that does not exist unless ``create``. ``archive``: the directory the
    archive's segments moved to (None: where the database recorded them)."""
    try:
        registry = Registry(url, clock=clock, actor=actor, archive_dir=archive)
    except (sa.exc.ArgumentError, ValueError, ImportError) as error:
        raise click.UsageError(f"cannot use database URL {redact(url)!r}: {error}") from error
    database = registry.engine.url.database
    if (
        not create
        and database
        and not database.startswith("file:")
        and eventstore.missing_sqlite_file(registry.engine) is not None
    ):
        registry.close()
        raise click.UsageError(
            f"there is no database at {database}: create it with `mastertrail --db "
            f"{redact(url)} upgrade`"
        )
    return registry


def redact(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


if TYPE_CHECKING:  # click 8.5 types ParamType by its value; older clicks do not subscript
    _WhenParam = click.ParamType[When]
else:
    _WhenParam = click.ParamType


class WhenType(_WhenParam):
    """A WHEN on the command line (see :mod:`mastertrail.when`), relative to the runtime's
    clock."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> When:
        if isinstance(value, dt.datetime | int):
            return value
        runtime = ctx.find_object(Runtime) if ctx is not None else None
        now = runtime.now() if runtime is not None else None
        try:
            return parse_when(str(value), now=now)
        except InvalidArgument as error:
            if error.reason.startswith("must be"):
                self.fail(f"{value!r} is not a WHEN: use {SPELLINGS}", param, ctx)
            self.fail(f"{value!r} {error.reason}", param, ctx)


WHEN = WhenType()


class MastertrailGroup(click.Group):
    """A click group whose failures end with one line and an exit code, never a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        saved = structlog.get_config()
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as error:
            prefix = (
                error.ctx.command_path
                if isinstance(error, click.UsageError) and error.ctx
                else None
            )
            _fail(error.format_message(), error.exit_code, prefix)
        except click.Abort:
            _fail("interrupted", 130)
        except RegistryError as error:
            _fail(str(error), exit_code_of(error))
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            _fail(f"database error: {error.orig or error}", 2)
        except sa.exc.SQLAlchemyError as error:
            _fail(f"database error: {error}", 1)
        finally:
            structlog.configure(**saved)
        code = result if isinstance(result, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def exit_code_of(error: RegistryError) -> int:
    """2 for bad input and a database (or an archive segment) that cannot be used, 1 for
    anything else."""
    bad = (StoreUnavailable, SchemaMissing, SchemaTooNew, ArchiveUnavailable, TypeError, ValueError)
    return 2 if isinstance(error, bad) else 1


def _fail(message: str, exit_code: int, prefix: str | None = None) -> NoReturn:
    line = (message.strip().splitlines() or ["failed"])[0]
    click.echo(f"{prefix or 'mastertrail'}: error: {line}", err=True)
    sys.exit(exit_code)


def configure_logging(*, verbose: bool) -> None:
    """structlog to stderr: a console renderer on a terminal, JSON lines otherwise; INFO with
    ``--verbose``, warnings only without."""
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.WARNING
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    # Resolved per call, so a replaced sys.stderr (tests, redirection) is honoured.
    return structlog.PrintLogger(sys.stderr)


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on a command: one JSON object per line on stdout."""
    return click.option(
        "--json", "json_flag", is_flag=True, help="Print one JSON object per line."
    )(function)


@click.group(cls=MastertrailGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    envvar="MASTERTRAIL_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database URL (SQLite, PostgreSQL or MySQL/MariaDB); or set MASTERTRAIL_DB.",
)
@click.option("--actor", metavar="NAME", help="Who acts, recorded in events (default host:pid).")
@click.option(
    "--archive",
    metavar="DIR",
    envvar="MASTERTRAIL_ARCHIVE",
    help="Where the archive's segments are, when they moved from where they were written; "
    "or set MASTERTRAIL_ARCHIVE.",
)
@click.option("--json", "json_flag", is_flag=True, help="Print one JSON object per line.")
@click.option("-v", "--verbose", is_flag=True, help="Log every command's outcome to stderr.")
@click.version_option(package_name="mastertrail")
@click.pass_context
def cli(
    ctx: click.Context,
    db: str,
    actor: str | None,
    archive: str | None,
    json_flag: bool,
    verbose: bool,
) -> None:
    """mastertrail: the audit trail of a Buildbot master fleet.

    Every registration, check-in and state change of the masters is an event in an
    append-only, hash-chained log; the masters table is folded from it.

    WHEN is an ISO 8601 time (UTC unless it has an offset), a relative time such as
    'now' or '2h ago', or a log position such as '@1234'.

    Exit status: 0 on success, 1 when verify finds problems, 2 on bad input or a
    database that cannot be reached.
    """
    runtime = ctx.ensure_object(Runtime)
    runtime.db, runtime.actor, runtime.json, runtime.verbose = db, actor, json_flag, verbose
    runtime.archive = archive
    configure_logging(verbose=verbose)
    ctx.call_on_close(runtime.close)


__all__ = ["WHEN", "Runtime", "cli", "exit_code_of", "json_option", "open_registry", "redact"]

"""Buildbot's real DB connector, with its thread pool, on the real Twisted reactor.

A :class:`BenchMaster` stands in for ``BuildMaster`` with exactly what the connector
and its components use: the reactor, the master's name, its base directory and the
cache manager. The connector is Buildbot's own ``DBConnector``; its schema is created by
Buildbot's own ``model.upgrade()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import structlog
from buildbot.config.master import DBConfig
from buildbot.db.connector import DBConnector
from buildbot.process.cache import CacheManager
from twisted.internet import defer
from twisted.python.failure import Failure

import mastertrail.buildbot
from bench.clock import MinuteReactor

T = TypeVar("T")


class BenchMaster:
    """What a ``DBConnector`` needs of its master. Its reactor is the real one, with the
    time of a heartbeat period between readings (see :mod:`bench.clock`)."""

    def __init__(self, reactor: Any, name: str, basedir: Path) -> None:
        self.reactor = MinuteReactor(reactor)
        self.name = name
        self.basedir = str(basedir)
        self.caches = CacheManager()
        self.config = None


async def open_connector(
    reactor: Any, db_url: str, basedir: Path, *, mastertrail_component: bool, name: str
) -> Any:
    """A started Buildbot DB connector on ``db_url`` with an up-to-date Buildbot schema,
    whose ``masters`` component is mastertrail's (``install()``) or Buildbot's own."""
    basedir.mkdir(parents=True, exist_ok=True)
    db = DBConnector(str(basedir))
    db.configured_db_config = DBConfig(db_url)
    if mastertrail_component:
        mastertrail.buildbot.install()
    try:
        await db.set_master(BenchMaster(reactor, name, basedir))
    finally:
        mastertrail.buildbot.uninstall()
    await db.setup(check_version=False, verbose=False)
    await db.model.upgrade()
    return db


async def close_connector(db: Any) -> None:
    """Stop the connector's thread pool (disposing of its engine), and close the connection
    mastertrail's component keeps open on SQLite: nothing of it stays on the database."""
    release = getattr(db.masters, "release", None)  # Buildbot's own component has none
    if release is not None:
        release()
    await db.pool.stop()


def run_on_reactor(main: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(reactor)`` on the real reactor until it finishes; return its result."""
    from twisted.internet import reactor as installed

    reactor: Any = installed
    outcome: list[Any] = []

    def finish(result: object) -> None:
        outcome.append(result)
        reactor.stop()

    def start() -> None:
        defer.ensureDeferred(main(reactor)).addBoth(finish)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)  # Ctrl-C raises where it lands
    if not outcome:  # stopped from outside: interrupted
        raise KeyboardInterrupt
    result: T = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def quiet_logging(log_path: Path) -> None:
    """Log as a production master would (JSON lines at INFO), into ``log_path``, so that the
    cost of mastertrail's log line per command is measured but not printed."""
    stream = open(log_path, "a")  # noqa: SIM115 - kept open for the process
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )

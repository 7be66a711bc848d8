"""The Buildbot drop-in: mastertrail as Buildbot's masters connector component.

The only module of mastertrail that imports Twisted or Buildbot. Enable it with two lines
near the top of ``buildbot.tac``, before the ``BuildMaster`` is created::

    import mastertrail.buildbot
    mastertrail.buildbot.install()

Every call runs on Buildbot's DB thread pool, with Buildbot's engine (on a SQLite file,
on a connection the component keeps open; on MariaDB, on connections of its own lent
without Buildbot's ``SELECT 1``), in one transaction; time comes from
``master.reactor.seconds()`` and the actor of every event is this master's name.
Buildbot's ``masters`` table is the view. The log's tables are created in Buildbot's
database on first use, and rows found there without history are adopted.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from buildbot.db import base
from buildbot.db import masters as buildbot_masters
from buildbot.util import epoch2datetime
from buildbot.util.service import BuildbotService
from twisted.internet import defer, task, threads
from twisted.python import log

from commands import validate
from eventstore import (
    ArchiveReport,
    InvalidArgument,
    InvalidArgumentType,
    StoreUnavailable,
    create_engine,
    reading,
    route_logs,
    storage_engine,
    translate_errors,
)
from mastertrail.registry import Registry
from projections import view

T = TypeVar("T")

_buildbot_component = buildbot_masters.MastersConnectorComponent

#: The clock and the pause of the component's retries (tests replace them).
monotonic: Callable[[], float] = time.monotonic
pause: Callable[[float], None] = time.sleep


def install() -> None:
    """Make every Buildbot DB connector created from now on build this component, and
    send mastertrail's log lines to Twisted's log."""
    buildbot_masters.MastersConnectorComponent = MastersConnectorComponent
    route_logs(TwistedLog())


def uninstall() -> None:
    """Give Buildbot back its own masters connector component (and mastertrail's log lines
    back to the standard library's ``logging``)."""
    buildbot_masters.MastersConnectorComponent = _buildbot_component
    route_logs(None)


class TwistedLog:
    """A :class:`eventstore.LogSink` writing to Twisted's log (``twistd.log`` in a
    buildmaster), which puts its own time stamp on each line."""

    def debug(self, line: str) -> None:
        log.msg(f"mastertrail: {line}")

    def info(self, line: str) -> None:
        log.msg(f"mastertrail: {line}")

    def warning(self, line: str) -> None:
        log.msg(f"mastertrail: warning: {line}")

    def error(self, line: str) -> None:
        log.msg(f"mastertrail: error: {line}")


class MastersConnectorComponent(base.DBConnectorComponent):  # type: ignore[misc]
    """Buildbot's ``MastersConnectorComponent``, event-sourced by mastertrail."""

    data2db: ClassVar[dict[str, str]] = {"masterid": "id", "link": "id"}

    def __init__(self, connector: Any) -> None:
        super().__init__(connector)
        route_logs(TwistedLog())
        self._registry: Registry | None = None
        self._kept: sa.Engine | None = None
        self._ready = defer.DeferredLock()

    # -- the five operations of buildbot.db.masters ------------------------------------------

    def findMasterId(self, name: str) -> defer.Deferred[int]:
        async def run() -> int:
            validate.master_name(name)
            registry = self._registry or await self._ensure_registry()
            # A known name is a read, on a connection of Buildbot's pool as getMaster's;
            # only a new name takes the registering command.
            known: int | None = await self._read("findMasterId", view.find_id, name)
            if known is not None:
                return known
            found: int = await self.db.pool.do_with_engine(
                lambda _engine: self._retrying(
                    "findMasterId", lambda: registry.find_master_id(name)
                )
            )
            return found

        return defer.ensureDeferred(run())

    def setMasterState(self, masterid: int, active: bool) -> defer.Deferred[bool]:
        return self._call(
            "setMasterState",
            lambda: (validate.master_id(masterid), validate.active_flag(active)),
            lambda registry: registry.set_master_state(masterid, active),
        )

    def getMaster(self, masterid: int) -> defer.Deferred[Any]:
        return self._call(
            "getMaster", lambda: validate.master_id(masterid), None, _master_rows, masterid
        )

    def getMasters(self) -> defer.Deferred[list[Any]]:
        return self._call("getMasters", lambda: None, None, _master_rows)

    def setAllMastersActiveLongTimeAgo(self) -> defer.Deferred[None]:
        return self._call(
            "setAllMastersActiveLongTimeAgo",
            lambda: None,
            lambda registry: registry.set_all_masters_active_long_time_ago(),
        )

    def calls_engine(self) -> sa.Engine:
        """The engine the component's calls run on: its own on a SQLite file or MariaDB
        (see ``_kept_engine``), or Buildbot's."""
        return self._kept or self.db.pool.engine

    def release(self) -> None:
        """Close the engine of the component's own (see ``_kept_engine``) and its
        connections, as the reactor's shutdown does: for a DB connector stopped while the
        reactor runs on. Reads and writes go on through Buildbot's own connections."""
        if self._kept is not None:
            self._kept.dispose()
            self._kept = None
            self._registry = self._registry_on(self.db.pool.engine)

    # -- plumbing ----------------------------------------------------------------------------

    def _call(
        self,
        what: str,
        check: Callable[[], object],
        command: Callable[[Registry], T] | None,
        query: Callable[..., T] | None = None,
        *args: Any,
    ) -> defer.Deferred[T]:
        """Check the arguments in the reactor thread (bad input fails the Deferred with a
        typed error and never reaches the DB pool), then run ``command`` through the
        registry, or the view ``query`` on a connection of Buildbot's pool as Buildbot's own
        component does."""

        async def run() -> T:
            check()
            registry = self._registry or await self._ensure_registry()
            if command is not None:
                done: T = await self.db.pool.do_with_engine(
                    lambda _engine: self._retrying(what, lambda: command(registry))
                )
                return done
            assert query is not None
            return await self._read(what, query, *args)

        return defer.ensureDeferred(run())

    async def _read(self, what: str, query: Callable[..., T], *args: Any) -> T:
        """``query(conn, *args)`` on a connection of the component's own engine (see
        ``_kept_engine``) or of Buildbot's pool, retried as a command is when the database
        is unavailable."""

        def read(engine: sa.Engine) -> T:
            if self._kept is None:
                with translate_errors(), engine.connect() as conn:
                    return query(conn, *args)
            with translate_errors(), reading(self._kept) as conn:
                return query(conn, *args)

        found: T = await self.db.pool.do_with_engine(
            lambda engine: self._retrying(what, lambda: read(engine))
        )
        return found

    def _retrying(self, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation`` (in a thread of Buildbot's DB pool) and, while the database is
        unavailable (locked, a connection dropped, a server restarting), run it again on
        the schedule and within the bound of Buildbot's own pool for its SQL errors: a
        pause of ``BACKOFF_START`` seconds growing by ``BACKOFF_MULT``, for at most
        ``MAX_OPERATIONALERROR_TIME`` seconds. A command is safe to run again: a write
        whose commit was lost with its connection is found in the log, not appended twice
        (:func:`commands.retry.run`). The first time a call finds its connection closed by
        the server (a restart, a killed session), it runs again at once: the pool has
        dropped that connection and every one it held from before (see ``_kept_mysql``).
        """
        pool = self.db.pool
        started = monotonic()
        wait = float(pool.BACKOFF_START)
        reconnected = False
        while True:
            try:
                return operation()
            except StoreUnavailable as error:
                if not reconnected and _connection_lost(error):
                    reconnected = True
                    log.msg(f"mastertrail: retrying {what} at once after: {error}")
                    continue
                if monotonic() - started > pool.MAX_OPERATIONALERROR_TIME:
                    raise
                log.msg(f"mastertrail: retrying {what} in {wait:.1f} s after: {error}")
                pause(wait)
                wait *= pool.BACKOFF_MULT

    async def _ensure_registry(self) -> Registry:
        """Create the log's tables and adopt rows with no history through Buildbot's engine
        the first time (once per process; safe across processes), then build the registry
        on the component's own engine (see ``_kept_engine``), or on Buildbot's."""
        async with self._ready:
            if self._registry is None:
                registry = self._registry_on(self.db.pool.engine)
                await self.db.pool.do_with_engine(
                    lambda _engine: self._retrying("upgrade", registry.upgrade)
                )
                engine_name = await self.db.pool.do(_masters_storage_engine)
                if engine_name not in (None, "InnoDB"):
                    log.msg(
                        f"mastertrail: the masters table uses {engine_name}, which has no "
                        "transactions; the log and the view can only be kept atomic on "
                        "InnoDB (add ?storage_engine=InnoDB to the database URL)"
                    )
                self._kept = _kept_engine(self.db.pool.engine, self.db.master.reactor)
                self._registry = registry if self._kept is None else self._registry_on(self._kept)
        return self._registry

    def _registry_on(self, engine: sa.Engine) -> Registry:
        return Registry(engine, clock=self.db.master.reactor.seconds, actor=self.db.master.name)


def _kept_engine(engine: sa.Engine, reactor: Any) -> sa.Engine | None:
    """The engine of the component's own for its calls beside Buildbot's ``engine``, closed
    when the reactor shuts down: on a SQLite file (:func:`_kept_sqlite`) or MySQL/MariaDB
    (:func:`_kept_mysql`); None on PostgreSQL and in-memory SQLite, where Buildbot's
    engine costs nothing more."""
    kept = _kept_sqlite(engine) or _kept_mysql(engine)
    if kept is not None:
        reactor.addSystemEventTrigger("during", "shutdown", kept.dispose)
    return kept


def _kept_mysql(engine: sa.Engine) -> sa.Engine | None:
    """On MySQL/MariaDB, an engine of the component's own on Buildbot's database, whose
    pooled connections are lent without a ping; None elsewhere.

    Buildbot's MySQL engine sends ``SELECT 1`` on every connection it lends, to find one
    the server closed: one round trip of two in a heartbeat, and of two in a read. This
    engine's connections go to a call as they are; one the server has closed since its
    last use (a restart, a killed session, ``wait_timeout``) fails that call with
    :class:`StoreUnavailable`, and the pool drops it with every connection it held from
    before, so :meth:`MastersConnectorComponent._retrying` runs the call again at once on
    a new connection. Connections are recycled after Buildbot's ``max_idle`` (its
    ``pool_recycle``), speak utf8mb4, and are set up as the log needs when they connect
    (:func:`eventstore.create_engine`). The pool opens a connection only for calls that
    run at once: usually one, beside Buildbot's own. Only where Buildbot's engine uses
    PyMySQL, the driver mastertrail installs and is tested with; with another
    (``mysqlclient``, which a URL without a driver names), the calls stay on Buildbot's
    engine.
    """
    url = engine.url
    if url.get_backend_name() not in ("mysql", "mariadb") or url.get_driver_name() != "pymysql":
        return None
    recycle = getattr(engine.pool, "_recycle", -1)  # Buildbot's max_idle
    if isinstance(recycle, int) and recycle > 0:
        url = url.update_query_dict({"max_idle": str(recycle)})
    return create_engine(url, ping=False)


def _kept_sqlite(engine: sa.Engine) -> sa.Engine | None:
    """On a SQLite file behind Buildbot's ``NullPool``, an engine of the component's own on
    the same file, whose one connection stays open (idle, in no transaction) until the
    reactor shuts down, for the component's reads and writes; None elsewhere.

    ``NullPool`` closes the connection after every call, and SQLite checkpoints the whole
    write-ahead log into the database file, and syncs it, when the last connection that
    has read the database closes: every call of every component paid for a checkpoint.
    With this connection open, SQLite checkpoints as it does in any long-running program,
    every 1,000 pages of log. The component's calls use it too, in Buildbot's database
    thread as before: a read or a heartbeat then opens no file and parses no schema
    (Buildbot's tables, the log's tables and their guards) as a new connection does. Its
    writes begin ``IMMEDIATE`` and wait for SQLite's lock as long as the engine's busy
    timeout. A database file replaced under the running master (a new file moved into its
    place) is opened again.
    """
    url = engine.url
    path = url.database
    if url.get_backend_name() != "sqlite" or path in (None, "", ":memory:"):
        return None
    if not isinstance(engine.pool, sa.pool.NullPool):
        return None
    kept = create_engine(url)

    @sa.event.listens_for(kept, "connect")
    def _remember_file(_dbapi_connection: Any, record: Any) -> None:
        record.info["file"] = _file_identity(path)

    @sa.event.listens_for(kept, "checkout")
    def _same_file(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("file") != _file_identity(path):
            raise sa.exc.DisconnectionError(f"{path} was replaced")

    with reading(kept) as conn:
        conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()  # opens the log
    return kept


def _connection_lost(error: BaseException) -> bool:
    """Whether ``error`` came from a connection the server had closed (SQLAlchemy
    invalidated it and the pool's older connections)."""
    cause: BaseException | None = error
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, sa.exc.DBAPIError) and cause.connection_invalidated:
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _file_identity(path: str) -> tuple[int, int] | None:
    """The device and inode of the file at ``path`` (None when there is none)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _masters_storage_engine(conn: Any) -> str | None:
    """The MySQL/MariaDB storage engine of ``masters`` (None on other databases)."""
    return storage_engine(conn, "masters")


def _master_rows(conn: Any, master_id: int | None = None) -> Any:
    """Buildbot's own ``MasterModel`` of one master (or None), or of every master."""
    models = [
        buildbot_masters.MasterModel(
            id=id_, name=name, active=active, last_active=epoch2datetime(last_active)
        )
        for id_, name, active, last_active in view.read_rows(conn, master_id)
    ]
    if master_id is None:
        return models
    return models[0] if models else None


# -- anchors taken by the buildmaster ------------------------------------------------------


def anchorer(*, every: float = 3600, to: str | os.PathLike[str] | None = None) -> Anchorer:
    """A service for ``c['services']`` that takes an anchor of the log every ``every``
    seconds (and once at start) and appends it to the file ``to`` as one JSON line, or,
    without ``to``, writes it to the buildmaster's own log (``twistd.log``). Needs
    :func:`install`."""
    return Anchorer(every=every, to=to)


class Anchorer(BuildbotService):  # type: ignore[misc]
    """See :func:`anchorer`. A failed anchor (a database down, a file not writable) is
    logged and the next one is taken on time."""

    name = "mastertrail-anchorer"
    _loop: task.LoopingCall | None = None

    def checkConfig(self, every: float = 3600, to: str | os.PathLike[str] | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int | float):
            raise InvalidArgumentType("every", "a number of seconds", every)
        if not every > 0:
            raise InvalidArgument("every", "must be a positive number of seconds", every)
        if to is not None and not isinstance(to, str | os.PathLike):
            raise InvalidArgumentType("to", "a file path or None", to)

    def reconfigService(
        self, every: float = 3600, to: str | os.PathLike[str] | None = None
    ) -> defer.Deferred[None]:
        self.every, self.to = every, to
        if self.running:
            self._start()
        return defer.succeed(None)

    def startService(self) -> defer.Deferred[None]:
        started: defer.Deferred[None] = super().startService()
        started.addCallback(lambda _: self._start())
        return started

    def stopService(self) -> defer.Deferred[None]:
        self._stop()
        stopped: defer.Deferred[None] = super().stopService()
        return stopped

    def _start(self) -> None:
        self._stop()
        loop = task.LoopingCall(lambda: defer.ensureDeferred(self._take()))
        loop.clock = self.master.reactor
        loop.start(self.every, now=True)
        self._loop = loop

    def _stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    async def _take(self) -> None:
        try:
            component = self.master.db.masters
            if not isinstance(component, MastersConnectorComponent):
                raise RuntimeError("mastertrail.buildbot.install() was not called")
            registry = component._registry or await component._ensure_registry()
            to = self.to
            line: str = await self.master.db.pool.do_with_engine(
                lambda _engine: _anchor_to(registry, to)
            )
            if to is None:
                log.msg(f"mastertrail anchor: {line}")
        except Exception as error:  # logged; the next anchor is taken on time
            log.msg(f"mastertrail: taking an anchor failed: {type(error).__name__}: {error}")


def _anchor_to(registry: Registry, to: str | os.PathLike[str] | None) -> str:
    """Take an anchor and append it to ``to`` (synced to disk); its JSON line."""
    line = registry.anchor().to_json()
    if to is not None:
        with open(to, "a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
    return line


# -- the archive sealed by the buildmaster, like Buildbot's janitor ----------------------------


def archiver(
    *,
    horizon: dt.timedelta = dt.timedelta(days=30),
    to: str | os.PathLike[str] = "archive",
    hour: int = 3,
    minute: int = 0,
) -> Archiver:
    """A service for ``c['services']`` that, every day at ``hour``:``minute`` UTC, moves
    the events older than ``horizon`` out of the log into sealed segment files in the
    directory ``to`` (relative to the buildmaster's base directory), as
    :meth:`Registry.archive <mastertrail.Registry.archive>` does. It bounds the log as
    Buildbot's ``JanitorConfigurator`` bounds logs and build data. Needs :func:`install`."""
    return Archiver(horizon=horizon, to=to, hour=hour, minute=minute)


class Archiver(BuildbotService):  # type: ignore[misc]
    """See :func:`archiver`. It archives in a thread of the reactor's pool, not Buildbot's
    database thread: each segment is its own short transaction, so the buildmaster's own
    database calls (heartbeats) go on between them. A failed run is logged; the next runs
    the next day (and finishes what it left)."""

    name = "mastertrail-archiver"
    _call: Any = None
    _running = False

    def checkConfig(
        self,
        horizon: dt.timedelta = dt.timedelta(days=30),
        to: str | os.PathLike[str] = "archive",
        hour: int = 3,
        minute: int = 0,
    ) -> None:
        if not isinstance(horizon, dt.timedelta):
            raise InvalidArgumentType("horizon", "a datetime.timedelta", horizon)
        if horizon <= dt.timedelta(0):
            raise InvalidArgument("horizon", "must be positive", horizon)
        if not isinstance(to, str | os.PathLike):
            raise InvalidArgumentType("to", "a directory path", to)
        if not os.fspath(to):
            raise InvalidArgument("to", "must name a directory", to)
        for argument, value, top in (("hour", hour, 23), ("minute", minute, 59)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgumentType(argument, "an int", value)
            if not 0 <= value <= top:
                raise InvalidArgument(argument, f"must be 0 to {top}", value)

    def reconfigService(
        self,
        horizon: dt.timedelta = dt.timedelta(days=30),
        to: str | os.PathLike[str] = "archive",
        hour: int = 3,
        minute: int = 0,
    ) -> defer.Deferred[None]:
        self.horizon, self.to, self.hour, self.minute = horizon, to, hour, minute
        if self.running:
            self._schedule()
        return defer.succeed(None)

    def startService(self) -> defer.Deferred[None]:
        started: defer.Deferred[None] = super().startService()
        started.addCallback(lambda _: self._schedule())
        return started

    def stopService(self) -> defer.Deferred[None]:
        self._cancel()
        stopped: defer.Deferred[None] = super().stopService()
        return stopped

    def _schedule(self) -> None:
        self._cancel()
        now = self.master.reactor.seconds()
        self._call = self.master.reactor.callLater(
            next_run(now, self.hour, self.minute) - now, self._fire
        )

    def _cancel(self) -> None:
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _fire(self) -> None:
        self._call = None
        finished = defer.ensureDeferred(self.run())
        finished.addBoth(lambda _: self._schedule() if self.running else None)

    async def run(self) -> ArchiveReport | None:
        """Archive now (what the daily run does); None when a run is already going, or
        failed (logged)."""
        if self._running:
            return None
        self._running = True
        try:
            component = self.master.db.masters
            if not isinstance(component, MastersConnectorComponent):
                raise RuntimeError("mastertrail.buildbot.install() was not called")
            registry = component._registry or await component._ensure_registry()
            reactor = self.master.reactor
            before = dt.datetime.fromtimestamp(reactor.seconds(), dt.UTC) - self.horizon
            to = os.path.join(self.master.basedir, self.to)
            report: ArchiveReport = await threads.deferToThreadPool(
                reactor, reactor.getThreadPool(), registry.archive, before=before, to=to
            )
            log.msg(
                f"mastertrail archive: sealed {report.events} events in {report.segments} "
                f"segment(s) ({report.bytes} bytes) into {to}; the archive holds positions "
                f"1..{report.through}"
            )
            return report
        except Exception as error:  # logged; the next run is the next day
            log.msg(f"mastertrail: archiving failed: {type(error).__name__}: {error}")
            return None
        finally:
            self._running = False


def next_run(now: float, hour: int, minute: int) -> float:
    """The first POSIX time after ``now`` at ``hour``:``minute`` UTC."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    at = today if today.timestamp() > now else today + dt.timedelta(days=1)
    return at.timestamp()


# -- the web page as a dashboard of Buildbot's www (mastertrail/buildbot_dashboard.py) ------


def dashboard(**options: Any) -> dict[str, Any]:
    """The ``c['www']['plugins']['wsgi_dashboards']`` entry of the mastertrail page (name
    ``mastertrail``, caption "Masters trail"); see :mod:`mastertrail.buildbot_dashboard`."""
    from mastertrail.buildbot_dashboard import dashboard as build_dashboard

    return build_dashboard(**options)

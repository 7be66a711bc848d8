"""``Registry``: the composition root wiring the log, the commands and the view to one
database. Nothing is built at import time, and nothing touches the database until a
method is called."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import commands
import eventstore
from commands import Actor, Now, Outcome, validate
from commands.known import KnownState
from eventstore import (
    Anchor,
    ArchiveReport,
    Head,
    InvalidArgument,
    InvalidArgumentType,
    RecordedEvent,
    SchemaMissing,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    begin_write,
    from_micros,
    given_anchors,
    isolated_engine,
    log,
    missing_sqlite_file,
    reading,
    restore_head,
    schema_lock,
    seal,
    take_anchor,
    to_micros,
    translate_errors,
)
from projections import (
    MasterModel,
    Problem,
    VerifyReport,
    archived,
    latest,
    queries,
    verifications,
    view,
)
from projections.rebuild import rebuild as rebuild_view
from projections.rebuild import verify as verify_view
from projections.snapshots import fold_snapshots


def system_clock() -> float:
    """``time.time()``, looked up at every call (so a frozen or patched clock applies)."""
    return time.time()


Progress = Callable[[int, int], None]


class Registry:
    """An event-sourced registry of Buildbot masters on one database.

    ``db`` is a SQLAlchemy URL or Engine; ``clock`` returns POSIX seconds (read once per
    command); ``actor`` names who acts in the events' metadata (default ``<host>:<pid>``);
    ``archive_dir`` is the directory the archive's segments moved to (default: the
    ``MASTERTRAIL_ARCHIVE`` environment variable, else where the database recorded each).
    """

    def __init__(
        self,
        db: str | sa.URL | Engine,
        *,
        clock: Callable[[], float] = system_clock,
        actor: str | None = None,
        archive_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not callable(clock):
            raise InvalidArgumentType("clock", "a callable returning POSIX seconds", clock)
        if actor is not None:
            actor = validate.actor(actor, "actor")
        # An engine made elsewhere (Buildbot's) runs mastertrail's transactions at the
        # isolation level the log needs, whatever the database's default.
        self.engine = isolated_engine(
            db if isinstance(db, Engine) else eventstore.create_engine(db)
        )
        self.clock = clock
        self.actor = Actor() if actor is None else Actor(name=actor)
        if archive_dir is not None and not isinstance(archive_dir, str | os.PathLike):
            raise InvalidArgumentType("archive_dir", "a directory path", archive_dir)
        self.archive_dir = archive_dir
        self._schema_checked = False
        self._known = KnownState()

    # -- schema ------------------------------------------------------------------------------

    def upgrade(self) -> list[MasterModel]:
        """Create or migrate the schema (log and view) and adopt rows with no history;
        returns the masters adopted. Idempotent, and safe when several processes run it at
        once."""
        eventstore.upgrade(self.engine)
        # The log's schema lock, not the head row: MariaDB's DDL commits implicitly, which
        # would release a row lock before a concurrent creator's inspection of the table.
        with translate_errors(), schema_lock(self.engine) as conn:
            begin_write(conn)
            view.create(conn)
            restored = restore_head(conn, only_if_missing=True)
        self._schema_checked = True
        _log_restored(restored)
        return self.adopt()

    # -- the five Buildbot operations --------------------------------------------------------

    def find_master_id(self, name: str) -> int:
        """The id of the master ``name``; a new name is registered, inactive."""
        name = validate.master_name(name)
        now = Now.read(self.clock)
        with self._read() as conn:  # the usual case: a known name, no write transaction
            known = view.find_id(conn, name)
        if known is not None:
            log.debug("master_found", master_id=known, name=name, actor=self.actor.name)
            return known
        outcome = self._write(
            lambda conn: commands.find_master_id_attempt(conn, self.actor, name, now)
        )
        self._log("master_registered" if outcome.positions else "master_found", outcome)
        return outcome.state.id

    def set_master_state(self, masterid: int, active: bool) -> bool:
        """Mark a master active (moving ``last_active`` to now) or inactive (deleting its
        links); True iff the state changed. An unknown id returns False, writing nothing."""
        masterid = validate.master_id(masterid)
        active = validate.active_flag(active)
        now = Now.read(self.clock)
        outcome = self._write(
            lambda conn: commands.set_master_state_attempt(
                conn, self.actor, masterid, active, now, self._known
            ),
            lambda: commands.check_in_at_once(self.actor, masterid, active, now, self._known),
        )
        if outcome is not None and outcome.tip is not None:
            self._known.wrote(outcome.state, outcome.tip)  # committed
        if outcome is None:
            log.debug("master_unknown", master_id=masterid, active=active)
            return False
        if not outcome.positions:
            event = "master_unchanged"
        elif active:
            event = "master_activated" if outcome.changed else "master_checked_in"
        else:
            event = "master_deactivated"
        self._log(event, outcome)
        return outcome.changed

    def get_master(self, masterid: int) -> MasterModel | None:
        """The master with this id, or None."""
        masterid = validate.master_id(masterid)
        with self._read() as conn:
            return view.get_master(conn, masterid)

    def get_masters(
        self,
        *,
        active: bool | None = None,
        order: Sequence[str] = ("id",),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[MasterModel]:
        """Masters sorted by ``order`` (``-name`` descends) and paged; all of them by default."""
        if active is not None:
            validate.active_flag(active)
        view.order_by(order)
        if limit is not None:
            _non_negative("limit", limit)
        _non_negative("offset", offset)
        with self._read() as conn:
            return view.get_masters(conn, active=active, order=order, limit=limit, offset=offset)

    def set_all_masters_active_long_time_ago(self) -> None:
        """Mark every master active at the epoch, so the next housekeeping expires them all."""
        now = Now.read(self.clock)
        outcomes = self._write(
            lambda conn: commands.force_housekeeping_attempt(conn, self.actor, now)
        )
        self._log_many("housekeeping_forced", outcomes)

    # -- beyond Buildbot ---------------------------------------------------------------------

    def expire_masters(self, *, timeout: int = 600, by: str | None = None) -> list[MasterModel]:
        """Deactivate every active master silent for more than ``timeout`` seconds and
        return them; ``by`` (default: this registry's actor) is recorded as the one who
        expired them."""
        seconds = validate.timeout(timeout)
        actor = self.actor if by is None else attrs.evolve(self.actor, name=validate.actor(by))
        now = Now.read(self.clock)
        outcomes = self._write(
            lambda conn: commands.expire_masters_attempt(conn, actor, seconds, now)
        )
        self._log_many("masters_expired", outcomes, timeout=seconds, actor=actor.name)
        return [outcome.state.to_model() for outcome in outcomes]

    def adopt(self) -> list[MasterModel]:
        """Record every ``masters`` row that has no history yet (an existing Buildbot
        database) with an adoption event; returns the adopted masters."""
        now = Now.read(self.clock)
        outcomes = self._write(lambda conn: commands.adopt_attempt(conn, self.actor, now))
        self._log_many("masters_adopted", outcomes)
        return [outcome.state.to_model() for outcome in outcomes]

    def history(
        self,
        masterid: int,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[RecordedEvent]:
        """The audit trail of one master, optionally between two aware datetimes."""
        masterid = validate.master_id(masterid)
        bounds = [
            None if t is None else to_micros(_aware(name, t))
            for name, t in (("since", since), ("until", until))
        ]
        with self._read() as conn:
            return eventstore.read_history(
                conn, masterid, archive=self.archive_dir, since=bounds[0], until=bounds[1]
            )

    def events(self, *, after: int = 0, limit: int | None = None) -> Iterator[RecordedEvent]:
        """The whole log after position ``after``, in position order, streamed."""
        _non_negative("after", after)
        if limit is not None:
            _non_negative("limit", limit)
        self._check_schema()
        return eventstore.iter_log_through(
            self.engine, archive=self.archive_dir, after=after, limit=limit
        )

    def position_at(self, when: dt.datetime) -> int:
        """The position of the newest event recorded at or before ``when`` (0: none)."""
        micros = to_micros(_aware("when", when))
        with self._read() as conn:
            return self._position_at(conn, micros)

    def _position_at(self, conn: Connection, micros: int) -> int:
        """The newest event at or before ``micros`` in the table, else in the archive."""
        found = queries.position_at(conn, micros)
        if found == 0 and eventstore.archived_through(conn) > 0:
            found = eventstore.sealed_position_at(conn, micros, self.archive_dir) or 0
        return found

    def masters_as_of(self, when: dt.datetime | int) -> list[MasterModel]:
        """Every master as it stood at ``when``: an aware datetime, or a log position
        (the event at that position included). A moment the archive holds is answered
        from its segment; one of the table from the table and the archive's last states."""
        if isinstance(when, dt.datetime):
            micros: int | None = to_micros(_aware("when", when))
        else:
            micros, position = None, _non_negative("when", when)
        with self._read() as conn:
            # One statement: the streams at the position (or the moment), and whether the
            # archive holds part of the log.
            if micros is None:
                streams = eventstore.streams_at(conn, position=position)
            else:
                streams = eventstore.streams_at(conn, when=micros)
            position, sealed = streams.position, streams.sealed
            if micros is not None and position == 0 and sealed:
                return archived.states_by(conn, micros, self.archive_dir)
            if not sealed or position == 0:
                return queries.masters_at(streams)
            if position <= sealed:
                found = archived.states_at(conn, position, self.archive_dir)
                assert found is not None
                return found
            # The states after the segment the statement saw last, which an archive
            # sealing meanwhile does not change.
            newest = eventstore.segment_holding(conn, sealed)
            base = archived.end_states(conn, self.archive_dir, newest)
            return queries.masters_at(streams, base)

    def rebuild(self, *, progress: Progress | None = None) -> int:
        """Make the view what the log says, keeping every master id of the log; returns the
        number of events replayed.

        A head row that is missing or disagrees with the log is restored from it first.
        Every row is updated, or inserted again with its recorded id; a row with no history
        that carries the name of a master of the log is deleted, or, when another table
        references it, the rebuild raises :class:`RebuildRefused` naming it and writes
        nothing. Rows with no history left are then adopted (see :meth:`adopt`).
        """
        self._check_schema()
        with translate_errors(), schema_lock(self.engine) as conn:
            begin_write(conn)
            restored = restore_head(conn)
        _log_restored(restored)
        replayed = commands.retry.repeat(
            lambda: rebuild_view(self.engine, progress=progress, archive=self.archive_dir)
        )
        if self.adopt():  # adopted as found: folded again, as Buildbot reads them
            replayed = commands.retry.repeat(
                lambda: rebuild_view(self.engine, progress=progress, archive=self.archive_dir)
            )
        log.info("view_rebuilt", events=replayed)
        return replayed

    def verify(
        self,
        *,
        progress: Progress | None = None,
        anchors: Sequence[Anchor] | str | os.PathLike[str] | None = None,
    ) -> VerifyReport:
        """Check the hash chain and compare the view with a fresh fold of the log.

        ``anchors`` (a sequence of :class:`Anchor`, or the path of a JSON-lines file of
        them, as ``mastertrail anchor --to FILE`` appends) are checked too: each whose
        position no longer carries its hash, or lies past the end of the log, is a
        problem. A malformed anchors file raises :class:`AnchorInvalid` (a ``ValueError``).
        """
        found = given_anchors(anchors)
        self._check_schema()
        report = commands.retry.repeat(
            lambda: verify_view(
                self.engine, progress=progress, anchors=found, archive=self.archive_dir
            )
        )
        try:
            self._record_verification(report)
        except (StoreReadOnly, StoreFull) as error:  # verifying is reading: kept if it can be
            log.warning("verification_not_kept", reason=str(error))
        log.info(
            "log_verified",
            ok=report.ok,
            events=report.events_checked,
            anchors=report.anchors_checked,
            problems=len(report.problems),
        )
        return report

    def archive(
        self,
        *,
        before: dt.datetime | int,
        to: str | os.PathLike[str],
        dry_run: bool = False,
    ) -> ArchiveReport:
        """Move the events before ``before`` out of the log into sealed segment files in the
        directory ``to``: ``before`` is an aware datetime (the events up to the first
        recorded at or after it) or a position (the events below it). A master's newest
        event is archived too: its stream goes on from it. Positions, versions, ids and
        hashes never change; every reading answers as before. ``dry_run``: report what
        would be sealed, write nothing.
        """
        if isinstance(before, dt.datetime):
            _aware("before", before)
        else:
            _non_negative("before", before)
        if not isinstance(to, str | os.PathLike):
            raise InvalidArgumentType("to", "a directory path", to)
        if not os.fspath(to):
            raise InvalidArgument("to", "must name a directory", to)
        self._check_schema()
        report = seal(
            self.engine, before=before, to=to, fold=fold_snapshots, dry_run=dry_run,
            clock=self.clock,
        )  # fmt: skip
        log.info(
            "log_archived",
            segments=report.segments,
            events=report.events,
            bytes=report.bytes,
            through=report.through,
            dry_run=dry_run,
        )
        return report

    def anchor(self) -> Anchor:
        """Where the log ends now: its last position and the hash there, taken at the
        clock's time. Kept outside the database (see :meth:`verify`), it reveals a later
        rewrite of the log up to that position, even one that re-chains every hash."""
        now = Now.read(self.clock)
        with self._read() as conn:
            taken = take_anchor(conn, from_micros(now.micros))
        log.info("anchor_taken", position=taken.position, hash=taken.hash)
        return taken

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- what a dashboard reads: the view and the head, never a scan of the log --------------

    def log_position(self) -> int:
        """The position of the newest event of the log (0 when it is empty)."""
        with self._read() as conn:
            return eventstore.head_position(conn)

    def latest_events(self, *, count: int = 2) -> dict[int, list[RecordedEvent]]:
        """The newest ``count`` events of every master, oldest first, by master id."""
        _non_negative("count", count)
        with self._read() as conn:
            found = latest.latest_events(conn, count=count)
            return archived.complete_latest(conn, found, count, self.archive_dir)

    def last_verification(self) -> verifications.Verification | None:
        """The result of the newest :meth:`verify`, or None if none was kept."""
        with self._read() as conn:
            return verifications.last(conn)

    def _record_verification(self, report: VerifyReport) -> None:
        first = report.problems[0] if report.problems else None
        result = verifications.Verification(
            checked_at=dt.datetime.fromtimestamp(Now.read(self.clock).seconds, dt.UTC),
            ok=report.ok,
            events_checked=report.events_checked,
            problems=len(report.problems),
            first_problem=None if first is None else str(first),
        )
        with translate_errors(), self.engine.connect() as conn:
            begin_write(conn)
            verifications.record(conn, result)
            conn.commit()

    # -- plumbing ----------------------------------------------------------------------------

    def _write(
        self,
        attempt: Callable[[Connection], commands.retry.T],
        at_once: Callable[[], commands.retry.AtOnce[commands.retry.T] | None] | None = None,
    ) -> commands.retry.T:
        self._check_schema()
        with translate_errors(), self.engine.connect() as conn:
            return commands.run(conn, attempt, at_once)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read-only connection; a database lost during the reads (not only while
        connecting) raises :class:`StoreUnavailable`, like a write."""
        self._check_schema()
        with (
            translate_errors(),
            reading(self.engine) as conn,
        ):
            yield conn

    def _check_schema(self) -> None:
        if not self._schema_checked:
            absent = missing_sqlite_file(self.engine)
            if absent is not None:  # connecting would create it: a read writes nothing
                if not absent.parent.is_dir():
                    raise StoreUnavailable(
                        f"database unavailable: there is no directory {absent.parent} "
                        "for the SQLite database"
                    )
                raise SchemaMissing(
                    f"there is no SQLite database at {absent}: upgrade() "
                    "(`mastertrail upgrade`) creates it"
                )
            with (
                translate_errors(),
                reading(self.engine) as conn,
            ):
                eventstore.check_schema(conn)
            self._schema_checked = True

    def _log_many(self, event: str, outcomes: list[Outcome], **values: object) -> None:
        """One line for a command that acted on several masters; none when it acted on
        none (a start that adopted nothing, a housekeeping that expired nobody)."""
        if not outcomes:
            return
        positions = [position for outcome in outcomes for position in outcome.positions]
        values.setdefault("actor", self.actor.name)
        log.info(
            event,
            master_ids=[outcome.state.id for outcome in outcomes],
            position=max(positions, default=None),
            **values,
        )

    def _log(self, event: str, outcome: Outcome) -> None:
        # What a master does every minute, or that changes nothing, is routine: DEBUG. A
        # registration or a change of state is what an operator looks for: INFO.
        emit = log.info if outcome.changed else log.debug
        emit(
            event,
            master_id=outcome.state.id,
            name=outcome.state.name,
            position=outcome.positions[-1] if outcome.positions else None,
            changed=outcome.changed,
            actor=self.actor.name,
        )


def _log_restored(restored: Head | None) -> None:
    if restored is not None:
        log.warning(
            "head_restored",
            position=restored.position,
            last_master_id=restored.last_master_id,
        )


def _aware(argument: str, when: object) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise InvalidArgumentType(argument, "a datetime", when)
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidArgument(argument, "must be timezone-aware", when)
    return when


#: The largest count, offset or position a 64-bit SQL integer holds.
MAX_SQL_BIGINT = 2**63 - 1


def _non_negative(argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(argument, "an int", value)
    if value < 0:
        raise InvalidArgument(argument, "must not be negative", value)
    if value > MAX_SQL_BIGINT:
        raise InvalidArgument(argument, f"must be at most {MAX_SQL_BIGINT}", value)
    return value


__all__ = ["Anchor", "ArchiveReport", "Problem", "Registry", "VerifyReport"]

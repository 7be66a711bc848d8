"""The write side: validate, then per attempt load, decide, append and update the view, all
in the caller's one transaction.

Each ``*_attempt`` function runs inside an open transaction and is retried by
:func:`commands.retry.run`; the functions without the suffix validate, read the clock once,
and run the attempts on a connection.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import attrs
from sqlalchemy.engine import Connection

from commands import decide, retry, validate
from commands.decide import Decision
from commands.known import KnownState
from eventstore.errors import ConcurrencyError, ViewRowMissing
from eventstore.events import CODEC, MasterDeactivated
from eventstore.ids import event_id_for
from eventstore.recorded import NewEvent
from eventstore.store import (
    AppendResult,
    Tip,
    allocate_master_id,
    append,
    append_after,
    append_chained,
    stream_version,
)
from eventstore.writer import writer_for
from projections import view
from projections.charsets import check_storable
from projections.fold import apply
from projections.model import MasterState
from projections.rebuild import align_id_sequence

Clock = Callable[[], float]


def default_actor() -> str:
    """``<host>:<pid>`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@attrs.frozen
class Now:
    """One reading of the clock: whole seconds for ``last_active``, microseconds for
    ``recorded_at``."""

    seconds: int
    micros: int

    @classmethod
    def read(cls, clock: Clock) -> Now:
        value = validate.clock_reading(clock())
        return cls(int(value), round(value * 1_000_000))


@attrs.frozen
class Outcome:
    """What a command did to one master: its state after, and the log positions written."""

    state: MasterState
    changed: bool
    positions: tuple[int, ...] = ()
    tip: Tip | None = None  # where the log ended after the write, if it wrote


@attrs.define
class Actor:
    """Who acts: recorded in every event's metadata with host, pid and reason."""

    name: str = attrs.field(factory=default_actor)
    host: str = attrs.field(factory=socket.gethostname)
    link_tables: tuple[str, ...] | None = None  # found on first deactivation

    def metadata(self, reason: str) -> dict[str, object]:
        return {"actor": self.name, "host": self.host, "pid": os.getpid(), "reason": reason}


# -- find_master_id --------------------------------------------------------------------------


def find_master_id_attempt(conn: Connection, actor: Actor, name: str, now: Now) -> Outcome:
    """The id of ``name``; a new name is registered inactive with ``last_active = now``. A
    name the database cannot store exactly is refused before anything is read or written
    (:func:`projections.charsets.check_storable`)."""
    check_storable(conn, name)
    state = view.load_state_by_name(conn, name)
    if state is not None:
        return Outcome(state, changed=False)
    master_id = allocate_master_id(conn, above=view.max_id(conn))
    registered = MasterState(
        id=master_id, name=name, active=False, last_active=now.seconds, version=0
    )
    view.insert_row(conn, registered)  # IntegrityError when another process won: retried
    align_id_sequence(conn)
    return _commit_decision(
        conn, actor, registered, decide.register(name, now.seconds), now, registering=True
    )


# -- set_master_state ------------------------------------------------------------------------


def set_master_state_attempt(
    conn: Connection,
    actor: Actor,
    master_id: int,
    active: bool,
    now: Now,
    known: KnownState | None = None,
) -> Outcome | None:
    """``setMasterState``; None for an unknown id (nothing written). A master the log
    knows whose view row is gone raises :class:`ViewRowMissing`, and a missing head row
    :class:`HeadMissing`: a write is never dropped silently.

    The state and the log's head are read in one statement without a lock; the append
    moves the head only if nothing was appended since (else the attempt is retried). A
    heartbeat is thus one read, one write (one statement on PostgreSQL and MariaDB) and the
    commit. When ``known`` remembers this master from the process's own last write, the
    read is skipped where the database can check what is known instead (see
    :mod:`commands.known`).
    """
    recalled = None if known is None else known.recall(master_id)
    if recalled is not None:
        assert known is not None
        state = recalled.state
        decision = _decide_state(conn, actor, state, active, now)
        # Only a write checks what is known: an answer without one would rest on it unchecked.
        if len(decision.events) == 1:
            if recalled.follows:
                try:
                    return _commit_decision(conn, actor, state, decision, now, seen=recalled.tip)
                except ConcurrencyError:
                    known.missed()  # nothing was written: the transaction goes on
            if writer_for(conn).chains_in_database:
                try:
                    return _commit_decision(
                        conn, actor, state, decision, now, chained_after=recalled.tip
                    )
                except ConcurrencyError:
                    known.forget(master_id)
                    raise
    loaded = view.load_state_and_head(conn, master_id)
    if loaded is None:
        if stream_version(conn, master_id):  # the log knows it: never drop the write
            raise ViewRowMissing(master_id)
        return None
    state, seen = loaded
    decision = _decide_state(conn, actor, state, active, now)
    return _commit_decision(conn, actor, state, decision, now, seen=seen)


def _decide_state(
    conn: Connection, actor: Actor, state: MasterState, active: bool, now: Now
) -> Decision:
    stop_reason = "stopped"
    if not active and state.active and actor.name != state.name:
        other = view.load_state_by_name(conn, actor.name)
        stop_reason = "expired" if other is not None else "stopped"
    return decide.set_state(state, active, now.seconds, stop_reason=stop_reason)


# -- expire_masters / set_all_masters_active_long_time_ago / adopt ---------------------------


def expire_masters_attempt(conn: Connection, actor: Actor, timeout: int, now: Now) -> list[Outcome]:
    """Deactivate every active master silent for longer than ``timeout`` seconds."""
    outcomes = [
        _commit_decision(conn, actor, state, decide.expire(state, now.seconds, timeout), now)
        for state in view.load_states(conn, active=True)
    ]
    return [outcome for outcome in outcomes if outcome.changed]


def force_housekeeping_attempt(conn: Connection, actor: Actor, now: Now) -> list[Outcome]:
    """Mark every master active at the epoch."""
    return [
        _commit_decision(conn, actor, state, decide.force_housekeeping(state), now)
        for state in view.load_states(conn)
    ]


def adopt_attempt(conn: Connection, actor: Actor, now: Now) -> list[Outcome]:
    """Record every ``masters`` row that has no history yet."""
    return [
        _commit_decision(conn, actor, state, decide.adopt(state), now)
        for state in view.load_states(conn)
        if state.version == 0
    ]


def run(conn: Connection, attempt: Callable[[Connection], retry.T]) -> retry.T:
    """Run an attempt with retries (see :mod:`commands.retry`); a commit lost with its
    connection is looked up by the tips of the outcomes, never written twice."""
    return retry.run(conn, attempt, written=written_tips)


def written_tips(result: object) -> Iterator[Tip]:
    """Where the writes of an attempt's result (an :class:`Outcome`, a list of them, or
    None) end."""
    outcomes = result if isinstance(result, list) else [result]
    for outcome in outcomes:
        if isinstance(outcome, Outcome) and outcome.tip is not None:
            yield outcome.tip


# -- the one place that writes ---------------------------------------------------------------


def _commit_decision(
    conn: Connection,
    actor: Actor,
    state: MasterState,
    decision: Decision,
    now: Now,
    *,
    registering: bool = False,
    seen: Tip | None = None,
    chained_after: Tip | None = None,
) -> Outcome:
    """Append the decision's events to the master's stream and update its view row."""
    if not decision.events:
        return Outcome(state, decision.changed)
    batch = []
    after: MasterState | None = None if state.version == 0 else state
    version = state.version
    deactivated = False
    for event, reason in decision.events:
        if isinstance(event, MasterDeactivated):  # it records the links it removes
            if actor.link_tables is None:
                actor.link_tables = view.link_tables(conn)
            links = view.load_links(conn, state.id, actor.link_tables)
            event = attrs.evolve(
                event,
                schedulers=links.get("scheduler_masters", []),
                changesources=links.get("changesource_masters", []),
            )
        type_name, schema_version, data = CODEC.encode(event, recorded_at=now.micros)
        batch.append(
            NewEvent(
                event_id=event_id_for(state.id, version + 1, now.micros),
                type=type_name,
                schema_version=schema_version,
                data=data,
                metadata=actor.metadata(reason),
                recorded_at=now.micros,
            )
        )
        version += 1
        after = apply(after, state.id, version, event)
        deactivated = deactivated or isinstance(event, MasterDeactivated)
    assert after is not None
    result: AppendResult
    if seen is None and chained_after is None:
        result = append(conn, state.id, state.version, batch)
        if result.duplicate:  # another call's event, the same as this one's to the byte
            raise ConcurrencyError(state.id, state.version, None)
        if not registering:
            view.update_row(conn, after)
    else:  # the view row is updated in the append's own statement
        also = view.update_statement(after)
        if chained_after is not None:
            (new,) = batch
            last_hash = chained_after.hash
            result = append_chained(conn, state.id, state.version, last_hash, new, also=also)
        else:
            assert seen is not None
            result = append_after(conn, seen, state.id, state.version, batch, also=also)
    if deactivated:
        assert actor.link_tables is not None  # found when the event was encoded
        view.delete_links(conn, state.id, actor.link_tables)
    tip = None if result.hash is None else Tip(result.positions[-1], result.hash)
    return Outcome(after, decision.changed, result.positions, tip)

"""One attempt per operation: load, decide and write, inside the caller's one
transaction.

Each ``*_attempt`` function runs inside an open transaction and is retried on a conflict
by :func:`run` (:mod:`commands.retry`); the registry validates the arguments and reads the
clock once before the first attempt.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from commands import decide, retry
from commands.actor import Actor
from commands.clock import Now
from commands.decide import Decision
from commands.known import Known, KnownState
from commands.outcome import Outcome, written_tips
from commands.write import write_decision
from eventstore import (
    AfterOwn,
    AfterSeen,
    ConcurrencyError,
    ViewRowMissing,
    allocate_master_id,
    stream_event_at,
    stream_version,
    writer_for,
)
from projections import view
from projections.charsets import check_storable
from projections.fold import apply
from projections.model import MasterState


def run(
    conn: Connection,
    attempt: Callable[[Connection], retry.T],
    at_once: Callable[[], retry.AtOnce[retry.T] | None] | None = None,
) -> retry.T:
    """Run an attempt with retries (see :mod:`commands.retry`), ``at_once`` first where
    the database allows; a commit lost with its connection is looked up by the tips of
    the outcomes, never written twice."""
    return retry.run(conn, attempt, written=written_tips, at_once=at_once)


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
    view.align_id_sequence(conn)
    decision = decide.register(name, now.seconds)
    return write_decision(conn, actor, registered, decision, now, registering=True)


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

    The state and the log's head are read in one statement without a lock, and the
    writer appends after that head (:class:`eventstore.AfterSeen`): a heartbeat is one
    read, one write (one statement on PostgreSQL and MariaDB) and the commit. When
    ``known`` remembers this master from the process's own last write, the read is skipped
    and the writer checks what is known instead (see :mod:`commands.known`): after the tip
    that write left, if the process's writes follow each other; else, where the database
    chains events itself, after the master's own last event (:class:`eventstore.AfterOwn`).
    """
    recalled = None if known is None else known.recall(master_id)
    if recalled is not None:
        assert known is not None
        decision = _decide_state(conn, actor, recalled.state, active, now)
        # Only a write checks what is known: an answer without one would rest on it unchecked.
        if len(decision.events) == 1:
            written = _write_known(conn, actor, recalled, decision, now, known)
            if written is not None:
                return written
    loaded = view.load_state_and_head(conn, master_id)
    if loaded is None:
        if stream_version(conn, master_id):  # the log knows it: never drop the write
            raise ViewRowMissing(master_id)
        return None
    state, seen = loaded
    decision = _decide_state(conn, actor, state, active, now)
    expect = AfterSeen(state.version, seen)
    return write_decision(conn, actor, state, decision, now, expect=expect)


def _write_known(
    conn: Connection, actor: Actor, recalled: Known, decision: Decision, now: Now, known: KnownState
) -> Outcome | None:
    """Write ``decision`` (one event) after what this process knows of the master, with
    nothing read first: after the tip its last write left, if its writes follow each
    other; else, where the database chains events itself, after the master's own last
    event. None when neither applies, or the first found the head moved (nothing was
    written: the transaction goes on); :class:`ConcurrencyError`, the master forgotten,
    when the second found its stream moved."""
    state = recalled.state
    if recalled.follows:
        try:
            expect = AfterSeen(state.version, recalled.tip)
            return write_decision(conn, actor, state, decision, now, expect=expect)
        except ConcurrencyError:
            known.missed()
    if not writer_for(conn).chains_in_database:
        return None
    try:
        expect_own = AfterOwn(state.version, recalled.tip)
        return write_decision(conn, actor, state, decision, now, expect=expect_own)
    except ConcurrencyError:  # the writer rolled the transaction back
        known.forget(state.id)
        raise


def check_in_at_once(
    actor: Actor, master_id: int, active: bool, now: Now, known: KnownState
) -> retry.AtOnce[Outcome | None] | None:
    """A check-in (or an activation) of a master this process remembers, as one statement
    that is a transaction of its own (:func:`commands.retry.run`): what
    :func:`set_master_state_attempt` writes first, and the same outcome. None for anything
    else (a deactivation reads the master's links; a master not remembered is read)."""
    recalled = known.recall(master_id)
    if recalled is None or not active:
        return None
    state = recalled.state
    decision = decide.set_state(state, active, now.seconds, stop_reason="stopped")
    if len(decision.events) != 1:
        return None
    (event, _), version = decision.events[0], state.version + 1

    def landed(conn: Connection) -> Outcome | None:
        """The outcome if the event is in the log: the stream's next event, recorded at
        this very microsecond (the event's id derives from both), is this call's."""
        found = stream_event_at(conn, master_id, version)
        if found is None or found[1] != now.micros:
            known.forget(master_id)
            return None
        after = apply(state, master_id, version, event)
        return Outcome(after, decision.changed, (found[0].position,), found[0])

    return retry.AtOnce(
        write=lambda conn: _write_known(conn, actor, recalled, decision, now, known),
        landed=landed,
    )


def _decide_state(
    conn: Connection, actor: Actor, state: MasterState, active: bool, now: Now
) -> Decision:
    stop_reason = "stopped"
    if not active and state.active and actor.name != state.name:
        other = view.load_state_by_name(conn, actor.name)
        stop_reason = "expired" if other is not None else "stopped"
    return decide.set_state(state, active, now.seconds, stop_reason=stop_reason)


def expire_masters_attempt(conn: Connection, actor: Actor, timeout: int, now: Now) -> list[Outcome]:
    """Deactivate every active master silent for longer than ``timeout`` seconds."""
    outcomes = [
        write_decision(conn, actor, state, decide.expire(state, now.seconds, timeout), now)
        for state in view.load_states(conn, active=True)
    ]
    return [outcome for outcome in outcomes if outcome.changed]


def force_housekeeping_attempt(conn: Connection, actor: Actor, now: Now) -> list[Outcome]:
    """Mark every master active at the epoch."""
    return [
        write_decision(conn, actor, state, decide.force_housekeeping(state), now)
        for state in view.load_states(conn)
    ]


def adopt_attempt(conn: Connection, actor: Actor, now: Now) -> list[Outcome]:
    """Record every ``masters`` row that has no history yet."""
    return [
        write_decision(conn, actor, state, decide.adopt(state), now)
        for state in view.load_states(conn)
        if state.version == 0
    ]

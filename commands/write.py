"""The write of a decision: its events encoded, folded into the master's state, and
appended with the master's view row by the database's writer, in the caller's
transaction."""

from __future__ import annotations

import attrs
from sqlalchemy.engine import Connection

from commands.actor import Actor
from commands.clock import Now
from commands.decide import Decision
from commands.outcome import Outcome
from eventstore import (
    CODEC,
    ConcurrencyError,
    Expectation,
    MasterDeactivated,
    NewEvent,
    StreamAt,
    event_id_for,
    writer_for,
)
from projections import view
from projections.fold import apply
from projections.model import MasterState


def write_decision(
    conn: Connection,
    actor: Actor,
    state: MasterState,
    decision: Decision,
    now: Now,
    *,
    expect: Expectation | None = None,
    registering: bool = False,
) -> Outcome:
    """Append the decision's events to the stream of ``state``'s master after what
    ``expect`` says (by default its version, :class:`eventstore.StreamAt`), update its view
    row in the same write (``registering``: the row was just inserted as it is), and
    delete its links when it is deactivated.

    Raises :class:`ConcurrencyError` when the writer finds the log or the stream not as
    expected, and when it finds this very batch stored: a command never sends a batch
    twice, so it is another call's, and the command decides again on fresh state.
    """
    if not decision.events:
        return Outcome(state, decision.changed)
    batch = []
    after: MasterState | None = None if state.version == 0 else state
    version = state.version
    links: tuple[str, ...] = ()
    for event, reason in decision.events:
        if isinstance(event, MasterDeactivated):  # it records the links it removes
            links = view.link_tables(conn)
            linked = view.load_links(conn, state.id, links)
            event = attrs.evolve(
                event,
                schedulers=linked.get("scheduler_masters", []),
                changesources=linked.get("changesource_masters", []),
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
    assert after is not None
    result = writer_for(conn).append(
        conn,
        state.id,
        StreamAt(state.version) if expect is None else expect,
        batch,
        view_update=None if registering else view.update_statement(after),
    )
    if result.duplicate:  # another call's event, the same as this one's to the byte
        raise ConcurrencyError(state.id, state.version, None)
    if links:
        view.delete_links(conn, state.id, links)
    return Outcome(after, decision.changed, result.positions, result.tip)

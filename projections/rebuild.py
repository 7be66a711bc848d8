"""Rebuild the view from the log, and verify both: the developer's replay tools.

Both stream the log in batches (memory grows with the number of masters, not of events),
then finish under the log's head lock: the events that committed meanwhile are folded in,
and the view is written or compared while no writer can move it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventstore.chain import verify_chain
from eventstore.engine import begin_write, translate_errors
from eventstore.reads import head_position, iter_log, read_after
from eventstore.store import lock_head
from projections import view
from projections.fold import apply_recorded
from projections.model import MasterState, name_hash

#: ``progress(events_done, events_total)``, called every batch.
Progress = Callable[[int, int], None]

_PROGRESS_EVERY = 10_000


@attrs.frozen
class Problem:
    """One thing :func:`verify` found wrong."""

    kind: str  # "chain" or "view"
    detail: str
    position: int | None = None
    master_id: int | None = None

    def __str__(self) -> str:
        where = (
            f"position {self.position}"
            if self.position is not None
            else (f"master {self.master_id}")
        )
        return f"{self.kind}: {where}: {self.detail}"


@attrs.frozen
class VerifyReport:
    """What :func:`verify` found: the events checked and every problem."""

    events_checked: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def rebuild(engine: Engine, *, progress: Progress | None = None) -> int:
    """Replay the whole log into the view; returns the number of events replayed.

    Rows are updated in place, rows that went missing are inserted again with their
    recorded ids, and no row is ever deleted.
    """
    states, replayed, last = _fold_log(engine, progress)
    with translate_errors(), engine.begin() as conn:
        begin_write(conn)
        replayed += _catch_up(conn, states, last)
        for state in states.values():
            view.save_row(conn, state)
        align_id_sequence(conn)
    return replayed


def verify(engine: Engine, *, progress: Progress | None = None) -> VerifyReport:
    """Check the hash chain, and compare the view with a fresh fold of the log."""
    chain = verify_chain(engine)
    problems = [Problem("chain", p.problem, position=p.position) for p in chain.problems]
    if not chain.ok:
        return VerifyReport(chain.checked, problems)
    states, folded, last = _fold_log(engine, progress)
    with translate_errors(), engine.begin() as conn:
        begin_write(conn)
        folded += _catch_up(conn, states, last)
        rows = {state.id: state for state in view.load_states(conn)}
        hashes = view.load_name_hashes(conn)
    for master_id, state in sorted(states.items()):
        row = rows.pop(master_id, None)
        if row is None:
            problems.append(Problem("view", "row missing from masters", master_id=master_id))
            continue
        for field in ("name", "active", "last_active"):
            want, have = getattr(state, field), getattr(row, field)
            if want != have:
                problems.append(
                    Problem(
                        "view", f"{field} is {have!r}, the log says {want!r}", master_id=master_id
                    )
                )
        if hashes[master_id] != name_hash(state.name):
            problems.append(
                Problem(
                    "view",
                    f"name_hash is {hashes[master_id]!r}, not the SHA-1 of the name in the log",
                    master_id=master_id,
                )
            )
    for master_id in sorted(rows):
        problems.append(
            Problem(
                "view",
                "row has no history in the log (run `mastertrail adopt`)",
                master_id=master_id,
            )
        )
    return VerifyReport(folded, problems)


def align_id_sequence(conn: Connection) -> None:
    """On PostgreSQL, move the ``masters.id`` sequence past every id in the table, so an
    insert that takes its id from the sequence never collides with a recorded one."""
    if conn.dialect.name != "postgresql":
        return
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence('masters', 'id')")).scalar()
    if sequence is None:
        return
    conn.execute(
        sa.text(
            "SELECT setval(CAST(:seq AS regclass), m) FROM (SELECT max(id) AS m FROM masters) t "
            f"WHERE m >= (SELECT last_value FROM {sequence})"
        ),
        {"seq": sequence},
    )


def _fold_log(engine: Engine, progress: Progress | None) -> tuple[dict[int, MasterState], int, int]:
    """Every master folded from the whole log; with the count and the last position."""
    states: dict[int, MasterState] = {}
    total = last = 0
    if progress is not None:
        with translate_errors(), engine.connect() as conn:
            total = head_position(conn)
    count = 0
    for recorded in iter_log(engine, batch_size=5000):
        states[recorded.master_id] = apply_recorded(states.get(recorded.master_id), recorded)
        count, last = count + 1, recorded.position
        if progress is not None and count % _PROGRESS_EVERY == 0:
            progress(count, max(total, count))
    if progress is not None:
        progress(count, max(total, count))
    return states, count, last


def _catch_up(conn: Connection, states: dict[int, MasterState], last: int) -> int:
    """Lock the head and fold what committed after position ``last``; returns how many."""
    head = lock_head(conn)
    caught = 0
    while last < head.position:
        batch = read_after(conn, last)
        if not batch:
            break
        for recorded in batch:
            states[recorded.master_id] = apply_recorded(states.get(recorded.master_id), recorded)
        caught, last = caught + len(batch), batch[-1].position
    return caught

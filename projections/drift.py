"""Where the ``masters`` view differs from the log, as Buildbot reads it: a pure comparison
of the folded states with the rows as stored, column by column."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from projections.model import MasterState, name_hash
from projections.report import Problem


@attrs.frozen
class ViewRow:
    """A ``masters`` row exactly as stored: ``active`` and ``last_active`` as the driver
    returns them, which a tampered row need not keep to 0/1 and whole seconds."""

    id: int
    name: str
    name_hash: str
    active: object
    last_active: object


def expected_row(state: MasterState) -> ViewRow:
    """The row the log gives ``state``."""
    return ViewRow(
        id=state.id,
        name=state.name,
        name_hash=name_hash(state.name),
        active=int(state.active),
        last_active=state.last_active,
    )


def view_problems(states: Mapping[int, MasterState], rows: Iterable[ViewRow]) -> list[Problem]:
    """Every difference between the rows and the folded ``states``: a row missing, a row
    with no history, and each column (``name``, ``name_hash``, ``active`` exactly 0 or 1,
    ``last_active``) that is not what the log says."""
    stored = {row.id: row for row in rows}
    problems: list[Problem] = []
    for master_id, state in sorted(states.items()):
        row = stored.pop(master_id, None)
        if row is None:
            problems.append(Problem("view", "row missing from masters", master_id=master_id))
            continue
        want = expected_row(state)
        for field in ("name", "active", "last_active"):
            have, expected = getattr(row, field), getattr(want, field)
            if type(have) is not type(expected) or have != expected:
                problems.append(
                    Problem(
                        "view",
                        f"{field} is {have!r}, the log says {expected!r}",
                        master_id=master_id,
                    )
                )
        if row.name_hash != want.name_hash:
            problems.append(
                Problem(
                    "view",
                    f"name_hash is {row.name_hash!r}, not the SHA-1 of the name in the log",
                    master_id=master_id,
                )
            )
    for master_id in sorted(stored):
        problems.append(
            Problem(
                "view",
                "row has no history in the log (run `mastertrail adopt`)",
                master_id=master_id,
            )
        )
    return problems


@attrs.frozen
class Repair:
    """How to make the rows what the log says, in order: delete the ``strays`` (rows with
    no history that carry the name of a master of the log, which the unique ``name_hash``
    leaves no room for), move the ``name_hash`` of the ``parked`` rows aside (so that no
    row holds a name another one is given), then write every state of ``save``."""

    strays: tuple[int, ...]
    parked: tuple[int, ...]
    save: tuple[MasterState, ...]


def plan_repair(states: Mapping[int, MasterState], rows: Iterable[ViewRow]) -> Repair:
    """The :class:`Repair` that makes ``rows`` equal to ``states`` keeping every id of the
    log. Rows with no history whose name no master of the log has are left alone."""
    wanted = {master_id: expected_row(state) for master_id, state in states.items()}
    names = {row.name for row in wanted.values()}
    hashes = {row.name_hash for row in wanted.values()}
    stored = {row.id: row for row in rows}
    strays = tuple(
        sorted(
            row.id
            for row in stored.values()
            if row.id not in states and (row.name in names or row.name_hash in hashes)
        )
    )
    save = tuple(
        state
        for master_id, state in sorted(states.items())
        if stored.get(master_id) != wanted[master_id]
    )
    parked = tuple(
        state.id
        for state in save
        if state.id in stored and stored[state.id].name_hash != wanted[state.id].name_hash
    )
    return Repair(strays, parked, save)


def parked_hash(row_id: int) -> str:
    """A ``name_hash`` that no name has (not hexadecimal) and no other row is given."""
    return f"mastertrail-rebuild-{row_id}"

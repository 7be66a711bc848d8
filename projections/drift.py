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

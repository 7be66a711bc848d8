"""The repair ``rebuild`` plans for the ``masters`` view, as a pure function: carried out
step by step on a model of the table with Buildbot's unique ``name_hash``, it never holds a
hash twice and ends with every row the log's."""

from __future__ import annotations

import attrs
from hypothesis import assume, given
from hypothesis import strategies as st

from projections.drift import ViewRow, expected_row, parked_hash, plan_repair, view_problems
from projections.model import MasterState, name_hash

NAMES = [f"m{i}:/srv" for i in range(6)]


@st.composite
def log_and_view(draw: st.DrawFn) -> tuple[dict[int, MasterState], list[ViewRow]]:
    """Masters folded from a log, and a ``masters`` table tampered with from their rows:
    names moved between rows, ids changed, rows deleted, columns changed, rows added."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    states = {
        i: MasterState(
            id=i,
            name=name,
            active=draw(st.booleans()),
            last_active=draw(st.integers(0, 10)),
            version=1,
        )
        for i, name in enumerate(names, start=1)
    }
    rows = [expected_row(state) for state in states.values()]
    moved_names = draw(st.permutations([row.name for row in rows]))
    rows = [
        attrs.evolve(row, name=name, name_hash=name_hash(name)) if draw(st.booleans()) else row
        for row, name in zip(rows, moved_names, strict=True)
    ]
    rows = [
        attrs.evolve(
            row,
            id=draw(st.sampled_from([row.id, row.id + 10])),
            active=draw(st.sampled_from([row.active, 0, 1, 2, -1])),
            last_active=draw(st.sampled_from([row.last_active, 99])),
        )
        for row in rows
        if draw(st.integers(0, 4))  # one in five deleted
    ]
    extra = draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
    rows += [
        ViewRow(20 + i, name, draw(st.sampled_from([name_hash(name), f"forged{i}"])), 0, 0)
        for i, name in enumerate(extra)
    ]
    assume(len({row.id for row in rows}) == len(rows))
    assume(len({row.name_hash for row in rows}) == len(rows))
    return states, rows


class Table:
    """``masters`` in memory, refusing a second row with one ``name_hash`` at every step,
    as the unique index does after each statement."""

    def __init__(self, rows: list[ViewRow]) -> None:
        self.rows = {row.id: row for row in rows}

    def put(self, row: ViewRow) -> None:
        self.rows[row.id] = row
        hashes = [r.name_hash for r in self.rows.values()]
        assert len(hashes) == len(set(hashes)), f"{row.name_hash} twice"


class TestPlanRepair:
    @given(log_and_view())
    def test_the_plan_never_holds_a_name_twice_and_ends_as_the_log(
        self, drawn: tuple[dict[int, MasterState], list[ViewRow]]
    ) -> None:
        """Deleting the strays, parking, then saving, one statement at a time, meets no
        unique violation; after it every master of the log has its row, nothing differs,
        and only rows with no history that no master names remain besides."""
        states, rows = drawn
        plan = plan_repair(states, rows)
        table = Table(rows)
        for row_id in plan.strays:
            assert row_id not in states
            del table.rows[row_id]
        for row_id in plan.parked:
            table.put(attrs.evolve(table.rows[row_id], name_hash=parked_hash(row_id)))
        for state in plan.save:
            table.put(expected_row(state))
        problems = view_problems(states, table.rows.values())
        assert all("no history" in p.detail for p in problems), problems
        names = {state.name for state in states.values()}
        for row_id in set(table.rows) - set(states):
            assert table.rows[row_id].name not in names

    @given(log_and_view())
    def test_a_view_that_agrees_needs_nothing(
        self, drawn: tuple[dict[int, MasterState], list[ViewRow]]
    ) -> None:
        """The rows the log gives plan no step."""
        states, _ = drawn
        rows = [expected_row(state) for state in states.values()]
        assert plan_repair(states, rows) == plan_repair({}, [])

"""How much the benchmark does: the full run behind the documented results, and a quick
run with tiny sizes that smoke-tests every section in seconds."""

from __future__ import annotations

import attrs


@attrs.frozen
class Config:
    """Sizes and iteration counts of one run."""

    masters: tuple[int, ...]  # numbers of masters for the connector section
    iterations: int  # timed calls per contender and operation
    warmup: int  # untimed calls before them
    history_events: dict[str, int]  # length of the long log per backend
    short_divisor: int  # the short log for masters_as_of is this many times shorter
    core_iterations: int
    as_of_iterations: int
    rebuild_repeats: int
    quick: bool = False  # tiny sizes everywhere, also in the independent harness

    def history(self, backend: str) -> int:
        return self.history_events[backend]


#: One year of ten masters checking in every minute, on every database.
FULL = Config(
    masters=(10, 100, 1000),
    iterations=300,
    warmup=20,
    history_events=dict.fromkeys(("sqlite", "postgresql", "mysql"), 5_256_000),
    short_divisor=100,
    core_iterations=1000,
    as_of_iterations=200,
    rebuild_repeats=1,
)

QUICK = Config(
    masters=(10, 30),
    iterations=12,
    warmup=3,
    history_events={"sqlite": 3_000, "postgresql": 3_000, "mysql": 3_000},
    short_divisor=10,
    core_iterations=20,
    as_of_iterations=10,
    rebuild_repeats=1,
    quick=True,
)

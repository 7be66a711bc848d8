"""Timing samples: alternate contenders in one loop, then medians, p99 and ratios.

Every measurement loop runs the contenders in turn inside the same iteration (A then B,
then B then A on the next one), so that whatever the machine does meanwhile lands on both.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

Samples = dict[str, list[float]]


def summary(samples: list[float]) -> dict[str, float]:
    """Median, p99 (nearest rank) and mean in milliseconds, and the sample count."""
    ordered = sorted(samples)
    rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
    return {
        "median_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[rank] * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
        "n": len(ordered),
    }


def comparison(samples: Samples, contender: str, anchor: str) -> dict[str, Any]:
    """Both summaries and the ratios contender / anchor of their medians and p99s."""
    ours, theirs = summary(samples[contender]), summary(samples[anchor])
    return {
        contender: ours,
        anchor: theirs,
        "ratio": ours["median_ms"] / theirs["median_ms"],
        "p99_ratio": ours["p99_ms"] / theirs["p99_ms"],
    }


#: Seconds one comparison may take; past it the loop stops (after :data:`MIN_ROUNDS`).
BUDGET = 60.0
#: Timed rounds a comparison always gets, however slow.
MIN_ROUNDS = 5


class Rounds:
    """The rounds of one interleaved loop: warm-up rounds, then timed rounds until
    ``iterations`` are done or ``budget`` seconds are spent (never fewer than
    :data:`MIN_ROUNDS`); the warm-up may take a quarter of the budget. Odd rounds run the
    contenders in reverse order."""

    def __init__(self, names: list[str], iterations: int, warmup: int, budget: float) -> None:
        self.names, self.iterations, self.warmup, self.budget = names, iterations, warmup, budget
        self.samples: Samples = {name: [] for name in names}

    def __iter__(self) -> Iterator[tuple[bool, list[str]]]:
        number = 0
        deadline = time.monotonic() + self.budget / 4
        for _ in range(self.warmup):
            if time.monotonic() > deadline:
                break
            yield False, self._order(number)
            number += 1
        deadline = time.monotonic() + self.budget
        for timed in range(self.iterations):
            if timed >= MIN_ROUNDS and time.monotonic() > deadline:
                return
            yield True, self._order(number)
            number += 1

    def _order(self, number: int) -> list[str]:
        return self.names if number % 2 == 0 else self.names[::-1]

    def record(self, timed: bool, name: str, seconds: float) -> None:
        if timed:
            self.samples[name].append(seconds)


def alternate(
    contenders: Mapping[str, Callable[[], object]],
    iterations: int,
    warmup: int,
    budget: float = BUDGET,
) -> Samples:
    """Time each contender's call ``iterations`` times, interleaved, after ``warmup``
    untimed rounds (fewer when the loop outlasts ``budget`` seconds)."""
    rounds = Rounds(list(contenders), iterations, warmup, budget)
    clock = time.perf_counter
    for timed, order in rounds:
        for name in order:
            call = contenders[name]
            start = clock()
            call()
            rounds.record(timed, name, clock() - start)
    return rounds.samples


async def alternate_async(
    contenders: Mapping[str, Callable[[], Awaitable[object]]],
    iterations: int,
    warmup: int,
    budget: float = BUDGET,
    before: Mapping[str, Callable[[], Awaitable[object]]] | None = None,
) -> Samples:
    """:func:`alternate` for calls returning Deferreds or coroutines, awaited on the reactor;
    ``before[name]``, if given, is awaited untimed before each call of ``name``."""
    rounds = Rounds(list(contenders), iterations, warmup, budget)
    clock = time.perf_counter
    for timed, order in rounds:
        for name in order:
            call = contenders[name]
            if before is not None:
                await before[name]()
            start = clock()
            await call()
            rounds.record(timed, name, clock() - start)
    return rounds.samples


def timed(call: Callable[[], object]) -> tuple[float, object]:
    """Seconds ``call`` took, and what it returned."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result

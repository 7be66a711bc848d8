"""The clock as a command reads it: once per command, before anything is decided."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from commands import validate

#: A clock returning POSIX seconds.
Clock = Callable[[], float]


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

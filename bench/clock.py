"""Time as a master sees it from one heartbeat to the next: a minute apart.

Heartbeats timed back to back fall inside one real second, so each would write the same
``last_active`` again; SQLite and InnoDB then skip writing the unchanged row, and the
commit costs next to nothing, which no real heartbeat (a minute after the previous one)
ever gets. Every reading of these clocks is therefore a minute after the previous one,
for every contender alike.
"""

from __future__ import annotations

import time
from typing import Any

#: Seconds between two readings: Buildbot's heartbeat period.
STEP = 60.0


class MinuteClock:
    """A clock starting now whose every reading is :data:`STEP` seconds after the last."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        self.now += STEP
        return self.now


class MinuteReactor:
    """The real reactor, except that ``seconds()`` reads a :class:`MinuteClock`."""

    def __init__(self, reactor: Any, clock: MinuteClock | None = None) -> None:
        self._reactor = reactor
        self._clock = clock or MinuteClock()

    def seconds(self) -> float:
        return self._clock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

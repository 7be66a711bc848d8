"""What the page and ``/metrics`` show of the fleet, read in a few index seeks: the view,
the newest two events of each master (how it stopped), the log's head and the last verify.
Never a scan of the log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import attrs

from eventstore import RecordedEvent
from mastertrail.registry import Registry
from projections.model import MasterModel
from projections.stops import Stop, classify_stop, duration_text
from projections.verifications import Verification


@attrs.frozen(kw_only=True)
class FleetRow:
    """One master as the page shows it: ``silence`` is the seconds since its last check-in
    (``last_active``); ``stop`` how it became inactive, when it is."""

    master: MasterModel
    silence: int
    stop: Stop | None = None

    @property
    def state(self) -> str:
        return "active" if self.master.active else "inactive"

    @property
    def reset(self) -> bool:
        """Marked active "long ago" (at the epoch) by an upgrade: no real check-in time."""
        return self.master.last_active.timestamp() <= 0

    @property
    def silence_text(self) -> str:
        return "reset long ago" if self.reset else f"{duration_text(self.silence)} ago"

    @property
    def how(self) -> str:
        """How it stopped, or an empty string for a master that is active or never ran."""
        return "" if self.stop is None else self.stop.describe(self.master.name)


@attrs.frozen(kw_only=True)
class Fleet:
    """The fleet at ``now``: masters by id, the log position, the last verify result."""

    now: dt.datetime
    position: int
    rows: tuple[FleetRow, ...]
    verification: Verification | None

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)


def assemble(
    masters: Sequence[MasterModel],
    latest: Mapping[int, Sequence[RecordedEvent]],
    *,
    now: dt.datetime,
    position: int,
    verification: Verification | None,
) -> Fleet:
    """The :class:`Fleet` of these readings: pure, no I/O."""
    names = {master.name for master in masters}
    rows = []
    for master in masters:
        newest = list(latest.get(master.id, ()))
        stop = None
        if not master.active and newest:
            before = newest[-2] if len(newest) > 1 else None
            stop = classify_stop(newest[-1], before, names)
        silence = max(int((now - master.last_active).total_seconds()), 0)
        rows.append(FleetRow(master=master, silence=silence, stop=stop))
    return Fleet(now=now, position=position, rows=tuple(rows), verification=verification)


def read_fleet(registry: Registry) -> Fleet:
    """The fleet now, by the registry's clock."""
    now = dt.datetime.fromtimestamp(int(registry.clock()), dt.UTC)
    return assemble(
        registry.get_masters(),
        registry.latest_events(count=2),
        now=now,
        position=registry.log_position(),
        verification=registry.last_verification(),
    )


__all__ = ["Fleet", "FleetRow", "assemble", "read_fleet"]

"""What :func:`projections.rebuild.verify` reports: each problem, and the verdict."""

from __future__ import annotations

import attrs


@attrs.frozen
class Problem:
    """One thing ``verify`` found wrong: in the hash ``chain`` (and the head row), in the
    ``archive``'s segments, against an ``anchor`` kept outside the database, or in the
    ``view``."""

    kind: str  # "chain", "archive", "anchor" or "view"
    detail: str
    position: int | None = None
    master_id: int | None = None

    def __str__(self) -> str:
        if self.position is not None:
            where = f"position {self.position}"
        elif self.master_id is not None:
            where = f"master {self.master_id}"
        else:
            where = "log"
        return f"{self.kind}: {where}: {self.detail}"


@attrs.frozen
class VerifyReport:
    """What ``verify`` found: the events checked, every problem, and how many anchors
    were checked."""

    events_checked: int
    problems: list[Problem]
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

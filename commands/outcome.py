"""What a command did to one master."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from eventstore import Tip
from projections.model import MasterState


@attrs.frozen
class Outcome:
    """What a command did to one master: its state after, and the log positions written."""

    state: MasterState
    changed: bool
    positions: tuple[int, ...] = ()
    tip: Tip | None = None  # where the log ended after the write, if it wrote


def written_tips(result: object) -> Iterator[Tip]:
    """Where the writes of an attempt's result (an :class:`Outcome`, a list of them, or
    None) end."""
    outcomes = result if isinstance(result, list) else [result]
    for outcome in outcomes:
        if isinstance(outcome, Outcome) and outcome.tip is not None:
            yield outcome.tip

"""The pure fold of master events into :class:`MasterState`: no I/O, no clock.

:func:`apply` is the fold of one event; :func:`fold` folds recorded events, and
:class:`RowFold` folds the undecoded rows a reader of the whole log gets
(:data:`eventstore.FoldRow`), skipping the decoding of check-ins that a later check-in
supersedes. Both give the states of applying every event with :func:`apply`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from eventstore import (
    CODEC,
    Codec,
    DecodeError,
    FoldRow,
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
    RecordedEvent,
)
from projections.model import MasterState


class FoldError(DecodeError):
    """The events of a stream do not make a master (e.g. a check-in before registration)."""


#: ``masters.last_active`` is an SQL INTEGER of epoch seconds.
MAX_LAST_ACTIVE = 2**31 - 1


def apply(state: MasterState | None, master_id: int, version: int, event: Any) -> MasterState:
    """The state after ``event`` (the stream's event number ``version``) on ``state``."""
    last_active = getattr(event, "last_active", 0)
    if not 0 <= last_active <= MAX_LAST_ACTIVE:
        raise FoldError(
            f"master {master_id}: version {version} has last_active {last_active}, outside "
            f"0..{MAX_LAST_ACTIVE} (the masters table's INTEGER)"
        )
    if isinstance(event, MasterRegistered | MasterAdopted):
        if state is not None:
            raise FoldError(f"master {master_id}: {event.type_name} at version {version}")
        active = event.active if isinstance(event, MasterAdopted) else False
        return MasterState(
            id=master_id,
            name=event.name,
            active=active,
            last_active=event.last_active,
            version=version,
        )
    if state is None:
        raise FoldError(f"master {master_id}: {type(event).__name__} before registration")
    if isinstance(event, MasterActivated | MasterCheckedIn | MasterHousekeepingForced):
        return attrs.evolve(state, active=True, last_active=event.last_active, version=version)
    if isinstance(event, MasterDeactivated):
        return attrs.evolve(state, active=False, last_active=event.last_active, version=version)
    raise FoldError(f"master {master_id}: no fold for {type(event).__name__}")


def apply_recorded(
    state: MasterState | None, recorded: RecordedEvent, codec: Codec = CODEC
) -> MasterState:
    """:func:`apply` for an event as the log holds it."""
    return apply(state, recorded.master_id, recorded.version, codec.decode(recorded))


def fold(events: Iterable[RecordedEvent], codec: Codec = CODEC) -> dict[int, MasterState]:
    """Every master of ``events`` (in log order) folded to its last state, by id."""
    states: dict[int, MasterState] = {}
    for recorded in events:
        states[recorded.master_id] = apply_recorded(states.get(recorded.master_id), recorded, codec)
    return states


#: The check-ins :class:`RowFold` may leave undecoded: of the current schema, with no data
#: of their own (``last_active`` is then ``recorded_at`` in whole seconds, see
#: :class:`eventstore.MasterCheckedIn`), recorded at a second :func:`apply` accepts.
_CHECKED_IN = MasterCheckedIn.type_name
_CHECKED_IN_VERSION = MasterCheckedIn.schema_version
_RECORDED_AT_LIMIT = (MAX_LAST_ACTIVE + 1) * 1_000_000


class RowFold:
    """A streaming fold of every master from :data:`eventstore.FoldRow` rows in log order,
    fed a batch at a time; :meth:`states` gives the same states as :func:`fold` of the same
    events, and raises where it raises (a :class:`~eventstore.DecodeError`).

    Why it may skip work: a check-in sets ``active``, ``last_active`` and the version and
    nothing else, so applying two check-ins of one master in a row gives the state of
    applying the second alone. Of a run of one master's check-ins, only the newest is
    decoded and applied, when that master's next other event arrives or at the end.
    Only check-ins whose decoding cannot fail are skipped this way (see ``_CHECKED_IN``);
    any other check-in is applied in its place, like every other event. One that comes
    before its master's registration is still refused: the newest of the run is applied
    to no state.
    """

    def __init__(
        self,
        codec: Codec = CODEC,
        *,
        states: Mapping[int, MasterState] | None = None,
        last: int = 0,
        count: int = 0,
    ) -> None:
        self._codec = codec
        #: ``states``: the masters' states before the first row (e.g. an archive segment's
        #: header's), when the rows do not start the log: those after position ``last``,
        #: the fold of ``count`` events.
        self._states: dict[int, MasterState] = dict(states or {})
        self._pending: dict[int, FoldRow] = {}
        #: Events folded, and the position of the last one.
        self.count = count
        self.last = last

    def feed(self, rows: Sequence[FoldRow]) -> None:
        """Fold ``rows``, the next events of the log in order. A batch at a time, so that
        a check-in costs a few comparisons and one store in a loop of locals."""
        if not rows:
            return
        pending, checked_in, version, limit = (
            self._pending,
            _CHECKED_IN,
            _CHECKED_IN_VERSION,
            _RECORDED_AT_LIMIT,
        )
        for row in rows:
            _, master_id, _, type_name, schema_version, data, recorded_at = row
            if (
                type_name == checked_in
                and data == "{}"
                and schema_version == version
                and 0 <= recorded_at < limit
            ):
                pending[master_id] = row
            else:
                self._flush(master_id)
                self._apply(row)
        self.count += len(rows)
        self.last = rows[-1][0]

    def states(self) -> dict[int, MasterState]:
        """The folded states, by master id, with every pending check-in applied."""
        for master_id in list(self._pending):
            self._flush(master_id)
        return self._states

    def _flush(self, master_id: int) -> None:
        row = self._pending.pop(master_id, None)
        if row is not None:
            self._apply(row)

    def _apply(self, row: FoldRow) -> None:
        position, master_id, version, type_name, schema_version, text, recorded_at = row
        try:
            data = json.loads(text)
        except ValueError as error:
            raise DecodeError(f"position {position}: data is not JSON") from error
        if not isinstance(data, dict):
            raise DecodeError(f"position {position}: data is not a JSON object")
        if type_name is None:
            raise DecodeError(f"position {position}: its type text is missing")
        event = self._codec.decode_data(type_name, schema_version, data, recorded_at=recorded_at)
        self._states[master_id] = apply(self._states.get(master_id), master_id, version, event)

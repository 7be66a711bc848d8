"""The streaming fold of undecoded rows (rebuild's, with its check-in shortcut) against the
general fold of decoded events, on generated histories, valid and not."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore import (
    CODEC,
    DecodeError,
    FoldRow,
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
    RecordedEvent,
    canonical_json,
    from_micros,
    to_micros,
)
from projections.fold import MAX_LAST_ACTIVE, FoldError, RowFold, fold
from projections.model import MasterState

T0 = 1_700_000_000


Step = tuple[int, Any, int, int | None]


@st.composite
def steps(draw: st.DrawFn) -> Step:
    """One event of a registered master: ``(master_id, event, recorded_at,
    schema_version)``; a schema version of None means the event's current one, encoded
    against its time (a check-in then mostly stores no data of its own)."""
    master_id = draw(st.integers(1, 3))
    second = draw(st.integers(T0, T0 + 600))
    recorded_at = second * 1_000_000 + draw(st.integers(0, 999_999))
    at = draw(st.one_of(st.just(second), st.just(second), st.integers(T0 - 5, T0 + 5)))
    event: Any = draw(
        st.one_of(
            st.builds(MasterCheckedIn, last_active=st.just(at)),
            st.builds(MasterCheckedIn, last_active=st.just(at)),
            st.builds(MasterCheckedIn, last_active=st.just(at)),
            st.builds(MasterActivated, last_active=st.just(at)),
            st.builds(MasterDeactivated, last_active=st.just(at)),
            st.builds(MasterHousekeepingForced),
        )
    )
    # A version 1 check-in stores last_active whatever the time.
    schema_version = 1 if isinstance(event, MasterCheckedIn) and draw(st.booleans()) else None
    return master_id, event, recorded_at, schema_version


@st.composite
def histories(draw: st.DrawFn) -> list[Step]:
    """Up to three masters' events, interleaved, each master registered or adopted first."""
    history: list[Step] = []
    begun: set[int] = set()
    for step in draw(st.lists(steps(), max_size=40)):
        master_id = step[0]
        if master_id not in begun:
            begun.add(master_id)
            first = draw(
                st.sampled_from(
                    [
                        MasterRegistered(name=f"m{master_id}", last_active=T0),
                        MasterAdopted(name=f"m{master_id}", active=True, last_active=T0),
                        MasterAdopted(name=f"m{master_id}", active=False, last_active=T0),
                    ]
                )
            )
            history.append((master_id, first, T0 * 1_000_000, None))
        history.append(step)
    return history


#: What a fault does to one check-in of a valid history, each making it invalid.
FAULTS: dict[str, dict[str, Any]] = {
    "recorded after 2038": {
        "data": {},
        "recorded_at": from_micros((MAX_LAST_ACTIVE + 1) * 1_000_000 + 7),
    },
    "recorded before 1970": {"data": {}, "recorded_at": from_micros(-999_993)},
    "last_active after 2038": {"data": {"last_active": MAX_LAST_ACTIVE + 1}},
    "version 1 without last_active": {"data": {}, "schema_version": 1},
    "no registration": {},
}


@st.composite
def faulty(draw: st.DrawFn) -> list[RecordedEvent]:
    """A valid history with one fault in one of its check-ins (or, for "no registration",
    in its master's first event, which is left out)."""
    log = recorded(draw(histories()))
    check_ins = [i for i, event in enumerate(log) if event.type == MasterCheckedIn.type_name]
    if not check_ins:
        return log
    index = draw(st.sampled_from(check_ins))
    fault = draw(st.sampled_from(sorted(FAULTS)))
    if fault == "no registration":
        master_id = log[index].master_id
        first = next(i for i, event in enumerate(log) if event.master_id == master_id)
        return log[:first] + log[first + 1 :]
    return [*log[:index], attrs.evolve(log[index], **FAULTS[fault]), *log[index + 1 :]]


def recorded(history: list[Step]) -> list[RecordedEvent]:
    """The history as the log would hold it: positions 1..n, versions 1..n per master."""
    versions: dict[int, int] = {}
    log = []
    for position, (master_id, event, recorded_at, schema_version) in enumerate(history, 1):
        versions[master_id] = version = versions.get(master_id, 0) + 1
        if schema_version is None:
            type_name, schema_version, data = CODEC.encode(event, recorded_at=recorded_at)
        else:
            type_name, _, data = CODEC.encode(event)
        log.append(
            RecordedEvent(
                position=position,
                event_id=uuid.uuid4(),
                master_id=master_id,
                version=version,
                type=type_name,
                schema_version=schema_version,
                data=data,
                metadata={},
                recorded_at=from_micros(recorded_at),
                hash="",
            )
        )
    return log


def as_row(event: RecordedEvent) -> FoldRow:
    """The row a reader of the whole log gets for ``event``."""
    return (
        event.position,
        event.master_id,
        event.version,
        event.type,
        event.schema_version,
        canonical_json(event.data),
        to_micros(event.recorded_at),
    )


def outcome(run: Any) -> dict[int, MasterState] | type[Exception]:
    """The states ``run`` folds, or DecodeError when it refuses the history."""
    try:
        return dict(run())
    except DecodeError:
        return DecodeError


def row_fold(rows: list[FoldRow], cuts: list[int]) -> dict[int, MasterState]:
    """``rows`` fed to a :class:`RowFold` in batches cut at ``cuts``."""
    folder = RowFold()
    start = 0
    for cut in [*sorted(c % (len(rows) + 1) for c in cuts), len(rows)]:
        folder.feed(rows[start:cut])
        start = cut
    states = folder.states()
    assert folder.count == len(rows)
    assert folder.last == (rows[-1][0] if rows else 0)
    return states


class TestRowFold:
    @given(histories(), st.lists(st.integers(0, 80), max_size=4))
    def test_equals_the_general_fold(self, history: list[Step], cuts: list[int]) -> None:
        """Fed in any batches, the row fold gives the states of folding every decoded
        event."""
        log = recorded(history)
        rows = [as_row(event) for event in log]
        assert row_fold(rows, cuts) == fold(log)

    @given(histories(), st.integers(0, 80))
    def test_from_given_states_equals_the_general_fold(
        self, history: list[Step], split: int
    ) -> None:
        """Started from the states of folding the log's first events (as an archive
        segment's header gives them), the row fold of the rest gives the states of folding
        every event."""
        log = recorded(history)
        split %= len(log) + 1
        folder = RowFold(states=fold(log[:split]))
        folder.feed([as_row(event) for event in log[split:]])
        assert folder.states() == fold(log)

    @given(faulty(), st.lists(st.integers(0, 80), max_size=4))
    def test_refuses_what_the_general_fold_refuses(
        self, log: list[RecordedEvent], cuts: list[int]
    ) -> None:
        """A history with a bad check-in, even one a later check-in supersedes, is refused
        (a DecodeError) by the row fold exactly when the general fold refuses it."""
        rows = [as_row(event) for event in log]
        assert outcome(lambda: row_fold(rows, cuts)) == outcome(lambda: fold(log))

    def test_a_run_of_check_ins_ends_at_the_newest(self) -> None:
        """Of a run of check-ins only the newest shows, and a later event sees it."""
        log = recorded(
            [(1, MasterRegistered(name="a", last_active=T0), T0 * 1_000_000, None)]
            + [(1, MasterCheckedIn(last_active=T0 + k), (T0 + k) * 1_000_000, None) for k in (1, 2)]
            + [(1, MasterDeactivated(last_active=T0 + 2), (T0 + 9) * 1_000_000, None)]
        )
        rows = [as_row(event) for event in log]
        assert rows[1][5] == "{}"  # the shortcut's case: no data of its own
        folder = RowFold()
        folder.feed(rows[:3])
        assert folder.states()[1] == MasterState(
            id=1, name="a", active=True, last_active=T0 + 2, version=3
        )
        folder.feed(rows[3:])
        assert folder.states()[1].active is False

    def test_a_check_in_out_of_range_is_refused_even_when_superseded(self) -> None:
        """A check-in whose time is outside the view's INTEGER is refused, as the general
        fold refuses it, though a later check-in would supersede it."""
        late = (MAX_LAST_ACTIVE + 1) * 1_000_000
        log = recorded(
            [
                (1, MasterRegistered(name="a", last_active=T0), T0 * 1_000_000, None),
                (1, MasterCheckedIn(last_active=MAX_LAST_ACTIVE + 1), late, None),
                (1, MasterCheckedIn(last_active=T0 + 1), (T0 + 1) * 1_000_000, None),
            ]
        )
        with pytest.raises(FoldError):
            fold(log)
        with pytest.raises(FoldError):
            RowFold().feed([as_row(event) for event in log])

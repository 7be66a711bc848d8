"""Projections: the pure fold of events into masters, and the model it produces."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import attrs
import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from commands import decide
from eventstore.errors import DecodeError, RegistryError
from eventstore.events import (
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
)
from eventstore.recorded import RecordedEvent
from mastertrail import MasterModel
from projections import (
    FoldError,
    MasterState,
    apply,
    epoch_to_datetime,
    fold,
    name_hash,
)
from tests.projections_support import (
    EPOCH,
    T0,
    UTC,
    recorded,
    step,
)


class TestApply:
    def test_registration_starts_an_inactive_master(self) -> None:
        """master.registered makes a master inactive, last active when registered."""
        state = apply(None, 3, 1, MasterRegistered(name="a", last_active=T0))
        assert state == MasterState(id=3, name="a", active=False, last_active=T0, version=1)

    @pytest.mark.parametrize("active", [True, False])
    def test_adoption_starts_a_master_as_found(self, active: bool) -> None:
        """master.adopted makes a master exactly as its row was."""
        state = apply(None, 3, 1, MasterAdopted(name="a", active=active, last_active=T0 - 9))
        assert state == MasterState(id=3, name="a", active=active, last_active=T0 - 9, version=1)

    @pytest.mark.parametrize(
        "event",
        [
            MasterActivated(last_active=T0 + 5),
            MasterCheckedIn(last_active=T0 + 5),
            MasterHousekeepingForced(last_active=T0 + 5),
        ],
    )
    def test_activation_check_in_and_forcing_make_it_active_at_their_time(self, event: Any) -> None:
        """Each of these events leaves the master active with the event's last_active."""
        start = apply(None, 3, 1, MasterRegistered(name="a", last_active=T0))
        assert apply(start, 3, 2, event) == attrs.evolve(
            start, active=True, last_active=T0 + 5, version=2
        )

    def test_deactivation_makes_it_inactive(self) -> None:
        """master.deactivated leaves the master inactive with the recorded last_active."""
        start = MasterState(id=3, name="a", active=True, last_active=T0, version=4)
        after = apply(start, 3, 5, MasterDeactivated(last_active=T0, timeout=600))
        assert after == attrs.evolve(start, active=False, version=5)

    def test_the_fold_is_pure(self) -> None:
        """apply reads nothing but its arguments (not the wall clock, not what it applied
        before) and leaves the state it was given as it was."""
        start = MasterState(id=3, name="a", active=False, last_active=T0, version=1)
        event = MasterActivated(last_active=T0 + 1)
        expected = MasterState(id=3, name="a", active=True, last_active=T0 + 1, version=2)
        for wall_clock in ("2001-02-03 04:05:06", "2040-01-01 00:00:00"):
            with freeze_time(wall_clock):
                assert apply(start, 3, 2, event) == expected, wall_clock
                apply(expected, 3, 3, MasterDeactivated(last_active=T0 + 1))
        assert start == MasterState(id=3, name="a", active=False, last_active=T0, version=1)

    @pytest.mark.parametrize(
        ("state", "event"),
        [
            (None, MasterCheckedIn(last_active=T0)),
            (None, MasterDeactivated(last_active=T0)),
            (
                MasterState(id=3, name="a", active=False, last_active=T0, version=1),
                MasterRegistered(name="a", last_active=T0),
            ),
            (
                MasterState(id=3, name="a", active=False, last_active=T0, version=1),
                MasterAdopted(name="a", active=False, last_active=T0),
            ),
            (
                MasterState(id=3, name="a", active=False, last_active=T0, version=1),
                object(),
            ),
        ],
    )
    def test_events_that_make_no_master_raise_fold_error(
        self, state: MasterState | None, event: Any
    ) -> None:
        """A check-in before registration, a second registration or an unknown event is a
        FoldError, a DecodeError that is a RegistryError and a ValueError."""
        with pytest.raises(FoldError) as error:
            apply(state, 3, 2, event)
        assert isinstance(error.value, DecodeError)
        assert isinstance(error.value, RegistryError)
        assert isinstance(error.value, ValueError)


class TestFold:
    def test_interleaved_streams_fold_to_each_masters_last_state(self) -> None:
        """Events of several masters in log order fold to one state per master."""
        log = [
            recorded(1, 1, 1, MasterRegistered(name="a", last_active=T0)),
            recorded(2, 2, 1, MasterRegistered(name="b", last_active=T0 + 1)),
            recorded(3, 1, 2, MasterActivated(last_active=T0 + 2)),
            recorded(4, 2, 2, MasterActivated(last_active=T0 + 3)),
            recorded(5, 1, 3, MasterDeactivated(last_active=T0 + 2)),
            recorded(6, 2, 3, MasterCheckedIn(last_active=T0 + 4)),
        ]
        assert fold(log) == {
            1: MasterState(id=1, name="a", active=False, last_active=T0 + 2, version=3),
            2: MasterState(id=2, name="b", active=True, last_active=T0 + 4, version=3),
        }

    def test_an_empty_log_folds_to_no_masters(self) -> None:
        """No events, no masters."""
        assert fold([]) == {}

    def test_an_unknown_stored_type_is_a_decode_error(self) -> None:
        """An event type the catalogue does not know cannot be folded."""
        event = attrs.evolve(
            recorded(1, 1, 1, MasterRegistered(name="a", last_active=T0)), type="master.renamed"
        )
        with pytest.raises(DecodeError):
            fold([event])


class TestFoldProperty:
    @given(st.lists(step, max_size=40))
    def test_folding_decided_events_agrees_with_a_plain_model(
        self, steps: list[tuple[int, str, int]]
    ) -> None:
        """Whatever the commands, the fold of the events they decide is what a plain
        dictionary model of the connector says."""
        now = T0
        log: list[RecordedEvent] = []
        states: dict[int, MasterState] = {}
        model: dict[int, tuple[bool, int]] = {}
        for index, command, elapsed in steps:
            now += elapsed
            master_id = index + 1
            state = states.get(master_id)
            if state is None:
                if command != "find":
                    continue
                decision = decide.register(f"m{index}", now)
                model[master_id] = (False, now)
            elif command == "find":
                continue
            elif command in ("start", "check_in"):
                decision = decide.set_state(state, True, now, stop_reason="stopped")
                model[master_id] = (True, now)
            elif command == "stop":
                decision = decide.set_state(state, False, now, stop_reason="stopped")
                model[master_id] = (False, model[master_id][1])
            elif command == "expire":
                decision = decide.expire(state, now, 600)
                active, last_active = model[master_id]
                if active and last_active < now - 600:
                    model[master_id] = (False, last_active)
            else:
                decision = decide.force_housekeeping(state)
                model[master_id] = (True, 0)
            version = 0 if state is None else state.version
            for event, _reason in decision.events:
                version += 1
                log.append(recorded(len(log) + 1, master_id, version, event))
                states[master_id] = apply(states.get(master_id), master_id, version, event)
        folded = fold(log)
        assert folded == states
        assert {i: (s.active, s.last_active) for i, s in folded.items()} == model


class TestModel:
    def test_name_hash_is_the_sha1_hex_of_the_utf8_name(self) -> None:
        """name_hash is Buildbot's: SHA-1 of the UTF-8 bytes, in hex."""
        assert name_hash("ü:/a") == hashlib.sha1("ü:/a".encode()).hexdigest()
        assert len(name_hash("x")) == 40

    def test_epoch_seconds_become_aware_utc(self) -> None:
        """Whole epoch seconds become an aware UTC datetime."""
        assert epoch_to_datetime(0) == EPOCH
        assert epoch_to_datetime(T0) == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)

    def test_a_state_becomes_a_frozen_model(self) -> None:
        """to_model drops the version and turns last_active into a datetime."""
        state = MasterState(id=3, name="a", active=True, last_active=T0, version=9)
        model = state.to_model()
        assert model == MasterModel(3, "a", True, epoch_to_datetime(T0))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            model.name = "b"  # type: ignore[misc]

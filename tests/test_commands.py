"""The pure core of the write side: input validation and decisions of (state, command, now)."""

from __future__ import annotations

import math

import pytest
from freezegun import freeze_time

from commands import Now, decide, validate
from eventstore.errors import InvalidArgument, InvalidArgumentType, RegistryError
from eventstore.events import (
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
)
from projections.model import MasterState

NOW = 1_700_000_000


def state(*, active: bool, last_active: int = NOW - 30, version: int = 3) -> MasterState:
    return MasterState(
        id=7, name="host:/srv/a", active=active, last_active=last_active, version=version
    )


class TestRegister:
    def test_a_new_name_is_registered_inactive_and_last_active_now(self) -> None:
        """Registering a name yields one master.registered event carrying the name and now."""
        decision = decide.register("host:/srv/a", NOW)
        assert decision.events == (
            (MasterRegistered(name="host:/srv/a", last_active=NOW), "registered"),
        )
        assert decision.changed is True


class TestSetState:
    def test_activating_an_inactive_master_changes_it(self) -> None:
        """Inactive to active: a master.activated event at now, reason started, changed."""
        decision = decide.set_state(state(active=False), True, NOW, stop_reason="stopped")
        assert decision.events == ((MasterActivated(last_active=NOW), "started"),)
        assert decision.changed is True

    def test_activating_an_active_master_is_a_check_in(self) -> None:
        """Active while active: a master.checked_in event at now, reason heartbeat, unchanged."""
        decision = decide.set_state(state(active=True), True, NOW, stop_reason="stopped")
        assert decision.events == ((MasterCheckedIn(last_active=NOW), "heartbeat"),)
        assert decision.changed is False

    def test_deactivating_an_active_master_keeps_last_active(self) -> None:
        """Active to inactive: a master.deactivated event with last_active unchanged, changed."""
        decision = decide.set_state(
            state(active=True, last_active=NOW - 99), False, NOW, stop_reason="stopped"
        )
        assert decision.events == ((MasterDeactivated(last_active=NOW - 99), "stopped"),)
        assert decision.changed is True

    def test_deactivation_records_the_given_reason(self) -> None:
        """The reason of a deactivation is the one the shell chose (e.g. expired)."""
        decision = decide.set_state(state(active=True), False, NOW, stop_reason="expired")
        assert [reason for _, reason in decision.events] == ["expired"]

    def test_deactivating_an_inactive_master_does_nothing(self) -> None:
        """Inactive to inactive: no event, unchanged."""
        decision = decide.set_state(state(active=False), False, NOW, stop_reason="stopped")
        assert decision.events == ()
        assert decision.changed is False


class TestExpire:
    def test_a_master_silent_longer_than_the_timeout_is_deactivated(self) -> None:
        """last_active one second before now - timeout: deactivated, with the timeout recorded."""
        decision = decide.expire(state(active=True, last_active=NOW - 601), NOW, 600)
        assert decision.events == (
            (MasterDeactivated(last_active=NOW - 601, timeout=600), "expired"),
        )
        assert decision.changed is True

    def test_a_master_silent_exactly_the_timeout_is_kept(self) -> None:
        """last_active exactly now - timeout is not older than it: nothing happens."""
        decision = decide.expire(state(active=True, last_active=NOW - 600), NOW, 600)
        assert decision == decide.Decision()

    def test_an_inactive_master_is_never_expired(self) -> None:
        """An inactive master, however old, is left alone."""
        decision = decide.expire(state(active=False, last_active=0), NOW, 600)
        assert decision == decide.Decision()

    def test_a_zero_timeout_expires_anything_older_than_now(self) -> None:
        """With timeout 0 a master last active one second ago is expired, one active now is not."""
        assert decide.expire(state(active=True, last_active=NOW - 1), NOW, 0).changed
        assert not decide.expire(state(active=True, last_active=NOW), NOW, 0).changed


class TestForceHousekeeping:
    def test_every_master_is_marked_active_at_the_epoch(self) -> None:
        """Forced housekeeping records master.housekeeping_forced at the epoch, reason upgrade."""
        for active in (True, False):
            decision = decide.force_housekeeping(state(active=active))
            assert decision.events == ((MasterHousekeepingForced(last_active=0), "upgrade"),)


class TestAdoption:
    def test_a_row_without_history_is_adopted_before_the_command_events(self) -> None:
        """A state of version 0 gets a master.adopted event first, reason adopted, as found."""
        found = state(active=True, last_active=NOW - 5, version=0)
        decision = decide.set_state(found, True, NOW, stop_reason="stopped")
        assert decision.events == (
            (MasterAdopted(name="host:/srv/a", active=True, last_active=NOW - 5), "adopted"),
            (MasterCheckedIn(last_active=NOW), "heartbeat"),
        )
        assert decision.changed is False

    def test_adopt_records_only_the_adoption(self) -> None:
        """adopt() of a row without history is one master.adopted event, unchanged."""
        found = state(active=False, version=0)
        decision = decide.adopt(found)
        assert [type(event) for event, _ in decision.events] == [MasterAdopted]
        assert decision.changed is False

    def test_a_master_with_history_is_not_adopted_again(self) -> None:
        """adopt() of a master that has events decides nothing."""
        assert decide.adopt(state(active=False, version=1)) == decide.Decision()

    def test_even_a_no_op_command_adopts(self) -> None:
        """Inactive to inactive on a row without history still records the adoption."""
        found = state(active=False, version=0)
        decision = decide.set_state(found, False, NOW, stop_reason="stopped")
        assert [reason for _, reason in decision.events] == ["adopted"]
        assert decision.changed is False

    def test_expiry_of_a_row_without_history_adopts_first(self) -> None:
        """An expired row without history: adoption, then the deactivation."""
        found = state(active=True, last_active=0, version=0)
        decision = decide.expire(found, NOW, 600)
        assert [reason for _, reason in decision.events] == ["adopted", "expired"]


class TestDecisionsArePure:
    def test_the_wall_clock_never_enters_a_decision(self) -> None:
        """A decision depends on its arguments only: whatever the system clock says, the
        events carry the ``now`` they were given (or the state's own last_active)."""
        current = state(active=True)
        for wall_clock in ("2001-02-03 04:05:06", "2040-01-01 00:00:00"):
            with freeze_time(wall_clock):
                heartbeat = decide.set_state(current, True, NOW, stop_reason="stopped")
                expiry = decide.expire(current, NOW + 10_000, 600)
            assert heartbeat == decide.Decision(
                ((MasterCheckedIn(last_active=NOW), "heartbeat"),), False
            ), wall_clock
            assert expiry == decide.Decision(
                ((MasterDeactivated(last_active=NOW - 30, timeout=600), "expired"),), True
            ), wall_clock


def assert_rejected(error: pytest.ExceptionInfo[BaseException], builtin: type[Exception]) -> None:
    assert isinstance(error.value, RegistryError)
    assert isinstance(error.value, builtin)


class TestValidateMasterName:
    @pytest.mark.parametrize(
        "name",
        ["a", "host:/srv/master", "some:Master", " spaced ", "ünïcödé:/bå", "emoji:🚀", "x" * 1024],
    )
    def test_good_names_are_returned_unchanged(self, name: str) -> None:
        """A non-empty printable string of at most 1024 characters is accepted as is."""
        assert validate.master_name(name) == name

    @pytest.mark.parametrize("name", [None, 1, b"bytes", ["a"], 1.5, True])
    def test_a_name_that_is_not_a_str_is_a_type_error(self, name: object) -> None:
        """Anything but a str raises InvalidArgumentType, a TypeError."""
        with pytest.raises(InvalidArgumentType) as error:
            validate.master_name(name)
        assert_rejected(error, TypeError)
        assert error.value.argument == "name"

    @pytest.mark.parametrize(
        "name",
        ["", "x" * 1025, "nul\x00byte", "new\nline", "tab\there", "del\x7f", "\u2028", "\ud800"],
    )
    def test_a_bad_name_is_a_value_error(self, name: str) -> None:
        """Empty, too long, or with a control character: InvalidArgument, a ValueError."""
        with pytest.raises(InvalidArgument) as error:
            validate.master_name(name)
        assert_rejected(error, ValueError)


class TestValidateActor:
    def test_an_actor_follows_the_rules_of_a_name(self) -> None:
        """A printable non-empty str is an actor; anything else is refused as ``by``."""
        assert validate.actor("host:/srv/a") == "host:/srv/a"
        with pytest.raises(InvalidArgumentType) as wrong_type:
            validate.actor(7)
        with pytest.raises(InvalidArgument) as wrong_value:
            validate.actor("")
        assert wrong_type.value.argument == wrong_value.value.argument == "by"


class TestValidateMasterId:
    @pytest.mark.parametrize("value", [1, 42, validate.MAX_MASTER_ID])
    def test_positive_ints_that_fit_an_integer_column_are_accepted(self, value: int) -> None:
        """1 up to 2**31 - 1 is a master id."""
        assert validate.master_id(value) == value

    @pytest.mark.parametrize("value", [True, False, "1", 1.0, None])
    def test_non_ints_and_bools_are_type_errors(self, value: object) -> None:
        """A bool is not an int here; neither is a str or a float."""
        with pytest.raises(InvalidArgumentType) as error:
            validate.master_id(value)
        assert_rejected(error, TypeError)

    @pytest.mark.parametrize("value", [0, -1, validate.MAX_MASTER_ID + 1, 10**30])
    def test_out_of_range_ints_are_value_errors(self, value: int) -> None:
        """Zero, negatives and ids beyond an SQL INTEGER are rejected."""
        with pytest.raises(InvalidArgument) as error:
            validate.master_id(value)
        assert_rejected(error, ValueError)


class TestValidateActiveFlag:
    def test_bools_are_accepted(self) -> None:
        """True and False pass through."""
        assert validate.active_flag(True) is True
        assert validate.active_flag(False) is False

    @pytest.mark.parametrize("value", [1, 0, "True", None])
    def test_truthy_non_bools_are_type_errors(self, value: object) -> None:
        """1, 0, strings and None are not a bool."""
        with pytest.raises(InvalidArgumentType) as error:
            validate.active_flag(value)
        assert_rejected(error, TypeError)


class TestValidateTimeout:
    @pytest.mark.parametrize(("value", "seconds"), [(0, 0), (600, 600), (1.9, 1)])
    def test_whole_seconds_are_returned(self, value: float, seconds: int) -> None:
        """A number of seconds in range becomes whole seconds."""
        assert validate.timeout(value) == seconds

    @pytest.mark.parametrize("value", [True, "600", None])
    def test_non_numbers_are_type_errors(self, value: object) -> None:
        """A bool, str or None is not a timeout."""
        with pytest.raises(InvalidArgumentType):
            validate.timeout(value)

    @pytest.mark.parametrize("value", [-1, math.inf, math.nan, validate.MAX_TIMEOUT + 1])
    def test_out_of_range_numbers_are_value_errors(self, value: float) -> None:
        """Negative, infinite, NaN and absurdly long timeouts are rejected."""
        with pytest.raises(InvalidArgument):
            validate.timeout(value)


class TestNow:
    def test_one_reading_gives_whole_seconds_and_microseconds(self) -> None:
        """A fractional reading: last_active truncates to seconds, recorded_at keeps micros."""
        now = Now.read(lambda: 1_700_000_000.123456)
        assert now.seconds == 1_700_000_000
        assert now.micros == 1_700_000_000_123_456

    @pytest.mark.parametrize(
        ("reading", "error"),
        [(-1.0, InvalidArgument), (math.nan, InvalidArgument), ("now", InvalidArgumentType)],
    )
    def test_a_clock_returning_nonsense_is_rejected(
        self, reading: object, error: type[Exception]
    ) -> None:
        """A clock reading before the epoch, NaN or not a number raises a typed error."""
        with pytest.raises(error):
            Now.read(lambda: reading)  # type: ignore[arg-type,return-value]

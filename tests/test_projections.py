"""Projections: the pure fold, the view as of a past moment, rebuild and verify."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import eventstore
import projections.queries
from commands import decide
from eventstore.errors import DecodeError, RegistryError
from eventstore.events import (
    CODEC,
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterHousekeepingForced,
    MasterRegistered,
)
from eventstore.recorded import NewEvent, RecordedEvent, to_micros
from mastertrail import MasterModel, Registry
from projections import (
    FoldError,
    MasterState,
    apply,
    epoch_to_datetime,
    fold,
    name_hash,
    position_at,
)
from tests import test_registry
from tests.conftest import FakeClock
from tests.tamper_support import drop_guards
from tests.test_registry import Shared

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1_700_000_000

#: A registry on a database of its own per class and backend, for tests that only read.
shared = test_registry.shared


def recorded(position: int, master_id: int, version: int, event: Any) -> RecordedEvent:
    """An event as the log would hand it back."""
    type_name, schema_version, data = CODEC.encode(event)
    return RecordedEvent(
        position=position,
        event_id=uuid.uuid4(),
        master_id=master_id,
        version=version,
        type=type_name,
        schema_version=schema_version,
        data=data,
        metadata={},
        recorded_at=EPOCH,
        hash="",
    )


def models(states: dict[int, MasterState]) -> list[MasterModel]:
    """The masters of a fold as the registry returns them, by id."""
    return [states[master_id].to_model() for master_id in sorted(states)]


def execute(registry: Registry, statement: str, **params: object) -> None:
    with registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def insert_raw_master(
    registry: Registry, master_id: int, name: str, *, active: bool, last_active: int
) -> None:
    """A ``masters`` row written behind the log's back."""
    execute(
        registry,
        "INSERT INTO masters (id, name, name_hash, active, last_active) "
        "VALUES (:id, :name, :hash, :active, :last_active)",
        id=master_id,
        name=name,
        hash=hashlib.sha1(name.encode()).hexdigest(),
        active=int(active),
        last_active=last_active,
    )


def view_rows(registry: Registry) -> list[tuple[Any, ...]]:
    """Every row of ``masters`` as stored, by id."""
    with registry.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM masters ORDER BY id"))]


def drop_immutability_triggers(registry: Registry) -> None:
    """Let a test tamper with the log, as someone with raw database access could."""
    with registry.engine.begin() as conn:
        drop_guards(conn)


# -- the pure fold ---------------------------------------------------------------------------


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
        """Applying the same event to the same state twice gives equal states, input untouched."""
        start = MasterState(id=3, name="a", active=False, last_active=T0, version=1)
        event = MasterActivated(last_active=T0 + 1)
        assert apply(start, 3, 2, event) == apply(start, 3, 2, event)
        assert start.active is False

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


#: One step of a master's life: (master index, command).
step = st.tuples(
    st.integers(0, 2),
    st.sampled_from(["find", "start", "check_in", "stop", "expire", "force"]),
    st.integers(0, 900),
)


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


# -- against a database ----------------------------------------------------------------------


def make_busy(registry: Registry, clock: FakeClock) -> list[RecordedEvent]:
    """Give the registry a history of every kind of event; returns its log."""
    a = registry.find_master_id("host:/srv/a")
    clock.advance(10)
    registry.set_master_state(a, True)
    b = registry.find_master_id("host:/srv/b")
    clock.advance(10)
    registry.set_master_state(b, True)
    registry.set_master_state(a, True)
    clock.advance(700)
    registry.set_master_state(b, True)
    registry.expire_masters()
    insert_raw_master(registry, 40, "old:/srv/c", active=True, last_active=T0 - 50)
    clock.advance(5)
    registry.adopt()
    registry.find_master_id("host:/srv/d")
    clock.advance(5)
    registry.set_all_masters_active_long_time_ago()
    clock.advance(5)
    registry.set_master_state(b, True)
    registry.set_master_state(40, False)
    return list(registry.events())


@pytest.fixture
def busy(registry: Registry, clock: FakeClock) -> list[RecordedEvent]:
    """A registry with a history of every kind of event; returns its log."""
    return make_busy(registry, clock)


@pytest.fixture(scope="class")
def shared_busy(shared: Shared) -> list[RecordedEvent]:
    """:func:`busy` on the class's shared registry."""
    return make_busy(shared.registry, shared.clock)


class TestMastersAsOf:
    @pytest.fixture
    def registry(self, shared: Shared) -> Registry:
        """The class's shared registry (these tests only read)."""
        return shared.registry

    @pytest.fixture
    def busy(self, shared_busy: list[RecordedEvent]) -> list[RecordedEvent]:
        return shared_busy

    def test_as_of_a_position_is_the_fold_of_the_log_up_to_it(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """masters_as_of(P) equals the fold of events 1..P (P included), for every P."""
        for position in range(len(busy) + 2):
            expected = models(fold(busy[:position]))
            assert registry.masters_as_of(position) == expected, position

    def test_as_of_a_moment_is_the_fold_of_what_was_recorded_by_then(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """masters_as_of(t) equals the fold of every event recorded at or before t."""
        moments = sorted({e.recorded_at for e in busy})
        micro = dt.timedelta(microseconds=1)
        for moment in [moments[0] - micro, *moments, *(m + micro for m in moments)]:
            expected = models(fold(e for e in busy if e.recorded_at <= moment))
            assert registry.masters_as_of(moment) == expected, moment

    def test_a_moment_in_another_time_zone_is_the_same_instant(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """An aware datetime at UTC-05:00 gives the same answer as its UTC equivalent."""
        moment = busy[5].recorded_at
        minus_five = dt.timezone(dt.timedelta(hours=-5))
        assert registry.masters_as_of(moment.astimezone(minus_five)) == registry.masters_as_of(
            moment
        )

    def test_before_anything_happened_there_were_no_masters(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Position 0, or a moment before the first event, has no masters."""
        assert registry.masters_as_of(0) == []
        assert registry.masters_as_of(EPOCH) == []


class TestMastersAsOfSearch:
    """The newest event of each master at a position is found by a binary search of its
    stream, and the newest event at a moment by the minute it was recorded in (SQLite)."""

    def test_uneven_streams_at_every_position(self, registry: Registry, clock: FakeClock) -> None:
        """Masters whose streams differ in length and start late: every position's answer
        is the fold of the log up to it."""
        first = registry.find_master_id("first")
        names = iter(("late", "later"))
        ids = [first]
        for step in range(60):
            clock.advance(1)
            if step in (14, 41):
                ids.append(registry.find_master_id(next(names)))
            # The first master writes most; the others now and then, so that the
            # binary search meets streams of many lengths.
            chosen = ids[0] if step % 3 else ids[step % len(ids)]
            registry.set_master_state(chosen, step % 11 != 5)
        log = list(registry.events())
        for position in range(len(log) + 2):
            assert registry.masters_as_of(position) == models(fold(log[:position])), position

    def test_every_master_whatever_the_databases_recursion_limit(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """More masters than MariaDB lets a recursive query iterate (lowered here from
        its default of 1000): every one of them is in the answer."""
        if registry.engine.dialect.name != "mysql":
            pytest.skip("MariaDB's max_recursive_iterations")
        for n in range(8):
            master_id = registry.find_master_id(f"m{n}")
            clock.advance(1)
            registry.set_master_state(master_id, True)
        log = list(registry.events())
        with registry.engine.connect() as conn:
            conn.exec_driver_sql("SET SESSION max_recursive_iterations = 4")
            found = projections.queries.masters_as_of(conn, len(log))
        assert found == models(fold(log))
        assert len(found) == 8

    def test_a_clock_out_of_order_across_minutes(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """With times out of log order and minutes apart, a moment's position is that of
        the newest event recorded at or before it (by time, then position), also when
        the moment's own minute has none, or only later ones."""
        master_id = registry.find_master_id("m")
        for step in (30, 95, -70, 200, -150, 0.000001, 61, 0, -61):
            clock.advance(step)
            registry.set_master_state(master_id, True)
        log = list(registry.events())
        micro = dt.timedelta(microseconds=1)
        minutes = {e.recorded_at.replace(second=0, microsecond=0) for e in log}
        moments = {e.recorded_at + d for e in log for d in (-micro, dt.timedelta(0), micro)}
        moments |= (
            minutes | {m - micro for m in minutes} | {m + dt.timedelta(seconds=59) for m in minutes}
        )
        for moment in sorted(moments):
            recorded = [e for e in log if e.recorded_at <= moment]
            newest = max(recorded, key=lambda e: (e.recorded_at, e.position), default=None)
            with registry.engine.connect() as conn:
                found = position_at(conn, to_micros(moment))
            assert found == (0 if newest is None else newest.position), moment


class TestMastersAsOfCost:
    def test_the_answer_does_not_replay_the_log(self, registry: Registry, clock: FakeClock) -> None:
        """The number of queries depends on the number of masters, not on the log's length."""
        ids = [registry.find_master_id(n) for n in ("a", "b")]

        def queries_for_as_of() -> int:
            statements = []

            def count(*args: Any) -> None:
                statements.append(args)

            sa.event.listen(registry.engine, "before_cursor_execute", count)
            try:
                registry.masters_as_of(10**9)
            finally:
                sa.event.remove(registry.engine, "before_cursor_execute", count)
            return len(statements)

        for master_id in ids:
            registry.set_master_state(master_id, True)
        short = queries_for_as_of()
        for _ in range(100):
            clock.advance(1)
            for master_id in ids:
                registry.set_master_state(master_id, True)
        assert queries_for_as_of() == short


class TestRebuild:
    def test_rebuild_returns_the_number_of_events_replayed(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """rebuild() replays every event of the log and says how many."""
        assert registry.rebuild() == len(busy)

    def test_a_rebuild_of_a_correct_view_changes_nothing(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Rebuilding a view that agrees with the log leaves every row as it was."""
        before = view_rows(registry)
        registry.rebuild()
        assert view_rows(registry) == before

    def test_rebuild_restores_missing_rows_with_their_ids(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Rows deleted from masters come back with their recorded ids and values."""
        before = view_rows(registry)
        execute(registry, "DELETE FROM masters WHERE id IN (1, 40)")
        registry.rebuild()
        assert view_rows(registry) == before
        assert registry.verify().ok

    def test_rebuild_updates_drifted_rows_in_place(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Rows whose name, name_hash, active or last_active drifted get the log's values back."""
        before = view_rows(registry)
        execute(registry, "UPDATE masters SET active = 1 - active, last_active = 7 WHERE id = 1")
        execute(registry, "UPDATE masters SET name = 'forged', name_hash = 'x' WHERE id = 2")
        registry.rebuild()
        assert view_rows(registry) == before

    def test_rebuild_never_deletes_a_row(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """A row the log knows nothing of survives the rebuild untouched."""
        insert_raw_master(registry, 99, "stray:/srv/x", active=True, last_active=5)
        before = view_rows(registry)
        registry.rebuild()
        assert view_rows(registry) == before

    def test_new_registrations_after_a_rebuild_get_fresh_ids(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """With rows deleted and rebuilt, a new name gets an id no replayed master has."""
        replayed = {e.master_id for e in busy}
        execute(registry, "DELETE FROM masters")
        registry.rebuild()
        fresh = registry.find_master_id("host:/srv/fresh")
        assert fresh not in replayed
        assert fresh > max(replayed)
        assert registry.verify().ok

    def test_ids_taken_by_the_table_after_a_rebuild_are_fresh(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """An insert that lets the database choose the id (as Buildbot's own code does)
        collides with no replayed master either."""
        replayed = {e.master_id for e in busy}
        execute(registry, "DELETE FROM masters")
        registry.rebuild()
        execute(
            registry,
            "INSERT INTO masters (name, name_hash, active, last_active) "
            "VALUES ('auto', :hash, 0, 0)",
            hash=hashlib.sha1(b"auto").hexdigest(),
        )
        ids = [row[0] for row in view_rows(registry)]
        assert len(ids) == len(replayed) + 1
        assert set(ids) - replayed

    def test_registrations_never_reuse_the_id_of_a_missing_row(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Even before a rebuild, the newest master's row being gone does not free its id."""
        newest = max(e.master_id for e in busy)
        execute(registry, "DELETE FROM masters WHERE id = :id", id=newest)
        assert registry.find_master_id("host:/srv/fresh") > newest

    def test_progress_is_reported(self, registry: Registry, busy: list[RecordedEvent]) -> None:
        """progress(done, total) ends with every event done."""
        calls: list[tuple[int, int]] = []
        registry.rebuild(progress=lambda done, total: calls.append((done, total)))
        assert calls[-1] == (len(busy), len(busy))

    def test_events_committed_during_the_rebuild_are_folded_in(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """A registration that commits while the log streams is in the rebuilt view."""
        late: list[int] = []

        def register_meanwhile(done: int, total: int) -> None:
            if not late:
                late.append(registry.find_master_id("host:/srv/late"))

        execute(registry, "DELETE FROM masters")
        assert registry.rebuild(progress=register_meanwhile) == len(busy) + 1
        assert registry.get_master(late[0]) is not None
        assert registry.verify().ok


class TestVerify:
    def test_a_consistent_registry_verifies(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Log and view agree: ok, no problems, every event checked."""
        report = registry.verify()
        assert report.ok
        assert report.problems == []
        assert report.events_checked == len(busy)

    def test_every_difference_is_listed(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """Drifted fields, a missing row and a row without history are each reported."""
        execute(registry, "UPDATE masters SET active = 1 - active, last_active = 7 WHERE id = 1")
        execute(registry, "UPDATE masters SET name = 'forged' WHERE id = 2")
        execute(registry, "DELETE FROM masters WHERE id = 40")
        insert_raw_master(registry, 99, "stray:/srv/x", active=False, last_active=5)
        report = registry.verify()
        assert not report.ok
        found = {(p.kind, p.master_id, p.detail.split(" ")[0]) for p in report.problems}
        assert found == {
            ("view", 1, "active"),
            ("view", 1, "last_active"),
            ("view", 2, "name"),
            ("view", 40, "row"),
            ("view", 99, "row"),
        }
        details = {p.master_id: p.detail for p in report.problems if p.master_id in (40, 99)}
        assert "missing" in details[40]
        assert "no history" in details[99]

    def test_a_drifted_name_hash_is_reported(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """A row whose name_hash is not the SHA-1 of its name is a difference."""
        execute(registry, "UPDATE masters SET name_hash = :h WHERE id = 1", h="0" * 40)
        report = registry.verify()
        assert [(p.kind, p.master_id) for p in report.problems] == [("view", 1)]
        assert "name_hash" in report.problems[0].detail

    def test_a_broken_chain_is_reported_at_its_position(
        self, registry: Registry, busy: list[RecordedEvent]
    ) -> None:
        """An event changed behind the log's back breaks the chain at its position."""
        drop_immutability_triggers(registry)
        execute(registry, "UPDATE mastertrail_events SET metadata_id = type_id WHERE position = 3")
        report = registry.verify()
        assert not report.ok
        assert [(p.kind, p.position) for p in report.problems] == [("chain", 3)]
        assert "position 3" in str(report.problems[0])

    def test_verify_changes_nothing(self, registry: Registry, busy: list[RecordedEvent]) -> None:
        """verify() only reads: a drifted view stays drifted."""
        execute(registry, "UPDATE masters SET last_active = 7 WHERE id = 1")
        before = view_rows(registry)
        registry.verify()
        assert view_rows(registry) == before


# -- check-ins of schema version 1 and 2 -----------------------------------------------------


def append_raw(registry: Registry, master_id: int, event: Any, micros: int, *, v1: bool) -> None:
    """Append ``event`` recorded at ``micros``, behind the view's back: encoded with its
    time at the current schema version, or (``v1``) as version 1 stored every field."""
    if v1:
        type_name, schema_version, data = event.type_name, 1, attrs.asdict(event)
    else:
        type_name, schema_version, data = CODEC.encode(event, recorded_at=micros)
    with registry.engine.begin() as conn:
        eventstore.append(
            conn,
            master_id,
            eventstore.stream_version(conn, master_id),
            [
                NewEvent(
                    event_id=uuid.uuid4(),
                    type=type_name,
                    schema_version=schema_version,
                    data=data,
                    metadata={"actor": "tester", "reason": "heartbeat"},
                    recorded_at=micros,
                )
            ],
        )


def second(seconds: int, micro: int = 0) -> int:
    """Microseconds since the epoch of ``T0 + seconds`` and ``micro`` microseconds."""
    return (T0 + seconds) * 1_000_000 + micro


@pytest.fixture
def mixed(registry: Registry) -> dict[str, int]:
    """Three masters registered at T0 whose later events, interleaved, are appended behind
    the view's back (which still says registered, inactive, T0):

    * a: activated (T0+1), a v1 check-in (T0+2), a v2 one stored as ``{}`` (T0+3) - last;
    * b: activated (T0+1), a v1 check-in of T0+4 recorded in second T0+5, a v2 one of T0+5
      recorded in second T0+6, which keeps its last_active - last;
    * c: activated (T0+1), a v2 check-in stored as ``{}`` (T0+7), deactivated (T0+7).
    """
    ids = {name: registry.find_master_id(f"host:/srv/{name}") for name in "abc"}
    a, b, c = ids["a"], ids["b"], ids["c"]
    for master_id in (a, b, c):
        append_raw(registry, master_id, MasterActivated(last_active=T0 + 1), second(1), v1=False)
    append_raw(registry, a, MasterCheckedIn(last_active=T0 + 2), second(2, 500_000), v1=True)
    append_raw(registry, a, MasterCheckedIn(last_active=T0 + 3), second(3, 999_999), v1=False)
    append_raw(registry, b, MasterCheckedIn(last_active=T0 + 4), second(5), v1=True)
    append_raw(registry, c, MasterCheckedIn(last_active=T0 + 7), second(7, 250_000), v1=False)
    append_raw(registry, b, MasterCheckedIn(last_active=T0 + 5), second(6), v1=False)
    append_raw(registry, c, MasterDeactivated(last_active=T0 + 7), second(8), v1=False)
    return ids


#: Each master of :func:`mixed` as the log leaves it: (active, last_active).
MIXED_STATES = {"a": (True, T0 + 3), "b": (True, T0 + 5), "c": (False, T0 + 7)}


class TestCheckInsOfBothSchemaVersions:
    """A log holding check-ins of schema version 1 (``last_active`` stored) and 2 (stored
    only when it is not the recorded second) folds to the same masters everywhere."""

    def test_the_log_holds_both_versions_as_written(
        self, registry: Registry, mixed: dict[str, int]
    ) -> None:
        """The v2 check-ins in their recorded second are stored as ``{}``, the one a second
        off keeps its value, and the v1 ones keep theirs."""
        stored = [
            (e.master_id, e.schema_version, e.data)
            for e in registry.events()
            if e.type == "master.checked_in"
        ]
        a, b, c = mixed["a"], mixed["b"], mixed["c"]
        assert stored == [
            (a, 1, {"last_active": T0 + 2}),
            (a, 2, {}),
            (b, 1, {"last_active": T0 + 4}),
            (c, 2, {}),
            (b, 2, {"last_active": T0 + 5}),
        ]

    def test_rebuild_gives_each_master_its_last_active(
        self, registry: Registry, mixed: dict[str, int]
    ) -> None:
        """rebuild() folds every event into the view: a's last check-in, stored as ``{}``,
        gives it the second it was recorded in."""
        assert registry.rebuild() == 12
        for name, (active, last_active) in MIXED_STATES.items():
            model = registry.get_master(mixed[name])
            assert model == MasterModel(
                mixed[name], f"host:/srv/{name}", active, epoch_to_datetime(last_active)
            ), name
        assert registry.verify().ok

    def test_verify_folds_them_to_the_same_last_active(
        self, registry: Registry, mixed: dict[str, int]
    ) -> None:
        """verify() compares the stale view with the fold of the log, and names the
        last_active the log says for each master."""
        report = registry.verify()
        assert report.events_checked == 12
        found = {
            (p.master_id, p.detail) for p in report.problems if p.detail.startswith("last_active")
        }
        assert found == {
            (mixed[name], f"last_active is {T0}, the log says {last_active}")
            for name, (_active, last_active) in MIXED_STATES.items()
        }

    def test_as_of_every_position_is_the_fold_of_the_log(
        self, registry: Registry, mixed: dict[str, int]
    ) -> None:
        """masters_as_of and the pure fold agree at every position, and right after c's
        ``{}`` check-in c was last active in the second it was recorded in."""
        log = list(registry.events())
        for position in range(len(log) + 1):
            assert registry.masters_as_of(position) == models(fold(log[:position])), position
        after_c_check_in = next(
            e.position for e in log if e.master_id == mixed["c"] and e.type == "master.checked_in"
        )
        as_of = {m.id: m for m in registry.masters_as_of(after_c_check_in)}
        assert as_of[mixed["c"]].last_active == epoch_to_datetime(T0 + 7)
        final = fold(log)
        assert {name: (final[i].active, final[i].last_active) for name, i in mixed.items()} == (
            MIXED_STATES
        )

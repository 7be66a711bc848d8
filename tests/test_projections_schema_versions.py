"""Projections: a log holding check-ins of both schema versions folds to the same
masters in every reader."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import pytest

import eventstore
from eventstore.events import (
    CODEC,
    MasterActivated,
    MasterCheckedIn,
    MasterDeactivated,
)
from eventstore.recorded import NewEvent
from mastertrail import MasterModel, Registry
from projections import (
    epoch_to_datetime,
    fold,
)
from tests.projections_support import (
    T0,
    models,
    second,
)


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

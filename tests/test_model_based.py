"""Random sequences of commands against a plain in-memory model of the masters connector.

After every step the view (``get_masters``), a fresh fold of the log and the model must
agree. SQLite runs the most examples; PostgreSQL and MariaDB fewer, to stay quick.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mastertrail import MasterModel, Registry
from projections import epoch_to_datetime, fold
from tests.conftest import FakeClock, Server, empty_database, server_of

#: Names that differ only in case or a trailing space are different masters.
NAMES = ["host:/srv/a", "host:/srv/A", "host:/srv/a ", "host:/srv/b", "hôst:/srv/ü"]

EXAMPLES = {"sqlite": 40, "postgresql": 12, "mysql": 12}


@attrs.define
class Master:
    """The model's idea of one master."""

    id: int
    name: str
    active: bool
    last_active: int

    def to_model(self) -> MasterModel:
        return MasterModel(self.id, self.name, self.active, epoch_to_datetime(self.last_active))


class RegistryMachine(RuleBasedStateMachine):
    """Drives a Registry and a dictionary model side by side."""

    #: Opens a registry on an empty database, on the given clock.
    open_registry: Callable[[FakeClock], Registry]

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.registry = type(self).open_registry(self.clock)
        self.masters: dict[int, Master] = {}
        self.highest_id = 0

    @property
    def now(self) -> int:
        return int(self.clock.now)

    def teardown(self) -> None:
        self.registry.close()

    @initialize(names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))
    def register_a_few(self, names: list[str]) -> None:
        assert self.registry.get_masters() == []
        for name in names:
            self.find_master_id(name)

    # -- commands ----------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES))
    def find_master_id(self, name: str) -> None:
        master_id = self.registry.find_master_id(name)
        known = [m for m in self.masters.values() if m.name == name]
        if known:
            assert master_id == known[0].id
        else:
            assert master_id > self.highest_id
            self.highest_id = master_id
            self.masters[master_id] = Master(master_id, name, False, self.now)

    @rule(pick=st.integers(0, 5), active=st.booleans())
    def set_master_state(self, pick: int, active: bool) -> None:
        ids = sorted(self.masters)
        master_id = ids[pick] if pick < len(ids) else self.highest_id + 1 + pick
        changed = self.registry.set_master_state(master_id, active)
        master = self.masters.get(master_id)
        if master is None:
            assert changed is False
            return
        assert changed is (master.active != active)
        master.active = active
        if active:
            master.last_active = self.now

    @rule(timeout=st.sampled_from([0, 1, 60, 600]))
    def expire_masters(self, timeout: int) -> None:
        expired = self.registry.expire_masters(timeout=timeout)
        silent = [
            m
            for _, m in sorted(self.masters.items())
            if m.active and m.last_active < self.now - timeout
        ]
        for master in silent:
            master.active = False
        assert expired == [m.to_model() for m in silent]

    @rule()
    def set_all_masters_active_long_time_ago(self) -> None:
        self.registry.set_all_masters_active_long_time_ago()
        for master in self.masters.values():
            master.active, master.last_active = True, 0

    @rule(seconds=st.one_of(st.integers(0, 700), st.floats(0, 3, allow_nan=False)))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- replay ------------------------------------------------------------------------------

    @rule()
    def rebuild(self) -> None:
        before = self.registry.get_masters()
        assert self.registry.rebuild() == len(list(self.registry.events()))
        assert self.registry.get_masters() == before

    @precondition(lambda self: bool(self.masters))
    @rule(data=st.data())
    def masters_as_of_a_position(self, data: st.DataObject) -> None:
        log = list(self.registry.events())
        position = data.draw(st.integers(0, len(log)), label="position")
        folded = fold(log[:position])
        assert self.registry.masters_as_of(position) == [
            folded[i].to_model() for i in sorted(folded)
        ]

    # -- after every step --------------------------------------------------------------------

    @invariant()
    def view_fold_and_model_agree(self) -> None:
        model = [self.masters[i].to_model() for i in sorted(self.masters)]
        folded = fold(self.registry.events())
        assert self.registry.get_masters() == model
        assert [folded[i].to_model() for i in sorted(folded)] == model


def fresh_database(
    backend: str, servers: dict[str, Server | str], tmp_path: Path
) -> Callable[[], str]:
    """A function returning the URL of a newly emptied database on ``backend``."""
    if backend != "sqlite":
        server_of(backend, servers)  # skips before the first example, not inside it
    return lambda: empty_database(backend, servers, tmp_path / f"{uuid.uuid4().hex}.sqlite")


class TestRegistryAgainstModel:
    def test_view_fold_and_model_agree_after_every_step(
        self, backend: str, servers: dict[str, Server | str], tmp_path: Path
    ) -> None:
        """Any sequence of the five operations, expiry, replays and clock moves keeps the
        view, the fold of the log and the in-memory model equal."""
        new_url = fresh_database(backend, servers, tmp_path)

        def open_registry(clock: FakeClock) -> Registry:
            registry = Registry(new_url(), clock=clock, actor="tester")
            registry.upgrade()
            return registry

        machine = type(
            "Machine", (RegistryMachine,), {"open_registry": staticmethod(open_registry)}
        )
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=EXAMPLES[backend],
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )

"""A master's ``set_master_state`` after its own last write skips reading its state and the
log's head (``commands.known``): never wrong, whoever else wrote since, on every backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import commands
from commands import Actor, Now
from commands.known import KnownHead
from eventstore.store import Head
from mastertrail import Registry
from projections import view
from tests.conftest import FakeClock


class Statements:
    """The SQL an engine sends, as reads of the head and writes moving it."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sent: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.sent.append(" ".join(statement.split()).upper())

    def take(self) -> tuple[int, int]:
        """(reads of the head, writes moving it) since the last take."""
        sent, self.sent = self.sent, []
        reads = sum(s.startswith("SELECT") and "MASTERTRAIL_HEAD" in s for s in sent)
        writes = sum("UPDATE MASTERTRAIL_HEAD" in s for s in sent)
        return reads, writes


@pytest.fixture
def other(db_url: str, clock: FakeClock, registry: Registry) -> Iterator[Registry]:
    """A second process's registry on the same database."""
    other = Registry(db_url, clock=clock, actor="other")
    yield other
    other.close()


def started(registry: Registry, name: str) -> int:
    master_id = registry.find_master_id(name)
    assert registry.set_master_state(master_id, True) is True
    return master_id


def types(registry: Registry, master_id: int) -> list[str]:
    return [event.type for event in registry.history(master_id)]


class TestAWriterAlone:
    def test_heartbeats_after_its_own_write_read_nothing(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        master_id = started(registry, "alone:/srv")
        statements = Statements(registry.engine)
        for _ in range(3):
            clock.advance(60)
            assert registry.set_master_state(master_id, True) is False
            assert statements.take() == (0, 1)
        assert types(registry, master_id)[-3:] == ["master.checked_in"] * 3
        master = registry.get_master(master_id)
        assert master is not None
        assert master.last_active.timestamp() == clock.now
        assert registry.verify().ok

    def test_another_master_of_its_own_is_read_first(self, registry: Registry) -> None:
        first, second = started(registry, "a:/srv"), started(registry, "b:/srv")
        statements = Statements(registry.engine)
        assert registry.set_master_state(first, True) is False
        assert statements.take() == (1, 1)
        assert registry.set_master_state(first, True) is False
        assert statements.take() == (0, 1)
        assert registry.verify().ok
        assert types(registry, second) == ["master.registered", "master.activated"]


class TestAnotherWriter:
    def test_a_deactivation_by_another_process_is_seen(
        self, registry: Registry, other: Registry
    ) -> None:
        """The other process expired this master: the heartbeat is a reactivation."""
        master_id = started(registry, "expired:/srv")
        assert other.set_master_state(master_id, False) is True
        assert registry.set_master_state(master_id, True) is True
        assert types(registry, master_id)[-2:] == ["master.deactivated", "master.activated"]
        assert registry.verify().ok

    def test_an_activation_by_another_process_is_seen_without_a_write(
        self, registry: Registry, other: Registry
    ) -> None:
        """This process left its master inactive; another started it. Stopping it is a
        change, though no write of the guess could have told."""
        master_id = started(registry, "restarted:/srv")
        assert registry.set_master_state(master_id, False) is True
        assert other.set_master_state(master_id, True) is True
        assert registry.set_master_state(master_id, False) is True
        master = registry.get_master(master_id)
        assert master is not None
        assert master.active is False
        assert registry.verify().ok

    def test_heartbeats_between_anothers_read_first_and_waste_no_write(
        self, registry: Registry, other: Registry, clock: FakeClock
    ) -> None:
        ours, theirs = started(registry, "ours:/srv"), started(other, "theirs:/srv")
        statements = Statements(registry.engine)
        clock.advance(60)
        assert registry.set_master_state(ours, True) is False
        assert statements.take() == (1, 2)  # the guess missed once: the head had moved
        for _ in range(3):
            other.set_master_state(theirs, True)
            assert registry.set_master_state(ours, True) is False
            assert statements.take() == (1, 1)
        # The other master falls silent: one read finds the head where this process left
        # it, and the heartbeats after it read nothing.
        assert registry.set_master_state(ours, True) is False
        assert statements.take() == (1, 1)
        assert registry.set_master_state(ours, True) is False
        assert statements.take() == (0, 1)
        assert registry.verify().ok


class TestTheHeadItself:
    """The guess is checked against the whole head row: a head at the same position with
    another hash or master id (a restored database, another log) is a miss."""

    @pytest.mark.parametrize(
        "forged",
        [
            lambda seen: Head(seen.position, bytes(32), seen.last_master_id),
            lambda seen: Head(seen.position, seen.hash, seen.last_master_id + 1),
        ],
        ids=["other hash", "other last master id"],
    )
    def test_a_head_that_differs_in_anything_is_not_appended_to(
        self, registry: Registry, clock: FakeClock, forged: object
    ) -> None:
        master_id = started(registry, "forged:/srv")
        with registry.engine.connect() as conn:
            loaded = view.load_state_and_head(conn, master_id)
        assert loaded is not None
        state, seen = loaded
        known = KnownHead()
        known.wrote(state, forged(seen))  # type: ignore[operator]
        clock.advance(60)
        with registry.engine.connect() as conn:
            outcome = commands.run(
                conn,
                lambda c: commands.set_master_state_attempt(
                    c, Actor("tester"), master_id, True, Now.read(clock), known
                ),
            )
        assert outcome is not None
        assert outcome.changed is False
        assert outcome.head is not None
        assert outcome.head.position == seen.position + 1
        assert known.guess(master_id) is None  # missed: no more guessing
        assert registry.verify().ok


class TestThreads:
    def test_threads_of_one_process_heartbeating_at_once(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        """Buildbot's DB thread pool: several heartbeats of one registry at once, each
        racing the others' guesses."""
        master_id = started(registry, "threads:/srv")
        answers: list[bool] = []
        errors: list[BaseException] = []

        def beat() -> None:
            try:
                for _ in range(10):
                    answers.append(registry.set_master_state(master_id, True))
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=beat) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        assert answers == [False] * 40
        assert types(registry, master_id).count("master.checked_in") == 40
        assert registry.verify().ok

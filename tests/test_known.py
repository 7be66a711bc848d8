"""A master's ``set_master_state`` after its own last write skips reading its state and the
log's head (``commands.known``): never wrong, whoever else wrote since, on every backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

import commands
from commands import Actor, Now, Outcome
from commands.known import KnownState
from eventstore.chaining_writer import ChainingWriter
from eventstore.schema import texts
from eventstore.store import Tip
from eventstore.writer import writer_for
from mastertrail import Registry
from projections import view
from projections.model import MasterState
from tests.conftest import FakeClock


class Statements:
    """What a registry's engine sends, counted without reading the SQL: the statements (one
    round trip each), and the writes the database chains itself (its writer's
    ``write_chained``), whatever either's wording."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sent: list[object] = []
        self.chained: list[object] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)
        writer = writer_for(engine)
        if writer.chains_in_database:
            assert isinstance(writer, ChainingWriter)
            write_chained = writer.write_chained

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.chained.append(args)
                return write_chained(*args, **kwargs)

            # This engine's own writer (one per dialect object): no other engine sees it.
            writer.write_chained = counted  # type: ignore[method-assign]

    def _record(
        self, conn: object, cursor: object, statement: str, params: object, context: Any, *_: object
    ) -> None:
        compiled = getattr(context, "compiled", None)
        if compiled is not None and looks_up_texts(compiled.statement):
            return  # test_texts.py counts those: here, what moves the head and the stream
        if statement.startswith("PREPARE mastertrail_"):
            return  # once a session (test_check_in_at_once_mariadb.py counts it)
        self.sent.append(statement)

    def take(self) -> tuple[int, int]:
        """Since the last take: statements sent, and writes chained by the database."""
        sent, chained = len(self.sent), len(self.chained)
        self.sent, self.chained = [], []
        return sent, chained


def looks_up_texts(statement: object) -> bool:
    """Whether a statement object reads the texts table."""
    return isinstance(statement, sa.Select) and texts in statement.get_final_froms()


def one_write(registry: Registry) -> int:
    """The statements of one write: one where the database writes in one statement
    (PostgreSQL, MariaDB); on SQLite the head's move, the event and the view row apart."""
    return 1 if chains(registry) else 3


@pytest.fixture
def other(db_url: str, clock: FakeClock, registry: Registry) -> Iterator[Registry]:
    """A second process's registry on the same database."""
    other = Registry(db_url, clock=clock, actor="other")
    yield other
    other.close()


def started(registry: Registry, name: str) -> int:
    """A master activated that has checked in once: the texts of its heartbeats are
    stored (a write storing a new text locks the head first)."""
    master_id = registry.find_master_id(name)
    assert registry.set_master_state(master_id, True) is True
    assert registry.set_master_state(master_id, True) is False
    return master_id


def types(registry: Registry, master_id: int) -> list[str]:
    return [event.type for event in registry.history(master_id)]


def chains(registry: Registry) -> bool:
    return writer_for(registry.engine).chains_in_database


class TestAMastersOwnWrite:
    def test_its_heartbeats_read_nothing(self, registry: Registry, clock: FakeClock) -> None:
        master_id = started(registry, "alone:/srv")
        statements = Statements(registry.engine)
        for _ in range(3):
            clock.advance(60)
            assert registry.set_master_state(master_id, True) is False
            assert statements.take() == (one_write(registry), 0)  # no read, one write
        assert types(registry, master_id)[-3:] == ["master.checked_in"] * 3
        master = registry.get_master(master_id)
        assert master is not None
        assert master.last_active.timestamp() == clock.now
        assert registry.verify().ok

    def test_between_another_masters_heartbeats_the_database_chains(
        self, registry: Registry, other: Registry, clock: FakeClock
    ) -> None:
        """Another process moves the head between this master's heartbeats. The first
        heartbeat after it misses the head it left; from then on the database numbers and
        chains the event after wherever the head is, with nothing read (SQLite, which
        cannot chain, reads first). When the other falls silent, the head this master
        leaves is tried again."""
        ours, theirs = started(registry, "ours:/srv"), started(other, "theirs:/srv")
        statements = Statements(registry.engine)
        alone = (one_write(registry), 0)
        shared = (1, 1) if chains(registry) else (1 + one_write(registry), 0)  # (read +) write
        for beat in range(4):
            clock.advance(60)
            assert other.set_master_state(theirs, True) is False
            assert registry.set_master_state(ours, True) is False
            missed = 1 if beat == 0 else 0  # the write after its own, refused
            assert statements.take() == (shared[0] + missed, shared[1])
        assert registry.set_master_state(ours, True) is False
        assert statements.take() == shared  # its writes follow each other again
        assert registry.set_master_state(ours, True) is False
        assert statements.take() == alone
        positions = [event.position for event in registry.events()]
        assert positions == list(range(1, len(positions) + 1))
        assert registry.verify().ok

    def test_a_master_it_wrote_before_another_is_chained(self, registry: Registry) -> None:
        """Its own write of another master moved the head past this master's last event:
        the database chains (SQLite reads), and then its writes follow each other again."""
        first, second = started(registry, "a:/srv"), started(registry, "b:/srv")
        statements = Statements(registry.engine)
        assert registry.set_master_state(first, True) is False
        assert statements.take() == ((1, 1) if chains(registry) else (1 + one_write(registry), 0))
        assert registry.set_master_state(first, True) is False
        assert statements.take() == (one_write(registry), 0)
        assert registry.verify().ok
        assert types(registry, second) == [
            "master.registered",
            "master.activated",
            "master.checked_in",
        ]

    def test_metadata_beyond_ascii_chains_as_verify_recomputes_it(
        self, db_url: str, clock: FakeClock
    ) -> None:
        """The database hashes the bytes mastertrail would: an actor of two-, three- and
        four-byte UTF-8 characters, recorded in every event's metadata, chained by the
        database after another process's writes."""
        registry = Registry(db_url, clock=clock, actor="mäster-€-\N{MUSICAL SYMBOL G CLEF}")
        other = Registry(db_url, clock=clock, actor="other")
        try:
            registry.upgrade()
            master_id = started(registry, "unicode:/srv/ü")
            theirs = started(other, "theirs:/srv")
            for _ in range(3):
                clock.advance(60)
                other.set_master_state(theirs, True)
                registry.set_master_state(master_id, True)
            assert registry.history(master_id)[-1].metadata["actor"] == registry.actor.name
            assert registry.verify().ok
        finally:
            other.close()
            registry.close()


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
        change, though no write of what was known could have told."""
        master_id = started(registry, "restarted:/srv")
        assert registry.set_master_state(master_id, False) is True
        assert other.set_master_state(master_id, True) is True
        assert registry.set_master_state(master_id, False) is True
        master = registry.get_master(master_id)
        assert master is not None
        assert master.active is False
        assert registry.verify().ok


def heartbeat(registry: Registry, clock: FakeClock, master_id: int, known: KnownState) -> Outcome:
    clock.advance(60)
    with registry.engine.connect() as conn:
        outcome = commands.run(
            conn,
            lambda c: commands.set_master_state_attempt(
                c, Actor("tester"), master_id, True, Now.read(clock), known
            ),
        )
    assert outcome is not None
    return outcome


def loaded(registry: Registry, master_id: int) -> tuple[MasterState, Tip]:
    with registry.engine.connect() as conn:
        found = view.load_state_and_head(conn, master_id)
    assert found is not None
    return found[0], Tip(found[1].position, found[1].hash)


class TestWhatIsKnownIsChecked:
    """What is known is checked in the database: a head elsewhere than where this process
    left it, or a stream elsewhere than its version (another writer, or a database restored
    from an older backup), is a miss, and nothing of the attempt is kept."""

    def test_a_head_with_another_hash_is_not_appended_after(
        self, registry: Registry, clock: FakeClock
    ) -> None:
        master_id = started(registry, "forged:/srv")
        state, tip = loaded(registry, master_id)
        known = KnownState()
        known.wrote(state, Tip(tip.position, bytes(32)))
        outcome = heartbeat(registry, clock, master_id, known)
        assert outcome.changed is False
        assert outcome.positions == (tip.position + 1,)
        recalled = known.recall(master_id)
        if chains(registry):  # the chained append found no event with that hash either
            assert recalled is None
        else:  # missed the head: no more trying it until its writes follow each other
            assert recalled is not None
            assert recalled.follows is False
        assert registry.verify().ok

    @pytest.mark.parametrize(
        ("off_by", "other_hash"),
        [(1, False), (-1, False), (0, True)],
        ids=["stream behind", "stream ahead", "same version, another history"],
    )
    def test_a_stream_elsewhere_than_known_is_not_appended_to(
        self, registry: Registry, clock: FakeClock, off_by: int, other_hash: bool
    ) -> None:
        """The chained append (the head is not tried: the process's writes do not follow
        each other) checks the stream's newest event, version and hash."""
        if not chains(registry):
            pytest.skip("SQLite does not chain in the database: it reads instead")
        master_id = started(registry, "forged:/srv")
        state, tip = loaded(registry, master_id)
        if other_hash:
            tip = Tip(tip.position, bytes(32))
        known = KnownState()
        known.wrote(state, Tip(0, bytes(32)))
        known.wrote(attrs.evolve(state, version=state.version + off_by), tip)  # not after
        outcome = heartbeat(registry, clock, master_id, known)
        assert outcome.changed is False
        assert outcome.state.version == state.version + 1
        assert known.recall(master_id) is None  # forgotten
        assert [e.version for e in registry.history(master_id)] == list(range(1, state.version + 2))
        assert registry.verify().ok


class TestThreads:
    """Buildbot's DB thread pool: several calls of one registry at once."""

    @staticmethod
    def beat_in_threads(registry: Registry, master_ids: list[int]) -> list[bool]:
        answers: list[bool] = []
        errors: list[BaseException] = []

        def beat(master_id: int) -> None:
            try:
                for _ in range(10):
                    answers.append(registry.set_master_state(master_id, True))
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=beat, args=(m,)) for m in master_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        return answers

    def test_heartbeats_of_one_master_at_once(self, registry: Registry) -> None:
        """Each races the others' knowledge of the same stream: misses, retries, and never
        a wrong answer or a broken stream."""
        master_id = started(registry, "threads:/srv")
        assert self.beat_in_threads(registry, [master_id] * 4) == [False] * 40
        assert types(registry, master_id).count("master.checked_in") == 41
        assert registry.verify().ok

    def test_heartbeats_of_several_masters_at_once(self, registry: Registry) -> None:
        """Each master's stream is its own: where the database chains, what is known of
        each serves its heartbeats however the others' writes interleave."""
        master_ids = [started(registry, f"threads:/srv/{n}") for n in range(4)]
        statements = Statements(registry.engine)
        assert self.beat_in_threads(registry, master_ids) == [False] * 40
        sent, chained = statements.take()
        if chains(registry):
            assert chained > 0
            assert sent < 2 * 40  # not every heartbeat read the head before writing
        for master_id in master_ids:
            assert types(registry, master_id).count("master.checked_in") == 11
        assert registry.verify().ok

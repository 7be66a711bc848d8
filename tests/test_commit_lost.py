"""A commit whose connection is lost: the write is looked up in the log by its hash and
never appended twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

import commands.retry
from eventstore.store import Tip
from mastertrail import Registry


def losing_the_first_commit(
    monkeypatch: pytest.MonkeyPatch, *, committed: bool
) -> Callable[[], int]:
    """Make the next commit of a command raise a lost connection, after (``committed``)
    or instead of committing; returns a counter of the commits lost."""
    real_commit = sa.Connection.commit
    real_command_commit = commands.retry._commit
    lost: list[int] = []
    in_command: list[bool] = []

    def command_commit(conn: sa.Connection, tips: tuple[Tip, ...]) -> None:
        in_command.append(True)
        try:
            real_command_commit(conn, tips)
        finally:
            in_command.pop()

    def commit(self: sa.Connection) -> None:
        if lost or not in_command:
            real_commit(self)
            return
        lost.append(1)
        if committed:
            real_commit(self)
        raise sa.exc.OperationalError(
            "COMMIT", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    monkeypatch.setattr(commands.retry, "_commit", command_commit)
    monkeypatch.setattr(sa.Connection, "commit", commit)
    return lambda: len(lost)


class TestCommitLost:
    @pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
    def test_a_heartbeat_lands_once(
        self, registry: Registry, monkeypatch: pytest.MonkeyPatch, committed: bool
    ) -> None:
        """A check-in whose commit loses its connection returns normally, and the log holds
        its event exactly once, whether the commit reached the database or not. (The
        check-in of a master the process does not remember: on PostgreSQL one it
        remembers commits as it is written, see ``tests/test_check_in_at_once.py``.)"""
        master_id = registry.find_master_id("m")
        assert registry.set_master_state(master_id, True) is True
        registry._known.forget(master_id)  # as a process that has just started
        count = losing_the_first_commit(monkeypatch, committed=committed)
        assert registry.set_master_state(master_id, True) is False
        assert count() == 1
        assert [e.type for e in registry.events()] == [
            "master.registered",
            "master.activated",
            "master.checked_in",
        ]
        assert registry.verify().ok

    def test_a_registration_lands_once(
        self, registry: Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A new name whose commit loses its connection after committing gets one id and
        one registration."""
        count = losing_the_first_commit(monkeypatch, committed=True)
        master_id = registry.find_master_id("new")
        assert count() == 1
        assert registry.find_master_id("new") == master_id
        assert [(e.type, e.master_id) for e in registry.events()] == [
            ("master.registered", master_id)
        ]

"""The ``masters`` view tampered with behind the log's back: ``verify`` reports each row as
Buildbot reads it, and ``rebuild`` repairs every row it reports, or refuses naming the
row."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from mastertrail import RebuildRefused, Registry
from tests.conftest import FakeClock

NAMES = ("alpha:/srv", "bravo:/srv", "charlie:/srv")


@pytest.fixture
def trio(registry: Registry, clock: FakeClock) -> Registry:
    """Three masters (ids 1-3): alpha and charlie active, bravo registered only."""
    ids = [registry.find_master_id(name) for name in NAMES]
    assert ids == [1, 2, 3]
    clock.advance(10)
    registry.set_master_state(1, True)
    registry.set_master_state(3, True)
    assert registry.verify().ok
    return registry


def execute(registry: Registry, statement: str, **params: object) -> None:
    """Run raw SQL on the registry's database, as someone with database access could."""
    with registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def rows(registry: Registry) -> list[tuple[Any, ...]]:
    """Every ``masters`` row as stored, by id."""
    with registry.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text("SELECT id, name, name_hash, active, last_active FROM masters ORDER BY id")
            )
        ]


class TestVerifyReadsTheViewAsBuildbot:
    @pytest.mark.parametrize("active", [2, -1])
    def test_an_active_flag_other_than_0_or_1_is_reported(
        self, trio: Registry, active: int
    ) -> None:
        """active=2 or -1 (which Buildbot's active filter and expiry skip) is a view problem
        even where the log says the master is active."""
        execute(trio, "UPDATE masters SET active = :a WHERE id = 1", a=active)
        report = trio.verify()
        assert [(p.kind, p.master_id) for p in report.problems] == [("view", 1)]
        assert report.problems[0].detail == f"active is {active}, the log says 1"

    def test_every_column_of_a_row_is_compared(self, trio: Registry) -> None:
        """A changed name, name_hash and last_active of one row are each reported."""
        execute(
            trio,
            "UPDATE masters SET name = 'Alpha:/srv', name_hash = :h, last_active = last_active + 1 "
            "WHERE id = 1",
            h="f" * 40,
        )
        fields = sorted(p.detail.split(" ")[0] for p in trio.verify().problems)
        assert fields == ["last_active", "name", "name_hash"]


def add_builds_table(registry: Registry) -> None:
    """A table referencing ``masters`` as Buildbot's do (builds, claims, links)."""
    execute(
        registry,
        "CREATE TABLE builds (id INTEGER PRIMARY KEY, masterid INTEGER NOT NULL, "
        "FOREIGN KEY (masterid) REFERENCES masters (id) ON DELETE CASCADE)",
    )


#: Tamperings of the view, each of which verify reports and rebuild repairs.
DRIFTS = [
    pytest.param(["UPDATE masters SET active = 2 WHERE id = 1"], id="active-2"),
    pytest.param(["UPDATE masters SET active = -1 WHERE id = 3"], id="active-minus-1"),
    pytest.param(["UPDATE masters SET last_active = 5 WHERE id = 2"], id="last-active"),
    pytest.param(["UPDATE masters SET name = 'x', name_hash = 'y' WHERE id = 2"], id="renamed"),
    pytest.param(["DELETE FROM masters WHERE id = 2"], id="row-deleted"),
    pytest.param(
        [
            "UPDATE masters SET name = 'swap', name_hash = 'swap' WHERE id = 1",
            "UPDATE masters SET name = 'alpha:/srv', name_hash = :alpha WHERE id = 2",
            "UPDATE masters SET name = 'bravo:/srv', name_hash = :bravo WHERE id = 1",
        ],
        id="names-swapped",
    ),
    pytest.param(
        [
            "UPDATE masters SET name = 'c', name_hash = 'c' WHERE id = 3",
            "UPDATE masters SET name = 'a', name_hash = 'a' WHERE id = 1",
            "UPDATE masters SET name = 'charlie:/srv', name_hash = :charlie WHERE id = 2",
            "UPDATE masters SET name = 'alpha:/srv', name_hash = :alpha WHERE id = 3",
            "UPDATE masters SET name = 'bravo:/srv', name_hash = :bravo WHERE id = 1",
        ],
        id="names-rotated",
    ),
    pytest.param(["UPDATE masters SET id = 7 WHERE id = 2"], id="id-changed"),
    pytest.param(
        [
            "UPDATE masters SET id = 9 WHERE id = 1",
            "UPDATE masters SET id = 1 WHERE id = 3",
            "UPDATE masters SET id = 3 WHERE id = 9",
        ],
        id="ids-swapped",
    ),
    pytest.param(
        [
            "UPDATE masters SET name = 'gone', name_hash = 'gone' WHERE id = 3",
            "INSERT INTO masters (id, name, name_hash, active, last_active) "
            "VALUES (8, 'charlie:/srv', :charlie, 1, 5)",
        ],
        id="row-with-a-log-name",
    ),
]


def hashes() -> dict[str, str]:
    """The name hashes the tampering statements use."""
    return {name.split(":")[0]: hashlib.sha1(name.encode()).hexdigest() for name in NAMES}


class TestRebuildRepairs:
    @pytest.mark.parametrize("statements", DRIFTS)
    def test_whatever_verify_reports_rebuild_repairs(
        self, trio: Registry, statements: list[str]
    ) -> None:
        """After each tampering verify reports the view, and rebuild makes every row what
        it was, keeping the log's ids, so that verify is clean again."""
        before = rows(trio)
        with trio.engine.begin() as conn:
            for statement in statements:
                params = {k: v for k, v in hashes().items() if f":{k}" in statement}
                conn.execute(sa.text(statement), params)
        assert {p.kind for p in trio.verify().problems} == {"view"}
        trio.rebuild()
        assert rows(trio) == before
        assert trio.verify().ok

    def test_a_row_with_no_history_is_adopted(self, trio: Registry) -> None:
        """A row no master of the log names is kept as found and adopted, so that verify
        is clean after the rebuild."""
        execute(
            trio,
            "INSERT INTO masters (id, name, name_hash, active, last_active) "
            "VALUES (8, 'delta:/srv', :h, 2, 5)",
            h=hashlib.sha1(b"delta:/srv").hexdigest(),
        )
        trio.rebuild()
        assert rows(trio)[-1] == (8, "delta:/srv", hashlib.sha1(b"delta:/srv").hexdigest(), 1, 5)
        assert [e.type for e in trio.history(8)] == ["master.adopted"]
        assert trio.verify().ok

    def test_a_changed_id_referenced_elsewhere_is_refused_naming_the_row(
        self, trio: Registry
    ) -> None:
        """A master's row moved to another id that a build then references cannot get the
        log's id back without losing the build: rebuild raises RebuildRefused naming the
        row and the table, and writes nothing."""
        add_builds_table(trio)
        execute(trio, "UPDATE masters SET id = 7 WHERE id = 2")
        execute(trio, "INSERT INTO builds (id, masterid) VALUES (1, 7)")
        before = rows(trio)
        with pytest.raises(RebuildRefused) as refused:
            trio.rebuild()
        assert refused.value.row_id == 7
        assert "builds.masterid" in str(refused.value)
        assert rows(trio) == before
        with trio.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT masterid FROM builds")).scalar_one() == 7

    def test_rows_referenced_elsewhere_keep_their_ids(self, trio: Registry) -> None:
        """Swapped names on rows that builds reference are repaired in place: every row
        and every build stays."""
        add_builds_table(trio)
        execute(trio, "INSERT INTO builds (id, masterid) VALUES (1, 1), (2, 2), (3, 3)")
        before = rows(trio)
        execute(trio, "UPDATE masters SET name = 'swap', name_hash = 'swap' WHERE id = 1")
        execute(
            trio,
            "UPDATE masters SET name = 'alpha:/srv', name_hash = :h WHERE id = 2",
            h=hashes()["alpha"],
        )
        trio.rebuild()
        assert rows(trio) == before
        with trio.engine.connect() as conn:
            builds = conn.execute(sa.text("SELECT masterid FROM builds ORDER BY id")).scalars()
            assert list(builds) == [1, 2, 3]

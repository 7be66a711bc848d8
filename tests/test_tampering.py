"""A log tampered with outside mastertrail: its triggers dropped, then rows changed,
removed or added with raw SQL. ``verify`` names the first bad position; every other
operation gives a result or a typed error, never a crash."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore import RegistryError
from mastertrail import Registry
from tests.conftest import FakeClock
from tests.tamper_support import drop_guards, three_masters

#: A new, unique 32-byte text digest, per dialect (``{digest}`` in a tampering statement).
FRESH_DIGEST = {
    "sqlite": "randomblob(32)",
    "postgresql": "sha256(CAST(CAST(random() AS text) AS bytea))",
    "mysql": "UNHEX(SHA2(RAND(), 256))",
}


@pytest.fixture
def fleet(registry: Registry, clock: FakeClock) -> Registry:
    """The three masters of :func:`tests.tamper_support.three_masters`, positions 1-12."""
    return three_masters(registry, clock)


def tamper(engine: Engine, *statements: str) -> None:
    """Drop the log's triggers and run ``statements``, as someone with database access
    could."""
    with engine.begin() as conn:
        drop_guards(conn)
        for statement in statements:
            conn.exec_driver_sql(statement.replace("{digest}", FRESH_DIGEST[engine.dialect.name]))


EVENTS = "mastertrail_events"


def forge_text(position: int, column: str, expression: str) -> list[str]:
    """Point the ``column`` (``type`` or ``metadata``) of the event at ``position`` at a
    new text: ``expression`` of its current ``text``."""
    return [
        f"INSERT INTO mastertrail_texts (id, digest, text) SELECT 9000 + {position}, {{digest}}, "
        f"{expression} FROM mastertrail_texts "
        f"WHERE id = (SELECT {column}_id FROM {EVENTS} WHERE position = {position})",
        f"UPDATE {EVENTS} SET {column}_id = 9000 + {position} WHERE position = {position}",
    ]


OUT_OF_RANGE = [
    f"UPDATE {EVENTS} SET data = '{{\"last_active\":99999999999999}}' WHERE position = 9"
]
#: A known gap outside the store, to be removed once fixed (strict: a fix makes it fail).

#: (statements, the first position verify must name)
TAMPERINGS: list[Any] = [
    pytest.param(
        [f"UPDATE {EVENTS} SET data = '{{\"last_active\":1}}' WHERE position = 7"],
        7,
        id="data-changed",
    ),
    pytest.param(
        forge_text(10, "metadata", "REPLACE(text, 'tester', 'mallory')"),
        10,
        id="actor-changed",
    ),
    pytest.param(
        [f"UPDATE {EVENTS} SET recorded_at = recorded_at - 3600000000 WHERE position = 4"],
        4,
        id="time-changed",
    ),
    pytest.param(
        [
            f"UPDATE {EVENTS} SET type_id = (SELECT id FROM mastertrail_texts "
            "WHERE text = 'master.activated') WHERE position = 11"
        ],
        11,
        id="type-changed",
    ),
    pytest.param([f"UPDATE {EVENTS} SET version = 99 WHERE position = 8"], 8, id="version-changed"),
    pytest.param(
        [f"UPDATE {EVENTS} SET master_id = 7 WHERE position = 12"], 12, id="moved-to-no-master"
    ),
    pytest.param([f"DELETE FROM {EVENTS} WHERE position = 5"], 5, id="row-removed"),
    pytest.param([f"DELETE FROM {EVENTS} WHERE position = 12"], 12, id="last-row-removed"),
    pytest.param([f"DELETE FROM {EVENTS} WHERE position >= 9"], 9, id="tail-removed"),
    pytest.param(
        [f"UPDATE {EVENTS} SET data = 'not json' WHERE position = 6"], 6, id="data-not-json"
    ),
    pytest.param(
        [f'UPDATE {EVENTS} SET data = \'{{"last_active":"soon"}}\' WHERE position = 9'],
        9,
        id="data-wrong-type",
    ),
    pytest.param(
        [f"UPDATE {EVENTS} SET data = '[1,2]' WHERE position = 7"], 7, id="data-not-an-object"
    ),
    pytest.param(OUT_OF_RANGE, 9, id="data-out-of-range"),
    pytest.param(forge_text(3, "metadata", "''"), 3, id="metadata-empty"),
    pytest.param(forge_text(8, "type", "'master.teleported'"), 8, id="type-unknown"),
    pytest.param(
        [f"UPDATE {EVENTS} SET metadata_id = 9999 WHERE position = 5"], 5, id="metadata-missing"
    ),
    pytest.param(
        [f"UPDATE {EVENTS} SET schema_version = 7 WHERE position = 8"], 8, id="schema-version"
    ),
    pytest.param(
        [f'UPDATE {EVENTS} SET data = \'{{"name":"x","last_active":1}}\' WHERE position = 2'],
        2,
        id="renamed",
    ),
]

Operation = Callable[[Registry], object]

#: Everything a reader or operator may do on the tampered log.
OPERATIONS: list[tuple[str, Operation]] = [
    ("get_masters", lambda r: r.get_masters()),
    ("get_master", lambda r: [r.get_master(i) for i in (1, 2, 3)]),
    ("history", lambda r: [r.history(i) for i in (1, 2, 3)]),
    ("events", lambda r: list(r.events())),
    ("events after", lambda r: list(r.events(after=5, limit=3))),
    ("masters_as_of position", lambda r: [r.masters_as_of(p) for p in range(13)]),
    (
        "masters_as_of time",
        lambda r: r.masters_as_of(dt.datetime(2023, 11, 14, 22, 15, tzinfo=dt.UTC)),
    ),
    ("find_master_id", lambda r: r.find_master_id("alpha:/srv")),
    ("expire_masters", lambda r: r.expire_masters(timeout=600)),
    ("rebuild", lambda r: r.rebuild()),
    ("verify again", lambda r: r.verify()),
]


class TestTamperedLog:
    @pytest.mark.parametrize(("statements", "first_bad"), TAMPERINGS)
    def test_verify_names_the_first_bad_position_and_nothing_crashes(
        self,
        fleet: Registry,
        statements: list[str],
        first_bad: int,
        request: pytest.FixtureRequest,
    ) -> None:
        """verify reports a chain problem at exactly the first position that differs from
        what was appended, and every other operation returns a result or raises a typed
        RegistryError."""
        tamper(fleet.engine, *statements)
        report = fleet.verify()
        assert not report.ok
        assert report.problems[0].kind == "chain"
        assert report.problems[0].position == first_bad, report.problems
        for name, operation in OPERATIONS:
            try:
                operation(fleet)
            except RegistryError:
                pass
            except Exception as error:  # pragma: no cover - the failure being tested for
                pytest.fail(f"{name} crashed with {type(error).__name__}: {error}")

    def test_the_head_row_moved_is_reported(self, fleet: Registry) -> None:
        """A head row moved back (as if the newest events had never been appended) is
        reported at the first position past it."""
        tamper(fleet.engine, "UPDATE mastertrail_head SET position = 10")
        report = fleet.verify()
        assert not report.ok
        assert report.problems[0].position == 11, report.problems

    def test_a_row_added_past_the_head_is_reported(self, fleet: Registry) -> None:
        """A row inserted with raw SQL after the last append is reported as stored past the
        head row."""
        with fleet.engine.begin() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM {EVENTS} WHERE position = 12")).one()
            values = row._asdict()
            values.pop("recorded_minute", None)  # SQLite's generated column
            values.update(position=13, version=row.version + 1)
            fresh = uuid.uuid4()
            values["event_id"] = fresh if fleet.engine.dialect.name == "postgresql" else fresh.bytes
            columns = ", ".join(values)
            conn.execute(
                sa.text(
                    f"INSERT INTO {EVENTS} ({columns}) VALUES "
                    f"({', '.join(':' + c for c in values)})"
                ),
                values,
            )
        report = fleet.verify()
        assert not report.ok
        assert report.problems[0].position == 13, report.problems

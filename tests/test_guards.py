"""The database itself refuses every change to the tables the chain depends on (the
events, the texts and the head row) but a legitimate append, in each statement form each
database offers: raw SQL, as anyone connected could send it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mastertrail import Registry
from tests.conftest import FakeClock

EVENTS, TEXTS, HEAD = "mastertrail_events", "mastertrail_texts", "mastertrail_head"
COLUMNS = (
    "position, event_id, master_id, version, type_id, schema_version, data, "
    "metadata_id, recorded_at, hash"
)
#: Event 3's columns but its metadata, which becomes the newest text's (another actor's).
FORGED = COLUMNS.replace("metadata_id", f"(SELECT MAX(id) FROM {TEXTS})")
#: The same, as a new event at position 99 that takes event 3's place in its stream.
RESTREAMED = FORGED.replace("position", "99", 1)
#: Event 3, forged.
EVENT_3 = f"SELECT {FORGED} FROM {EVENTS} e WHERE e.position = 3"
ZEROS = {
    "sqlite": "zeroblob(32)",
    "postgresql": "'\\x" + "00" * 32 + "'::bytea",
    "mysql": "REPEAT(CHAR(0), 32)",
}
TEXT_1 = f"FROM {TEXTS} WHERE id = 1"

#: The statements that must be refused, per database: name, and the statements sent on
#: one connection in one transaction.
REFUSED: dict[str, dict[str, list[str]]] = {
    "sqlite": {
        "events-insert-or-replace": [f"INSERT OR REPLACE INTO {EVENTS} ({COLUMNS}) {EVENT_3}"],
        "events-replace-into": [f"REPLACE INTO {EVENTS} ({COLUMNS}) {EVENT_3}"],
        "events-replace-stream": [
            f"REPLACE INTO {EVENTS} ({COLUMNS}) SELECT {RESTREAMED} FROM {EVENTS} e "
            "WHERE e.position = 3"
        ],
        "events-upsert": [
            f"INSERT INTO {EVENTS} ({COLUMNS}) {EVENT_3} "
            "ON CONFLICT (position) DO UPDATE SET metadata_id = excluded.metadata_id"
        ],
        "events-update-or-replace": [f"UPDATE OR REPLACE {EVENTS} SET position = 2"],
        "events-update": [f"UPDATE {EVENTS} SET metadata_id = type_id"],
        "events-delete": [f"DELETE FROM {EVENTS}"],
        "texts-replace-id": [
            f"REPLACE INTO {TEXTS} (id, digest, text) VALUES (1, randomblob(32), 'forged')"
        ],
        "texts-replace-digest": [
            f"INSERT OR REPLACE INTO {TEXTS} (id, digest, text) SELECT 999, digest, 'x' {TEXT_1}"
        ],
        "texts-upsert": [
            f"INSERT INTO {TEXTS} (digest, text) SELECT digest, 'forged' {TEXT_1} "
            "ON CONFLICT (digest) DO UPDATE SET text = excluded.text"
        ],
        "texts-update": [f"UPDATE {TEXTS} SET text = 'forged'"],
        "texts-delete": [f"DELETE FROM {TEXTS}"],
        "head-insert-or-replace": [f"INSERT OR REPLACE INTO {HEAD} VALUES (1, 0, {{zeros}}, 0)"],
    },
    "postgresql": {
        "events-upsert": [
            f"INSERT INTO {EVENTS} ({COLUMNS}) {EVENT_3} "
            "ON CONFLICT (position) DO UPDATE SET metadata_id = EXCLUDED.metadata_id"
        ],
        "events-update": [f"UPDATE {EVENTS} SET metadata_id = type_id"],
        "events-delete": [f"DELETE FROM {EVENTS}"],
        "events-truncate": [f"TRUNCATE {EVENTS}"],
        "events-truncate-cascade": [f"TRUNCATE {EVENTS} CASCADE"],
        "texts-upsert": [
            f"INSERT INTO {TEXTS} (digest, text) SELECT digest, 'forged' {TEXT_1} "
            "ON CONFLICT (digest) DO UPDATE SET text = EXCLUDED.text"
        ],
        "texts-update": [f"UPDATE {TEXTS} SET text = 'forged'"],
        "texts-delete": [f"DELETE FROM {TEXTS}"],
        "texts-truncate": [f"TRUNCATE {TEXTS} CASCADE"],
        "head-truncate": [f"TRUNCATE {HEAD}"],
        "head-upsert": [
            f"INSERT INTO {HEAD} VALUES (1, 0, {{zeros}}, 0) "
            "ON CONFLICT (id) DO UPDATE SET position = 0"
        ],
    },
    "mysql": {
        "events-replace-into": [f"REPLACE INTO {EVENTS} ({COLUMNS}) {EVENT_3}"],
        "events-replace-stream": [
            f"REPLACE INTO {EVENTS} ({COLUMNS}) SELECT {RESTREAMED} FROM {EVENTS} e "
            "WHERE e.position = 3"
        ],
        "events-upsert": [
            f"INSERT INTO {EVENTS} ({COLUMNS}) {EVENT_3} "
            "ON DUPLICATE KEY UPDATE metadata_id = type_id"
        ],
        "events-update-ignore": [f"UPDATE IGNORE {EVENTS} SET metadata_id = type_id"],
        "events-delete": [f"DELETE FROM {EVENTS}"],
        "events-truncate": [f"TRUNCATE {EVENTS}"],
        "events-truncate-without-fk": ["SET foreign_key_checks = 0", f"TRUNCATE {EVENTS}"],
        "texts-replace": [
            f"REPLACE INTO {TEXTS} (id, digest, text) SELECT id, digest, 'forged' {TEXT_1}"
        ],
        "texts-upsert": [
            f"INSERT INTO {TEXTS} (id, digest, text) VALUES (1, {{zeros}}, 'x') "
            "ON DUPLICATE KEY UPDATE text = 'forged'"
        ],
        "texts-update": [f"UPDATE {TEXTS} SET text = 'forged'"],
        "texts-delete": [f"DELETE FROM {TEXTS}"],
        "texts-truncate-without-fk": ["SET foreign_key_checks = 0", f"TRUNCATE {TEXTS}"],
        "head-truncate-without-fk": ["SET foreign_key_checks = 0", f"TRUNCATE {HEAD}"],
        "head-replace": [f"REPLACE INTO {HEAD} VALUES (1, 0, {{zeros}}, 0)"],
        "head-upsert": [
            f"INSERT INTO {HEAD} VALUES (1, 0, {{zeros}}, 0) ON DUPLICATE KEY UPDATE position = 0"
        ],
    },
}
#: What every database must refuse of the head row.
HEAD_REFUSED = {
    "head-back": [f"UPDATE {HEAD} SET position = position - 1"],
    "head-back-onto-an-older-event": [
        f"UPDATE {HEAD} SET position = 5, hash = (SELECT hash FROM {EVENTS} e WHERE e.position = 5)"
    ],
    "head-rehashed": [f"UPDATE {HEAD} SET hash = {{zeros}}"],
    "head-master-ids-back": [f"UPDATE {HEAD} SET last_master_id = 0"],
    "head-renumbered": [f"UPDATE {HEAD} SET id = 2"],
    "head-delete": [f"DELETE FROM {HEAD}"],
    "head-second-row": [f"INSERT INTO {HEAD} VALUES (2, 99, {{zeros}}, 99)"],
}


def snapshot(engine: Engine) -> dict[str, list[Any]]:
    """Every row of the three tables."""
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")]
            for table in (EVENTS, TEXTS, HEAD)
        }


@pytest.fixture
def fleet(registry: Registry, clock: FakeClock) -> Registry:
    """Two masters, positions 1-6, by two actors."""
    other = Registry(registry.engine, clock=clock, actor="intruder")
    alpha, bravo = registry.find_master_id("alpha"), other.find_master_id("bravo")
    for _ in range(2):
        clock.advance(60)
        registry.set_master_state(alpha, True)
        other.set_master_state(bravo, True)
    return registry


class TestTheDatabaseRefuses:
    """Raw DML other than an append is refused, and leaves every row as it was."""

    def test_every_statement_form(self, fleet: Registry, backend: str) -> None:
        """Each statement form (:data:`REFUSED` and :data:`HEAD_REFUSED`) fails, each in a
        transaction of its own, and the events, the texts and the head are unchanged."""
        engine = fleet.engine
        before = snapshot(engine)
        let_through = []
        for name, statements in {**REFUSED[backend], **HEAD_REFUSED}.items():
            with engine.connect() as conn:
                try:
                    with conn.begin():
                        for statement in statements:
                            conn.exec_driver_sql(statement.replace("{zeros}", ZEROS[backend]))
                    let_through.append(name)
                except sa.exc.DBAPIError:
                    pass
                conn.invalidate()  # nothing of the session's settings outlives the case
        assert let_through == []
        assert snapshot(engine) == before
        assert fleet.verify().ok


class TestTheDatabaseAllows:
    """What mastertrail itself does to the head row still goes through."""

    def test_the_head_set_back_onto_the_logs_last_event(self, fleet: Registry) -> None:
        """A head row moved past the log (only possible with its guard dropped) may be set
        back onto the log's last event and hash, as ``rebuild`` restores it."""
        engine = fleet.engine
        before = snapshot(engine)[HEAD]
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {HEAD} SET position = position + 1")  # forward
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE {HEAD} SET position = (SELECT MAX(position) FROM {EVENTS} e), "
                f"hash = (SELECT hash FROM {EVENTS} e WHERE position = 6)"
            )
        assert snapshot(engine)[HEAD] == before
        assert fleet.verify().ok

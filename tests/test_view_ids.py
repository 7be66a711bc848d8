"""Ids we give masters and ids the database gives them never collide.

Buildbot's own connector inserts a master without an id and lets the database number it
(a sequence on PostgreSQL, the table's largest id elsewhere). Registration and ``rebuild``
give ids themselves, so they move the sequence past them.
"""

from __future__ import annotations

import sqlalchemy as sa

from mastertrail import Registry


def insert_as_buildbot_does(registry: Registry, name: str) -> int:
    """A ``masters`` row inserted with no id, as Buildbot's connector inserts it; its id."""
    with registry.engine.begin() as conn:
        result = conn.execute(
            sa.text(
                "INSERT INTO masters (name, name_hash, active, last_active) "
                "VALUES (:name, :hash, 0, 0)"
            ),
            {"name": name, "hash": name.encode().hex()[:40]},
        )
        if registry.engine.dialect.name == "postgresql":
            return int(conn.execute(sa.text("SELECT max(id) FROM masters")).scalar_one())
        return int(result.lastrowid)


def test_a_master_numbered_by_the_database_follows_the_registered_ones(
    registry: Registry,
) -> None:
    registered = [registry.find_master_id(f"master-{n}") for n in range(3)]
    assert insert_as_buildbot_does(registry, "inserted") == max(registered) + 1


def test_after_a_rebuild_the_database_numbers_past_every_recorded_id(registry: Registry) -> None:
    registered = [registry.find_master_id(f"master-{n}") for n in range(3)]
    with registry.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM masters"))
    registry.rebuild()
    assert insert_as_buildbot_does(registry, "inserted") == max(registered) + 1

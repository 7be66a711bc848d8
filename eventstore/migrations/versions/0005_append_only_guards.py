"""Append-only guards on every table the chain depends on: the events, the texts and the
head row refuse every change but a legitimate append.

- SQLite: ``INSERT OR REPLACE`` / ``REPLACE INTO`` (and an upsert) delete the row they
  replace without firing a DELETE trigger. A ``BEFORE INSERT`` trigger on the events and
  on the texts refuses a row that would replace one (same position, stream version or
  stored event id; same text id or digest). The head row refuses an insert while it
  exists, any delete, and any update but moving it forward.
- PostgreSQL: the events and the texts refuse UPDATE, DELETE and TRUNCATE already (an
  upsert's UPDATE fires the UPDATE trigger); the head row gets the same rule as on SQLite,
  and a TRUNCATE trigger.
- MariaDB: REPLACE and an upsert fire the DELETE or UPDATE triggers already, but
  ``TRUNCATE`` fires none, and with ``foreign_key_checks=0`` the truncate guard's foreign
  keys do not stop it. A system-versioned table cannot be truncated at all, so the three
  tables become system-versioned: events and texts are never updated or deleted (the
  triggers refuse it), so they keep no history rows; the head row's columns are excluded
  from versioning (``WITHOUT SYSTEM VERSIONING``), so moving it keeps none either. The head
  row gets the same triggers as on SQLite.

The head "moves forward" when its position grows (with any hash), or stays with the same
hash (allocating a master id), and its highest master id never decreases; it may also be
set exactly onto the log's last event and hash (how ``rebuild`` restores it). It may be
inserted only when there is none.

On MariaDB adding system versioning copies each table once; each step can run again, so
the next upgrade finishes one that stopped half-way. A later migration that alters one of
these tables on MariaDB sets ``system_versioning_alter_history = KEEP`` first.

Revision ID: 0005_append_only_guards
Revises: 0004_reflectable_schema
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005_append_only_guards"
down_revision = "0004_reflectable_schema"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
TEXTS = "mastertrail_texts"
HEAD = "mastertrail_head"

REPLACED = "{} is append-only: a row that would replace another is refused"
HEAD_REFUSAL = "mastertrail_head only moves forward along the log: the change is refused"

#: SQL true when the head row's update ``NEW`` from ``OLD`` is allowed.
FORWARD = (
    "NEW.id = OLD.id AND NEW.last_master_id >= OLD.last_master_id AND ("
    "NEW.position > OLD.position "
    "OR (NEW.position = OLD.position AND NEW.hash = OLD.hash) "
    f"OR (NOT EXISTS (SELECT 1 FROM {EVENTS} later WHERE later.position > NEW.position) AND ("
    f"EXISTS (SELECT 1 FROM {EVENTS} tail WHERE tail.position = NEW.position "
    "AND tail.hash = NEW.hash) "
    f"OR (NEW.position = 0 AND NEW.hash = {{genesis}} "
    f"AND NOT EXISTS (SELECT 1 FROM {EVENTS})))))"
)

#: SQL true when a new row of the events would replace one.
EVENT_REPLACES = (
    f"EXISTS (SELECT 1 FROM {EVENTS} WHERE position = NEW.position) "
    f"OR EXISTS (SELECT 1 FROM {EVENTS} WHERE master_id = NEW.master_id "
    "AND version = NEW.version) "
    f"OR (NEW.event_id IS NOT NULL AND EXISTS (SELECT 1 FROM {EVENTS} "
    "WHERE event_id = NEW.event_id))"
)
#: SQL true when a new text would replace one.
TEXT_REPLACES = (
    f"EXISTS (SELECT 1 FROM {TEXTS} WHERE id = NEW.id) "
    f"OR EXISTS (SELECT 1 FROM {TEXTS} WHERE digest = NEW.digest)"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite()
    elif dialect == "postgresql":
        _postgresql()
    else:
        _mariadb()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, table in _TRIGGERS[dialect]:
        on = f" ON {table}" if dialect == "postgresql" else ""
        op.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mastertrail_head_moves_forward()")
    if dialect == "mysql":
        op.execute("SET SESSION system_versioning_alter_history = KEEP")
        for table in (EVENTS, TEXTS, HEAD):
            if _versioned(table):
                op.execute(f"ALTER TABLE {table} DROP SYSTEM VERSIONING")


_TRIGGERS = {
    "sqlite": [
        (f"{EVENTS}_no_replace", EVENTS),
        (f"{TEXTS}_no_replace", TEXTS),
        (f"{HEAD}_no_insert", HEAD),
        (f"{HEAD}_no_delete", HEAD),
        (f"{HEAD}_forward", HEAD),
    ],
    "postgresql": [(f"{HEAD}_forward", HEAD), (f"{HEAD}_no_truncate", HEAD)],
    "mysql": [(f"{HEAD}_no_insert", HEAD), (f"{HEAD}_no_delete", HEAD), (f"{HEAD}_forward", HEAD)],
}


def _sqlite() -> None:
    def refuse(name: str, when: str, table: str, condition: str, message: str) -> None:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {when} ON {table} WHEN {condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )

    refuse(f"{EVENTS}_no_replace", "INSERT", EVENTS, EVENT_REPLACES, REPLACED.format(EVENTS))
    refuse(f"{TEXTS}_no_replace", "INSERT", TEXTS, TEXT_REPLACES, REPLACED.format(TEXTS))
    refuse(f"{HEAD}_no_insert", "INSERT", HEAD, f"EXISTS (SELECT 1 FROM {HEAD})", HEAD_REFUSAL)
    refuse(f"{HEAD}_no_delete", "DELETE", HEAD, "1", HEAD_REFUSAL)
    forward = FORWARD.format(genesis="zeroblob(32)")
    refuse(f"{HEAD}_forward", "UPDATE", HEAD, f"NOT ({forward})", HEAD_REFUSAL)


def _postgresql() -> None:
    forward = FORWARD.format(genesis="'\\x" + "00" * 32 + "'::bytea")
    op.execute(
        "CREATE OR REPLACE FUNCTION mastertrail_head_moves_forward() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'UPDATE' AND ({forward}) THEN RETURN NEW; END IF; "
        f"IF TG_OP = 'INSERT' AND NOT EXISTS (SELECT 1 FROM {HEAD}) THEN RETURN NEW; END IF; "
        f"RAISE EXCEPTION '{HEAD_REFUSAL} (%)', TG_OP USING ERRCODE = 'insufficient_privilege'; "
        "END $$"
    )
    op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_forward ON {HEAD}")
    op.execute(
        f"CREATE TRIGGER {HEAD}_forward BEFORE INSERT OR UPDATE OR DELETE ON {HEAD} "
        "FOR EACH ROW EXECUTE FUNCTION mastertrail_head_moves_forward()"
    )
    op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_no_truncate ON {HEAD}")
    op.execute(
        f"CREATE TRIGGER {HEAD}_no_truncate BEFORE TRUNCATE ON {HEAD} "
        "FOR EACH STATEMENT EXECUTE FUNCTION mastertrail_refuse_change()"
    )


def _mariadb() -> None:
    signal = f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{HEAD_REFUSAL}'"
    forward = FORWARD.format(genesis="REPEAT(CHAR(0), 32)")
    for name, when, body in (
        ("no_insert", "INSERT", f"IF EXISTS (SELECT 1 FROM {HEAD}) THEN {signal}; END IF"),
        ("no_delete", "DELETE", signal),
        ("forward", "UPDATE", f"IF NOT ({forward}) THEN {signal}; END IF"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_{name}")
        op.execute(f"CREATE TRIGGER {HEAD}_{name} BEFORE {when} ON {HEAD} FOR EACH ROW {body}")
    # TRUNCATE fires no trigger and ignores foreign keys under foreign_key_checks=0, but a
    # system-versioned table refuses it (error 4137) whatever the session's settings.
    op.execute("SET SESSION system_versioning_alter_history = KEEP")
    for table in (EVENTS, TEXTS, HEAD):
        if not _versioned(table):
            op.execute(f"ALTER TABLE {table} ADD SYSTEM VERSIONING")
    op.execute(
        f"ALTER TABLE {HEAD} MODIFY position BIGINT NOT NULL WITHOUT SYSTEM VERSIONING, "
        "MODIFY hash BINARY(32) NOT NULL WITHOUT SYSTEM VERSIONING, "
        "MODIFY last_master_id INT NOT NULL WITHOUT SYSTEM VERSIONING"
    )
    op.execute("SET SESSION system_versioning_alter_history = ERROR")


def _versioned(table: str) -> bool:
    """Whether ``table`` is system-versioned (MariaDB)."""
    found = op.get_bind().exec_driver_sql(
        "SELECT table_type FROM information_schema.tables "
        f"WHERE table_schema = DATABASE() AND table_name = '{table}'"
    )
    return found.scalar() == "SYSTEM VERSIONED"

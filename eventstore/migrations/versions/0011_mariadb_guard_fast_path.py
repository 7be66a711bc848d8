"""MariaDB: the head row's update trigger looks at the log only for a change its first
condition cannot tell is a move forward.

Revision ``0005`` made the trigger one ``IF NOT (<every allowed move>)``, whose condition
reads the log (setting the head back onto the log's last event is allowed), and MariaDB
prepares the whole condition, subqueries and all, at every append. The trigger now tests
first, from the row's old and new values alone, whether the update moves the head forward
(its position grows, or it stays with its hash, while its highest master id does not
fall): an append, which is then let through without the second test, whose statement is
not prepared at all. Anything else meets the same test as before and the same error:
every change refused before is still refused. Revision ``0009`` does the same on
PostgreSQL with a ``WHEN`` condition; nothing changes on SQLite.

Revision ID: 0011_mariadb_guard_fast_path
Revises: 0010_archive_end_states
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0011_mariadb_guard_fast_path"
down_revision = "0010_archive_end_states"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"
HEAD = "mastertrail_head"
HEAD_REFUSAL = "mastertrail_head only moves forward along the log: the change is refused"
SIGNAL = f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{HEAD_REFUSAL}'"

#: Revision 0005's condition: true when the update ``NEW`` from ``OLD`` is allowed.
FORWARD = (
    "NEW.id = OLD.id AND NEW.last_master_id >= OLD.last_master_id AND ("
    "NEW.position > OLD.position "
    "OR (NEW.position = OLD.position AND NEW.hash = OLD.hash) "
    f"OR (NOT EXISTS (SELECT 1 FROM {EVENTS} later WHERE later.position > NEW.position) AND ("
    f"EXISTS (SELECT 1 FROM {EVENTS} tail WHERE tail.position = NEW.position "
    "AND tail.hash = NEW.hash) "
    "OR (NEW.position = 0 AND NEW.hash = REPEAT(CHAR(0), 32) "
    f"AND NOT EXISTS (SELECT 1 FROM {EVENTS})))))"
)
#: True for an update that moves the head forward (or allocates a master id): allowed
#: without a look at the log. Its columns are NOT NULL; ``IS NOT TRUE`` sends anything
#: else, NULL included, to the full test.
MOVES_FORWARD = (
    "NEW.id = OLD.id AND NEW.last_master_id >= OLD.last_master_id AND ("
    "NEW.position > OLD.position OR (NEW.position = OLD.position AND NEW.hash = OLD.hash))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    _forward(
        f"IF ({MOVES_FORWARD}) IS NOT TRUE THEN IF NOT ({FORWARD}) THEN {SIGNAL}; END IF; END IF"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    _forward(f"IF NOT ({FORWARD}) THEN {SIGNAL}; END IF")


def _forward(body: str) -> None:
    """Replace the update trigger in one statement: the head is never unguarded."""
    op.execute(
        f"CREATE OR REPLACE TRIGGER {HEAD}_forward BEFORE UPDATE ON {HEAD} FOR EACH ROW {body}"
    )

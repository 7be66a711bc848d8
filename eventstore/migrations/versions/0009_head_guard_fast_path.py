"""PostgreSQL: the head row's guard is called only for an update its trigger's condition
cannot allow by itself.

Revision ``0005`` made one row trigger for INSERT, UPDATE and DELETE on the head, calling
the PL/pgSQL function ``mastertrail_head_moves_forward()`` at every append. An append
moves the head forward (its position grows, its highest master id does not fall), which
a trigger's ``WHEN`` condition can tell from the row's old and new values alone, without
calling a function. So the update trigger gets that condition: it calls the function
only when the update is not such a move, and the function checks every allowed move as
before (a ``WHEN`` condition cannot read another table, which setting the head back onto
the log's last event needs). INSERT and DELETE, whose trigger cannot name both rows, keep
a trigger of their own that always calls the function. Every change the guard refused is
still refused, by the same function with the same error.

Nothing changes on SQLite (whose triggers evaluate their condition in the statement
already) and MariaDB (whose triggers have no condition).

Revision ID: 0009_head_guard_fast_path
Revises: 0008_archive_stream_tips
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009_head_guard_fast_path"
down_revision = "0008_archive_stream_tips"
branch_labels = None
depends_on = None

HEAD = "mastertrail_head"
GUARD = "mastertrail_head_moves_forward()"

#: True for an update that moves the head forward (or allocates a master id): allowed
#: without a look at the log. Its columns are NOT NULL; ``IS NOT TRUE`` in the trigger's
#: condition calls the guard for anything else, NULL included.
MOVES_FORWARD = (
    "NEW.id = OLD.id AND NEW.last_master_id >= OLD.last_master_id AND ("
    "NEW.position > OLD.position OR (NEW.position = OLD.position AND NEW.hash = OLD.hash))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_forward ON {HEAD}")
    op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_one_row ON {HEAD}")
    op.execute(
        f"CREATE TRIGGER {HEAD}_forward BEFORE UPDATE ON {HEAD} FOR EACH ROW "
        f"WHEN (({MOVES_FORWARD}) IS NOT TRUE) EXECUTE FUNCTION {GUARD}"
    )
    op.execute(
        f"CREATE TRIGGER {HEAD}_one_row BEFORE INSERT OR DELETE ON {HEAD} FOR EACH ROW "
        f"EXECUTE FUNCTION {GUARD}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_one_row ON {HEAD}")
    op.execute(f"DROP TRIGGER IF EXISTS {HEAD}_forward ON {HEAD}")
    op.execute(
        f"CREATE TRIGGER {HEAD}_forward BEFORE INSERT OR UPDATE OR DELETE ON {HEAD} "
        f"FOR EACH ROW EXECUTE FUNCTION {GUARD}"
    )

"""What several migrations do alike."""

from __future__ import annotations

from alembic import op

REFUSAL = "{} is append-only: UPDATE and DELETE are refused"


def refuse_change(dialect: str, table: str) -> None:
    """(Re)create the triggers refusing UPDATE and DELETE on ``table`` (and on PostgreSQL
    TRUNCATE), as revision 0001 made them for the log."""
    if dialect == "postgresql":
        for name, when, level in (
            ("no_change", "UPDATE OR DELETE", "ROW"),
            ("no_truncate", "TRUNCATE", "STATEMENT"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_{name} BEFORE {when} ON {table} "
                f"FOR EACH {level} EXECUTE FUNCTION mastertrail_refuse_change()"
            )
        return
    if dialect == "sqlite":
        body = f"BEGIN SELECT RAISE(ABORT, '{REFUSAL.format(table)}'); END"
    else:
        body = f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL.format(table)}'"
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        op.execute(f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table} {body}")

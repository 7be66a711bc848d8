"""MariaDB: the log's text columns in ``utf8mb4``, whatever the database's default.

Revision ``0001`` created ``mastertrail_events`` in the database's default character set;
in a database whose default is ``latin1`` or ``utf8mb3`` its ``data`` (which holds the
names of new masters) could not hold a 4-byte character, and the log stored ``?`` where
it had hashed the character. ``data`` becomes ``utf8mb4`` with a binary collation, as
``mastertrail_texts.text`` already is (revision ``0002``). A column already in
``utf8mb4`` is left as it is; converting one copies the table once. Nothing happens on
SQLite and PostgreSQL (whose server encoding is checked per name instead: see
``projections/charsets.py``).

Revision ID: 0006_utf8mb4_log
Revises: 0005_append_only_guards
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006_utf8mb4_log"
down_revision = "0005_append_only_guards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "mysql":
        return
    charset = bind.exec_driver_sql(
        "SELECT character_set_name FROM information_schema.columns WHERE table_schema = "
        "DATABASE() AND table_name = 'mastertrail_events' AND column_name = 'data'"
    ).scalar()
    if charset == "utf8mb4":
        return
    op.execute("SET SESSION system_versioning_alter_history = KEEP")  # see revision 0005
    op.execute(
        "ALTER TABLE mastertrail_events "
        "MODIFY data TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
    )
    op.execute("SET SESSION system_versioning_alter_history = ERROR")


def downgrade() -> None:
    """The column stays ``utf8mb4``: converting it back could lose characters."""

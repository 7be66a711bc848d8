"""MariaDB: the log's table in compressed pages.

A check-in takes about 196 bytes in InnoDB's pages, with its indexes (see "Bytes per
event" in ``docs/performance.rst``): 20 bytes of InnoDB's own per record, the 37 bytes of
system versioning, the primary key in every secondary entry. The table is now
``PAGE_COMPRESSED``: InnoDB compresses each page when it writes it to the file (with the
server's ``innodb_compression_algorithm`` and level) and frees the rest of the page's
blocks in the file, so the log takes about 90 bytes a check-in on disk. Pages are held
uncompressed in the buffer pool: an append or a read of a cached page does no more work.
The table's ``data_length`` still counts whole pages; the file's allocated size
(``information_schema.innodb_sys_tablespaces.allocated_size``) shows the saving, on a file
system that frees a file's blocks (``fallocate`` punching holes: ext4, XFS, Btrfs).

The table is rebuilt online (``ALGORITHM=INPLACE, LOCK=NONE``: appends go on meanwhile,
after a wait of at most :data:`LOCK_WAIT` seconds for the table's metadata lock at its
start and end). A server that refuses (the table not in a file of its own, a long
transaction holding the table, a user without ALTER) leaves the table as it is, correct
and uncompressed, and logs ``page_compression_skipped`` with the statement to run later.
Nothing happens on SQLite and PostgreSQL.

Revision ID: 0012_mariadb_page_compression
Revises: 0011_mariadb_guard_fast_path
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from alembic import op

revision = "0012_mariadb_page_compression"
down_revision = "0011_mariadb_guard_fast_path"
branch_labels = None
depends_on = None

EVENTS = "mastertrail_events"

#: The seconds the rebuild waits for the table's metadata lock, during which appends
#: wait behind it.
LOCK_WAIT = 2

log = structlog.get_logger("mastertrail.migrate")


def upgrade() -> None:
    _compress(True)


def downgrade() -> None:
    _compress(False)


def _compress(on: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "mysql" or compressed(bind) == on:
        return
    alter = f"ALTER TABLE {EVENTS} PAGE_COMPRESSED = {int(on)}, ALGORITHM = INPLACE, LOCK = NONE"
    try:
        bind.exec_driver_sql(
            f"SET STATEMENT lock_wait_timeout = {LOCK_WAIT}, "
            f"system_versioning_alter_history = KEEP FOR {alter}"  # see revision 0005
        )
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            raise
        log.warning(
            "page_compression_skipped",
            reason=str(error.orig),
            hint=f"run `SET SESSION system_versioning_alter_history = KEEP; {alter}` later",
        )


def compressed(bind: sa.Connection) -> bool:
    """Whether the log's table is ``PAGE_COMPRESSED`` (its ``CREATE TABLE`` options say
    ```PAGE_COMPRESSED`='1'``)."""
    options = bind.exec_driver_sql(
        "SELECT create_options FROM information_schema.tables "
        f"WHERE table_schema = DATABASE() AND table_name = '{EVENTS}'"
    ).scalar()
    return "`PAGE_COMPRESSED`='1'" in str(options or "").upper()

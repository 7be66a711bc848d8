"""Section: the bytes each event costs, and where they go.

The totals are :func:`bench.replay.storage`'s. The breakdown splits each table and index
of the log into what its rows or entries hold and what the database adds around them,
in bytes per event of the log:

- SQLite (``dbstat``): each b-tree's payload (the records), the cells' and pages' own
  bytes, and the unused bytes of its pages.
- PostgreSQL (``pgstattuple`` and ``pageinspect``, made in the benchmark's database when
  the server has them; the relation sizes otherwise): the heap's tuple headers, column
  data, alignment padding, line pointers and the free space and page headers; each
  index's entries (key and entry header), line pointers, and free space, inner pages
  and page headers.
- MariaDB (InnoDB's persistent statistics after ``ANALYZE TABLE``): each index's pages,
  its leaf pages (the records) and the rest (inner pages and pages its segments hold
  free), with the fields each index stores (InnoDB's dictionary: the primary key's
  columns that every secondary entry carries).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bench.databases import Database
from bench.replay import storage as totals
from eventstore import EVENTS_TABLE, TEXTS_TABLE

#: PostgreSQL's line pointer, per heap tuple and per index entry.
LINE_POINTER = 4
#: PostgreSQL's MAXALIGN on this platform.
MAXALIGN = 8


def storage(database: Database) -> dict[str, Any]:
    """The totals of :func:`bench.replay.storage` and, under ``breakdown``, where the
    bytes of each table and index go, per event of the log."""
    result = totals(database)
    engine = sa.create_engine(database.url)
    try:
        with engine.connect() as conn:
            measure = {"sqlite": _sqlite, "postgresql": _postgresql}.get(database.backend, _mysql)
            result["breakdown"] = measure(conn, result["events"])
    finally:
        engine.dispose()
    return result


def _sqlite(conn: sa.Connection, count: int) -> dict[str, Any]:
    rows = conn.exec_driver_sql(
        "SELECT name, SUM(pgsize), SUM(payload), SUM(unused), SUM(ncell) FROM dbstat "
        "WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name IN (?, ?)) GROUP BY name",
        (EVENTS_TABLE, TEXTS_TABLE),
    ).all()
    found = {}
    for name, size, payload, unused, cells in rows:
        size, payload, unused = int(size or 0), int(payload or 0), int(unused or 0)
        found[str(name)] = {
            "bytes": size / count,
            "payload": payload / count,
            "cells_and_pages": (size - payload - unused) / count,
            "unused": unused / count,
            "cells": int(cells or 0),
        }
    return found


# -- PostgreSQL ----------------------------------------------------------------------------------


def _postgresql(conn: sa.Connection, count: int) -> dict[str, Any]:
    inspect = _pg_extensions(conn)
    found: dict[str, Any] = {}
    for table in (EVENTS_TABLE, TEXTS_TABLE):
        heap: dict[str, Any] = {
            "bytes": _scalar(conn, "SELECT pg_relation_size(%(t)s::regclass)", t=table) / count,
            "toast_fsm_vm": _scalar(
                conn,
                "SELECT pg_table_size(%(t)s::regclass) - pg_relation_size(%(t)s::regclass)",
                t=table,
            )
            / count,
        }
        if inspect and table == EVENTS_TABLE:
            heap.update(_pg_heap(conn, table, count))
        found[f"{table} heap"] = heap
        indexes = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %(t)s::regclass ORDER BY c.relname",
            {"t": table},
        ).scalars()
        for index in list(indexes):
            entry = {
                "bytes": _scalar(conn, "SELECT pg_relation_size(%(t)s::regclass)", t=index) / count
            }
            if inspect and table == EVENTS_TABLE:
                entry.update(_pg_index(conn, index, count))
            found[str(index)] = entry
    return found


def _pg_extensions(conn: sa.Connection) -> bool:
    """Make pgstattuple and pageinspect in this (the benchmark's own) database; False
    when the server does not have them or the user may not."""
    try:
        with conn.begin_nested():
            for name in ("pgstattuple", "pageinspect"):
                conn.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {name}")
    except sa.exc.DBAPIError:
        return False
    conn.commit()
    return True


def _pg_heap(conn: sa.Connection, table: str, count: int) -> dict[str, Any]:
    """The heap's bytes per event by what holds them, from the tuples of a page in the
    middle of the table (check-ins, as nearly all of the log is)."""
    stats = conn.exec_driver_sql(
        "SELECT table_len, tuple_count, tuple_len, free_space, dead_tuple_len "
        "FROM pgstattuple(%(t)s::regclass)",
        {"t": table},
    ).one()
    middle = _scalar(conn, "SELECT pg_relation_size(%(t)s::regclass) / 8192 / 2", t=table)
    lengths, headers = zip(
        *conn.exec_driver_sql(
            "SELECT lp_len, t_hoff FROM heap_page_items(get_raw_page(%(t)s, %(p)s::int)) "
            "WHERE lp_len > 0",
            {"t": table, "p": middle},
        ).all(),
        strict=True,
    )
    tuples = len(lengths)
    header = sum(headers) / tuples
    tuple_len = sum(lengths) / tuples
    padded = sum(-(-length // MAXALIGN) * MAXALIGN for length in lengths) / tuples
    per_tuple = padded + LINE_POINTER
    return {
        "tuples_per_page": tuples,
        "tuple_header": header,
        "column_data": tuple_len - header,
        "alignment": padded - tuple_len,
        "line_pointer": LINE_POINTER,
        "page_header_and_free": stats.table_len / count - per_tuple,
        "free_space": stats.free_space / count,
        "dead": stats.dead_tuple_len / count,
    }


def _pg_index(conn: sa.Connection, index: str, count: int) -> dict[str, Any]:
    """An index's bytes per event: its entries, their line pointers, and the rest (the
    free space the leaves keep, inner pages, page headers)."""
    stats = conn.exec_driver_sql(
        "SELECT index_size, leaf_pages, internal_pages, avg_leaf_density "
        "FROM pgstatindex(%(t)s::regclass)",
        {"t": index},
    ).one()
    lengths = _pg_leaf_entries(conn, index)
    entry = sum(lengths) / len(lengths) if lengths else 0.0
    pointer = LINE_POINTER if lengths else 0
    return {
        "entry": entry,
        "line_pointer": pointer,
        "leaf_pages": int(stats.leaf_pages),
        "internal_pages": int(stats.internal_pages),
        "avg_leaf_density": float(stats.avg_leaf_density) if lengths else None,
        "free_inner_and_headers": stats.index_size / count - entry - pointer,
    }


def _pg_leaf_entries(conn: sa.Connection, index: str) -> list[int]:
    """The lengths of the entries of a leaf page in the middle of ``index`` (none when it
    has no leaf page)."""
    blocks = _scalar(conn, "SELECT pg_relation_size(%(t)s::regclass) / 8192", t=index)
    for block in range(max(1, blocks // 2), blocks):
        kind = conn.exec_driver_sql(
            "SELECT type FROM bt_page_stats(%(t)s, %(p)s::int)", {"t": index, "p": block}
        ).scalar()
        if kind == "l":
            return list(
                conn.exec_driver_sql(
                    "SELECT itemlen FROM bt_page_items(%(t)s, %(p)s::int)",
                    {"t": index, "p": block},
                ).scalars()
            )
    return []


def _scalar(conn: sa.Connection, sql: str, **params: object) -> int:
    return int(conn.exec_driver_sql(sql, params).scalar() or 0)


# -- MariaDB -------------------------------------------------------------------------------------


def _mysql(conn: sa.Connection, count: int) -> dict[str, Any]:
    """Each index's pages from InnoDB's persistent statistics (``replay.storage`` has just
    analysed the tables), and the fields InnoDB stores in it."""
    page = _scalar(conn, "SELECT @@innodb_page_size")
    found: dict[str, Any] = {}
    sampled = _mysql_pages(conn, page)
    for table in (EVENTS_TABLE, TEXTS_TABLE):
        fields = _mysql_fields(conn, table)
        stats = conn.exec_driver_sql(
            "SELECT index_name, stat_name, stat_value FROM mysql.innodb_index_stats "
            "WHERE database_name = DATABASE() AND table_name = %s "
            "AND stat_name IN ('size', 'n_leaf_pages')",
            (table,),
        ).all()
        pages: dict[str, dict[str, int]] = {}
        for index, stat, value in stats:
            pages.setdefault(str(index), {})[str(stat)] = int(value)
        for index, sizes in sorted(pages.items()):
            leaf = sizes.get("n_leaf_pages", 0)
            found[f"{table} {index}"] = {
                **(sampled.get(index, {}) if table == EVENTS_TABLE else {}),
                "bytes": sizes.get("size", 0) * page / count,
                "leaf": leaf * page / count,
                "inner_and_free": (sizes.get("size", 0) - leaf) * page / count,
                "pages": sizes.get("size", 0),
                "leaf_pages": leaf,
                "fields": fields.get(index, []),
            }
    return found


#: Entries of each index read (in index order) to bring its pages into the buffer pool.
SAMPLE = 50_000


def _mysql_pages(conn: sa.Connection, page: int) -> dict[str, dict[str, float]]:
    """The records of each index of the log's table in the buffer pool's pages, after
    reading :data:`SAMPLE` entries of each: bytes per record (InnoDB's record header and
    fields) and records per page (``information_schema.innodb_buffer_page``, which does
    not tell leaf pages from inner ones: whatever inner pages are in the pool count too)."""
    indexes = conn.exec_driver_sql(
        "SELECT DISTINCT index_name FROM information_schema.statistics "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (EVENTS_TABLE,),
    ).scalars()
    for index in list(indexes):
        conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {EVENTS_TABLE} FORCE INDEX (`{index}`) "
            f"LIMIT {SAMPLE}) sample"
        ).scalar()
    rows = conn.exec_driver_sql(
        "SELECT index_name, COUNT(*), SUM(number_records), SUM(data_size) "
        "FROM information_schema.innodb_buffer_page WHERE page_type = 'INDEX' "
        "AND table_name = CONCAT('`', DATABASE(), '`.`', %s, '`') GROUP BY index_name",
        (EVENTS_TABLE,),
    ).all()
    return {
        str(index): {
            "sampled_pages": int(pages),
            "record": int(size) / int(records),
            "records_per_page": int(records) / int(pages),
            "page_bytes_per_record": page * int(pages) / int(records),
        }
        for index, pages, records, size in rows
        if records
    }


def _mysql_fields(conn: sa.Connection, table: str) -> dict[str, list[str]]:
    """The key fields of each index of ``table`` in InnoDB's dictionary (a system-versioned
    table's keys include ``row_end``); none when the server does not show them."""
    try:
        rows = conn.exec_driver_sql(
            "SELECT i.name, f.name FROM information_schema.innodb_sys_indexes i "
            "JOIN information_schema.innodb_sys_tables t ON t.table_id = i.table_id "
            "JOIN information_schema.innodb_sys_fields f ON f.index_id = i.index_id "
            "WHERE t.name = CONCAT(DATABASE(), '/', %s) ORDER BY i.index_id, f.pos",
            (table,),
        ).all()
    except sa.exc.DBAPIError:
        return {}
    fields: dict[str, list[str]] = {}
    for index, field in rows:
        fields.setdefault(str(index), []).append(str(field))
    return fields

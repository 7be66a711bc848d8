"""A model of the fleet's heartbeat: why eight masters appending at once cost more than
eight masters updating their own rows.

Not a section of ``make bench``, and not mastertrail's code: on PostgreSQL plain
psycopg on a database of its own, with a head row, a log table with the log's three
indexes and a ``masters`` table. Each contender runs in 1 or :data:`FLEET` processes at
once, every process making :data:`CALLS` calls back to back after :data:`WARM` untimed
ones; the result is the median of every call. The contenders, alternated in order from
one round to the next:

- ``append``: mastertrail's shape. ``BEGIN`` with the lock wait (one simple query), one
  statement that moves the head (its row lock orders every append), inserts the event
  chained on the head's hash and updates the master's row, then ``COMMIT``: three round
  trips, the head's lock held from the statement to the end of the commit;
- ``append, no flush wait``: the same with ``synchronous_commit = off``, so the commit
  does not wait for the log's flush while it holds the head's lock;
- ``append, autocommit``: the statement alone, which commits itself: one round trip, and
  the head's lock is released without waiting for the client's ``COMMIT``;
- ``update``: Buildbot's shape, ``BEGIN``, read the master's row, update it, ``COMMIT``;
- ``update, no flush wait``.

On MariaDB (``--backend mysql``), plain PyMySQL and the same tables; the contenders:

- ``block``: mastertrail's shape in a transaction, one compound statement (``BEGIN NOT
  ATOMIC``) that moves the head, updates the master's row and inserts the event, then
  ``COMMIT``;
- ``block, commit inside``: mastertrail's shape of a remembered master's check-in, the
  same statement ending with its own ``COMMIT``: one round trip, and the head's lock let
  go as the statement ends;
- ``update``: Buildbot's shape.

Run: ``python -m bench.serial_head [--backend postgresql|mysql] [--rounds N]`` with the
bench's or the tests' URL of that server (see ``docs/performance.rst``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.databases import server_url

FLEET = 8
CALLS = 300
WARM = 20

APPEND = (
    "WITH moved AS (UPDATE head SET position = position + 1, "
    "hash = sha256(hash || %(tail)s::bytea) WHERE id = 1 RETURNING position, hash), "
    "appended AS (INSERT INTO log (position, master_id, version, recorded_at, hash, data) "
    "SELECT position, %(master)s, %(version)s, %(at)s, hash, '{}' FROM moved RETURNING 1), "
    "viewed AS (UPDATE masters SET last_active = %(at)s WHERE id = %(master)s RETURNING 1) "
    "SELECT count(*) FROM moved"
)
BEGIN = b"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = 5000"
NO_FLUSH_WAIT = b"; SET LOCAL synchronous_commit = off"

Call = Callable[[psycopg.Connection[Any], int, int], None]


def _append(begin: bytes | None) -> Call:
    def call(conn: psycopg.Connection[Any], master: int, n: int) -> None:
        if begin is not None:
            conn.pgconn.exec_(begin)
        params = {"tail": str(n).encode(), "master": master, "version": n, "at": n}
        conn.execute(APPEND, params).fetchone()
        if begin is not None:
            conn.commit()

    return call


def _update(no_flush_wait: bool) -> Call:
    def call(conn: psycopg.Connection[Any], master: int, n: int) -> None:
        if no_flush_wait:
            conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SELECT active FROM masters WHERE id = %s", (master,)).fetchone()
        conn.execute("UPDATE masters SET last_active = %s WHERE id = %s", (n, master))
        conn.commit()

    return call


#: Each contender: its call, and whether its connection is in autocommit.
CONTENDERS: dict[str, tuple[Call, bool]] = {
    "append": (_append(BEGIN), False),
    "append, no flush wait": (_append(BEGIN + NO_FLUSH_WAIT), False),
    "append, autocommit": (_append(None), True),
    "update": (_update(False), False),
    "update, no flush wait": (_update(True), False),
}


BLOCK = (
    "BEGIN NOT ATOMIC "
    "UPDATE head SET hash = UNHEX(SHA2(CONCAT(hash, CAST(position + 1 AS CHAR), %s), 256)), "
    "position = position + 1 WHERE id = 1; "
    "UPDATE masters SET last_active = %s WHERE id = %s; "
    "INSERT INTO log (position, master_id, version, recorded_at, hash, data) "
    "SELECT position, %s, %s, %s, hash, '{}' FROM head WHERE id = 1 RETURNING position, hash; "
    "{commit}END"
)


def _block(commit_inside: bool) -> Call:
    sql = BLOCK.replace("{commit}", "COMMIT; " if commit_inside else "")

    def call(conn: Any, master: int, n: int) -> None:
        cursor = conn.cursor()
        cursor.execute(sql, (str(n), n, master, master, n, n))
        cursor.fetchall()
        while cursor.nextset():
            pass
        if not commit_inside:
            conn.commit()

    return call


def _mysql_update(conn: Any, master: int, n: int) -> None:
    cursor = conn.cursor()
    cursor.execute("SELECT active FROM masters WHERE id = %s", (master,))
    cursor.fetchall()
    cursor.execute("UPDATE masters SET last_active = %s WHERE id = %s", (n, master))
    conn.commit()


#: MariaDB's contenders (never in autocommit).
MYSQL_CONTENDERS: dict[str, tuple[Call, bool]] = {
    "block": (_block(False), False),
    "block, commit inside": (_block(True), False),
    "update": (_mysql_update, False),
}


def create(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in (
            "CREATE TABLE head (id int PRIMARY KEY, position bigint NOT NULL, hash bytea)",
            "INSERT INTO head VALUES (1, 0, '\\x00')",
            "CREATE TABLE log (position bigint PRIMARY KEY, master_id int NOT NULL, "
            "version int NOT NULL, recorded_at bigint NOT NULL, hash bytea NOT NULL, "
            "data text NOT NULL, UNIQUE (master_id, version, position))",
            "CREATE INDEX log_recorded_at ON log (recorded_at, position)",
            "CREATE TABLE masters (id int PRIMARY KEY, active boolean, last_active bigint)",
            f"INSERT INTO masters SELECT g, true, 0 FROM generate_series(1, {FLEET}) g",
        ):
            conn.execute(sql)


def create_mysql(url: sa.URL) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for sql in (
            "CREATE TABLE head (id int PRIMARY KEY, position bigint NOT NULL, "
            "hash varbinary(32) NOT NULL) ENGINE=InnoDB",
            "INSERT INTO head VALUES (1, 0, '')",
            "CREATE TABLE log (position bigint PRIMARY KEY, master_id int NOT NULL, "
            "version int NOT NULL, recorded_at bigint NOT NULL, hash varbinary(32) NOT NULL, "
            "data text NOT NULL, UNIQUE (master_id, version), KEY (recorded_at, position)) "
            "ENGINE=InnoDB",
            "CREATE TABLE masters (id int PRIMARY KEY, active boolean, last_active bigint) "
            "ENGINE=InnoDB",
            "INSERT INTO masters VALUES "
            + ", ".join(f"({number}, 1, 0)" for number in range(1, FLEET + 1)),
        ):
            conn.exec_driver_sql(sql)
    engine.dispose()


def _connect(target: str | sa.URL, autocommit: bool) -> Any:
    if isinstance(target, str):
        return psycopg.connect(target, autocommit=autocommit)
    import pymysql

    return pymysql.connect(
        host=target.host, port=target.port or 3306, user=target.username,
        password=target.password or "", database=target.database,
    )  # fmt: skip


def master(
    target: str | sa.URL,
    name: str,
    number: int,
    start: Barrier,
    out: Queue[list[float]],
    base: int,
    calls: int = CALLS,
) -> None:
    """One process: ``calls`` timed calls of contender ``name`` as master ``number``
    (``target``: a libpq connection string, or MariaDB's URL)."""
    call, autocommit = (CONTENDERS if isinstance(target, str) else MYSQL_CONTENDERS)[name]
    conn = _connect(target, autocommit)
    try:
        for n in range(base, base + WARM):
            call(conn, number, n)
        start.wait()
        times = []
        for n in range(base + WARM, base + WARM + calls):
            began = time.perf_counter()
            call(conn, number, n)
            times.append(time.perf_counter() - began)
    finally:
        conn.close()
    out.put(times)


def median_ms(
    target: str | sa.URL, name: str, processes: int, base: int, calls: int = CALLS
) -> float:
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=master, args=(target, name, number + 1, start, out, base, calls))
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    times = [t for _ in workers for t in out.get(timeout=300)]
    for worker in workers:
        worker.join()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "mysql"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=CALLS, help="timed calls per process")
    args = parser.parse_args()
    url = server_url(args.backend)
    if url is None:
        raise SystemExit(f"no {args.backend} server configured (see docs/performance.rst)")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"mastertrail_serial_head_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    own = sa.make_url(url).set(database=name)
    target: str | sa.URL
    if args.backend == "postgresql":
        target = own.set(drivername="postgresql").render_as_string(hide_password=False)
        create(target)
        contenders, first, second = CONTENDERS, "append", "append, autocommit"
    else:
        target = own
        create_mysql(own)
        contenders, first, second = MYSQL_CONTENDERS, "block", "block, commit inside"
    try:
        base = 0
        for number in range(args.rounds):
            for processes in (1, FLEET):
                order = list(contenders) if number % 2 == 0 else list(reversed(contenders))
                found = {}
                for contender in order:
                    found[contender] = median_ms(target, contender, processes, base, args.calls)
                    base += WARM + args.calls
                shown = ", ".join(f"{key} {found[key]:.3f}" for key in contenders)
                print(
                    f"round {number + 1}, {processes} process(es), median ms: {shown}; "
                    f"{first} / update {found[first] / found['update']:.2f}x, "
                    f"{second} / update {found[second] / found['update']:.2f}x",
                    flush=True,
                )
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if args.backend == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE {name}{force}")
        admin.dispose()


if __name__ == "__main__":
    main()

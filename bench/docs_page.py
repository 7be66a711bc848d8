"""``docs/performance.rst``: what ``make bench`` measures, and the table of its latest run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.databases import LABELS
from bench.report import Line, machine_line, rst_table

PAGE = """\
Performance
===========

mastertrail keeps every check-in of every master, yet a buildmaster should pay no more for
it than for Buildbot's own connector, which keeps one row per master. ``make bench`` measures
that, side by side with two anchors, and this page shows its latest full run.

Running it
----------

.. code-block:: sh

    make bench                          # every section, every configured database
    make bench BENCH_ARGS=--quick       # tiny sizes: a smoke run, well under a minute
    make bench BENCH_ARGS="--backends sqlite"

SQLite always runs (files under ``bench-results/``). PostgreSQL and MariaDB run when
``MASTERTRAIL_BENCH_POSTGRES_URL`` / ``MASTERTRAIL_BENCH_MYSQL_URL`` (or the test suite's
``MASTERTRAIL_TEST_POSTGRES_URL`` / ``MASTERTRAIL_TEST_MYSQL_URL``) name a server; the
benchmark creates databases of its own there and drops them at the end. The results are
written to ``bench-results/latest.json`` and printed as a table; a full run also rewrites
this page. The generated long SQLite log is cached in ``bench-results/`` between runs
(``--fresh`` makes it again).

What is measured
----------------

Contenders are measured in one loop, call by call and in alternating order, so that the
noise of the machine falls on both. Times are the median and the 99th percentile of the
calls; the ratio is mastertrail's median over the anchor's.

Every contender's clock moves a minute per reading, as from one heartbeat to the next.
Heartbeats timed back to back inside one real second would otherwise write the same
``last_active`` again, and SQLite and InnoDB skip writing a row that did not change: the
anchor's heartbeat would then commit nothing, which no real heartbeat does.

Connector
    ``setMasterState(id, True)`` on an active master (a heartbeat), ``findMasterId`` of an
    existing name, ``getMaster`` and ``getMasters`` with 10, 100 and 1,000 masters, through
    ``mastertrail.buildbot.MastersConnectorComponent`` and through Buildbot 4.3's own
    ``buildbot.db.masters.MastersConnectorComponent``. Each runs inside a real Buildbot
    ``DBConnector`` with its thread pool, on the real Twisted reactor, on a database of its
    own with Buildbot's schema made by Buildbot's own upgrade. The heartbeat is measured
    twice: as one master checking in again and again, and with another master checking in
    (untimed) before each heartbeat, as when several masters share the database. That other
    master is, on each side, a ``DBConnector`` of its own with the same component on the
    same database: its own thread pool and connections, as another buildmaster process
    has. The target is at most 1.0x.

Connector, long log
    The same calls with a long history behind mastertrail's component: ten masters
    checking in every minute, a year of it in a full run (5,256,000 events; in this run
    {history_events}), against Buildbot's component on a database with the same masters
    and no history. The log is written in bulk exactly as appends write it (same hash
    chain, ``verify`` passes) and the view is made by ``Registry.rebuild()``.

Heartbeat floor
    The statements of both heartbeats sent through the bare driver (no SQLAlchemy, no
    component, no thread pool), alternating on one database: Buildbot's read and one-row
    update, against the SQL mastertrail sends after its own write when no one wrote since
    (no read: the head move checked against where that write left the log, the event insert
    and the row update), and after another master's write (on PostgreSQL and MariaDB one
    statement in which the database numbers and chains the event; on SQLite the read
    first), with the same parameters, chaining a log that verifies. No target: it shows the
    database's share of a heartbeat, which no code above the driver can take away.

Core heartbeat
    ``Registry.set_master_state(id, True)`` against the `eventsourcing
    <https://eventsourcing.readthedocs.io>`_ library recording a heartbeat event on an
    aggregate with its SQLite and PostgreSQL persistence modules: ``repository.get`` (from
    its aggregate cache, fast-forwarded from the database), the event, ``save``. Its bare
    ``save`` of an aggregate held in memory is shown as a floor. The target is at most 1.0x
    the ``get`` + ``save`` heartbeat.

Rebuild
    ``Registry.rebuild()`` of the view from the long log, in events per second, against a
    bare driver scan (``sqlite3``, ``psycopg``, ``PyMySQL``) of the same table in position
    order, in the same run; with the growth of the process's resident memory during the
    rebuild. The target is at least 0.5x the scan, in constant memory.

masters_as_of
    The state of every master at a moment in the middle of the long log, against the same
    question on a log a hundred times shorter: under 20 ms, and flat as the log grows
    (at most 1.5x the short log's time).

Storage
    Bytes on disk per event of the log table with all its indexes (``dbstat`` on SQLite,
    ``pg_total_relation_size`` on PostgreSQL, on MariaDB the blocks the table's file holds
    once its pages are written, its pages being compressed, with InnoDB's data and index
    length, whole pages, beside it),
    and where they go in each table and index (see "Bytes per event"). The target is at
    most 100 bytes per check-in event on every database.

Independent harness
    The connector's operations measured as a new user would measure them, in rounds rather
    than call by call: each component in a real Buildbot ``DBConnector`` with its thread
    pool, on a fresh database of its own made by Buildbot's upgrade (mastertrail's tables
    made by its component's first call), the reactor's clock moving a minute per reading.
    Six rounds of sixty timed calls per contender, the rounds alternating which contender
    goes first, and no untimed call: the first round meets the pools cold. The result is
    the median of each contender's round medians; the spread is the range of the rounds'
    own ratios. The heartbeat, ``findMasterId`` and ``getMaster`` with 10 masters,
    ``getMasters`` with 10, 100 and 1,000; once quiet, once beside a background writer:
    another process committing transactions of five rows, 200 a second, into a table of
    its own in both contenders' databases in turn (on PostgreSQL and MariaDB the same
    server work beside either contender, on SQLite the same write lock to share on each
    file). ``--only independent`` runs this section alone. The target is at most 1.0x.

Fleet
    Eight masters heartbeating at once, each through a connector of its own, as the masters
    of one Buildbot share its database: each master a process of its own (``spawn``) with a
    real Buildbot ``DBConnector``, its thread pool and its own reactor, the clock moving a
    minute per reading; a fleet of eight per contender, on a database of its own made by
    Buildbot's upgrade, with its masters registered beforehand by a connector closed before
    the fleets start. A round runs one fleet, then the other, the next round starting with
    the other one; in a fleet's turn its masters wait at a barrier, then each makes forty
    calls back to back. A round's median is that of every call of every master of the
    fleet; the result is the median of six round medians and the spread the range of the
    rounds' own ratios, as in the independent harness, and no call is untimed. The
    heartbeat, then ``findMasterId`` of the master's own name, ``getMaster`` of its own id
    and ``getMasters``. ``--only fleet`` runs this section alone. The target is at most
    1.0x.

Archive
    A long log with a 30-day horizon: a year of ten masters (the connector's long log), so
    that 30 days are 8.2% of it; a run at a stated scale (``--events``) keeps the proportion.
    In one run on the same events: ``Registry.rebuild()`` (the rate the others are held
    against), ``masters_as_of`` at a quarter of the log (to be archived) and at the middle
    of the horizon, and a master of another process heartbeating back to back with a 5 ms
    pause; then ``Registry.archive(before=...)`` of everything older than the horizon while
    that process heartbeats; then the sizes, ``masters_as_of`` at the same moments (now
    inside the archive, and in the table) and ``Registry.verify()`` of the whole log,
    segments and table. Targets: the table with its indexes at most 50 MB (SQLite, a
    year), the segment files at most 10 bytes per archived check-in, archiving and
    verifying at least 0.5x the rate of rebuilding, the other process's heartbeats while
    archiving at p99 at most 2x their p99 alone, ``masters_as_of`` inside the archive under
    50 ms and in the table under 20 ms as before. ``--only archive`` runs this section
    alone (with the long log it needs); ``--events N`` sets the long log's length on every
    backend, for a stated smaller scale.

Latest results
--------------

{title}, measured on {date} on {machine}; load average {load} (1, 5, 15 min) at the end of
the run. Times are median / p99.

{table}

Statements per call
-------------------

SQL statements and commits per call (``BEGIN`` included where the driver does not issue it
itself), as counted by SQLAlchemy's events during the run, with 10 masters and no history.
What a pool or a dialect sends on its own is not among them (on MariaDB Buildbot's pool's
``SELECT 1`` at checkout, which the component's own engine does not send, and the pool's
``ROLLBACK`` at return, which mastertrail's calls leave out after a commit of theirs); the
round trips
of each side's heartbeat as the server counts them are under "Two harnesses, two
answers":

{round_trips}

A year at full size
-------------------

The long-log sections and the archive at a year of ten masters (5,256,000 events) on
every database, measured on 2026-12-07 on the machine of the table (one run of each,
``--only storage,long_history,as_of,rebuild,archive``; PostgreSQL with the build of that
morning; SQLite and MariaDB in one run that evening, with the Buildbot component's calls
on connections of its own, see :doc:`buildbot`, load average 1-2):

* SQLite: heartbeat 0.33x Buildbot's with the long log (1.20 against 3.64 ms), 0.33x
  with another master writing; ``findMasterId``, ``getMaster`` and ``getMasters``
  0.25-0.27x. ``rebuild`` 568,000 events a second, 0.85x the raw scan. ``masters_as_of``
  1.71 ms, 1.12x. 97 bytes per event. The archive sealed 4,824,000 events into 2,356
  segments (0.36 bytes per event) at 45,300 a second (0.09x ``rebuild``); the table with
  its indexes went from 510.2 to 42.3 MB (the target: 50). The heartbeat's p99 beside it
  21.4 ms against 2.54 ms alone (8.44x), its median 1.31 ms; ``masters_as_of`` 1.49 ms
  inside the archive and 3.54 ms in the hot log; ``verify`` 316,000 events a second
  (0.61x).
* PostgreSQL: the connector with the long log behind it, heartbeat 1.04x Buildbot's
  (1.29 against 1.24 ms) and 0.94x with another master writing, ``findMasterId`` 0.89x,
  ``getMaster`` 0.82x, ``getMasters`` 0.95x. ``rebuild`` 707,000 events a second, 0.99x
  the raw scan, 1 MB more memory at its peak. ``masters_as_of`` in the middle of the log
  5.62 ms, 1.17x its time on a log a hundred times shorter. 194 bytes per event. The
  archive sealed 4,824,000 events into 2,356 segments (0.36 bytes per event) at 108,000
  events a second (0.17x ``rebuild``); the heartbeat's p99 beside it 7.56 ms against
  3.94 ms alone (1.92x); ``masters_as_of`` 2.80 ms inside the archive and 3.76 ms in the
  hot log; ``verify`` of the whole 594,000 events a second (0.95x). The table with its
  indexes went from 1,017 to 1,004 MB: ``VACUUM`` makes the space reusable and the table
  does not grow again, but its files keep their size (see :doc:`operators`).
* MariaDB: heartbeat 0.64x with the long log (2.40 against 3.73 ms), 0.92x with another
  master writing, ``findMasterId`` 0.72x, ``getMaster`` 0.70x, ``getMasters`` 0.77x.
  ``rebuild`` 111,000 events a second, 1.05x the raw scan. ``masters_as_of`` 7.57 ms,
  1.12x. 90 bytes per event. The archive sealed the same 4,824,000 events in 568 s
  (8,500 a second, 0.07x; 273 s in the earlier run at this size, a difference not looked
  into); the table went from 1,007 to 91.9 MB. The heartbeat's p99 beside it 18.3 ms
  against 6.0 ms alone (3.04x), its median 2.27 ms against 2.10; ``masters_as_of``
  5.13 ms inside the archive and 5.96 ms in the hot log; ``verify`` 258,000 events a
  second (2.25x ``rebuild``'s 115,000 in that section).

The first MariaDB run at this size, with the build before, sealed every segment and then
failed: ``DELETE HISTORY`` of 4.8 million rows outlived the 30 seconds the engine's driver
waits for an answer, the run raised ``StoreUnavailable`` and the history rows stayed.
The tidying's two steps now wait up to an hour (``eventstore.archive_tidy.unhurried``).

Reading through the archive
---------------------------

{archive_notes}

Archiving and verifying: where the time goes
--------------------------------------------

Measured on 2026-12-07 on the machine of the table, quiet (load average under 1), the
archive section at a stated scale of 1,000,000 events (917,810 archived into 449
segments), each step of the run timed inside it:

* SQLite: ``rebuild`` 995,000 events a second, 1.0 µs an event. ``archive`` 122,600 a
  second (0.12x). The run's own thread spent 1.72 s reading the rows (1.9 µs an event),
  0.50 s encoding them (0.55 µs) and 2.18 s re-chaining the text read back (2.4 µs); the
  threads storing the segments 0.62 s writing and syncing the files and 1.81 s in the
  transactions that record each segment and delete its rows (2.0 µs a row); the run
  waited 2.87 s for them, most of it the pause that leaves SQLite's writer lock free
  three quarters of the time. ``verify`` 613,000 a second (0.62x).
* PostgreSQL: ``rebuild`` 1,061,000 a second, 0.94 µs an event. ``archive`` 122,800 a
  second (0.12x): the run's thread 2.71 s reading (3.0 µs an event), 0.77 s encoding and
  3.13 s re-chaining (3.4 µs); the transactions recording the segments and deleting their
  rows 6.25 s (6.8 µs a row, the server's delete and commit), beside it. ``verify``
  688,000 a second (0.65x).

At 0.5x of ``rebuild`` an archive would have about 2 µs an event for everything. The
server's delete of a row alone costs 2.0 µs on SQLite and 6.8 µs on PostgreSQL, and
re-chaining an event 2.4-3.4 µs; reading and encoding add 2.5-3.8 µs. Each of the three
is done by a thread of its own where it can be, so the run goes at the pace of the
slowest, and none of them fits in 2 µs. The re-chaining is what makes an archive seal
only events whose hashes chain; without it, reading and encoding alone would still take
more than the whole budget. ``verify`` re-chains every event too, but checks the
segments in as many processes as there are cores (two here) and reads each once.

The heartbeat beside an archive run: on SQLite the writer lock is the file's, and a
heartbeat that finds it held waits in SQLite's busy handler, which sleeps 1, 2, 5 ms
between tries. The archive's pause trades its pace against the heartbeats' p99. The
archive section at 300,000 events, each setting once (a p99 of 300 heartbeats moves by
about 2x from run to run at the same setting: the default gave 3.0-11.3x in eight runs):

======================  ==================  ==========  ======================
segment, pause          archive rate        vs rebuild  heartbeat p99 vs alone
======================  ==================  ==========  ======================
2,048 events, none      193,000/s           0.15x       102x
2,048, 3x (default)     118,000-135,000/s   0.09-0.11x  3.0-11.3x
2,048, 10x              45,000/s            0.03x       3.9x
2,048, 30x              16,000/s            0.01x       4.4x
512, none               101,000/s           0.08x       117x
512, 10x                26,000/s            0.02x       1.8x
512, 30x                7,000/s             0.01x       2.8x
======================  ==================  ==========  ======================

A colliding heartbeat waits at least the handler's first millisecond, so its p99 stays
near 2-4 ms (against about 1 ms alone) at any pace that leaves the lock held more than
one time in a hundred. A writer that tries again at pauses of its own instead, from 0.1
ms doubling to 2 ms with the busy handler off, takes the lock within a pause of its
release; it was tried on 2026-12-07 and not kept. The archive section at 300,000 events,
the build before and that one alternated twice on the machine of the table, slower than
the one of the settings above (load average 1.1-1.3): the p99 while archiving went from
21.2 and 22.5 ms to 15.7 and 14.9 ms (5.97-8.47x to 5.87-6.58x the p99 alone, 2.3-3.8 ms
in those runs), at the same pace (0.13-0.14x the rebuild's); a transaction recording a
segment took 9-10 ms there, so a heartbeat that meets one still waits for most of it.
But eight masters heartbeating at once (the fleet section) went from 4.85 ms to 24.8 ms
a heartbeat (0.82x Buildbot's to 4.25x) and from 233 to 201 heartbeats a second: the
handler's long sleeps let the process that just let the lock go take it again while the
others sleep, so most heartbeats never wait, and the short pauses hand it round fairly,
each heartbeat waiting for the others', with more wake-ups on two cores. With pauses
doubling up to 25 ms the fleet took 8.2 ms (1.34x) and the archive's p99 was 19.7 ms
again. The independent harness's heartbeat beside the background writer did not change
with the short pauses (1.09 and 1.15x Buildbot's before, 1.17 and 1.21x after). The
table's SQLite rows of 2026-12-07 come from a run of SQLite alone after the change was
undone; the other databases' rows, from the full run before it, do not depend on it. A
daily run archives a day of ten masters (14,400 events) in about a tenth of a second at
the default setting: the pace matters for the first run over a long backlog. On
PostgreSQL the heartbeat's median rose from 0.68 to 1.95 ms while archiving (p99 3.9x)
with no lock in common: the run's thread and the server's delete take the machine's two
cores from the heartbeating process and its server. The ratio divides by the p99 of 300
heartbeats alone, which one slow moment moves: in three more runs of the section at
1,000,000 events on 2026-12-07, quiet, alternated with the build before the check-in at
once, the p99 while archiving was 5.0-6.9 ms after and 5.7-7.5 ms before, the p99 alone
0.9-4.1 and 1.4-2.2 ms, so the ratios 1.70-5.32x after and 3.48-4.78x before; a ratio
under 2x, as in a full run of that day (its p99 alone 4.1 ms), is such a baseline, not a
met target.

On MariaDB (measured on 2026-12-07, load average 1 to 3) the heartbeat's p99 rose 3 to
12 times while archiving, and the server showed no lock wait between the two:
``information_schema.INNODB_LOCK_WAITS``, sampled every 4 to 10 ms through whole runs at
300,000 and 1,000,000 events, was empty every time. The transaction recording a segment
took 45 to 55 ms for its 2,048 rows, 85% of the run: the guard trigger's check of each
deleted row is a third of the delete, and each row is kept as a history row with its
index entries until the run's ``DELETE HISTORY``. The server spent a core on it and on
the purge, the run's own process a third of the other. The heartbeating connection's
extra time was spread over every step (its commit, its statement, the reply), as a
process short of CPU spends it, and two processes spinning beside the heartbeats, with
no archive, raised their p99 from 2.1 to 7.9 ms too. A pause after each transaction, as
on SQLite, trades as it does there (300,000 events, one or two runs each): none,
10.3-10.7x; 3x, 4.2-6.8x with the run 2.5 times as long; 10x, 3.7x with it 6 times as
long; the purge and the run's own thread keep the heartbeats' tail up between the
transactions. The online rebuild that ends a run which archived most of the log holds
the table's metadata lock twice, briefly: a heartbeat waited up to 80 ms for it, once a
run.

Since the log's table is kept in compressed pages (revision
``0012_mariadb_page_compression``), a run that deletes most of a long log also makes
InnoDB write many compressed pages, each with a hole punched in the file for the rest of
its blocks, and the heartbeat's tail grew beside it: at 300,000 events, measured on
2026-12-07 with the machine otherwise quiet, the build before that revision gave a p99
of 12.9 ms while archiving (4.3x alone) and the build after it 81.3 ms (30.6x), its
median 1.22 and 1.53 ms; 81.6 ms with the run's closing rebuild left out, so it is not
the rebuild; 48.7 ms with the pages compressed at level 1 instead of the server's 6 (at
103 bytes per event), so it is not the compression's CPU but the page writes and their
holes. The full run at 1,000,000 events gave 82.3 ms (28.6x). Heartbeats without an
archive run beside them keep their p99 (1.18 ms median of the alternated runs' cases,
1.27 before). A daily run of 14,400 events writes a few hundred pages; an operator who
archives a long backlog for the first time, or who prefers whole pages, can run
``ALTER TABLE mastertrail_events PAGE_COMPRESSED = 0`` (with
``system_versioning_alter_history = KEEP``) at any time, and no later upgrade turns it
on again.

Bytes per event
---------------

Each table and index of the log (the events and their texts), in bytes per event:

{storage_parts}

On SQLite a check-in's row holds what its own columns cannot give back: its position (the
rowid), master id, version, type and metadata ids, time, the JSON ``{{}}`` and the chain's
SHA-256 (32 bytes), about 67 bytes with SQLite's record header and cell; then its entries
in the stream's unique ``(master_id, version)`` and in the time index. Log format 3 took
out what those columns already say, giving up none of the chain, the ids' uniqueness or
the stream constraint (see :doc:`events`):

* the event id is derived from the master, version and time and not stored: 16 bytes in
  the row and about 28 in its unique index;
* ``last_active`` equals the check-in's recorded second and is left out of its data: 24
  bytes;
* the index on ``(master_id, position)`` is gone, ``masters_as_of`` seeking the stream's
  instead: about 11 bytes;
* the time index holds minutes (4 bytes) rather than microseconds (8).

It was 183 bytes per event before format 3, and 339 before format 2 stored each type name
and metadata text once.

Where the bytes of each part go, per event, as the storage section measures them (SQLite's
``dbstat``; PostgreSQL's ``pgstattuple`` and ``pageinspect`` on a page in the middle of
each relation; on MariaDB the records of each index in the buffer pool's pages after
reading 50,000 of its entries, and InnoDB's page counts):

{storage_breakdown}

{storage_floor}

Cases near 1.0x
---------------

Heartbeat with another master writing, on MariaDB
    A master remembers what its own last write left (see :doc:`ordering`). When no one
    wrote since, it appends right after that write, one statement whose work for the
    database is about that of Buildbot's update. When another master wrote since, the
    database numbers and chains the event itself, in one statement too: it also computes
    the SHA-256, checks the master's stream against its newest event as remembered
    (version and hash), and returns the new position and hash. On PostgreSQL that
    statement costs about what the first does; on MariaDB the heartbeat floor after
    another master's write shows it costing more, and the connector's ratio came out at
    0.94-0.98x in the full runs of 2026-12-06. Variants of the statement, alternated with
    it through the bare driver (1,500 calls each), did no better: the check in the head's
    update and the new position and hash carried in variables, so that the insert reads
    no table (within 2%); the position read into local variables first (6% slower); the
    head and the view row updated in one multi-table statement (40% slower); no unique
    index on event ids (no change); the same statements in a stored procedure (2-5%
    faster, for a routine the database user must be allowed to create; on 2026-12-07,
    with the statement that commits itself, 18-21% faster: the server's parse of the
    text, which a statement prepared once per session saves too, see "Round trips").
    Neither the check nor the returned row can be left out: the first keeps the stream
    of a master expired by another, or of a database restored from an older backup,
    whole; the second tells the caller where its event landed. Reading first instead
    costs a round trip more.

Cases on SQLite
    The read cases and the core heartbeat cost about a millisecond or less on either
    side, and both sides' times move together with the machine's load: the same case has
    given ratios 0.1x apart in consecutive runs. The core heartbeat has given 0.84-0.94x
    (0.91x and 0.94x in the full runs) since the engine stopped making SQLAlchemy
    dispatch events around every statement (SQLite's ``BEGIN IMMEDIATE`` is sent by the
    dialect's ``do_begin``, see :doc:`ordering`); it gave 0.92-1.04x before.

Heartbeat on SQLite
    Buildbot's SQLite engine opens a connection for every call and closes it after; the
    component keeps one connection open, so those closes no longer checkpoint the
    write-ahead log, and runs its calls on it, writes included, so that none of them
    opens the file or parses the schema again (see :doc:`buildbot`). That is why the
    connector heartbeat costs less than Buildbot's own there, though its statements cost
    more (the floor). Until 2026-12-07 the heartbeat went through a new connection of
    Buildbot's, which parsed the schema of Buildbot's tables and the log's at its first
    statement: that was most of its time. The connector, independent and fleet sections
    on SQLite, the build before and the one after alternated (old, new, new, old; load
    average 1 to 2): the connector heartbeat went from 3.4-5.9 ms (0.73-0.87x Buildbot's)
    to 1.6-2.3 ms (0.29-0.34x); in the independent harness from 0.78 and 0.85x to 0.25x
    quiet, and from 1.14 and 1.19x to 0.39 and 0.42x beside the background writer; eight
    masters at once from 0.73 and 0.74x to 0.19 and 0.21x.

Two harnesses, two answers
--------------------------

The independent harness and the connector section time the same calls of the same
components, and can disagree: the heartbeat on PostgreSQL has come out of the harness at
0.86, 1.08 and 1.31x Buildbot's in three quiet runs, and at 1.01-1.10x beside other
database work, where the connector section gave 0.84-0.91x. What differs, and why it
changes the answer, as measured on 2026-12-07 on the machine of the table while five
other test suites ran on it (load average 6 to 15 on its 2 cores: every time here is a
loaded one; counts of round trips, statements, WAL and instructions do not depend on the
load):

Spread
    The connector section times the contenders call by call, so a burst of other work on
    the machine falls on both; the harness times sixty calls of one, then sixty of the
    other, so a burst falls on one side's block. In one run on the loaded machine the
    rounds' own ratios spanned 0.23-2.22x for the PostgreSQL heartbeat, 0.15-3.78x on
    MariaDB and 0.30-1.43x on SQLite, and the medians of six round medians moved by more
    than the effect measured. Three runs giving 0.86, 1.08 and 1.31x are inside the
    harness's own spread: its ratio means something only with the rounds' range beside
    it.

Warm-up and pools
    The connector section makes 20 untimed calls before its 300 timed ones; the harness
    times from the first call. Buildbot's DB thread pool starts with one thread and
    grows when a call arrives while the previous call's thread is still handing back its
    result: on PostgreSQL and MariaDB the timed heartbeats met three threads and two
    pooled connections on each side, on SQLite a new connection per call on both
    (Buildbot's ``NullPool``; mastertrail's calls have run on the one its component
    keeps open since, see "Heartbeat on SQLite"). psycopg prepares a statement on a
    connection at its fifth execution; until then mastertrail's one heartbeat statement
    is planned at every call (0.27 ms of planning in ``EXPLAIN``), Buildbot's two short
    ones in microseconds, and every new connection of the pool pays that again (on
    MariaDB also the session's lock wait, once). The warm-up hides this; the harness's
    first round measures it.

Round trips
    Until 2026-12-07 each call of mastertrail's on Buildbot's MariaDB engine set the
    session's isolation level when it took a connection and restored it when it gave it
    back: two statements and two commits, sent by SQLAlchemy's dialect below the statement
    events the section "Statements per call" counts. Counted in the server's general log,
    a heartbeat took 8 round trips against Buildbot's 5 (the pool's ``SELECT 1`` at
    checkout, the read, the update, the commit, the rollback at return); it takes 5 now, a
    ``SET TRANSACTION`` for the one transaction and the one statement (see
    :doc:`reliability`). On PostgreSQL both took 4: ``BEGIN ISOLATION LEVEL READ
    COMMITTED``, ``SET LOCAL lock_timeout``, the statement and ``COMMIT``, against
    ``BEGIN``, the read, the update and ``COMMIT``; since 2026-12-07 the ``BEGIN`` and the
    lock wait go as one query through psycopg's libpq connection, and mastertrail's took
    3. Through ``Registry`` on such an engine, alternating with the old way on a loaded
    machine (load 10-12, three runs of 400), the old heartbeat took 1.06, 1.12 and 1.09x
    the new one's time. Since the heartbeat of a master the process remembers is one
    statement that is a transaction of its own (see :doc:`ordering`), it takes 1 on
    PostgreSQL (counted in a libpq trace by ``tests/test_foreign_isolation.py``; the
    "Statements per call" above still count a commit, SQLAlchemy's, which sends nothing).
    The build before that change and the one after, alternated over four runs each
    (connector, long-log, independent and fleet sections at 300,000 events, on
    2026-12-07; load average 1 to 5, most of it the runs' own), ratio to Buildbot's
    heartbeat, median and range of the runs: connector cases 1.04 (0.96-1.11) before, 0.92
    (0.85-1.01) after; with the long log 1.05 (1.04-1.06), 0.94 (0.88-0.99); the
    independent harness quiet 1.10 (0.99-1.17), 0.97 (0.94-0.99), and beside the
    background writer 1.06 (1.05-1.08), 0.95 (0.89-0.96); eight masters at once 1.65
    (1.53-1.97), 1.25 (0.71-1.65), mastertrail's heartbeat there 6.28 ms before and 3.90
    after (medians of the runs). A round trip costs little on a quiet
    machine and two processes' wake-ups on a busy one: the extra ones showed under load,
    hardly in the connector section. Old against new in the harness's rounds on MariaDB
    (six runs, loaded), the old heartbeat took 1.00x to 2.29x the new one's time (median
    1.57x; 1.26, 1.66, 1.88, 1.47, 1.00, 2.29), each run's rounds spanning 0.3x to 4.6x.
    Since later on 2026-12-07 MariaDB's check-in of a master the process remembers is
    one statement that commits itself too (see :doc:`ordering`): on Buildbot's engine no
    ``SET TRANSACTION`` before it and no ``COMMIT`` after, 3 round trips against
    Buildbot's 5 (the pool's ``SELECT 1``, the statement, the pool's ``ROLLBACK``;
    counted by PyMySQL in ``tests/test_check_in_at_once_mariadb.py``). The build before
    and the one after, alternated (connector, independent and fleet sections on MariaDB;
    two runs of the build before, three of the one after, on the machine of the table,
    about two and a half times slower than the one of the runs above, load average 5-6,
    most of it the runs' own), ratio to Buildbot's heartbeat: the connector's cases of
    one master alone 1.06-1.15 before, 0.97-1.04 after; with another master writing (the
    chained statement) 1.19-1.24, 1.12-1.21; the independent harness quiet 1.10 and
    1.14, then 1.03-1.04, and beside the background writer 1.15 and 1.17, then
    0.98-1.02; eight masters at once 1.40 and 1.37, then 1.12-1.31.
    Later on 2026-12-07 two more went from mastertrail's side on MariaDB (see
    :doc:`ordering`). After a commit of mastertrail's the pool's ``ROLLBACK`` at return
    is not sent when the server's reply says no transaction is open: 2 round trips
    against Buildbot's 5. And the check-in's statement is prepared once per session and
    executed by name, where the server parsed the compound statement at every heartbeat.
    Through the bare driver, a model of the chained statement on tables of the same
    shape, another master's before each, took 0.61 ms sent as text and 0.50 ms as a
    stored procedure (1,500 calls each, alternated); in two more runs of 900, with a
    benchmark running beside them, 0.71 and 0.73 ms as text, 0.56 and 0.58 ms as a stored
    procedure, 0.56 and 0.58 ms executed by name. A prepared statement needs nothing in
    the schema. Three builds on the machine of the table (connector, independent and
    fleet sections on MariaDB, load average 4-6, mostly the runs' own), ratio to
    Buildbot's heartbeat: the build before both (two runs), with the ``ROLLBACK`` left
    out (five runs), and with the statement prepared too (three runs; the last two
    builds alternated in the order ABBAAB): one master alone 0.97-1.17, then 0.91-1.04
    (median 0.99), then 0.86-1.02 (median 0.93); with another master writing 1.13-1.26,
    then 1.13-1.25 (median 1.18), then 1.04-1.14 (median 1.11); the independent harness
    quiet 1.04 and 1.10, then 0.99-1.10, then 0.81-1.01, and beside the background
    writer 1.18 and 1.20, then 0.87-1.16, then 0.82-0.98; eight masters at once 1.49 and
    1.71, then 1.13-1.30, then 1.02-1.25.
    Since 2026-12-07 the Buildbot component's calls on MariaDB run on an engine of its
    own whose pool lends connections without Buildbot's ``SELECT 1`` (see
    :doc:`buildbot`): a remembered master's heartbeat is 1 round trip against Buildbot's
    5, a read 2 against 3 (counted by PyMySQL in ``tests/test_buildbot_own_engines.py``).
    The build before and the one after, alternated on the machine of the table (load
    average 1-3, mostly the runs' own), ratio to Buildbot's: connector, independent and
    fleet sections twice each (old, new, new, old), then the fleet section alone five
    times each (ABBAAABBAB): one master alone 0.82-0.92 before, 0.72-0.75 after; with
    another master writing 0.97-1.00, then 0.86-0.90; the connector's reads 0.77-0.93,
    then 0.70-0.80; the independent harness quiet 0.77 and 0.96, then 0.82 and 0.70,
    beside the background writer 0.87 and 0.83, then 0.76 and 0.67; eight masters at once
    1.01-1.14 (median 1.09 of seven runs), then 0.86-1.03 (median 0.97), where every
    append waits its turn at the log's head.

The database's own work
    With as many round trips, what remains is the work each side gives the server, and it
    is larger for mastertrail: a heartbeat appends an event (its row and three index
    entries), moves the log's head (whose guard trigger runs at every update) and updates
    the ``masters`` row, where Buildbot reads and updates that one row. Per heartbeat, on
    private servers, after 20 heartbeats of warm-up:

    * PostgreSQL 15 (``pg_stat_statements``): 205-229 µs of execution against 70-78 µs;
      575 bytes of WAL in 7 records against 71 bytes in 1; 18 shared buffers touched
      against 7. In ``EXPLAIN ANALYZE`` of the statement the head's update with its
      PL/pgSQL guard trigger is the largest part (the trigger 0.09 of 0.35 ms, under
      EXPLAIN's own timing), then the event's insert with its two text lookups, then the
      row's update.
    * MariaDB 10.11 (``performance_schema``): the compound statement 660-720 µs against
      330 µs for Buildbot's read and update; in it the head's update with its trigger
      127 µs, the event's insert 48, the row's update 58, the two text lookups 57 each and
      the three checks 35 together; the rest, about 280 µs, is the block itself, set up
      at every call. Redo written: 702 bytes against 231; InnoDB handler calls: 1 row
      written, 2 updated and 4 key reads against 1 updated and 2 key reads; the server's
      ``Questions``: 5 against 5.

    Since 2026-12-07 the head's guard on PostgreSQL is a trigger with a ``WHEN``
    condition that lets a move forward through without calling PL/pgSQL (revision
    ``0009_head_guard_fast_path``), and on MariaDB a trigger whose first test needs no
    look at the log, so that the second, which reads it, is not prepared for an append
    (revision ``0011_mariadb_guard_fast_path``). In ``EXPLAIN ANALYZE`` of the heartbeat
    statement, alternating a database with the old trigger and one with the new (200
    each, three runs, load 10-12): 215, 222 and 244 µs of execution before, 177, 190 and
    208 µs after (the trigger's 48-60 µs gone), against 68-79 µs for Buildbot's read and
    update; the WAL is unchanged. On MariaDB the head's update alone, through the bare
    driver: the old trigger took 1.05, 1.01 and 1.09x the new one's time (800 each, load
    10-13).

    Under a pure CPU load the round trips dominate, and mastertrail, with fewer or as
    many, is ahead. Beside other work on the same server its CPU and its log flush are
    shared, and the heartbeat waits for its extra statements' work and WAL (eight times
    Buildbot's on PostgreSQL, three times on MariaDB): the case where the harness found
    it behind, and what the harness's background writer measures.

Beside a writer on SQLite
    Buildbot's engine closes its connection after every call, and when the last
    connection to a file closes, SQLite checkpoints the write-ahead log: much of Buildbot's
    heartbeat on a quiet file, and what mastertrail's kept connection saves (see "Heartbeat
    on SQLite"). Any other process holding the file open, the background writer or a web
    server, saves Buildbot that too. In two runs of the harness Buildbot's heartbeat took
    less time beside the writer than alone (15.7 against 16.3 ms, 20.0 against 23.7 ms),
    and mastertrail's, which writes more pages under the write lock, took more (18.7
    against 15.2 ms, 26.5 against 18.9 ms): 1.19x and 1.33x beside the writer, 0.93x and
    0.80x quiet.

The other master's place
    In the connector section's shared case another master checks in, through a connector
    of its own, right before each timed heartbeat, so mastertrail's heartbeat always
    takes the path after another master's write (on PostgreSQL and MariaDB the statement
    in which the database chains the event). In the harness no one else writes, and each
    heartbeat follows the master's own last write: the cheaper statement.

Client side
    Instructions per heartbeat on the DB pool's thread, counted by callgrind (50
    heartbeats after 25; the reactor's side, one hop to the pool's thread and back, is
    the same for both): mastertrail's command on Buildbot's engine against the body of
    Buildbot's ``setMasterState``, on MariaDB 1.33 million against 1.55 million, on
    PostgreSQL 1.24 million against 1.29 million (on MariaDB 1.46 million with the
    session's level set and restored around each call). SHA-256 and the event's encoding
    take under 2% of mastertrail's; the rest is Python in SQLAlchemy, the driver and the
    command. The client is not where a heartbeat loses.

What would take more away
    The guards' conditions and PostgreSQL's ``BEGIN`` with its lock wait are done (above).
    On MariaDB the anonymous compound statement costs by being one, not by its length:
    through the bare driver, alternating on one connection (the write alone, without its
    commit, 500 each, five runs, load 2-4), a block that only calls a stored procedure
    holding the log's part and then updates the view row took 0.94-1.01x the time of the
    whole block (median 0.99), while a single ``CALL`` of a procedure that also updates the
    view row took 0.84-0.91x, and one running the view's update as dynamic SQL
    (``EXECUTE IMMEDIATE``) 0.91-0.96x. So only a procedure that holds the caller's update
    too would gain, which puts the view's table inside the log's routine; it would also need
    the database user's right to create routines, and a dump made without
    ``--routines``, ``mariadb-dump``'s default, would lose it. It is not done. The event's
    row and its index entries, and their WAL, are what keeping every check-in costs.

Eight masters at once
---------------------

In the fleet section eight masters heartbeat back to back at the same moment, far more
often than once a minute. Buildbot's masters then update eight rows, side by side;
mastertrail's append to one log, and every append moves its head: one row lock, held by
each append from its statement to the end of its commit, that the next one waits for.
What that lock costs, apart from everything else, is measured by a model of both shapes
in plain psycopg on a database of its own (``python -m bench.serial_head``, not part of
``make bench``): a head row, a log table with the log's three indexes and a ``masters``
table; mastertrail's shape is one statement that moves the head, inserts the event
chained on it and updates the master's row, Buildbot's a read and an update of the
master's row. Medians of 300 calls per process after 20, three rounds alternating the
order, on 2026-12-07 with the machine otherwise quiet (load average 0.6-1.0):

* one process: the append in a transaction (``BEGIN`` with the lock wait, the statement,
  ``COMMIT``) 0.30-0.32 ms, Buildbot's shape 0.30-0.33 ms (0.94-1.07x);
* eight processes at once: the append 1.59-1.86 ms, Buildbot's shape 0.85-1.00 ms
  (1.60-2.20x);
* eight at once without waiting for the log's flush at commit (``synchronous_commit =
  off``, for the model only): the append 1.26-1.32 ms, Buildbot's shape 0.56-0.68 ms. The
  flush is not what the appends queue for;
* eight at once, the append's statement a transaction of its own (autocommit: no
  ``BEGIN``, no ``COMMIT``, the lock let go as soon as the commit is flushed, without
  waiting for the client's ``COMMIT``): 1.20-1.37 ms, 1.20-1.49x Buildbot's shape; one
  process 0.15-0.22 ms, 0.49-0.72x.

So with one log that orders every event, eight masters writing at the same moment take
turns at its head, on two cores, and their wait grows with their number; the shortest
hold of the head's lock, one round trip that commits itself, takes a quarter of the
model's fleet time away but not the turns. That is what a check-in of a master the
process remembers is on PostgreSQL (see :doc:`ordering`), and since later on 2026-12-07
on MariaDB: a compound statement that ends with its own ``COMMIT``, with none sent
after it. In the same model on MariaDB (``--backend mysql``: PyMySQL, the same three
tables, a compound statement that moves the head, updates the master's row and inserts
the event), first with a ``COMMIT`` inside the statement and the client's still sent
(four rounds, load average 0.8-1.9): eight at once went from 2.23-2.40 ms to 1.70-2.10 ms
(Buildbot's shape 0.87-1.17 ms), one alone from 0.32-0.45 ms to 0.31-0.40 ms, with the
round trips unchanged. Then, as shipped, without the client's ``COMMIT`` (three rounds on
the slower machine of the alternated runs above, load average 1.5-2.0): one process
0.65-0.70 ms against 0.83-1.03 ms in a transaction and 0.62-0.69 ms for Buildbot's shape
(0.94-1.12x); eight at once 4.36-4.91 ms against 5.41-5.75 ms and 3.04-3.11 ms
(1.43-1.58x instead of 1.78-1.89x). At Buildbot's pace, a check-in a minute per master,
the masters of a fleet seldom meet at the head.
"""


def write_page(path: Path, results: dict[str, Any], rows: list[Line]) -> None:
    """Rewrite the performance page with the table of ``results``."""
    sizes = results["config"]["history_events"]
    mode = "A quick run (tiny sizes)" if results["quick"] else "A full run"
    if not results["quick"] and set(sizes.values()) != {YEAR}:
        mode = f"A full run at a stated scale (``--events``, {_sizes(sizes)})"
    page = PAGE.format(
        history_events=_sizes(sizes),
        title=mode,
        date=results["date"][:10],
        machine=machine_line(results["machine"]),
        load=" / ".join(f"{value:.1f}" for value in results["machine"]["load_average"]),
        table=rst_table(rows),
        round_trips=_round_trips(results),
        storage_parts=_storage_parts(results),
        storage_breakdown=_storage_breakdown(results),
        storage_floor=STORAGE_FLOOR,
        archive_notes=_archive_notes(results),
    )
    path.write_text(page)


#: The long log of a full run: a year of ten masters checking in every minute.
YEAR = 5_256_000


def _sizes(sizes: dict[str, int]) -> str:
    """The long log's length: one number when every database had the same."""
    if len(set(sizes.values())) == 1:
        return f"{next(iter(sizes.values())):,} events on every database"
    return ", ".join(f"{count:,} events on {LABELS[name]}" for name, count in sizes.items())


def _round_trips(results: dict[str, Any]) -> str:
    """One bullet per database and operation: statements and commits of each side."""
    lines = []
    for item in results["connector"]:
        counts = item.get("round_trips")
        if not counts or item.get("masters") != 10:
            continue
        ours, anchor = counts["mastertrail"], counts["buildbot"]
        lines.append(
            f"* {LABELS[item['backend']]}, ``{item['operation']}``: mastertrail {_count(ours)}; "
            f"Buildbot {_count(anchor)}"
        )
    return "\n".join(lines) or "(not measured in this run)"


def _storage_parts(results: dict[str, Any]) -> str:
    """One bullet per database: the bytes per event of each table and index of the log,
    largest first."""
    lines = []
    for item in results["storage"]:
        parts = sorted(item["parts_bytes_per_event"].items(), key=lambda part: -part[1])
        listed = ", ".join(f"``{name}`` {size:.1f}" for name, size in parts if size >= 0.05)
        total = f"{item['bytes_per_event']:.0f} in all"
        if "pages_bytes_per_event" in item:  # MariaDB: the parts are its pages, whole
            total = (
                f"{item['bytes_per_event']:.0f} in all on disk, in compressed pages; "
                f"InnoDB's pages whole, {item['pages_bytes_per_event']:.0f}"
            )
        lines.append(f"* {LABELS[item['backend']]} ({item['events']:,} events, {total}): {listed}")
    return "\n".join(lines) or "(not measured in this run)"


def _storage_breakdown(results: dict[str, Any]) -> str:
    """One bullet per table or index of the log's events on each database: what its rows
    or entries hold and what the database adds around them."""
    lines = []
    for item in results["storage"]:
        label = LABELS[item["backend"]]
        for name, part in item.get("breakdown", {}).items():
            if part["bytes"] < 0.05 or EVENTS not in name:
                continue
            lines.append(f"* {label}, ``{name}``, {part['bytes']:.1f}: {_part(part)}")
    return "\n".join(lines) or "(not measured in this run)"


EVENTS = "mastertrail_events"


def _part(part: dict[str, Any]) -> str:
    """What one table or index holds per event, in the terms of its database."""
    if "payload" in part:  # SQLite
        return (
            f"records {part['payload']:.1f}, cells and pages {part['cells_and_pages']:.1f}, "
            f"unused {part['unused']:.1f}"
        )
    if "tuple_header" in part:  # a PostgreSQL heap
        return (
            f"tuple header {part['tuple_header']:.0f}, columns {part['column_data']:.1f}, "
            f"alignment {part['alignment']:.1f}, line pointer {part['line_pointer']}, "
            f"page headers and free space {part['page_header_and_free']:.1f} "
            f"({part['tuples_per_page']} tuples a page)"
        )
    if "entry" in part:  # a PostgreSQL index
        if not part["entry"]:
            return "no entries (the stored ids only)"
        return (
            f"entry {part['entry']:.1f} (8 of it the entry's header), line pointer "
            f"{part['line_pointer']}, free space, inner pages and page headers "
            f"{part['free_inner_and_headers']:.1f} (leaves {part['avg_leaf_density']:.0f}% full)"
        )
    if "record" in part:  # a MariaDB index, sampled in the buffer pool
        fields = ", ".join(part.get("fields", []))
        return (
            f"key {fields}; in the pages sampled (leaves, and inner pages whose records are "
            f"a key and a child page) records of {part['record']:.1f} bytes on average, "
            f"{part['records_per_page']:.0f} a page; {part['leaf']:.1f} in leaf pages by "
            f"InnoDB's count, the rest inner pages and pages the index holds free"
        )
    return "pages only"


def _archive_notes(results: dict[str, Any]) -> str:
    """One bullet per database: what was archived and how each reading fared."""
    lines = []
    for item in results.get("archive", []):
        after, before = item["as_of_after"], item["as_of_before"]
        lines.append(
            f"* {LABELS[item['backend']]}: {item['archived_events']:,} of "
            f"{item['events']:,} events archived into {item['segments']:,} segments "
            f"({item['segment_bytes'] / 1e6:.2f} MB, "
            f"{item['segment_bytes_per_event']:.2f} bytes per event) in "
            f"{item['archive_seconds']:.0f} s; the table with its indexes went from "
            f"{item['hot_bytes_before'] / 1e6:.1f} to {item['hot_bytes_after'] / 1e6:.1f} MB. "
            f"masters_as_of inside the archive {after['archived']['median_ms']:.1f} ms median "
            f"({after['archived']['p99_ms']:.1f} p99), in the table "
            f"{after['hot']['median_ms']:.1f} ms ({before['hot']['median_ms']:.1f} before)."
        )
    if not lines:
        return "(not measured in this run)"
    return "\n".join(lines) + "\n\n" + ARCHIVE_READING


#: Where a database's own bytes set a floor under the log's, for the page.
STORAGE_FLOOR = """\
A check-in holds 68 bytes of its own on every database: position 8, master id 4,
version 4, type and metadata ids 4 each, schema version 2, time 8, the data ``{{}}`` 2 and
the chain's SHA-256 32. What each database adds, and what a change of schema (not made:
the log's schema and format are as described in :doc:`events`) could take away, measured
on 2026-12-07 on copies of a log of 1,000,000 events (load average 6 to 9; sizes do not
depend on the load):

PostgreSQL
    A heap tuple has a 23-byte header, and a null bitmap as soon as one column is NULL:
    ``event_id``, NULL for every event mastertrail writes, makes it 32 bytes with the
    padding to 8. The columns take 73 bytes (70, the data and the hash each with a 1-byte
    length, and 3 bytes of padding before ``metadata_id``); the tuple is padded to 112 and
    has a 4-byte line pointer: 116 bytes, 70 tuples a page, 117 per event. Each b-tree
    entry is an 8-byte header and its key padded to 8, with a 4-byte line pointer, in
    leaves kept 90% full: 22.5 bytes per event for the position and for the stream, 31.5
    for the time index (two 8-byte keys). Of the 194 bytes per event, PostgreSQL's own
    are 29 in the heap (header 24, line pointer 4, page header and free space 1) and 44.5
    in the three indexes (12 per entry, and the leaves' free tenth and inner pages); 18
    are padding the layout causes (the null bitmap's 8 and 10 of alignment); 70 are the
    row's columns and 32 the indexes' keys.

    On copies: without the ``event_id`` column (the stored ids kept elsewhere) the heap
    takes 109.2 bytes per event, and with the 8-byte columns first 101.1, the least a row
    of these columns can take; without the hash it would take 68.3 (the chain costs 33
    bytes per event), and a row of position, master and time alone 52.2. The time index
    as a BRIN index (``recorded_at`` grows with the position) takes 0.02 bytes per event
    instead of 31.5, for a search that reads a whole range of pages rather than seeking
    one entry (not measured here); a b-tree at fillfactor 100 takes 20.3 rather than 22.5
    for the position. With one row per event and the position and the stream unique, the
    floor is then about 101 + 20 + 22 = 143 bytes per event: 100 is out of reach on
    PostgreSQL without storing several check-ins in a row, a change of the log's format.

MariaDB
    An InnoDB record of the clustered index (the table) has a 5-byte header, a byte of
    NULL flags and a byte of length for the data, and InnoDB's transaction id (6) and roll
    pointer (7): 20 bytes of InnoDB's own. The log's table is system-versioned (the guard
    against ``TRUNCATE``, see :doc:`events`), which adds ``row_start`` and ``row_end`` (7
    bytes each) to every row and ``row_end`` to the primary key and to both unique keys: a
    record of 102 bytes, 147 to a page, 111.9 bytes per event with the pages' own bytes
    and the sixteenth InnoDB keeps free. Every secondary entry carries the primary key
    (position and ``row_end``, 15 bytes) and a 5-byte header: 28 bytes in the stream
    index, 28 in the time index (the position is its key already) and 21 in the
    ``event_id`` index, which holds a NULL for every event (MariaDB has no partial
    index), 32.1, 28.9 and 22.6 bytes per event with their pages. 195.5 bytes per event in
    all at 1,000,000 events, where the same table without system versioning takes 158.7
    (system versioning costs 37 bytes per event), without the ``event_id`` index 143.4,
    and without the time index either 120.8: the floor of a row per event with its
    position and stream unique on InnoDB's uncompressed pages, out of reach of 100.

    So the log's table is kept in compressed pages (``PAGE_COMPRESSED=1``, revision
    ``0012_mariadb_page_compression``; see :doc:`operators`): InnoDB compresses each page
    (zlib, the server's default) as it writes it to the file and frees the blocks the
    page no longer fills. The table's ``data_length`` still counts whole pages; the bytes
    on disk above are the file's allocated size once its changed pages are written
    (``FLUSH TABLES … FOR EXPORT``). The log as it is, versioned with its four indexes,
    takes about 90 bytes per event there: 90.5 at 300,000 events and 90.0 at 1,000,000,
    loaded into a compressed table or rebuilt into one (load average under 1.1). Pages
    are compressed only on their way to the file and read back only on a miss of the
    buffer pool. Alternating four runs of each, the build before the revision and the
    one after, on fresh databases (connector, long-log and rebuild sections at 300,000
    events, load 0.9-1.1): the heartbeat's median of the medians 0.946 ms before and
    0.938 after (0.83-1.12 and 0.84-1.05 ms), with the long log 0.943 and 0.963 ms
    (0.86-1.19 and 0.85-1.04), rebuild 254,000-293,000 and 261,000-290,000 events/s:
    no difference beyond the runs' own spread."""

#: How the readings reach the segments, for the page.
ARCHIVE_READING = """\
A reading that starts after the last archived position (the log from there on, a master's
history since a time after it, the masters now, the newest events of masters that still
have some in the table) never opens a segment. ``masters_as_of`` at an archived position
reads one segment: its header holds every master's state before its first event, and its
events up to the position are folded on it, reading each check-in's line by splitting it
rather than as JSON and checking the file's SHA-256 once instead of re-chaining every
event (that is ``verify``'s work); the few segments read last are kept decompressed
while their files are unchanged, with the states after every 128 of their events, so that
a reading inside one folds fewer than 128 events. At a position of the table (and at a
segment's last position), the masters' states where the archive ends are read from the
database, which records them with each segment (``mastertrail_archive_states``): no
segment is opened. The newest events of a master whose events are all archived (the web
page's) are read from the segment those recorded states say holds them: one segment, most
often, however many were sealed after it.
The table with its indexes is measured for the long log's rows, leaving out those the
other process appended while the section ran."""


def _count(tally: dict[str, float]) -> str:
    statements, commits = tally["statements"], tally["commits"]
    return (
        f"{statements:g} statement{'' if statements == 1 else 's'}, "
        f"{commits:g} commit{'' if commits == 1 else 's'}"
    )

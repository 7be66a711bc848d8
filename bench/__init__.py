"""The performance benchmark of mastertrail (``make bench``, ``python -m bench``).

It measures mastertrail side by side with two anchors in one run: Buildbot 4.3's own
masters connector component (inside a real Buildbot DB connector) and the eventsourcing
library, on SQLite, PostgreSQL and MariaDB; see ``docs/performance.rst``.
"""

"""What this process's writes left: the state each gave its master and where its last
event landed, so that the master's next ``set_master_state`` may skip reading them.

A heartbeat reads the master's state and the log's head, then appends after that head
(:class:`eventstore.AfterSeen`). A process whose own write made the newest event of
the master's stream already knows the state, and two cheaper appends check that knowledge
in the database instead of reading it first:

* **After the head it left.** If nobody wrote since, the head is still where this
  process's write left it. The append checks that under the head's lock (position and
  hash: the hash chains the whole log, so an unmoved head means an unchanged log) and
  writes, one statement; if the head moved, it writes nothing and the transaction goes on.
* **Chained by the database** (PostgreSQL and MariaDB,
  :class:`eventstore.AfterOwn`). The database numbers and chains the event after
  wherever the head is once it holds the lock, and checks that the master's stream still
  ends with the event this process wrote, by version and hash: that hash chains the whole
  log up to it, so the stream, and the state it folds to, is the one remembered, however
  many other masters wrote since. If not (another process expired the master, or the
  database was restored from a backup), the state is forgotten, the transaction is rolled
  back and the command reads as usual.

A master alone on its database takes the first, one statement with little work for the
database. Masters that share a database would miss it at every heartbeat, so after a miss
the process stops trying it until its own writes follow each other in the log again, and
meanwhile takes the second (or on SQLite, which has no SHA-256 to chain with, the read).

The view is assumed to change only with the log, as everywhere in mastertrail: a
``masters`` row edited behind mastertrail's back is what ``verify`` reports and
``rebuild`` repairs.
"""

from __future__ import annotations

import threading

import attrs

from eventstore import Tip
from projections.model import MasterState

#: Masters remembered at most: a master writes its own heartbeat and, now and then, stops
#: another; a bound keeps a process that writes for many from growing without end.
REMEMBERED = 64


@attrs.frozen
class Known:
    """A master's state as this process's last write of it left it, and that write's
    last event (the stream's newest, as far as this process knows); ``follows`` when it is
    also the process's last write and its writes have been following each other in the
    log, so that the head may well still be there."""

    state: MasterState
    tip: Tip
    follows: bool


class KnownState:
    """What this process's committed ``set_master_state`` calls left; safe to share
    between the threads of one process (Buildbot's DB thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[int, tuple[MasterState, Tip]] = {}
        self._last: Tip | None = None  # where this process's last write left the log
        self._follows = True  # whether that write came right after the one before

    def recall(self, master_id: int) -> Known | None:
        """What is known of ``master_id``, if this process remembers that master."""
        with self._lock:
            found = self._known.get(master_id)
            if found is None:
                return None
            state, tip = found
            return Known(state, tip, self._follows and tip == self._last)

    def missed(self) -> None:
        """The head had moved since this process's last write: another process writes too."""
        with self._lock:
            self._follows = False

    def forget(self, master_id: int) -> None:
        """The stream of ``master_id`` is not what this process knows: forget it."""
        with self._lock:
            self._known.pop(master_id, None)

    def wrote(self, state: MasterState, tip: Tip) -> None:
        """A committed write gave its master ``state``, its last event at ``tip``."""
        with self._lock:
            if self._last is not None:
                self._follows = tip.position == self._last.position + 1
            self._last = tip
            self._known.pop(state.id, None)
            self._known[state.id] = (state, tip)
            if len(self._known) > REMEMBERED:
                del self._known[next(iter(self._known))]  # the longest unwritten

"""What this process's last write left: the state it gave its master and the log's head,
so that the master's next ``set_master_state`` may skip reading them.

A heartbeat reads the master's state and the log's head, then appends after that head
(:func:`eventstore.store.append_after`). A process whose own last write left the master's
stream where it is already knows the state, and two cheaper appends check that knowledge
in the database instead of reading it first:

* **After the head it left.** If nobody wrote since, the head is still where this
  process's write left it. The append checks that under the head's lock (position and
  hash: the hash chains the whole log, so an unmoved head means an unchanged log) and
  writes, one statement; if the head moved, it writes nothing and the transaction goes on.
* **Chained by the database** (PostgreSQL and MariaDB,
  :func:`eventstore.store.append_chained`). The database numbers and chains the event after
  wherever the head is once it holds the lock, and checks that the master's stream is still
  at the version remembered: every change of a master appends to its stream, so an unmoved
  stream means an unchanged state, however many other masters wrote since. If it moved
  (another process expired the master, say), the state is forgotten, the transaction is
  rolled back and the command reads as usual.

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

from eventstore.store import Tip
from projections.model import MasterState


@attrs.frozen
class Known:
    """A master's state as this process's last write left it, and where the log ended
    then, if this process may try to append right after it."""

    state: MasterState
    tip: Tip | None


class KnownState:
    """What this process's last committed ``set_master_state`` left; safe to share between
    the threads of one process (Buildbot's DB thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: MasterState | None = None
        self._tip: Tip | None = None
        self._follows = True  # whether the last write came right after the one before

    def recall(self, master_id: int) -> Known | None:
        """What is known of ``master_id``, if this process remembers that master."""
        with self._lock:
            if self._state is None or self._state.id != master_id:
                return None
            return Known(self._state, self._tip if self._follows else None)

    def missed(self) -> None:
        """The head had moved since this process's last write: another process writes too."""
        with self._lock:
            self._follows = False

    def forget(self, master_id: int) -> None:
        """The stream of ``master_id`` moved on without this process: forget its state."""
        with self._lock:
            if self._state is not None and self._state.id == master_id:
                self._state = None

    def wrote(self, state: MasterState, tip: Tip) -> None:
        """A committed write gave its master ``state`` and ended the log at ``tip``."""
        with self._lock:
            if self._tip is not None:
                self._follows = tip.position == self._tip.position + 1
            self._state, self._tip = state, tip

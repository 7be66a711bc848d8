"""What this process's last write left behind: the log's head and the state it gave one
master, so that the master's next ``set_master_state`` may skip reading them.

A heartbeat reads the master's state and the head, then appends after that head
(:func:`eventstore.store.append_after`). If this process wrote the last event of the log,
it already knows both: the append checks in the database, under its lock, that the head
row is still exactly the one remembered (position, hash and last master id). The hash
chains the whole log, so an unmoved head means an unchanged log, and the remembered state,
the fold of that log, is current. If the head moved, nothing is written and the command
reads afresh in the same transaction. A guess is never trusted without that check; it only
saves the read.

A master that is not the only writer (several masters on one database) would guess wrong
at every heartbeat and pay an extra statement each time. So after a wrong guess the
process stops guessing until a read finds the head where its own last write left it, that
is, until it writes alone again.

The view is assumed to change only with the log, as everywhere in mastertrail: a
``masters`` row edited behind mastertrail's back is what ``verify`` reports and
``rebuild`` repairs.
"""

from __future__ import annotations

import threading

from eventstore.store import Head
from projections.model import MasterState


class KnownHead:
    """The head left by this process's last write and that write's master state; safe to
    share between the threads of one process (Buildbot's DB thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._head: Head | None = None
        self._state: MasterState | None = None
        self._guessing = True

    def guess(self, master_id: int) -> tuple[MasterState, Head] | None:
        """The remembered state of ``master_id`` and the head it goes with, if this process
        is guessing and remembers that master."""
        with self._lock:
            state, head = self._state, self._head
            if not self._guessing or state is None or head is None or state.id != master_id:
                return None
            return state, head

    def missed(self) -> None:
        """A guess found the head moved: somebody else writes too; stop guessing."""
        with self._lock:
            self._guessing = False

    def read(self, head: Head) -> None:
        """A read found ``head``: guess again if it is where this process's last write left
        it (nobody else wrote since)."""
        with self._lock:
            if head == self._head:
                self._guessing = True

    def wrote(self, state: MasterState, head: Head) -> None:
        """A committed write left ``head`` and gave its master ``state``."""
        with self._lock:
            self._state, self._head = state, head

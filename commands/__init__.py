"""The write side of mastertrail: validate -> decide -> append (+ inline view), one
transaction per command.

A heartbeat: :func:`commands.attempts.set_master_state_attempt` reads (or remembers,
:mod:`commands.known`) the master's state, decides (:mod:`commands.decide`), and
:func:`commands.write.write_decision` hands the events and the view row to the database's
writer (:mod:`eventstore.writer`).
"""

from commands.actor import Actor, default_actor
from commands.attempts import (
    adopt_attempt,
    check_in_at_once,
    expire_masters_attempt,
    find_master_id_attempt,
    force_housekeeping_attempt,
    run,
    set_master_state_attempt,
)
from commands.clock import Clock, Now
from commands.decide import Decision
from commands.outcome import Outcome, written_tips
from commands.write import write_decision

__all__ = [
    "Actor",
    "Clock",
    "Decision",
    "Now",
    "Outcome",
    "adopt_attempt",
    "check_in_at_once",
    "default_actor",
    "expire_masters_attempt",
    "find_master_id_attempt",
    "force_housekeeping_attempt",
    "run",
    "set_master_state_attempt",
    "write_decision",
    "written_tips",
]

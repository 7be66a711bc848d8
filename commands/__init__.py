"""The write side of mastertrail: validate -> decide -> append (+ inline view), one
transaction per command."""

from commands.decide import Decision
from commands.masters import (
    Actor,
    Now,
    Outcome,
    adopt_attempt,
    default_actor,
    expire_masters_attempt,
    find_master_id_attempt,
    force_housekeeping_attempt,
    run,
    set_master_state_attempt,
)

__all__ = [
    "Actor",
    "Decision",
    "Now",
    "Outcome",
    "adopt_attempt",
    "default_actor",
    "expire_masters_attempt",
    "find_master_id_attempt",
    "force_housekeeping_attempt",
    "run",
    "set_master_state_attempt",
]

"""Who acts: the name recorded in every event's metadata, with its host, pid and reason."""

from __future__ import annotations

import os
import socket

import attrs


def default_actor() -> str:
    """``<host>:<pid>`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@attrs.frozen
class Actor:
    """Who acts (``name``), on which host."""

    name: str = attrs.field(factory=default_actor)
    host: str = attrs.field(factory=socket.gethostname)

    def metadata(self, reason: str) -> dict[str, object]:
        """An event's metadata: the actor, its host and process, and why it wrote."""
        return {"actor": self.name, "host": self.host, "pid": os.getpid(), "reason": reason}

"""Where mastertrail's log lines go: through the host's logging, never to stdout (every
package logs through :data:`log`).

mastertrail writes one structlog line per command (``master_registered``, ...). A library
does not decide where logs go, so each line goes

- through structlog's own configuration when the application configured structlog (the
  command line does; so does :func:`structlog.testing.capture_logs`);
- else to the sink a host installed with :func:`route` (inside a buildmaster,
  :func:`mastertrail.buildbot.install` routes them to Twisted's log, ``twistd.log``);
- else to the standard library's ``logging`` logger ``mastertrail``, as ``event key=value
  ...`` lines, at the line's level (so the application's logging configuration decides;
  with none, Python prints warnings and errors to stderr).

Nothing below INFO is passed on to a sink or to ``logging`` unless asked for with
:func:`route`'s ``level``, and no line carries a time stamp of its own: the host's
logging adds its own.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import structlog

#: The name of the standard library logger mastertrail's lines go to.
LOGGER_NAME = "mastertrail"


class Sink(Protocol):
    """Where rendered lines go: one method per level, taking the line."""

    def debug(self, line: str) -> None: ...
    def info(self, line: str) -> None: ...
    def warning(self, line: str) -> None: ...
    def error(self, line: str) -> None: ...


def _processors() -> list[structlog.typing.Processor]:
    return [structlog.processors.format_exc_info, render]


def render(_logger: object, _method: str, event_dict: structlog.typing.EventDict) -> str:
    """``event key=value ...``: the event's name, then its values in the order given."""
    event = event_dict.pop("event", "")
    values = " ".join(f"{key}={value!r}" for key, value in event_dict.items())
    return f"{event} {values}" if values else str(event)


def _stdlib_logger() -> Any:
    return structlog.wrap_logger(
        logging.getLogger(LOGGER_NAME),
        processors=_processors(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )


_routed: Any = None


def route(sink: Sink | None, *, level: int = logging.INFO) -> None:
    """Send mastertrail's lines of ``level`` and above to ``sink`` (None: back to the
    standard library's ``logging``), unless the application configured structlog."""
    global _routed
    _routed = (
        None
        if sink is None
        else structlog.wrap_logger(
            sink,
            processors=_processors(),
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=True,
        )
    )


class _Logger:
    """mastertrail's logger: each line goes where :mod:`mastertrail.logs` says, decided at
    the time of the line."""

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(LOGGER_NAME)
        if _routed is not None:
            return _routed
        return _STDLIB

    def debug(self, event: str, **values: Any) -> None:
        self._target().debug(event, **values)

    def info(self, event: str, **values: Any) -> None:
        self._target().info(event, **values)

    def warning(self, event: str, **values: Any) -> None:
        self._target().warning(event, **values)


_STDLIB = _stdlib_logger()

#: The logger of every line mastertrail writes.
log = _Logger()

"""Replay into a sandbox: copy a prefix of the log into another, empty database and build its
view there. The source is only read.

Events are appended in position order, each with its event id, type, schema version,
data, metadata and recording time, so the sandbox's positions, versions and hash chain
are exactly the source's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

import attrs

import eventstore
from eventstore.errors import InvalidArgument, RegistryError
from eventstore.recorded import NewEvent, RecordedEvent, to_micros
from mastertrail.registry import Progress, Registry, VerifyReport
from mastertrail.when import When

#: Events copied per transaction.
BATCH = 500


class ReplayDiverged(RegistryError):
    """The sandbox's log came out different from the source's (a writer got in between)."""


@attrs.frozen
class ReplayResult:
    """What a replay copied, and how the sandbox verified."""

    events: int
    until_position: int
    masters: int
    report: VerifyReport


def replay(
    source: Registry, target: Registry, *, until: When, progress: Progress | None = None
) -> ReplayResult:
    """Copy the log of ``source`` up to ``until`` (a position, inclusive, or a time: the
    events recorded at or before it, up to the first one recorded after it) into the empty
    database of ``target``, rebuild the view there and verify it."""
    target.upgrade()
    if next(target.events(limit=1), None) is not None:
        url = target.engine.url.render_as_string(hide_password=True)
        raise InvalidArgument("--into", "already holds a log; replay needs an empty database", url)
    copied = last_position = 0
    last_hash = ""
    batch: list[RecordedEvent] = []
    for event in prefix(source.events(), until):
        batch.append(event)
        if len(batch) == BATCH:
            _append(target, batch)
            copied += len(batch)
            if progress is not None:
                progress(copied, 0)
            batch = []
        last_position, last_hash = event.position, event.hash
    if batch:
        _append(target, batch)
        copied += len(batch)
    if copied:
        copy = next(target.events(after=last_position - 1, limit=1), None)
        if copy is None or copy.hash != last_hash:
            raise ReplayDiverged(f"the copy of position {last_position} has another hash")
    target.rebuild()
    return ReplayResult(copied, last_position, len(target.get_masters()), target.verify())


def prefix(events: Iterable[RecordedEvent], until: When) -> Iterator[RecordedEvent]:
    """The events of the log up to ``until``: a position (inclusive), or a time (events
    recorded at or before it, stopping at the first recorded after it)."""
    for event in events:
        if isinstance(until, dt.datetime):
            if event.recorded_at > until:
                return
        elif event.position > until:
            return
        yield event


def _append(target: Registry, events: list[RecordedEvent]) -> None:
    with eventstore.translate_errors(), target.engine.begin() as conn:
        for event in events:
            copy = NewEvent(
                event_id=event.event_id,
                type=event.type,
                schema_version=event.schema_version,
                data=event.data,
                metadata=event.metadata,
                recorded_at=to_micros(event.recorded_at),
            )
            result = eventstore.append(conn, event.master_id, event.version - 1, [copy])
            if result.positions != (event.position,):
                raise ReplayDiverged(
                    f"position {event.position} was copied to position {result.positions}"
                )


__all__ = ["BATCH", "ReplayDiverged", "ReplayResult", "prefix", "replay"]

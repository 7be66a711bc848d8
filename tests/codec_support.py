"""What the codec tests share: an event as the log hands it back."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from eventstore import (
    RecordedEvent,
)

#: 2023-11-14T00:00:00Z, when :func:`recorded` events are recorded unless told otherwise.
RECORDED_AT = dt.datetime(2023, 11, 14, tzinfo=dt.UTC)


def recorded(
    type_name: str,
    schema_version: int,
    data: dict[str, Any],
    *,
    recorded_at: dt.datetime = RECORDED_AT,
) -> RecordedEvent:
    """A stored event of the given type, version, data and time."""
    return RecordedEvent(
        position=1,
        event_id=uuid.uuid4(),
        master_id=1,
        version=1,
        type=type_name,
        schema_version=schema_version,
        data=data,
        metadata={},
        recorded_at=recorded_at,
        hash="00" * 32,
    )

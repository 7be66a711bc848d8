"""The append-only log of mastertrail: the events table, append, reads, codec and chain.

It knows nothing of projections, commands, Twisted or Buildbot.
"""

from eventstore.anchors import Anchor, check_anchors, read_anchors, take_anchor
from eventstore.archive import Segment, list_segments, open_segment, read_segment
from eventstore.archive_format import MasterSnapshot, SegmentFile
from eventstore.archive_seal import ArchiveReport, seal
from eventstore.chain import ChainProblem, ChainReport, verify_chain
from eventstore.codec import Codec
from eventstore.engine import create_engine, translate_errors
from eventstore.errors import (
    AnchorInvalid,
    ArchiveUnavailable,
    ConcurrencyError,
    DecodeError,
    EventIdConflict,
    HeadMissing,
    InvalidArgument,
    InvalidArgumentType,
    NotADatabase,
    RebuildRefused,
    RegistryError,
    SchemaMissing,
    SchemaTooNew,
    SegmentDamaged,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    TextNotStored,
    UnknownEventType,
    UnstorableName,
    UnsupportedSchemaVersion,
    ViewRowMissing,
)
from eventstore.events import CODEC
from eventstore.head import seen_in, with_head
from eventstore.ids import derived_event_id, event_id_for, new_event_id
from eventstore.migrate import check_schema, upgrade
from eventstore.prebuilt import execute as execute_prebuilt
from eventstore.reads import head_position, iter_log, read_after, read_range, read_stream
from eventstore.recorded import NewEvent, RecordedEvent
from eventstore.store import (
    AppendResult,
    Head,
    Tip,
    allocate_master_id,
    append,
    append_after,
    append_chained,
    lock_head,
    read_head,
    stream_version,
    stream_version_of,
)
from eventstore.writer import (
    AfterOwn,
    AfterSeen,
    Expectation,
    StreamAt,
    ViewUpdate,
    Writer,
    writer_for,
)

__all__ = [
    "CODEC",
    "AfterOwn",
    "AfterSeen",
    "Anchor",
    "AnchorInvalid",
    "AppendResult",
    "ArchiveReport",
    "ArchiveUnavailable",
    "ChainProblem",
    "ChainReport",
    "Codec",
    "ConcurrencyError",
    "DecodeError",
    "EventIdConflict",
    "Expectation",
    "Head",
    "HeadMissing",
    "InvalidArgument",
    "InvalidArgumentType",
    "LogDamaged",
    "MasterSnapshot",
    "NewEvent",
    "NotADatabase",
    "RebuildRefused",
    "RecordedEvent",
    "RegistryError",
    "SchemaMissing",
    "SchemaTooNew",
    "Segment",
    "SegmentDamaged",
    "SegmentFile",
    "StoreFull",
    "StoreReadOnly",
    "StoreUnavailable",
    "StreamAt",
    "TextNotStored",
    "Tip",
    "UnknownEventType",
    "UnstorableName",
    "UnsupportedSchemaVersion",
    "ViewRowMissing",
    "ViewUpdate",
    "Writer",
    "allocate_master_id",
    "append",
    "append_after",
    "append_chained",
    "check_anchors",
    "check_schema",
    "create_engine",
    "derived_event_id",
    "event_id_for",
    "execute_prebuilt",
    "head_position",
    "iter_log",
    "list_segments",
    "lock_head",
    "new_event_id",
    "open_segment",
    "read_after",
    "read_anchors",
    "read_head",
    "read_range",
    "read_segment",
    "read_stream",
    "seal",
    "seen_in",
    "stream_version",
    "stream_version_of",
    "take_anchor",
    "translate_errors",
    "upgrade",
    "verify_chain",
    "with_head",
    "writer_for",
]

"""The append-only log of mastertrail: the events table, append, reads, codec and chain.

It knows nothing of projections, commands, Twisted or Buildbot. This module is its public
API: every other package imports these names from ``eventstore`` itself, never from its
modules, so that how the log is stored (interned texts, derived ids, the time index) stays
in here.
"""

from eventstore.anchors import Anchor, check_anchors, given_anchors, read_anchors, take_anchor
from eventstore.archive import (
    Segment,
    archive_directory,
    archived_through,
    list_segments,
    newest_segment,
    open_segment,
    read_segment,
)
from eventstore.archive_format import MasterSnapshot
from eventstore.archive_read import SegmentFile, SegmentRow
from eventstore.archive_seal import ArchiveReport, seal
from eventstore.archive_states import recorded_end_states, state_recorded_after
from eventstore.archive_verify import verify_segments
from eventstore.bulk import BulkEvent
from eventstore.bulk import load as load_events
from eventstore.chain import ChainProblem, ChainReport, verify_chain
from eventstore.charsets import check_storable
from eventstore.codec import Codec
from eventstore.engine import (
    begin_write,
    begins_in_dialect,
    create_engine,
    is_unavailable,
    reading,
    storage_engine,
    translate_errors,
)
from eventstore.errors import (
    AnchorInvalid,
    ArchiveUnavailable,
    ConcurrencyError,
    DecodeError,
    EventIdConflict,
    HeadMissing,
    InvalidArgument,
    InvalidArgumentType,
    LogDamaged,
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
from eventstore.events import (
    CODEC,
    MasterActivated,
    MasterAdopted,
    MasterCheckedIn,
    MasterDeactivated,
    MasterEvent,
    MasterHousekeepingForced,
    MasterRegistered,
)
from eventstore.head import seen_in, with_head
from eventstore.ids import derived_event_id, event_id_for, new_event_id
from eventstore.logs import Sink as LogSink
from eventstore.logs import log
from eventstore.logs import route as route_logs
from eventstore.migrate import check_schema, current_revision, schema_lock, upgrade
from eventstore.prebuilt import execute as execute_prebuilt
from eventstore.reads import (
    FOLD_BATCH,
    FoldRow,
    events_at,
    fold_batches,
    fold_rows,
    head_position,
    holds,
    iter_log,
    read_after,
    read_range,
    read_span,
    read_stream,
)
from eventstore.recorded import (
    EPOCH,
    NewEvent,
    RecordedEvent,
    canonical_json,
    from_micros,
    to_micros,
)
from eventstore.restore import restore_head
from eventstore.schema import EVENTS_TABLE, TEXTS_TABLE
from eventstore.segmented import (
    Archive,
    iter_log_through,
    open_segment_kept,
    read_history,
    sealed_position_at,
    segment_events,
    segment_holding,
    segment_recorded_by,
)
from eventstore.sequences import advance_serial
from eventstore.session import (
    end_committed,
    ends_only_if_open,
    lock_wait_set,
    writing_at_once,
)
from eventstore.session import isolated as isolated_engine
from eventstore.settle import settle
from eventstore.sqlitefile import missing as missing_sqlite_file
from eventstore.sqlitefile import without_sync_per_commit
from eventstore.store import (
    AppendResult,
    Head,
    Tip,
    allocate_master_id,
    append,
    lock_head,
    read_head,
    stream_event_at,
    stream_version,
    stream_version_of,
)
from eventstore.streams import StreamsAt, stream_tails, streams_at
from eventstore.timeindex import position_at
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
    "EPOCH",
    "EVENTS_TABLE",
    "FOLD_BATCH",
    "TEXTS_TABLE",
    "AfterOwn",
    "AfterSeen",
    "Anchor",
    "AnchorInvalid",
    "AppendResult",
    "Archive",
    "ArchiveReport",
    "ArchiveUnavailable",
    "BulkEvent",
    "ChainProblem",
    "ChainReport",
    "Codec",
    "ConcurrencyError",
    "DecodeError",
    "EventIdConflict",
    "Expectation",
    "FoldRow",
    "Head",
    "HeadMissing",
    "InvalidArgument",
    "InvalidArgumentType",
    "LogDamaged",
    "LogSink",
    "MasterActivated",
    "MasterAdopted",
    "MasterCheckedIn",
    "MasterDeactivated",
    "MasterEvent",
    "MasterHousekeepingForced",
    "MasterRegistered",
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
    "SegmentRow",
    "StoreFull",
    "StoreReadOnly",
    "StoreUnavailable",
    "StreamAt",
    "StreamsAt",
    "TextNotStored",
    "Tip",
    "UnknownEventType",
    "UnstorableName",
    "UnsupportedSchemaVersion",
    "ViewRowMissing",
    "ViewUpdate",
    "Writer",
    "advance_serial",
    "allocate_master_id",
    "append",
    "archive_directory",
    "archived_through",
    "begin_write",
    "begins_in_dialect",
    "canonical_json",
    "check_anchors",
    "check_schema",
    "check_storable",
    "create_engine",
    "current_revision",
    "derived_event_id",
    "end_committed",
    "ends_only_if_open",
    "event_id_for",
    "events_at",
    "execute_prebuilt",
    "fold_batches",
    "fold_rows",
    "from_micros",
    "given_anchors",
    "head_position",
    "holds",
    "is_unavailable",
    "isolated_engine",
    "iter_log",
    "iter_log_through",
    "list_segments",
    "load_events",
    "lock_head",
    "lock_wait_set",
    "log",
    "missing_sqlite_file",
    "new_event_id",
    "newest_segment",
    "open_segment",
    "open_segment_kept",
    "position_at",
    "read_after",
    "read_anchors",
    "read_head",
    "read_history",
    "read_range",
    "read_segment",
    "read_span",
    "read_stream",
    "reading",
    "recorded_end_states",
    "restore_head",
    "route_logs",
    "schema_lock",
    "seal",
    "sealed_position_at",
    "seen_in",
    "segment_events",
    "segment_holding",
    "segment_recorded_by",
    "settle",
    "state_recorded_after",
    "storage_engine",
    "stream_event_at",
    "stream_tails",
    "stream_version",
    "stream_version_of",
    "streams_at",
    "take_anchor",
    "to_micros",
    "translate_errors",
    "upgrade",
    "verify_chain",
    "verify_segments",
    "with_head",
    "without_sync_per_commit",
    "writer_for",
    "writing_at_once",
]

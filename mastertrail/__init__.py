"""mastertrail: an event-sourced registry of Buildbot masters.

Every registration, check-in and state change is an immutable event in an append-only,
hash-chained log; a projection folds them into the ``masters`` view that answers
``getMaster``/``getMasters``.
"""

from eventstore.anchors import Anchor
from eventstore.archive_seal import ArchiveReport
from eventstore.errors import (
    AnchorInvalid,
    ArchiveUnavailable,
    ConcurrencyError,
    DecodeError,
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
    UnstorableName,
    ViewRowMissing,
)
from eventstore.recorded import RecordedEvent
from mastertrail.registry import Registry
from projections.model import MasterModel
from projections.report import Problem, VerifyReport

__all__ = [
    "Anchor",
    "AnchorInvalid",
    "ArchiveReport",
    "ArchiveUnavailable",
    "ConcurrencyError",
    "DecodeError",
    "HeadMissing",
    "InvalidArgument",
    "InvalidArgumentType",
    "LogDamaged",
    "MasterModel",
    "NotADatabase",
    "Problem",
    "RebuildRefused",
    "RecordedEvent",
    "Registry",
    "RegistryError",
    "SchemaMissing",
    "SchemaTooNew",
    "SegmentDamaged",
    "StoreFull",
    "StoreReadOnly",
    "StoreUnavailable",
    "UnstorableName",
    "VerifyReport",
    "ViewRowMissing",
]

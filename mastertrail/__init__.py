"""mastertrail: an event-sourced registry of Buildbot masters.

Every registration, check-in and state change is an immutable event in an append-only,
hash-chained log; a projection folds them into the ``masters`` view that answers
``getMaster``/``getMasters``.
"""

from eventstore import (
    Anchor,
    AnchorInvalid,
    ArchiveReport,
    ArchiveUnavailable,
    ConcurrencyError,
    DecodeError,
    HeadMissing,
    InvalidArgument,
    InvalidArgumentType,
    LogDamaged,
    NotADatabase,
    RebuildRefused,
    RecordedEvent,
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

"""The error hierarchy: one root, and subclasses that are also the matching builtin.

Every error mastertrail raises on purpose is a :class:`RegistryError`. Errors caused by
bad input are also a :class:`TypeError` or :class:`ValueError`, so callers that catch the
builtin keep working.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Root of every error mastertrail raises on purpose."""


class InvalidArgumentType(RegistryError, TypeError):
    """An argument has the wrong type (``bool`` is not accepted where an int is expected)."""

    def __init__(self, argument: str, expected: str, value: object) -> None:
        self.argument = argument
        self.expected = expected
        self.value = value
        super().__init__(f"{argument} must be {expected}, not {type(value).__name__} {value!r:.80}")


class InvalidArgument(RegistryError, ValueError):
    """An argument has the right type but a value that is not allowed."""

    def __init__(self, argument: str, reason: str, value: object) -> None:
        self.argument = argument
        self.reason = reason
        self.value = value
        super().__init__(f"{argument} {reason} (got {value!r:.80})")


class UnstorableName(InvalidArgument):
    """A master's name holds a character the database cannot store exactly (a 4-byte
    character through a ``utf8`` MariaDB connection or into a ``utf8mb3`` or ``latin1``
    column, say): the log would hash one name and store another. Nothing was written."""

    def __init__(self, name: str, character: str, charset: str, place: str) -> None:
        self.character = character
        self.charset = charset
        self.place = place
        super().__init__(
            "name",
            f"holds {character}, which {place} ({charset}) cannot store exactly",
            name,
        )


class StoreUnavailable(RegistryError):
    """The database cannot be reached or did not answer in time; nothing was written."""


class SchemaMissing(RegistryError):
    """The database has no mastertrail schema yet; run ``mastertrail upgrade``."""


class SchemaTooNew(RegistryError):
    """The database was written by a newer mastertrail than this one."""


class HeadMissing(RegistryError):
    """The log's head row (``mastertrail_head``), which every append moves, is gone: nothing
    can be appended until ``rebuild`` (or ``upgrade``) restores it from the log."""

    def __init__(self) -> None:
        super().__init__(
            "the log's head row (mastertrail_head) is missing: nothing can be written until "
            "`mastertrail rebuild` restores it from the log"
        )


class ViewRowMissing(RegistryError):
    """A master the log knows has no ``masters`` row, so its state cannot be changed until
    ``rebuild`` restores the row from the log."""

    def __init__(self, master_id: int) -> None:
        self.master_id = master_id
        super().__init__(
            f"master {master_id} is in the log but has no masters row: nothing is written "
            "until `mastertrail rebuild` restores it"
        )


class RebuildRefused(RegistryError):
    """``rebuild`` cannot make the ``masters`` row ``row_id`` agree with the log without
    losing what other tables hold; nothing was written."""

    def __init__(self, row_id: int, reason: str) -> None:
        self.row_id = row_id
        self.reason = reason
        super().__init__(f"rebuild refused, nothing was written: masters row {row_id} {reason}")


class AnchorInvalid(RegistryError, ValueError):
    """An anchor, or a line of an anchors file, that is not one :meth:`Anchor.to_json`
    writes; ``where`` says which (the file and line number, when read from one)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: not an anchor: {reason}")


class LogDamaged(RegistryError):
    """The log is not in a state to anchor: the head row does not match the event it
    points at (``verify`` says more)."""


class ConcurrencyError(RegistryError):
    """Another writer appended to the stream first: the expected version is stale."""

    def __init__(self, master_id: int, expected: int, actual: int | None) -> None:
        self.master_id = master_id
        self.expected = expected
        self.actual = actual  # None: the log moved on since the stream was read
        found = "the log moved on since it was read" if actual is None else f"found {actual}"
        super().__init__(f"master {master_id}: expected stream version {expected}, {found}")


class EventIdConflict(RegistryError, ValueError):
    """An event id is already stored, but not as this exact batch of the same stream."""

    def __init__(self, event_ids: list[str]) -> None:
        self.event_ids = event_ids
        super().__init__(f"event ids already stored elsewhere in the log: {', '.join(event_ids)}")


class DecodeError(RegistryError, ValueError):
    """A stored event cannot be turned back into a domain event."""


class UnknownEventType(DecodeError):
    """The log holds an event type this version of mastertrail does not know."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(f"unknown event type {type_name!r}")


class UnsupportedSchemaVersion(DecodeError):
    """The log holds an event of a schema version with no upcaster to the current one."""

    def __init__(self, type_name: str, schema_version: int, current: int) -> None:
        self.type_name = type_name
        self.schema_version = schema_version
        self.current = current
        super().__init__(
            f"event type {type_name!r} schema version {schema_version} is not readable "
            f"by this mastertrail (current version {current})"
        )


class StoreFull(StoreUnavailable):
    """The database cannot grow: its disk is full, or a size limit is reached. Nothing was
    written; reads still work."""


class StoreReadOnly(StoreUnavailable):
    """The database can be read but not written (the file's or its directory's permissions,
    a read-only mount, or a read-only URL). Nothing was written; reads still work."""


class NotADatabase(RegistryError, ValueError):
    """The database URL names a file that is not a SQLite database."""


class TextNotStored(RegistryError):
    """A write found no stored text for a digest it names (the database was restored, or a
    transaction that stored the text was rolled back): nothing was written, and the
    transaction must be rolled back. Commands retry it, storing the texts again."""

    def __init__(self) -> None:
        super().__init__("a text the event names is not stored: store it and write again")


class ArchiveUnavailable(RegistryError):
    """A reading needs an archive segment whose file is not where the database recorded it
    (nor in the directory given with ``--archive`` / ``MASTERTRAIL_ARCHIVE``); ``segment``
    names it, ``path`` is where it was looked for."""

    def __init__(self, segment: str, path: str, reason: str = "is missing") -> None:
        self.segment = segment
        self.path = path
        self.reason = reason
        super().__init__(
            f"archive segment {segment} {reason} ({path}); if the segments moved, name "
            "their directory with --archive DIR or MASTERTRAIL_ARCHIVE"
        )


class SegmentDamaged(ArchiveUnavailable):
    """An archive segment's file is there but is not the file that was sealed: its SHA-256
    differs from the one recorded, or its events do not chain (``reason`` says which)."""

    def __init__(self, segment: str, path: str, reason: str) -> None:
        RegistryError.__init__(self, f"archive segment {segment} is damaged: {reason} ({path})")
        self.segment = segment
        self.path = path
        self.reason = reason

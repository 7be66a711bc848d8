"""Reading a segment file back (its format: :mod:`eventstore.archive_format`).

:class:`SegmentFile` decompresses a segment and parses its header; then it gives its events
decoded with their recomputed hashes (:meth:`~SegmentFile.events`), re-chains them all and
decodes only what a fold of the segment needs (:meth:`~SegmentFile.check`), or gives them
undecoded and unchained as a fold reads them (:meth:`~SegmentFile.rows`).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import uuid
from collections.abc import Iterator
from typing import Any

from eventstore.archive_format import (
    FORMAT,
    FORMAT_VERSION,
    MasterSnapshot,
    SegmentFormatError,
    SegmentHeader,
)
from eventstore.ids import event_id_of
from eventstore.links import TEXT_PARTS_KEPT, MasterIdParts, chain_link, text_parts
from eventstore.recorded import RecordedEvent, from_micros

#: An event as a fold reads it: ``(position, master_id, version, type, schema_version,
#: data, recorded_at)``, the data as its stored JSON text, ``recorded_at`` in microseconds.
SegmentRow = tuple[int, int, int, str, int, str, int]


class SegmentFile:
    """A segment file's contents, decompressed: its :attr:`header`, and its events read
    lazily by :meth:`events` (an early stop parses only what it read)."""

    def __init__(self, blob: bytes) -> None:
        try:
            text = lzma.decompress(blob, format=lzma.FORMAT_XZ).decode("utf-8")
        except (lzma.LZMAError, UnicodeDecodeError) as error:
            raise SegmentFormatError(f"not a segment file: {error}") from error
        self._read(text)

    @classmethod
    def of_text(cls, text: str) -> SegmentFile:
        """The segment whose file's decompressed text is ``text``."""
        opened = cls.__new__(cls)
        opened._read(text)
        return opened

    def _read(self, text: str) -> None:
        try:
            first, _, self._body = text.partition("\n")
            self.header = _header(json.loads(first))
        except (ValueError, KeyError, TypeError) as error:
            raise SegmentFormatError(f"not a segment file: {error}") from error

    def _lines(self) -> list[Any]:
        """Every event's line parsed, in one parse: a JSON text holds no raw newline."""
        try:
            lines: list[Any] = json.loads("[" + self._body.rstrip("\n").replace("\n", ",") + "]")
            return lines
        except ValueError as error:
            raise SegmentFormatError(f"its events are not JSON lines: {error}") from error

    def events(self) -> Iterator[RecordedEvent]:
        """The segment's events in position order, each with its recomputed hash; raises
        :class:`SegmentFormatError` at the first line that is not an event, and after the
        last when the events do not end at the header's last position and hash."""
        header = self.header
        try:
            # One parse for every line: a JSON text holds no raw newline.
            lines = json.loads("[" + self._body.rstrip("\n").replace("\n", ",") + "]")
        except ValueError as error:
            raise SegmentFormatError(f"its events are not JSON lines: {error}") from error
        versions = {master.id: master.version for master in header.masters}
        position, at = header.first_position - 1, header.first_recorded_at
        chained = header.previous_hash
        texts: dict[str, dict[str, Any]] = {}  # each data and metadata text decoded once
        sha256 = hashlib.sha256
        for line in lines:
            position += 1
            try:
                master_id, delta, kind, meta, data, *rest = line
                type_name, schema_version = header.types[kind]
                metadata_text = header.metadata[meta]
                extra = rest[0] if rest else _NOTHING
                version = int(extra.get("version", versions.get(master_id, 0) + 1))
                stored = extra.get("event_id")
                at += int(delta)
                event_id = event_id_of(
                    None if stored is None else uuid.UUID(stored), master_id, version, at
                )
                # eventstore.links.link, inlined: this loop is the archive's reading cost.
                tail = (
                    f"\x00{event_id}\x00{master_id}\x00{version}\x00{type_name}\x00"
                    f"{schema_version}\x00{at}\x00{len(data)}\x00{data}\x00{metadata_text}"
                )
                chained = sha256(chained + str(position).encode() + tail.encode()).digest()
                recorded = RecordedEvent(
                    position=position,
                    event_id=event_id,
                    master_id=master_id,
                    version=version,
                    type=type_name,
                    schema_version=schema_version,
                    data=dict(_parsed(texts, data)),
                    metadata=dict(_parsed(texts, metadata_text)),
                    recorded_at=from_micros(at),
                    hash=chained.hex(),
                )
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
                raise SegmentFormatError(f"position {position}: not an event: {error}") from error
            versions[master_id] = version
            yield recorded
        if position != header.last_position or chained != header.last_hash:
            raise SegmentFormatError(
                f"the events end at position {position}, not at the header's "
                f"{header.last_position} with its last hash"
            )

    def rows(self, upto: int | None = None, *, until: int | None = None) -> Iterator[SegmentRow]:
        """The segment's events up to position ``upto`` (None: all), and, with ``until``
        (microseconds), up to the first recorded after it, undecoded and unchained, as a
        fold reads them (:data:`SegmentRow`): for readings that need the events' states,
        not their hashes or ids. The file's SHA-256, checked when it was opened against the
        one recorded, stands for the chain here."""
        if upto is not None or until is not None:
            # Part of the segment: its lines parsed one by one, as far as needed.
            yield from self._rows_until(upto, until)
            return
        header = self.header
        versions = {master.id: master.version for master in header.masters}
        types = header.types
        position, at = header.first_position - 1, header.first_recorded_at
        try:
            for line in self._lines():
                position += 1
                if len(line) == 5:
                    master_id, delta, kind, _, data = line
                    version = versions.get(master_id, 0) + 1
                else:
                    master_id, delta, kind, _, data = line[:5]
                    stored = line[5].get("version")
                    version = versions.get(master_id, 0) + 1 if stored is None else int(stored)
                type_name, schema_version = types[kind]
                versions[master_id] = version
                at += delta
                yield (position, master_id, version, type_name, schema_version, data, at)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise SegmentFormatError(f"position {position}: not an event: {error}") from error

    def _rows_until(self, upto: int | None, until: int | None) -> Iterator[SegmentRow]:
        header = self.header
        versions = {master.id: master.version for master in header.masters}
        types = header.types
        position, at = header.first_position - 1, header.first_recorded_at
        last = header.last_position if upto is None else min(upto, header.last_position)
        for line in self._body.splitlines():
            if position >= last:
                return
            position += 1
            try:
                master_id, delta, kind, data, version = _row(line)
                type_name, schema_version = types[kind]
            except (ValueError, TypeError, KeyError, IndexError) as error:
                raise SegmentFormatError(f"position {position}: not an event: {error}") from error
            version = versions.get(master_id, 0) + 1 if version is None else version
            versions[master_id] = version
            at += delta
            if until is not None and at > until:
                return
            yield (position, master_id, version, type_name, schema_version, data, at)

    def check(self) -> list[RecordedEvent]:
        """Re-chain every event from the header's previous hash to its last hash, and
        return each master's first and last event of the segment, in log order: what a
        fold of the segment needs (every event describes its master's state after it; the
        first may register it). Raises :class:`SegmentFormatError` as :meth:`events` does.
        Cheaper than :meth:`events`: only the events returned are decoded."""
        header = self.header
        lines = self._lines()
        versions = {master.id: master.version for master in header.masters}
        position, at = header.first_position - 1, header.first_recorded_at
        chained = header.previous_hash
        types, metadata = header.types, header.metadata
        # Each link as eventstore.links.link makes it, with what repeats made once (see
        # eventstore.links.text_parts, chain_link): this loop is the cost of sealing and
        # verifying.
        masters: MasterIdParts = {}
        parts: dict[tuple[int, int, str], tuple[str, bytes]] = {}
        firsts: dict[int, tuple[Any, ...]] = {}
        lasts: dict[int, tuple[Any, ...]] = {}
        try:
            for line in lines:
                position += 1
                if len(line) == 5:
                    master_id, delta, kind, meta, data = line
                    version = versions.get(master_id, 0) + 1
                    stored = None
                else:
                    master_id, delta, kind, meta, data = line[:5]
                    extra = line[5]
                    version = int(extra.get("version", versions.get(master_id, 0) + 1))
                    stored = extra.get("event_id")
                at += delta
                key = (kind, meta, data)
                around = parts.get(key)
                if around is None:
                    if len(parts) >= TEXT_PARTS_KEPT:
                        parts.clear()
                    if not isinstance(data, str):
                        raise TypeError("the data is not a JSON text")
                    type_name, schema_version = types[kind]
                    around = parts[key] = text_parts(
                        type_name, schema_version, data, metadata[meta]
                    )
                if stored is not None:
                    stored = str(uuid.UUID(stored))
                chained = chain_link(
                    chained, position, stored, master_id, version, at, around, masters
                )
                versions[master_id] = version
                if master_id not in firsts:
                    firsts[master_id] = (
                        position, stored, master_id, version, kind, meta, data, at, chained
                    )  # fmt: skip
                lasts[master_id] = (
                    position, stored, master_id, version, kind, meta, data, at, chained
                )  # fmt: skip
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise SegmentFormatError(f"position {position}: not an event: {error}") from error
        if position != header.last_position or chained != header.last_hash:
            raise SegmentFormatError(
                f"the events end at position {position}, not at the header's "
                f"{header.last_position} with its last hash"
            )
        kept = {event[0]: event for event in (*firsts.values(), *lasts.values())}
        try:
            return [self._recorded(*kept[key]) for key in sorted(kept)]
        except (ValueError, TypeError) as error:
            raise SegmentFormatError(f"an event is not readable: {error}") from error

    def _recorded(
        self,
        position: int,
        stored: str | None,
        master_id: int,
        version: int,
        kind: int,
        meta: int,
        data: str,
        at: int,
        chained: bytes,
    ) -> RecordedEvent:
        type_name, schema_version = self.header.types[kind]
        return RecordedEvent(
            position=position,
            event_id=event_id_of(
                None if stored is None else uuid.UUID(stored), master_id, version, at
            ),
            master_id=master_id,
            version=version,
            type=type_name,
            schema_version=schema_version,
            data=_object(json.loads(data)),
            metadata=_object(json.loads(self.header.metadata[meta])),
            recorded_at=from_micros(at),
            hash=chained.hex(),
        )


_NOTHING: dict[str, Any] = {}


#: The end of the line of an event with no data of its own and nothing extra (a check-in).
_EMPTY_DATA = '"{}"]'


def _row(line: str) -> tuple[int, int, int, str, int | None]:
    """``(master_id, delta, type index, data, version or None)`` of an event's line. Most
    lines are check-ins ending in ``"{}"]``: split, not parsed as JSON."""
    if line.endswith(_EMPTY_DATA):
        master_id, delta, kind, _meta, rest = line[1:].split(",", 4)
        if rest == _EMPTY_DATA:
            return int(master_id), int(delta), int(kind), "{}", None
    master_id, delta, kind, _meta, data, *extra = json.loads(line)
    version = extra[0].get("version") if extra else None
    return master_id, delta, kind, data, None if version is None else int(version)


def _parsed(texts: dict[str, dict[str, Any]], text: str) -> dict[str, Any]:
    found = texts.get(text)
    if found is None:
        found = texts[text] = _object(json.loads(text))
    return found


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("data and metadata are JSON objects")
    return value


def _header(found: Any) -> SegmentHeader:
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise ValueError("its first line is not a segment header")
    if found.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {found.get('format_version')!r} is not readable")
    return SegmentHeader(
        first_position=int(found["first_position"]),
        last_position=int(found["last_position"]),
        count=int(found["count"]),
        first_recorded_at=int(found["first_recorded_at"]),
        last_recorded_at=int(found["last_recorded_at"]),
        previous_hash=bytes.fromhex(found["previous_hash"]),
        last_hash=bytes.fromhex(found["last_hash"]),
        masters=tuple(
            MasterSnapshot(
                id=int(m["id"]),
                name=str(m["name"]),
                active=bool(m["active"]),
                last_active=int(m["last_active"]),
                version=int(m["version"]),
            )
            for m in found["masters"]
        ),
        types=tuple((str(name), int(version)) for name, version in found["types"]),
        metadata=tuple(str(text) for text in found["metadata"]),
    )

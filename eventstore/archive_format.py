"""The archive's segment file: xz-compressed JSON lines, a header line and one line per event.

The header (a JSON object) says what the segment is (``format``, ``format_version``), its
range (``first_position``, ``last_position``, ``count``, ``first_recorded_at``,
``last_recorded_at`` in microseconds), its place in the chain (``previous_hash``, the hash
of the event before its first, and ``last_hash``, both hex), every master's state just
before its first event (``masters``: ``id``, ``name``, ``active``, ``last_active``,
``version``), and the texts its events name: ``types`` (``[type, schema_version]`` pairs)
and ``metadata`` (each metadata JSON text as stored).

Each event is a JSON array ``[master_id, delta, type, metadata, data]``: ``delta`` is its
``recorded_at`` minus the previous event's (the first's minus ``first_recorded_at``, so 0),
``type`` and ``metadata`` index the header's lists, ``data`` is the data text as stored.
Its position is the previous one plus one; its version its master's previous version plus
one. A sixth element, an object, is there only when that is not so (``version``) or when
the log stored an id the event's columns do not derive (``event_id``). Per-event hashes are
not stored: they are recomputed from ``previous_hash``, and must end at ``last_hash``.
What changes from one check-in to the next is little more than the time, so a check-in
costs a few bytes once compressed (``docs/operators.rst``).

This module writes segments (:func:`encode`); :mod:`eventstore.archive_read` reads them.
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from eventstore.ids import as_uuid

FORMAT = "mastertrail-segment"
FORMAT_VERSION = 1
#: The file name's suffix.
SUFFIX = ".jsonl.xz"
#: The xz preset segments are written with. A segment is a few dozen kilobytes of
#: repetitive JSON lines, well inside even a low preset's dictionary, and the default
#: preset's deeper match search finds next to nothing more in it. Any preset reads back
#: the same way.
PRESET = 1

#: The columns of a stored event :func:`encode` takes, in this order.
COLUMNS = (
    "position",
    "event_id",
    "master_id",
    "version",
    "type",
    "schema_version",
    "data",
    "metadata",
    "recorded_at",
    "hash",
)


def file_name(first_position: int, last_position: int) -> str:
    """The name of the segment file of positions ``first_position`` .. ``last_position``:
    zero-padded, so that names sort in log order."""
    return f"segment-{first_position:012d}-{last_position:012d}{SUFFIX}"


@attrs.frozen(kw_only=True)
class MasterSnapshot:
    """A master's state as a fold leaves it (the fields of a ``masters`` row, and the
    version of its stream's newest event)."""

    id: int
    name: str
    active: bool
    last_active: int  # epoch seconds
    version: int


@attrs.frozen(kw_only=True)
class SegmentHeader:
    """A segment file's first line."""

    first_position: int
    last_position: int
    count: int
    first_recorded_at: int  # microseconds since the epoch, UTC
    last_recorded_at: int
    previous_hash: bytes
    last_hash: bytes
    masters: tuple[MasterSnapshot, ...]  # every master just before the first event, by id
    types: tuple[tuple[str, int], ...] = ()
    metadata: tuple[str, ...] = ()


class SegmentFormatError(ValueError):
    """Bytes that are not a segment file this version reads, or a segment whose events do
    not chain from its ``previous_hash`` to its ``last_hash``."""


def encode(
    rows: Sequence[Any], previous_hash: bytes, masters: Mapping[int, MasterSnapshot]
) -> tuple[SegmentHeader, bytes]:
    """The header and the file's bytes of a segment of the stored events ``rows``: the
    :func:`encode_text` of the rows, compressed (:func:`compress`)."""
    header, text = encode_text(rows, previous_hash, masters)
    return header, compress(text)


def compress(text: str) -> bytes:
    """A segment's text as the file holds it: xz-compressed UTF-8."""
    return lzma.compress(text.encode("utf-8"), format=lzma.FORMAT_XZ, preset=PRESET)


def encode_text(
    rows: Sequence[Any],
    previous_hash: bytes,
    masters: Mapping[int, MasterSnapshot],
    texts: Mapping[int, str | None] | None = None,
) -> tuple[SegmentHeader, str]:
    """The header and the text of a segment of the stored events ``rows`` (tuples or rows
    with the :data:`COLUMNS` in that order, the event id as a UUID, its bytes or None, at
    consecutive positions) after the event whose hash is ``previous_hash``, with
    ``masters`` the states just before the first. With ``texts``, the rows name their
    type and metadata by id, and ``texts`` gives each id's text (None: missing).

    The header's last hash is the last row's stored one: reading the segment
    (:meth:`eventstore.archive_read.SegmentFile.check`) recomputes the chain from
    ``previous_hash`` and reaches it only if every row is what was appended, so a segment
    is checked by reading it once."""
    if not rows:
        raise ValueError("a segment holds at least one event")
    kinds: dict[tuple[Any, int], int] = {}
    metadata: dict[Any, int] = {}
    kind_texts: list[tuple[str, int]] = []
    metadata_texts: list[str] = []
    versions = {master.id: master.version for master in masters.values()}
    lines: list[str] = []
    append = lines.append
    quoted: dict[str, str] = {}  # each distinct data text quoted once
    dumps = _ENCODER.encode
    first, last = rows[0], rows[-1]
    expected, at = first[0], first[8]
    for (
        position,
        event_id,
        master_id,
        version,
        type_,
        schema,
        data,
        meta_text,
        recorded_at,
        _,
    ) in rows:
        if position != expected:
            raise SegmentFormatError(f"position {expected} is missing")
        kind = kinds.get((type_, schema))
        if kind is None:
            name = type_ if texts is None else texts.get(type_)
            if name is None:
                raise SegmentFormatError(f"the texts of the event at {position} are missing")
            kind = kinds[(type_, schema)] = len(kind_texts)
            kind_texts.append((name, schema))
        meta = metadata.get(meta_text)
        if meta is None:
            text = meta_text if texts is None else texts.get(meta_text)
            if text is None:
                raise SegmentFormatError(f"the texts of the event at {position} are missing")
            meta = metadata[meta_text] = len(metadata_texts)
            metadata_texts.append(text)
        if event_id is None and version == versions.get(master_id, 0) + 1:
            line = quoted.get(data)
            if line is None:
                line = quoted[data] = dumps(data)
            # What dumps makes of the list.
            append(f"[{master_id},{recorded_at - at},{kind},{meta},{line}]")
        else:
            extra: dict[str, Any] = {}
            if version != versions.get(master_id, 0) + 1:
                extra["version"] = version
            if event_id is not None:
                extra["event_id"] = str(as_uuid(event_id))
            append(dumps([master_id, recorded_at - at, kind, meta, data, extra]))
        versions[master_id] = version
        expected, at = position + 1, recorded_at
    header = SegmentHeader(
        first_position=first[0],
        last_position=last[0],
        count=len(rows),
        first_recorded_at=first[8],
        last_recorded_at=last[8],
        previous_hash=previous_hash,
        last_hash=bytes(last[9]),
        masters=tuple(masters[key] for key in sorted(masters)),
        types=tuple(kind_texts),
        metadata=tuple(metadata_texts),
    )
    lines.append("")
    return header, dumps(_header_json(header)) + "\n" + "\n".join(lines)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _header_json(header: SegmentHeader) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "first_position": header.first_position,
        "last_position": header.last_position,
        "count": header.count,
        "first_recorded_at": header.first_recorded_at,
        "last_recorded_at": header.last_recorded_at,
        "previous_hash": header.previous_hash.hex(),
        "last_hash": header.last_hash.hex(),
        "masters": [attrs.asdict(master) for master in header.masters],
        "types": [list(kind) for kind in header.types],
        "metadata": list(header.metadata),
    }

"""Anchors: where the log stood (a position and the hash there), kept outside the database.

The hash chain lets ``verify`` find a row changed behind the log's back, but whoever can
drop the guard triggers can also rewrite the log and recompute every hash after the
change, and the head, so that the chain verifies again. An anchor taken before, and kept
where that person cannot reach, catches it: the position it names no longer carries its
hash. An anchor proves nothing about events after its position, nor about a log rewritten
before the anchor was taken.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventstore.errors import AnchorInvalid, InvalidArgument, InvalidArgumentType, LogDamaged
from eventstore.links import GENESIS
from eventstore.schema import archive_segments, events
from eventstore.store import read_head

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset({"position", "hash", "recorded_at"})


@attrs.frozen(kw_only=True)
class Anchor:
    """The log's last position and its hash (SHA-256, lowercase hex) when the anchor was
    taken, and when (aware UTC)."""

    position: int
    hash: str
    recorded_at: dt.datetime

    def to_json(self) -> str:
        """One line of JSON, as an anchors file holds it."""
        return json.dumps(
            {
                "position": self.position,
                "hash": self.hash,
                "recorded_at": self.recorded_at.isoformat(),
            },
            separators=(", ", ": "),
        )

    @classmethod
    def from_json(cls, text: str, *, where: str = "anchor") -> Anchor:
        """The anchor :meth:`to_json` wrote; anything else raises :class:`AnchorInvalid`
        (a ``ValueError``), ``where`` naming it in the message."""
        try:
            found = json.loads(text)
        except ValueError as error:
            raise AnchorInvalid(where, f"not JSON ({error})") from error
        if not isinstance(found, dict) or set(found) != _FIELDS:
            raise AnchorInvalid(where, f"want an object with exactly {sorted(_FIELDS)}")
        position, digest, recorded_at = found["position"], found["hash"], found["recorded_at"]
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise AnchorInvalid(where, f"position must be a whole number >= 0, not {position!r}")
        if not isinstance(digest, str) or not _HEX_HASH.fullmatch(digest):
            raise AnchorInvalid(where, "hash must be 64 lowercase hexadecimal digits")
        if position == 0 and digest != GENESIS.hex():
            raise AnchorInvalid(where, "position 0 has the genesis hash (zeros) only")
        try:
            when = dt.datetime.fromisoformat(recorded_at)
        except (TypeError, ValueError) as error:
            raise AnchorInvalid(where, "recorded_at must be an ISO 8601 time") from error
        if when.utcoffset() is None:
            raise AnchorInvalid(where, "recorded_at must carry its UTC offset")
        return cls(position=position, hash=digest, recorded_at=when.astimezone(dt.UTC))


def take_anchor(conn: Connection, recorded_at: dt.datetime) -> Anchor:
    """An anchor of the log as this transaction sees it: the head's position and the hash
    stored there (the genesis hash at position 0). Raises
    :class:`~eventstore.errors.HeadMissing` without a head row, and :class:`LogDamaged`
    when the head's hash is not that of the event it points at."""
    head = read_head(conn)
    if head.position == 0:
        return Anchor(position=0, hash=GENESIS.hex(), recorded_at=recorded_at)
    stored = conn.execute(
        sa.select(events.c.hash).where(events.c.position == head.position)
    ).scalar()
    if stored is None or bytes(stored) != head.hash:
        raise LogDamaged(
            f"the head row does not match the event at position {head.position}: "
            "run `mastertrail verify`"
        )
    return Anchor(position=head.position, hash=head.hash.hex(), recorded_at=recorded_at)


@attrs.frozen
class AnchorProblem:
    """An anchor the log no longer agrees with."""

    anchor: Anchor
    problem: str


def check_anchors(conn: Connection, anchors: Sequence[Anchor]) -> list[AnchorProblem]:
    """Every anchor whose position no longer carries its hash (or is past the end of the
    log), in the anchors' order."""
    positions = sorted({a.position for a in anchors if a.position > 0})
    stored: dict[int, bytes] = {}
    for start in range(0, len(positions), _CHUNK):
        chunk = positions[start : start + _CHUNK]
        rows = conn.execute(
            sa.select(events.c.position, events.c.hash).where(events.c.position.in_(chunk))
        )
        stored.update((int(position), bytes(digest)) for position, digest in rows)
    # The log's end: its last row, or with every event archived, the last sealed one's.
    last = max(
        conn.execute(  # not max(): on the system-versioned log MariaDB reads every row
            sa.select(events.c.position).order_by(events.c.position.desc()).limit(1)
        ).scalar()
        or 0,
        conn.execute(sa.select(sa.func.max(archive_segments.c.last_position))).scalar() or 0,
    )
    problems = []
    for anchor in anchors:
        if anchor.position == 0:
            continue
        taken = f"the anchor of {anchor.recorded_at.isoformat()}"
        found = stored.get(anchor.position)
        if found is None and anchor.position > last:
            problems.append(
                AnchorProblem(
                    anchor,
                    f"past the end of the log (position {last}) since {taken}: events were removed",
                )
            )
        elif found is None:
            problems.append(AnchorProblem(anchor, f"missing since {taken}"))
        elif found.hex() != anchor.hash:
            problems.append(
                AnchorProblem(
                    anchor,
                    f"no longer carries the hash of {taken}: the log was rewritten at or "
                    "before this position",
                )
            )
    return problems


_CHUNK = 500


def read_anchors(path: str | os.PathLike[str]) -> list[Anchor]:
    """The anchors of a JSON-lines file, one per line (blank lines skipped); a line that
    is not an anchor raises :class:`AnchorInvalid` naming the file and line, and a file
    that cannot be read :class:`~eventstore.errors.InvalidArgument`."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgument(
            "anchors", f"names no readable anchors file ({error})", path
        ) from error
    return list(_parse(lines, os.fspath(path)))


def given_anchors(anchors: object) -> list[Anchor]:
    """``verify``'s ``anchors`` argument as a list: None (none), a sequence of anchors, or
    the path of an anchors file (read with :func:`read_anchors`); anything else raises
    :class:`~eventstore.errors.InvalidArgumentType`."""
    if anchors is None:
        return []
    if isinstance(anchors, str | os.PathLike):
        return read_anchors(anchors)
    if isinstance(anchors, Sequence) and all(isinstance(a, Anchor) for a in anchors):
        return list(anchors)
    raise InvalidArgumentType(
        "anchors", "a sequence of Anchor or the path of a JSON-lines file", anchors
    )


def _parse(lines: Iterable[str], name: str) -> Iterable[Anchor]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield Anchor.from_json(line, where=f"{name}:{number}")

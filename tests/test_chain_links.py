"""The link both chaining loops make (:func:`eventstore.links.chain_link`, in the archive's
check and in ``verify_chain``) is the one :func:`eventstore.links.link` makes, for any
master, version, time, id and texts."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.archive_format import MasterSnapshot, SegmentFormatError, encode_text
from eventstore.archive_read import SegmentFile
from eventstore.ids import MAX_DERIVED, MAX_MICROS, derived_event_id
from eventstore.links import GENESIS, MasterIdParts, chain_link, derived_id_text, link, text_parts

#: The last microsecond a datetime holds (9999-12-31), below the last an id carries.
LAST_DATETIME = 253_402_300_799_999_999

#: A stored event as the driver reads it.
Row = tuple[Any, ...]

masters = st.integers(1, MAX_DERIVED)
versions = st.integers(1, MAX_DERIVED)
micros = st.integers(0, MAX_MICROS)
#: Data and metadata texts: JSON objects, any characters.
texts = st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=2).map(
    lambda value: json.dumps(value, ensure_ascii=False, separators=(",", ":"))
)


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[Row], int]:
    """Stored rows of consecutive events (as the driver reads them), chained by ``link``
    after the first position's predecessor, and that position."""
    first = draw(st.integers(1, 10**12))
    at = draw(st.integers(0, LAST_DATETIME - 10**9))
    ids = draw(st.lists(masters, min_size=1, max_size=3, unique=True))
    counts = {master_id: draw(st.integers(0, MAX_DERIVED - 20)) for master_id in ids}
    rows: list[Row] = []
    previous = GENESIS
    for offset in range(draw(st.integers(1, 12))):
        master_id = draw(st.sampled_from(ids))
        counts[master_id] += draw(st.sampled_from([1, 1, 1, 2]))  # now and then a gap
        version = counts[master_id]
        at += draw(st.integers(0, 10**7))
        stored = draw(st.sampled_from([None, None, uuid.uuid4()]))
        type_ = draw(st.sampled_from(["master.checked_in", "t.ü"]))
        data, metadata = draw(texts), draw(texts)
        event_id = stored or derived_event_id(master_id, version, at)
        assert event_id is not None
        previous = link(
            previous, position=first + offset, event_id=event_id, master_id=master_id,
            version=version, type=type_, schema_version=1, data=data, metadata=metadata,
            recorded_at=at,
        )  # fmt: skip
        rows.append(
            (first + offset, stored, master_id, version, type_, 1, data, metadata, at, previous)
        )
    return rows, first


def before_first(rows: list[Row]) -> dict[int, MasterSnapshot]:
    """Each master of ``rows`` as it stood before its first row there (its version)."""
    return {
        row[2]: MasterSnapshot(id=row[2], name="m", active=True, last_active=0, version=row[3] - 1)
        for row in reversed(rows)
    }


class TestDerivedIdText:
    @given(masters, versions, micros)
    def test_is_the_ids_text(self, master_id: int, version: int, at: int) -> None:
        """The id text made without the UUID is the derived id's own."""
        assert derived_id_text(master_id, version, at) == str(
            derived_event_id(master_id, version, at)
        )

    @pytest.mark.parametrize(
        ("master_id", "version", "at"), [(0, 1, 0), (1, 0, 0), (1, 1, -1), (1, 1, MAX_MICROS + 1)]
    )
    def test_none_out_of_range(self, master_id: int, version: int, at: int) -> None:
        """Where no id derives, it raises ValueError."""
        with pytest.raises(ValueError, match="no"):
            derived_id_text(master_id, version, at)


class TestChainLink:
    @given(
        st.integers(1, 10**12),
        masters,
        st.lists(st.tuples(versions, micros, st.none() | st.uuids()), min_size=1, max_size=3),
        texts,
        texts,
    )
    def test_is_links_hash(
        self,
        position: int,
        master_id: int,
        events: list[tuple[int, int, uuid.UUID | None]],
        data: str,
        metadata: str,
    ) -> None:
        """Each event of a master, its id stored or derived, links as link links it, with
        what the master's earlier events left in the parts kept."""
        parts = text_parts("t.ü", 2, data, metadata)
        kept: MasterIdParts = {}
        for version, at, stored in events:
            event_id = stored or derived_event_id(master_id, version, at)
            assert event_id is not None
            made = chain_link(
                GENESIS, position, None if stored is None else str(stored), master_id,
                version, at, parts, kept,
            )  # fmt: skip
            assert made == link(
                GENESIS, position=position, event_id=event_id, master_id=master_id,
                version=version, type="t.ü", schema_version=2, data=data,
                metadata=metadata, recorded_at=at,
            )  # fmt: skip

    @pytest.mark.parametrize(
        ("master_id", "version", "at"), [(0, 1, 0), (1, 0, 0), (1, 1, -1), (1, 1, MAX_MICROS + 1)]
    )
    def test_none_out_of_range(self, master_id: int, version: int, at: int) -> None:
        """Where no id is stored and none derives, it raises ValueError."""
        with pytest.raises(ValueError, match="no"):
            chain_link(GENESIS, 1, None, master_id, version, at, text_parts("t", 1, "{}", "{}"), {})


class TestSegmentCheck:
    @given(logs())
    def test_rechains_what_link_chained(self, log: tuple[list[Row], int]) -> None:
        """A segment of rows chained by link checks, and its events carry link's hashes."""
        rows, _ = log
        header, text = encode_text(rows, GENESIS, before_first(rows))
        picked = SegmentFile.of_text(text).check()
        hashes = {row[0]: bytes(row[9]).hex() for row in rows}
        assert [event.hash for event in picked] == [hashes[event.position] for event in picked]
        assert picked[-1].position == rows[-1][0] == header.last_position

    @given(logs(), st.data())
    def test_a_changed_row_fails(self, log: tuple[list[Row], int], data: st.DataObject) -> None:
        """Any row's time changed by a microsecond, the segment does not check."""
        rows, _ = log
        index = data.draw(st.integers(0, len(rows) - 1))
        row = list(rows[index])
        row[8] = int(row[8]) + 1
        changed = [*rows[:index], tuple(row), *rows[index + 1 :]]
        _, text = encode_text(changed, GENESIS, before_first(rows))
        with pytest.raises(SegmentFormatError):
            SegmentFile.of_text(text).check()

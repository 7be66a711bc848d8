"""Verifying the archive: every sealed segment re-chained, in log order, against the table
that records them.

A segment's file must be there, be the file sealed (its SHA-256), describe the recorded
segment in its header, and hold events whose hashes chain from the recorded previous hash
to the recorded last hash. Each segment must start right after the one before it, where
that one's chain ended (a reordered, missing or substituted segment breaks this); the hot
log must start right after the last (:func:`eventstore.chain.verify_chain` chains it on
from there), and hold no row the archive covers. With a ``fold``, each header's states of
the masters must be the fold of everything before it (``masters_as_of`` starts from them),
and so must the states recorded after each (:class:`~eventstore.archive_states.RecordedStates`).
"""

from __future__ import annotations

import os

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore.archive import Segment, list_segments, open_segment
from eventstore.archive_format import MasterSnapshot, SegmentFormatError
from eventstore.archive_seal import Fold
from eventstore.archive_states import RecordedStates
from eventstore.chain import GENESIS, ChainProblem
from eventstore.engine import reading, translate_errors
from eventstore.errors import ArchiveUnavailable
from eventstore.schema import events


@attrs.frozen
class SegmentsReport:
    """What :func:`verify_segments` found: segments and events checked, and the problems
    in log order."""

    segments: int
    checked: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_segments(
    engine: Engine,
    *,
    archive: str | os.PathLike[str] | None = None,
    fold: Fold | None = None,
) -> SegmentsReport:
    """Re-chain every sealed segment (files in ``archive``, else where
    :func:`~eventstore.archive.open_segment` looks) and name each problem."""
    segments = list_segments(engine)
    problems: list[ChainProblem] = []
    previous_last, previous_hash = 0, GENESIS.hex()
    states: dict[int, MasterSnapshot] | None = {}
    checked = 0
    # The masters' states recorded where the segments end: those readings start from.
    recorded = (
        RecordedStates.read(engine, segments[-1].last_position) if fold and segments else None
    )
    for segment in segments:
        if segment.first_position != previous_last + 1:
            problems.append(
                ChainProblem(
                    previous_last + 1,
                    f"archive segment {segment.file_name} starts at {segment.first_position}, "
                    f"not right after position {previous_last}",
                )
            )
        elif segment.previous_hash != previous_hash:
            problems.append(
                ChainProblem(
                    segment.first_position,
                    f"archive segment {segment.file_name} does not continue the chain where "
                    "the one before it ends",
                )
            )
        count, states, problem = _check(segment, archive, fold, states)
        checked += count
        if problem is not None:
            problems.append(ChainProblem(segment.first_position, problem))
        if recorded is not None:
            wrong = recorded.problem_after(segment.file_name, segment.last_position, states)
            if wrong is not None:
                problems.append(ChainProblem(segment.last_position, wrong))
        previous_last, previous_hash = segment.last_position, segment.last_hash
    if previous_last:
        with translate_errors(), reading(engine) as conn:
            shadowed = conn.execute(
                sa.select(sa.func.count()).where(events.c.position <= previous_last)
            ).scalar()
        if shadowed:
            problems.append(
                ChainProblem(
                    previous_last,
                    f"the log holds {shadowed} rows at positions the archive covers "
                    f"(up to {previous_last})",
                )
            )
    return SegmentsReport(len(segments), checked, problems)


def _check(
    segment: Segment,
    archive: str | os.PathLike[str] | None,
    fold: Fold | None,
    states: dict[int, MasterSnapshot] | None,
) -> tuple[int, dict[int, MasterSnapshot] | None, str | None]:
    """Events checked in ``segment``, the masters' states after it (None once unknown),
    and what is wrong with it (None: nothing)."""
    try:
        opened = open_segment(segment, archive)
        recorded = opened.check()
    except ArchiveUnavailable as error:  # missing, or damaged
        return 0, None, str(error)
    except SegmentFormatError as error:
        return 0, None, f"archive segment {segment.file_name} is damaged: {error}"
    if fold is None:
        return segment.count, None, None
    before = {master.id: master for master in opened.header.masters}
    problem = None
    if states is not None and before != states:
        problem = (
            f"archive segment {segment.file_name}: its header's states of the masters are "
            "not what the events before it make"
        )
    try:
        return segment.count, fold(before, recorded), problem
    except ValueError as error:  # the fold's DecodeError
        return segment.count, None, f"archive segment {segment.file_name}: {error}"

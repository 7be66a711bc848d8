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

Each segment is checked on its own (its chain starts from its recorded previous hash, its
fold from its header's states); what joins them is compared in log order after. A long
archive is checked in several processes at once (:data:`PROCESSES`): re-chaining is the
cost of verifying, about two microseconds an event, and one interpreter does it on one
core.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
from collections.abc import Iterator, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventstore.archive import Segment, list_segments, open_segment
from eventstore.archive_format import MasterSnapshot, SegmentFormatError
from eventstore.archive_seal import Fold
from eventstore.archive_states import RecordedStates
from eventstore.chain import ChainProblem
from eventstore.engine import reading, translate_errors
from eventstore.errors import ArchiveUnavailable
from eventstore.links import GENESIS
from eventstore.schema import events


@attrs.frozen
class SegmentsReport:
    """What :func:`verify_segments` found: segments and events checked, and the problems
    in log order. With a ``fold`` and no problem, ``states``: the masters' states where
    the segments end, at position ``through`` (0: no segment), the fold of every event
    of the archive."""

    segments: int
    checked: int
    problems: list[ChainProblem]
    states: dict[int, MasterSnapshot] | None = None
    through: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


#: Processes that check the segments of a long archive at once (at most; 1: the
#: verifying process alone).
PROCESSES = min(os.cpu_count() or 1, 4)
#: Segments from which they are checked in :data:`PROCESSES` processes: forked, starting
#: them costs about as much as checking this many segments; from a server process (see
#: :func:`_context`), which costs about half a second more, :data:`SERVED_FROM`.
PARALLEL_FROM = 48
SERVED_FROM = 256


def verify_segments(
    engine: Engine,
    *,
    archive: str | os.PathLike[str] | None = None,
    fold: Fold | None = None,
    processes: int | None = None,
) -> SegmentsReport:
    """Re-chain every sealed segment (files in ``archive``, else where
    :func:`~eventstore.archive.open_segment` looks) and name each problem; in up to
    ``processes`` processes (default :data:`PROCESSES`) when there are many segments
    (``fold`` must then be a module's function, as processes are given it by name)."""
    segments = list_segments(engine)
    problems: list[ChainProblem] = []
    previous_last, previous_hash = 0, GENESIS.hex()
    states: dict[int, MasterSnapshot] | None = {}
    checked = 0
    # The masters' states recorded where the segments end: those readings start from.
    recorded = (
        RecordedStates.read(engine, segments[-1].last_position) if fold and segments else None
    )
    for segment, found in zip(segments, _checks(segments, archive, fold, processes), strict=True):
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
        problem = found.problem
        if problem is None and states is not None and found.before != states:
            problem = (
                f"archive segment {segment.file_name}: its header's states of the masters "
                "are not what the events before it make"
            )
        checked += found.count
        states = found.after
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
    return SegmentsReport(
        len(segments),
        checked,
        problems,
        states=None if problems or fold is None else (states or {}),
        through=previous_last,
    )


@attrs.frozen
class _Checked:
    """One segment checked: its events checked, the masters' states in its header
    (``before``) and after it (None: unknown), and what is wrong with it (None: nothing)."""

    count: int
    before: dict[int, MasterSnapshot] | None
    after: dict[int, MasterSnapshot] | None
    problem: str | None


def _checks(
    segments: Sequence[Segment],
    archive: str | os.PathLike[str] | None,
    fold: Fold | None,
    processes: int | None,
) -> Iterator[_Checked]:
    """Each of ``segments`` checked (:func:`_check`), in their order."""
    processes = PROCESSES if processes is None else processes
    few = len(segments) < min(PARALLEL_FROM, SERVED_FROM)
    context = None if processes < 2 or few else _context(fold)
    enough = PARALLEL_FROM if context and context.get_start_method() == "fork" else SERVED_FROM
    if context is None or len(segments) < enough:
        for segment in segments:
            yield _check(segment, archive, fold)
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        # A few chunks a process, so that one slow chunk does not leave the others idle.
        chunk = max(1, len(segments) // (processes * 4))
        count = len(segments)
        yield from pool.map(_check, segments, [archive] * count, [fold] * count, chunksize=chunk)


def _context(fold: Fold | None = None) -> multiprocessing.context.BaseContext:
    """How the checking processes start: forked, when this process runs no other thread
    (nothing to import again); else from a server process, as a process whose threads may
    hold locks must not fork. The server imports this module and ``fold``'s once, and
    forks each process from itself."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, *([fold.__module__] if fold else [])])
    return context


def _check(segment: Segment, archive: str | os.PathLike[str] | None, fold: Fold | None) -> _Checked:
    """``segment``'s file opened, its events re-chained, and (with ``fold``) folded on its
    header's states."""
    try:
        opened = open_segment(segment, archive)
        recorded = opened.check()
    except ArchiveUnavailable as error:  # missing, or damaged
        return _Checked(0, None, None, str(error))
    except SegmentFormatError as error:
        return _Checked(0, None, None, f"archive segment {segment.file_name} is damaged: {error}")
    if fold is None:
        return _Checked(segment.count, None, None, None)
    before = {master.id: master for master in opened.header.masters}
    try:
        return _Checked(segment.count, before, fold(before, recorded), None)
    except ValueError as error:  # the fold's DecodeError
        return _Checked(
            segment.count, before, None, f"archive segment {segment.file_name}: {error}"
        )

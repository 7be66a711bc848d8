"""Pure folds of the log into views; the persisted ``masters`` view and its queries."""

from projections.fold import FoldError, RowFold, apply, apply_recorded, fold
from projections.model import MasterModel, MasterState, epoch_to_datetime, name_hash
from projections.queries import history, masters_as_of, position_at
from projections.rebuild import rebuild, verify
from projections.report import Problem, VerifyReport

__all__ = [
    "FoldError",
    "MasterModel",
    "MasterState",
    "Problem",
    "RowFold",
    "VerifyReport",
    "apply",
    "apply_recorded",
    "epoch_to_datetime",
    "fold",
    "history",
    "masters_as_of",
    "name_hash",
    "position_at",
    "rebuild",
    "verify",
]

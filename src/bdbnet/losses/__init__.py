"""Losses: batch-hard triplet, label-smoothed cross entropy, and their BDB combination."""

from bdbnet.losses.bdb_loss import BDBLoss, BranchOutputs, LossBreakdown
from bdbnet.losses.cross_entropy import LabelSmoothingCrossEntropy
from bdbnet.losses.triplet import BatchHardTripletLoss, euclidean_distances, hardest_pairs

__all__ = [
    "BDBLoss",
    "BatchHardTripletLoss",
    "BranchOutputs",
    "LabelSmoothingCrossEntropy",
    "LossBreakdown",
    "euclidean_distances",
    "hardest_pairs",
]

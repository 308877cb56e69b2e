"""Evaluation: re-ID ranking metrics, k-reciprocal re-ranking and retrieval metrics.

Everything works block by block on NumPy arrays or torch tensors (CPU or CUDA), never holds a
full N x N matrix, and breaks distance ties by gallery index so results are deterministic.

>>> from bdbnet.evaluation import evaluate_rank, re_ranking, recall_at_k  # doctest: +SKIP
"""

from bdbnet.evaluation.distance import as_tensor, iter_pairwise_distance, pairwise_distance, topk
from bdbnet.evaluation.query_expansion import alpha_query_expansion
from bdbnet.evaluation.reid import (
    AP_MODES,
    PROTOCOLS,
    RankResults,
    evaluate_features,
    evaluate_rank,
)
from bdbnet.evaluation.rerank import (
    iter_re_ranking,
    iter_re_ranking_features,
    re_ranking,
    re_ranking_features,
)
from bdbnet.evaluation.retrieval import evaluate_retrieval, map_at_r, recall_at_k

__all__ = [
    "AP_MODES",
    "PROTOCOLS",
    "RankResults",
    "alpha_query_expansion",
    "as_tensor",
    "evaluate_features",
    "evaluate_rank",
    "evaluate_retrieval",
    "iter_pairwise_distance",
    "iter_re_ranking",
    "iter_re_ranking_features",
    "map_at_r",
    "pairwise_distance",
    "re_ranking",
    "re_ranking_features",
    "recall_at_k",
    "topk",
]

"""Pictures: ranked lists and activation maps (PIL), training and CMC curves (matplotlib, the
``viz`` extra)."""

from bdbnet.visualization.activation import activation_maps, draw_activation_maps
from bdbnet.visualization.curves import plot_cmc, plot_training_curve
from bdbnet.visualization.ranked_list import (
    draw_ranked_list,
    draw_worst_queries,
    rank_gallery,
    scored_rankings,
    scored_topk,
    worst_queries,
)

__all__ = [
    "activation_maps",
    "draw_activation_maps",
    "draw_ranked_list",
    "draw_worst_queries",
    "plot_cmc",
    "plot_training_curve",
    "rank_gallery",
    "scored_rankings",
    "scored_topk",
    "worst_queries",
]

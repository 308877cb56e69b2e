"""Pictures: ranked lists and activation maps (PIL), training and CMC curves (matplotlib, the
``viz`` extra). What the pictures rank comes from :mod:`bdbnet.evaluation.ranked_lists`."""

from bdbnet.visualization.activation import activation_maps, draw_activation_maps
from bdbnet.visualization.curves import plot_cmc, plot_training_curve
from bdbnet.visualization.ranked_list import draw_ranked_list, draw_worst_queries

__all__ = [
    "activation_maps",
    "draw_activation_maps",
    "draw_ranked_list",
    "draw_worst_queries",
    "plot_cmc",
    "plot_training_curve",
]

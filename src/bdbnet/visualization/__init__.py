"""Pictures: ranked lists (PIL only) and training curves (matplotlib, the ``viz`` extra)."""

from bdbnet.visualization.curves import plot_training_curve
from bdbnet.visualization.ranked_list import draw_ranked_list, rank_gallery

__all__ = ["draw_ranked_list", "plot_training_curve", "rank_gallery"]

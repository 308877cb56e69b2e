"""Built-in dataset loaders; importing this module registers them."""

from bdbnet.data.datasets.base import DatasetLayoutError, ReIDDataset
from bdbnet.data.datasets.market1501 import Market1501, SyntheticReID

__all__ = ["DatasetLayoutError", "Market1501", "ReIDDataset", "SyntheticReID"]

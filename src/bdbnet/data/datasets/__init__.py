"""Built-in dataset loaders; importing this module registers them."""

from bdbnet.data.datasets.base import DatasetLayoutError, ReIDDataset
from bdbnet.data.datasets.cuhk03 import CUHK03NPDetected, CUHK03NPLabeled
from bdbnet.data.datasets.dukemtmc import DukeMTMCReID
from bdbnet.data.datasets.market1501 import Market1501, MarketStyleDataset, SyntheticReID
from bdbnet.data.datasets.msmt17 import MSMT17

__all__ = [
    "MSMT17",
    "CUHK03NPDetected",
    "CUHK03NPLabeled",
    "DatasetLayoutError",
    "DukeMTMCReID",
    "Market1501",
    "MarketStyleDataset",
    "ReIDDataset",
    "SyntheticReID",
]

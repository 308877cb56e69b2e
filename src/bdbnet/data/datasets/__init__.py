"""Built-in dataset loaders; importing this module registers them."""

from bdbnet.data.datasets.base import DatasetLayoutError, ReIDDataset
from bdbnet.data.datasets.cars196 import Cars196
from bdbnet.data.datasets.cub200 import CUB200
from bdbnet.data.datasets.cuhk03 import CUHK03NPDetected, CUHK03NPLabeled
from bdbnet.data.datasets.dukemtmc import DukeMTMCReID
from bdbnet.data.datasets.folder import ImageFolderReID
from bdbnet.data.datasets.inshop import InShop
from bdbnet.data.datasets.market1501 import Market1501, MarketStyleDataset, SyntheticReID
from bdbnet.data.datasets.msmt17 import MSMT17
from bdbnet.data.datasets.sop import StanfordOnlineProducts

__all__ = [
    "CUB200",
    "MSMT17",
    "CUHK03NPDetected",
    "CUHK03NPLabeled",
    "Cars196",
    "DatasetLayoutError",
    "DukeMTMCReID",
    "ImageFolderReID",
    "InShop",
    "Market1501",
    "MarketStyleDataset",
    "ReIDDataset",
    "StanfordOnlineProducts",
    "SyntheticReID",
]

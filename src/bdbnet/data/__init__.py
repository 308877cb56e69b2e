"""Data: dataset loaders (registry), identity sampling, transforms and the image dataset."""

from bdbnet.data.datasets import DatasetLayoutError, ReIDDataset
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats
from bdbnet.data.registry import build_dataset, get_dataset_class, list_datasets, register_dataset

__all__ = [
    "DatasetLayoutError",
    "DatasetSplits",
    "ImageRecord",
    "ReIDDataset",
    "SplitStats",
    "build_dataset",
    "get_dataset_class",
    "list_datasets",
    "register_dataset",
]

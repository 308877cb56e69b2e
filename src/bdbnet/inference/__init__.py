"""Using a trained model: feature extraction, gallery indexes, search and export.

>>> from bdbnet.inference import FeatureExtractor, GalleryIndex, search  # doctest: +SKIP
"""

from bdbnet.inference.extractor import (
    Extraction,
    FeatureExtractor,
    ModelIdentity,
    list_images,
)
from bdbnet.inference.index import GalleryIndex, IndexMismatchError, labels_from_paths
from bdbnet.inference.search import SearchResult, search, topk_search

__all__ = [
    "Extraction",
    "FeatureExtractor",
    "GalleryIndex",
    "IndexMismatchError",
    "ModelIdentity",
    "SearchResult",
    "labels_from_paths",
    "list_images",
    "search",
    "topk_search",
]

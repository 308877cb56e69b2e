"""Using a trained model: feature extraction, gallery indexes, search and export.

>>> from bdbnet.inference import FeatureExtractor, GalleryIndex, search  # doctest: +SKIP
"""

from bdbnet.inference.extractor import (
    Extraction,
    FeatureExtractor,
    ModelIdentity,
    list_images,
)
from bdbnet.inference.galleries import open_gallery
from bdbnet.inference.gallery_fill import fill_gallery
from bdbnet.inference.gallery_filter import GalleryFilter, parse_where
from bdbnet.inference.index import GalleryIndex, IndexMismatchError, labels_from_paths
from bdbnet.inference.milvus_gallery import MilvusGallery
from bdbnet.inference.projection import Projection
from bdbnet.inference.search import Hit, SearchResult, search, topk_search

__all__ = [
    "Extraction",
    "FeatureExtractor",
    "GalleryFilter",
    "GalleryIndex",
    "Hit",
    "IndexMismatchError",
    "MilvusGallery",
    "ModelIdentity",
    "Projection",
    "SearchResult",
    "fill_gallery",
    "labels_from_paths",
    "list_images",
    "open_gallery",
    "parse_where",
    "search",
    "topk_search",
]

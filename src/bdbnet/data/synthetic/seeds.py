"""Seed keys of the synthetic generator: every random stream is ``(seed, purpose, ...)``.

An image only depends on the seed and on which image it is (its kind, owner and index), never on
the processing order or on the number of worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Purposes mixed into the seeds, so that the streams are independent of each other.
TAG_CAMERA, TAG_TRAIN, TAG_TEST, TAG_DISTRACTOR, TAG_JUNK = 1, 2, 3, 4, 5
TAG_LAYOUT, TAG_IMAGE, TAG_NOISE, TAG_FRAMES = 6, 7, 8, 9
# Kinds of image (part of each image's seed).
KIND_TRAIN, KIND_TEST, KIND_DISTRACTOR, KIND_JUNK = 0, 1, 2, 3


def as_rng(seed: int | Sequence[int] | np.random.Generator) -> np.random.Generator:
    """A generator as is, else a new one seeded by an int or a sequence of seed keys."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(list(seed) if isinstance(seed, Sequence) else seed)

"""Seed keys of the synthetic generator: every random stream is ``(seed, purpose, ...)``.

An image only depends on the seed and on which image it is (its kind, owner and index), never on
the processing order or on the number of worker processes. Domains other than 0
(:mod:`bdbnet.data.synthetic.domains`) append their number to every key (:func:`domain_keys`), so
they draw other people, layouts and images from the same seed; domain 0 keeps the original keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Purposes mixed into the seeds, so that the streams are independent of each other.
TAG_CAMERA, TAG_TRAIN, TAG_TEST, TAG_DISTRACTOR, TAG_JUNK = 1, 2, 3, 4, 5
TAG_LAYOUT, TAG_IMAGE, TAG_NOISE, TAG_FRAMES = 6, 7, 8, 9
TAG_DOMAIN = 10  # marks the domain number appended to the keys of a domain N >= 1
# Kinds of image (part of each image's seed).
KIND_TRAIN, KIND_TEST, KIND_DISTRACTOR, KIND_JUNK = 0, 1, 2, 3


def domain_keys(keys: Sequence[int], domain: int) -> list[int]:
    """The seed keys of a random stream in ``domain``: domain 0's are ``keys`` themselves (its
    bytes never change), another domain's get ``TAG_DOMAIN, domain`` appended."""
    return list(keys) if domain == 0 else [*keys, TAG_DOMAIN, domain]


def as_rng(seed: int | Sequence[int] | np.random.Generator) -> np.random.Generator:
    """A generator as is, else a new one seeded by an int or a sequence of seed keys."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(list(seed) if isinstance(seed, Sequence) else seed)

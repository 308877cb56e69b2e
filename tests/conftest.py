"""Shared fixtures: a tiny synthetic re-ID dataset and a fast training config."""

from __future__ import annotations

import pytest

from bdbnet.config import Config, load_config


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A small dataset in the Market-1501 layout (generated once per test session)."""
    from bdbnet.data.synthetic import generate_synthetic_reid

    root = tmp_path_factory.mktemp("tiny") / "synthetic"
    generate_synthetic_reid(root, train_ids=8, test_ids=6, seed=0, distractors=6, junk=3)
    return root


def tiny_config(*overrides: str) -> Config:
    """The demo recipe shrunk for unit tests: 32x16 inputs, P x K = 4 x 2, deterministic."""
    return load_config(
        "synthetic-demo",
        overrides=[
            "data.height=32",
            "data.width=16",
            "data.cutout_size=8",
            "data.num_identities=4",
            "data.num_instances=2",
            "data.test_batch_size=16",
            "train.amp=none",
            "train.channels_last=false",
            "train.deterministic=true",
            "train.tensorboard=false",
            "train.progress=false",
            "train.device=cpu",
            "train.eval_every=0",
            "train.log_every=1",
            "optim.epochs=2",
            "optim.warmup_epochs=0",
            "optim.warmup_step=1",
            "optim.milestones=[1]",
            *overrides,
        ],
    )

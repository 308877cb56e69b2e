"""Build the pieces of a run (model, loss, optimiser, schedule, data loader) from a Config."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from bdbnet.config import Config
from bdbnet.data.image_dataset import ImageDataset
from bdbnet.data.recipes import build_train_transform
from bdbnet.data.records import DatasetSplits
from bdbnet.data.samplers import PKBatchSampler
from bdbnet.engine.schedule import build_scheduler
from bdbnet.losses import BDBLoss
from bdbnet.models import BDBNet


def model_kwargs(cfg: Config) -> dict:
    """Constructor arguments of :class:`BDBNet` except ``num_classes`` and ``pretrained``;
    stored in checkpoints so a model can be rebuilt without its config file."""
    m = cfg.model
    return dict(
        drop_height_ratio=m.drop_height_ratio,
        drop_width_ratio=m.drop_width_ratio,
        drop_mode=m.drop_mode,
        branches=m.branches,
        last_stride=m.last_stride,
        global_dim=m.global_dim,
        drop_dim=m.drop_dim,
        backbone=m.backbone,
    )


def build_model(cfg: Config, num_classes: int) -> BDBNet:
    return BDBNet(num_classes=num_classes, pretrained=cfg.model.pretrained, **model_kwargs(cfg))


def build_criterion(cfg: Config) -> BDBLoss:
    c = cfg.loss
    return BDBLoss(c.triplet_margin, c.label_smoothing, c.triplet_weight, c.softmax_weight)


def build_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(
        params, lr=o.lr, momentum=0.9, weight_decay=o.weight_decay, nesterov=o.nesterov
    )


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, cfg: Config
) -> torch.optim.lr_scheduler.LambdaLR:
    o = cfg.optim
    return build_scheduler(optimizer, o.warmup_epochs, o.warmup_step, o.milestones, o.gamma)


def build_train_loader(splits: DatasetSplits, cfg: Config) -> DataLoader:
    """P x K batches of augmented training images.

    The loader has its own generator (reseeded per epoch by the trainer) so worker seeds do not
    depend on the global RNG, and workers are not persistent, so a resumed epoch sees exactly
    the augmentation of an uninterrupted one.
    """
    d = cfg.data
    dataset = ImageDataset(splits.train, build_train_transform(d), cache=d.cache_images)
    sampler = PKBatchSampler(
        dataset.pids, d.num_identities, d.num_instances, seed=cfg.train.seed, drop_last=True
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=d.workers,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator(),
    )

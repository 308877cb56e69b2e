"""The Batch DropBlock Network (BDB): a global branch and a feature-dropping branch."""

from __future__ import annotations

import os
from typing import Literal

import torch
from torch import nn

from bdbnet.models.backbone import build_resnet, extra_block, feature_channels, resnet_stem
from bdbnet.models.batch_drop import BatchDropBlock, DropMode
from bdbnet.models.contract import TrainOutput
from bdbnet.models.init import init_head
from bdbnet.models.preprocess import Preprocessing
from bdbnet.models.registry import register_model

Branches = Literal["both", "global", "drop"]


#: What BDB's training forward returns (the contract's :class:`TrainOutput`).
BDBTrainOutput = TrainOutput


@register_model("bdb")
class BDBNet(nn.Module):
    """Batch DropBlock Network (Dai et al., ICCV 2019), faithful to the official code.

    ResNet-50 (last stride 1) up to layer4, then
      * global branch: global avg-pool -> 1x1 conv 2048->512 (+bias) -> BN -> ReLU -> classifier;
      * dropping branch: an extra Bottleneck(2048, 512) -> Batch DropBlock -> global max-pool ->
        Linear 2048->1024 -> BN1d -> ReLU -> classifier.
    In eval mode the output is the concatenation of the branch embeddings (512 + 1024 = 1536-d).

    Args:
        num_classes: Training identities; 0 builds no classifiers (triplet-only training).
        pretrained: ``"imagenet"``, a path to a ResNet-50 state dict, or ``None``.
        drop_height_ratio, drop_width_ratio: Size of the dropped block (re-ID 0.3 x 1.0,
            metric learning 0.5 x 0.5).
        drop_mode: ``"batch"`` (BDB), ``"sample"`` (per-sample DropBlock) or ``"none"``.
        branches: ``"both"``, or ``"global"`` / ``"drop"`` for the single-branch ablations.
        last_stride: Stride of layer4 (1 as in the paper).
        backbone: ``"resnet50"`` (the paper); ``"resnet18"``/``"resnet34"`` give a lighter
            network of the same design (512-channel maps, BasicBlock extra block) for quick
            experiments on small hardware.

    Example:
        >>> model = BDBNet(num_classes=751, pretrained=None).eval()
        >>> model(torch.randn(1, 3, 384, 128)).shape
        torch.Size([1, 1536])
    """

    def __init__(
        self,
        num_classes: int,
        pretrained: str | os.PathLike[str] | None = "imagenet",
        drop_height_ratio: float = 0.3,
        drop_width_ratio: float = 1.0,
        drop_mode: DropMode = "batch",
        branches: Branches = "both",
        last_stride: int = 1,
        global_dim: int = 512,
        drop_dim: int = 1024,
        backbone: str = "resnet50",
    ) -> None:
        super().__init__()
        if branches not in ("both", "global", "drop"):
            raise ValueError(f"branches must be 'both', 'global' or 'drop', got {branches!r}")
        self.num_classes = num_classes
        self.branches = branches
        self.backbone_name = backbone
        resnet = build_resnet(backbone, pretrained, last_stride=last_stride)
        channels = feature_channels(resnet)
        self.backbone = resnet_stem(resnet)
        self.layer4 = resnet.layer4
        self.use_global = branches in ("both", "global")
        self.use_drop = branches in ("both", "drop")

        if self.use_global:
            self.global_reduction = nn.Sequential(
                nn.Conv2d(channels, global_dim, kernel_size=1, bias=True),
                nn.BatchNorm2d(global_dim),
                nn.ReLU(inplace=True),
            )
            self.global_reduction.apply(init_head)
            self.global_classifier = self._classifier(global_dim, num_classes)
        if self.use_drop:
            # Default PyTorch init for the extra block, as in the official code.
            self.drop_bottleneck = extra_block(resnet)
            self.batch_drop = BatchDropBlock(drop_height_ratio, drop_width_ratio, drop_mode)
            self.drop_reduction = nn.Sequential(
                nn.Linear(channels, drop_dim, bias=True),
                nn.BatchNorm1d(drop_dim),
                nn.ReLU(inplace=True),
            )
            self.drop_reduction.apply(init_head)
            self.drop_classifier = self._classifier(drop_dim, num_classes)
        self.feature_dim = global_dim * self.use_global + drop_dim * self.use_drop
        # ResNet's total stride with the last stride 1 (2 when it is 2: 32).
        self.input_stride = 16 * last_stride
        # The re-ID recipe's test preprocessing until a config or a file says otherwise.
        self.preprocess = Preprocessing((384, 128))

    @staticmethod
    def _classifier(dim: int, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        head = nn.Linear(dim, num_classes)
        head.apply(init_head)
        return head

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-branch embeddings (after reduction, BN and ReLU), as used by the losses."""
        x = self.layer4(self.backbone(x))
        features = {}
        if self.use_global:
            pooled = torch.mean(x, dim=(2, 3), keepdim=True)
            features["global"] = self.global_reduction(pooled).flatten(1)
        if self.use_drop:
            dropped = self.batch_drop(self.drop_bottleneck(x))
            pooled = torch.amax(dropped, dim=(2, 3))
            features["drop"] = self.drop_reduction(pooled)
        return features

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spatial maps behind each branch's embedding, for activation pictures (Figure 1).

        ``"global"``: the layer4 output the global branch average-pools; ``"drop"``: the extra
        bottleneck's output the dropping branch max-pools (before Batch DropBlock, which is the
        identity in eval mode). Both are ``(B, 2048, H/16, W/16)`` with last stride 1. Adds no
        parameters and leaves :meth:`forward` unchanged.
        """
        x = self.layer4(self.backbone(x))
        maps = {}
        if self.use_global:
            maps["global"] = x
        if self.use_drop:
            maps["drop"] = self.drop_bottleneck(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor | BDBTrainOutput:
        features = self.forward_features(x)
        if not self.training:
            return torch.cat(list(features.values()), dim=1)
        heads = {"global": "global_classifier", "drop": "drop_classifier"}
        logits = {
            name: getattr(self, heads[name])(feat)
            for name, feat in features.items()
            if self.num_classes > 0
        }
        return BDBTrainOutput(features=features, logits=logits)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Backbone vs. new layers, for optimisers that treat them differently."""
        backbone = list(self.backbone.parameters()) + list(self.layer4.parameters())
        ids = {id(p) for p in backbone}
        return {"backbone": backbone, "heads": [p for p in self.parameters() if id(p) not in ids]}

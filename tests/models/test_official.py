"""Loading official BDB checkpoints: built here from an independent re-statement of the
official ``BFE`` module layout (key names from the reference file in tests/data)."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.resnet import Bottleneck

from bdbnet.models import (
    BDBNet,
    CheckpointError,
    convert_official_state_dict,
    load_official_checkpoint,
    safe_torch_load,
    to_official_state_dict,
)

REFERENCE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "official_bdb_state_dict.json").read_text()
)


class OfficialStyleBFE(nn.Module):
    """The official network's structure and eval forward (global avg-pool + conv reduction;
    extra bottleneck + max-pool + linear reduction; concatenation)."""

    def __init__(self, num_classes: int):
        super().__init__()
        r = resnet50()
        self.backbone = nn.Sequential(
            r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3
        )
        r.layer4[0].conv2.stride = (1, 1)
        r.layer4[0].downsample[0].stride = (1, 1)
        self.res_part = r.layer4
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.global_softmax = nn.Linear(512, num_classes)
        self.global_reduction = nn.Sequential(
            nn.Conv2d(2048, 512, 1), nn.BatchNorm2d(512), nn.ReLU()
        )
        self.res_part2 = Bottleneck(2048, 512)
        self.part_maxpool = nn.AdaptiveMaxPool2d(1)
        self.reduction = nn.Sequential(nn.Linear(2048, 1024), nn.BatchNorm1d(1024), nn.ReLU())
        self.softmax = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.res_part(self.backbone(x))
        glob = self.global_reduction(self.global_avgpool(x)).squeeze()
        part = self.reduction(self.part_maxpool(self.res_part2(x)).squeeze())
        return torch.cat([glob, part], 1)


def randomise(module: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.05)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    net = OfficialStyleBFE(751)
    randomise(net)
    net.eval()
    folder = tmp_path_factory.mktemp("official")
    plain = folder / "market_953.pth.tar"
    torch.save({"state_dict": net.state_dict(), "epoch": 400}, plain)
    wrapped = folder / "dataparallel.pth.tar"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 1}, wrapped
    )
    return net, plain, wrapped


def test_restated_layout_matches_the_reference_keys(official):
    net, _, _ = official
    expected = {k["name"]: tuple(k["shape"]) for k in REFERENCE["keys"]}
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected


def test_our_keys_map_one_to_one_onto_the_reference():
    ours = to_official_state_dict(BDBNet(751, pretrained=None))
    expected = {k["name"]: tuple(k["shape"]) for k in REFERENCE["keys"]}
    assert {k: tuple(v.shape) for k, v in ours.items()} == expected
    assert REFERENCE["parameter_count"]["total_with_751_classes"] == 32_275_998


@pytest.mark.parametrize("which", [1, 2])
def test_loaded_model_reproduces_the_official_output(official, which):
    net, *paths = official
    model = load_official_checkpoint(paths[which - 1])
    assert not model.training and model.num_classes == 751
    x = torch.randn(2, 3, 384, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)


def test_batch_size_one_works_where_the_official_forward_does_not(official):
    net, plain, _ = official
    model = load_official_checkpoint(plain)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 384, 128)).shape == (1, 1536)
        with pytest.raises(ValueError, match="expected 2D or 3D input"):  # .squeeze() drops B
            net(torch.randn(1, 3, 384, 128))


def test_conversion_round_trip():
    model = BDBNet(10, pretrained=None)
    back = convert_official_state_dict(to_official_state_dict(model))
    assert back.keys() == model.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


def test_unexpected_keys_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="unexpected keys"):
        convert_official_state_dict({"classifier.weight": torch.zeros(1)})
    path = tmp_path / "bad.pth.tar"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="expected"):
        load_official_checkpoint(path)


CALLS: list[str] = []


def run_payload(command: str) -> None:
    CALLS.append(command)


class Payload:
    """Unpickling this calls a function (here a harmless recorder; in an attack, os.system):
    exactly what weights_only must refuse."""

    def __reduce__(self):
        return (run_payload, ("pwned",))


def test_a_checkpoint_that_carries_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "epoch": 1, "x": Payload()}, path)
    CALLS.clear()
    with pytest.raises(CheckpointError, match="refused to load"):
        load_official_checkpoint(path)
    with pytest.raises(CheckpointError, match=str(path.name)):
        safe_torch_load(path)
    assert CALLS == []
    # The payload is real: an unsafe loader runs it.
    torch.load(path, weights_only=False)
    assert CALLS == ["pwned"]


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth.tar"):
        load_official_checkpoint(tmp_path / "nope.pth.tar")
    bad = tmp_path / "corrupt.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth.tar"):
        load_official_checkpoint(bad)

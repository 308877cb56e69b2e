import pytest
import torch
from torchvision.models import resnet50

from bdbnet.models import backbone
from bdbnet.models.backbone import (
    PretrainedWeightsError,
    build_resnet,
    build_resnet50,
    extra_block,
    feature_channels,
    imagenet_weights_path,
    load_state_dict_file,
)


def test_last_stride_is_applied_without_changing_parameters():
    net = build_resnet50(None, last_stride=1)
    assert net.layer4[0].conv2.stride == (1, 1)
    assert net.layer4[0].downsample[0].stride == (1, 1)
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in resnet50().parameters()
    )
    assert build_resnet50(None, last_stride=2).layer4[0].conv2.stride == (2, 2)


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    torch.manual_seed(3)
    state = resnet50().state_dict()
    path = tmp_path_factory.mktemp("w") / "resnet50.pth"
    torch.save(state, path)
    return path, state


def test_pretrained_from_a_local_file(resnet_file):
    path, state = resnet_file
    net = build_resnet50(path)
    for key in ("conv1.weight", "layer3.5.bn2.running_var", "layer4.0.conv2.weight"):
        assert torch.equal(net.state_dict()[key], state[key])


def test_wrapped_state_dicts_are_accepted(resnet_file, tmp_path):
    _, state = resnet_file
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state, "epoch": 3}, wrapped)
    assert torch.equal(load_state_dict_file(wrapped)["conv1.weight"], state["conv1.weight"])


def test_a_non_resnet_file_is_rejected_clearly(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a torchvision ResNet-50 state dict"):
        build_resnet50(path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_resnet50(tmp_path / "missing.pth")


def test_imagenet_uses_the_hub_cache(resnet_file, tmp_path, monkeypatch):
    path, state = resnet_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = imagenet_weights_path()
    assert cached == tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    net = build_resnet50("imagenet")
    assert torch.equal(net.state_dict()["conv1.weight"], state["conv1.weight"])


def test_offline_without_cache_explains_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(backbone.IMAGENET_WEIGHTS.__class__, "get_state_dict", offline)
    with pytest.raises(PretrainedWeightsError) as err:
        build_resnet50("imagenet")
    message = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in message
    assert "download.pytorch.org" in message and "pretrained=None" in message


@pytest.mark.parametrize(("arch", "channels"), [("resnet18", 512), ("resnet34", 512)])
def test_light_backbones_get_last_stride_one(arch, channels):
    net = build_resnet(arch, None, last_stride=1)
    assert net.layer4[0].conv1.stride == (1, 1)
    assert net.layer4[0].downsample[0].stride == (1, 1)
    assert feature_channels(net) == channels
    x = torch.randn(1, 3, 64, 32)
    stem = torch.nn.Sequential(*(getattr(net, n) for n in ("conv1", "bn1", "relu", "maxpool")))
    maps = net.layer4(net.layer3(net.layer2(net.layer1(stem(x)))))
    assert maps.shape == (1, channels, 4, 2)  # total stride 16
    block = extra_block(net)
    assert block(maps).shape == maps.shape


def test_unknown_backbone_is_named():
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'; choose one of resnet50"):
        build_resnet("vgg16", None)

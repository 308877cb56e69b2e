import pytest
import torch
from conftest import assert_rows_close
from torchvision.models.resnet import Bottleneck

from bdbnet.models import BDBNet, BDBTrainOutput


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BDBNet(num_classes=751, pretrained=None)


def test_parameter_count_equals_the_official_model(model):
    assert sum(p.numel() for p in model.parameters()) == 32_275_998
    heads = sum(p.numel() for n, p in model.named_parameters() if "classifier" in n)
    assert sum(p.numel() for p in model.parameters()) - heads == 31_120_960


def test_eval_output_is_the_1536_d_concatenation(model):
    model.eval()
    x = torch.randn(3, 3, 384, 128)
    with torch.no_grad():
        out = model(x)
        parts = model.forward_features(x)
    assert out.shape == (3, 1536)
    assert torch.equal(out, torch.cat([parts["global"], parts["drop"]], dim=1))
    assert parts["global"].shape == (3, 512) and parts["drop"].shape == (3, 1024)


def test_batch_size_one_and_any_size_divisible_by_16(model):
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 384, 128)).shape == (1, 1536)
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1536)
        assert model(torch.randn(1, 3, 64, 32)).shape == (1, 1536)


def test_last_stride_one_gives_a_24x8_map(model):
    with torch.no_grad():
        fmap = model.layer4(model.backbone(torch.randn(1, 3, 384, 128)))
    assert fmap.shape == (1, 2048, 24, 8)


def test_training_output_has_features_and_logits_per_branch(model):
    model.train()
    out = model(torch.randn(4, 3, 64, 32))
    assert isinstance(out, BDBTrainOutput)
    assert {k: tuple(v.shape) for k, v in out.features.items()} == {
        "global": (4, 512),
        "drop": (4, 1024),
    }
    assert {k: tuple(v.shape) for k, v in out.logits.items()} == {
        "global": (4, 751),
        "drop": (4, 751),
    }
    model.eval()


def test_batch_drop_applies_only_in_training(model):
    drop = model.batch_drop
    assert (drop.height_ratio, drop.width_ratio, drop.mode) == (0.3, 1.0, "batch")
    model.eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_head_initialisation_follows_the_official_code():
    torch.manual_seed(0)
    m = BDBNet(num_classes=500, pretrained=None)
    for bn in (m.global_reduction[1], m.drop_reduction[1]):
        assert abs(bn.weight.mean().item() - 1.0) < 0.01
        assert 0.01 < bn.weight.std().item() < 0.03
        assert torch.count_nonzero(bn.bias) == 0
    for layer in (
        m.global_reduction[0],
        m.drop_reduction[0],
        m.global_classifier,
        m.drop_classifier,
    ):
        assert torch.count_nonzero(layer.bias) == 0
    # Kaiming normal: std = sqrt(2 / fan); linear uses fan_out, conv fan_in.
    assert m.drop_classifier.weight.std().item() == pytest.approx((2 / 500) ** 0.5, rel=0.05)
    assert m.drop_reduction[0].weight.std().item() == pytest.approx((2 / 1024) ** 0.5, rel=0.05)
    assert m.global_reduction[0].weight.std().item() == pytest.approx((2 / 2048) ** 0.5, rel=0.05)
    # The extra bottleneck keeps PyTorch's default init:
    # kaiming_uniform(a=sqrt(5)), i.e. bound 1/sqrt(fan_in).
    assert isinstance(m.drop_bottleneck, Bottleneck)
    w = m.drop_bottleneck.conv1.weight
    assert w.abs().max().item() <= 1 / 2048**0.5 + 1e-6
    assert w.abs().max().item() > 0.9 / 2048**0.5


@pytest.mark.parametrize(
    ("branches", "dim", "keys"),
    [("global", 512, {"global"}), ("drop", 1024, {"drop"}), ("both", 1536, {"global", "drop"})],
)
def test_single_branch_ablations(branches, dim, keys):
    m = BDBNet(num_classes=10, pretrained=None, branches=branches)
    assert m.feature_dim == dim
    m.train()
    out = m(torch.randn(2, 3, 64, 32))
    assert set(out.features) == keys == set(out.logits)
    m.eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 64, 32)).shape == (1, dim)


def test_resnet18_backbone_keeps_the_design():
    # 512-channel maps feed the same heads: 512-d global + 1024-d dropping embedding.
    m = BDBNet(num_classes=10, pretrained=None, backbone="resnet18")
    assert m.global_reduction[0].in_channels == 512
    assert m.drop_reduction[0].in_features == 512
    assert type(m.drop_bottleneck).__name__ == "BasicBlock"
    out = m.train()(torch.randn(4, 3, 64, 32))
    assert out.features["drop"].shape == (4, 1024) and out.logits["global"].shape == (4, 10)
    with torch.no_grad():
        assert m.eval()(torch.randn(1, 3, 64, 32)).shape == (1, 1536)
    # ResNet-18 trunk 11,176,512 + BasicBlock(512, 512) 4,720,640 + conv 512->512 and BN 263,680
    # + linear 512->1024 and BN1d 527,360 + classifiers 5,130 + 10,250.
    assert sum(p.numel() for p in m.parameters()) == 16_703_572


def test_no_classifier_when_num_classes_is_zero():
    m = BDBNet(num_classes=0, pretrained=None).train()
    out = m(torch.randn(2, 3, 64, 32))
    assert out.logits == {}
    assert set(out.features) == {"global", "drop"}


def test_channels_last_matches_contiguous(model):
    model.eval()
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        ref = model(x)
        cl = model.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last)
        )
    model.to(memory_format=torch.contiguous_format)
    assert_rows_close(cl, ref)  # other kernels: equal up to float noise, relative to scale


def test_bf16_autocast_on_cpu(model):
    model.eval()
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.shape == ref.shape
    cos = torch.nn.functional.cosine_similarity(low.float(), ref, dim=1)
    assert cos.min() > 0.98


@pytest.mark.cuda
def test_fp16_autocast_on_gpu():
    m = BDBNet(num_classes=10, pretrained=None).cuda().eval()
    x = torch.randn(2, 3, 128, 64, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        assert m(x).shape == (2, 1536)


def test_rejects_unknown_branches():
    with pytest.raises(ValueError, match="branches"):
        BDBNet(num_classes=3, pretrained=None, branches="left")


def test_parameter_groups_split_backbone_and_heads(model):
    groups = model.parameter_groups()
    n_backbone = sum(p.numel() for p in groups["backbone"])
    n_heads = sum(p.numel() for p in groups["heads"])
    assert n_backbone + n_heads == 32_275_998
    assert n_backbone == sum(p.numel() for p in model.backbone.parameters()) + sum(
        p.numel() for p in model.layer4.parameters()
    )

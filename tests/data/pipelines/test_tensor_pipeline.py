"""The tensor data path (data.pipeline=tensor): bit-equal to the PIL path without randomness,
the augmentation's distributions, determinism, and a training run through it."""

import pytest
import torch
from conftest import tiny_config
from torchvision.transforms.v2 import functional as F

from bdbnet.config import load_config
from bdbnet.data import build_dataset
from bdbnet.data.pipelines.pil import LoaderBatchSource
from bdbnet.data.pipelines.source import BatchSource
from bdbnet.data.pipelines.tensor import TensorBatchSource, TensorRecipe, augment, decode_split
from bdbnet.data.samplers import PKBatchSampler
from bdbnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, reid_test_transform
from bdbnet.engine.builders import build_batch_source
from bdbnet.engine.trainer import Trainer
from bdbnet.errors import ConfigError
from bdbnet.models.preprocess import Preprocessing
from bdbnet.runtime.distributed import DistContext


def epoch_batches(source, epoch):
    source.set_epoch(epoch)
    return [(images.clone(), labels.clone()) for images, labels in source]


def normalise(u8: torch.Tensor) -> torch.Tensor:
    """What the PIL path does after ToImage (torchvision's functions, so bit-equal)."""
    return F.normalize(F.to_dtype(u8, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)


def source_over(images: torch.Tensor, recipe: TensorRecipe, ids: int = 8, k: int = 4, seed=0):
    pids = [i // k for i in range(images.shape[0])]
    sampler = PKBatchSampler(pids, num_identities=ids, num_instances=k, seed=seed)
    return TensorBatchSource(images, pids, sampler, recipe, seed=seed)


@pytest.mark.parametrize(
    "overrides",
    [
        ("data.flip=false", "data.cutout_prob=0"),
        # crop = resize: the random crop is the whole image (deterministic)
        ("data.recipe=retrieval", "data.resize=32", "data.width=32", "data.flip=false"),
    ],
    ids=["reid", "retrieval"],
)
def test_without_randomness_the_batches_are_bit_equal_to_the_pil_path(tiny_synthetic, overrides):
    splits = build_dataset("synthetic", tiny_synthetic)
    overrides = (*overrides, "data.erasing_prob=0")
    pil = build_batch_source(splits, tiny_config(*overrides), DistContext())
    tensor = build_batch_source(
        splits, tiny_config(*overrides, "data.pipeline=tensor"), DistContext()
    )
    assert isinstance(pil, LoaderBatchSource)
    assert isinstance(tensor, TensorBatchSource) and isinstance(tensor, BatchSource)
    assert len(pil) == len(tensor) and tensor.state_dict() == {}
    for epoch in (0, 1):
        for (a, la), (b, lb) in zip(epoch_batches(pil, epoch), epoch_batches(tensor, epoch)):
            assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
            assert torch.equal(a, b) and torch.equal(la, lb)


def test_decoded_pixels_equal_the_pil_resize(tiny_synthetic):
    from bdbnet.data.image_dataset import ImageDataset
    from bdbnet.data.transforms import reid_test_transform

    splits = build_dataset("synthetic", tiny_synthetic)
    recipe = TensorRecipe((48, 32), flip_p=0)
    decoded = decode_split(splits.train[:6], recipe, threads=2)
    assert decoded.shape == (6, 3, 48, 32) and decoded.dtype == torch.uint8
    reference = ImageDataset(splits.train[:6], reid_test_transform((48, 32)))
    for i in range(6):
        assert torch.equal(normalise(decoded[i]), reference[i][0])
    assert torch.equal(decode_split(splits.train[:6], recipe, threads=1), decoded)


def test_flip_applies_to_about_half_the_items():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 8, 6), dtype=torch.uint8, generator=gen)
    source = source_over(images, TensorRecipe((8, 6), flip_p=0.5))
    flipped = total = 0
    for epoch in range(10):
        batches = epoch_batches(source, epoch)
        for (batch, _), indices in zip(batches, source.sampler, strict=True):
            for out, i in zip(batch, indices):
                plain, mirror = normalise(images[i]), normalise(images[i].flip(-1))
                is_flipped = torch.equal(out, mirror)
                assert is_flipped or torch.equal(out, plain)
                flipped += is_flipped
                total += 1
    assert total == 320 and 0.42 < flipped / total < 0.58


def test_cutout_zeroes_a_64x64_square_inside_the_image_with_probability_p():
    images = torch.full((32, 3, 96, 80), 200, dtype=torch.uint8)
    source = source_over(images, TensorRecipe((96, 80), flip_p=0, cutout_p=0.5, cutout_size=64))
    cut = total = 0
    tops, lefts = set(), set()
    for epoch in range(8):
        for batch, _ in epoch_batches(source, epoch):
            for out in batch:
                zero = out == 0
                assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
                total += 1
                if zero.any():
                    cut += 1
                    rows = zero[0].any(1).nonzero().flatten()
                    cols = zero[0].any(0).nonzero().flatten()
                    assert len(rows) == len(cols) == 64 and int(zero[0].sum()) == 64 * 64
                    assert rows[-1] - rows[0] == 63 and cols[-1] - cols[0] == 63
                    tops.add(int(rows[0]))
                    lefts.add(int(cols[0]))
    assert total == 256 and 0.4 < cut / total < 0.6
    assert min(tops) >= 0 and max(tops) <= 96 - 64 and len(tops) > 10
    assert min(lefts) >= 0 and max(lefts) <= 80 - 64 and len(lefts) > 5


def test_cutout_larger_than_the_image_leaves_it_alone_like_the_pil_cutout():
    images = torch.full((32, 3, 32, 16), 200, dtype=torch.uint8)
    source = source_over(images, TensorRecipe((32, 16), flip_p=0, cutout_p=1.0, cutout_size=64))
    for batch, _ in epoch_batches(source, 0):
        assert not (batch == 0).any()


def test_random_erasing_and_crop_of_the_retrieval_recipe():
    images = torch.full((32, 3, 40, 40), 200, dtype=torch.uint8)
    recipe = TensorRecipe((40, 40), flip_p=0.5, pad_to_square=True, crop=(32, 32), erasing_p=0.5)
    source = source_over(images, recipe)
    erased = total = 0
    for epoch in range(6):
        for batch, _ in epoch_batches(source, epoch):
            assert batch.shape[-2:] == (32, 32)
            for out in batch:
                zero = out[0] == 0
                total += 1
                if zero.any():
                    erased += 1
                    rows = zero.any(1).nonzero().flatten()
                    cols = zero.any(0).nonzero().flatten()
                    assert int(zero.sum()) == len(rows) * len(cols)  # one rectangle
                    assert len(rows) < 32 and len(cols) < 32
                    assert 0.01 * 32 * 32 <= int(zero.sum()) <= 0.45 * 32 * 32
    assert 0.38 < erased / total < 0.62


def test_batches_are_a_function_of_seed_and_epoch_and_ranks_share_them(tiny_synthetic):
    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config("data.pipeline=tensor", "data.cutout_prob=0.5")
    source = build_batch_source(splits, cfg, DistContext())
    torch.manual_seed(0)
    first = epoch_batches(source, 1)
    torch.manual_seed(123)  # the global generator does not drive the augmentation
    again = epoch_batches(source, 1)
    resumed = epoch_batches(build_batch_source(splits, cfg, DistContext()), 1)
    for (a, la), (b, lb), (c, lc) in zip(first, again, resumed, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
        assert torch.equal(la, lb) and torch.equal(la, lc)
    other = epoch_batches(source, 2)
    assert any(not torch.equal(a, b) for (a, _), (b, _) in zip(first, other))
    assert first[0][0].shape == (8, 3, 32, 16)
    shares = [
        epoch_batches(build_batch_source(splits, cfg, DistContext(rank, 2)), 1) for rank in range(2)
    ]
    for step, (images, labels) in enumerate(first):
        assert torch.equal(torch.cat([s[step][0] for s in shares]), images)
        assert torch.equal(torch.cat([s[step][1] for s in shares]), labels)


def test_a_short_training_run_through_the_tensor_pipeline(tiny_synthetic, tmp_path):
    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config("data.pipeline=tensor", "data.cache=device", "optim.epochs=1")
    assert cfg.model.backbone == "resnet18"
    trainer = Trainer.from_config(cfg, splits, tmp_path)
    assert isinstance(trainer.batches, TensorBatchSource)
    trainer.fit()
    assert (tmp_path / "last.pt").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.pipeline=dali", "data.pipeline must be one of pil, tensor"),
        ("data.cache=disk", "data.cache must be one of none, ram, device"),
        ("data.cache=device", "data.cache=device needs data.pipeline=tensor"),
    ],
)
def test_pipeline_keys_are_validated(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("synthetic-demo", overrides=[override])


@pytest.mark.cuda
@pytest.mark.parametrize("cache", ["ram", "device"])
def test_on_the_gpu_augmentation_never_waits_for_the_host_and_matches_the_cpu(cache):
    images = torch.randint(0, 256, (32, 3, 96, 80), dtype=torch.uint8)
    recipe = TensorRecipe((96, 80), flip_p=0, cutout_p=0, cutout_size=64)
    cpu = epoch_batches(source_over(images, recipe), 0)
    stored = images.cuda() if cache == "device" else images
    pids = [i // 4 for i in range(32)]
    sampler = PKBatchSampler(pids, num_identities=8, num_instances=4)
    gpu = TensorBatchSource(stored, pids, sampler, recipe, device="cuda")
    assert torch.equal(epoch_batches(gpu, 0)[0][0].cpu(), cpu[0][0])
    gpu.recipe = TensorRecipe((96, 80), flip_p=0.5, cutout_p=0.5, cutout_size=64)
    gpu.set_epoch(1)
    batch = gpu.gather(next(iter(gpu.sampler)))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = augment(batch, gpu.recipe, gpu.step_generator(0), 32, 0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device.type == "cuda" and out.shape == (32, 3, 96, 80)


def test_feature_extraction_from_pre_decoded_images_equals_the_pil_path(tiny_synthetic):
    from conftest import calibrated_bdbnet

    from bdbnet.data.transforms import reid_test_transform
    from bdbnet.inference.embed import extract_features

    splits = build_dataset("synthetic", tiny_synthetic)
    records = splits.query[:10]
    model = calibrated_bdbnet()
    device = torch.device("cpu")
    pil = extract_features(model, records, reid_test_transform((32, 16)), device, 4)
    decoded = decode_split(records, TensorRecipe((32, 16), flip_p=0))
    tensor = extract_features(model, decoded, None, device, 4, progress=False)
    assert tensor.shape == pil.shape == (10, pil.shape[1])
    assert torch.equal(tensor, pil)
    flipped = extract_features(model, decoded, None, device, 4, flip=True, progress=False)
    pil_flipped = extract_features(model, records, reid_test_transform((32, 16)), device, 4, True)
    assert torch.equal(flipped, pil_flipped)
    with pytest.raises(ValueError, match="uint8"):
        extract_features(model, decoded.float(), None, device)


def test_evaluation_through_the_tensor_path_equals_the_pil_path(tiny_synthetic):
    """``data.pipeline=tensor`` evaluates on decoded uint8 batches normalised on the device:
    the same features, so the same metrics, as the DataLoader path."""
    from conftest import calibrated_bdbnet

    from bdbnet.inference.dataset_eval import evaluate_model
    from bdbnet.inference.embed import extract_features

    splits = build_dataset("synthetic", tiny_synthetic)
    model = calibrated_bdbnet(num_classes=splits.num_train_pids, backbone="resnet18")
    device = torch.device("cpu")
    pil_cfg = tiny_config()
    tensor_cfg = tiny_config("data.pipeline=tensor")
    pil = evaluate_model(model, splits, pil_cfg, device, progress=False)
    tensor = evaluate_model(model, splits, tensor_cfg, device, progress=False)
    assert tensor.metrics == pil.metrics
    # decoded in threads, batches of 4 (as the loader's): the PIL path's features
    records = splits.gallery[:10]
    transform = reid_test_transform((pil_cfg.data.height, pil_cfg.data.width))
    expected = extract_features(model, records, transform, device, 4, progress=False)
    recipe = TensorRecipe.from_preprocessing(Preprocessing.from_data_config(tensor_cfg.data))
    got = extract_features(model, records, None, device, 4, progress=False, decode=recipe)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("data.recipe=retrieval", "data.test_resize=24"),
        ("data.recipe=retrieval", "data.test_resize=24", "data.test_pad_to_square=false"),
    ],
    ids=["reid", "retrieval", "retrieval without padding (CARS196)"],
)
def test_the_test_recipe_decodes_what_the_test_transform_gives(tiny_synthetic, overrides):
    """What evaluation (``data.pipeline=tensor``) and ``FeatureExtractor`` feed the network:
    the test transform's own pixels, normalised on the device to the same bits."""
    from bdbnet.data.images import read_image
    from bdbnet.data.pipelines.decode import decode_file
    from bdbnet.data.pipelines.tensor import channel_statistics, normalise
    from bdbnet.data.transforms import build_test_transform

    cfg = tiny_config(*overrides).data
    recipe = TensorRecipe.from_preprocessing(Preprocessing.from_data_config(cfg))
    transform = build_test_transform(cfg)
    statistics = channel_statistics(recipe.mean, recipe.std, torch.device("cpu"))
    for record in build_dataset("synthetic", tiny_synthetic).query[:4]:
        decoded = decode_file(str(record.path), recipe.prepare)
        expected = transform(read_image(str(record.path))).as_subclass(torch.Tensor)
        assert decoded.shape[1:] == expected.shape[1:]
        assert torch.equal(normalise(decoded[None], *statistics)[0], expected)

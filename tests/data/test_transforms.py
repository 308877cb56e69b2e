import torch
from PIL import Image
from torchvision.transforms import v2

from bdbnet.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Cutout,
    PadToSquare,
    RandomErasing,
    reid_test_transform,
    reid_train_transform,
    retrieval_test_transform,
    retrieval_train_transform,
)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def normalised(rgb: tuple[int, int, int]) -> torch.Tensor:
    """The (3, 1, 1) value a uniform image of colour ``rgb`` has after ToDtype + Normalize."""
    return (torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1) / 255 - MEAN) / STD


def zero_box(img: torch.Tensor) -> tuple[int, int, int, int]:
    zero = (img == 0).all(dim=0)
    rows = torch.nonzero(zero.any(dim=1)).flatten()
    cols = torch.nonzero(zero.any(dim=0)).flatten()
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


# ---------------------------------------------------------------- Cutout


def test_cutout_p1_zeroes_exactly_one_square_inside_the_image():
    img = torch.full((3, 20, 30), 2.0)
    torch.manual_seed(0)
    out = Cutout(p=1.0, size=5)(img)
    assert torch.equal(img, torch.full((3, 20, 30), 2.0))  # input untouched
    assert int((out == 0).sum()) == 3 * 5 * 5
    top, bottom, left, right = zero_box(out)
    assert (bottom - top, right - left) == (5, 5)
    assert top >= 0 and bottom <= 20 and left >= 0 and right <= 30
    assert torch.equal(out[:, top:bottom, left:right], torch.zeros(3, 5, 5))
    rest = torch.ones(20, 30, dtype=torch.bool)
    rest[top:bottom, left:right] = False
    assert bool((out[:, rest] == 2.0).all())


def test_cutout_square_is_never_clipped_and_reaches_every_edge():
    cut = Cutout(p=1.0, size=5)
    img = torch.ones(1, 8, 9)
    tops, lefts = set(), set()
    torch.manual_seed(1)
    for _ in range(300):
        out = cut(img)
        assert int((out == 0).sum()) == 25  # always the full square, never cut by the border
        top, bottom, left, right = zero_box(out)
        assert (bottom - top, right - left) == (5, 5)
        tops.add(top)
        lefts.add(left)
    # all valid positions are used, including the ones touching the borders
    assert tops == set(range(0, 8 - 5 + 1))
    assert lefts == set(range(0, 9 - 5 + 1))


def test_cutout_uses_fill_value_and_batched_input():
    img = torch.ones(2, 3, 10, 10)
    torch.manual_seed(3)
    out = Cutout(p=1.0, size=4, fill=-1.5)(img)
    assert int((out == -1.5).sum()) == 2 * 3 * 16
    # the same square in every sample and channel
    assert torch.equal(out == -1.5, (out == -1.5)[:1, :1].expand_as(out))


def test_cutout_p0_is_identity():
    img = torch.rand(3, 16, 8)
    cut = Cutout(p=0.0, size=4)
    for _ in range(20):
        assert cut(img) is img


def test_cutout_probability_is_roughly_p():
    torch.manual_seed(0)
    cut = Cutout(p=0.5, size=2)
    img = torch.ones(1, 6, 6)
    applied = sum(int((cut(img) == 0).any()) for _ in range(400))
    assert 160 < applied < 240


def test_cutout_is_reproducible_with_manual_seed():
    img = torch.rand(3, 32, 16) + 0.1
    cut = Cutout(p=0.5, size=8)
    torch.manual_seed(42)
    first = [cut(img) for _ in range(10)]
    torch.manual_seed(42)
    second = [cut(img) for _ in range(10)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert len({zero_box(x) for x in first if (x == 0).any()}) > 1


def test_cutout_larger_than_image_is_a_no_op():
    img = torch.ones(3, 4, 8)
    torch.manual_seed(0)
    assert torch.equal(Cutout(p=1.0, size=9)(img), img)


def test_cutout_as_large_as_the_width_still_cuts():
    img = torch.ones(3, 10, 4)
    torch.manual_seed(0)
    out = Cutout(p=1.0, size=4)(img)
    assert int((out == 0).sum()) == 3 * 4 * 4


def test_cutout_repr():
    assert repr(Cutout(0.5, 64)) == "Cutout(p=0.5, size=64, fill=0.0)"


# ---------------------------------------------------------------- PadToSquare


def test_pad_to_square_centres_wide_image_with_black():
    img = Image.new("RGB", (5, 2), (255, 255, 255))
    out = PadToSquare()(img)
    assert out.size == (5, 5)
    assert out.mode == "RGB"
    # (5 - 2) // 2 = 1 black row on top, 2 at the bottom
    rows = [[out.getpixel((x, y)) for x in range(5)] for y in range(5)]
    black, white = [(0, 0, 0)] * 5, [(255, 255, 255)] * 5
    assert rows == [black, white, white, black, black]


def test_pad_to_square_centres_tall_image():
    img = Image.new("RGB", (2, 6), (10, 200, 30))
    out = PadToSquare()(img)
    assert out.size == (6, 6)
    cols = [out.getpixel((x, 3)) for x in range(6)]
    assert cols == [(0, 0, 0)] * 2 + [(10, 200, 30)] * 2 + [(0, 0, 0)] * 2


def test_pad_to_square_keeps_square_image_and_mode():
    img = Image.new("RGB", (4, 4), (1, 2, 3))
    assert PadToSquare()(img) is img
    grey = PadToSquare()(Image.new("L", (3, 1), 255))
    assert grey.mode == "L"
    assert [grey.getpixel((1, y)) for y in range(3)] == [0, 255, 0]


# ---------------------------------------------------------------- re-ID recipe


def test_reid_test_transform_shape_and_normalisation():
    colour = (200, 100, 50)
    out = reid_test_transform()(Image.new("RGB", (40, 90), colour))
    assert out.shape == (3, 384, 128)
    assert out.dtype == torch.float32
    assert torch.allclose(out, normalised(colour).expand(3, 384, 128), atol=1e-5)


def test_reid_test_transform_custom_size_is_height_by_width():
    out = reid_test_transform((32, 16))(Image.new("RGB", (10, 10), (0, 0, 0)))
    assert out.shape == (3, 32, 16)
    assert torch.allclose(out, normalised((0, 0, 0)).expand(3, 32, 16), atol=1e-5)


def test_reid_train_transform_shape_and_normalisation_without_cutout():
    colour = (30, 60, 90)
    tf = reid_train_transform(size=(64, 32), cutout_p=0.0)
    assert not any(isinstance(t, Cutout) for t in tf.transforms)
    out = tf(Image.new("RGB", (17, 41), colour))
    assert out.shape == (3, 64, 32)
    assert out.dtype == torch.float32
    assert torch.allclose(out, normalised(colour).expand(3, 64, 32), atol=1e-5)


def test_reid_train_transform_default_recipe_steps():
    tf = reid_train_transform()
    kinds = [type(t) for t in tf.transforms]
    assert kinds == [
        v2.Resize,
        v2.RandomHorizontalFlip,
        v2.ToImage,
        v2.ToDtype,
        v2.Normalize,
        Cutout,
    ]
    assert list(tf.transforms[0].size) == [384, 128]
    cut = tf.transforms[-1]
    assert (cut.p, cut.size, cut.fill) == (0.5, 64, 0.0)
    assert v2.RandomHorizontalFlip not in [
        type(t) for t in reid_train_transform(flip=False).transforms
    ]


def test_reid_train_cutout_comes_after_normalisation():
    colour = (200, 100, 50)
    tf = reid_train_transform(size=(48, 24), flip=False, cutout_p=1.0, cutout_size=8)
    torch.manual_seed(0)
    out = tf(Image.new("RGB", (24, 48), colour))
    assert out.shape == (3, 48, 24)
    zero = (out == 0).all(dim=0)
    assert int(zero.sum()) == 64  # the 8x8 square is exactly 0 (the mean colour)
    assert torch.allclose(
        out[:, ~zero], normalised(colour).view(3, 1).expand(3, 48 * 24 - 64), atol=1e-5
    )


def test_reid_train_flip_mirrors_the_image():
    img = Image.new("RGB", (8, 16), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 4, 16))  # left half white
    tf = reid_train_transform(size=(16, 8), flip=True, cutout_p=0.0)
    seen_left_white = set()
    torch.manual_seed(0)
    for _ in range(30):
        out = tf(img)
        seen_left_white.add(bool(out[0, 8, 0] > out[0, 8, 7]))
    assert seen_left_white == {True, False}


# ---------------------------------------------------------------- retrieval recipe


def test_retrieval_train_transform_output_is_crop_square():
    out = retrieval_train_transform()(Image.new("RGB", (300, 120), (90, 90, 90)))
    assert out.shape == (3, 224, 224)
    assert out.dtype == torch.float32


def test_retrieval_train_transform_steps():
    tf = retrieval_train_transform(resize=64, crop=56, flip=False, erasing_p=0.25)
    kinds = [type(t) for t in tf.transforms]
    assert kinds == [
        PadToSquare,
        v2.Resize,
        v2.RandomCrop,
        v2.ToImage,
        v2.ToDtype,
        v2.Normalize,
        RandomErasing,
    ]
    erase = tf.transforms[-1]
    assert (erase.p, erase.area, erase.ratio, erase.attempts, erase.fill) == (
        0.25,
        (0.02, 0.4),
        (0.3, 1 / 0.3),
        100,
        0.0,
    )
    assert tf(Image.new("RGB", (30, 70))).shape == (3, 56, 56)
    no_erase = retrieval_train_transform(erasing_p=0.0)
    assert RandomErasing not in [type(t) for t in no_erase.transforms]


def test_retrieval_test_transform_pads_then_resizes():
    # 40x20 white image -> 40x40 with 10 black rows on top and bottom -> 256x256
    out = retrieval_test_transform()(Image.new("RGB", (40, 20), (255, 255, 255)))
    assert out.shape == (3, 256, 256)
    black, white = normalised((0, 0, 0)).flatten(), normalised((255, 255, 255)).flatten()
    for y in (0, 30, 225, 255):  # inside the padding (rows < 64 or >= 192)
        assert torch.allclose(out[:, y, 128], black, atol=1e-5)
    for y in (70, 128, 185):  # inside the image
        assert torch.allclose(out[:, y, 128], white, atol=1e-5)
    assert retrieval_test_transform(224)(Image.new("RGB", (9, 31))).shape == (3, 224, 224)


def test_retrieval_test_transform_without_padding_stretches_to_the_square():
    # CARS196: 40x20 white image resized straight to 64x64, no black rows
    out = retrieval_test_transform(64, pad_to_square=False)(
        Image.new("RGB", (40, 20), (255, 255, 255))
    )
    assert out.shape == (3, 64, 64)
    white = normalised((255, 255, 255)).view(3, 1, 1)
    assert torch.allclose(out, white.expand(3, 64, 64), atol=1e-5)

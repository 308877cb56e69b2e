import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from bdbnet.data.images import UnreadableImageError
from bdbnet.data.pipelines.decode import decode_file, decoded_batches, to_uint8


def test_to_uint8_is_what_to_image_makes():
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    assert torch.equal(to_uint8(img), v2.ToImage()(img).as_subclass(torch.Tensor))


def test_decode_file_reads_and_prepares(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (12, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    got = decode_file(str(tmp_path / "a.png"), lambda im: im.resize((4, 6)))
    expected = torch.from_numpy(np.array(Image.fromarray(arr).resize((4, 6)))).permute(2, 0, 1)
    assert got.shape == (3, 6, 4) and torch.equal(got, expected)
    with pytest.raises(UnreadableImageError, match="missing.png"):
        decode_file(str(tmp_path / "missing.png"), lambda im: im)


def test_batches_keep_the_order_and_size_whatever_the_threads():
    items = list(range(11))
    decode = lambda i: torch.tensor([i])  # noqa: E731
    for threads in (1, 4):
        batches = list(decoded_batches(items, decode, batch_size=4, threads=threads))
        assert [len(b) for b in batches] == [4, 4, 3]
        assert torch.cat([t for b in batches for t in b]).tolist() == items
    assert list(decoded_batches([], decode, batch_size=4)) == []


def test_an_unreadable_item_comes_back_in_its_place_and_other_errors_propagate():
    def decode(i):
        if i == 2:
            raise UnreadableImageError("bad.jpg: not an image")
        if i == 99:
            raise KeyError("a bug")
        return torch.tensor([i])

    (batch,) = decoded_batches([1, 2, 3], decode, batch_size=3, threads=2)
    assert isinstance(batch[1], UnreadableImageError) and "bad.jpg" in str(batch[1])
    assert batch[0].item() == 1 and batch[2].item() == 3
    with pytest.raises(KeyError, match="a bug"):
        list(decoded_batches([1, 99], decode, batch_size=1))


def test_decoding_stays_a_bounded_number_of_batches_ahead():
    decoded = []
    lock = threading.Lock()

    def decode(i):
        with lock:
            decoded.append(i)
        return torch.tensor([i])

    stream = decoded_batches(list(range(40)), decode, batch_size=4, threads=2, ahead=2)
    first = next(stream)
    assert [t.item() for t in first] == [0, 1, 2, 3]
    # the first batch and at most `ahead` + 1 more were submitted, never the whole list
    assert len(decoded) <= 4 * 4
    stream.close()  # an abandoned stream cancels what it had not started
    assert len(decoded) <= 4 * 4


def test_closing_a_stream_never_waits_for_running_decodes():
    """The garbage collector may close an abandoned stream inside another thread's start-up,
    under threading's shutdown lock: joining the decoding threads there would deadlock (seen in
    the suite). Closing cancels what is queued and returns at once."""
    release = threading.Event()

    def decode(i):
        if i == 0:
            return torch.tensor([i])
        release.wait(30)  # a slow file
        return torch.tensor([i])

    stream = decoded_batches(list(range(8)), decode, batch_size=1, threads=2, ahead=3)
    assert next(stream)[0].item() == 0
    closer = threading.Thread(target=stream.close)
    closer.start()
    closer.join(5)
    alive = closer.is_alive()
    release.set()
    assert not alive, "close() waited for the running decodes"

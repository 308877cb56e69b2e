"""One decoded split per machine: two threads stand in for two ranks of one machine (the
collectives are replaced by thread barriers); tests/test_distributed.py runs it under torchrun."""

from __future__ import annotations

import logging
import threading

import pytest
import torch

from bdbnet.data import build_dataset
from bdbnet.data.pipelines import node_cache
from bdbnet.data.pipelines.decode import decode_split
from bdbnet.data.pipelines.node_cache import decode_on_node, local_world_size
from bdbnet.data.pipelines.tensor import TensorRecipe
from bdbnet.runtime.distributed import DistContext


class FakeMachine:
    """The collectives ``node_cache`` uses, for ``size`` threads acting as ranks."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sync = threading.Barrier(size, timeout=60)
        self.boxes: dict[int, object] = {}

    def barrier(self, ctx: DistContext) -> None:
        self.sync.wait()

    def all_gather_objects(self, obj, ctx: DistContext) -> list:
        self.boxes[ctx.rank] = obj
        self.sync.wait()
        out = [self.boxes[r] for r in range(self.size)]
        self.sync.wait()
        return out

    def broadcast_object(self, obj, ctx: DistContext):
        return self.all_gather_objects(obj, ctx)[0]


def run_ranks(monkeypatch, records, recipe, size: int = 2) -> list[torch.Tensor]:
    machine = FakeMachine(size)
    monkeypatch.setattr(node_cache, "process_group_ready", lambda: True)
    for name in ("barrier", "all_gather_objects", "broadcast_object"):
        monkeypatch.setattr(node_cache, name, getattr(machine, name))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(size))
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def rank(r: int) -> None:
        try:
            ctx = DistContext(rank=r, world_size=size, local_rank=r)
            results[r] = decode_on_node(records, recipe, ctx, threads=1)
        except BaseException as err:  # re-raised in the test thread
            errors.append(err)
            machine.sync.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [results[r] for r in range(size)]


@pytest.fixture(autouse=True)
def library_messages_reach_caplog(monkeypatch):
    # the command line's tests turn propagation off (show_library_messages)
    monkeypatch.setattr(logging.getLogger("bdbnet"), "propagate", True)


@pytest.fixture
def split(tiny_synthetic):
    return build_dataset("synthetic", tiny_synthetic).train[:9], TensorRecipe((32, 16))


def test_the_ranks_of_a_machine_share_one_copy_and_nothing_is_left_behind(
    split, tmp_path, monkeypatch, caplog
):
    records, recipe = split
    monkeypatch.setenv("BDBNET_SHM_DIR", str(tmp_path))
    expected = decode_split(records, recipe)
    with caplog.at_level(logging.INFO, logger="bdbnet"):
        first, second = run_ranks(monkeypatch, records, recipe)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    first[0, 0, 0, 0] ^= 0xFF  # one memory: what one rank writes, the other sees
    assert second[0, 0, 0, 0] == first[0, 0, 0, 0]
    assert list(tmp_path.iterdir()) == []  # the name is gone once both have mapped it
    assert "decoded the train split once for the 2 processes of this machine" in caplog.text


def test_without_room_in_shared_memory_each_rank_decodes_its_own_copy(
    split, tmp_path, monkeypatch, caplog
):
    records, recipe = split
    monkeypatch.setenv("BDBNET_SHM_DIR", str(tmp_path / "missing"))
    with caplog.at_level(logging.WARNING, logger="bdbnet"):
        first, second = run_ranks(monkeypatch, records, recipe)
    expected = decode_split(records, recipe)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    first[0, 0, 0, 0] ^= 0xFF
    assert second[0, 0, 0, 0] != first[0, 0, 0, 0]  # two copies
    assert "each of the 2 processes decodes its own copy" in caplog.text
    assert "missing" in caplog.text


def test_a_single_process_decodes_as_before(split, monkeypatch):
    records, recipe = split
    monkeypatch.setattr(node_cache, "barrier", None)  # never called
    got = decode_on_node(records, recipe, DistContext())
    assert torch.equal(got, decode_split(records, recipe))


def test_local_world_size_comes_from_torchrun(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert local_world_size(DistContext(0, 4)) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert local_world_size(DistContext(0, 4)) == 2

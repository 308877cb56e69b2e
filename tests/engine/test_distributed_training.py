"""DDP under torchrun on the CPU (gloo, 2 processes of 1 thread), against single-process runs.

The launches are module-scoped fixtures shared by the tests that read them, so the suite pays
for each torchrun start once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_OVERRIDES, tiny_config
from torchrun_helpers import torchrun

from bdbnet.data import build_dataset
from bdbnet.engine.trainer import Trainer
from bdbnet.inference.dataset_eval import evaluate_model
from bdbnet.models.loading import load_checkpoint, load_trained_model
from bdbnet.runtime.distributed import DistContext, gather_shards, shard_range

pytestmark = pytest.mark.slow  # torchrun launches of 2 processes

EPOCHS = 2  # 2 steps an epoch: 8 training identities, P = 4


def train_args(root: Path, output: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--dataset",
        "synthetic",
        "--root",
        str(root),
        "--preset",
        "synthetic-demo",
        "--output",
        str(output),
        *TINY_OVERRIDES,
        f"optim.epochs={EPOCHS}",
        *extra,
    ]


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def relative_distance(a: dict, b: dict) -> float:
    keys = [k for k in a if a[k].is_floating_point()]
    diff = torch.cat([(a[k] - b[k]).flatten() for k in keys]).norm()
    return float(diff / torch.cat([b[k].flatten() for k in keys]).norm())


class one_thread:
    """Single-process references run with one thread, like each torchrun worker."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


@pytest.fixture(scope="module")
def ddp_run(tiny_synthetic, tmp_path_factory):
    """2 processes x 1 replica, loss_scope=global, evaluated at the end."""
    run = tmp_path_factory.mktemp("ddp") / "run"
    done = torchrun(train_args(tiny_synthetic, run))
    assert done.returncode == 0, done.stderr[-3000:]
    return run, done


@pytest.fixture(scope="module")
def replica_run(tiny_synthetic, tmp_path_factory):
    """The same run in 1 process x 2 replicas."""
    run = tmp_path_factory.mktemp("replicas") / "run"
    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config(f"optim.epochs={EPOCHS}", "train.replicas=2")
    with one_thread():
        Trainer.from_config(cfg, splits, run).fit()
    return run


def test_ranks_take_whole_blocks_and_gathering_restores_dataset_order():
    ranks = [DistContext(r, 3) for r in range(3)]
    shards = [shard_range(10, ctx, block=3) for ctx in ranks]  # blocks 0-2, 3-5, 6-8, 9
    assert [list(s) for s in shards] == [[0, 1, 2, 3, 4, 5], [6, 7, 8], [9]]
    assert [list(shard_range(5, ctx)) for ctx in ranks] == [[0, 1], [2, 3], [4]]
    assert shard_range(0, ranks[1], block=4) == range(0, 0)
    local = torch.arange(4.0)[:, None]
    assert torch.equal(gather_shards(local, 4, DistContext()), local)  # single process


def test_two_processes_equal_one_process_with_two_replicas(ddp_run, replica_run):
    run, _ = ddp_run
    ddp_losses = [r["total"] for r in records(run, "train")]
    replica_losses = [r["total"] for r in records(replica_run, "train")]
    assert len(ddp_losses) == len(replica_losses) == 2 * EPOCHS  # rank 0 alone logged
    for a, b in zip(ddp_losses, replica_losses):
        assert abs(a - b) <= 1e-4 * abs(b)
    a, b = load_checkpoint(run / "last.pt"), load_checkpoint(replica_run / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    assert not any(k.startswith("module.") for k in a["model"])
    assert relative_distance(a["model"], b["model"]) <= 1e-5
    assert a["world_size"] == 2 and len(a["rng_by_rank"]) == 2


def test_only_rank_zero_writes_and_prints(ddp_run):
    run, done = ddp_run
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "last.pt", "metrics.jsonl"]
    assert done.stdout.count("checkpoint: ") == 1
    assert "distributed: 2 processes on cpu" in done.stdout
    assert len(records(run, "eval")) == 1 and len(records(run, "epoch")) == EPOCHS


def test_distributed_evaluation_equals_single_process_evaluation(ddp_run, tiny_synthetic):
    run, _ = ddp_run
    (record,) = records(run, "eval")
    model, cfg = load_trained_model(run / "last.pt")
    with one_thread():
        splits = build_dataset("synthetic", tiny_synthetic)
        single = evaluate_model(model, splits, cfg, torch.device("cpu"))
    assert {k: record[k] for k in single.metrics} == single.metrics  # exactly


def test_a_killed_worker_restarts_the_group_which_resumes_to_the_same_result(
    ddp_run, tiny_synthetic, tmp_path
):
    run = tmp_path / "run"
    done = torchrun(
        train_args(tiny_synthetic, run),
        "--max-restarts",
        "1",
        module=False,
        BDBNET_TEST_KILL_STEP="3",  # first step of epoch 2, after last.pt of epoch 1
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stdout and "after epoch 1" in done.stdout
    straight = load_checkpoint(ddp_run[0] / "last.pt")
    resumed = load_checkpoint(run / "last.pt")
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key  # bit-exact
    assert straight["optimizer"]["state"].keys() == resumed["optimizer"]["state"].keys()
    for key, state in straight["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, resumed["optimizer"]["state"][key][name]), (key, name)
    steps = [r["step"] for r in records(run, "train")]
    assert steps == list(range(1, 2 * EPOCHS + 1))  # the interrupted epoch is logged once


def test_local_loss_scope_mines_each_share_alone(ddp_run, tiny_synthetic, tmp_path):
    run = tmp_path / "run"
    done = torchrun(train_args(tiny_synthetic, run, "train.loss_scope=local", "optim.epochs=1"))
    assert done.returncode == 0, done.stderr[-3000:]
    local = records(run, "train")
    global_ = records(ddp_run[0], "train")[: len(local)]
    assert len(local) == 2 and all(r["total"] > 0 for r in local)
    # The first step starts from the same weights and batch: only the triplet terms differ
    # (hardest pairs among 2 identities instead of 4); the softmax terms are the same mean.
    first_local, first_global = local[0], global_[0]
    for term in ("global/softmax", "drop/softmax"):
        assert abs(first_local[term] - first_global[term]) <= 1e-4 * first_global[term]
    assert first_local["global/triplet"] != first_global["global/triplet"]


def test_the_tensor_data_path_under_torchrun_equals_one_process(tiny_synthetic, tmp_path):
    """``data.pipeline=tensor``: the ranks decode the split once into shared memory, each draws
    the augmentation of the global batch and keeps its share, so 2 processes train as 1 process
    x 2 replicas."""
    tensor = ("data.pipeline=tensor", "optim.epochs=1")
    run, shm = tmp_path / "ddp", tmp_path / "shm"
    shm.mkdir()
    done = torchrun(train_args(tiny_synthetic, run, *tensor), BDBNET_SHM_DIR=str(shm))
    assert done.returncode == 0, done.stderr[-3000:]
    # one decoded copy for the machine, in shared memory, whose name is gone afterwards
    assert "decoded the train split once for the 2 processes of this machine" in done.stdout
    assert list(shm.iterdir()) == []
    single = tmp_path / "single"
    cfg = tiny_config(*tensor, "train.replicas=2")
    with one_thread():
        Trainer.from_config(cfg, build_dataset("synthetic", tiny_synthetic), single).fit()
    ddp_losses = [r["total"] for r in records(run, "train")]
    single_losses = [r["total"] for r in records(single, "train")]
    assert len(ddp_losses) == len(single_losses) == 2
    for a, b in zip(ddp_losses, single_losses):
        assert abs(a - b) <= 1e-4 * abs(b)
    a, b = load_checkpoint(run / "last.pt"), load_checkpoint(single / "last.pt")
    assert relative_distance(a["model"], b["model"]) <= 1e-5
    # the sharded evaluation through decoded batches equals a single-process one
    (record,) = records(run, "eval")
    model, cfg = load_trained_model(run / "last.pt")
    assert cfg.data.pipeline == "tensor"
    with one_thread():
        alone = evaluate_model(
            model, build_dataset("synthetic", tiny_synthetic), cfg, torch.device("cpu")
        )
    assert {k: record[k] for k in alone.metrics} == alone.metrics


def test_a_stopped_worker_is_named_when_the_group_times_out(tiny_synthetic, tmp_path):
    run = tmp_path / "run"
    done = torchrun(
        train_args(tiny_synthetic, run, "train.dist_timeout=8"),
        module=False,
        BDBNET_TEST_STOP_STEP="3",  # rank 1, first step of epoch 2
        BDBNET_TEST_STOP_SECONDS="12",  # past the timeout: rank 0 gives up first
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("bdbnet train: error")]
    assert len(errors) == 1, done.stderr[-3000:]  # rank 0's; rank 1 is ended while stopped
    waited = "a collective waited train.dist_timeout = 8 s at step 3: rank 1 (pid "
    assert errors[0].startswith(f"bdbnet train: error: rank 0: {waited}"), errors
    assert "at step 2) stopped responding" in errors[0]
    assert "Resume with --resume" in errors[0]
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: the train")]
    assert len(warned) == 1 and "rank 1 (pid" in warned[0]  # at half the timeout, rank 0 only
    ours = done.stderr.split("elastic/multiprocessing/api.py")[0]  # before torchrun's own
    assert "Traceback" not in ours
    assert (run / "last.pt").is_file()  # epoch 1's checkpoint is there to resume from

import json
import sys
import time

import numpy as np
import pytest
import torch

from bdbnet.engine.metrics_log import MetricsLogger, read_metrics, truncate_metrics


def test_log_writes_one_json_object_per_line(tmp_path):
    before = time.time()
    logger = MetricsLogger(tmp_path / "run", tensorboard=False)
    logger.log("epoch", 12, {"total": 1.5, "loss/triplet": torch.tensor(0.25)}, epoch=3)
    logger.log("eval", 12, {"Rank-1": np.float32(0.5), "cmc": np.array([0.5, 0.75])})
    logger.close()
    after = time.time()

    path = tmp_path / "run" / "metrics.jsonl"
    assert logger.path == path
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert list(first) == ["kind", "step", "time", "epoch", "total", "loss/triplet"]
    assert first["kind"] == "epoch"
    assert first["step"] == 12
    assert first["epoch"] == 3
    assert first["total"] == 1.5
    assert first["loss/triplet"] == 0.25
    assert before - 0.01 <= first["time"] <= after + 0.01
    assert "epoch" not in second
    assert second == {
        "kind": "eval",
        "step": 12,
        "time": second["time"],
        "Rank-1": 0.5,
        "cmc": [0.5, 0.75],
    }
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_lines_are_flushed_immediately(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False)
    logger.log("epoch", 1, {"total": 2.0}, epoch=1)
    # readable before close (a killed run keeps its log)
    assert [r["total"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [2.0]
    logger.close()


def test_context_manager_and_append_on_resume(tmp_path):
    with MetricsLogger(tmp_path, tensorboard=False) as logger:
        logger.log("epoch", 1, {"total": 3.0}, epoch=1)
    assert logger._file.closed
    with MetricsLogger(tmp_path, tensorboard=False) as logger:
        logger.log("epoch", 2, {"total": 2.0}, epoch=2)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["epoch"], r["total"]) for r in records] == [(1, 3.0), (2, 2.0)]


def test_non_finite_values_are_written_as_strict_json_nulls(tmp_path):
    with MetricsLogger(tmp_path, tensorboard=False) as logger:
        logger.log("epoch", 1, {"total": float("nan"), "grad": float("inf"), "ok": 1.5})
        logger.log("eval", 1, {"cmc": [1.0, float("-inf")]})
    text = (tmp_path / "metrics.jsonl").read_text()

    def refuse(token):  # strict parsers know no NaN / Infinity tokens
        raise ValueError(token)

    records = [json.loads(line, parse_constant=refuse) for line in text.splitlines()]
    assert (records[0]["total"], records[0]["grad"], records[0]["ok"]) == (None, None, 1.5)
    assert records[1]["cmc"] == [1.0, None]


def test_truncate_drops_the_epochs_after_the_checkpoint_and_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"kind": "train", "step": 2, "epoch": 1, "total": 2.5}\n'
        '{"kind": "epoch", "step": 1, "epoch": 1, "total": 2.5}\n'
        '{"kind": "train", "step": 4, "epoch": 2, "total": 2.0}\n'
        '{"kind": "train", "step": 6, "epo'
    )
    truncate_metrics(path, 1)
    assert [(r["kind"], r["step"]) for r in read_metrics(path)] == [("train", 2), ("epoch", 1)]
    assert path.read_text().endswith("\n")
    truncate_metrics(tmp_path / "missing.jsonl", 3)  # nothing to do
    assert not (tmp_path / "missing.jsonl").exists()


def test_read_metrics_ignores_truncated_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"kind": "epoch", "step": 1, "epoch": 1, "total": 2.5}\n'
        '{"kind": "eval", "step": 1, "epoch": 1, "mAP": 0.25}\n'
        '{"kind": "epoch", "step": 2, "epoch": 2, "to',
        encoding="utf-8",
    )
    assert read_metrics(path) == [
        {"kind": "epoch", "step": 1, "epoch": 1, "total": 2.5},
        {"kind": "eval", "step": 1, "epoch": 1, "mAP": 0.25},
    ]


def test_read_metrics_of_empty_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("")
    assert read_metrics(path) == []


def test_missing_tensorboard_warns_and_keeps_jsonl(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.warns(UserWarning, match="TensorBoard is not installed"):
        logger = MetricsLogger(tmp_path, tensorboard=True)
    logger.log("epoch", 1, {"total": 1.0})
    logger.close()
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 1
    assert not (tmp_path / "tensorboard").exists()


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    ).EventAccumulator(str(folder))
    accumulator.Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def test_tensorboard_events_are_written_when_available(tmp_path):
    pytest.importorskip("tensorboard")
    with MetricsLogger(tmp_path, tensorboard=True) as logger:
        logger.log("epoch", 1, {"total": 1.5, "count": 3, "note": "text", "bad": float("nan")})
        logger.log("epoch", 2, {"total": 0.5})
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 2
    # finite numbers become scalars tagged "<kind>/<key>"; text and NaN are left out
    assert tensorboard_scalars(tmp_path / "tensorboard") == {
        "epoch/total": [(1, 1.5), (2, 0.5)],
        "epoch/count": [(1, 3.0)],
    }


def test_tensor_and_numpy_scalars_reach_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    with MetricsLogger(tmp_path, tensorboard=True) as logger:
        logger.log("eval", 4, {"mAP": torch.tensor(0.25), "Rank-1": np.float32(0.5)})
    (record,) = read_metrics(tmp_path / "metrics.jsonl")
    assert (record["mAP"], record["Rank-1"]) == (0.25, 0.5)
    assert tensorboard_scalars(tmp_path / "tensorboard") == {
        "eval/mAP": [(4, 0.25)],
        "eval/Rank-1": [(4, 0.5)],
    }


class FullDisk:
    """A file or event writer on a full disk: every write fails with ENOSPC."""

    def __init__(self) -> None:
        self.closed = False

    def _full(self, *args, **kwargs):
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")

    write = flush = add_scalar = _full

    def close(self) -> None:
        self.closed = True


def test_a_full_disk_mid_run_warns_once_per_log_and_training_goes_on(tmp_path):
    """metrics.jsonl and TensorBoard events that cannot be written: one warning each, naming
    the file and the step, then that log is dropped; logging never raises."""
    logger = MetricsLogger(tmp_path, tensorboard=False)
    logger.log("train", 1, {"loss": 1.0})
    events = FullDisk()
    logger._file, logger._tb = FullDisk(), events
    with pytest.warns(UserWarning) as caught:
        for step in (2, 3, 4):
            logger.log("train", step, {"loss": 1.0})
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0].startswith(f"{tmp_path / 'metrics.jsonl'}: cannot write (No space left")
    assert "from step 2" in messages[0] and "--resume rewrites the log" in messages[0]
    assert messages[1].startswith(f"{tmp_path / 'tensorboard'}: cannot write") and events.closed
    logger.close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1]

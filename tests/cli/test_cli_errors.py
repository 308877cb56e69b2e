"""Every user mistake of issue 10 on the command line: exit status 2, one line naming the file or
key and what to do, no traceback; the work is refused before it starts and nothing is written.
Bugs (any other exception) keep their traceback."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from bdbnet.cli import build_parser, main
from bdbnet.cli import datasets as datasets_command
from bdbnet.cli.support import parse_args
from bdbnet.errors import OutputError
from bdbnet.files import atomic_save


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _readonly(tmp: Path) -> Path | None:
    """A folder nobody may write: chmod 555, or for root (who ignores modes) a sysfs folder."""
    folder = tmp / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys/kernel")):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(probe)
    return None


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_synthetic, tiny_checkpoint, person_images):
    tmp = tmp_path_factory.mktemp("cli_errors")
    broken = tmp / "broken_set"
    shutil.copytree(tiny_synthetic, broken)
    bad_image = sorted((broken / "bounding_box_test").iterdir())[3]
    bad_image.write_bytes(b"\xff\xd8 not really a jpeg")
    no_query = tmp / "no_query"
    shutil.copytree(tiny_synthetic, no_query)
    for f in (no_query / "query").iterdir():
        f.unlink()
    (tmp / "a_file").write_text("x")
    (tmp / "random.pt").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4000)))
    os.symlink(tmp / "loop.pt", tmp / "loop.pt")
    state = torch.load(tiny_checkpoint, weights_only=True)
    atomic_save({k: v for k, v in state.items() if k != "config"}, tmp / "no_config.pt")
    wrong = dict(state, model=dict(state["model"]))
    key = next(k for k in wrong["model"] if k.endswith("global_reduction.0.weight"))
    wrong["model"][key] = wrong["model"][key][:7]
    atomic_save(wrong, tmp / "wrong_shape.pt")
    (tmp / "index.npz").write_bytes(b"PK\x03\x04 half a zip")
    unreadable = tmp / "unreadable"
    unreadable.mkdir()
    for name in ("x.jpg", "y.png"):
        (unreadable / name).write_bytes(b"garbage")
    (tmp / "weights.pth").write_bytes(b"\x80\x02 not a state dict")
    return SimpleNamespace(
        tmp=tmp,
        root=tiny_synthetic,
        broken=broken,
        bad_image=bad_image,
        no_query=no_query,
        ckpt=tiny_checkpoint,
        images=person_images,
        unreadable=unreadable,
        readonly=_readonly(tmp),
    )


MODEL = ["--device", "cpu", "--quiet"]


TINY = ["data.num_identities=4", "data.num_instances=2", "data.height=32", "data.width=16",
        "optim.epochs=1", "train.progress=false", "train.tensorboard=false"]  # fmt: skip


def train(e, *extra):
    return ["train", "--dataset", "synthetic", "--root", e.root, "--preset", "synthetic-demo",
            *TINY, "--output", e.tmp / "run", *extra]  # fmt: skip


CASES = {
    # 5. tracebacks for user mistakes
    "num_identities=0": (lambda e: train(e, "data.num_identities=0"),
                         "data.num_identities must be an integer >= 2; got 0"),
    "num_identities=-3": (lambda e: train(e, "data.num_identities=-3"),
                          "data.num_identities must be an integer >= 2; got -3"),
    "num_instances=0": (lambda e: train(e, "data.num_instances=0"),
                        "data.num_instances must be an integer >= 1; got 0"),
    "width=0": (lambda e: train(e, "data.width=0"), "data.width must be an integer >= 16; got 0"),
    "workers=-1": (lambda e: train(e, "data.workers=-1"),
                   "data.workers must be an integer >= 0; got -1"),
    "log_every=0": (lambda e: train(e, "train.log_every=0"),
                    "train.log_every must be an integer >= 1; got 0"),
    "lr=nan": (lambda e: train(e, "optim.lr=nan"), "optim.lr must be a finite number > 0; got nan"),
    "drop ratio 2.0": (lambda e: train(e, "model.drop_height_ratio=2.0"),
                       "model.drop_height_ratio must be a finite number >= 0 and <= 1; got 2.0"),
    "epochs=-1": (lambda e: train(e, "optim.epochs=-1"),
                  "optim.epochs must be an integer >= 1; got -1"),
    "P > identities": (lambda e: train(e, "data.num_identities=9"),
                       "data.num_identities=9 but the train split"),
    "bad pretrained file": (lambda e: train(e, f"model.pretrained={e.tmp / 'weights.pth'}"),
                            "weights.pth: not a readable weights file"),
    "unknown device": (lambda e: ["evaluate", "--checkpoint", e.ckpt, "--dataset", "synthetic",
                                  "--root", e.root, "--device", "tpu7"], "unknown device 'tpu7'"),
    "output is a file": (lambda e: train(e)[:-2] + ["--output", e.tmp / "a_file"],
                         "a_file exists and is not a folder"),
    "self-looping checkpoint": (lambda e: ["extract", "--checkpoint", e.tmp / "loop.pt",
                                           e.images[0], "--output", e.tmp / "o.npz", *MODEL],
                                "checkpoint not found: "),
    "self-looping root": (lambda e: ["datasets", "synthetic", "--root", e.tmp / "loop.pt"],
                          "does not exist"),
    "unknown dataset": (lambda e: ["datasets", "nope", "--root", e.root],
                        "unknown dataset 'nope'; available:"),
    "corrupt npz index": (lambda e: ["search", "--checkpoint", e.ckpt, "--gallery",
                                     e.tmp / "index.npz", "--query", e.images[0], *MODEL],
                          "index.npz: not a readable gallery index"),
    "topk 0": (lambda e: ["search", "--checkpoint", e.ckpt, "--gallery", e.images[0],
                          "--query", e.images[0], "--topk", "0"],
               "argument --topk: must be an integer >= 1; got 0"),
    "checkpoint without config": (lambda e: ["extract", "--checkpoint", e.tmp / "no_config.pt",
                                             e.images[0], "--output", e.tmp / "o.npz", *MODEL],
                                  "no_config.pt: incomplete bdbnet checkpoint, no config entry"),
    "state-dict shape mismatch": (lambda e: ["extract", "--checkpoint", e.tmp / "wrong_shape.pt",
                                             e.images[0], "--output", e.tmp / "o.npz", *MODEL],
                                  "wrong_shape.pt: the weights do not fit the model"),
    # 6. silent success on meaningless input
    "empty query split": (lambda e: ["evaluate", "--checkpoint", e.ckpt, "--dataset", "synthetic",
                                     "--root", e.no_query, "--device", "cpu"],
                          "the query split of synthetic at"),
    "only query unreadable": (lambda e: ["search", "--checkpoint", e.ckpt, "--gallery",
                                         *e.images, "--query", e.unreadable / "x.jpg", *MODEL],
                              "none of the 1 query image(s)"),
    "folder of unreadable images": (lambda e: ["extract", "--checkpoint", e.ckpt, e.unreadable,
                                               "--output", e.tmp / "u.npz", *MODEL],
                                    "none of the 2 input image(s)"),
    "evaluate --batch-size 0": (lambda e: ["evaluate", "--checkpoint", e.ckpt, "--dataset", "x",
                                           "--root", e.root, "--batch-size", "0"],
                                "argument --batch-size: must be an integer >= 1; got 0"),
    # 3. unreadable images found before the first step
    "train, unreadable image": (lambda e: [*train(e)[:4], e.broken, *train(e)[5:]],
                                "1 image(s) of synthetic at"),
    "evaluate, unreadable image": (lambda e: ["evaluate", "--checkpoint", e.ckpt, "--dataset",
                                              "synthetic", "--root", e.broken, "--device", "cpu"],
                                   "1 image(s) of synthetic at"),
    "datasets, unreadable image": (lambda e: ["datasets", "synthetic", "--root", e.broken],
                                   "1 of the "),
    # 7. work before checks: a missing checkpoint proves the output was checked first
    "extract to .txt": (lambda e: ["extract", "--checkpoint", e.tmp / "none.pt", e.images[0],
                                   "--output", e.tmp / "feats.txt"],
                        "feats.txt must end in .safetensors, .npz, .npy"),
    "search picture of unknown suffix": (lambda e: ["search", "--checkpoint", e.tmp / "none.pt",
                                                    "--gallery", e.images[0], "--query",
                                                    e.images[0], "--output", e.tmp / "p.gif"],
                                         "p.gif must end in .png, .jpg, .jpeg"),
    "export opset 99": (lambda e: ["export", "--checkpoint", e.tmp / "none.pt", "--format", "onnx",
                                   "--opset", "99", "--output", e.tmp / "m.onnx"],
                        "ONNX opset 99 is not one the exporter writes: use 7 to 20"),
    "export 16000x16000": (lambda e: ["export", "--checkpoint", e.tmp / "none.pt", "--format",
                                      "onnx", "--height", "16000", "--width", "16000",
                                      "--output", e.tmp / "m.onnx"],
                           "16000x16000: sides above 4096 are refused"),
    "evaluate --json unwritable": (lambda e: ["evaluate", "--checkpoint", e.tmp / "none.pt",
                                              "--dataset", "synthetic", "--root", e.root,
                                              "--json", e.tmp / "a_file" / "m.json"],
                                   "a_file exists and is not a folder"),
    # 8. misleading messages
    "random bytes checkpoint": (lambda e: ["extract", "--checkpoint", e.tmp / "random.pt",
                                           e.images[0], "--output", e.tmp / "o.npz", *MODEL],
                                "random.pt: not a PyTorch checkpoint (corrupt"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_user_mistake_exits_2_with_one_line(case, env, capsys):
    build, fragment = CASES[case]
    before = sorted(p.name for p in env.tmp.iterdir())
    code, _, err = run(build(env), capsys)
    assert code == 2, err
    assert fragment in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1, err
    after = sorted(p.name for p in env.tmp.iterdir() if p.name != "run")
    assert after == before or set(after) - set(before) <= {"run"}  # nothing half-written
    assert not (env.tmp / "o.npz").exists() and not (env.tmp / "feats.txt").exists()


def test_datasets_lists_each_unreadable_file(env, capsys):
    code, out, _ = run(["datasets", "synthetic", "--root", env.broken], capsys)
    assert code == 2 and f"unreadable: {env.bad_image}" in out
    code, out, _ = run(["datasets", "synthetic", "--root", env.root], capsys)
    assert code == 0 and "images open" in out
    argv = ["datasets", "synthetic", "--root", env.broken, "--skip-image-check"]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "unreadable" not in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(env, capsys):
    code, _, err = run(train(env, "--device", "cuda"), capsys)
    assert code == 2 and "CUDA is not available; use --device cpu" in err and "Traceback" not in err


def test_readonly_outputs_are_refused_before_work(env, capsys):
    if env.readonly is None:
        pytest.skip("no read-only folder on this machine")
    for argv in (
        ["extract", "--checkpoint", env.tmp / "none.pt", env.images[0], "--output",
         env.readonly / "feats.npz"],
        ["visualize", "--checkpoint", env.tmp / "none.pt", env.images[0], "--output",
         env.readonly / "maps"],
        train(env)[:-2] + ["--output", env.readonly / "run"],
    ):  # fmt: skip
        code, _, err = run(argv, capsys)
        assert code == 2 and str(env.readonly) in err and "Traceback" not in err, err


def test_index_model_mismatch_names_whole_paths(env, capsys):
    one, two = env.tmp / "one" / "last.pt", env.tmp / "two" / "last.pt"
    for path in (one, two):
        path.parent.mkdir(exist_ok=True)
        shutil.copy(env.ckpt, path)
    state = torch.load(two, weights_only=True)
    # other weights (the identity is the weights' hash: a re-saved copy would be the same model)
    key = next(k for k in state["model"] if k.endswith("global_reduction.0.weight"))
    state["model"][key] = state["model"][key] + 1e-3
    atomic_save(state, two)
    index = env.tmp / "one.npz"
    assert run(["extract", "--checkpoint", one, *env.images[:3], "--output", index, *MODEL],
               capsys)[0] == 0  # fmt: skip
    code, _, err = run(
        ["search", "--checkpoint", two, "--gallery", index, "--query", env.images[0], *MODEL],
        capsys,
    )
    assert code == 2 and str(one.resolve()) in err and str(two.resolve()) in err


def test_overrides_may_stand_anywhere_on_the_line():
    argv = ["train", "optim.epochs=1", "--dataset", "synthetic", "--root", "D", "--preset",
            "synthetic-demo", "data.height=64"]  # fmt: skip
    args = parse_args(build_parser(), argv)
    assert args.overrides == ["optim.epochs=1", "data.height=64"]
    with pytest.raises(SystemExit):
        parse_args(build_parser(), [*argv, "--no-such-flag"])
    with pytest.raises(SystemExit):
        parse_args(build_parser(), ["datasets", "x", "a.b=1"])  # only train takes overrides


@pytest.mark.parametrize("bug", [KeyError("config"), FileNotFoundError("x"), ZeroDivisionError()])
def test_bugs_keep_their_traceback(monkeypatch, bug):
    def broken(args):
        raise bug

    monkeypatch.setattr(datasets_command, "run", broken)
    with pytest.raises(type(bug)):
        main(["datasets"])


def _full_disk_save(path: str, payload: dict, queue) -> None:
    """In a forked child (no torch kernels run here: OpenMP may not survive a fork)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
    try:
        atomic_save(payload, path)
        queue.put(("saved", ""))
    except OutputError as err:
        queue.put(("OutputError", str(err)))
    except BaseException as err:  # reported to the test
        queue.put((type(err).__name__, str(err)))


def test_full_disk_while_writing_a_checkpoint(tmp_path):
    import multiprocessing

    path = tmp_path / "last.pt"
    atomic_save({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    payload = {"w": torch.zeros(100_000)}  # 400 kB, over the 20 kB file-size limit
    proc = ctx.Process(target=_full_disk_save, args=(str(path), payload, queue))
    proc.start()
    kind, message = queue.get(timeout=60)
    proc.join()
    assert kind == "OutputError", message
    assert f"cannot write {path}" in message and "previous last.pt is kept" in message
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]  # no temporary left


def test_broken_symlinks_in_a_dataset_are_reported(tiny_synthetic, tmp_path):
    from bdbnet.data import build_dataset

    root = tmp_path / "set"
    shutil.copytree(tiny_synthetic, root)
    os.symlink(root / "gone.jpg", root / "query" / "0001_c1s1_000001_00.jpg")
    with pytest.warns(UserWarning, match=r"skipping 1 broken symbolic link\(s\): .*0001_c1s1"):
        build_dataset("synthetic", root)


def test_a_16bit_gallery_image_is_not_white(env, tmp_path):
    path = tmp_path / "0001_c1s1_000001_00.png"
    grey = np.asarray(Image.open(env.images[0]).convert("L"))
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    from bdbnet.data.images import read_image

    assert np.asarray(read_image(path)).mean() == pytest.approx(grey.mean(), abs=0.01)


def test_an_error_from_a_data_loader_worker_prints_its_own_line(monkeypatch, capsys):
    from bdbnet.errors import ImageError

    def worker_failure(args):
        raise ImageError(
            "Caught UnreadableImageError in DataLoader worker process 0.\nOriginal Traceback "
            '(most recent call last):\n  File "x.py", line 1\n'
            "bdbnet.data.images.UnreadableImageError: cannot read image x.jpg: truncated"
        )

    monkeypatch.setattr(datasets_command, "run", worker_failure)
    code, _, err = run(["datasets"], capsys)
    assert code == 2 and err == "bdbnet datasets: error: cannot read image x.jpg: truncated\n"

"""Every command's ``--help``: a description, an example, every flag documented, defaults shown."""

from __future__ import annotations

import argparse

import pytest

from bdbnet.cli import COMMANDS, build_parser, main
from bdbnet.cli.support import parse_args

NAMES = [c.__name__.rsplit(".", 1)[-1] for c in COMMANDS]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_is_listed():
    assert NAMES == list(_subparsers()) == [
        "demo", "synth", "train", "evaluate", "extract", "datasets", "search", "visualize",
        "export", "config", "serve",
    ]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_help_documents_every_flag_and_shows_defaults(name, capsys):
    sub = _subparsers()[name]
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert sub.description and sub.description.split()[0] in text
    assert f"example: bdbnet {name}" in text
    for action in sub._actions:
        if action.help == argparse.SUPPRESS:  # an old spelling: same dest as a shown option
            assert any(a.dest == action.dest and a.help != argparse.SUPPRESS for a in sub._actions)
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown and "default" not in action.help:
            assert f"(default: {action.default})" in text, (name, action.dest)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("search", "--topk TOPK gallery images listed per query (default: 10)"),
        ("search", "--batch-size BATCH_SIZE images per forward pass (default: 32)"),
        ("evaluate", "--workers WORKERS data-loading worker processes (decoding threads for an "
                     "exported .onnx/.xml, or when the checkpoint's data.pipeline is tensor) "
                     "(default: 2)"),
        ("extract", "--workers WORKERS image-decoding threads (0: one per core, at most 8)"),
        ("export", "--opset OPSET ONNX opset (default: 17)"),
        ("synth", "--train-ids TRAIN_IDS identities of the train split (default: 200)"),
        ("demo", "--device DEVICE cpu, cuda, cuda:N or auto (a GPU when there is one) "
                 "(default: auto)"),
    ],
)  # fmt: skip
def test_help_fragments(name, fragment, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert fragment in " ".join(capsys.readouterr().out.split())


def test_old_spellings_still_parse():
    parser = build_parser()
    args = parse_args(parser, ["search", "--checkpoint", "c", "--gallery", "g", "--query", "q",
                               "--picture", "p.png"])  # fmt: skip
    assert args.output == "p.png"
    args = parse_args(parser, ["evaluate", "--checkpoint", "c", "--dataset", "d", "--root", "r",
                               "--plots", "P", "--visualize", "3"])  # fmt: skip
    assert (args.output, args.worst) == ("P", 3)
    args = parse_args(parser, ["train", "--dataset", "d", "--root", "r", "--epochs", "7"])
    assert args.epochs == 7 and args.device is None


def test_visualize_has_no_ignored_flags():
    with pytest.raises(SystemExit):
        parse_args(build_parser(), ["visualize", "--checkpoint", "c", "x.jpg", "--output", "o",
                                    "--flip"])  # fmt: skip

"""The journal of a file-index extraction: chunks kept atomically, what is left to do, the
index assembled in image order, and a journal of another model refused (never mixed)."""

from __future__ import annotations

import json

import pytest
import torch

from bdbnet.errors import OutputError
from bdbnet.inference.extract_journal import ExtractionJournal, journal_folder
from bdbnet.inference.extractor import Extraction, ModelIdentity

MODEL = ModelIdentity(sha256="a" * 64, feature_dim=3, weights_sha256="b" * 64, checkpoint="m.pt")


def test_chunks_are_kept_and_gathered_in_image_order(tmp_path):
    out = tmp_path / "g.safetensors"
    paths = [f"img{i}.jpg" for i in range(6)]
    journal = ExtractionJournal.open(out, MODEL)
    assert journal.todo(paths) == paths and not journal_folder(out).exists()
    # chunks arrive in any order; one image of the second was unreadable
    journal.write(Extraction(torch.tensor([[4.0, 0, 0], [5.0, 0, 0]]), paths[4:], []))
    journal.write(
        Extraction(
            torch.tensor([[0.0, 1, 0], [2.0, 1, 0]]), [paths[0], paths[2]], [(paths[1], "bad")]
        )
    )
    again = ExtractionJournal.open(out, MODEL)  # a later run
    assert again.todo(paths) == [paths[3]]
    listed = paths[:5] + ["new.jpg"]  # img5 no longer listed: left out of the index
    got = again.extraction(listed, 3)
    assert got.paths == [paths[0], paths[2], paths[4]]
    assert got.features[:, 0].tolist() == [0.0, 2.0, 4.0]
    assert got.skipped == [(paths[1], "bad")]
    again.remove()
    assert not journal_folder(out).exists()
    assert ExtractionJournal.open(out, MODEL).extraction(paths, 3).features.shape == (0, 3)


def test_a_journal_of_another_model_is_refused_and_kept(tmp_path):
    out = tmp_path / "g.npz"
    ExtractionJournal.open(out, MODEL).write(Extraction(torch.ones(1, 3), ["x.jpg"], []))
    other = ModelIdentity(
        sha256="c" * 64, feature_dim=3, weights_sha256="d" * 64, checkpoint="n.pt"
    )
    with pytest.raises(OutputError) as err:
        ExtractionJournal.open(out, other)
    folder = journal_folder(out)
    assert str(err.value).startswith(f"{folder} holds a partial extraction of another model (")
    assert "finish it with that model, delete the folder, or choose another --output" in str(
        err.value
    )
    assert ExtractionJournal.open(out, MODEL).todo(["x.jpg", "y.jpg"]) == ["y.jpg"]  # kept
    (folder / "journal.json").write_text(json.dumps({"nothing": 1}))
    with pytest.raises(OutputError, match="is not a bdbnet extraction journal"):
        ExtractionJournal.open(out, MODEL)

"""The journal of a file-index extraction: finished chunks kept beside the output until the
index is written, so a killed ``bdbnet extract`` continues where it stopped.

Why: a file index is written once, atomically, when every image is extracted; without a
journal a run killed after hours over millions of crops starts again from zero. Each chunk's
features (float32, as the model gives them) go to ``<output>.partial/part-NNNNNN.npz`` as soon
as they exist; the next run with the same output and model skips the paths the journal holds
(and the unreadable ones it recorded) and the index is assembled in image order. The journal is
removed once the index is written. A journal of another model is refused, never mixed or
deleted.

Example:
    >>> journal = ExtractionJournal.open("g.safetensors", extractor.identity)  # doctest: +SKIP
    >>> todo = journal.todo(paths)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bdbnet.errors import OutputError
from bdbnet.files import atomic_write
from bdbnet.inference.extractor import Extraction, ModelIdentity

__all__ = ["ExtractionJournal", "journal_folder"]

MANIFEST = "journal.json"


def journal_folder(output: str | Path) -> Path:
    """Where the journal of the index ``output`` lives: ``<output>.partial``."""
    return Path(f"{output}.partial")


class ExtractionJournal:
    """The finished chunks of one output's extraction (see the module documentation).

    Use :meth:`open` (it checks the model); :meth:`todo` says what is left, :meth:`write`
    keeps a chunk, :meth:`extraction` gathers everything in the order of the image list,
    :meth:`remove` deletes the journal once the index is written.
    """

    def __init__(self, folder: Path, identity: ModelIdentity) -> None:
        self.folder = folder
        self.identity = identity
        self.parts = sorted(folder.glob("part-*.npz")) if folder.is_dir() else []

    @classmethod
    def open(cls, output: str | Path, identity: ModelIdentity) -> ExtractionJournal:
        """The journal of ``output`` (empty when none exists).

        Raises:
            OutputError: the journal there was written by another model.
        """
        folder = journal_folder(output)
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                theirs = ModelIdentity.from_dict(json.loads(manifest.read_text())["model"])
            except (ValueError, KeyError, TypeError) as err:
                raise OutputError(
                    f"{manifest} is not a bdbnet extraction journal ({err}); delete {folder} "
                    "or choose another --output"
                ) from None
            why = identity.mismatch(theirs)
            if why is not None:
                raise OutputError(
                    f"{folder} holds a partial extraction of another model ({why}): finish it "
                    "with that model, delete the folder, or choose another --output"
                )
        return cls(folder, identity)

    @staticmethod
    def _listing(part: Path) -> tuple[list[str], list[tuple[str, str]]]:
        """A part's paths and unreadable files, without reading its features (an npz member
        is only read when asked for: a part holds 4,096 x 1536 floats)."""
        with np.load(part, allow_pickle=False) as data:
            skipped = json.loads(str(data["skipped"]))
            return [str(p) for p in data["paths"]], [(s[0], s[1]) for s in skipped]

    @staticmethod
    def _features(part: Path) -> np.ndarray:
        with np.load(part, allow_pickle=False) as data:
            return data["features"]

    def done(self) -> set[str]:
        """The paths the journal holds, extracted or recorded as unreadable."""
        found: set[str] = set()
        for part in self.parts:
            paths, skipped = self._listing(part)
            found.update(paths)
            found.update(p for p, _ in skipped)
        return found

    def todo(self, paths: Sequence[str]) -> list[str]:
        """``paths`` without those the journal already holds, in order."""
        done = self.done()
        return [p for p in paths if p not in done]

    def write(self, extraction: Extraction) -> None:
        """Keep one chunk (atomically: a killed write leaves no half part)."""
        if not self.parts:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"model": self.identity.to_dict()}, indent=2).encode()
            atomic_write(self.folder / MANIFEST, lambda f: f.write(text))
        part = self.folder / f"part-{len(self.parts):06d}.npz"
        buffer = io.BytesIO()
        np.savez(
            buffer,
            features=extraction.features.detach().float().cpu().numpy(),
            paths=np.array(extraction.paths, dtype=str),
            skipped=np.array(json.dumps([list(s) for s in extraction.skipped])),
        )
        atomic_write(part, lambda f: f.write(buffer.getvalue()))
        self.parts.append(part)

    def extraction(self, paths: Sequence[str], feature_dim: int) -> Extraction:
        """Every row the journal holds for ``paths``, in their order, and the unreadable ones
        (rows of images no longer listed are left out)."""
        position = {p: i for i, p in enumerate(paths)}
        rows: list[tuple[int, str, np.ndarray]] = []
        skipped: list[tuple[str, str]] = []
        for part in self.parts:
            names, bad = self._listing(part)
            features = self._features(part)
            rows += [(position[n], n, f) for n, f in zip(names, features) if n in position]
            skipped += [s for s in bad if s[0] in position]
        rows.sort(key=lambda r: r[0])
        features = (
            torch.from_numpy(np.stack([r[2] for r in rows]))
            if rows
            else torch.zeros(0, feature_dim)
        )
        return Extraction(features, [r[1] for r in rows], skipped)

    def remove(self) -> None:
        """Delete the journal (the index it fed is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.parts = []

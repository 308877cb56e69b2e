"""Released models by name: ``from_pretrained("market_953")``.

The registry (``bdbnet/releases.yaml``) maps a name to a URL, the file's SHA-256 where it is
known, the dataset and preset it belongs to and its published numbers. Files are downloaded
once into the torch hub cache (``torch.hub.get_dir()/checkpoints``, ``$TORCH_HOME`` moves it)
and checked against the registry's hash; where the hash is unknown the hash of the downloaded
file is logged, to compare with a trusted copy. Offline, the error says where to put the file.

Example:
    >>> from bdbnet.hub import from_pretrained, list_releases
    >>> "market_953" in list_releases()
    True
    >>> model, cfg = from_pretrained("market_953")  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bdbnet.errors import BDBNetError
from bdbnet.files import file_sha256, remove_stale_temporaries, write_temporary

__all__ = ["HubError", "Release", "download", "from_pretrained", "list_releases", "load_releases"]

log = logging.getLogger(__name__)


class HubError(BDBNetError, OSError):
    """A release cannot be found, downloaded or trusted (unknown name, offline, wrong hash)."""


@dataclass(frozen=True)
class Release:
    """One entry of the registry."""

    name: str
    url: str
    file: str
    sha256: str | None = None
    dataset: str = ""
    preset: str = ""
    published: dict[str, float] = field(default_factory=dict)


def load_releases(registry: str | os.PathLike[str] | None = None) -> dict[str, Release]:
    """The registry: the bundled ``releases.yaml``, or another YAML file of the same form."""
    if registry is None:
        text = (resources.files("bdbnet") / "releases.yaml").read_text()
    else:
        text = Path(registry).read_text()
    data = yaml.safe_load(text) or {}
    out = {}
    for name, entry in data.items():
        sha = entry.get("sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha)):
            raise HubError(f"release {name}: sha256 must be 64 hex digits (quoted) or null")
        out[name] = Release(
            name=name,
            url=entry["url"],
            file=entry.get("file") or entry["url"].rsplit("/", 1)[-1],
            sha256=str(sha).lower() if sha else None,
            dataset=entry.get("dataset", ""),
            preset=entry.get("preset", ""),
            published=dict(entry.get("published") or {}),
        )
    return out


def list_releases(registry: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the registered releases, sorted."""
    return sorted(load_releases(registry))


def cache_dir() -> Path:
    """Where downloads go: the torch hub cache's ``checkpoints`` folder."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _release(name: str, registry: str | os.PathLike[str] | None) -> Release:
    releases = load_releases(registry)
    if name not in releases:
        raise HubError(f"no release named {name!r}; known: {', '.join(sorted(releases))}")
    return releases[name]


def _check(release: Release, path: Path, digest: str) -> None:
    if release.sha256 is None:
        log.warning(
            "%s: the registry knows no sha256 for this release; the file has sha256 %s "
            "(compare it with a trusted copy)",
            path,
            digest,
        )
    elif digest != release.sha256:
        raise HubError(
            f"{path}: sha256 {digest} is not the registry's {release.sha256} for {release.name}; "
            "the file is damaged or not the release: delete it and download again"
        )


def download(
    name: str, registry: str | os.PathLike[str] | None = None, force: bool = False
) -> Path:
    """The local path of release ``name``, downloaded into :func:`cache_dir` unless it is
    there already (``force``: download again). Checked against the registry's SHA-256."""
    release = _release(name, registry)
    target = cache_dir() / release.file
    if target.is_file() and not force:
        _check(release, target, file_sha256(target))
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)  # what killed downloads of this file left behind
    try:
        with urllib.request.urlopen(release.url, timeout=60) as src:
            log.info("downloading %s from %s", name, release.url)
            announced = src.headers.get("Content-Length")
            tmp = write_temporary(target, lambda out: shutil.copyfileobj(src, out, 1 << 20))
        try:  # checked before it takes the target's name
            got = tmp.stat().st_size
            if announced is not None and announced.isdigit() and got != int(announced):
                raise HubError(
                    f"the download of {name} from {release.url} was cut short ({got} of "
                    f"{announced} bytes); nothing was kept: try again"
                )
            digest = file_sha256(tmp)
            _check(release, tmp, digest)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        if isinstance(err, HubError):
            raise
        reason = getattr(err, "reason", None) or err
        raise HubError(
            f"cannot download {name} from {release.url} ({reason}); offline or blocked? "
            f"Download the file yourself and put it at {target}"
        ) from err
    log.info("%s: %s (sha256 %s)", name, target, digest)
    return target


def from_pretrained(
    name: str,
    device: Any = "cpu",
    registry: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any]:
    """``(model, config)`` of release ``name``: downloaded (:func:`download`), loaded like any
    checkpoint (:func:`~bdbnet.models.loading.load_trained_model`; the official
    ``*.pth.tar`` files too) and in eval mode. An official file gets the preset its registry
    entry names, so its test preprocessing is that recipe's."""
    from bdbnet.config import load_config
    from bdbnet.models import safe_torch_load
    from bdbnet.models.loading import is_official_checkpoint, load_trained_model
    from bdbnet.models.preprocess import Preprocessing

    release = _release(name, registry)
    path = download(name, registry)
    model, cfg = load_trained_model(path, device)
    if release.preset and is_official_checkpoint(safe_torch_load(path)):
        cfg = load_config(release.preset)
        model.preprocess = Preprocessing.from_data_config(cfg.data)
    return model, cfg

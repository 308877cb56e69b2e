"""The README's dataset example runs as printed."""

import re
from pathlib import Path

from bdbnet.cli import default_preset, main
from bdbnet.data import ImageRecord, registry

README = Path(__file__).resolve().parents[1] / "README.md"


def _register_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "@register_dataset(" in b]
    return block


def test_register_dataset_example(tmp_path, capsys):
    (tmp_path / "my-cams").mkdir()
    (tmp_path / "my-cams" / "index.txt").write_text(
        "train a.jpg 10 0\ntrain b.jpg 12 1\nquery q.jpg 3 0\ngallery g.jpg 3 1\n"
    )
    code = _register_example().replace('root="/data"', f"root={str(tmp_path)!r}")
    saved = dict(registry._REGISTRY)
    try:
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)
        ds = namespace["ds"]
        root = tmp_path / "my-cams"
        assert ds.root == str(root)
        assert ds.train == [
            ImageRecord(str(root / "a.jpg"), 0, 0),
            ImageRecord(str(root / "b.jpg"), 1, 1),
        ]
        assert ds.query == [ImageRecord(str(root / "q.jpg"), 3, 0)]
        assert default_preset("my-cams") == "market1501"
        assert main(["datasets"]) == 0
        assert "my-cams                My cameras: one" in capsys.readouterr().out
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)

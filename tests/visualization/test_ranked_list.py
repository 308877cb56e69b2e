import pytest
import torch
from PIL import Image

from bdbnet.data.records import ImageRecord
from bdbnet.visualization.ranked_list import GREEN, GREY, RED, draw_ranked_list

# ---------------------------------------------------------------- draw_ranked_list

CELL = (32, 16)  # (h, w)
BORDER, CAPTION, GAP = 4, 14, 10
CELL_W, CELL_H = CELL[1] + 2 * BORDER, CELL[0] + 2 * BORDER + CAPTION  # 24, 54


def _image(path, colour):
    Image.new("RGB", (8, 16), colour).save(path)  # PNG, exact colours
    return str(path)


@pytest.fixture
def people(tmp_path):
    return {
        "q1": ImageRecord(_image(tmp_path / "q1.png", (0, 0, 255)), 1, 0),
        "q2": ImageRecord(_image(tmp_path / "q2.png", (255, 255, 0)), 2, 0),
        "g1": ImageRecord(_image(tmp_path / "g1.png", (255, 0, 255)), 1, 1),
        "g2": ImageRecord(_image(tmp_path / "0002_c1s1_000451_03.png", (0, 255, 255)), 2, 1),
        "g3": ImageRecord(_image(tmp_path / "g3.png", (128, 64, 0)), 3, 2),
    }


def cell_origin(col: int, row: int) -> tuple[int, int]:
    return col * CELL_W + (GAP if col > 0 else 0), row * CELL_H


def test_draw_ranked_list_size_and_border_colours(people, tmp_path):
    out = draw_ranked_list(
        [people["q1"], people["q2"]],
        [[people["g1"], people["g2"], people["g3"]], [people["g1"], people["g2"]]],
        tmp_path / "nested" / "dir" / "ranked.png",
        cell=CELL,
    )
    assert out == tmp_path / "nested" / "dir" / "ranked.png"
    assert out.stat().st_size > 0
    with Image.open(out) as img:
        assert img.format == "PNG"
        canvas = img.convert("RGB")
    # 1 query + 3 results = 4 columns of 24 px + a 10 px gap; 2 rows of 54 px
    assert canvas.size == (4 * CELL_W + GAP, 2 * CELL_H) == (106, 108)

    expected_borders = {
        (0, 0): GREY,
        (1, 0): GREEN,
        (2, 0): RED,
        (3, 0): RED,
        (0, 1): GREY,
        (1, 1): RED,
        (2, 1): GREEN,
    }
    for (col, row), colour in expected_borders.items():
        x, y = cell_origin(col, row)
        for corner in ((x, y), (x + CELL_W - 1, y), (x + 1, y + CELL[0] + 2 * BORDER - 1)):
            assert canvas.getpixel(corner) == colour, (col, row, corner)
    # the pasted image fills the inside of the border
    images = {
        (0, 0): (0, 0, 255),
        (1, 0): (255, 0, 255),
        (2, 0): (0, 255, 255),
        (3, 0): (128, 64, 0),
        (0, 1): (255, 255, 0),
        (1, 1): (255, 0, 255),
        (2, 1): (0, 255, 255),
    }
    for (col, row), colour in images.items():
        x, y = cell_origin(col, row)
        assert canvas.getpixel((x + BORDER + 8, y + BORDER + 16)) == colour
        assert canvas.getpixel((x + BORDER, y + BORDER)) == colour
    # the gap after the query column, the empty 4th cell of row 2 and the captions are white
    white = (255, 255, 255)
    assert canvas.getpixel((CELL_W + 5, 10)) == white
    x, y = cell_origin(3, 1)
    assert canvas.getpixel((x + 10, y + 10)) == white
    caption_pixels = [
        canvas.getpixel((px, py))
        for px in range(0, CELL_W)
        for py in range(CELL[0] + 2 * BORDER, CELL_H)
    ]
    assert white in caption_pixels
    assert any(p[0] < 100 for p in caption_pixels)  # some dark text


def test_draw_ranked_list_without_labels_uses_grey_borders(people, tmp_path):
    out = draw_ranked_list(
        [people["q1"]],
        [[people["g1"], people["g3"]]],
        tmp_path / "plain.png",
        cell=CELL,
        show_labels=False,
    )
    with Image.open(out) as img:
        canvas = img.convert("RGB")
    assert canvas.size == (3 * CELL_W + GAP, CELL_H)
    for col in range(3):
        x, y = cell_origin(col, 0)
        assert canvas.getpixel((x + 1, y + 1)) == GREY


def test_draw_ranked_list_default_cell_size(people, tmp_path):
    out = draw_ranked_list([people["q1"]], [[people["g1"]]], tmp_path / "default.png")
    with Image.open(out) as img:
        # cell (128, 64): 2 columns of 72 px + 10 px gap, one row of 128 + 8 + 14 px
        assert img.size == (2 * 72 + 10, 150)


def test_draw_worst_queries_applies_the_protocol_exclusions(people, tmp_path):
    import numpy as np

    from bdbnet.visualization.ranked_list import draw_worst_queries

    query = [people["q1"], people["q2"]]  # pid 1 cam 0, pid 2 cam 0
    same_cam = ImageRecord(people["g1"].path, 1, 0)  # query 1's identity, same camera
    junk = ImageRecord(people["g3"].path, -1, 2)
    gallery = [same_cam, people["g1"], people["g2"], junk]
    qf = torch.tensor([[0.0], [10.0]])
    gf = torch.tensor([[0.0], [1.0], [5.0], [0.5]])
    out = draw_worst_queries(
        qf, gf, query, gallery, np.array([0.3, 1.0]), np.array([2, 1]), tmp_path / "w.png", n=1
    )
    with Image.open(out) as img:
        canvas = img.convert("RGB")
    # one row: query 1 with the two items left (g1 green, g2 red); same-camera and junk dropped
    assert canvas.size == (3 * 72 + 10, 150)
    assert canvas.getpixel((72 + 10 + 1, 1)) == GREEN
    assert canvas.getpixel((2 * 72 + 10 + 1, 1)) == RED


def test_worst_query_pictures_rank_as_scored_with_rerank():
    """``evaluate --rerank --visualize``: the drawn ranking is the re-ranked one that was scored
    (the first true match is where the metrics put it), not the plain-distance ranking."""
    import numpy as np
    import torch

    from bdbnet.data.records import ImageRecord
    from bdbnet.evaluation import evaluate_features
    from bdbnet.evaluation.ranked_lists import scored_rankings

    gen = torch.Generator().manual_seed(0)
    q, g = torch.randn(12, 6, generator=gen), torch.randn(40, 6, generator=gen)
    q_pid, g_pid = torch.arange(12) % 4, torch.arange(40) % 4
    q_cam, g_cam = torch.zeros(12, dtype=torch.long), torch.ones(40, dtype=torch.long)
    query = [ImageRecord(f"q{i}", int(p), 0) for i, p in enumerate(q_pid)]
    gallery = [ImageRecord(f"g{i}", int(p), 1) for i, p in enumerate(g_pid)]
    picks = list(range(12))
    differ = False
    for rerank in (False, True):
        result = evaluate_features(q, g, q_pid, g_pid, q_cam, g_cam, rerank=rerank, max_rank=40)
        ranked = scored_rankings(q, g, query, gallery, picks, topk=40, rerank=rerank)
        first = [1 + next(r for r, j in enumerate(row) if gallery[j].pid == query[i].pid)
                 for i, row in zip(picks, ranked)]  # fmt: skip
        assert first == result.first_match_rank.tolist()
        differ |= rerank and ranked != scored_rankings(q, g, query, gallery, picks, topk=40)
    assert differ  # the two rankings do differ on this data
    assert np.all(np.asarray(first) >= 1)

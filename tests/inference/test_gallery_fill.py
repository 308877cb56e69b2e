"""fill_gallery on one process: chunk by chunk, in the order of the paths, unreadable files
reported and left out, the same features as one extraction of everything."""

from __future__ import annotations

import pytest
from conftest import assert_rows_close

from bdbnet.inference import FeatureExtractor, fill_gallery


@pytest.fixture(scope="module")
def extractor(tiny_checkpoint):
    return FeatureExtractor(tiny_checkpoint, device="cpu", batch_size=2, amp="none")


def test_chunks_arrive_in_order_with_the_features_of_one_extraction(
    extractor, person_images, tmp_path
):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    paths = [*person_images[:3], str(broken), *person_images[3:]]
    written = []
    extractor.progress = True
    try:
        with pytest.warns(UserWarning, match="skipping unreadable image"):
            report = fill_gallery(extractor, paths, written.append, chunk=3)
        assert extractor.progress is True  # its own bar is back after the fill's single bar
    finally:
        extractor.progress = False
    assert [len(c.paths) for c in written] == [3, 2, 3]  # the broken file left out of chunk 2
    assert [p for c in written for p in c.paths] == person_images
    assert report.added == 8 and [p for p, _ in report.skipped] == [str(broken)]
    whole = extractor.extract(person_images)
    for start, chunk in zip((0, 3, 5), written):
        assert_rows_close(chunk.features, whole.features[start : start + len(chunk.paths)])


def test_nothing_is_written_for_nothing(extractor, tmp_path):
    written = []
    report = fill_gallery(extractor, [], written.append)
    assert written == [] and report.added == 0 and report.skipped == []

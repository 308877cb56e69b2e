"""The web page in a real browser: Debian's chromium + chromium-driver, driven by selenium.

Skipped with a message where no browser is installed (``.ci/run`` installs one). The
screenshots are written to the test's folder, and also to ``$BDBNET_SCREENSHOT_DIR`` when set
(how ``docs/serve.png`` was made).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
selenium = pytest.importorskip("selenium", reason="selenium is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None
)
pytestmark = [
    pytest.mark.slow,  # a real browser against a live server
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="no browser: apt-get install chromium chromium-driver to run the web page test",
    ),
]

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serve_helpers import Server  # noqa: E402

from bdbnet.data import build_dataset  # noqa: E402
from bdbnet.inference import FeatureExtractor, GalleryIndex  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1100,760")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def screenshot(driver, folder: Path, name: str) -> Path:
    path = folder / name
    driver.save_screenshot(str(path))
    extra = os.environ.get("BDBNET_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    assert path.stat().st_size > 10_000
    return path


def rendered(driver, selector: str, count: int) -> bool:
    """``count`` elements match and every image among them has been decoded."""
    return bool(
        driver.execute_script(
            "const els = [...document.querySelectorAll(arguments[0])];"
            "return els.length === arguments[1]"
            " && els.every(i => i.complete && i.naturalWidth > 0);",
            selector,
            count,
        )
    )


def test_search_page_shows_ranked_thumbnails(browser, tiny_checkpoint, tiny_synthetic, tmp_path):
    splits = build_dataset("synthetic", tiny_synthetic)
    extractor = FeatureExtractor(tiny_checkpoint, device="cpu")
    gallery = [r.path for r in splits.gallery if r.pid > 0]
    index = GalleryIndex.from_extraction(extractor.extract(gallery), extractor.identity)
    index_path = index.save(tmp_path / "gallery.npz")
    query = splits.query[0]
    with Server(["--checkpoint", str(tiny_checkpoint), "--index", str(index_path)]) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: not d.find_element(By.ID, "search-view").get_attribute("hidden"))
        assert "gallery images" in browser.find_element(By.ID, "info").text
        browser.find_element(By.ID, "topk").clear()
        browser.find_element(By.ID, "topk").send_keys("8")
        picker = browser.find_element(By.ID, "file")
        browser.execute_script("arguments[0].hidden = false", picker)
        picker.send_keys(query.path)  # picking a file runs the search
        wait.until(lambda d: rendered(d, "#results img.thumb", 8))
        items = browser.find_elements(By.CSS_SELECTOR, "#results .result")
        assert [int(i.get_attribute("data-rank")) for i in items] == list(range(1, 9))
        classes = [set(i.get_attribute("class").split()) for i in items]
        assert all(c & {"match", "miss"} for c in classes)  # the query's identity is known
        first = items[0].text
        assert "#1" in first and "id " in first and "cam " in first
        assert "8 results" in browser.find_element(By.ID, "status").text
        assert f"query identity {query.pid}" in browser.find_element(By.ID, "status").text
        assert browser.find_element(By.ID, "error").get_attribute("hidden")
        screenshot(browser, tmp_path, "serve.png")


def test_run_page_lists_queries_worst_first(browser, tiny_checkpoint, tiny_synthetic, tmp_path):
    from bdbnet.cli import main
    from bdbnet.serve.runs import load_run

    out = tmp_path / "run"
    args = ["--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic", "--root"]
    rc = main(["evaluate", *args, str(tiny_synthetic), "--device", "cpu", "--workers", "0",
               "--save-run", str(out)])  # fmt: skip
    assert rc == 0
    run = load_run(out)
    with Server(["--checkpoint", str(tiny_checkpoint), "--run", str(out)]) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".query-row")) == 20)
        rows = browser.find_elements(By.CSS_SELECTOR, ".query-row")
        assert [int(r.get_attribute("data-index")) for r in rows] == run.worst_first()[:20]
        wait.until(lambda d: rendered(d, ".query-row:first-child .result img", 20))
        assert "worst AP first" in browser.find_element(By.ID, "run-status").text
        cam = int(run.query_camids[0])
        browser.find_element(By.CSS_SELECTOR, f"#filter-cam option[value='{cam}']").click()
        browser.find_element(By.CSS_SELECTOR, "#run-filter button").click()
        expected = [q for q in run.worst_first() if run.query_camids[q] == cam][:20]
        wait.until(
            lambda d: (
                [
                    int(r.get_attribute("data-index"))
                    for r in d.find_elements(By.CSS_SELECTOR, ".query-row")
                ]
                == expected
            )
        )
        screenshot(browser, tmp_path, "serve_run.png")

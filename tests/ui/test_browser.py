"""The console in a real headless Chromium (Debian's chromium and chromium-driver, driven
by selenium) on a real uvicorn server on 127.0.0.1: open the printed URL, browse into a
folder, preview a JSON value and a PNG, upload a file and see the usage bar change, delete
it. Screenshots go to tmp_path; the folder page's becomes docs/ui.png when that file is
missing or UPDATE_UI_SCREENSHOT=1. A missing browser fails the test: CI installs it."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore
from objectstore_s3.transport.memory import MemoryBackend
from objectstore_s3.ui.server import ConsoleServer
from tests.ui.conftest import console_settings

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "ui.png"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 15.0


def _chart() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(4, 2.2), dpi=80)
    closes = [100 + (i % 7) * 1.5 + i * 0.4 for i in range(40)]
    axes.plot(closes, label="close")
    axes.plot(
        [
            sum(closes[max(0, i - 4) : i + 1]) / len(closes[max(0, i - 4) : i + 1])
            for i in range(40)
        ],
        label="SMA 5",
    )
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ConsoleServer]:
    store = ObjectStore(console_settings(tmp_path), backend=MemoryBackend())
    store.save_json(
        "123/config.json",
        {"symbol": "SPY", "sma": {"fast": 5, "slow": 20}, "note": "<script>alert(1)</script>"},
    )
    store.save_bytes("123/chart.png", _chart())
    store.save("123/prices.csv", "day,close\n" + "".join(f"{d},{100 + d}\n" for d in range(30)))
    store.save_bytes("123/model.pkl", os.urandom(40_000))
    store.save_json("456/insights.json", [{"symbol": "QQQ", "direction": "up"}])
    console = ConsoleServer(store)
    console.start()
    try:
        yield console
    finally:
        console.stop()
        store.close()


@pytest.fixture
def browser() -> Iterator[object]:
    missing = [path for path in (CHROMIUM, DRIVER) if not shutil.which(path)]
    if missing:  # never a skip: CI installs them (.ci/run)
        pytest.fail(
            f"the browser test needs {' and '.join(missing)}: "
            "apt-get install -y chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        "--disable-gpu",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_browse_preview_upload_and_delete_in_chromium(
    server: ConsoleServer, browser: object, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    assert isinstance(driver, WebDriver)
    # A reload replaces the elements a condition may be looking at: look again.
    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])

    def meter(name: str) -> int:
        return int(driver.find_element(By.ID, name).get_attribute("value") or "-1")

    driver.get(server.url)  # the printed URL, with its token
    assert "token=" not in driver.current_url
    assert driver.current_url.endswith("/browse")
    driver.find_element(By.LINK_TEXT, "123/").click()
    wait.until(lambda d: "prefix=123" in d.current_url)
    names = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#listing tbody a")]
    assert names == ["..", "chart.png", "config.json", "model.pkl", "prices.csv"]

    driver.find_element(By.LINK_TEXT, "config.json").click()
    tree = wait.until(lambda d: d.find_element(By.ID, "json-tree"))
    assert "<script>alert(1)</script>" in tree.text  # shown as text, not run
    driver.save_screenshot(str(tmp_path / "json.png"))
    driver.back()

    driver.find_element(By.LINK_TEXT, "chart.png").click()
    image = wait.until(lambda d: d.find_element(By.ID, "preview-image"))
    wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) > 0)
    driver.save_screenshot(str(tmp_path / "png.png"))
    driver.back()

    files_before = meter("files-bar")
    upload = tmp_path / "signals.csv"
    upload.write_text("day,signal\n1,buy\n2,hold\n")
    driver.find_element(By.ID, "upload-input").send_keys(str(upload))
    wait.until(lambda d: meter("files-bar") == files_before + 1)  # reloaded, bar moved
    assert "signals.csv" in driver.find_element(By.ID, "listing").text
    driver.save_screenshot(str(tmp_path / "folder.png"))

    driver.find_element(By.LINK_TEXT, "signals.csv").click()
    wait.until(lambda d: d.find_element(By.ID, "preview-table"))
    driver.find_element(By.ID, "delete").click()
    wait.until(lambda d: d.find_element(By.ID, "confirm")).click()
    done = wait.until(lambda d: d.find_element(By.ID, "done"))
    assert done.text == "Deleted '123/signals.csv'."
    assert meter("files-bar") == files_before

    if not DOCS_PNG.exists() or os.environ.get("UPDATE_UI_SCREENSHOT") == "1":
        shutil.copyfile(tmp_path / "folder.png", DOCS_PNG)
    assert DOCS_PNG.read_bytes().startswith(b"\x89PNG")

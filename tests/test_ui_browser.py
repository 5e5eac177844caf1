"""The web page in a real headless browser: Debian's Chromium driven by Playwright.

With DISTILL_SCREENSHOTS=1 each tab is also saved to docs/ui-<tab>.png (for the README).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from conftest import TINY_SPECTRAL

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is not installed at /usr/bin/chromium "
    "(apt-get install chromium; .ci/run does)",
)
playwright = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = os.environ.get("DISTILL_SCREENSHOTS") == "1"
DOCS = Path(__file__).resolve().parents[1] / "docs"
TIMEOUT_MS = 30_000
# A page-started training of a tiny model: seconds, with previews every few epochs.
TINY_OVERRIDES = dict(
    spectral=TINY_SPECTRAL,
    channels=(4, 8, 8, 16, 16),
    latent_dim=8,
    batch_size=4,
    augment={"copies": 0},
    preview_every=3,
    checkpoint_every=100,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    """(url, home, job): the app on a copy of the tiny model's home with two takes in history."""
    from distill.audio.write import ExportOptions
    from distill.generation.loaded import load
    from distill.generation.render import render_takes
    from distill.ui.app import build_app, serve
    from distill.ui.jobs import TrainingJob

    home = tmp_path_factory.mktemp("ui-browser") / "home"
    shutil.copytree(tiny_model.home, home)
    loaded = load("tiny", home=home, device="cpu")
    for seed in (1, 2):
        params = loaded.params(2.0, seed=seed, sliders={"1": 2.0 * seed})
        render_takes(
            loaded, params, ExportOptions(lufs=-20.0), home / "takes", home=home, history=True
        )
    job = TrainingJob(home, device="cpu", overrides=TINY_OVERRIDES)
    blocks = build_app(home, device="cpu", job=job)
    url = serve(blocks, home, port=free_port())
    try:
        yield url, home, job
    finally:
        job.cancel()
        job.wait(60)
        blocks.close()


@pytest.fixture(scope="module")
def page(app):
    url, _, _ = app
    runner = playwright.sync_playwright().start()
    browser = runner.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    try:
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(url)
        tab.get_by_role("tab", name="Data").wait_for()
        yield tab
    finally:
        browser.close()
        runner.stop()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def fill(page, elem_id: str, text: str) -> None:
    """Type into a gradio Textbox or Number (by the component's elem_id) and commit it."""
    field = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    field.fill(text)
    field.press("Enter")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        DOCS.mkdir(exist_ok=True)
        page.add_style_tag(content=".toast-wrap { display: none !important; }")  # pop-ups
        page.wait_for_timeout(500)  # let the last update settle
        page.screenshot(path=str(DOCS / f"ui-{name}.png"), full_page=True)


def test_data_tab_checks_a_folder_and_hands_it_to_training(page, tiny_model):
    expect = playwright.expect
    open_tab(page, "Data")
    fill(page, "data-folder", str(tiny_model.data_dir))
    page.locator("#data-check").click()
    expect(page.locator("#data-summary")).to_contain_text("8 of 8 files usable")
    expect(page.locator("#data-table")).to_contain_text("ok")
    expect(page.locator("#data-thumbs img")).to_have_count(8)
    screenshot(page, "data")
    page.locator("#data-use").click()
    expect(page.locator("#train-folder textarea, #train-folder input").first).to_have_value(
        str(tiny_model.data_dir)
    )


def test_generate_tab_slider_warning_and_download(page):
    expect = playwright.expect
    open_tab(page, "Generate")
    slider = page.locator("#gen-slider-0")
    expect(slider).to_contain_text("safe")
    number = slider.locator("input[type=number]")
    number.fill("9")
    number.press("Enter")
    expect(page.locator("#gen-warning")).to_contain_text("outside its safe range")
    expect(page.locator("#gen-controls")).to_contain_text("one-shots by default")
    # Duration left empty: the model's typical length (an empty field reaches the server as None)
    page.get_by_text("Export", exact=True).click()  # open the accordion
    page.get_by_label("Normalize loudness").check()
    page.locator("#gen-generate").click()
    link = page.locator("#gen-file a[download]")
    expect(link).to_have_attribute("href", re.compile(r"\.wav$"))
    expect(page.locator("#gen-info")).to_contain_text("one-shot")
    expect(page.locator("#gen-info")).to_contain_text("48000 Hz")
    expect(page.locator("#gen-info")).to_contain_text("LUFS")
    expect(page.locator("#gen-spec img")).to_be_visible()


def test_generate_tab_pack_shows_its_takes_and_one_zip(page):
    expect = playwright.expect
    open_tab(page, "Generate")
    fill(page, "gen-pack-count", "3")
    page.locator("#gen-pack").click()
    zipped = page.locator("#gen-pack-zip a[download]")
    expect(zipped).to_have_attribute("href", re.compile(r"\.zip$"))
    expect(page.locator("#gen-pack-info")).to_contain_text("3 takes")
    for i in range(3):
        player = page.locator(f"#gen-pack-take-{i}")
        expect(player).to_contain_text(f"tiny-0{i + 1}.wav")  # labelled with its file name
        expect(player.locator("a[download]")).to_have_count(1)
    expect(page.locator("#gen-pack-take-3")).to_be_hidden()
    screenshot(page, "generate")


def test_train_tab_live_chart_previews_and_cancel(page, app, tiny_model):
    expect = playwright.expect
    _, _, job = app
    open_tab(page, "Train")
    fill(page, "train-folder", str(tiny_model.data_dir))
    fill(page, "train-epochs", "400")
    page.locator("#train-start").click()
    expect(page.locator("#train-status")).to_contain_text("epoch", timeout=60_000)
    chart = page.locator("#train-chart img")
    expect(chart).to_be_visible()
    first = chart.get_attribute("src")
    expect(chart).not_to_have_attribute("src", first)  # redrawn as training goes on
    expect(page.locator("#train-preview-0 a[download]")).to_have_count(1, timeout=60_000)
    screenshot(page, "train")
    page.locator("#train-cancel").click()
    expect(page.locator("#train-status")).to_contain_text("Stopped", timeout=60_000)
    assert job.wait(60)
    assert job.snapshot().state == "stopped"


def test_library_tab_lists_details_and_asks_before_deleting(page):
    expect = playwright.expect
    open_tab(page, "Library")
    expect(page.locator("#lib-table")).to_contain_text("tiny")
    fill(page, "lib-search", "tiny")
    expect(page.locator("#lib-details")).to_contain_text("Sliders")
    page.locator("#lib-delete").click()
    expect(page.locator("#lib-confirm-delete")).to_be_visible()
    screenshot(page, "library")
    page.locator("#lib-keep").click()
    expect(page.locator("#lib-confirm-delete")).to_be_hidden()


def test_history_tab_compares_two_takes(page):
    expect = playwright.expect
    open_tab(page, "History")
    expect(page.locator("#hist-gallery img").first).to_be_visible()
    page.locator("#hist-compare").click()
    expect(page.locator("#hist-diff")).to_contain_text("params.seed")
    expect(page.locator("#hist-player-a a[download]")).to_have_count(1)
    expect(page.locator("#hist-player-b a[download]")).to_have_count(1)
    screenshot(page, "history")

"""The web page in a real headless browser: Debian's Chromium driven by Playwright.

With DISTILL_SCREENSHOTS=1 each tab is also saved to docs/ui-<tab>.png (for the README).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import served_app, write_demo_sounds

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


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    """(url, home, job): the app on a copy of the tiny model's home with three takes in history
    and a second model ("tiny copy") to switch to."""
    from distill.audio.write import ExportOptions
    from distill.generation.loaded import load
    from distill.generation.render import render_takes
    from distill.library.store import Library

    home = tmp_path_factory.mktemp("ui-browser") / "home"
    shutil.copytree(tiny_model.home, home)
    Library(home).import_file(tiny_model.model_file, name="tiny copy")
    loaded = load("tiny", home=home, device="cpu")
    for seed in (1, 2, 3):
        params = loaded.params(2.0, seed=seed, sliders={"1": 2.0 * seed})
        render_takes(
            loaded, params, ExportOptions(lufs=-20.0), home / "takes", home=home, history=True
        )
    with served_app(home, preview_every=3) as (url, job):  # previews every few epochs
        yield url, home, job


@pytest.fixture(scope="module")
def fresh_app(tmp_path_factory):
    """(url, home, job): the app on an empty home, as a new user first meets it."""
    home = tmp_path_factory.mktemp("ui-fresh") / "home"
    with served_app(home, preview_every=3) as (url, job):  # previews every few epochs
        yield url, home, job


@pytest.fixture(scope="module")
def browser():
    runner = playwright.sync_playwright().start()
    chromium = runner.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    try:
        yield chromium
    finally:
        chromium.close()
        runner.stop()


def open_page(browser, url: str):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(url)
    tab.get_by_role("tab", name="Data").wait_for()
    return tab


@pytest.fixture(scope="module")
def page(browser, app):
    tab = open_page(browser, app[0])
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def fresh_page(browser, fresh_app):
    tab = open_page(browser, fresh_app[0])
    yield tab
    tab.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def fill(page, elem_id: str, text: str) -> None:
    """Type into a gradio Textbox or Number (by the component's elem_id) and commit it."""
    field = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    field.fill(text)
    field.press("Enter")


def choose(page, elem_id: str, option: str) -> None:
    """Pick `option` in a gradio Dropdown."""
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def audio_src(page, elem_id: str) -> str | None:
    """The file a gr.Audio plays (its download link), None when it is empty."""
    link = page.locator(f"#{elem_id} a[download]")
    return link.first.get_attribute("href") if link.count() else None


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        DOCS.mkdir(exist_ok=True)
        page.add_style_tag(content=".toast-wrap { display: none !important; }")  # pop-ups
        page.wait_for_timeout(500)  # let the last update settle
        page.screenshot(path=str(DOCS / f"ui-{name}.png"), full_page=True)


# -- Data ------------------------------------------------------------------------------------
def test_data_tab_checks_a_folder_plays_its_sounds_and_hands_it_to_training(page, tiny_model):
    expect = playwright.expect
    open_tab(page, "Data")
    fill(page, "data-folder", str(tiny_model.data_dir))
    page.locator("#data-check").click()
    expect(page.locator("#data-summary")).to_contain_text("8 of 8 files usable")
    expect(page.locator("#data-table")).to_contain_text("ok")
    expect(page.locator("#data-thumbs img")).to_have_count(8)
    # a row plays its sound, and so does a waveform
    first = sorted(p.stem for p in tiny_model.data_dir.glob("*.wav"))[0]
    page.locator("#data-table").get_by_text(f"{first}.wav", exact=True).click()
    expect(page.locator("#data-player a[download]")).to_have_attribute(
        "href", re.compile(rf"{re.escape(first)}\.wav$")
    )
    page.locator("#data-thumbs .thumbnail-item").nth(1).click()
    second = sorted(p.stem for p in tiny_model.data_dir.glob("*.wav"))[1]
    expect(page.locator("#data-player a[download]")).to_have_attribute(
        "href", re.compile(rf"{re.escape(second)}\.wav$")
    )
    screenshot(page, "data")
    page.locator("#data-use").click()
    expect(page.locator("#train-folder textarea, #train-folder input").first).to_have_value(
        str(tiny_model.data_dir)
    )


def test_many_dropped_files_keep_the_upload_button_in_reach(page, tmp_path):
    expect = playwright.expect
    open_tab(page, "Data")
    sounds = write_demo_sounds(tmp_path / "many", count=36)
    box = page.locator("#data-upload")
    box.locator("input[type=file]").set_input_files(sorted(str(p) for p in sounds.iterdir()))
    expect(box).to_contain_text(sorted(p.stem for p in sounds.iterdir())[-1])  # all listed
    button = page.locator("#data-upload-button").bounding_box()
    top = box.bounding_box()
    assert button["y"] - top["y"] < 450, (top, button)  # it was ~2000 px down
    page.locator("#data-upload-button").click()
    expect(page.locator("#data-summary")).to_contain_text("Copied 36 file(s)", timeout=60_000)


def test_a_whole_folder_can_be_chosen_for_upload(page, tmp_path):
    expect = playwright.expect
    open_tab(page, "Data")
    folder = write_demo_sounds(tmp_path / "field recordings", count=6)
    (folder / "notes.txt").write_text("recorded in the rain")
    fill(page, "data-set-name", "rain")
    with page.expect_file_chooser() as chooser:
        page.locator("#data-upload-folder").click()
    chooser.value.set_files(str(folder))
    summary = page.locator("#data-summary")
    expect(summary).to_contain_text("Copied 6 file(s)", timeout=60_000)
    expect(summary).to_contain_text("1 file(s) that are not audio")
    expect(summary).to_contain_text("6 of 6 files usable")


# -- Generate --------------------------------------------------------------------------------
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
    page.get_by_label("Normalize loudness").uncheck()
    number.fill("0")
    number.press("Enter")


def test_a_wrong_duration_is_named_beside_it_and_the_last_take_stays(page):
    expect = playwright.expect
    open_tab(page, "Generate")
    earlier = audio_src(page, "gen-audio") or ""
    page.locator("#gen-generate").click()
    expect(page.locator("#gen-audio a[download]")).not_to_have_attribute("href", earlier)
    before = audio_src(page, "gen-audio")
    fill(page, "gen-duration", "0.01")
    page.locator("#gen-generate").click()
    expect(page.locator("#gen-duration")).to_contain_text("duration must be between")
    page.wait_for_timeout(1000)
    assert audio_src(page, "gen-audio") == before
    for take_part in ("gen-audio", "gen-file", "gen-wave", "gen-spec", "gen-info"):
        expect(page.locator(f"#{take_part}")).not_to_contain_text("Error")
    expect(page.locator("#gen-spec img")).to_be_visible()
    fill(page, "gen-duration", "")


def test_sliders_fill_from_their_middle(page):
    """0 is the centre: at 0 nothing is filled, at +5 only the right half's first part."""
    open_tab(page, "Generate")
    number = page.locator("#gen-slider-0 input[type=number]")
    track = page.locator("#gen-slider-0 input[type=range]")

    def filled(value: str) -> list[bool]:
        number.fill(value)
        number.press("Enter")
        page.wait_for_timeout(300)
        pixels = np.asarray(Image.open(io.BytesIO(track.screenshot())).convert("RGB")).astype(int)
        row = pixels[pixels.shape[0] // 2]
        r, g, b = row[:, 0], row[:, 1], row[:, 2]
        coloured = (r - b > 80) | (b - r > 80) | (g - r > 80)  # the fill, not the grey track
        width = len(row)
        return [bool(coloured[int(width * x)]) for x in (0.1, 0.3, 0.6, 0.7, 0.9)]

    assert filled("0") == [False, False, False, False, False]
    assert filled("5") == [False, False, True, True, False]  # 0 → +5 is 50 % → 75 %
    assert filled("-5") == [False, True, False, False, False]
    filled("0")


def test_spatial_fields_follow_the_mode(page):
    expect = playwright.expect
    open_tab(page, "Generate")
    page.get_by_text("Spatial", exact=True).click()
    spatial = page.locator("#gen-spatial")
    spatial.get_by_text("binaural", exact=True).click()
    expect(page.locator("#gen-width")).to_be_hidden()
    expect(page.locator("#gen-binaural")).to_be_visible()
    spatial.get_by_text("stereo", exact=True).click()
    expect(page.locator("#gen-width")).to_be_visible()
    expect(page.locator("#gen-binaural")).to_be_hidden()
    spatial.get_by_text("mono", exact=True).click()
    expect(page.locator("#gen-width")).to_be_hidden()


def test_deleting_a_preset_asks_first(page, app):
    expect = playwright.expect
    _, home, _ = app
    from distill.library.presets import Presets

    open_tab(page, "Generate")
    page.get_by_text("Presets", exact=True).click()
    fill(page, "gen-preset-name", "keep me")
    page.locator("#gen-save-preset").click()
    expect(page.locator("#gen-preset input")).to_have_value("keep me")
    page.locator("#gen-delete-preset").click()
    expect(page.locator("#gen-confirm-preset")).to_be_visible()
    page.locator("#gen-keep-preset").click()
    expect(page.locator("#gen-confirm-preset")).to_be_hidden()
    assert [p.name for p in Presets(home).list("tiny")] == ["keep me"]
    page.locator("#gen-delete-preset").click()
    page.locator("#gen-confirm-preset").click()
    expect(page.locator("#gen-confirm-preset")).to_be_hidden()
    expect(page.locator("#gen-preset input")).to_have_value("")
    assert Presets(home).list("tiny") == []


def test_resynthesis_plays_in_its_own_section(page, tiny_model):
    expect = playwright.expect
    open_tab(page, "Generate")
    take = audio_src(page, "gen-audio")
    page.get_by_text("Resynthesize a file through this model", exact=True).click()
    source = sorted(tiny_model.data_dir.glob("*.wav"))[0]
    page.locator("#gen-resynth-file input[type=file]").set_input_files(str(source))
    page.locator("#gen-resynth").click()
    expect(page.locator("#gen-resynth-audio a[download]")).to_have_attribute(
        "href", re.compile(rf"{re.escape(source.stem)}-through-tiny\.wav$")
    )
    expect(page.locator("#gen-resynth-status")).to_contain_text("through tiny")
    assert audio_src(page, "gen-audio") == take  # the Take player above is left alone


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
    page.locator("#gen-zip").click()  # every take of this page: the singles and the pack
    expect(page.locator("#gen-zip-file a[download]")).to_have_attribute(
        "href", re.compile(r"takes-[-0-9]+\.zip$")
    )
    screenshot(page, "generate")


# -- Train -----------------------------------------------------------------------------------
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
    expect(page.locator("#train-preview-note")).to_contain_text("The next previews come after")
    screenshot(page, "train")
    page.locator("#train-cancel").click()
    expect(page.locator("#train-status")).to_contain_text("Stopped", timeout=60_000)
    assert job.wait(60)
    assert job.snapshot().state == "stopped"
    fill(page, "train-epochs", "")


def test_a_new_user_trains_with_a_time_limit_and_goes_to_generate(fresh_page, tiny_model):
    """No model: Generate cannot be pressed. A time-limited run counts epochs without a cap,
    says when previews come, ends as finished (its time budget), and its model is in the
    Generate tab at once; "Go to Generate" opens it there."""
    expect = playwright.expect
    page = fresh_page
    open_tab(page, "Generate")
    expect(page.locator("#gen-generate")).to_be_disabled()
    expect(page.locator("#gen-pack")).to_be_disabled()
    expect(page.locator("#gen-controls")).to_contain_text("No model yet")
    open_tab(page, "Train")
    expect(page.locator("#train-preview-note")).to_contain_text("every few epochs")
    fill(page, "train-folder", str(tiny_model.data_dir))
    fill(page, "train-minutes", "0.25")
    page.locator("#train-start").click()
    status = page.locator("#train-status")
    expect(status).to_contain_text(re.compile(r"epoch \d+, step"), timeout=60_000)
    expect(status).to_contain_text("of its 0.25 min")
    assert not re.search(r"epoch \d+ of", status.inner_text())  # no epoch cap under a limit
    expect(page.locator("#train-preview-note")).to_contain_text(
        re.compile(r"first previews come after epoch 3|Epoch \d+:")
    )
    expect(status).to_contain_text("Finished", timeout=120_000)
    expect(status).to_contain_text("used its time budget of 0.25 min")
    expect(status).not_to_contain_text("Stopped")
    go = page.locator("#train-go")
    expect(go).to_be_visible()
    # The Generate tab has the model already: no tab switch was needed to list it.
    expect(page.locator("#gen-model input")).to_have_value(tiny_model.data_dir.name)
    expect(page.locator("#gen-generate")).to_be_enabled()
    go.click()
    expect(page.get_by_role("tab", name="Generate", exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.locator("#gen-model input")).to_have_value(tiny_model.data_dir.name)
    expect(page.locator("#gen-controls")).to_contain_text("slider")


# -- Library ---------------------------------------------------------------------------------
def test_library_tab_lists_details_and_asks_before_deleting(page):
    expect = playwright.expect
    open_tab(page, "Library")
    expect(page.locator("#lib-table")).to_contain_text("tiny")
    fill(page, "lib-search", "tiny")
    expect(page.locator("#lib-details")).to_contain_text("Sliders")
    expect(page.locator("#lib-details")).not_to_contain_text("train_kl")
    page.locator("#lib-delete").click()
    expect(page.locator("#lib-confirm-delete")).to_be_visible()
    screenshot(page, "library")
    page.locator("#lib-keep").click()
    expect(page.locator("#lib-confirm-delete")).to_be_hidden()


def test_library_edit_boxes_hold_the_chosen_models_own_words(page, app):
    expect = playwright.expect
    _, home, _ = app
    from distill.library.store import Library

    open_tab(page, "Library")
    choose(page, "lib-model", "tiny")
    page.get_by_text("Rename, describe", exact=True).click()
    # the choice fills the edit boxes with the model's own words: let that land before typing
    expect(page.locator("#lib-new-name textarea")).to_have_value("tiny")
    page.wait_for_timeout(500)
    fill(page, "lib-description", "dry hits")
    fill(page, "lib-tags", "drums, short")
    page.locator("#lib-describe").click()
    expect(page.locator("#lib-details")).to_contain_text("dry hits")
    choose(page, "lib-model", "tiny copy")
    expect(page.locator("#lib-details")).to_contain_text("tiny copy")
    expect(page.locator("#lib-description textarea")).to_have_value("")
    expect(page.locator("#lib-tags textarea")).to_have_value("")
    expect(page.locator("#lib-new-name textarea")).to_have_value("tiny copy")
    page.locator("#lib-describe").click()  # saving now keeps the copy's own (empty) words
    page.wait_for_timeout(1000)
    assert Library(home).resolve("tiny copy").description in ("", None)
    assert list(Library(home).resolve("tiny").tags) == ["drums", "short"]
    choose(page, "lib-model", "tiny")
    expect(page.locator("#lib-description textarea")).to_have_value("dry hits")


def test_a_model_downloads_from_the_library(page):
    expect = playwright.expect
    open_tab(page, "Library")
    choose(page, "lib-model", "tiny")
    page.locator("#lib-export").click()
    expect(page.locator("#lib-export-file a[download]")).to_have_attribute(
        "href", re.compile(r"tiny\.distill$")
    )


# -- History ---------------------------------------------------------------------------------
def test_history_tab_compares_two_takes(page):
    expect = playwright.expect
    open_tab(page, "History")
    expect(page.locator("#hist-gallery img").first).to_be_visible()
    page.locator("#hist-compare").click()
    expect(page.locator("#hist-diff")).to_contain_text("seed")
    expect(page.locator("#hist-diff")).not_to_contain_text("params.")
    expect(page.locator("#hist-player-a a[download]")).to_have_count(1)
    expect(page.locator("#hist-player-b a[download]")).to_have_count(1)
    screenshot(page, "history")


def test_history_table_shows_every_column_readably(page):
    open_tab(page, "History")
    table = page.locator("#hist-table")
    playwright.expect(table.locator("th").first).to_be_visible()
    headers = table.locator("th")
    frame = table.bounding_box()
    for i in range(headers.count()):
        box = headers.nth(i).bounding_box()
        text = headers.nth(i).inner_text().strip()
        assert box["height"] < 60, f"header {text!r} wraps: {box}"  # not a letter per line
        assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, f"{text!r} is cut off"


def test_history_players_follow_a_and_b(page, app):
    expect = playwright.expect
    _, home, _ = app
    from distill.library.history import History

    open_tab(page, "History")
    page.locator("#hist-refresh").click()
    entries = History(home).list()
    assert len(entries) >= 3
    page.locator("#hist-compare").click()
    expect(page.locator("#hist-player-b a[download]")).to_have_count(1)
    b_before = audio_src(page, "hist-player-b")
    page.locator("#hist-gallery .thumbnail-item").nth(2).click()  # A ← the third take
    third = entries[2]
    expect(page.locator("#hist-player-a a[download]")).to_have_attribute(
        "href", re.compile(re.escape(third.audio.name) + "$")
    )
    shown_b = page.locator("#hist-b input").input_value()
    other = next(e for e in entries if e.id[:6] not in shown_b and e.id != third.id)
    page.locator("#hist-b input").click()
    page.get_by_role("option").filter(has_text=other.id[:6]).first.click()
    expect(page.locator("#hist-player-b a[download]")).not_to_have_attribute("href", b_before)
    # deleting A: the players move on to the takes now chosen, never the deleted one
    page.locator("#hist-delete").click()
    page.locator("#hist-confirm-delete").click()
    expect(page.locator("#hist-confirm-delete")).to_be_hidden()
    expect(page.locator("#hist-player-a a[download]")).not_to_have_attribute(
        "href", re.compile(re.escape(f"/{third.id}/"))
    )
    assert third.id not in [e.id for e in History(home).list()]

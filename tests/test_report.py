"""The model report: `distill model report` on the tiny model writes one self-contained page with
the loss curves, training and validation files beside their resynthesis (players and
spectrograms), the held-out MR-STFT and every slider; a model without its run says it has no
curves; training makes it at the end and a failing report never costs the model."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from distill.cli.app import app
from distill.controls.sliders import Controls
from distill.library.store import Library
from distill.model.file import read_metadata
from distill.report.content import CLIP_SECONDS, PLAYER_RATE, spread
from distill.report.pictures import TRAIN_COLOUR, VAL_COLOUR
from distill.training.loop import TrainResult


def model_report(home: Path, ref: str, *more: str) -> dict:
    result = CliRunner().invoke(
        app, ["model", "report", ref, "--home", str(home), "--json", *more], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def data_uris(text: str, mime: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(rf'src="data:{mime};base64,([^"]+)"', text)]


def rows_of(page: str, split: str) -> list[str]:
    return re.findall(rf'<tr class="file-row" data-split="{split}">(.*?)</tr>', page, re.S)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x)))))


def has_colour(image: Image.Image, colour: tuple, tolerance: int = 12) -> bool:
    pixels = np.asarray(image.convert("RGB"), dtype=int).reshape(-1, 3)
    return bool((np.abs(pixels - np.array(colour)).max(axis=1) <= tolerance).any())


@pytest.fixture(scope="module")
def report(tiny_model) -> tuple[dict, str]:
    figures = model_report(tiny_model.home, tiny_model.name)
    return figures, Path(figures["report"]).read_text(encoding="utf-8")


def test_the_report_is_kept_in_the_run_folder(tiny_model, report):
    figures, page = report
    path = Path(figures["report"])
    assert path == tiny_model.home.resolve() / "runs" / "tiny" / "report" / "report.html"
    assert json.loads((path.parent / "report.json").read_text())["model"] == "tiny"
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: one portable file
    assert path.stat().st_size < 5_000_000


def test_loss_curves_are_drawn_from_the_metrics(tiny_model, report):
    figures, page = report
    assert figures["curves"] and 'id="no-curves"' not in page
    (curves,) = re.findall(r'id="loss-curves"[^>]*src="data:image/png;base64,([^"]+)"', page)
    image = Image.open(io.BytesIO(base64.b64decode(curves)))
    assert image.width >= 900 and image.height >= 400
    assert has_colour(image, TRAIN_COLOUR) and has_colour(image, VAL_COLOUR)  # both lines drawn
    assert figures["summary"]["epochs"] == 30 and figures["summary"]["minutes"] > 0
    assert figures["summary"]["samples_per_s"] > 0 and figures["summary"]["preset"]
    # The summary says which weights the file holds: the tiny model ran all 30 of its epochs.
    meta = read_metadata(tiny_model.model_file)
    summary = figures["summary"]
    assert summary["weights"] == meta.training["weights"]
    if summary["weights"] == "last":
        assert "the saved model holds the last weights, epoch 30" in page
    else:
        assert f"the saved model is from epoch {summary['best_epoch']}" in page


def test_training_and_validation_rows_hold_players_and_spectrograms(tiny_model, report):
    figures, page = report
    run = json.loads((tiny_model.home / "runs" / "tiny" / "run.json").read_text())
    for split, listed in (
        ("training", run["train_files"]),
        ("validation", run["validation_files"]),
    ):
        rows = rows_of(page, split)
        assert len(rows) == min(4, len(listed)) > 0
        assert [f["file"] for f in figures["files"] if f["split"] == split] == spread(listed)[
            : len(rows)
        ]
        for row, name in zip(rows, spread(listed), strict=False):
            original_wav, resynthesis_wav = data_uris(row, "audio/wav")
            assert len(data_uris(row, "image/png")) == 2  # original and resynthesis
            source, rate = sf.read(tiny_model.data_dir / name, dtype="float32")
            clip, clip_rate = sf.read(io.BytesIO(original_wav), dtype="float32")
            again, _ = sf.read(io.BytesIO(resynthesis_wav), dtype="float32")
            assert clip_rate == PLAYER_RATE and len(clip) == len(again)
            expected = min(len(source) / rate, CLIP_SECONDS) * PLAYER_RATE
            assert abs(len(clip) - expected) <= 2
            # The player holds that recording: its level is the file's (resampled, not changed).
            assert abs(rms_db(clip) - rms_db(source[: int(CLIP_SECONDS * rate)])) < 0.5
            assert np.any(again)
            original_png, _ = data_uris(row, "image/png")
            picture = Image.open(io.BytesIO(original_png)).convert("L")
            assert np.asarray(picture).std() > 10  # a spectrogram, not a blank panel


def test_held_out_mrstft_is_the_validation_mean(report):
    figures, page = report
    values = [f["mrstft"] for f in figures["files"] if f["split"] == "validation"]
    assert figures["heldout_mrstft"] == pytest.approx(np.mean(values))
    assert 0 < figures["heldout_mrstft"] < 20
    (shown,) = re.findall(r'id="heldout-mrstft">([0-9.]+)<', page)
    assert shown == f"{figures['heldout_mrstft']:.2f}"


def test_every_slider_and_the_corpus_memory_are_described(tiny_model, report):
    figures, page = report
    controls = Controls.from_dict(read_metadata(tiny_model.model_file).controls)
    assert figures["sliders"] == controls.labels and len(controls) > 0
    sliders = page[page.index('id="sliders"') :]
    for label in controls.labels:
        assert f"<b>{html.escape(label)}</b>" in sliders
    assert figures["corpus"]["mode"] in ("oneshot", "texture")
    assert 'id="corpus"' in page and "typical event" in page


def test_a_model_without_its_run_says_it_has_no_curves(tiny_model, tmp_path):
    home = tmp_path / "other home"
    entry = Library(home).import_file(tiny_model.model_file, name="friend's model")
    figures = model_report(home, "friend's model")

    path = Path(figures["report"])
    assert path == home.resolve() / "reports" / entry.id / "report.html"
    page = path.read_text(encoding="utf-8")
    assert not figures["curves"] and 'id="no-curves"' in page and "no loss curves" in page
    assert not rows_of(page, "training") and figures["heldout_mrstft"] is None
    assert "friend&#x27;s model" in page  # names are escaped
    for label in figures["sliders"]:
        assert html.escape(label) in page


def test_missing_files_are_skipped_with_a_note(tiny_model, tmp_path):
    """A run whose data folder lost all but one training file: one row, and a note."""
    run = tmp_path / "home" / "runs" / "moved"
    shutil.copytree(tiny_model.home / "runs" / "tiny", run, ignore=shutil.ignore_patterns("*.pt"))
    spec = json.loads((run / "run.json").read_text())
    kept = sorted(spec["train_files"])[0]
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tiny_model.data_dir / kept, data / kept)
    (run / "run.json").write_text(json.dumps({**spec, "data_dir": str(data)}))

    figures = model_report(tmp_path / "home", str(run / "model.distill"), "--out", str(tmp_path))
    assert figures["report"] == str(tmp_path / "report.html") and figures["curves"]
    assert [f["file"] for f in figures["files"]] == [kept]
    assert figures["heldout_mrstft"] is None
    assert any("Skipped" in n and "not found" in n for n in figures["notes"])


def test_training_makes_the_report_and_a_failure_is_one_warning(tiny_model, monkeypatch, capsys):
    from distill.cli import train

    calls = []
    monkeypatch.setattr(
        "distill.report.write_report",
        lambda model_file, **kw: calls.append((model_file, kw)) or {"report": "page.html"},
    )
    run = tiny_model.home / "runs" / "tiny"
    result = SimpleNamespace(model_file=tiny_model.model_file, run=run)
    assert train._report(result, {"id": "ab12", "name": "tiny"}, None, None, sys.stdout) == (
        "page.html"
    )
    assert calls[0][0] == tiny_model.model_file and calls[0][1]["out"] == run / "report"

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory\nmore detail")

    monkeypatch.setattr("distill.report.write_report", broken)
    assert train._report(result, None, None, None, sys.stdout) is None
    warning = capsys.readouterr().out.splitlines()[-1]
    assert warning.startswith("warning: no model report (out of memory); try: distill model")
    assert tiny_model.model_file.is_file()


def test_the_web_page_writes_reports_where_it_can_serve_them(tiny_model, tmp_path, monkeypatch):
    from distill.ui import report_panel
    from distill.ui.common import UIContext
    from distill.ui.jobs import CANCEL_REASON, TrainingJob

    calls = []
    monkeypatch.setattr(
        "distill.report.write_report",
        lambda model_file, **kw: calls.append(kw) or {"report": str(kw["out"] / "report.html")},
    )
    trained = Library(tiny_model.home).resolve(tiny_model.name)
    path, _ = report_panel.make_report(UIContext(home=tiny_model.home), trained.id)
    assert path == tiny_model.home / "runs" / "tiny" / "report" / "report.html"

    home = tmp_path / "home"
    imported = Library(home).import_file(tiny_model.model_file)
    path, _ = report_panel.make_report(UIContext(home=home), imported.id)
    assert path == home.resolve() / "ui" / "reports" / imported.id / "report.html"
    assert calls[-1]["run"] is None

    job = TrainingJob(tiny_model.home)
    result = TrainResult(
        run=Path(trained.run),
        model_file=tiny_model.model_file,
        epochs_completed=30,
        stopped=None,
        best_epoch=26,
        last_epoch={},
        weights="last",
        weights_epoch=30,
    )
    lines = job._ending_lines(result, trained, False)
    assert any("model report" in line for line in lines)
    assert any("the model keeps the last weights (epoch 30" in line for line in lines)
    assert calls[-1]["out"] == Path(trained.run) / "report"
    cancelled = len(calls)
    stopped = dataclasses.replace(result, stopped=CANCEL_REASON)
    job._ending_lines(stopped, trained, True)
    assert len(calls) == cancelled  # a cancelled training is left alone: quick to stop

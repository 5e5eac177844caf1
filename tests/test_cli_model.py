"""`distill model ...` through the real entry point, in subprocesses: output, exit codes, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import soundfile as sf
import torch

from distill.audio import synth
from distill.library.store import Library
from distill.model.file import ModelMetadata, read_metadata, save_model_file
from distill.model.vae import ConvVAE, ModelConfig
from distill.spectral import ChannelStats, SpectralConfig
from helpers import distill, fake_controls, ok, one_line_error


def make_model_file(path: Path, name: str, seed: int = 0, tags=("drums",)) -> Path:
    torch.manual_seed(seed)
    model = ConvVAE(ModelConfig(n_mels=32, frames=16, channels=(4, 8, 8, 16, 16), latent_dim=8))
    metadata = ModelMetadata(
        model=model.config,
        spectral=SpectralConfig(n_mels=32, chunk_seconds=0.16),  # 16 frames, as the model
        stats=ChannelStats(),
        training={"dataset": "kicks", "files": 7, "epochs": 4, "final_losses": {"val_total": 2.5}},
        info={"name": name, "description": "punchy", "tags": list(tags)},
        controls=fake_controls(["brightness"]),
    )
    return save_model_file(path, model, metadata)


@pytest.fixture
def kicks(tmp_path, empty_home) -> Path:
    """A library holding one model, "kicks"; returns the original file."""
    path = make_model_file(tmp_path / "kicks.distill", "kicks")
    Library(empty_home).add(path)
    return path


def test_list_json_and_search(empty_home, kicks, tmp_path):
    Library(empty_home).add(make_model_file(tmp_path / "pads.distill", "Pads", seed=1, tags=()))

    models = json.loads(ok(distill(empty_home, "model", "list", "--json")))["models"]
    assert [m["name"] for m in models] == ["kicks", "Pads"]
    assert models[0]["tags"] == ["drums"] and models[0]["controls"] == ["brightness"]
    assert Path(models[0]["path"]).parent == empty_home.resolve() / "models"
    found = json.loads(ok(distill(empty_home, "model", "list", "--search", "DRUM", "--json")))
    assert [m["name"] for m in found["models"]] == ["kicks"]

    table = ok(distill(empty_home, "model", "list"))
    assert "kicks" in table and "Pads" in table and models[0]["id"][:8] in table


def test_info_human_and_json(empty_home, kicks):
    text = ok(distill(empty_home, "model", "info", "KICKS"))
    for needle in ("name:         kicks", "punchy", "drums", "kicks (7 files)", "brightness"):
        assert needle in text
    assert "val_total 2.5" in text and re.search(r"\(\d+(\.\d)? (kB|MB)\)", text)

    data = json.loads(ok(distill(empty_home, "model", "info", "kicks", "--json")))
    assert data["epochs"] == 4 and data["final_losses"] == {"val_total": 2.5}
    assert data["size"] == Path(data["path"]).stat().st_size and data["in_library"]


def test_rename_then_describe(empty_home, kicks):
    entry = Library(empty_home).resolve("kicks")
    out = ok(distill(empty_home, "model", "rename", entry.id[:6], "Big Kicks"))
    assert out.strip() == f"renamed kicks to Big Kicks (id {entry.id})"
    assert read_metadata(entry.path).info["name"] == "Big Kicks"

    args = ["model", "describe", "big kicks", "--description", "808s", "-t", "Low", "-t", "sub"]
    data = json.loads(ok(distill(empty_home, *args, "--json")))
    assert data["description"] == "808s" and data["tags"] == ["Low", "sub"]
    one_line_error(distill(empty_home, "model", "describe", "big kicks"), "nothing to change")


def test_delete_needs_yes_without_a_terminal(empty_home, kicks):
    one_line_error(distill(empty_home, "model", "delete", "kicks"), "--yes")
    assert len(Library(empty_home).list()) == 1

    out = ok(distill(empty_home, "model", "delete", "kicks", "--yes"))

    assert out.startswith("deleted kicks (id ")
    assert Library(empty_home).list() == [] and not list((empty_home / "models").iterdir())


def test_export_and_import(empty_home, kicks, tmp_path):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    ok(distill(empty_home, "model", "export", "kicks", str(out_dir)))
    exported = out_dir / "kicks.distill"
    assert read_metadata(exported).info["name"] == "kicks"

    one_line_error(distill(empty_home, "model", "export", "kicks", str(out_dir)), "--force")
    ok(distill(empty_home, "model", "export", "kicks", str(exported), "--force"))

    data = json.loads(
        ok(distill(empty_home, "model", "import", str(exported), "--name", "k2", "--json"))
    )
    assert data["name"] == "k2" and data["in_library"]
    names = [e.name for e in Library(empty_home).list()]
    assert names == ["k2", "kicks"]


def test_import_of_a_damaged_file_is_one_line(empty_home, kicks, tmp_path):
    broken = tmp_path / "broken.distill"
    broken.write_bytes(kicks.read_bytes()[:1000])
    one_line_error(distill(empty_home, "model", "import", str(broken)), "broken.distill")
    assert [e.name for e in Library(empty_home).list()] == ["kicks"]


def test_an_unknown_model_is_exit_2_and_one_line(empty_home, kicks):
    one_line_error(distill(empty_home, "model", "info", "snares"), "'snares'", "kicks")


def test_root_home_option_is_honoured(empty_home, kicks, tmp_path):
    other = tmp_path / "empty home"
    result = distill(other, "--home", str(empty_home), "model", "list", "--json")
    assert [m["name"] for m in json.loads(ok(result))["models"]] == ["kicks"]


def test_train_reports_its_library_entry(empty_home, tmp_path):
    data = tmp_path / "beats"
    data.mkdir()
    for name, audio in synth.demo_corpus(3, 5):
        sf.write(data / f"{name}.wav", audio[: int(0.6 * 48_000)], 48_000)
    tiny = ["--channels", "4,8,8,16,16", "--chunk-seconds", "0.5", "--latent-dim", "8"]
    result = distill(
        empty_home, "train", str(data), "--epochs", "1", "--threads", "1", *tiny, "--json"
    )

    out = json.loads(ok(result))
    entry = Library(empty_home).resolve(out["library"]["id"])
    assert entry.name == out["library"]["name"] == "beats"
    assert f"saved to the library as beats (id {entry.id})" in result.stderr


def test_sliders_can_be_shown_renamed_and_found_again(tiny_model, home, tmp_path):
    shown = json.loads(ok(distill(home, "model", "sliders", "tiny", "--json")))
    labels = [s["label"] for s in shown["sliders"]]
    assert labels and all(
        -10 <= lo <= hi <= 10 for lo, hi in (s["safe_range"] for s in shown["sliders"])
    )

    ok(distill(home, "preset", "save", "tiny", "mine", "--slider", f"{labels[0]}=2"))
    renamed = ok(distill(home, "model", "rename-slider", "tiny", "1", "sparkle"))
    assert "1 preset updated" in renamed
    preset = json.loads(ok(distill(home, "preset", "show", "tiny", "mine", "--json")))
    assert preset["sliders"] == {"sparkle": 2.0}  # the preset follows the new name
    assert (
        read_metadata(Library(home).resolve("tiny").path).controls["axes"][0]["label"] == "sparkle"
    )
    assert Library(home).resolve("tiny").controls[0] == "sparkle"  # the index follows
    generated = distill(
        home,
        "generate",
        "tiny",
        "-d",
        "1",
        "--slider",
        "sparkle=3",
        "--out",
        str(tmp_path),
        "--no-history",
    )
    ok(generated)
    if len(labels) > 1:
        clash = distill(home, "model", "rename-slider", "tiny", "1", labels[1])
        one_line_error(clash, "already called")

    # analysing again from the training folder replaces the renamed sliders with found ones
    again = json.loads(
        ok(distill(home, "model", "analyze", "tiny", str(tiny_model.data_dir), "--json"))
    )
    assert again["sliders"] and "sparkle" not in again["sliders"]
    missing = distill(home, "model", "analyze", "tiny", str(tmp_path / "nowhere"))
    one_line_error(missing, "not found")

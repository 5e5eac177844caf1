"""`.distill` files: safetensors + JSON, exact round trip, clear errors, never pickle."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch

from distill.model.file import (
    ModelFileError,
    ModelMetadata,
    load_model_file,
    read_metadata,
    save_model_file,
)
from distill.model.vae import ConvVAE, ModelConfig
from distill.spectral import ChannelStats, SpectralConfig


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=(4, 8, 8, 16, 16), latent_dim=8))
    meta = ModelMetadata(
        model=model.config,
        spectral=SpectralConfig(),
        stats=ChannelStats(mean=(-9.5, 0.01), std=(3.2, 0.4)),
        training={"dataset": "kicks", "epochs": 3},
        info={"name": "kicks", "description": "", "tags": ["drums"]},
    )
    path = save_model_file(tmp_path / "kicks model.distill", model, meta)
    return path, model, meta


def _rewrite_header(path, edit):
    """Change the JSON header of a safetensors file in place (keeping the tensors)."""
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    edit(header)
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + size :])


def test_round_trip_is_exact_and_never_unpickles(saved, monkeypatch):
    path, model, meta = saved

    def refuse(*args, **kwargs):
        raise AssertionError("pickle must not be used to load a model file")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded, loaded_meta = load_model_file(path)
    model.eval()
    x = torch.randn(2, 2, 128, 94)
    # Channels-last convolutions (the loaded model's, on a CPU) sum in another order: ~1e-6 apart.
    assert torch.allclose(model(x)[0], loaded(x)[0], atol=1e-5)
    assert loaded_meta.stats == meta.stats and loaded_meta.spectral == meta.spectral
    assert loaded_meta.info["tags"] == ["drums"] and read_metadata(path).training["epochs"] == 3


def test_a_loaded_model_decodes_channels_last_and_saves_again(saved, tmp_path):
    """On a CPU the loaded model's convolutions are channels-last (faster latent fits); its
    decoding matches the saved model's, and it can be written out again unchanged."""
    path, model, meta = saved
    loaded, _ = load_model_file(path)
    convs = [m for m in loaded.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    assert convs and all(
        c.weight.is_contiguous(memory_format=torch.channels_last) and not c.weight.is_contiguous()
        for c in convs
        if c.weight.shape[2:] != (1, 1)
    )
    z = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(model.eval().decode(z), loaded.decode(z), atol=1e-5)
    again, _ = load_model_file(save_model_file(tmp_path / "again.distill", loaded, meta))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name])


def test_truncated_file_is_a_one_line_error(saved):
    path, _, _ = saved
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated") as err:
        load_model_file(path)
    assert "\n" not in str(err.value)


def test_altered_weights_are_detected(saved):
    path, _, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF  # flip bits in the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="altered"):
        load_model_file(path)


def test_newer_format_version_asks_for_an_upgrade(saved):
    path, _, _ = saved

    def bump(header):
        doc = json.loads(header["__metadata__"]["distill"])
        doc["version"] = 99
        header["__metadata__"]["distill"] = json.dumps(doc)

    _rewrite_header(path, bump)
    with pytest.raises(ModelFileError, match="newer Distill"):
        load_model_file(path)


def test_other_files_are_refused(tmp_path):
    not_model = tmp_path / "song.distill"
    not_model.write_text("just text")
    with pytest.raises(ModelFileError):
        load_model_file(not_model)
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "missing.distill")


def test_non_finite_weights_are_never_saved(tmp_path):
    model = ConvVAE(ModelConfig(channels=(4, 8, 8, 16, 16), latent_dim=8))
    with torch.no_grad():
        model.to_mu.weight[0, 0] = float("nan")
    meta = ModelMetadata(model.config, SpectralConfig(), ChannelStats())
    with pytest.raises(ValueError, match="non-finite"):
        save_model_file(tmp_path / "bad.distill", model, meta)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind

"""Sane bounds on every field of a `.distill` file's description, checked before anything is built.

A model file comes from anyone, and its JSON can be edited without touching the tensors. Every
number that sizes an allocation or a loop (conv widths, latent size, STFT size, NNLS iterations,
corpus chunks …) is checked here against a bound far above what Distill itself writes, and the
tensors' shapes are checked against the description (read from the safetensors header, before a
byte of weights is loaded or a layer allocated). A file that breaks a bound raises ValueError
with a one-line message naming the field; distill.model.file turns it into a ModelFileError.

The defaults (1 s chunks at 48 kHz, 2048-point STFT, latent 128, widths 16 … 256) give a model
of 3.0 M parameters (2.0 M in the conv blocks, 1.0 M in the profile map) whose widest activation
holds 16 × 64 × 48 = 49 152 values per chunk (files from the seed design: widths 64 … 1024, 17 M
parameters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from distill.model.vae import ARCHITECTURES, ModelConfig, build, parameter_count
from distill.spectral.config import SpectralConfig

# model
MAX_N_MELS = 512
MAX_FRAMES = 1024  # STFT frames per chunk (94 at the defaults)
MAX_LATENT = 1024
MAX_BLOCKS = 8
MAX_WIDTH = 4096  # channels of one conv block
MAX_PROFILE_RANK = 64
MAX_PARAMETERS = 250_000_000  # 1 GB of float32 weights (the defaults: 3.0 M)
MAX_ACTIVATION = 16_000_000  # values of the widest activation, per chunk (the defaults: 49 152)
# representation
SAMPLE_RATES = (8_000, 192_000)  # Hz
N_FFT = (16, 16_384)  # samples
MIN_HOP = 16  # samples; and at least n_fft / 16 (the defaults: 512 = n_fft / 4)
CHUNK_SECONDS = (0.01, 10.0)
MAX_NNLS_ITERATIONS = 500  # the defaults: 50; each one is a pass over the whole spectrogram
MAX_REFINE_ITERATIONS = 100  # the defaults: 8
# sliders and corpus memory
MAX_SLIDERS = 64
MAX_LABEL = 200  # characters
MAX_CORPUS_CHUNKS = 65_536  # distill keeps at most controls.corpus.MAX_CHUNKS = 8192
MAX_SECONDS = 1e7  # s: any duration a corpus file may claim


def check_description(doc: Mapping) -> None:
    """Check the model, spectral, stats, controls and corpus entries of a parsed description."""
    model = _model(_mapping(doc.get("model"), "model"))
    spectral = _spectral(_mapping(doc.get("spectral"), "spectral"))
    if model.n_mels != spectral.n_mels:
        raise ValueError(
            f"model.n_mels ({model.n_mels}) differs from spectral.n_mels ({spectral.n_mels})"
        )
    if model.frames != spectral.chunk_frames:
        raise ValueError(
            f"model.frames ({model.frames}) differs from the chunk's {spectral.chunk_frames} "
            "STFT frames"
        )
    _stats(_mapping(doc.get("stats"), "stats"))
    for key in ("training", "info"):
        if doc.get(key) is not None and not isinstance(doc[key], Mapping):
            raise ValueError(f"{key} is not an object")
    if doc.get("controls") is not None:
        _controls(_mapping(doc["controls"], "controls"), model.latent_dim)
    if doc.get("corpus") is not None:
        _corpus(_mapping(doc["corpus"], "corpus"))


def expected_shapes(doc: Mapping) -> dict[str, tuple[int, ...]]:
    """The weight shapes the description's model has, without allocating it (meta device)."""
    config = ModelConfig.from_dict(dict(doc["model"]))
    with torch.device("meta"):
        model = build(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def check_corpus_shapes(doc: Mapping, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """The corpus memory's μ and σ: (chunks, latent) each, covering every file's chunks."""
    latent = int(doc["model"]["latent_dim"])
    corpus = doc.get("corpus")
    mu, sigma = shapes.get("mu"), shapes.get("sigma")
    if corpus is None:
        if mu is not None or sigma is not None:
            raise ValueError("corpus tensors without a corpus description")
        return
    if mu is None or sigma is None:
        raise ValueError("the corpus description has no corpus.mu / corpus.sigma tensors")
    if mu != sigma or len(mu) != 2 or mu[1] != latent or not 1 <= mu[0] <= MAX_CORPUS_CHUNKS:
        raise ValueError(
            f"corpus tensors have shapes {mu} and {sigma}, not (chunks ≤ {MAX_CORPUS_CHUNKS}, "
            f"{latent})"
        )
    for i, f in enumerate(corpus["files"]):
        if f["first"] + f["count"] > mu[0]:
            raise ValueError(f"corpus.files[{i}] points past the {mu[0]} stored chunks")


def check_corpus_values(tensors: Mapping[str, torch.Tensor]) -> None:
    """μ finite, σ finite and ≥ 0 (the sampler draws μ + σ·ε)."""
    for name in ("mu", "sigma"):
        t = tensors.get(name)
        if t is None:
            continue
        if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
            raise ValueError(f"corpus.{name} holds non-finite or non-float values")
    if "sigma" in tensors and bool((tensors["sigma"] < 0).any()):
        raise ValueError("corpus.sigma holds negative values")


# -- one entry each ---------------------------------------------------------------------------
def _model(data: Mapping) -> ModelConfig:
    known = {
        "n_mels",
        "frames",
        "latent_dim",
        "channels",
        "dropout",
        "logvar_limit",
        "arch",
        "profile_rank",
    }
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"model has unknown settings {sorted(unknown)}")
    for key in ("n_mels", "frames", "latent_dim", "channels"):
        if key not in data:
            raise ValueError(f"model.{key} is missing")
    _int("model.n_mels", data["n_mels"], 1, MAX_N_MELS)
    _int("model.frames", data["frames"], 1, MAX_FRAMES)
    _int("model.latent_dim", data["latent_dim"], 1, MAX_LATENT)
    widths = data["channels"]
    if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_BLOCKS:
        raise ValueError(f"model.channels must be a list of 1–{MAX_BLOCKS} widths")
    for i, width in enumerate(widths):
        _int(f"model.channels[{i}]", width, 1, MAX_WIDTH)
    if "dropout" in data:
        _number("model.dropout", data["dropout"], 0.0, 0.99)
    arch = data.get("arch", "conv2d")
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ValueError(
            f"model.arch must be one of {', '.join(ARCHITECTURES)} (got {data.get('arch')!r})"
        )
    if "logvar_limit" in data:
        _number("model.logvar_limit", data["logvar_limit"], 0.1, 30.0)
    if "profile_rank" in data:
        _int("model.profile_rank", data["profile_rank"], 0, MAX_PROFILE_RANK)
    config = ModelConfig.from_dict(dict(data))
    parameters = parameter_count(config)
    if parameters > MAX_PARAMETERS:
        raise ValueError(f"model has {parameters:,} parameters (at most {MAX_PARAMETERS:,})")
    h, w = config.padded_shape
    widest = max(c * (h >> (i + 1)) * (w >> (i + 1)) for i, c in enumerate(config.channels))
    if widest > MAX_ACTIVATION:
        raise ValueError(
            f"model layers hold {widest:,} values per chunk (at most {MAX_ACTIVATION:,})"
        )
    return config


def _spectral(data: Mapping) -> SpectralConfig:
    defaults = SpectralConfig()
    get = lambda key: data.get(key, getattr(defaults, key))  # noqa: E731
    rate = _int("spectral.sample_rate", get("sample_rate"), *SAMPLE_RATES)
    n_fft = _int("spectral.n_fft", get("n_fft"), *N_FFT)
    _int("spectral.hop_length", get("hop_length"), max(MIN_HOP, n_fft // 16), n_fft)
    _int("spectral.n_mels", get("n_mels"), 1, min(MAX_N_MELS, n_fft // 2 + 1))
    f_min = _number("spectral.f_min", get("f_min"), 0.0, rate / 2)
    _number("spectral.f_max", get("f_max"), f_min + 1.0, rate / 2)
    _number("spectral.chunk_seconds", get("chunk_seconds"), *CHUNK_SECONDS)
    _number("spectral.log_floor", get("log_floor"), 1e-12, 1e-2)
    _number("spectral.if_mask_db", get("if_mask_db"), 0.0, 300.0)
    _int("spectral.nnls_iterations", get("nnls_iterations"), 0, MAX_NNLS_ITERATIONS)
    _int("spectral.refine_iterations", get("refine_iterations"), 0, MAX_REFINE_ITERATIONS)
    _number("spectral.refine_momentum", get("refine_momentum"), 0.0, 1.0)
    return SpectralConfig.from_dict(dict(data))


def _stats(data: Mapping) -> None:
    for key, low in (("mean", -1e6), ("std", 1e-9)):
        values = data.get(key)
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError(f"stats.{key} must hold 2 numbers")
        for i, v in enumerate(values):
            _number(f"stats.{key}[{i}]", v, low, 1e6)


def _controls(data: Mapping, latent: int) -> None:
    """Everything controls.sliders.Controls.from_dict reads, so that it cannot fail later."""
    if data.get("version") != 1:
        raise ValueError(f"controls.version is {data.get('version')!r}, not 1")
    axes = data.get("axes")
    if not isinstance(axes, list) or len(axes) > MAX_SLIDERS:
        raise ValueError(f"controls.axes must be a list of at most {MAX_SLIDERS} sliders")
    for key in ("mean", "latent_std"):
        values = data.get(key)
        if not isinstance(values, list) or len(values) != latent:
            raise ValueError(f"controls.{key} must hold {latent} numbers (the latent size)")
        for i, v in enumerate(values):
            _number(f"controls.{key}[{i}]", v, -1e6, 1e6)
    for i, axis in enumerate(axes):
        axis = _mapping(axis, f"controls.axes[{i}]")
        label = axis.get("label")
        if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL:
            raise ValueError(f"controls.axes[{i}].label must be text of 1–{MAX_LABEL} characters")
        direction = axis.get("direction")
        if not isinstance(direction, list) or len(direction) != latent:
            raise ValueError(f"controls.axes[{i}].direction must hold {latent} numbers")
        for j, v in enumerate(direction):
            _number(f"controls.axes[{i}].direction[{j}]", v, -1e6, 1e6)
        _number(f"controls.axes[{i}].variance", axis.get("variance"), 0.0, 1.0)
        _number(f"controls.axes[{i}].scale", axis.get("scale"), 1e-12, 1e6)
        for key in ("std", "low", "high"):
            _number(f"controls.axes[{i}].{key}", axis.get(key), -1e6, 1e6)
        for key in ("correlations", "changes"):  # may hold NaN (a feature that never moved)
            values = axis.get(key) if key == "correlations" else axis.get(key) or {}
            if not isinstance(values, Mapping) or not all(_real(v) for v in values.values()):
                raise ValueError(f"controls.axes[{i}].{key} must map names to numbers")


def _corpus(data: Mapping) -> None:
    if data.get("version") != 1:
        raise ValueError(f"corpus.version is {data.get('version')!r}, not 1")
    files = data.get("files")
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_CORPUS_CHUNKS:
        raise ValueError(f"corpus.files must list 1–{MAX_CORPUS_CHUNKS} files")
    for i, f in enumerate(files):
        f = _mapping(f, f"corpus.files[{i}]")
        where = f"corpus.files[{i}]"
        if not isinstance(f.get("name"), str):
            raise ValueError(f"{where}.name is not text")
        _int(f"{where}.first", f.get("first"), 0, MAX_CORPUS_CHUNKS - 1)
        _int(f"{where}.count", f.get("count"), 1, MAX_CORPUS_CHUNKS)
        for key in ("duration", "event_seconds", "peak_seconds"):
            _number(f"{where}.{key}", f.get(key), 0.0, MAX_SECONDS)
        _number(f"{where}.onset_rate", f.get("onset_rate"), 0.0, 1e4)
        if f.get("loudness") is not None:
            _number(f"{where}.loudness", f["loudness"], -300.0, 100.0)
        if not isinstance(f.get("oneshot"), bool):
            raise ValueError(f"{where}.oneshot is not true or false")


# -- values -----------------------------------------------------------------------------------
def _mapping(value: object, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} is missing or not an object")
    return value


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} = {_shown(value)} is not a whole number from {low} to {high}")
    return value


def _number(name: str, value: object, low: float, high: float) -> float:
    if not _real(value) or not math.isfinite(value) or not low <= value <= high:  # type: ignore[arg-type]
        raise ValueError(f"{name} = {_shown(value)} is not a number from {low:g} to {high:g}")
    return float(value)  # type: ignore[arg-type]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

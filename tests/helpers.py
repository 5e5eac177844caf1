"""Plain helpers the test files share: the tiny training settings, test sounds and what they are
measured with, the `distill` command in a subprocess, and the web page served in-process.
Fixtures are in conftest.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from distill.audio import synth
from distill.model.loss import LossConfig, STFTLossConfig
from distill.spectral import SpectralConfig

if TYPE_CHECKING:
    from distill.ui.jobs import TrainingJob

# --- tiny models: seconds per training run ------------------------------------------------------

TINY_SPECTRAL = SpectralConfig(chunk_seconds=0.5)
TINY_TRAINING = dict(
    spectral=TINY_SPECTRAL,
    channels=(4, 8, 8, 16, 16),
    loss=LossConfig(stft=STFTLossConfig(max_items=2)),
    preset="conservative",
    latent_dim=8,
    batch_size=4,
    learning_rate=3e-3,
    augment={"copies": 0},
    preview_every=100,
    checkpoint_every=100,
    # one thread, always: training sets torch's thread count for the whole process, and a model
    # trained with 1 or 2 threads differs in its last bits; pinning it keeps every test's tiny
    # model the same whatever ran before
    threads=1,
)
# What a training started from the web page uses in the UI tests (the job's overrides).
TINY_UI_OVERRIDES = dict(
    spectral=TINY_SPECTRAL,
    channels=(4, 8, 8, 16, 16),
    latent_dim=8,
    batch_size=4,
    augment={"copies": 0},
    preview_every=100,
    checkpoint_every=100,
)


def fake_controls(labels, latent: int = 8) -> dict:
    """Sliders for an untrained test model: each label on its own latent axis."""
    from distill.controls.sliders import Axis, Controls

    axes = tuple(
        Axis(label, 0.3, tuple(float(i == k) for i in range(latent)), 1.0, -1.0, 1.0, 1.5, {})
        for k, label in enumerate(labels)
    )
    return Controls(mean=(0.0,) * latent, axes=axes, latent_std=(1.0,) * latent).to_dict()


# --- sounds and measurements --------------------------------------------------------------------


def write_demo_sounds(folder: Path, count: int = 8, seed: int = 7) -> Path:
    """`count` demo-corpus sounds (0.9 s, 48 kHz, 24-bit WAV) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in synth.demo_corpus(seed, count):
        sf.write(folder / f"{name}.wav", audio[: int(0.9 * 48_000)], 48_000, subtype="PCM_24")
    return folder


def sine(
    hz: float,
    seconds: float = 1.0,
    rate: int = 48_000,
    amplitude: float = 0.5,
    channels: int | None = None,
) -> np.ndarray:
    """A plain sine (no fades, unlike `synth.sine`), float32: shape (samples,), or (samples,
    channels) when `channels` is given, each channel 0.3 rad later than the one before."""
    t = np.arange(round(seconds * rate)) / rate  # s
    phases = 0.3 * np.arange(channels or 1)  # rad; the first is 0
    x = (amplitude * np.sin(2 * np.pi * hz * t[:, None] + phases)).astype(np.float32)
    return x if channels else x[:, 0]


def peak_hz(x: np.ndarray, rate: int = 48_000) -> float:
    """The strongest frequency in Hz: a Hann-windowed FFT zero-padded to 1/8 Hz bins (or longer),
    refined by a parabola through the log magnitudes of the peak bin and its two neighbours."""
    n_fft = max(len(x), 8 * rate)
    mag = np.log(np.abs(np.fft.rfft(x * np.hanning(len(x)), n_fft)) + 1e-12)
    k = int(np.argmax(mag[1:-1])) + 1
    shift = 0.5 * (mag[k - 1] - mag[k + 1]) / (mag[k - 1] - 2 * mag[k] + mag[k + 1])
    return float((k + shift) * rate / n_fft)


# --- the `distill` command, through its real entry point ----------------------------------------

ENTRY = [sys.executable, "-c", "from distill.cli.app import main; main()"]


def cli_env(home: Path | None) -> dict[str, str]:
    """The environment `distill` runs in: `home` as DISTILL_HOME (None: the caller's), UTF-8
    output, a wide terminal (no wrapped lines) and one OpenMP thread (the models are tiny; more
    threads only contend on a busy test machine)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    if home is not None:
        env["DISTILL_HOME"] = str(home)
    return env


def distill(
    home: Path | None, *args: str, entry: list[str] = ENTRY, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`distill *args` in a subprocess (stdin closed), its output captured as text."""
    return subprocess.run(
        [*entry, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=cli_env(home),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    """The standard output of a command that must have succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """The one `error: …` line a failed command printed (exit `code`, no traceback), which holds
    each of `needles`."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- the web page -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_app(home: Path, **overrides) -> Iterator[tuple[str, TrainingJob]]:
    """(url, training job): the page for `home` served in-process on a free port, its trainings
    tiny (TINY_UI_OVERRIDES, then `overrides`); the job is cancelled and the server closed after."""
    from distill.ui.app import build_app, serve
    from distill.ui.jobs import TrainingJob

    job = TrainingJob(home, device="cpu", overrides=TINY_UI_OVERRIDES | overrides)
    blocks = build_app(home, device="cpu", job=job)
    url = serve(blocks, home, port=free_port())
    try:
        yield url, job
    finally:
        job.cancel()
        job.wait(60)
        blocks.close()

"""The corpus memory: what a model learned about each of its training recordings.

Generation samples from it (the aggregate posterior) instead of from one average point. For every
training file (originals only, not augmented copies) it keeps:

- the file's chunk sequence on the model's grid (model.grid: 1 s chunks every ≈ 0.5 s), encoded
  to the posterior's μ (fitted to each chunk, model.grid.fit_latents, for the first FIT_CHUNKS
  chunks) and σ (latent_dim floats each per chunk: 500 files × 4 chunks × 128 × 2 × 4 bytes
  ≈ 4 MB);
- a few facts about its sound: duration, event length (start to where the level stays below
  −60 dB re its peak), time of the peak, onsets per second, loudness, and whether it is a
  one-shot (short, starts with an attack, decays).

From these come the corpus statistics that choose a model's generation mode (one-shot or
texture), the typical take length, the event rate of textures and the level takes are matched to.
Stored in the `.distill` file: the description as JSON ("corpus"), μ and σ as tensors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from distill.audio.read import AudioReadError, iter_mono_blocks
from distill.controls.features import onset_times
from distill.model.grid import FIT_STEPS, encode_grid
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import analyze

FORMAT_VERSION = 1
MODES = ("oneshot", "texture")
MAX_FILE_SECONDS = 30.0  # s of each file remembered: long recordings give their first 30 s
MAX_CHUNKS = 8192  # chunks in all (≈ 8 MB of μ and σ at latent 128); more files are subsampled
# Chunks whose μ is fitted (model.grid.fit_latents), in the files' order: ≈ 100 s of fitting on 2
# CPU threads at the end of training, every chunk of 5–500 one-shots or of ≈ 17 minutes of audio;
# the files after that keep the encoder's μ (a bound on the work, the same on every machine).
FIT_CHUNKS = 2048
ENVELOPE_S = 0.01  # s: RMS frames of the level envelope
END_DB = -60.0  # dB re the file's loudest frame: below this the event has ended
# A one-shot: one sound that has ended before its file does: at most ONESHOT_MAX_S long once
# trailing silence is cut, audible from its first ONSET_S (no long lead-in: not an excerpt), and
# its file's last END_S at least ENDED_DB below its loudest frame (a loop or field recording cut
# out of something longer is still sounding there); anything under SHORT_S is one event. Notes
# with a slow swell or a held sustain and a release are one-shots too, as in any sample pack.
ONESHOT_MAX_S = 4.0
ONSET_S = 0.1
AUDIBLE_DB = -40.0
END_S = 0.05
ENDED_DB = -30.0
SHORT_S = 0.25  # a sound this short is one event, however its file happens to end
ONESHOT_SHARE = 0.5  # a corpus with at least this share of one-shots generates one-shots
DEFAULT_LOUDNESS = -18.0  # LUFS, when no file is long enough to measure (< 0.4 s)


@dataclass(frozen=True)
class CorpusFile:
    name: str  # the file's name, for display only (never a path to open)
    first: int  # index of its first chunk in the μ/σ arrays
    count: int  # its chunks, in time order on the grid
    duration: float  # s
    event_seconds: float  # s from the start to where the level stays below END_DB
    peak_seconds: float  # s: time of the loudest envelope frame
    onset_rate: float  # onsets per second
    loudness: float | None  # LUFS (ITU BS.1770); None under 0.4 s or silent
    oneshot: bool

    @classmethod
    def from_dict(cls, data: dict) -> CorpusFile:
        loudness = data.get("loudness")
        return cls(
            name=str(data["name"]),
            first=int(data["first"]),
            count=int(data["count"]),
            duration=float(data["duration"]),
            event_seconds=float(data["event_seconds"]),
            peak_seconds=float(data["peak_seconds"]),
            onset_rate=float(data["onset_rate"]),
            loudness=None if loudness is None else float(loudness),
            oneshot=bool(data["oneshot"]),
        )


@dataclass(frozen=True)
class CorpusMemory:
    files: tuple[CorpusFile, ...]
    mu: torch.Tensor  # (n_chunks, D) float32: posterior means, files' chunks in order
    sigma: torch.Tensor  # (n_chunks, D) float32: posterior standard deviations

    def __post_init__(self) -> None:
        n = self.mu.shape[0]
        if self.sigma.shape != self.mu.shape:
            raise ValueError(f"corpus σ has shape {tuple(self.sigma.shape)}, μ {(n, -1)}")
        for f in self.files:
            if f.count < 1 or f.first < 0 or f.first + f.count > n:
                raise ValueError(f"corpus file {f.name!r} points outside the {n} chunks")

    def __len__(self) -> int:
        return len(self.files)

    def sequence(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) of file `index`'s chunks, each (count, D)."""
        f = self.files[index]
        return self.mu[f.first : f.first + f.count], self.sigma[f.first : f.first + f.count]

    # -- corpus statistics ------------------------------------------------------------------
    @property
    def oneshot_share(self) -> float:
        return sum(f.oneshot for f in self.files) / max(1, len(self.files))

    @property
    def mode(self) -> str:
        """ "oneshot" when most files are one-shots, else "texture"."""
        return "oneshot" if self.oneshot_share >= ONESHOT_SHARE else "texture"

    @property
    def event_seconds(self) -> float:
        """The typical (median) event length, s."""
        return float(np.median([f.event_seconds for f in self.files]))

    @property
    def typical_seconds(self) -> float:
        """The typical (median) file length, s."""
        return float(np.median([f.duration for f in self.files]))

    @property
    def onset_rate(self) -> float:
        """Onsets per second over the whole corpus (all onsets ÷ all seconds)."""
        seconds = sum(f.duration for f in self.files)
        return sum(f.onset_rate * f.duration for f in self.files) / max(seconds, 1e-9)

    @property
    def loudness(self) -> float:
        """The training sounds' median loudness, LUFS."""
        values = [f.loudness for f in self.files if f.loudness is not None]
        return float(np.median(values)) if values else DEFAULT_LOUDNESS

    def summary(self) -> dict:
        return {
            "files": len(self.files),
            "chunks": int(self.mu.shape[0]),
            "mode": self.mode,
            "oneshot_share": round(self.oneshot_share, 3),
            "event_seconds": round(self.event_seconds, 3),
            "typical_seconds": round(self.typical_seconds, 3),
            "onset_rate": round(self.onset_rate, 3),
            "loudness_lufs": round(self.loudness, 2),
        }

    # -- storage (the "corpus" entry of a .distill file, plus two tensors) ------------------
    def to_dict(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "files": [asdict(f) for f in self.files],
            "summary": self.summary(),
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mu": self.mu.float().contiguous(), "sigma": self.sigma.float().contiguous()}

    @classmethod
    def from_stored(cls, data: dict, tensors: dict[str, torch.Tensor]) -> CorpusMemory:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported corpus memory version {data.get('version')!r}")
        return cls(
            files=tuple(CorpusFile.from_dict(f) for f in data["files"]),
            mu=tensors["mu"].float(),
            sigma=tensors["sigma"].float(),
        )


# -- what a recording sounds like -----------------------------------------------------------
def describe_sound(audio: np.ndarray, rate: int) -> dict:
    """Duration, event length, peak time, onset rate, loudness and one-shot verdict of a mono
    waveform (see CorpusFile)."""
    x = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1))
    hop = max(1, round(ENVELOPE_S * rate))
    padded = np.pad(x, (0, (-len(x)) % hop if len(x) else hop))
    frames = padded.reshape(-1, hop)  # (n, hop), the last one zero-padded
    level = 10 * np.log10(np.maximum((frames**2).mean(axis=1), 1e-20))  # dB per 10 ms
    level -= level.max()
    loud = np.flatnonzero(level > END_DB)
    end = (loud[-1] + 1) * hop / rate if len(loud) else 0.0
    peak = int(np.argmax(level))
    first_audible = int(np.flatnonzero(level > AUDIBLE_DB)[0])
    last = level[-max(1, round(END_S / ENVELOPE_S)) :]
    oneshot = (
        0.0 < end <= ONESHOT_MAX_S
        and first_audible * hop / rate <= ONSET_S
        and (end < SHORT_S or float(np.max(last)) <= ENDED_DB)
    )
    return {
        "duration": len(x) / rate,
        "event_seconds": float(end),
        "peak_seconds": peak * hop / rate,
        "onset_rate": _onset_count(x, rate) / max(len(x) / rate, 1e-9),
        "loudness": _loudness(x, rate),
        "oneshot": bool(oneshot),
    }


def _onset_count(x: np.ndarray, rate: int) -> int:
    """Onsets in the recording, an attack at its very first sample included (a lead-in of
    silence gives the flux a frame before it to rise from); an audible recording holds at least
    one event, even where its attack is too soft or too low for the flux to see."""
    lead = round(0.1 * rate)
    return max(1, len(onset_times(np.concatenate([np.zeros(lead), x]), rate)))


def _loudness(x: np.ndarray, rate: int) -> float | None:
    if len(x) < 0.4 * rate or not np.any(x):
        return None
    import pyloudnorm

    value = pyloudnorm.Meter(rate).integrated_loudness(x)
    return float(value) if math.isfinite(value) else None


# -- building it ------------------------------------------------------------------------------
def read_head(path: Path, rate: int, seconds: float = MAX_FILE_SECONDS) -> np.ndarray:
    """The first `seconds` of a file, mono float32 at `rate` (read in blocks, never whole)."""
    limit = round(seconds * rate)
    blocks, total = [], 0
    for block in iter_mono_blocks(path, rate):
        blocks.append(block[: limit - total])
        total += len(blocks[-1])
        if total >= limit:
            break
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


@torch.no_grad()
def build_corpus_memory(
    model: ConvVAE,
    sources: Iterable[Path],
    stats: ChannelStats,
    spectral: SpectralConfig,
    *,
    seed: int = 0,
) -> CorpusMemory:
    """Encode each file of `sources` (its first MAX_FILE_SECONDS) on the grid and describe it.

    Files that cannot be read now are skipped; if the chunks would pass MAX_CHUNKS, a `seed`-chosen
    subset of files is kept (whole files, in their order). Raises ValueError if nothing is left.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rate = spectral.sample_rate
    files: list[CorpusFile] = []
    mus, sigmas = [], []
    first = 0
    try:
        for source in sources:
            try:
                audio = read_head(Path(source), rate)
            except (AudioReadError, OSError, RuntimeError, sf.LibsndfileError):
                continue
            if not len(audio) or not np.isfinite(audio).all() or not np.any(audio):
                continue
            spec = stats.normalize(analyze(torch.from_numpy(audio)[None], spectral)).to(device)
            fit_steps = FIT_STEPS if first < FIT_CHUNKS else 0
            mu, sigma = encode_grid(model, spec, stats, spectral, fit_steps)
            facts = describe_sound(audio, rate)
            files.append(CorpusFile(name=Path(source).name, first=first, count=len(mu), **facts))
            mus.append(mu.cpu())
            sigmas.append(sigma.cpu())
            first += len(mu)
    finally:
        model.train(was_training)
    if not files:
        raise ValueError("no training recording could be read for the corpus memory")
    if first > MAX_CHUNKS:
        files, mus, sigmas = _subsample(files, mus, sigmas, seed)
    return CorpusMemory(files=tuple(files), mu=torch.cat(mus), sigma=torch.cat(sigmas))


def _subsample(files, mus, sigmas, seed):
    order = np.random.default_rng(seed).permutation(len(files))
    keep, total = [], 0
    for i in order:
        if total + files[i].count > MAX_CHUNKS and keep:
            continue
        keep.append(int(i))
        total += files[i].count
    kept_files, first = [], 0
    for i in sorted(keep):
        kept_files.append(CorpusFile(**(asdict(files[i]) | {"first": first})))
        first += files[i].count
    return kept_files, [mus[i] for i in sorted(keep)], [sigmas[i] for i in sorted(keep)]


def recompute_corpus(
    model_file: Path, data_dir: Path, *, device: str | torch.device = "cpu"
) -> CorpusMemory:
    """The corpus memory of a saved model from the usable recordings in `data_dir` (all of them:
    the model file does not record which were held out). Store it in a library model with
    `Library.set_corpus(ref, corpus.to_dict(), corpus.tensors())` (`distill model analyze`)."""
    from distill.audio.check import check_dataset
    from distill.errors import UserError
    from distill.model.file import load_model_file

    model, metadata = load_model_file(model_file, device)
    report = check_dataset(data_dir)
    try:
        return build_corpus_memory(model, report.usable, metadata.stats, metadata.spectral)
    except ValueError as err:
        raise UserError(
            f"no usable recordings in {report.directory}: pass the folder the model was trained on"
        ) from err

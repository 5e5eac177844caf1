"""How much generated audio looks like real recordings of the same kind, beside the floor that real
unseen recordings of that kind reach.

    .venv/bin/python bench/gen_realism.py TRAIN_DIR HELDOUT_DIR GEN_DIR [--json]
    .venv/bin/python bench/gen_realism.py TRAIN_DIR HELDOUT_DIR --self-check

Every audio file (sub-folders included) is read with soundfile, downmixed to mono, resampled to
48 kHz and described by 89 numbers, all independent of its level (see `describe`): 40-band
log-mel mean and standard deviation over time in dB re the file's loudest frame/band, spectral
centroid, bandwidth and flatness (dB) as energy-weighted means over frames, envelope shape and
onset rate. Each number is standardized
with the mean and standard deviation of the real files (train + held-out); distances are
Euclidean in that space. Reported, each beside its floor (TRAIN_DIR scored as if it were the
generated set; a file is never matched with itself, so TRAIN_DIR given as GEN_DIR gives exactly
the floor):

  mmd2       unbiased MMD² between GEN and HELDOUT, RBF kernel exp(−d²/2σ²) with σ the median
             of the pairwise distances of the two sets pooled; ~0 when they are alike, at most 2
  precision  improved precision (Kynkäänniemi et al. 2019, k = 3): share of generated files inside
             the 3-NN ball of at least one real file (real = train + held-out)
  recall     share of real files inside the 3-NN ball (within the generated set) of at least one
             generated file; it grows with the number of generated files, so compare like counts
  density    mean number of real files whose 3-NN ball holds a generated file, ÷ 3 (Naeem et
             al. 2020): precision that one outlying real file with a huge ball cannot buy; ~1
             when the generated files are spread like the real ones, > 1 when they bunch
  copy_ratio median distance of the generated files to their nearest training file ÷ the same for
             the held-out files: ~1 for new material, ≪ 1 for copies of the training set

plus each set's file count, mean peak (dBFS), mean duration (s) and median attack time (ms: where
the 5 ms RMS envelope peaks): quiet takes are a bug, and so are late, smeared attacks.
`--self-check` writes white-noise files (as many as HELDOUT_DIR holds, 1 s, −1 dBFS) and scores
them, the training files and the held-out files as GEN, and checks that noise is far (MMD² ≫ its
floor, density < 1/4 of its floor) and that train as GEN is the floor; a by-hand sanity check,
not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import find_peaks

RATE = 48_000  # Hz
N_FFT = 2048  # 42.7 ms window at 48 kHz, 23.4 Hz per bin
HOP = 512  # 10.7 ms per frame
N_MELS = 40
F_MIN, F_MAX = 30.0, 20_000.0  # Hz, range of the mel bands
FLOOR_DB = -100.0  # dB re peak: floor of every level
ENVELOPE_S = 0.01  # block of the RMS envelope (s)
ONSET_GAP_S = 0.05  # two onsets at least this far apart (s)
ONSET_DELTA = 0.1  # an onset's flux exceeds the local mean by this share of the file's maximum
K = 3  # neighbours for the precision/recall balls
AUDIO = {".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3"}

FEATURES = (
    [f"mel{i}_mean" for i in range(N_MELS)]
    + [f"mel{i}_std" for i in range(N_MELS)]
    + ["centroid_hz", "bandwidth_hz", "flatness_db"]
    + ["peak_time_s", "within20db", "within40db", "crest_db", "energy_centroid_s"]
    + ["onsets_per_s"]
)


def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangles evenly spaced on the HTK mel scale, each peaking at 1."""

    def mel(f):
        return 2595 * np.log10(1 + np.asarray(f) / 700)

    edges = 700 * (10 ** (np.linspace(mel(F_MIN), mel(F_MAX), N_MELS + 2) / 2595) - 1)  # Hz
    freqs = np.fft.rfftfreq(N_FFT, 1 / RATE)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


MEL = mel_filterbank()


def read(path: Path) -> np.ndarray:
    x, rate = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return x if rate == RATE else soxr.resample(x, rate, RATE)


def power_spectrogram(x: np.ndarray) -> np.ndarray:
    """(frames, N_FFT // 2 + 1) power, Hann window, frames centred on multiples of HOP."""
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2 + HOP))
    n_frames = 1 + len(x) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    return np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1)) ** 2


def db(ratio: np.ndarray) -> np.ndarray:
    return np.maximum(FLOOR_DB, 10 * np.log10(np.maximum(ratio, 1e-30)))


def onset_rate(mel: np.ndarray, seconds: float) -> float:
    """Onsets per second: spectral flux of log-compressed mel-band magnitudes (re the file's
    loudest band, so −60 dB noise barely counts; bands rather than bins, so that a flute's
    vibrato is not a string of onsets), peaks above the local mean + ONSET_DELTA."""
    log_mag = np.log1p(1000 * np.sqrt(mel / mel.max()))
    flux = np.maximum(0, np.diff(log_mag, axis=0, prepend=0)).sum(axis=1)
    flux /= flux.max()
    gap = max(1, round(ONSET_GAP_S * RATE / HOP))  # frames
    local_mean = np.convolve(flux, np.ones(2 * gap + 1) / (2 * gap + 1), mode="same")
    # A zero in front lets an attack on the very first frame count as a peak.
    peaks, _ = find_peaks(np.concatenate([[0], flux]), distance=gap)
    peaks = peaks - 1
    peaks = peaks[flux[peaks] >= local_mean[peaks] + ONSET_DELTA]
    return len(peaks) / seconds


def describe(x: np.ndarray) -> np.ndarray:
    """The FEATURES vector of one mono 48 kHz file; a silent file gets the floor values."""
    seconds = len(x) / RATE
    power = power_spectrogram(x)
    if not power.any():
        return np.array([FLOOR_DB] * N_MELS + [0.0] * (len(FEATURES) - N_MELS))
    mel = power @ MEL.T  # (frames, N_MELS)
    mel_db = db(mel / mel.max())  # dB re the loudest frame/band
    freqs = np.fft.rfftfreq(N_FFT, 1 / RATE)
    energy = power.sum(axis=1)  # per frame
    weights = energy / energy.sum()
    total = np.maximum(energy, 1e-30)
    centroid = power @ freqs / total  # Hz, per frame
    bandwidth = np.sqrt(np.maximum(0, power @ freqs**2 / total - centroid**2))  # Hz
    eps = power.max() * 1e-10  # −100 dB re the loudest bin, keeps log() finite in silence
    flatness = np.exp(np.log(power + eps).mean(axis=1)) / (power + eps).mean(axis=1)

    block = round(ENVELOPE_S * RATE)
    n_blocks = -(-len(x) // block)
    blocks = np.pad(x, (0, n_blocks * block - len(x))).reshape(n_blocks, block)
    env = (blocks**2).mean(axis=1)  # mean power per 10 ms block
    env_db = db(env / env.max())
    times = (np.arange(n_blocks) + 0.5) * ENVELOPE_S  # s, block centres
    rms = np.sqrt((x**2).mean())
    return np.concatenate(
        [
            mel_db.mean(axis=0),
            mel_db.std(axis=0),
            [weights @ centroid, weights @ bandwidth, db(weights @ flatness)],
            [
                times[np.argmax(env)],
                (env_db >= -20).mean(),
                (env_db >= -40).mean(),
                20 * np.log10(np.abs(x).max() / rms),
                env @ times / env.sum(),
            ],
            [onset_rate(mel, seconds)],
        ]
    )


def load_set(folder: Path) -> dict:
    """{"paths", "features" (files, features), "peak_dbfs", "seconds", "attack_ms"} of every
    audio file."""
    paths = sorted(p.resolve() for p in folder.rglob("*") if p.suffix.lower() in AUDIO)
    if not paths:
        sys.exit(f"gen_realism: no audio files in {folder}; pass a folder of .wav/.flac files")
    audio = [read(p) for p in paths]
    peaks = [np.abs(x).max() for x in audio]
    window = np.ones(round(0.005 * RATE)) / round(0.005 * RATE)
    envelopes = [np.convolve(np.square(x, dtype=np.float64), window, "valid") for x in audio]
    return {
        "attack_ms": [np.argmax(e) / RATE * 1000 if len(e) else 0.0 for e in envelopes],
        "paths": paths,
        "features": np.stack([describe(x) for x in audio]),
        "peak_dbfs": [20 * np.log10(max(p, 1e-10)) for p in peaks],  # silence: −200 dBFS
        "seconds": [len(x) / RATE for x in audio],
    }


def distances(a: np.ndarray, b: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)); pairs of one file with itself (`same`) are inf."""
    d = np.sqrt(np.maximum(0, ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)))
    return np.where(same, np.inf, d)


def identity(pa: list[Path], pb: list[Path]) -> np.ndarray:
    return np.array([[p == q for q in pb] for p in pa])


def mmd2(x: np.ndarray, y: np.ndarray, same_xy: np.ndarray) -> float:
    """Unbiased MMD² (Gretton et al. 2012), RBF kernel, σ = median pooled pairwise distance."""
    pooled = np.concatenate([x, y])
    d = np.sqrt(np.maximum(0, ((pooled[:, None] - pooled[None]) ** 2).sum(axis=2)))
    sigma = np.median(d[np.triu_indices(len(pooled), k=1)])
    k = np.exp(-(d**2) / (2 * sigma**2))
    n = len(x)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    m = len(y)
    within = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (
        m * (m - 1)
    )
    return float(within - 2 * kxy[~same_xy].mean())


def knn_radius(d_within: np.ndarray) -> np.ndarray:
    """Distance of each row's K-th nearest other member (self-pairs are inf in `d_within`)."""
    return np.sort(d_within, axis=1)[:, K - 1]


def score(gen: dict, train: dict, held: dict, mean: np.ndarray, std: np.ndarray) -> dict:
    """The four metrics of `gen` (see the module docstring), in the standardized space."""
    g, t, h = ((s["features"] - mean) / std for s in (gen, train, held))
    real, real_paths = np.concatenate([t, h]), train["paths"] + held["paths"]
    d_gen_real = distances(g, real, identity(gen["paths"], real_paths))
    d_real_real = distances(real, real, identity(real_paths, real_paths))
    d_gen_gen = distances(g, g, identity(gen["paths"], gen["paths"]))
    real_radius, gen_radius = knn_radius(d_real_real), knn_radius(d_gen_gen)
    d_gen_train = distances(g, t, identity(gen["paths"], train["paths"]))
    d_held_train = distances(h, t, identity(held["paths"], train["paths"]))
    return {
        "mmd2": mmd2(g, h, identity(gen["paths"], held["paths"])),
        "precision": float((d_gen_real <= real_radius[None, :]).any(axis=1).mean()),
        "recall": float((d_gen_real <= gen_radius[:, None]).any(axis=0).mean()),
        "density": float((d_gen_real <= real_radius[None, :]).sum(axis=1).mean() / K),
        "copy_ratio": float(
            np.median(d_gen_train.min(axis=1)) / np.median(d_held_train.min(axis=1))
        ),
    }


def evaluate(train_dir: Path, held_dir: Path, gen_dir: Path, sets: dict | None = None) -> dict:
    sets = dict(sets or {})
    for key, folder in (("train", train_dir), ("heldout", held_dir), ("gen", gen_dir)):
        if key not in sets:
            sets[key] = load_set(folder)
    train, held, gen = sets["train"], sets["heldout"], sets["gen"]
    real = np.concatenate([train["features"], held["features"]])
    mean, std = real.mean(axis=0), real.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a descriptor constant over the real files: unscaled
    return {
        "gen": score(gen, train, held, mean, std),
        "floor": score(train, train, held, mean, std),
        "sets": {
            key: {
                "folder": str(folder),
                "files": len(s["paths"]),
                "mean_peak_dbfs": float(np.mean(s["peak_dbfs"])),
                "mean_seconds": float(np.mean(s["seconds"])),
                "median_attack_ms": float(np.median(s["attack_ms"])),
            }
            for key, folder, s in (
                ("train", train_dir, train),
                ("heldout", held_dir, held),
                ("gen", gen_dir, gen),
            )
        },
        "k": K,
        "mmd2_estimator": "unbiased",
    }


def table(result: dict) -> str:
    lines = [f"{'metric':<12}{'gen':>10}{'floor':>10}"]
    for metric in ("mmd2", "precision", "recall", "density", "copy_ratio"):
        lines.append(f"{metric:<12}{result['gen'][metric]:>10.3f}{result['floor'][metric]:>10.3f}")
    lines.append("")
    lines.append(f"{'set':<9}{'files':>6}{'peak dBFS':>11}{'mean s':>8}{'attack ms':>11}  folder")
    for key, s in result["sets"].items():
        lines.append(
            f"{key:<9}{s['files']:>6}{s['mean_peak_dbfs']:>11.1f}{s['mean_seconds']:>8.2f}"
            f"{s['median_attack_ms']:>11.1f}  {s['folder']}"
        )
    return "\n".join(lines)


def self_check(train_dir: Path, held_dir: Path) -> None:
    """Noise, train and held-out as GEN; exits non-zero if noise or train look wrong."""
    sets = {"train": load_set(train_dir), "heldout": load_set(held_dir)}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(len(sets["heldout"]["paths"])):
            x = rng.standard_normal(RATE)  # 1 s
            sf.write(Path(tmp, f"noise{i}.wav"), 10 ** (-1 / 20) * x / np.abs(x).max(), RATE)
        noise = evaluate(train_dir, held_dir, Path(tmp), sets)
    as_train = evaluate(train_dir, held_dir, train_dir, {**sets, "gen": sets["train"]})
    as_held = evaluate(train_dir, held_dir, held_dir, {**sets, "gen": sets["heldout"]})
    for name, result in (("noise", noise), ("train", as_train), ("heldout", as_held)):
        print(f"== GEN = {name}\n{table(result)}\n")
    problems = []
    if noise["gen"]["density"] > 0.25 * noise["floor"]["density"]:
        problems.append(f"noise density {noise['gen']['density']:.2f} > 1/4 of the floor")
    if noise["gen"]["mmd2"] < 5 * max(noise["floor"]["mmd2"], 0.01):
        problems.append(f"noise MMD² {noise['gen']['mmd2']:.3f} is not ≫ the floor")
    if as_train["gen"] != as_train["floor"]:
        problems.append("train as GEN does not give the floor")
    if noise["gen"]["precision"] > 0.1:  # not fatal: the known weakness that density fixes
        print(
            f"note: noise precision {noise['gen']['precision']:.2f}: some real file is an "
            "outlier whose 3-NN ball is wide enough to hold noise; density is the robust figure"
        )
    print("self-check: " + ("; ".join(problems) if problems else "ok"))
    sys.exit(1 if problems else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("heldout_dir", type=Path)
    parser.add_argument("gen_dir", type=Path, nargs="?")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    parser.add_argument("--self-check", action="store_true", help="noise/train/held-out as GEN")
    args = parser.parse_args()
    if args.self_check:
        self_check(args.train_dir, args.heldout_dir)
    if args.gen_dir is None:
        sys.exit("gen_realism: give GEN_DIR (the generated files), or --self-check")
    result = evaluate(args.train_dir, args.heldout_dir, args.gen_dir)
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    main()

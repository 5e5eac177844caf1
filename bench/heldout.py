"""Held-out reconstruction quality after a fixed training budget.

    python bench/heldout.py DATA_DIR --minutes M [--holdout-list FILE | --heldout-dir DIR]
                            [--set learning_rate=1e-3 --set dropout=0.05 …]

Trains with the default settings (preset `auto`) for M minutes on the files of DATA_DIR minus a
held-out fifth (every fifth file in sorted order, or the names listed one per line in FILE), then
reconstructs each held-out file through the trained model (encode → μ, fitted → decode → one
inverse over the whole file) and reports MR-STFT distance, log-spectral distance and SI-SDR against
the original, next to the same files' plain representation round trip (the model's ceiling). It also
reports the same figures on a few training files, to show the generalisation gap.
Ends with one JSON line: mrstft, lsd_db, sisdr_db, roundtrip_mrstft, attack_db (the 5 ms envelope
peak, resynthesized − original: a smeared attack is lower) and attack_lag_ms (median distance of
the two peaks) (+ details).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from distill.audio.read import AUDIO_EXTENSIONS, read_mono
from distill.generation.resynth import resynthesize
from distill.model.file import load_model_file
from distill.model.loss import LossConfig
from distill.spectral import analyze, synthesize
from distill.spectral.quality import measure
from distill.training.session import train

TRAIN_FILES_MEASURED = 8


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def summary(self, lines: list[str]) -> None:
        print("\n".join(lines), file=sys.stderr)

    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None: ...

    def epoch(self, record: dict) -> None:
        minutes = (time.monotonic() - self.started) / 60
        print(
            f"[{minutes:5.1f} min] epoch {record['epoch']}: train {record['train_total']:.3f} "
            f"(mag {record['train_mag']:.3f} if {record['train_if']:.3f} stft "
            f"{record['train_stft']:.3f}) val {record['val_total']:.3f} "
            f"(mag {record['val_mag']:.3f} stft {record['val_stft']:.3f}) "
            f"{record['samples_per_s']:.0f} samples/s",
            file=sys.stderr,
            flush=True,
        )

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def choose_holdout(files: list[Path], root: Path, listing: Path | None) -> set[Path]:
    if listing is None:
        return {f for i, f in enumerate(files) if i % 5 == 2}
    wanted = {line.strip() for line in listing.read_text().splitlines() if line.strip()}
    chosen = {f for f in files if f.name in wanted or f.relative_to(root).as_posix() in wanted}
    missing = wanted - {f.name for f in chosen} - {f.relative_to(root).as_posix() for f in chosen}
    if missing:
        raise SystemExit(f"heldout: not found in {root}: {', '.join(sorted(missing))}")
    return chosen


def resynth_command(model_file: Path, path: Path, scratch: Path) -> torch.Tensor:
    """`path` through the real `distill resynth` command; read back at the model's rate."""
    out = scratch / f"{path.stem}-resynth.wav"
    distill = Path(sys.executable).with_name("distill")
    command = [str(distill), "resynth", str(model_file), str(path), str(out), "--force"]
    subprocess.run(command, check=True, capture_output=True)
    return torch.from_numpy(read_mono(out))


ENVELOPE_S = 0.005  # RMS window of the attack measure


def attack(rebuilt: torch.Tensor, original: torch.Tensor, rate: int) -> tuple[float, float]:
    """(peak level of the 5 ms RMS envelope, rebuilt − original, in dB; |time between the two
    peaks| in ms). A smeared attack shows as a lower, later peak; for drum one-shots the
    original's peak is within ~10 ms of its start."""
    n = round(ENVELOPE_S * rate)
    kernel = np.ones(n) / n
    peaks = []
    for x in (rebuilt, original):
        envelope = np.sqrt(np.convolve(np.square(x.numpy().astype(np.float64)), kernel, "valid"))
        peaks.append((20 * np.log10(envelope.max() + 1e-12), int(np.argmax(envelope))))
    (level_r, at_r), (level_o, at_o) = peaks
    return level_r - level_o, abs(at_r - at_o) / rate * 1000


def evaluate(
    model, metadata, files: list[Path], model_file: Path | None = None, scratch: Path | None = None
) -> dict[str, float]:
    """Mean quality of `files` resynthesized in-process, or through `distill resynth` when
    `model_file` is given (what a user gets: 24-bit file at the input's rate, read back)."""
    spectral, stats = metadata.spectral, metadata.stats
    rows = []
    for path in files:
        audio = torch.from_numpy(read_mono(path, spectral.sample_rate))
        if model_file is not None and scratch is not None:
            rebuilt = resynth_command(model_file, path, scratch)[: len(audio)]
        else:
            rebuilt = resynthesize(model, audio, stats, spectral)
        ceiling = synthesize(analyze(audio[None], spectral), spectral, length=len(audio))[0]
        q, r = measure(rebuilt, audio), measure(ceiling, audio)
        peak_db, lag_ms = attack(rebuilt, audio, spectral.sample_rate)
        rows.append((q.mrstft, q.lsd_db, q.sisdr_db, r.mrstft, peak_db, lag_ms))
        print(
            f"  {path.name}: mrstft {q.mrstft:.3f} lsd {q.lsd_db:.2f} sisdr {q.sisdr_db:.1f}"
            f"  (round trip {r.mrstft:.3f})  envelope peak {peak_db:+.1f} dB, {lag_ms:.0f} ms off",
            file=sys.stderr,
        )
    m = np.mean(rows, axis=0)
    return {
        "mrstft": m[0],
        "lsd_db": m[1],
        "sisdr_db": m[2],
        "roundtrip_mrstft": m[3],
        "attack_db": m[4],  # mean envelope-peak level difference
        "attack_lag_ms": float(np.median([row[5] for row in rows])),
    }


def _setting(text: str) -> tuple[str, object]:
    name, _, raw = text.partition("=")
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


# Command-line flags that set one LossConfig field: flag → (section, field).
LOSS_FLAGS = {
    "stft_weight": ("stft", "weight"),
    "stft_items": ("stft", "max_items"),
    "convergence_weight": ("recon", "convergence_weight"),
    "loud_frames": ("recon", "loud_frames"),
    "if_weight": ("recon", "if_weight"),
}


def _loss_setting(text: str) -> tuple[tuple[str, str], object]:
    """ "stft.hop_sizes=120,240,50" → (("stft", "hop_sizes"), [120, 240, 50]), for --loss.

    A preset's own fields win over these (kl.beta_max, kl.warmup_fraction, stft.start_fraction:
    set them with --kl-beta-max or --set)."""
    name, _, raw = text.partition("=")
    section, _, field = name.partition(".")
    values = [json.loads(v) for v in raw.split(",")]
    return (section, field), values if "," in raw else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--holdout-list", type=Path, default=None)
    parser.add_argument(
        "--heldout-dir",
        type=Path,
        default=None,
        help="held-out files from this folder; DATA_DIR is then all training files",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a training setting (TrainingConfig field, e.g. learning_rate=1e-3); repeatable",
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="Distill home (default: a temp dir)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels", default=None, help="conv widths, comma-separated")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stft-weight",
        type=float,
        default=None,
        help="MR-STFT loss weight (default: LossConfig's)",
    )
    parser.add_argument(
        "--convergence-weight",
        type=float,
        default=None,
        help="band-magnitude convergence weight in the training loss (default: LossConfig's)",
    )
    parser.add_argument(
        "--loud-frames",
        type=float,
        default=None,
        help="loud-frame emphasis of the training loss's log-magnitude L1 (default: LossConfig's)",
    )
    parser.add_argument(
        "--stft-items",
        type=int,
        default=None,
        help="chunks of each batch in the MR-STFT term (default: LossConfig's)",
    )
    parser.add_argument(
        "--if-weight", type=float, default=None, help="IF L1 weight (default: LossConfig's)"
    )
    parser.add_argument(
        "--kl-beta-max", type=float, default=None, help="KL weight after warm-up (default: preset)"
    )
    parser.add_argument(
        "--loss",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="any LossConfig field, e.g. stft.hop_sizes=120,240,50 (repeatable; the preset's "
        "kl_beta_max, kl_warmup_fraction and stft_start_fraction win: use --set for those)",
    )
    parser.add_argument(
        "--via-cli",
        action="store_true",
        help="resynthesize the held-out files through the `distill resynth` command",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    loss_settings = LossConfig().to_dict()
    for flag, (section, field) in LOSS_FLAGS.items():
        if getattr(args, flag) is not None:
            loss_settings[section][field] = getattr(args, flag)
    for text in args.loss:
        (section, field), value = _loss_setting(text)
        if field not in loss_settings.get(section, {}):
            parser.error(f"--loss {text}: no LossConfig field {section}.{field}")
        loss_settings[section][field] = value
    loss = LossConfig.from_dict(loss_settings)
    root = args.data_dir.resolve()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if args.heldout_dir is not None:
        holdout = {
            p for p in args.heldout_dir.resolve().rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
        }
        training = files
    else:
        holdout = choose_holdout(files, root, args.holdout_list)
        training = [f for f in files if f not in holdout]
    overrides = dict(_setting(text) for text in args.set)
    with tempfile.TemporaryDirectory() as scratch:
        train_dir = Path(scratch) / "train"
        for f in training:  # the training folder holds links to the training files only
            link = train_dir / f.relative_to(root)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
        home = args.home or Path(scratch) / "home"
        started = time.monotonic()
        result = train(
            train_dir,
            home=home,
            name=f"heldout-{root.name}",
            reporter=Progress(),
            seed=args.seed,
            threads=args.threads,
            precision=args.precision,
            loss=loss,
            channels=tuple(int(c) for c in args.channels.split(",")) if args.channels else None,
            # --set epochs=N: a fixed amount of training (comparable on a busy machine)
            **({"max_minutes": args.minutes, "kl_beta_max": args.kl_beta_max} | overrides),
        )
        minutes = (time.monotonic() - started) / 60
        model, metadata = load_model_file(result.model_file)
        print(f"held out ({len(holdout)} files):", file=sys.stderr)
        via = (result.model_file, Path(scratch)) if args.via_cli else (None, None)
        held = evaluate(model, metadata, sorted(holdout), *via)
    print(f"training files (first {TRAIN_FILES_MEASURED}):", file=sys.stderr)
    seen = evaluate(model, metadata, training[:TRAIN_FILES_MEASURED])
    print(
        f"\n{root.name}: {len(training)} training / {len(holdout)} held-out files, "
        f"{minutes:.1f} min, {result.epochs_completed} epochs (best {result.best_epoch}, "
        f"saved: {result.weights} weights of epoch {result.weights_epoch})"
    )
    print(
        f"held-out  : MR-STFT {held['mrstft']:.3f}  LSD {held['lsd_db']:.2f} dB  SI-SDR "
        f"{held['sisdr_db']:.1f} dB  (round trip {held['roundtrip_mrstft']:.3f})  envelope peak "
        f"{held['attack_db']:+.1f} dB, median {held['attack_lag_ms']:.0f} ms off"
    )
    print(
        f"training  : MR-STFT {seen['mrstft']:.3f}  LSD {seen['lsd_db']:.2f} dB  SI-SDR "
        f"{seen['sisdr_db']:.1f} dB  (round trip {seen['roundtrip_mrstft']:.3f})"
    )
    print(
        json.dumps(
            {
                **{k: round(float(v), 4) for k, v in held.items()},
                "train_mrstft": round(float(seen["mrstft"]), 4),
                "minutes": round(minutes, 2),
                "epochs": result.epochs_completed,
                "best_epoch": result.best_epoch,
                "weights": result.weights,
                "weights_epoch": result.weights_epoch,
                "heldout_files": len(holdout),
                "train_files": len(training),
                "settings": overrides,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

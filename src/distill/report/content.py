"""What a model report says, gathered from the model file, its run folder and its recordings:
the training summary and loss curves (run/metrics.jsonl), a few training and validation files
next to the model's resynthesis of them with their MR-STFT distance, the sliders and the corpus
memory. Everything the page shows, and nothing about how it looks (that is page.py)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from distill.controls.sliders import what_changes
from distill.errors import UserError
from distill.generation.loaded import LoadedModel
from distill.model.file import kept_weights
from distill.report.pictures import loss_curves, png_bytes, spectrograms
from distill.spectral.quality import mrstft_distance
from distill.training.metrics import read_metrics
from distill.training.run import RunFolder, RunSpec

FILES_PER_SPLIT = 4  # training files and validation files shown, each
# s of each file resynthesized, measured, played and shown (a longer recording: its start), so
# the number is about what you hear; 8 clips keep the report to seconds of work after training
CLIP_SECONDS = 4.0
PLAYER_RATE = 24_000  # Hz: 12 kHz of bandwidth; 4 s of 16-bit mono = 192 kB, 16 players ≈ 3 MB
FADE_SECONDS = 0.01  # s: a clip cut mid-sound ends with this fade in its player, not a click


@dataclass
class FileRow:
    split: str  # "training" or "validation"
    name: str  # the file's path inside the data folder
    seconds: float  # s measured (the file, or its first CLIP_SECONDS)
    mrstft: float  # MR-STFT distance, resynthesis vs original (0 = identical)
    original_wav: bytes  # 16-bit WAV at PLAYER_RATE
    resynthesis_wav: bytes
    original_png: bytes  # spectrograms, on one colour scale
    resynthesis_png: bytes

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "file": self.name,
            "seconds": self.seconds,
            "mrstft": self.mrstft,
        }


@dataclass
class Slider:
    number: int
    label: str
    variance: float  # share of the latent variance, 0…1
    safe_range: tuple[float, float]  # slider units
    changes: str  # what moving it across its range does, in words


@dataclass
class ReportContent:
    name: str
    model_id: str | None
    model_file: Path
    run: Path | None
    summary: dict  # the training summary: epochs, best epoch, preset, minutes, samples/s …
    loss_png: bytes | None  # None: no curves (see no_curves)
    no_curves: str | None  # why there are no curves
    rows: list[FileRow]
    sliders: list[Slider]
    corpus: dict | None  # CorpusMemory.summary(); None when the model has none
    notes: list[str] = field(default_factory=list)  # files skipped, and why

    def mean_mrstft(self, split: str) -> float | None:
        values = [r.mrstft for r in self.rows if r.split == split]
        return float(np.mean(values)) if values else None

    def to_dict(self) -> dict:
        return {
            "model": self.name,
            "model_id": self.model_id,
            "model_file": str(self.model_file),
            "run": str(self.run) if self.run else None,
            "summary": self.summary,
            "curves": self.loss_png is not None,
            "no_curves": self.no_curves,
            "heldout_mrstft": self.mean_mrstft("validation"),
            "training_mrstft": self.mean_mrstft("training"),
            "files": [r.to_dict() for r in self.rows],
            "sliders": [s.label for s in self.sliders],
            "corpus": self.corpus,
            "notes": self.notes,
        }


def gather(
    model: LoadedModel, run: Path | None, *, name: str | None = None, model_id: str | None = None
) -> ReportContent:
    """Everything a report shows; `run` is the training run folder (None: an imported model)."""
    notes: list[str] = []
    epochs, no_curves = _epoch_records(run)
    spec = _run_spec(run, notes)
    rows = _file_rows(model, spec, notes) if spec is not None else []
    if spec is None and run is None:
        notes.append(
            "The recordings it learned from are unknown (no run folder), so there is no "
            "resynthesis to listen to."
        )
    return ReportContent(
        name=name or model.name,
        model_id=model_id,
        model_file=model.path,
        run=run,
        summary=_summary(model.metadata.training or {}, epochs),
        loss_png=png_bytes(loss_curves(epochs)) if epochs else None,
        no_curves=no_curves,
        rows=rows,
        sliders=_sliders(model),
        corpus=_corpus(model, notes),
        notes=notes,
    )


# -- the run: metrics and file split ------------------------------------------------------------
def _epoch_records(run: Path | None) -> tuple[list[dict], str | None]:
    if run is None:
        return [], (
            "This model came without its training run (imported, or its run folder was "
            "deleted), so there are no loss curves."
        )
    path = RunFolder(run).metrics
    try:
        records = read_metrics(path)
    except FileNotFoundError:
        return [], f"The run folder has no metrics file ({path.name}), so there are no loss curves."
    except (OSError, UnicodeDecodeError) as err:
        return [], f"The metrics file could not be read ({err}), so there are no loss curves."
    epochs = [r for r in records if isinstance(r, dict) and r.get("kind") == "epoch"]
    if not epochs:
        return [], "No epoch finished in this run, so there are no loss curves yet."
    return epochs, None


def _run_spec(run: Path | None, notes: list[str]) -> RunSpec | None:
    if run is None:
        return None
    try:
        return RunSpec.load(RunFolder(run))
    except UserError as err:
        notes.append(f"The run's settings could not be read ({err}): no files to resynthesize.")
        return None


def _summary(training: dict, epochs: list[dict]) -> dict:
    """The training summary: the model file's own, plus time and speed from the metrics."""
    seconds = [e["seconds"] for e in epochs if _number(e.get("seconds"))]
    rates = [
        (e["samples_per_s"], e["seconds"])
        for e in epochs
        if _number(e.get("samples_per_s")) and _number(e.get("seconds"))
    ]
    total = sum(seconds)
    best = training.get("best_epoch")
    best_record = next((e for e in epochs if e.get("epoch") == best), None)
    return {
        "dataset": training.get("dataset"),
        "train_files": training.get("train_files"),
        "validation_files": training.get("validation_files"),
        "epochs": training.get("epochs", len(epochs) or None),
        "best_epoch": best if isinstance(best, int) and best > 0 else None,
        "best_val_total": best_record.get("val_total") if best_record else None,
        "weights": kept_weights(training),
        "weights_epoch": training.get("weights_epoch"),
        "preset": training.get("preset"),
        "stopped": training.get("stopped"),
        "minutes": round(total / 60, 2) if seconds else None,
        # Weighted by epoch length: samples trained ÷ seconds spent training.
        "samples_per_s": (
            round(sum(r * s for r, s in rates) / sum(s for _, s in rates), 1) if rates else None
        ),
        "trained": training.get("date"),
    }


def _number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


# -- the files: original, resynthesis, spectrograms, MR-STFT ------------------------------------
def _file_rows(model: LoadedModel, spec: RunSpec, notes: list[str]) -> list[FileRow]:
    rows = []
    for split, files in (("training", spec.train_files), ("validation", spec.validation_files)):
        missing: list[str] = []
        for relative in spread(files):
            if sum(r.split == split for r in rows) == FILES_PER_SPLIT:
                break
            row = _file_row(model, spec.data_dir, relative, split, missing)
            if row is not None:
                rows.append(row)
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            notes.append(f"Skipped {len(missing)} {split} file(s) no longer usable: {shown}.")
        if not files:
            notes.append(f"This run had no {split} files.")
    return rows


def spread(files: tuple[str, ...] | list[str], count: int = FILES_PER_SPLIT) -> list[str]:
    """Every file, those spread evenly over the (sorted) list first: a folder of kicks then
    snares shows some of each, not four kicks; the rest follow to stand in for missing ones."""
    ordered = sorted(files)
    picks = sorted({round(i) for i in np.linspace(0, len(ordered) - 1, count)}) if ordered else []
    return [ordered[i] for i in picks] + [f for i, f in enumerate(ordered) if i not in picks]


def _file_row(
    model: LoadedModel, data_dir: Path, relative: str, split: str, missing: list[str]
) -> FileRow | None:
    from distill.audio.read import AudioReadError
    from distill.controls.corpus import read_head

    rate = model.sample_rate
    try:
        head = read_head(data_dir / relative, rate, CLIP_SECONDS + FADE_SECONDS)
    except (AudioReadError, OSError) as err:
        missing.append(f"{relative} ({_why(err)})")
        return None
    if not head.size or not np.isfinite(head).all():
        missing.append(f"{relative} (empty or damaged)")
        return None
    original = head[: round(CLIP_SECONDS * rate)]
    cut = len(head) > len(original)  # the recording goes on: its players fade out
    resynthesis = model.resynth(original)
    pictures = spectrograms(original, resynthesis, rate)
    return FileRow(
        split=split,
        name=relative,
        seconds=round(len(original) / rate, 3),
        mrstft=mrstft_distance(torch.from_numpy(resynthesis), torch.from_numpy(original)),
        original_wav=wav_bytes(original, rate, cut=cut),
        resynthesis_wav=wav_bytes(resynthesis, rate, cut=cut),
        original_png=png_bytes(pictures[0]),
        resynthesis_png=png_bytes(pictures[1]),
    )


def _why(err: Exception) -> str:
    if isinstance(err, FileNotFoundError):
        return "not found"
    return getattr(err, "strerror", None) or str(err).splitlines()[0]


def wav_bytes(audio: np.ndarray, rate: int, *, cut: bool = False) -> bytes:
    """A player's clip: 16-bit mono WAV at PLAYER_RATE, faded out when `cut` mid-sound, clipped
    at full scale (the level is the model's own: nothing is normalized)."""
    import soxr

    clip = np.asarray(audio, dtype=np.float32)
    if rate != PLAYER_RATE:
        clip = soxr.resample(clip, rate, PLAYER_RATE, quality="HQ").astype(np.float32)
    if cut:
        fade = min(len(clip), round(FADE_SECONDS * PLAYER_RATE))
        clip[len(clip) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(clip, -1.0, 1.0), PLAYER_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# -- the controls -------------------------------------------------------------------------------
def _sliders(model: LoadedModel) -> list[Slider]:
    controls = model.controls
    if controls is None:
        return []
    return [
        Slider(
            number=i + 1,
            label=axis.label,
            variance=axis.variance,
            safe_range=controls.safe_range(i),
            changes=what_changes(axis) if axis.changes else "not measured (an older model file)",
        )
        for i, axis in enumerate(controls.axes)
    ]


def _corpus(model: LoadedModel, notes: list[str]) -> dict | None:
    if not (model.metadata.corpus and model.metadata.corpus_tensors):
        return None  # page.py explains; model.corpus would be a stand-in without real files
    try:
        return model.corpus.summary()
    except UserError as err:
        notes.append(str(err))
        return None

"""Starting and resuming a training run: the functions the CLI, the UI and scripts call."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from distill.audio.check import check_dataset
from distill.errors import UserError
from distill.home import resolve_home, safe_name
from distill.library.models import clean_name
from distill.library.store import Library
from distill.model.loss import LossConfig
from distill.model.vae import ModelConfig, parameter_count
from distill.spectral.config import SpectralConfig
from distill.terminal import printable
from distill.training import checkpoint
from distill.training.config import TrainingConfig, resolve_config
from distill.training.data import prepare_training_data, split_sources
from distill.training.device import pick_device, pick_precision
from distill.training.loop import QuietReporter, Reporter, StopFlag, Trainer, TrainResult
from distill.training.metrics import MetricsLog
from distill.training.package import package_model
from distill.training.run import RunFolder, RunSpec, find_run_folder, new_run_folder, now_iso


class RunWriteError(UserError):
    """The disk refused a write during training (full, quota, read-only); the last checkpoint
    is kept, so the run can resume once there is room."""

    def __init__(self, run: Path, err: OSError) -> None:
        self.run = run
        self.reason = err.strerror or str(err)
        super().__init__(
            f"training stopped: cannot write in {run} ({self.reason}); the last checkpoint is "
            f"kept: free some space, then resume with: distill train --resume {run.name}"
        )


def loss_for(training: TrainingConfig, base: LossConfig | None = None) -> LossConfig:
    """The loss settings with the preset's KL warm-up, β and audio-loss start applied."""
    base = base or LossConfig()
    return dataclasses.replace(
        base,
        kl=dataclasses.replace(
            base.kl, warmup_fraction=training.kl_warmup_fraction, beta_max=training.kl_beta_max
        ),
        stft=dataclasses.replace(base.stft, start_fraction=training.stft_start_fraction),
    )


def train(
    data_dir: str | Path,
    *,
    home: str | Path | None = None,
    name: str | None = None,
    preset: str = "auto",
    spectral: SpectralConfig | None = None,
    loss: LossConfig | None = None,
    channels: tuple[int, ...] | None = None,
    reporter: Reporter | None = None,
    stop: StopFlag | None = None,
    precision: str = "auto",
    **overrides,
) -> TrainResult:
    """Train a new model on the recordings in `data_dir`; see TrainingConfig for `overrides`.

    `spectral`, `loss` and `channels` (conv widths) default to the product's settings; tests and
    experiments pass smaller ones.
    """
    reporter = reporter or QuietReporter()
    data_dir = Path(data_dir).expanduser().resolve()
    # The library takes the model under this name at the end: refuse a bad one before any work.
    name = clean_name(name) if name is not None else _default_name(data_dir)
    home_dir = resolve_home(home)
    report = check_dataset(data_dir)
    data_dir = report.directory  # the paths of report.usable are under exactly this folder
    for verdict in report.files:
        if not verdict.usable:
            reporter.message(printable(f"skipping {verdict.path}: {verdict.reason}"))
    report.require_enough()  # after the skipped files are listed, so the refusal makes sense
    usable = report.usable
    config = resolve_config(preset, len(usable), **overrides)
    spectral = spectral or SpectralConfig()
    pick_device(config.device)  # refuse an unavailable device before a run folder exists
    train_files, validation_files = split_sources(usable, data_dir, config)
    spec = RunSpec(
        name=name,
        data_dir=data_dir,
        training=config,
        spectral=spectral,
        loss=loss_for(config, loss),
        model=ModelConfig.for_spectral(
            spectral,
            latent_dim=config.latent_dim,
            dropout=config.dropout,
            **({"channels": tuple(channels)} if channels else {}),
        ),
        train_files=tuple(p.relative_to(data_dir).as_posix() for p in train_files),
        validation_files=tuple(p.relative_to(data_dir).as_posix() for p in validation_files),
        created=now_iso(),
    )
    run = new_run_folder(home_dir / "runs", spec.name)
    spec.save(run)
    return _run(run, spec, home_dir, reporter, stop, precision, resume=False)


def _default_name(data_dir: Path) -> str:
    """The folder's name, as the library will take it (made safe if it could not be)."""
    try:
        return clean_name(data_dir.name)
    except UserError:
        return safe_name(data_dir.name, fallback="model")


def resume(
    run: str | Path,
    *,
    home: str | Path | None = None,
    reporter: Reporter | None = None,
    stop: StopFlag | None = None,
    precision: str = "auto",
    **overrides,
) -> TrainResult:
    """Continue a run from its last checkpoint. `overrides` may change max_minutes, device,
    threads or epochs (more epochs extend the run)."""
    home_dir = resolve_home(home)
    folder = find_run_folder(home_dir / "runs", str(run))
    spec = RunSpec.load(folder)
    allowed = {"max_minutes", "device", "threads", "epochs"}
    wrong = set(overrides) - allowed
    if wrong:
        raise UserError(
            f"--resume continues a run as it was configured; only "
            f"{', '.join(sorted(allowed))} can change (not {', '.join(sorted(wrong))})"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        spec = dataclasses.replace(spec, training=spec.training.with_overrides(**changes))
        spec.save(folder)
    return _run(folder, spec, home_dir, reporter or QuietReporter(), stop, precision, resume=True)


def _run(
    run: RunFolder,
    spec: RunSpec,
    home: Path,
    reporter: Reporter,
    stop: StopFlag | None,
    precision: str,
    resume: bool,
) -> TrainResult:
    config = spec.training
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    missing = [
        f for f in (*spec.train_files, *spec.validation_files) if not (spec.data_dir / f).is_file()
    ]
    if missing:
        raise UserError(
            f"{len(missing)} file(s) of this run are gone from {spec.data_dir} "
            f"(e.g. {missing[0]}): put them back to resume, or start a new run"
        )
    data = prepare_training_data(
        [spec.data_dir / f for f in spec.train_files],
        [spec.data_dir / f for f in spec.validation_files],
        config,
        spec.spectral,
        home / "cache",
        progress=reporter.message,
    )
    for line in data.skipped:
        reporter.message(printable(f"skipping {line}"))
    precision = pick_precision(precision, device, parameter_count(spec.model))
    trainer = Trainer(run, spec, data, device, reporter, stop, precision)
    last = run.checkpoints / checkpoint.LAST
    if resume:
        if not last.exists():
            raise UserError(f"run {run.path.name} has no checkpoint yet: start it again instead")
        trainer.restore(last)
        reporter.message(
            f"resuming {run.path.name} at epoch {trainer.state.epoch + 1}, "
            f"step {trainer.state.step_in_epoch + 1}"
        )
    reporter.summary([printable(line) for line in summary_lines(spec, data, trainer, device, run)])
    try:
        # a resumed run drops the lines written after its checkpoint: no step is logged twice
        metrics = MetricsLog(run.metrics, after_step=trainer.state.global_step if resume else None)
        try:
            result = trainer.fit(metrics)
        finally:
            metrics.close()
        model_file = package_model(
            trainer.final_weights(),
            spec,
            data,
            trainer.state,
            result,
            run.model_file,
            device,
            reporter.message,
        )
        # without a model file a run reports no early ending either (as it always has)
        result = dataclasses.replace(
            result, model_file=model_file, ended=result.ended if model_file else None
        )
    except OSError as err:  # metrics, run files: the disk is full or refuses the run folder
        raise RunWriteError(run.path, err) from err
    if result.model_file is not None:
        _add_to_library(result.model_file, spec, run, home, reporter)
    return result


def _add_to_library(
    model_file: Path, spec: RunSpec, run: RunFolder, home: Path, reporter: Reporter
) -> None:
    """Copy the run's model into the library (the run keeps its own); a resumed run replaces the
    entry it made before. A library that cannot take it only warns: the model is in the run."""
    try:
        Library(home).add(model_file, name=spec.name, run=run.path)
    except UserError as err:
        reporter.message(
            f"warning: the model was not added to the library ({err}); add it with: "
            f"distill model import {model_file}"
        )


def summary_lines(
    spec: RunSpec, data, trainer: Trainer, device: torch.device, run: RunFolder
) -> list[str]:
    cfg, loss = spec.training, spec.loss
    params = sum(p.numel() for p in trainer.model.parameters())
    stft = loss.stft
    return [
        f"run: {run.path}",
        f"data: {spec.data_dir} — {len(data.train_files)} training + "
        f"{len(data.validation_files)} validation files, {len(data.train)} training chunks "
        f"(with {cfg.augment.copies} augmented copies per file), {len(data.validation)} "
        f"validation chunks; cache: {data.computed} computed, {data.reused} reused",
        f"preset: {cfg.preset} — epochs {cfg.epochs}, batch {trainer.batch_size}, "
        f"lr {cfg.learning_rate:g} ({cfg.lr_schedule}, warm-up {cfg.warmup_fraction:g}), "
        f"weight decay {cfg.weight_decay:g}, dropout {cfg.dropout:g}, grad clip {cfg.grad_clip:g}, "
        f"seed {cfg.seed}, max minutes {cfg.max_minutes or '-'}",
        f"augmentation: {cfg.augment.copies} copies, pitch ±{cfg.augment.pitch_semitones:g} st, "
        f"stretch {cfg.augment.stretch_min:g}–{cfg.augment.stretch_max:g}, gain "
        f"±{cfg.augment.gain_db:g} dB, noise {cfg.augment.noise_snr_min_db:g}–"
        f"{cfg.augment.noise_snr_max_db:g} dB SNR (p {cfg.augment.noise_probability:g})",
        f"loss: MR-STFT on audio ×{stft.weight:g} from {stft.start_fraction:.0%} of training "
        f"(ramp {stft.ramp_fraction:.0%}, ≤{stft.max_items} chunks/batch, resolutions "
        f"fft {list(stft.fft_sizes)} hop {list(stft.hop_sizes)} win {list(stft.win_lengths)}); "
        f"magnitude L1 ×{loss.recon.weight * loss.recon.mag_weight:g}; IF L1 "
        f"×{loss.recon.weight * loss.recon.if_weight:g} (magnitude-weighted); band-magnitude "
        f"convergence ×{loss.recon.weight * loss.recon.convergence_weight:g}; KL β→"
        f"{loss.kl.beta_max:g} over {loss.kl.warmup_fraction:.0%}, free bits "
        f"{loss.kl.free_bits:g} nats/dim",
        f"model: ConvVAE {params / 1e6:.1f} M parameters, latent {spec.model.latent_dim}, "
        f"input {spec.model.n_mels}×{spec.model.frames}",
        f"device: {device}, threads {torch.get_num_threads()}, precision {trainer.precision}",
    ]

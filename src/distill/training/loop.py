"""The training loop: AdamW, clipping, LR schedule, NaN guard, metrics, checkpoints, previews.
It only trains: the model file is written afterwards (training.package) from the weights the loop
chose (Trainer.final_weights): the last ones when the schedule ran to its end, else the best.

Exact resume: the model is initialised from `seed`; each epoch's shuffle comes from its own
generator seeded by (seed, epoch) (data.EpochBatches); dropout and the VAE's sampling noise draw
from torch's global RNG, whose state goes into every checkpoint with the step inside the epoch.
A run stopped at any step and resumed therefore produces the same weights, bit for bit on CPU,
as one never stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from distill.errors import UserError
from distill.model.loss import VAELoss
from distill.model.vae import build
from distill.training import checkpoint
from distill.training.data import ChunkTensors, EpochBatches, TrainingData
from distill.training.device import keep_freed_memory
from distill.training.metrics import DivergenceWatch, MetricsLog
from distill.training.preview import write_previews
from distill.training.run import RunFolder, RunSpec
from distill.training.split import effective_batch_size

MAX_NONFINITE_IN_A_ROW = 20  # skipped steps before the run is declared diverged
CHECKPOINT_FORMAT = 1
# A run whose LR schedule ran to its end keeps its last weights while their validation loss is
# within this factor of the best epoch's: the validation loss of a few held-back chunks stops
# falling within minutes, while the annealed last weights resynthesize unheard files better
# (BENCHMARKS.md, fidelity round 6). Beyond it the model is overfitting and the best is kept.
LAST_WEIGHTS_TOLERANCE = 1.10
LAST_WEIGHTS_MARGIN = f"{(LAST_WEIGHTS_TOLERANCE - 1) * 100:.0f} %"  # in words: "10 %"


class TrainingDivergedError(UserError):
    """The loss or gradients stayed non-finite."""


class Reporter(Protocol):
    def summary(self, lines: list[str]) -> None: ...
    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None: ...
    def epoch(self, record: dict) -> None: ...
    def message(self, text: str) -> None: ...


class QuietReporter:
    """Reports nothing (the Python API's default)."""

    def summary(self, lines: list[str]) -> None: ...
    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None: ...
    def epoch(self, record: dict) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass
class StopFlag:
    """Set by a signal handler, the UI's cancel button or a test; checked after every step."""

    reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason


@dataclass
class LoopState:
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # steps completed in the current epoch
    global_step: int = 0
    best_score: float = math.inf
    best_epoch: int = -1
    nonfinite_total: int = 0
    nonfinite_in_a_row: int = 0
    progress: float = 0.0  # share of the schedule done at the last step (see Trainer.progress)
    sums: dict[str, float] = field(default_factory=dict)  # running sums of this epoch's steps
    divergence: DivergenceWatch = field(default_factory=DivergenceWatch)
    last_epoch_record: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "nonfinite_total": self.nonfinite_total,
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "progress": self.progress,
            "sums": dict(self.sums),
            "divergence": self.divergence.state(),
            "last_epoch_record": dict(self.last_epoch_record),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LoopState:
        return cls(
            epoch=data["epoch"],
            step_in_epoch=data["step_in_epoch"],
            global_step=data["global_step"],
            best_score=data["best_score"],
            best_epoch=data["best_epoch"],
            nonfinite_total=data["nonfinite_total"],
            nonfinite_in_a_row=data["nonfinite_in_a_row"],
            progress=data["progress"],
            sums=dict(data["sums"]),
            divergence=DivergenceWatch.from_state(data["divergence"]),
            last_epoch_record=dict(data["last_epoch_record"]),
        )


@dataclass
class TrainResult:
    run: Path
    model_file: Path | None
    epochs_completed: int
    stopped: str | None  # why the run ended early (interrupt, time limit), None if it finished
    best_epoch: int
    last_epoch: dict
    ended: str | None = None  # why a finished run ended before its last epoch (patience)
    weights: str = "best"  # what the model file holds: "last" (schedule ran to its end) or "best"
    weights_epoch: int = -1  # the epoch those weights come from (-1: no epoch ended)

    def saved_weights(self) -> str:
        """Which weights the model file holds, in words (the CLI's and the page's ending)."""
        if self.weights == "last" and self.weights_epoch > 0:
            best = f"; best validation epoch {self.best_epoch}" if self.best_epoch > 0 else ""
            return (
                f"the model keeps the last weights (epoch {self.weights_epoch}: the schedule "
                f"ran to its end{best})"
            )
        if self.best_epoch > 0:
            return f"the model is from the best epoch ({self.best_epoch})"
        return "the model is from the current weights (no epoch finished yet)"


class Trainer:
    def __init__(
        self,
        run: RunFolder,
        spec: RunSpec,
        data: TrainingData,
        device: torch.device,
        reporter: Reporter | None = None,
        stop: StopFlag | None = None,
        precision: str = "fp32",
    ) -> None:
        self.run, self.spec, self.data, self.device = run, spec, data, device
        self.reporter = reporter or QuietReporter()
        self.stop = stop or StopFlag()
        self.config = spec.training
        self.precision = precision
        self.autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )
        torch.manual_seed(self.config.seed)
        if device.type == "cpu":
            keep_freed_memory()
            # Quiet audio (a −140 dBFS floor, squared in the STFT losses) produces denormal
            # floats, which x86 CPUs compute ~100× slower; flushing them to 0 changes nothing
            # audible.
            torch.set_flush_denormal(True)
        self.model = build(spec.model).to(device)
        if precision == "bf16":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
            # One fused kernel instead of ~10 tensor ops per parameter: 0.45–1.45 s → 0.02 s
            # per step on 2 CPU cores for the seed design's 27 M parameters (bench/train_speed.py).
            fused=device.type in ("cpu", "cuda"),
        )
        self.batch_size = effective_batch_size(self.config.batch_size, len(data.train))
        self.batches = EpochBatches(len(data.train), self.batch_size, self.config.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self.state = LoopState()
        self.started = time.monotonic()
        self._last_checkpoint = self.started
        self._best_state: dict | None = None  # the best epoch's weights, not yet on disk
        self.weights = "best"  # what final_weights gives: set when the loop ends (_end)
        self._progress_at_start = 0.0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.loss = VAELoss(spec.loss, spec.spectral, data.stats)

    # -- schedule ---------------------------------------------------------------------------
    def progress(self) -> float:
        """Share of training done, 0…1: it drives the LR schedule, the KL warm-up and the start
        of the audio loss. With a time limit the whole schedule is fitted into the time: progress
        is the larger of steps done / planned steps and the elapsed share of the time left when
        this session started, so a 15-minute run warms up, anneals and ends in 15 minutes."""
        by_steps = self.state.global_step / max(1, self.total_steps)
        if not self.config.max_minutes:
            return by_steps
        elapsed = (time.monotonic() - self.started) / (self.config.max_minutes * 60)
        by_time = self._progress_at_start + (1 - self._progress_at_start) * elapsed
        return min(1.0, max(by_steps, by_time))

    def _lr_factor(self, _step: int) -> float:
        progress = self.progress()
        warmup = self.config.warmup_fraction
        if progress < warmup:
            return max(progress / warmup, 1.0 / max(1, self.total_steps))
        if self.config.lr_schedule == "constant":
            return 1.0
        done = (progress - warmup) / max(1e-9, 1 - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    # -- checkpoints ------------------------------------------------------------------------
    def _checkpoint_state(self, copy: bool = False) -> dict:
        weights = self.model.state_dict()
        if copy:  # the weights as they are now, not as later steps leave them
            weights = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
            return {"format": CHECKPOINT_FORMAT, "model": weights, "loop": self.state.to_dict()}
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": weights,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "loop": self.state.to_dict(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def restore(self, path: Path) -> None:
        state = checkpoint.load(path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise checkpoint.CheckpointError(f"{path.name} is from another Distill version")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.state = LoopState.from_dict(state["loop"])
        self._progress_at_start = self.state.progress

    def _save_last(self) -> None:
        checkpoint.atomic_save(self._checkpoint_state(), self.run.checkpoints / checkpoint.LAST)

    def _write_checkpoints(self) -> None:
        """`last` (everything a resume needs) and, if a better epoch came since, `best`.

        Written every `checkpoint_seconds` of wall time (and at every stop and at the end), not
        every epoch: on small datasets an epoch is a few seconds and writing the weights and the
        optimizer's moments (~200 MB for the seed design's widths, ~24 MB now) took a large share
        of the run. A kill -9 loses at most that much time; Ctrl-C and SIGTERM lose nothing.
        """
        if self.state.epoch > 0 or self.state.global_step > 0:
            self._save_last()
        if self._best_state is not None:
            checkpoint.atomic_save(self._best_state, self.run.checkpoints / checkpoint.BEST)
            self._best_state = None
        self._last_checkpoint = time.monotonic()

    # -- one step ---------------------------------------------------------------------------
    def _batch(
        self, dataset: ChunkTensors, indices: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        spec, audio = dataset.batch(indices)  # (B, 2, n_mels, frames), (B, samples)
        return spec.to(self.device), audio.to(self.device)

    def _train_step(self, spec: torch.Tensor, audio: torch.Tensor) -> dict:
        self.model.train()
        progress = self.progress()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            prediction, mu, logvar = self.model(spec)
        terms = self.loss(prediction, spec, audio, mu, logvar, progress)
        record = {"lr": self.optimizer.param_groups[0]["lr"], **terms.as_floats()}
        if not torch.isfinite(terms.total):
            return record | {"skipped": True, "grad_norm": None}
        terms.total.backward()
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        )
        if not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            return record | {"skipped": True, "grad_norm": None}
        self.optimizer.step()
        return record | {"skipped": False, "grad_norm": grad_norm}

    # -- validation -------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation losses with every term at full weight (progress = 1), so epochs compare."""
        self.model.eval()
        sums: dict[str, float] = defaultdict(float)
        count = 0
        dataset = self.data.validation
        for start in range(0, len(dataset), self.batch_size):
            indices = torch.arange(start, min(start + self.batch_size, len(dataset)))
            spec, audio = self._batch(dataset, indices)
            with self.autocast:
                prediction, mu, logvar = self.model(spec)
            terms = self.loss(prediction, spec, audio, mu, logvar, progress=1.0)
            for key, value in terms.as_floats().items():
                sums[key] += value * len(indices)
            count += len(indices)
        return {
            f"val_{k}": v / count
            for k, v in sums.items()
            if k in ("total", "stft", "mag", "if", "conv", "kl")
        }

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, metrics: MetricsLog) -> TrainResult:
        cfg, state = self.config, self.state
        max_seconds = cfg.max_minutes * 60 if cfg.max_minutes else None
        while state.epoch < cfg.epochs:
            epoch = state.epoch
            first_step = state.step_in_epoch  # > 0 after a resume inside this epoch
            self.batches.set_epoch(epoch, first_step)
            epoch_started = time.monotonic()
            for step, indices in enumerate(self.batches, start=first_step):
                record = self._train_step(*self._batch(self.data.train, indices))
                if not record["skipped"]:  # a skipped step leaves the LR schedule where it was
                    self.scheduler.step()
                self._after_step(record, epoch, step, len(indices))
                metrics.write(
                    {"kind": "step", "epoch": epoch + 1, "step": state.global_step, **record}
                )
                self.reporter.step(record, epoch, step + 1, self.steps_per_epoch)
                if self.stop.reason:
                    return self._stopped()
                if max_seconds and time.monotonic() - self.started >= max_seconds:
                    # the schedule is fitted into the time (progress): it has run to its end
                    self.stop.request(f"time limit of {cfg.max_minutes:g} min reached")
                    return self._end(stopped=self.stop.reason, schedule_done=True)
            seconds = time.monotonic() - epoch_started
            steps_done = self.steps_per_epoch - first_step
            self._end_epoch(metrics, epoch, seconds, steps_done)
            if self._out_of_patience():
                ended = (
                    f"validation has not improved for {cfg.patience} epochs (best: epoch "
                    f"{state.best_epoch}): stopped early, the best model is kept"
                )
                self.reporter.message(ended)
                return self._end(stopped=None, ended=ended)
        return self._end(stopped=None, schedule_done=True)

    def _out_of_patience(self) -> bool:
        """Learning has stopped: no better validation loss for `patience` epochs. Only without a
        time limit: a time-limited run anneals its LR to the end, and improves late."""
        cfg, state = self.config, self.state
        if cfg.patience is None or cfg.max_minutes or state.best_epoch < 0:
            return False
        return state.epoch - state.best_epoch >= cfg.patience

    def _after_step(self, record: dict, epoch: int, step: int, batch: int) -> None:
        state = self.state
        state.global_step += 1
        state.step_in_epoch = step + 1
        state.progress = self.progress()
        if record["skipped"]:
            state.nonfinite_total += 1
            state.nonfinite_in_a_row += 1
            if state.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW:
                raise TrainingDivergedError(
                    f"training diverged: {MAX_NONFINITE_IN_A_ROW} steps in a row had a non-finite "
                    f"loss or gradient (epoch {epoch + 1}); try a lower --lr "
                    f"(now {self.config.learning_rate:g}) or --resume from the last checkpoint"
                )
            return
        state.nonfinite_in_a_row = 0
        for key in ("total", "stft", "mag", "if", "conv", "kl", "grad_norm"):
            state.sums[key] = state.sums.get(key, 0.0) + record[key] * batch
        state.sums["items"] = state.sums.get("items", 0) + batch

    def _end_epoch(self, metrics: MetricsLog, epoch: int, seconds: float, steps: int) -> None:
        cfg, state = self.config, self.state
        items = max(1.0, state.sums.get("items", 0.0))
        record = {"kind": "epoch", "epoch": epoch + 1, "step": state.global_step}
        for key in ("total", "stft", "mag", "if", "conv", "kl", "grad_norm"):
            record[f"train_{key}"] = state.sums.get(key, 0.0) / items
        progress = state.progress
        record |= {
            "progress": progress,
            "beta": self.loss.config.beta(progress),
            "stft_weight": self.loss.config.stft_weight(progress),
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        record |= self.validate()
        record |= {
            "seconds": seconds,
            "samples_per_s": steps * self.batch_size / max(seconds, 1e-9),
            "nonfinite_steps": state.nonfinite_total,
        }
        improved = record["val_total"] < state.best_score
        if improved:
            state.best_score, state.best_epoch = record["val_total"], epoch + 1
        record["best_epoch"] = state.best_epoch
        state.epoch, state.step_in_epoch, state.sums = epoch + 1, 0, {}
        state.last_epoch_record = record
        metrics.write(record)
        self.reporter.epoch(record)
        if state.divergence.update(record["val_total"]):
            self.reporter.message(
                f"warning: validation loss has risen {state.divergence.patience} epochs in a row "
                f"(epoch {epoch + 1}): the model may be diverging or overfitting; the best model "
                f"so far (epoch {state.best_epoch}) is kept unless the last weights end within "
                f"{LAST_WEIGHTS_MARGIN} of it"
            )
        if improved:  # kept in memory; on disk with the next checkpoint (a copy: ~8 MB)
            self._best_state = self._checkpoint_state(copy=True)
        if (epoch + 1) % cfg.checkpoint_every == 0:
            checkpoint.save_epoch(
                self._checkpoint_state(), self.run.checkpoints, epoch + 1, cfg.keep_checkpoints
            )
        if time.monotonic() - self._last_checkpoint >= cfg.checkpoint_seconds:
            self._write_checkpoints()
        if (epoch + 1) % cfg.preview_every == 0 or epoch + 1 == cfg.epochs:
            self._preview(epoch + 1)

    def _preview(self, epoch: int) -> None:
        try:
            written = write_previews(
                self.model,
                self.data,
                self.spec.spectral,
                self.run.previews / f"epoch-{epoch:04d}",
                latents=self.config.preview_latents,
                seed=self.config.seed + epoch,
                device=self.device,
            )
            self.reporter.message(f"previews: {written}")
        except Exception as err:  # a preview must never stop training
            self.reporter.message(f"warning: preview at epoch {epoch} failed: {err}")

    # -- endings ----------------------------------------------------------------------------
    def _stopped(self) -> TrainResult:
        return self._end(stopped=self.stop.reason)

    def _end(
        self, stopped: str | None, ended: str | None = None, schedule_done: bool = False
    ) -> TrainResult:
        """Choose the weights the model file takes (final_weights) and write the checkpoints."""
        self._write_checkpoints()  # first: a validation below must not touch what resumes
        self.weights = self._choose_weights(schedule_done)
        state = self.state
        if self.weights == "last":
            weights_epoch = state.epoch + (1 if state.step_in_epoch else 0)
        else:
            weights_epoch = state.best_epoch
        return TrainResult(
            ended=ended,
            run=self.run.path,
            model_file=None,  # training.package writes it
            epochs_completed=state.epoch,
            stopped=stopped,
            best_epoch=state.best_epoch,
            last_epoch=state.last_epoch_record,
            weights=self.weights,
            weights_epoch=weights_epoch,
        )

    def _choose_weights(self, schedule_done: bool) -> str:
        """ "last" when the LR schedule annealed to its end (every epoch done, or the time limit
        it was fitted into reached) and the last weights validate within LAST_WEIGHTS_TOLERANCE
        of the best epoch; "best" when the run was cut short (Ctrl-C, patience), its LR never
        decays (constant schedule) or the model has overfit."""
        state = self.state
        if not schedule_done or self.config.lr_schedule == "constant":
            return "best"
        if state.best_epoch < 0:  # no epoch ended: there is no best, the current weights go
            return "last"
        if state.step_in_epoch == 0:  # the last epoch ended with these weights
            last = state.last_epoch_record.get("val_total", math.inf)
        else:  # stopped inside an epoch: validate the weights as they are now
            last = self.validate()["val_total"]
        return "last" if last <= state.best_score * LAST_WEIGHTS_TOLERANCE else "best"

    def final_weights(self) -> dict[str, torch.Tensor]:
        """The weights the model file takes: the current ones if the loop chose the last
        weights or no epoch ended, else the best epoch's (its checkpoint, written at every
        ending)."""
        best = self.run.checkpoints / checkpoint.BEST
        if self.weights == "best" and best.exists():
            return checkpoint.load(best)["model"]
        return self.model.state_dict()

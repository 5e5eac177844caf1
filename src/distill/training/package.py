"""Packaging a trained model: its weights, the latent analysis (sliders), the corpus memory and
the metadata of its run, written as one .distill file. Runs once, after the loop has ended.

The sliders and the corpus memory are bonuses: if either fails, the model file is still written
without it (with a warning). Non-finite weights are never written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from distill.controls.analysis import analyze_controls, chunk_batches
from distill.controls.corpus import CorpusMemory, build_corpus_memory
from distill.model.file import ModelMetadata, for_decoding, save_model_file
from distill.model.vae import ConvVAE, build
from distill.training.data import TrainingData
from distill.training.loop import LoopState, TrainResult
from distill.training.run import RunSpec, now_iso


def package_model(
    weights: dict[str, torch.Tensor],
    spec: RunSpec,
    data: TrainingData,
    state: LoopState,
    result: TrainResult,
    path: Path,
    device: torch.device,
    say: Callable[[str], None],
) -> Path | None:
    """Write the model file at `path` from `weights` (Trainer.final_weights), the run's `state`
    and how the loop ended (`result`); None, with a warning, if the weights are not finite."""
    model = build(spec.model)
    model.load_state_dict(weights)
    if not all(
        torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()
    ):
        say("warning: weights are not finite; no model file written")
        return None
    model = for_decoding(model.to(device))
    metadata = _metadata(spec, data, state, result, _controls(model, spec, data, say))
    corpus = _corpus(model, spec, data, say)
    if corpus is not None:
        metadata.corpus, metadata.corpus_tensors = corpus.to_dict(), corpus.tensors()
    return save_model_file(path, model, metadata)


def _controls(
    model: ConvVAE, spec: RunSpec, data: TrainingData, say: Callable[[str], None]
) -> dict | None:
    """The latent analysis (sliders) of the final model; None, with a warning, if it fails."""
    try:
        controls = analyze_controls(
            model,
            chunk_batches(data.train, seed=spec.training.seed),
            data.stats,
            spec.spectral,
        )
    except Exception as err:  # sliders are a bonus: losing them must not lose the model
        say(f"warning: latent analysis failed, no sliders saved: {err}")
        return None
    say(f"sliders: {', '.join(controls.labels) or 'none'}")
    return controls.to_dict()


def _corpus(
    model: ConvVAE, spec: RunSpec, data: TrainingData, say: Callable[[str], None]
) -> CorpusMemory | None:
    """What generation samples from: every training file's chunks encoded (controls.corpus);
    None, with a warning, if it fails (the model then generates around its sliders' mean)."""
    try:
        corpus = build_corpus_memory(
            model, data.train_files, data.stats, spec.spectral, seed=spec.training.seed
        )
    except Exception as err:  # like the sliders: losing it must not lose the model
        say(f"warning: corpus memory failed, generation will be plainer: {err}")
        return None
    summary = corpus.summary()
    say(
        f"corpus: {summary['files']} files, mode {summary['mode']} "
        f"({100 * summary['oneshot_share']:.0f} % one-shots), typical event "
        f"{summary['event_seconds']:.2f} s"
    )
    return corpus


def _metadata(
    spec: RunSpec,
    data: TrainingData,
    state: LoopState,
    result: TrainResult,
    controls: dict | None,
) -> ModelMetadata:
    last = state.last_epoch_record
    config = spec.training
    return ModelMetadata(
        model=spec.model,
        spectral=spec.spectral,
        stats=data.stats,
        training={
            "dataset": spec.data_dir.name,
            "files": len(data.train_files) + len(data.validation_files),
            "train_files": len(data.train_files),
            "validation_files": len(data.validation_files),
            "duration_s": round(_dataset_seconds(data), 2),
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "weights": result.weights,  # "last" (the schedule ran to its end) or "best"
            "weights_epoch": result.weights_epoch,
            "steps": state.global_step,
            "final_losses": {k: v for k, v in last.items() if k.startswith(("train_", "val_"))},
            "preset": config.preset,
            "config": config.to_dict(),
            "loss": spec.loss.to_dict(),
            "stopped": result.stopped,
            "date": now_iso(),
        },
        info={"name": spec.name, "description": "", "tags": []},
        controls=controls,
    )


def _dataset_seconds(data: TrainingData) -> float:
    """Seconds of original audio (augmented copies not counted) in training and validation."""
    return sum(f.duration for f in data.train.files + data.validation.files if not f.variant)

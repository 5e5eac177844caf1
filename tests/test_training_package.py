"""Packaging the trained model is its own step after the loop: non-finite weights are never
written, and the run (checkpoints, result) says so instead."""

from __future__ import annotations

import torch

from conftest import TINY_TRAINING, write_demo_sounds
from distill.training import checkpoint, loop
from distill.training.session import train


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def summary(self, lines): ...
    def step(self, record, epoch, step, steps_per_epoch): ...
    def epoch(self, record): ...

    def message(self, text):
        self.lines.append(text)


def test_non_finite_final_weights_write_no_model_file_and_say_so(tmp_path, monkeypatch):
    data = write_demo_sounds(tmp_path / "sounds", count=6)
    trained = loop.Trainer.final_weights

    def poisoned(self):
        weights = trained(self)
        return {
            k: v.clone().fill_(float("nan")) if k.endswith("weight") else v
            for k, v in weights.items()
        }

    monkeypatch.setattr(loop.Trainer, "final_weights", poisoned)
    reporter = Messages()
    result = train(
        data, home=tmp_path / "home", name="nan", epochs=1, reporter=reporter, **TINY_TRAINING
    )
    assert result.model_file is None and result.epochs_completed == 1 and result.stopped is None
    assert not (result.run / "model.distill").exists()
    assert (result.run / "checkpoints" / "last.pt").exists()  # resumable all the same
    assert reporter.lines[-1] == "warning: weights are not finite; no model file written"
    assert not any(line.startswith(("sliders:", "corpus:")) for line in reporter.lines)
    best = checkpoint.load(result.run / "checkpoints" / "best.pt")["model"]
    assert all(torch.isfinite(v).all() for v in best.values())  # only what was packaged was bad

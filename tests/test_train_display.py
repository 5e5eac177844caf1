"""Progress lines of `distill train`: an epoch reported before any step (a run resumed right at
the end of an epoch) must print, not crash."""

from __future__ import annotations

import io
import json

from distill.cli.train_display import PlainDisplay
from distill.training.loop import StopFlag


def test_an_epoch_before_any_step_prints_without_an_eta(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"training": {"epochs": 3, "max_minutes": None}}))
    out = io.StringIO()
    display = PlainDisplay(out, StopFlag())
    display.summary([f"run: {tmp_path}"])
    assert display.fraction() is None and display.eta_seconds() is None
    display.epoch({"epoch": 1, "train_total": 1.5, "val_total": 2.0, "best_epoch": 1})
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("epoch 1") and "ETA" not in line and "(best)" in line
    # once steps arrive, progress is known again
    display.step({"total": 1.0}, epoch=1, step=2, steps_per_epoch=4)
    assert display.fraction() == 6 / 12

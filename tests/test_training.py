"""The training loop on a tiny model and a few synthetic sounds: seconds, not minutes."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import TINY_TRAINING
from distill.audio import synth
from distill.model.file import load_model_file
from distill.model.loss import LossConfig
from distill.spectral import SpectralConfig
from distill.training import checkpoint, loop
from distill.training.config import resolve_config
from distill.training.loop import StopFlag, TrainingDivergedError
from distill.training.metrics import DivergenceWatch, read_metrics
from distill.training.session import loss_for, resume, train

SPECTRAL = SpectralConfig(chunk_seconds=0.5)
TINY = TINY_TRAINING  # conftest: a 0.5 s chunk, a tiny VAE, seconds per run
COMPONENTS = ("total", "stft", "mag", "if", "conv", "kl")
REAL_VALIDATE = loop.Trainer.validate  # before any test patches it


def make_sounds(folder: Path, count: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in synth.demo_corpus(7, count):
        sf.write(folder / f"{name}.wav", audio[: int(0.9 * 48_000)], 48_000, subtype="PCM_24")
    return folder


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> Path:
    return make_sounds(tmp_path_factory.mktemp("data") / "my sounds")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")  # shared so the cache is reused across tests


class StopAfter:
    """A reporter that asks the loop to stop after `steps` steps (a test's Ctrl-C)."""

    def __init__(self, steps: int, stop: StopFlag) -> None:
        self.steps, self.stop, self.seen, self.messages = steps, stop, 0, []

    def summary(self, lines):
        self.messages.extend(lines)

    def step(self, record, epoch, step, steps_per_epoch):
        self.seen += 1
        if self.seen >= self.steps:
            self.stop.request("interrupted")

    def epoch(self, record):
        pass

    def message(self, text):
        self.messages.append(text)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run / "checkpoints" / "last.pt")["model"]


def test_loss_falls_and_every_component_is_finite_and_non_negative(sounds, home):
    result = train(sounds, home=home, name="falls", epochs=10, **TINY)
    records = read_metrics(result.run / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 10 and result.epochs_completed == 10 and result.stopped is None
    for r in steps:
        assert all(math.isfinite(r[k]) and r[k] >= 0 for k in COMPONENTS), r
        assert math.isfinite(r["grad_norm"]) and r["lr"] >= 0
    for r in epochs:
        assert all(math.isfinite(r[f"val_{k}"]) and r[f"val_{k}"] >= 0 for k in COMPONENTS), r
    first, last = epochs[0], epochs[-1]
    assert last["train_mag"] < 0.9 * first["train_mag"]
    assert last["val_mag"] < first["val_mag"]
    assert any(r["stft"] > 0 for r in steps)  # the audio term switched on after 25 %
    model, meta = load_model_file(result.model_file)
    assert meta.training["epochs"] == 10 and meta.stats.std[0] > 0
    assert model.config.channels == (4, 8, 8, 16, 16)


def test_resume_equals_an_uninterrupted_run(sounds, home):
    whole = train(sounds, home=home, name="whole", epochs=3, **TINY)
    stop = StopFlag()
    reporter = StopAfter(4, stop)  # mid-epoch: each epoch has 2 steps of 4 chunks … or more
    first = train(sounds, home=home, name="parts", epochs=3, reporter=reporter, stop=stop, **TINY)
    assert first.stopped == "interrupted" and first.epochs_completed < 3
    assert (first.run / "checkpoints" / "last.pt").exists()
    rest = resume("parts", home=home)
    assert rest.stopped is None and rest.epochs_completed == 3
    a, b = weights(whole.run), weights(rest.run)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The metrics file of the resumed run continues where the stopped one ended.
    steps = [r["step"] for r in read_metrics(rest.run / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))


def test_stop_leaves_a_checkpoint_and_a_usable_model(sounds, home):
    stop = StopFlag()
    result = train(
        sounds, home=home, name="stopped", epochs=50, stop=stop, reporter=StopAfter(1, stop), **TINY
    )
    assert result.stopped == "interrupted" and result.epochs_completed == 0
    assert (result.run / "checkpoints" / "last.pt").exists()
    model, _ = load_model_file(result.model_file)  # no epoch ended: current weights
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_time_limit_stops_gracefully_with_a_model(sounds, home):
    result = train(sounds, home=home, name="timed", epochs=500, max_minutes=0.002, **TINY)
    assert result.stopped and "time limit" in result.stopped
    assert result.model_file is not None and result.model_file.exists()
    if result.best_epoch < 0:  # no epoch ended in 0.12 s: no best epoch to name
        assert result.saved_weights().endswith("the schedule ran to its end)")


def test_nan_batch_is_skipped_and_counted(sounds, home, monkeypatch):
    original = loop.Trainer._batch
    calls = {"n": 0}

    def poisoned(self, dataset, indices):
        spec, audio = original(self, dataset, indices)
        if dataset is self.data.train:
            calls["n"] += 1
            if calls["n"] == 2:
                spec = spec.clone()
                spec[0, 0, 0, 0] = float("nan")
        return spec, audio

    monkeypatch.setattr(loop.Trainer, "_batch", poisoned)
    result = train(sounds, home=home, name="nan-once", epochs=2, **TINY)
    records = read_metrics(result.run / "metrics.jsonl")
    skipped = [r for r in records if r["kind"] == "step" and r["skipped"]]
    assert len(skipped) == 1
    assert records[-1]["nonfinite_steps"] == 1
    model, _ = load_model_file(result.model_file)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_persistent_nan_stops_with_a_clear_message_and_no_bad_weights(sounds, home, monkeypatch):
    original = loop.Trainer._batch

    def always_nan(self, dataset, indices):
        spec, audio = original(self, dataset, indices)
        return torch.full_like(spec, float("nan")), audio

    monkeypatch.setattr(loop.Trainer, "_batch", always_nan)
    with pytest.raises(TrainingDivergedError, match=r"non-finite.*--lr"):
        train(sounds, home=home, name="nan-always", epochs=50, **TINY)


def test_split_is_by_file_and_validation_is_never_augmented(sounds, home):
    stop = StopFlag()
    reporter = StopAfter(1, stop)
    overrides = {**TINY, "augment": {"copies": 2}}
    result = train(
        sounds, home=home, name="split", epochs=2, stop=stop, reporter=reporter, **overrides
    )
    run = json.loads((result.run / "run.json").read_text())
    train_files, validation_files = set(run["train_files"]), set(run["validation_files"])
    assert train_files and validation_files and not train_files & validation_files
    assert len(train_files | validation_files) == 6
    assert any("augmented copies" in m and "2 augmented" in m for m in reporter.messages)


def test_preset_warmup_reaches_the_loss(sounds, home):
    conservative = loss_for(resolve_config("conservative", 10))
    aggressive = loss_for(resolve_config("aggressive", 300))
    assert conservative.kl.warmup_fraction != aggressive.kl.warmup_fraction
    assert conservative.beta(0.3) != aggressive.beta(0.3)
    # In a real run, the β logged at every step follows the preset's warm-up.
    result = train(
        sounds,
        home=home,
        name="beta",
        epochs=4,
        kl_warmup_fraction=0.5,
        **{**TINY, "loss": LossConfig()},
    )
    steps = [r for r in read_metrics(result.run / "metrics.jsonl") if r["kind"] == "step"]
    total = len(steps)
    beta_max = resolve_config("conservative", 6).kl_beta_max
    for i, r in enumerate(steps):
        expected = beta_max * min(i / (0.5 * total), 1.0)
        assert r["beta"] == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_batch_never_exceeds_the_number_of_chunks(tmp_path, home):
    data = make_sounds(tmp_path / "five", 5)
    result = train(data, home=home, name="small", epochs=1, **{**TINY, "batch_size": 512})
    spec = json.loads((result.run / "run.json").read_text())
    assert len(spec["validation_files"]) >= 1 and len(spec["train_files"]) >= 1
    record = read_metrics(result.run / "metrics.jsonl")[-1]
    assert record["kind"] == "epoch" and record["step"] == 1  # one step: a batch of all chunks


def test_numbered_checkpoints_keep_the_newest_k(sounds, home):
    result = train(
        sounds,
        home=home,
        name="keep",
        epochs=4,
        **{**TINY, "checkpoint_every": 1, "keep_checkpoints": 2},
    )
    names = sorted(p.name for p in (result.run / "checkpoints").glob("epoch-*.pt"))
    assert names == ["epoch-0003.pt", "epoch-0004.pt"]


def test_previews_are_audio_and_a_failing_preview_only_warns(sounds, home, monkeypatch):
    result = train(sounds, home=home, name="previews", epochs=1, **{**TINY, "preview_every": 1})
    wavs = sorted((result.run / "previews" / "epoch-0001").glob("*.wav"))
    assert len(wavs) >= 2 + 4  # reconstruction + original + 4 latents
    for wav in wavs:
        audio, rate = sf.read(wav)
        assert rate == 48_000 and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(loop, "write_previews", broken)
    reporter = StopAfter(10**6, StopFlag())
    result = train(
        sounds,
        home=home,
        name="bad-preview",
        epochs=1,
        reporter=reporter,
        **{**TINY, "preview_every": 1},
    )
    assert result.stopped is None and result.model_file.exists()
    assert any("warning: preview" in m and "disk on fire" in m for m in reporter.messages)


def test_divergence_warning_after_five_rising_epochs():
    watch = DivergenceWatch(patience=5)
    fired = [watch.update(v) for v in [5, 4, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 3.0, 3.1]]
    assert fired == [False, False, False, False, False, False, True, False, False, False]


def test_kill_9_loses_at_most_the_work_since_the_last_checkpoint(sounds, tmp_path):
    home = tmp_path / "home"
    script = (
        "import sys; from pathlib import Path; from distill.training.session import train;"
        "from distill.model.loss import LossConfig, STFTLossConfig;"
        "from distill.spectral import SpectralConfig;"
        "train(Path(sys.argv[1]), home=Path(sys.argv[2]), name='killed', epochs=500, "
        "spectral=SpectralConfig(chunk_seconds=0.5), channels=(4, 8, 8, 16, 16), latent_dim=8,"
        "batch_size=4, preset='conservative', augment={'copies': 0}, preview_every=1000,"
        "checkpoint_seconds=0,"
        "loss=LossConfig(stft=STFTLossConfig(max_items=2)))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(sounds), str(home)])
    last = home / "runs" / "killed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # let it get into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert last.exists()
    saved_epoch = checkpoint.load(last)["loop"]["epoch"]
    assert saved_epoch >= 1
    result = resume("killed", home=home, epochs=saved_epoch + 1)
    assert result.epochs_completed == saved_epoch + 1 and result.model_file.exists()


def test_a_folder_of_30_to_80_ms_hits_trains_and_remembers_every_hit(tmp_path):
    import soundfile as sf

    from conftest import TINY_TRAINING
    from distill.audio import synth
    from distill.generation.loaded import open_model_file
    from distill.training.session import train

    data = tmp_path / "hits"
    data.mkdir()
    makers = (synth.hihat, synth.snare, synth.clap)
    for i in range(9):
        seconds = 0.03 + 0.05 * i / 8  # 30 … 80 ms
        make = makers[i % 3]
        hit = make(seconds=seconds, rng=i)
        sf.write(data / f"hit-{i}.wav", hit, 48_000, subtype="PCM_24")
    result = train(data, home=tmp_path / "home", name="hits", epochs=3, **TINY_TRAINING)
    assert result.model_file is not None
    loaded = open_model_file(result.model_file)
    corpus = loaded.corpus
    assert len(corpus) >= 7  # every training hit (a fifth of 9 are held out for validation)
    assert all(f.duration < 0.09 for f in corpus.files) and corpus.mode == "oneshot"


def scripted_validation(monkeypatch, totals: list[float]) -> None:
    """Each epoch's validation total comes from `totals` in turn (the other terms are real)."""
    scores = iter(totals)

    def validate(self):
        return REAL_VALIDATE(self) | {"val_total": next(scores)}

    monkeypatch.setattr(loop.Trainer, "validate", validate)


def model_weights(path: Path) -> dict[str, torch.Tensor]:
    model, _ = load_model_file(path)
    return model.state_dict()


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("totals", "kept"),
    [([1.0, 0.9, 0.95], "last"), ([1.0, 0.5, 0.9], "best")],
    ids=["last-within-10-percent", "best-when-last-overfits"],
)
def test_a_run_that_ran_its_schedule_keeps_its_last_weights_unless_they_overfit(
    sounds, home, monkeypatch, totals, kept
):
    scripted_validation(monkeypatch, totals)
    result = train(sounds, home=home, name=f"kept-{kept}", epochs=3, **TINY)
    assert result.stopped is None and result.best_epoch == 2 and result.weights == kept
    saved = model_weights(result.model_file)
    checkpoints = result.run / "checkpoints"
    best = checkpoint.load(checkpoints / "best.pt")["model"]
    last = checkpoint.load(checkpoints / "last.pt")["model"]
    assert not same(best, last)  # epochs 2 and 3 differ: the choice is visible
    assert same(saved, last if kept == "last" else best)
    _, meta = load_model_file(result.model_file)
    assert meta.training["weights"] == kept and meta.training["best_epoch"] == 2
    assert meta.training["weights_epoch"] == (3 if kept == "last" else 2)
    expected = "the model keeps the last weights (epoch 3" if kept == "last" else "best epoch (2)"
    assert expected in result.saved_weights()


def test_a_run_cut_short_keeps_its_best_epoch(sounds, home, monkeypatch):
    # Patience: no better validation for 2 epochs after epoch 2 ends the run at epoch 4.
    scripted_validation(monkeypatch, [1.0, 0.9, 0.95, 0.92, 0.8])
    result = train(sounds, home=home, name="patience", epochs=5, patience=2, **TINY)
    assert result.epochs_completed == 4 and result.ended and "best: epoch 2" in result.ended
    assert result.weights == "best" and result.weights_epoch == 2
    best = checkpoint.load(result.run / "checkpoints" / "best.pt")["model"]
    assert same(model_weights(result.model_file), best)
    # Ctrl-C inside epoch 3 of 3: the LR has not reached its end, the best epoch is kept.
    per_epoch = next(
        r["step"] for r in read_metrics(result.run / "metrics.jsonl") if r["kind"] == "epoch"
    )
    scripted_validation(monkeypatch, [1.0, 0.9, 0.95])
    stop = StopFlag()
    reporter = StopAfter(2 * per_epoch + 1, stop)
    cut = train(sounds, home=home, name="cut", epochs=3, stop=stop, reporter=reporter, **TINY)
    assert cut.stopped == "interrupted" and cut.epochs_completed == 2
    assert cut.weights == "best" and cut.weights_epoch == 2 and cut.best_epoch == 2
    best = checkpoint.load(cut.run / "checkpoints" / "best.pt")["model"]
    assert same(model_weights(cut.model_file), best)
    assert not same(best, checkpoint.load(cut.run / "checkpoints" / "last.pt")["model"])


def test_a_run_that_used_its_whole_time_keeps_its_last_weights(sounds, home, monkeypatch):
    # A clock that moves 0.1 s whenever the loop reads it: the 0.1-minute limit falls at the
    # same step on every machine, inside an epoch, so the weights as they are then are
    # validated (the last value) and kept.
    ticks = iter(range(10**6))

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return 0.1 * next(ticks)

    monkeypatch.setattr(loop, "time", Clock)
    result = train(sounds, home=home, name="timed-last", epochs=500, max_minutes=0.1, **TINY)
    assert result.stopped == "time limit of 0.1 min reached" and result.epochs_completed >= 2
    state = checkpoint.load(result.run / "checkpoints" / "last.pt")
    assert state["loop"]["step_in_epoch"] > 0  # stopped inside an epoch
    assert result.weights == "last" and result.weights_epoch == result.epochs_completed + 1
    assert same(model_weights(result.model_file), state["model"])
    assert "the schedule ran to its end" in result.saved_weights()

"""`distill train` through the real entry point, in a subprocess: exit codes, one-line errors,
--json output, and Ctrl-C / SIGTERM saving a checkpoint and a model that --resume continues.

A tiny model (hidden --channels, --chunk-seconds) on six short synthetic sounds keeps each run to a
few seconds; --threads 1 keeps a busy test machine from slowing torch down by oversubscription.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from distill.audio import synth
from distill.training.metrics import read_metrics
from helpers import ENTRY, cli_env, distill, one_line_error

TINY = [
    *("--channels", "8,16,16,32,32"),
    *("--chunk-seconds", "0.5"),
    *("--batch-size", "4"),
    *("--threads", "1"),
]
COMPONENTS = ("total", "stft", "mag", "if", "kl")
RATE = 48_000


def write_sounds(folder: Path, count: int) -> Path:
    """`count` different 0.5–1 s sounds: notes, a chirp, drums."""
    folder.mkdir(parents=True)
    makers = [
        lambda: synth.sine(220.0, 0.5),
        lambda: synth.harmonic_note(330.0, 0.8),
        lambda: synth.chirp(200.0, 2000.0, 0.6),
        lambda: synth.kick(0.6),
        lambda: synth.snare(0.5),
        lambda: synth.pluck(440.0, 1.0),
    ]
    for i, make in enumerate(makers[:count]):
        sf.write(folder / f"sound {i}.wav", make(), RATE)
    return folder


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> Path:
    return write_sounds(tmp_path_factory.mktemp("data") / "my sounds", 6)


# --- errors: one line, the right exit code ------------------------------------------------------


def test_missing_folder_is_one_line_and_exit_2(tmp_path, empty_home):
    result = distill(empty_home, "train", str(tmp_path / "no such folder"))
    one_line_error(result, "folder not found", "no such folder")
    assert not (empty_home / "runs").exists()  # nothing was started


def test_too_few_usable_files_exit_1(tmp_path, empty_home):
    folder = write_sounds(tmp_path / "three", 3)
    result = distill(empty_home, "train", str(folder), *TINY)
    one_line_error(result, "only 3 usable", "need at least 5", code=1)


def test_unknown_preset_names_the_valid_ones(sounds, empty_home):
    result = distill(empty_home, "train", str(sounds), "--preset", "fast")
    one_line_error(result, "'fast'", "auto", "conservative", "balanced", "aggressive")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--lr", "3"], ["--lr", "(0, 1]"]),
        (["--epochs", "0"], ["--epochs"]),
        (["--device", "tpu"], ["--device", "cpu"]),
        (["--channels", "8,x"], ["--channels"]),
    ],
)
def test_bad_settings_name_the_flag(sounds, empty_home, args, needles):
    one_line_error(distill(empty_home, "train", str(sounds), *args), *needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line(sounds, empty_home):
    result = distill(empty_home, "train", str(sounds), "--device", "cuda")
    one_line_error(result, "--device cuda", "--device cpu")
    assert not (empty_home / "runs").exists()  # refused before a run folder was made


def test_data_dir_or_resume_exactly_one(sounds, empty_home):
    one_line_error(distill(empty_home, "train"), "--resume")
    one_line_error(distill(empty_home, "train", str(sounds), "--resume", "x"), "not both")
    result = distill(empty_home, "train", "--resume", "x", "--lr", "0.1")
    one_line_error(result, "--lr cannot change")


def test_resume_of_an_unknown_run(empty_home):
    one_line_error(distill(empty_home, "train", "--resume", "nothing here"), "no run called")


# --- a whole run ------------------------------------------------------------------------------


def test_tiny_run_with_json(sounds, empty_home):
    result = distill(
        empty_home, "train", str(sounds), "--epochs", "2", "--seed", "3", *TINY, "--json"
    )

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    run = Path(out["run"])
    assert run.parent == empty_home.resolve() / "runs" and out["name"] == "my-sounds"
    assert out["epochs_completed"] == 2 and out["stopped"] is None and out["best_epoch"] in (1, 2)
    assert Path(out["model_file"]).is_file() and Path(out["model_file"]).parent == run
    assert (run / "checkpoints" / "last.pt").is_file()
    assert any(Path(out["previews"]).rglob("*.wav"))  # the last epoch always writes previews
    assert out["final_metrics"]["epoch"] == 2 and out["final_metrics"]["val_total"] > 0
    # both epochs ran: the last weights are kept unless they validate > 10 % above the best
    val = {
        r["epoch"]: r["val_total"]
        for r in read_metrics(Path(out["metrics"]))
        if r["kind"] == "epoch"
    }
    kept = "last" if val[2] <= 1.1 * min(val.values()) else "best"
    assert out["weights"] == kept and out["weights_epoch"] == (2 if kept == "last" else 1)

    records = read_metrics(Path(out["metrics"]))
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 2 and len(steps) == epochs[-1]["step"]
    for record in steps:
        assert all(record[k] >= 0 for k in COMPONENTS)
    for record in epochs:
        assert all(record[f"train_{k}"] >= 0 and record[f"val_{k}"] >= 0 for k in COMPONENTS)
    assert any(r["stft"] > 0 for r in steps)  # the MR-STFT term starts at 25 % of training

    # Human progress went to stderr: the config summary and one line per epoch.
    assert "preset: conservative" in result.stderr
    assert "epoch 2/2  train " in result.stderr and "samples/s" in result.stderr
    assert f"model:       {out['model_file']}" in result.stderr
    # The model report is made at the end and kept in the run folder.
    assert Path(out["report"]) == run / "report" / "report.html" and Path(out["report"]).is_file()
    assert f"report:      {out['report']}" in result.stderr


# --- stopping with a signal -----------------------------------------------------------------


def start_long_run(sounds: Path, home: Path, name: str, out_dir: Path, *extra: str):
    """A tiny run with far more epochs than the test waits for, output going to files."""
    stdout = (out_dir / f"{name}.out").open("w", encoding="utf-8")
    stderr = (out_dir / f"{name}.err").open("w", encoding="utf-8")
    args = [str(sounds), "--name", name, "--epochs", "500", *TINY, *extra]
    process = subprocess.Popen(
        [*ENTRY, "train", *args], stdout=stdout, stderr=stderr, env=cli_env(home)
    )
    return process, stdout, stderr


def wait_for_a_step(process: subprocess.Popen, metrics: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it was signalled"
        if metrics.exists() and any(r.get("kind") == "step" for r in read_metrics(metrics)):
            return
        time.sleep(0.05)
    process.kill()
    pytest.fail("no training step within the timeout")


def stop_with(process, signum: int, files) -> tuple[int, str, str]:
    process.send_signal(signum)
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        for f in files:
            f.close()
    return code, *(Path(f.name).read_text(encoding="utf-8") for f in files)


def test_ctrl_c_saves_then_resume_finishes(sounds, empty_home, tmp_path):
    process, *files = start_long_run(sounds, empty_home, "sig int", tmp_path, "--json")
    run = empty_home / "runs" / "sig-int"
    wait_for_a_step(process, run / "metrics.jsonl")

    code, stdout, stderr = stop_with(process, signal.SIGINT, files)

    assert code == 130, stderr
    assert "Traceback" not in stderr
    out = json.loads(stdout)
    assert out["stopped"] == "interrupted"
    assert (run / "checkpoints" / "last.pt").is_file()
    assert (run / "model.distill").is_file() and out["model_file"] == str(run / "model.distill")
    assert "stopped (interrupted) at epoch" in stderr and "--resume" in stderr

    # The printed command, run as printed (its --home is quoted: the path has a space).
    command = shlex.split(out["resume_command"])
    assert command[:4] == ["distill", "train", "--resume", "sig-int"]
    assert command[4:] == ["--home", str(empty_home.resolve())]
    epochs = out["stopped_at"]["epoch"]  # finish the epoch it was stopped in
    resumed = distill(empty_home, "train", *command[2:], "--epochs", str(epochs), "--json")

    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming sig-int at epoch {epochs}" in resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["stopped"] is None and final["epochs_completed"] == epochs
    assert final["run"] == str(run)
    records = read_metrics(run / "metrics.jsonl")
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == list(range(1, epochs + 1))


def test_sigterm_saves_and_exits_143(sounds, empty_home, tmp_path):
    process, *files = start_long_run(sounds, empty_home, "term", tmp_path)  # human output this time
    run = empty_home / "runs" / "term"
    wait_for_a_step(process, run / "metrics.jsonl")

    code, stdout, stderr = stop_with(process, signal.SIGTERM, files)

    assert code == 143, stdout + stderr
    assert "Traceback" not in stderr
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "model.distill").is_file()
    assert "stopped (terminated) at epoch" in stdout
    assert "Resume with: distill train --resume term --home" in stdout
    assert f"run folder:  {run}" in stdout and f"metrics:     {run / 'metrics.jsonl'}" in stdout


def test_time_limit_is_a_normal_ending(sounds, empty_home):
    args = ["--epochs", "500", "--max-minutes", "0.05", *TINY, "--json"]
    result = distill(empty_home, "train", str(sounds), *args)

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["stopped"] == "time limit of 0.05 min reached"
    assert Path(out["model_file"]).is_file()
    assert "stopped (time limit of 0.05 min reached) at epoch" in result.stderr
    assert "Resume with: distill train --resume my-sounds" in result.stderr

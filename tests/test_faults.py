"""Fault injection: hostile model files, full disks, long inputs, escape sequences, races, kills.

Each test holds one case of issue 11 (reliability and security) that once failed: a traceback, a
huge allocation, a lost take, a misleading message. Disk-full cases inject the error (ENOSPC)
instead of filling a disk; a full home is stood in for by an SQLite that cannot create its side
files.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from distill.model import file as model_file
from distill.model.file import ModelFileError, ModelMetadata, load_model_file
from distill.model.vae import ConvVAE, ModelConfig
from distill.spectral import ChannelStats, SpectralConfig
from helpers import ENTRY, cli_env, distill, one_line_error, write_demo_sounds

TINY_TRAIN = ["--channels", "4,8,8,16,16", "--chunk-seconds", "0.5", "--batch-size", "4"]
TINY_TRAIN += ["--threads", "1", "--latent-dim", "8", "--seed", "1"]
LATENT = 8


# --- 1. hostile .distill headers ----------------------------------------------------------------


def corpus_entry() -> tuple[dict, dict[str, torch.Tensor]]:
    files = [
        {
            "name": "kick.wav",
            "first": 0,
            "count": 2,
            "duration": 0.9,
            "event_seconds": 0.5,
            "peak_seconds": 0.01,
            "onset_rate": 1.1,
            "loudness": -20.0,
            "oneshot": True,
        }
    ]
    tensors = {"mu": torch.zeros(2, LATENT), "sigma": torch.ones(2, LATENT)}
    return {"version": 1, "files": files, "summary": {}}, tensors


def small_model_file(path: Path, **model_settings) -> Path:
    from distill.controls.sliders import Axis, Controls

    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=(4, 8, 8, 16, 16), latent_dim=LATENT, **model_settings))
    axis = Axis("brightness", 0.4, (1.0,) + (0.0,) * (LATENT - 1), 1.0, -1.0, 2.0, 3.0, {})
    controls = Controls(mean=(0.0,) * LATENT, axes=(axis,), latent_std=(1.0,) * LATENT)
    corpus, tensors = corpus_entry()
    metadata = ModelMetadata(
        model=model.config,
        spectral=SpectralConfig(),
        stats=ChannelStats(mean=(-9.5, 0.0), std=(3.0, 0.5)),
        training={"dataset": "kicks", "files": 5, "epochs": 3},
        info={"name": "kicks", "description": "", "tags": []},
        controls=controls.to_dict(),
        corpus=corpus,
        corpus_tensors=tensors,
    )
    return model_file.save_model_file(path, model, metadata)


def edit_header(path: Path, edit, *, resign: bool = True) -> None:
    """Edit the JSON description of a model file in place, keeping its tensors byte for byte.
    `resign` recomputes the description's digest, as an attacker would."""
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    document = json.loads(header["__metadata__"]["distill"])
    edit(document)
    if resign:
        document["sha256_description"] = model_file._description_digest(document)
    header["__metadata__"]["distill"] = json.dumps(document)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)  # safetensors keeps the data 8-byte aligned
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + size :])


def setter(*keys, value):
    def edit(document):
        target = document
        for key in keys[:-1]:
            target = target[key]
        if value is DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return edit


def both(*edits):
    def edit(document):
        for one in edits:
            one(document)

    return edit


def bare(document):
    """No sliders, no corpus memory: the model's own settings are all that is checked."""
    document["controls"] = document["corpus"] = None


DELETE = object()

HOSTILE = {
    "huge channels": (setter("model", "channels", value=[4, 8, 8, 16, 1_000_000]), "channels"),
    "huge latent": (setter("model", "latent_dim", value=10**9), "latent_dim"),
    "wide convs": (setter("model", "channels", value=[4, 8, 8, 4096, 4096]), "model"),
    "more latent than weights": (both(setter("model", "latent_dim", value=16), bare), "weights"),
    "huge n_fft": (setter("spectral", "n_fft", value=2**30), "n_fft"),
    "hop of one sample": (setter("spectral", "hop_length", value=1), "hop_length"),
    "NNLS forever": (setter("spectral", "nnls_iterations", value=10**9), "nnls_iterations"),
    "refinement forever": (setter("spectral", "refine_iterations", value=10**9), "refine"),
    "no sample rate": (setter("spectral", "sample_rate", value=0), "sample_rate"),
    "NaN statistics": (setter("stats", "std", value=[float("nan"), 1.0]), "stats.std"),
    "zero deviation": (setter("stats", "std", value=[0.0, 1.0]), "stats.std"),
    "controls without version": (setter("controls", "version", value=DELETE), "controls"),
    "short direction": (setter("controls", "axes", 0, "direction", value=[1.0]), "direction"),
    "no correlations": (setter("controls", "axes", 0, "correlations", value=DELETE), "correl"),
    "corpus past its chunks": (setter("corpus", "files", 0, "count", value=10**6), "corpus"),
    "corpus without version": (setter("corpus", "version", value=DELETE), "corpus"),
    "string for a number": (setter("model", "n_mels", value="128"), "n_mels"),
    "unknown architecture": (setter("model", "arch", value="transformer"), "model.arch"),
    "architecture as a list": (setter("model", "arch", value=["conv2d"]), "model.arch"),
    "huge profile rank": (setter("model", "profile_rank", value=10**6), "profile_rank"),
    "profile rank as text": (setter("model", "profile_rank", value="8"), "profile_rank"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_header_is_one_line_before_anything_is_built(tmp_path, case, monkeypatch):
    edit, needle = HOSTILE[case]
    path = small_model_file(tmp_path / "kicks.distill")
    edit_header(path, edit)

    built = []
    monkeypatch.setattr(model_file, "build", lambda config: built.append(config))
    started = time.monotonic()
    for read in (model_file.read_metadata, load_model_file):
        with pytest.raises(ModelFileError) as err:
            read(path)
        message = str(err.value)
        assert "\n" not in message and needle in message and "kicks.distill" in message
    assert not built  # refused before a layer was allocated
    assert time.monotonic() - started < 5


def test_the_checksum_covers_the_description(tmp_path):
    path = small_model_file(tmp_path / "kicks.distill")
    edit_header(path, setter("training", "epochs", value=300), resign=False)
    with pytest.raises(ModelFileError, match="altered"):
        model_file.read_metadata(path)  # no weights needed to see it


def test_files_from_before_the_architecture_key_load_as_conv2d(tmp_path):
    path = small_model_file(tmp_path / "kicks.distill")
    seen = []
    edit_header(path, lambda document: seen.append(document["model"]["arch"]))
    assert seen == ["conv2d"]  # new files name their architecture
    edit_header(path, setter("model", "arch", value=DELETE))
    model, metadata = load_model_file(path)
    assert metadata.model.arch == "conv2d" and type(model).__name__ == "ConvVAE"


def test_files_from_before_the_profile_map_load_without_one(tmp_path):
    model, metadata = load_model_file(small_model_file(tmp_path / "new.distill"))
    assert metadata.model.profile_rank == 8 and model.profiles is not None
    path = small_model_file(tmp_path / "kicks.distill", profile_rank=0)
    seen = []
    edit_header(path, lambda document: seen.append(document["model"]["profile_rank"]))
    assert seen == [0]  # new files name their rank, 0 included
    edit_header(path, setter("model", "profile_rank", value=DELETE))  # as files before it
    model, metadata = load_model_file(path)
    assert metadata.model.profile_rank == 0 and model.profiles is None


def test_files_with_a_tensor_digest_only_still_load(tmp_path):
    """Files written before the description had its own digest."""
    path = small_model_file(tmp_path / "kicks.distill")
    edit_header(path, setter("sha256_description", value=DELETE), resign=False)
    _, metadata = load_model_file(path)
    assert metadata.controls["axes"][0]["label"] == "brightness"
    assert metadata.corpus_tensors["sigma"].shape == (2, LATENT)


def test_non_finite_corpus_memory_is_refused(tmp_path):
    path = small_model_file(tmp_path / "kicks.distill")
    corpus, tensors = corpus_entry()
    tensors["mu"][0, 0] = float("nan")  # a NaN would make every take from it NaN
    with pytest.raises(ModelFileError, match=r"corpus\.mu"):
        model_file.write_corpus(path, corpus, tensors)
        load_model_file(path)


def test_cli_import_and_info_refuse_hostile_files(tmp_path):
    home = tmp_path / "home"
    path = small_model_file(tmp_path / "kicks.distill")
    edit_header(path, setter("spectral", "n_fft", value=2**30))
    one_line_error(distill(home, "model", "import", str(path)), "kicks.distill", "n_fft")

    good = small_model_file(tmp_path / "good.distill")
    assert distill(home, "model", "import", str(good), "--name", "good").returncode == 0
    stored = next((home / "models").glob("*.distill"))
    raw = bytearray(stored.read_bytes())
    raw[-5] ^= 0x40  # one flipped bit in the weights
    stored.write_bytes(bytes(raw))
    one_line_error(distill(home, "model", "info", "good"), "altered")


# --- 4. a full home disk does not block reading --------------------------------------------------


def copy_home(source: Path, dest: Path) -> Path:
    """A copy of a home's library (database and model files) that tests may break."""
    import shutil
    import sqlite3

    dest.mkdir(parents=True)
    shutil.copytree(source / "models", dest / "models")
    src, out = sqlite3.connect(source / "library.sqlite"), sqlite3.connect(dest / "library.sqlite")
    src.backup(out)
    out.execute("PRAGMA journal_mode = WAL")
    src.close()
    out.close()  # the last connection: its WAL is checkpointed and removed
    return dest


def test_a_full_home_disk_still_lists_shows_exports_and_generates(tiny_model, tmp_path):
    home = copy_home(tiny_model.home, tmp_path / "home")
    # SQLite cannot create its side files: what a full (or read-only) disk does to a writer.
    (home / "library.sqlite-wal").mkdir()
    (home / "library.sqlite-shm").mkdir()
    other = tmp_path / "other disk"
    other.mkdir()

    listed = distill(home, "model", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "tiny" in [m["name"] for m in json.loads(listed.stdout)["models"]]
    shown = distill(home, "model", "info", "tiny")
    assert shown.returncode == 0 and "sliders:" in shown.stdout, shown.stderr
    exported = distill(home, "model", "export", "tiny", str(other))
    assert exported.returncode == 0, exported.stderr
    assert (other / "tiny.distill").is_file()
    args = ["generate", "tiny", "-d", "0.5", "--seed", "3", "--no-history", "--out", str(other)]
    generated = distill(home, *args)
    assert generated.returncode == 0, generated.stderr
    assert (other / "tiny-3.wav").is_file()
    # and writing still says why it cannot, in one line
    one_line_error(distill(home, "model", "rename", "tiny", "new"), "library")


def test_reading_an_empty_home_creates_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = distill(home, "model", "list")
    assert result.returncode == 0 and "empty" in result.stdout
    assert not list(home.iterdir())


# --- 5. escape sequences in file contents never reach the terminal ---------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"


def test_names_from_files_are_printed_without_control_characters(tmp_path):
    home = tmp_path / "home"
    path = small_model_file(tmp_path / "kicks.distill")

    def hostile(document):
        document["training"]["dataset"] = f"kicks{ESCAPES}"
        document["controls"]["axes"][0]["label"] = f"bright{ESCAPES}"
        document["info"]["description"] = f"punchy{ESCAPES}"

    edit_header(path, hostile)
    assert distill(home, "model", "import", str(path)).returncode == 0
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    sf.write(sounds / f"kick{ESCAPES}.wav", np.zeros(4800, dtype=np.float32), 48_000)

    for args in (
        ["model", "list"],
        ["model", "info", "kicks"],
        ["model", "sliders", "kicks"],
        ["model", "list", "--json"],
        ["model", "rename", "kicks", "kicks 2"],
        ["dataset", "check", str(sounds)],
        ["dataset", "check", str(sounds), "--json"],
        ["generate", str(tmp_path / f"gone{ESCAPES}.distill")],
    ):
        result = distill(home, *args)
        for stream in (result.stdout, result.stderr):
            assert not any(c in stream for c in "\x1b\x07\x9b\u202e"), (args, stream)
    assert "kicks" in distill(home, "model", "info", "kicks 2").stdout


# --- 3. a full disk during training: one line, exit code 2, and resume still works -------------

# The entry point with metrics.jsonl refusing its writes after the first FULL_AFTER: the line in
# progress is torn, as a disk that fills mid-write leaves it.
DISK_FILLS = """
import errno, os, pathlib
FULL_AFTER = {full_after}
open_file = pathlib.Path.open
class Full:
    def __init__(self, f):
        self.f, self.n = f, 0
    def write(self, data):
        self.n += 1
        if self.n > FULL_AFTER:
            self.f.write(data[:7])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(data)
    def __getattr__(self, name):
        return getattr(self.f, name)
def patched(self, *args, **kwargs):
    f = open_file(self, *args, **kwargs)
    appending = "a" in (args[0] if args else kwargs.get("mode", "r"))
    return Full(f) if self.name == "metrics.jsonl" and appending else f
pathlib.Path.open = patched
from distill.cli.app import main
main()
"""


def test_disk_full_during_training_is_one_line_then_resume_finishes(tmp_path):
    from distill.training.metrics import read_metrics

    home, sounds = tmp_path / "home", write_demo_sounds(tmp_path / "sounds", count=6)
    first = distill(home, "train", str(sounds), "--name", "full", "--epochs", "2", *TINY_TRAIN)
    assert first.returncode == 0, first.stderr
    metrics = home / "runs" / "full" / "metrics.jsonl"
    written = len(read_metrics(metrics))

    disk_fills = [sys.executable, "-c", DISK_FILLS.format(full_after=3)]
    args = ["train", "--resume", "full", "--epochs", "5"]
    full = distill(home, *args, entry=disk_fills)
    one_line_error(full, "No space left on device", "distill train --resume full")
    assert len(read_metrics(metrics)) == written + 3  # 3 steps past the checkpoint, one torn

    again = distill(home, "train", "--resume", "full", "--epochs", "4")
    assert again.returncode == 0, again.stderr
    records = read_metrics(metrics)
    assert metrics.read_bytes().count(b"\n") == len(records)  # no torn or glued line
    steps = [r["step"] for r in records if r["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))  # each step once, none lost
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2, 3, 4]


def test_a_killed_runs_later_lines_are_dropped_on_resume(tmp_path):
    from distill.training.metrics import MetricsLog, read_metrics

    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 6):
        log.write({"kind": "step", "step": step})
    log.close()
    with path.open("ab") as f:
        f.write(b'{"kind": "st')  # killed mid-line
    MetricsLog(path, after_step=3).close()  # resumed from the checkpoint at step 3
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    assert path.read_bytes().endswith(b"}\n")


# --- 6. two generates into one folder at once: no take lost ---------------------------------------


def test_a_name_is_claimed_the_moment_it_is_chosen(tmp_path):
    from distill.generation.render import released_on_failure, take_path

    first, second = take_path(tmp_path, "t-7", ".wav"), take_path(tmp_path, "t-7", ".flac")
    assert first.name == "t-7.wav" and second.name == "t-7-2.flac"  # t-7.json is first's
    with pytest.raises(KeyboardInterrupt), released_on_failure(first):
        raise KeyboardInterrupt  # Ctrl-C while rendering: the claim goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t-7-2.flac", "t-7-2.json"]


def test_concurrent_generates_with_one_seed_keep_every_take(tiny_model, tmp_path):
    out = tmp_path / "takes"
    env = cli_env(tiny_model.home)
    args = ["generate", "tiny", "--seed", "7", "-d", "0.5", "--no-history", "--out", str(out)]
    processes = [
        subprocess.Popen([*ENTRY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(3)
    ]
    printed = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
        printed.append(stdout.decode().split()[0])
    takes = sorted(out.glob("*.wav"))
    assert len(set(printed)) == 3 and sorted(map(Path, printed)) == takes
    for take in takes:
        sidecar = json.loads(take.with_suffix(".json").read_text())
        assert sidecar["export"]["file"] == take.name and sf.info(take).frames > 0


# --- 7. the small ones ----------------------------------------------------------------------------


def test_resynth_never_replaces_a_sidecar_and_says_when_the_input_is_missing(tmp_path):
    home, out = tmp_path / "home", tmp_path / "loop.wav"
    sidecar = out.with_suffix(".json")
    sidecar.write_text('{"another": "take"}')
    source = tmp_path / "in.wav"
    sf.write(source, np.zeros(4800, dtype=np.float32), 48_000)
    one_line_error(distill(home, "resynth", "kicks", str(source), str(out)), "loop.json exists")
    assert sidecar.read_text() == '{"another": "take"}'
    missing = distill(home, "resynth", "kicks", str(tmp_path / "gone.wav"), str(tmp_path / "x.wav"))
    one_line_error(missing, "file not found", "gone.wav")


def test_a_name_the_library_would_refuse_is_refused_before_training(tmp_path):
    home, sounds = tmp_path / "home", write_demo_sounds(tmp_path / "sounds", count=5)
    result = distill(home, "train", str(sounds), "--name", "n" * 5000, *TINY_TRAIN)
    one_line_error(result, "at most 100 characters")
    assert not (home / "runs").exists()


def test_a_pickled_checkpoint_is_one_line(tiny_model, tmp_path):
    import pickle
    import shutil

    home = tmp_path / "home"
    shutil.copytree(tiny_model.home / "runs" / "tiny", home / "runs" / "tiny")
    last = home / "runs" / "tiny" / "checkpoints" / "last.pt"
    last.write_bytes(pickle.dumps({"model": os.system}))  # would run code if unpickled
    result = distill(home, "train", "--resume", "tiny", "--epochs", "40")
    one_line_error(result, "last.pt is not a Distill checkpoint")
    assert "weights_only" not in result.stderr


def test_a_killed_export_leaves_no_temp_file_behind_for_long(tmp_path):
    from distill.atomic import atomic_write

    folder = tmp_path / "exports"
    folder.mkdir()
    slow = (
        "import sys, time; from pathlib import Path; from distill.atomic import atomic_write; "
        "atomic_write(Path(sys.argv[1]), lambda f: (f.write(b'x' * 4096), f.flush(), "
        "time.sleep(600)))"
    )
    writer = subprocess.Popen([sys.executable, "-c", slow, str(folder / "big.distill")])
    deadline = time.monotonic() + 60
    while not list(folder.glob(".big.distill.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.1)
    writer.kill()  # kill -9 in the middle of the write
    writer.wait()
    (left,) = folder.glob(".big.distill.*.tmp")
    old = time.time() - 120
    os.utime(left, (old, old))
    mine = folder / f".other.distill.{os.getpid()}-abcdefgh.tmp"  # a live process's write
    mine.write_bytes(b"in progress")
    os.utime(mine, (old, old))

    atomic_write(folder / "small.distill", lambda f: f.write(b"y"))
    assert sorted(p.name for p in folder.iterdir()) == [mine.name, "small.distill"]


def test_a_wav_whose_name_is_not_utf8_is_read(tmp_path):
    from distill.audio.check import check_dataset

    folder = tmp_path / "sounds"
    folder.mkdir()
    name = os.fsdecode(b"kick-\xff\xfe.wav")  # Latin-1 bytes from an old archive
    sf.write(os.fsencode(folder / name), 0.5 * np.sin(np.arange(24_000) / 10.0), 48_000)
    (verdict,) = check_dataset(folder).files
    assert verdict.usable, verdict.reason
    result = distill(tmp_path / "home", "dataset", "check", str(folder))
    assert "kick-" in result.stdout and "unreadable" not in result.stdout


def test_import_errors_name_the_users_file(tmp_path):
    path = small_model_file(tmp_path / "friends model.distill")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x40  # the description is intact, the weights are not
    path.write_bytes(bytes(raw))
    line = one_line_error(distill(tmp_path / "home", "model", "import", str(path)), "altered")
    assert "friends model.distill" in line and ".incoming" not in line


# --- 2. resynthesis of long inputs in bounded memory ----------------------------------------------

# Buffers of 1 MB and up are mmapped (glibc's M_MMAP_THRESHOLD, −3) and so returned when freed:
# the peak is then what was live at once, not the heap's high-water mark plus whatever slack the
# allocator kept (which moved the 2- and 4-minute peaks by up to ±170 MB between runs).
RSS_AT_EXIT = (
    "import ctypes; ctypes.CDLL('libc.so.6').mallopt(-3, 1 << 20); "
    "import atexit, resource, sys; atexit.register(lambda: print('peak RSS', "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)); "
    "from distill.cli.app import main; main()"
)


def long_input(path: Path, seconds: float) -> Path:
    """Notes and noise bursts, written block by block."""
    rate, block = 48_000, 480_000
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for start in range(0, round(seconds * rate), block):
            t = (start + np.arange(min(block, round(seconds * rate) - start))) / rate
            f.write(
                0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * (t % 1.0)) + 0.02 * (t % 2 < 0.1)
            )
    return path


def test_long_resynthesis_memory_does_not_grow_with_the_input(tmp_path):
    """1 and 2 minutes peak at the same RSS (the whole-array path grew ~190 MB a minute). An
    untrained small model with a one-step inverse keeps it fast; the inverse's cost is not what
    grew."""
    spectral = SpectralConfig(nnls_iterations=1, refine_iterations=0)
    config = ModelConfig.for_spectral(spectral, channels=(4, 8, 8, 16, 16), latent_dim=LATENT)
    stats = ChannelStats(mean=(-11.0, 0.0), std=(3.5, 0.35))
    model = model_file.save_model_file(
        tmp_path / "cheap.distill", ConvVAE(config), ModelMetadata(config, spectral, stats)
    )
    peaks = []
    for minutes in (1, 2):
        source = long_input(tmp_path / f"{minutes} min.wav", minutes * 60)
        out = tmp_path / f"{minutes} min out.flac"
        args = ["resynth", str(model), str(source), str(out)]
        result = distill(tmp_path / "home", *args, entry=[sys.executable, "-c", RSS_AT_EXIT])
        assert result.returncode == 0, result.stderr
        assert f"resynthesizing {minutes} min 00 s through cheap" in result.stderr
        assert sf.info(out).frames == minutes * 60 * 48_000
        peaks.append(int(result.stderr.strip().splitlines()[-1].split()[-1]))
    # One more minute cost the whole-array path ~190 MB; streamed, the two peaks are equal
    # (572 and 569 MB measured at 2 and 4 minutes, with large buffers returned when freed:
    # RSS_AT_EXIT).
    assert peaks[1] - peaks[0] < 100, peaks


def test_streamed_resynthesis_is_the_whole_array_one(tiny_model, tmp_path):
    """25 s: more than one analysis and synthesis segment (2 048 frames, 21.8 s)."""
    from distill.generation.loaded import open_model_file

    source = long_input(tmp_path / "in.wav", 25.0)
    out = tmp_path / "out.wav"
    args = ["resynth", "tiny", str(source), str(out), "--bit-depth", "32f", "--slider", "1=3"]
    result = distill(tiny_model.home, *args)
    assert result.returncode == 0, result.stderr
    streamed, rate = sf.read(out, dtype="float32")
    gain = json.loads(out.with_suffix(".json").read_text())["export"]["gain_db"]

    loaded = open_model_file(tiny_model.model_file, device="cpu")
    audio, _ = sf.read(source, dtype="float32")
    whole = loaded.resynth(audio, sliders=["1=3"]) * np.float32(10 ** (gain / 20))
    assert rate == 48_000 and len(streamed) == len(whole) == len(audio)
    # the same up to float rounding (torch's thread count differs between the two processes)
    assert np.abs(streamed - whole).max() < 1e-3 * np.abs(whole).max()


@pytest.mark.parametrize(
    ("format", "depth", "lufs"), [("wav", "24", None), ("flac", "16", -14.0), ("ogg", "24", -16.0)]
)
def test_export_in_blocks_is_the_whole_array_export(tmp_path, format, depth, lufs):
    from distill.audio.write import ExportOptions, write_audio
    from distill.audio.write_long import write_audio_blocks

    rate, n = 48_000, 48_000 * 12 + 1234
    t = np.arange(n) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(t)) + 0.2 * (t % 3 < 0.1)).astype(
        np.float32
    )
    options = ExportOptions(format=format, bit_depth=depth, lufs=lufs)
    whole = write_audio(tmp_path / f"a.{format}", x, rate, options, sidecar={"k": 1})
    blocks = (x[i : i + 7777] for i in range(0, n, 7777))
    streamed = write_audio_blocks(
        tmp_path / f"b.{format}", blocks, rate, options, sidecar={"k": 1}, in_memory_seconds=0
    )
    assert streamed.frames == whole.frames and streamed.gain_db == pytest.approx(
        whole.gain_db, abs=1e-4
    )
    assert streamed.peak_dbfs == pytest.approx(whole.peak_dbfs, abs=1e-3)
    a, _ = sf.read(tmp_path / f"a.{format}", dtype="float32")
    b, _ = sf.read(tmp_path / f"b.{format}", dtype="float32")
    if format != "ogg":
        assert np.array_equal(a, b)
    assert json.loads((tmp_path / "b.json").read_text())["export"]["frames"] == n
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"a.{format}", "a.json", f"b.{format}", "b.json"]
    )  # no spool or temp file left

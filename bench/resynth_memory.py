"""Peak memory and time of `distill resynth` on a long synthetic input.

    .venv/bin/python bench/resynth_memory.py                  # 10 minutes, default model size
    .venv/bin/python bench/resynth_memory.py --minutes 60 --format flac

A default-size ConvVAE (1 s chunks at 48 kHz, latent 128) with random weights is saved to a temp
folder (memory and time do not depend on what a model learned), a mono 48 kHz 24-bit WAV of
`--minutes` of notes, noise bursts and a chirp is written beside it, and the real command runs
it in a fresh process; its peak RSS is read from the kernel (RUSAGE_CHILDREN, so it is the
command's own). Ends with one JSON line: minutes, wall_s, peak_rss_mb, output_frames.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from generate_speed import make_model

RATE = 48_000


def write_input(path: Path, minutes: float, seed: int = 0) -> Path:
    """`minutes` of varied sound, written block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    block = 10 * RATE
    total = round(minutes * 60 * RATE)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_24") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / RATE
            note = 0.3 * np.sin(2 * np.pi * 220 * (1 + (start // block) % 5) * t)
            note *= np.exp(-3 * (t % 1.0))
            bursts = rng.standard_normal(n) * 0.1 * ((t % 2.0) < 0.05)
            chirp = 0.1 * np.sin(2 * np.pi * (100 + 400 * (t % 10.0)) * (t % 10.0))
            f.write((note + bursts + chirp).astype(np.float32))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--format", default="wav", choices=("wav", "flac", "mp3", "ogg"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = make_model(folder)
        source = write_input(folder / "long.wav", args.minutes)
        out = folder / f"out.{args.format}"
        command = [
            *(sys.executable, "-c", "from distill.cli.app import main; main()"),
            *("resynth", str(model), str(source), str(out), "--device", "cpu"),
        ]
        env = {"OMP_NUM_THREADS": str(args.threads), "DISTILL_HOME": str(folder / "home")}
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        if result.returncode:
            sys.exit(result.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(result.stdout.strip() + ("\n" + result.stderr.strip() if result.stderr else ""))
        print(
            json.dumps(
                {
                    "minutes": args.minutes,
                    "format": args.format,
                    "wall_s": round(wall, 1),
                    "peak_rss_mb": round(peak_mb),
                    "output_frames": sf.info(out).frames,
                }
            )
        )


if __name__ == "__main__":
    main()

"""Generation speed and memory: CLI wall time, in-process real-time factor, peak RSS, load time.

    .venv/bin/python bench/generate_speed.py                 # a seeded, untrained default model
    .venv/bin/python bench/generate_speed.py --model rain    # or a trained one (name or file)

Speed does not depend on what a model learned, so by default a default-size ConvVAE (27 M
parameters, latent 128, 1 s chunks) with random weights is saved to a temp folder and used.
Each measurement runs in a fresh process so that its peak RSS is its own. Ends with one JSON line:
cli_wall_30s, rtf_30s, rtf_300s, peak_rss_mb (5 min of audio), peak_rss_30s_mb, load_s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, resource, sys, time
import torch
from distill.training.device import keep_freed_memory
keep_freed_memory()
torch.set_num_threads({threads})
t0 = time.perf_counter()
from distill.generation.loaded import open_model_file
model = open_model_file({model!r})
load_s = time.perf_counter() - t0
model.generate(1.0, seed=0)  # warm-up: first-call allocations and kernel selection
times = []
for i in range({repeats}):
    t = time.perf_counter()
    audio = model.generate({seconds}, seed=i + 1, variation=0.5)
    times.append(time.perf_counter() - t)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(load_s=load_s, times=times, rss_mb=rss_mb, samples=len(audio))))
"""


def make_model(folder: Path) -> Path:
    import torch

    from distill.model.file import ModelMetadata, save_model_file
    from distill.model.vae import ConvVAE, ModelConfig
    from distill.spectral import ChannelStats, SpectralConfig

    torch.manual_seed(0)
    spectral = SpectralConfig()
    model = ConvVAE(ModelConfig.for_spectral(spectral))
    # statistics of a real corpus's log magnitude and IF (bench corpus, drums + tonal)
    stats = ChannelStats(mean=(-11.0, 0.02), std=(3.5, 0.35))
    meta = ModelMetadata(
        ModelConfig.for_spectral(spectral), spectral, stats, info={"name": "bench"}
    )
    return save_model_file(folder / "bench.distill", model, meta)


def in_process(model: str, seconds: float, repeats: int, threads: int) -> dict:
    code = WORKER.format(model=model, seconds=seconds, repeats=repeats, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli_wall(
    model: str, seconds: float, repeats: int, out_dir: Path, extra: tuple[str, ...] = ()
) -> list[float]:
    walls = []
    for i in range(repeats):
        command = [
            str(Path(sys.executable).with_name("distill")),
            "generate",
            model,
            "-d",
            str(seconds),
            "--seed",
            str(i),
            "--out",
            str(out_dir),
            *extra,
        ]
        t = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="library name or .distill file (default: a random one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model
        if model is None or not Path(model).is_file():
            if model is not None:
                from distill.generation.loaded import load

                model = str(load(model).path)
            else:
                model = str(make_model(folder))
        short = in_process(model, 30.0, args.repeats, args.threads)
        long = in_process(model, 300.0, 1, args.threads)
        # a path, not a library name: the bench leaves the user's history alone
        walls = cli_wall(model, 30.0, args.repeats, folder / "takes", ("--no-history",))

    rtf_30 = 30.0 / statistics.median(short["times"])
    rtf_300 = 300.0 / long["times"][0]
    output_mb = long["samples"] * 4 / 2**20
    print(f"model load: {short['load_s']:.2f} s (in-process, after imports)")
    print(
        f"30 s: {statistics.median(short['times']):.3f} s → {rtf_30:.1f}× real time, "
        f"peak RSS {short['rss_mb']:.0f} MB"
    )
    print(
        f"300 s: {long['times'][0]:.2f} s → {rtf_300:.1f}× real time, peak RSS "
        f"{long['rss_mb']:.0f} MB (the output itself: {output_mb:.0f} MB)"
    )
    print(
        f"CLI, 30 s to a 24-bit WAV: {statistics.median(walls):.2f} s wall (runs: "
        f"{', '.join(f'{w:.2f}' for w in walls)})"
    )
    print(
        json.dumps(
            {
                "cli_wall_30s": round(statistics.median(walls), 3),
                "rtf_30s": round(rtf_30, 1),
                "rtf_300s": round(rtf_300, 1),
                "peak_rss_mb": round(long["rss_mb"]),
                "peak_rss_30s_mb": round(short["rss_mb"]),
                "load_s": round(short["load_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Training speed and peak memory of the default ConvVAE on CPU (issue 3, "Benchmarks").

    python bench/train_speed.py [--threads 2] [--steps 8] [--warmup 2] [--quality-steps 30]

One training step is what `Trainer._train_step` does: forward (fp32, or bf16 autocast with a
channels_last model) → VAELoss → backward → gradient clipping → AdamW step, on a batch of 32
one-second chunks (2 × 128 mel bands × 94 frames) that `analyze()` made from synthetic sounds
(`distill.audio.synth.demo_corpus`), normalized with statistics of that same data.

Every configuration runs in a fresh subprocess, so the peak RSS (ru_maxrss) is its own. Each is
measured twice: with the audio-domain MR-STFT term off (progress 0: the first quarter of training)
and on (progress 1: the steady state after `start_fraction`). Per step it times

  model_fwd   encoder + decoder forward
  loss_l1_kl  the L1 / magnitude-weighted L1 / KL terms (the loss minus the two below)
  synth_fwd   the differentiable inverse (mel → linear NNLS, IF → phase, ISTFT) on ≤ max_items
  mrstft_fwd  the MR-STFT distance on those items (model.mrstft, auraloss' value)
  loss_bwd    backward from the total loss to the model's outputs (through MR-STFT and inverse)
  model_bwd   backward through the model
  clip, optim gradient clipping, AdamW step

and reports the median wall time per step as samples/s (the machine may be shared: medians, and
CPU seconds per step, which contention inflates less). A quality check then trains fp32 and bf16
from the same initial weights for --quality-steps steps on one fixed small batch with every loss
term on and prints both loss curves. The last line is one JSON object: `samples_per_s` and
`peak_rss_mb` of the configuration the product uses by default with the MR-STFT term on, the same
with the term off, and every configuration's figures under "configs".

Options that are not the product's defaults (--max-items, --nnls-iterations, --fft-sizes,
--optimizer, --malloc, --compile) measure candidate changes before they go into src/.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import distill.model.loss as loss_module
from distill.audio import synth
from distill.model import ConvVAE, LossConfig, ModelConfig, VAELoss
from distill.spectral import ChannelStats, SpectralConfig, analyze
from distill.spectral.normalize import ChannelSums
from distill.training.device import keep_freed_memory

PRODUCT_PRECISION = "bf16"  # what the JSON's headline figures are taken from (see the report)
SECTIONS = (
    "model_fwd",
    "loss_l1_kl",
    "synth_fwd",
    "mrstft_fwd",
    "loss_bwd",
    "model_bwd",
    "clip",
    "optim",
)


def realistic_batch(batch: int, spectral: SpectralConfig, seed: int = 0):
    """(normalized spec (B, 2, 128, 94), audio (B, 48 000), stats) from varied synthetic sounds,
    each cut or zero-padded to one chunk."""
    n = spectral.chunk_samples
    sounds = [s for _, s in synth.demo_corpus(seed, count=batch, sample_rate=spectral.sample_rate)]
    audio = torch.from_numpy(np.stack([np.pad(s[:n], (0, max(0, n - len(s)))) for s in sounds]))
    spec = analyze(audio, spectral)  # (B, 2, 128, 94)
    stats = ChannelStats.from_sums(ChannelSums.of(spec))
    return stats.normalize(spec), audio, stats


class SectionTimer:
    """Wall seconds per named section, accumulated over one step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def instrument_loss(loss: VAELoss, timer: SectionTimer) -> None:
    """Times the inverse and the MR-STFT inside VAELoss without changing what it computes."""
    synthesize, mrstft = loss_module.synthesize, loss.audio.mrstft

    def timed_synthesize(*args, **kwargs):
        with timer("synth_fwd"):
            return synthesize(*args, **kwargs)

    def timed_mrstft(*args, **kwargs):
        with timer("mrstft_fwd"):
            return mrstft(*args, **kwargs)

    loss_module.synthesize = timed_synthesize
    loss.audio.mrstft = timed_mrstft


def build(options: dict, stats: ChannelStats, spectral: SpectralConfig):
    torch.manual_seed(0)
    widths = {"channels": tuple(options["channels"])} if options.get("channels") else {}
    model = ConvVAE(ModelConfig.for_spectral(spectral, **widths))
    if options["precision"] == "bf16":
        model = model.to(memory_format=torch.channels_last)
    optimizer_kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=7e-4,
        weight_decay=0.01,  # the "balanced" preset
        **optimizer_kwargs[options["optimizer"]],
    )
    stft = dataclasses.replace(
        LossConfig().stft,
        **{k: options[k] for k in ("max_items", "nnls_iterations") if options.get(k) is not None},
    )
    if options.get("fft_sizes"):
        sizes = tuple(options["fft_sizes"])
        stft = dataclasses.replace(
            stft, fft_sizes=sizes, hop_sizes=tuple(s // 4 for s in sizes), win_lengths=sizes
        )
    loss = VAELoss(dataclasses.replace(LossConfig(), stft=stft), spectral, stats)
    forward = torch.compile(model) if options.get("compile") else model
    return model, forward, optimizer, loss


def train_step(model, forward, optimizer, loss, spec, audio, progress, precision, timer) -> dict:
    """Trainer._train_step, with the backward split at the model's outputs so each half is timed
    (same arithmetic: the loss's gradients w.r.t. the outputs are pushed on through the model)."""
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with timer("model_fwd"), autocast:
        outputs = forward(spec)  # (prediction (B, 2, 128, 94), μ, log σ²)
    leaves = [t.detach().requires_grad_() for t in outputs]
    with timer("loss"):
        terms = loss(*leaves[:1], spec, audio, *leaves[1:], progress)
        record = terms.as_floats()
    with timer("loss_bwd"):
        terms.total.backward()
    with timer("model_bwd"):
        torch.autograd.backward(outputs, [t.grad for t in leaves])
    with timer("clip"):
        record["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
    with timer("optim"):
        optimizer.step()
    return record


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def set_malloc(mode: str) -> None:
    """'nommap' (the product's setting, distill.training.device.keep_freed_memory): glibc serves
    large blocks from its heap and keeps freed memory instead of mmap/munmap per tensor (each
    fresh mapping costs a page fault per 4 KiB on first touch); 'default' leaves glibc alone."""
    if mode == "nommap":
        keep_freed_memory()


def run_speed(options: dict) -> dict:
    set_malloc(options["malloc"])
    torch.set_num_threads(options["threads"])
    spectral = SpectralConfig()
    spec, audio, stats = realistic_batch(options["batch"], spectral)
    precision = options["precision"]
    if precision == "bf16":
        spec = spec.contiguous(memory_format=torch.channels_last)
    model, forward, optimizer, loss = build(options, stats, spectral)
    timer = SectionTimer()
    instrument_loss(loss, timer)

    progress = options["progress"]
    started = time.perf_counter()
    for _ in range(options["warmup"]):
        train_step(model, forward, optimizer, loss, spec, audio, progress, precision, timer)
    warmup_s = time.perf_counter() - started
    steps, cpu, faults, sections = [], [], [], {name: [] for name in SECTIONS}
    for _ in range(options["steps"]):
        timer.seconds = {}
        cpu_start, faults_start = cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        record = train_step(
            model, forward, optimizer, loss, spec, audio, progress, precision, timer
        )
        steps.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - cpu_start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_start)
        seconds = dict(timer.seconds)
        seconds.setdefault("synth_fwd", 0.0)
        seconds.setdefault("mrstft_fwd", 0.0)
        seconds["loss_l1_kl"] = seconds.pop("loss") - seconds["synth_fwd"] - seconds["mrstft_fwd"]
        for name in SECTIONS:
            sections[name].append(seconds[name])
    step_s = statistics.median(steps)
    return {
        "samples_per_s": options["batch"] / step_s,
        "step_s_median": step_s,
        "step_s_min": min(steps),
        "step_s_max": max(steps),
        "cpu_s_per_step": statistics.median(cpu),
        "page_faults_per_step": statistics.median(faults),
        "warmup_s": warmup_s,
        "sections_s": {name: statistics.median(v) for name, v in sections.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "last_loss": record,
    }


def run_quality(options: dict) -> dict:
    """Loss curve over `steps` steps on one fixed small batch, every term at full weight."""
    set_malloc(options["malloc"])
    torch.set_num_threads(options["threads"])
    spectral = SpectralConfig()
    spec, audio, stats = realistic_batch(options["batch"], spectral, seed=1)
    precision = options["precision"]
    if precision == "bf16":
        spec = spec.contiguous(memory_format=torch.channels_last)
    model, forward, optimizer, loss = build(options, stats, spectral)
    timer = SectionTimer()
    curve = [
        train_step(model, forward, optimizer, loss, spec, audio, 1.0, precision, timer)
        for _ in range(options["steps"])
    ]
    return {"curve": curve}


def spawn(options: dict) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(options)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {options} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (median reported)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32,bf16")
    parser.add_argument("--stft", default="off,on", help="MR-STFT term: off,on")
    parser.add_argument(
        "--max-items", type=int, help="MR-STFT items per batch (default: LossConfig)"
    )
    parser.add_argument(
        "--nnls-iterations", type=int, help="NNLS steps in the loss (default: LossConfig)"
    )
    parser.add_argument("--fft-sizes", help="MR-STFT resolutions, e.g. 2048,512 (hop = n/4)")
    parser.add_argument("--optimizer", choices=("default", "foreach", "fused"), default="fused")
    parser.add_argument("--malloc", choices=("default", "nommap"), default="nommap")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--channels", help="conv widths, e.g. 64,128,256,512,1024 (the seed design's)"
    )
    parser.add_argument("--quality-steps", type=int, default=30, help="0 skips the check")
    parser.add_argument("--quality-batch", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        options = json.loads(args.child)
        result = run_quality(options) if options.get("quality") else run_speed(options)
        print(json.dumps(result))
        return

    common = {
        "threads": args.threads,
        "max_items": args.max_items,
        "nnls_iterations": args.nnls_iterations,
        "fft_sizes": [int(s) for s in args.fft_sizes.split(",")] if args.fft_sizes else None,
        "optimizer": args.optimizer,
        "malloc": args.malloc,
        "compile": args.compile,
        "channels": [int(c) for c in args.channels.split(",")] if args.channels else None,
    }
    configs: dict[str, dict] = {}
    print(
        f"{'config':<12}{'samples/s':>10}{'step s':>8}{'cpu s':>7}{'RSS MB':>8}  "
        + " ".join(f"{name:>10}" for name in SECTIONS),
        flush=True,
    )
    for precision in args.precisions.split(","):
        for term in args.stft.split(","):
            name = f"{precision}-stft_{term}"
            options = common | {
                "precision": precision,
                "progress": 1.0 if term == "on" else 0.0,
                "batch": args.batch,
                "warmup": args.warmup,
                "steps": args.steps,
            }
            result = spawn(options)
            configs[name] = result
            print(
                f"{name:<12}{result['samples_per_s']:>10.1f}{result['step_s_median']:>8.3f}"
                f"{result['cpu_s_per_step']:>7.2f}{result['peak_rss_mb']:>8.0f}  "
                + " ".join(f"{result['sections_s'][s]:>10.3f}" for s in SECTIONS),
                flush=True,
            )

    quality = {}
    if args.quality_steps > 0:
        for precision in args.precisions.split(","):
            options = common | {
                "precision": precision,
                "quality": True,
                "batch": args.quality_batch,
                "steps": args.quality_steps,
            }
            curve = spawn(options)["curve"]
            quality[precision] = {
                key: [round(r[key], 4) for r in (curve[0], curve[len(curve) // 2], curve[-1])]
                for key in ("total", "stft", "mag", "if", "kl")
            }
            print(f"quality {precision} (first, middle, last step): {quality[precision]}")

    on = configs.get(f"{PRODUCT_PRECISION}-stft_on") or next(iter(configs.values()))
    off = configs.get(f"{PRODUCT_PRECISION}-stft_off", on)
    summary = {
        "samples_per_s": round(on["samples_per_s"], 1),
        "peak_rss_mb": round(on["peak_rss_mb"]),
        "samples_per_s_stft_off": round(off["samples_per_s"], 1),
        "peak_rss_mb_stft_off": round(off["peak_rss_mb"]),
        "default_precision": PRODUCT_PRECISION,
        "threads": args.threads,
        "batch": args.batch,
        "options": {k: v for k, v in common.items() if k != "threads"},
        "configs": {
            name: {
                "samples_per_s": round(r["samples_per_s"], 1),
                "peak_rss_mb": round(r["peak_rss_mb"]),
                "cpu_s_per_step": round(r["cpu_s_per_step"], 3),
                "sections_s": {k: round(v, 4) for k, v in r["sections_s"].items()},
            }
            for name, r in configs.items()
        },
        "quality": quality,
    }
    if not all(math.isfinite(r["samples_per_s"]) for r in configs.values()):
        raise SystemExit("a configuration produced no finite timing")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

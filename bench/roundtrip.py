"""Round-trip quality of the 2-channel representation, with brackets and a step-by-step breakdown.

    python bench/roundtrip.py IN_DIR OUT_DIR [--n-mels 128,256] [--refine 0,8]

For every audio file under IN_DIR (sub-folders become groups, e.g. drums/ and tonal/) it writes
Distill's round trip (audio → representation → audio, default settings) as a 48 kHz WAV with the
same relative name into OUT_DIR, sample-aligned with the input, and prints per-file and mean
MR-STFT distance, log-spectral distance (dB) and SI-SDR (dB) for these methods:

  distill            the product's inverse (IF phase + cfg.refine_iterations consistency steps)
  distill-pure-if    the same with no refinement (phase from the IF channel only)
  true-phase         STFT → ISTFT with the true phase (must be near-exact)
  gl32-mel           Griffin-Lim, 32 fast iterations from random phase, on the NNLS magnitudes
                     recovered from the same 128-band mel magnitudes
  gl32-linear        Griffin-Lim, 32 fast iterations from random phase, on the true linear
                     magnitudes
  mel-mag+true-phase the magnitude step alone: NNLS magnitudes with the true phase put back
  true-mag+if-phase  the phase step alone: true linear magnitudes with the IF phase (+ refinement)
  mag-only           what the IF channel adds: the same refinement, started from zero phase

The last line is one JSON object with every mean (and per-group means).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from distill.audio.read import AUDIO_EXTENSIONS, read_mono
from distill.spectral import SpectralConfig, analyze, synthesize
from distill.spectral.inverse import mel_to_linear, phase_from_if, refine_phase
from distill.spectral.melscale import mel_bands
from distill.spectral.quality import measure
from distill.spectral.stft import istft, stft
from distill.spectral.transform import decode_bands, magnitude_scale

GL_ITERATIONS = 32


def _band_inputs(audio: torch.Tensor, cfg: SpectralConfig, bands):
    spec = analyze(audio, cfg, bands)
    return (spec, *decode_bands(spec, cfg, bands))


def methods(cfg: SpectralConfig, seed: int):
    """name → function(audio (1, T)) → audio (1, T)."""
    bands = mel_bands(cfg)
    scale = magnitude_scale(cfg)

    def true_spec(x):
        return stft(x, cfg) / scale

    def out(spec_c, x):
        return istft(spec_c * scale, cfg, x.shape[-1])

    def random_phase(like):
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(like.shape, generator=gen) * 2 * math.pi

    def griffin_lim(mag, x):
        spec_c = refine_phase(mag, random_phase(mag), cfg, x.shape[-1], GL_ITERATIONS, 0.99)
        return out(spec_c, x)

    def distill(x):
        return synthesize(analyze(x, cfg, bands), cfg, length=x.shape[-1], bands=bands)

    def distill_pure_if(x):
        spec = analyze(x, cfg, bands)
        return synthesize(spec, cfg, length=x.shape[-1], bands=bands, refine_iterations=0)

    def true_phase(x):
        return istft(stft(x, cfg), cfg, x.shape[-1])

    def gl32_mel(x):
        _, band_mag, _ = _band_inputs(x, cfg, bands)
        return griffin_lim(mel_to_linear(band_mag, bands, cfg.nnls_iterations), x)

    def gl32_linear(x):
        return griffin_lim(true_spec(x).abs(), x)

    def mel_mag_true_phase(x):
        _, band_mag, _ = _band_inputs(x, cfg, bands)
        mag = mel_to_linear(band_mag, bands, cfg.nnls_iterations)
        return out(torch.polar(mag, torch.angle(true_spec(x))), x)

    def true_mag_if_phase(x):
        _, band_mag, band_freq = _band_inputs(x, cfg, bands)
        mag = true_spec(x).abs()
        phase = phase_from_if(band_freq, band_mag, bands, cfg)
        spec_c = refine_phase(
            mag, phase, cfg, x.shape[-1], cfg.refine_iterations, cfg.refine_momentum
        )
        return out(spec_c, x)

    def mag_only(x):
        _, band_mag, _ = _band_inputs(x, cfg, bands)
        mag = mel_to_linear(band_mag, bands, cfg.nnls_iterations)
        spec_c = refine_phase(
            mag, torch.zeros_like(mag), cfg, x.shape[-1], cfg.refine_iterations, cfg.refine_momentum
        )
        return out(spec_c, x)

    return {
        "distill": distill,
        "distill-pure-if": distill_pure_if,
        "true-phase": true_phase,
        "gl32-mel": gl32_mel,
        "gl32-linear": gl32_linear,
        "mel-mag+true-phase": mel_mag_true_phase,
        "true-mag+if-phase": true_mag_if_phase,
        "mag-only": mag_only,
    }


def audio_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--n-mels", default="128", help="comma-separated band counts to compare")
    parser.add_argument("--refine", default=None, help="comma-separated refinement iterations")
    parser.add_argument("--only", default=None, help="comma-separated method names to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    files = audio_files(args.in_dir)
    if not files:
        print(f"roundtrip: no audio files under {args.in_dir}", file=sys.stderr)
        return 2
    base = SpectralConfig()
    variants = []
    for n_mels in (int(v) for v in args.n_mels.split(",")):
        refines = (
            [base.refine_iterations]
            if args.refine is None
            else [int(v) for v in args.refine.split(",")]
        )
        for refine in refines:
            variants.append(dataclasses.replace(base, n_mels=n_mels, refine_iterations=refine))

    results: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    seconds: dict[str, float] = defaultdict(float)
    total_audio = 0.0
    for path in files:
        rel = path.relative_to(args.in_dir)
        group = rel.parts[0] if len(rel.parts) > 1 else "all"
        audio = torch.from_numpy(read_mono(path, base.sample_rate))[None]
        total_audio += audio.shape[-1] / base.sample_rate
        for cfg in variants:
            suffix = "" if cfg == base else f"[mels={cfg.n_mels},refine={cfg.refine_iterations}]"
            chosen = methods(cfg, args.seed)
            if cfg != base:
                chosen = {k: v for k, v in chosen.items() if k.startswith("distill")}
            if args.only:
                wanted = set(args.only.split(","))
                chosen = {k: v for k, v in chosen.items() if k in wanted}
            for name, method in chosen.items():
                started = time.perf_counter()
                with torch.no_grad():
                    rebuilt = method(audio)
                seconds[name + suffix] += time.perf_counter() - started
                quality = measure(rebuilt, audio).to_dict()
                results[name + suffix][group].append(quality)
                if name == "distill" and cfg == base:
                    out_path = args.out_dir / rel.with_suffix(".wav")
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(out_path, rebuilt[0].numpy(), base.sample_rate, subtype="PCM_24")
                    print(
                        f"{rel}: " + "  ".join(f"{k} {v:.3f}" for k, v in quality.items()),
                        flush=True,
                    )

    summary: dict[str, dict] = {}
    groups = sorted({g for per_group in results.values() for g in per_group})
    header = f"{'method':44s}" + "".join(
        f"{g + ' mrstft':>16s}{'lsd':>7s}{'sisdr':>8s}" for g in groups
    )
    print("\n" + header + f"{'s/audio s':>11s}")
    for name, per_group in results.items():
        row = f"{name:44s}"
        summary[name] = {}
        for group in groups:
            values = per_group.get(group, [])
            means = {
                k: float(np.mean([v[k] for v in values])) for k in ("mrstft", "lsd_db", "sisdr_db")
            }
            summary[name][group] = means
            row += f"{means['mrstft']:16.3f}{means['lsd_db']:7.2f}{means['sisdr_db']:8.1f}"
        cost = seconds[name] / total_audio
        summary[name]["seconds_per_audio_second"] = cost
        print(row + f"{cost:11.3f}")
    print(json.dumps({"files": len(files), "methods": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

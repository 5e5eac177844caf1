"""How much a small, even magnitude error costs: the representation's round trip of each file with
its *true* log magnitude blurred over a few frames and/or mel bands (BENCHMARKS.md, "Fidelity",
round 3). A model's output is at best that true magnitude, slightly wrong; this shows how far the
held-out MR-STFT moves for errors of a known size, with no model involved.

    .venv/bin/python bench/blur_ceiling.py /tmp/material/notes/heldout [--files 8] [--blurs 1x1,3x3]
                                           [--no-scatter]

Prints, per blur (frames × bands, a box filter on the log magnitude, edges replicated), the mean
MR-STFT / LSD of the resynthesized files against the originals and the mean absolute change the
blur made to the log magnitude (dB).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from distill.audio.read import AUDIO_EXTENSIONS, read_mono
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats
from distill.spectral.quality import measure
from distill.spectral.transform import MAG, analyze

BLURS = ((1, 1), (3, 1), (1, 3), (3, 3), (5, 5))  # (frames, mel bands); (1, 1) = the round trip
DB_PER_NAT = 20 / math.log(10)


def blurred(spec: torch.Tensor, frames: int, bands: int) -> torch.Tensor:
    """(2, M, N) raw frames with the log-magnitude channel box-filtered over frames × bands."""
    out = spec.clone()
    padded = torch.nn.functional.pad(
        spec[MAG][None, None], (frames // 2, frames // 2, bands // 2, bands // 2), mode="replicate"
    )
    out[MAG] = torch.nn.functional.avg_pool2d(padded, (bands, frames), stride=1)[0, 0]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--files", type=int, default=None, help="first N files (sorted)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-scatter", action="store_true", help="scatter_phase off (before round 4)"
    )
    parser.add_argument("--blurs", default=None, help="e.g. 1x1,3x3 (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, identity = SpectralConfig(scatter_phase=not args.no_scatter), ChannelStats()
    blurs = BLURS
    if args.blurs:
        blurs = tuple(tuple(int(v) for v in b.split("x")) for b in args.blurs.split(","))
    paths = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    paths = paths[: args.files] if args.files else paths
    if not paths:
        print(f"no audio files in {args.folder}", file=sys.stderr)
        return 1
    rows: dict[tuple[int, int], list[tuple[float, float, float]]] = {b: [] for b in blurs}
    for path in paths:
        audio = torch.from_numpy(read_mono(path, cfg.sample_rate))
        spec = analyze(audio[None], cfg)[0]
        for frames, bands in blurs:
            moved = blurred(spec, frames, bands)
            out = synthesize_long(
                lambda a, b, s=moved: s[..., a:b], cfg, length=len(audio), stats=identity
            )
            quality = measure(torch.from_numpy(out), audio)
            change_db = float((moved[MAG] - spec[MAG]).abs().mean()) * DB_PER_NAT
            rows[(frames, bands)].append((quality.mrstft, quality.lsd_db, change_db))
    print(f"{args.folder}: {len(paths)} files")
    print("blur (frames × bands)   MR-STFT   LSD dB   mean change dB")
    for (frames, bands), values in rows.items():
        mrstft, lsd, change = np.mean(values, axis=0)
        label = "none (round trip)" if (frames, bands) == (1, 1) else f"{frames} × {bands}"
        print(f"{label:<22}  {mrstft:7.3f}  {lsd:7.2f}  {change:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where to mix a blend: waveforms after two inverses, or magnitudes before one.

    .venv/bin/python bench/blend_domain.py MODEL_A MODEL_B [--home DIR] [--seconds 8] [--seeds 3]

Renders A and B on their own, then compares two mixes with weights 50/50 against the intended
mix magnitude, w_a·|STFT(a)| + w_b·|STFT(b)| (2048-point STFT, hop 512). Two pairings: A with B
(different material), and A with itself on another seed (the same material: where the two
sounds share partials, which is where summing unrelated phases can cancel):

- waveform sum:   w_a·a + w_b·b (two inverses, phases unrelated);
- magnitude mix:  Distill's blend (frames mixed in the magnitude domain, one inverse).

Reported per mix: mean |dB| deviation from the intended magnitude over bins within 60 dB of the
frame's peak, and the spectral "ripple" (std of that deviation across frequency within a frame,
the signature of comb filtering). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def magnitude(audio: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    spec = torch.stft(x, 2048, 512, window=torch.hann_window(2048), return_complex=True)
    return spec.abs().numpy()


def deviation(mix: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    m, t = magnitude(mix), target
    floor = t.max(axis=0, keepdims=True) * 10 ** (-60 / 20)
    keep = t > np.maximum(floor, 1e-8)
    db = 20 * np.log10((m + 1e-12) / (t + 1e-12))
    mean_abs = float(np.abs(db[keep]).mean())
    ripple = [float(db[keep[:, n], n].std()) for n in range(db.shape[1]) if keep[:, n].sum() > 8]
    return mean_abs, float(np.mean(ripple))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("--home")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    from distill.generation.loaded import load

    a, b = load(args.model_a, home=args.home), load(args.model_b, home=args.home)
    result = pair(a, b, args) | {f"self_{k}": v for k, v in overlap(a, args).items()}
    print(json.dumps(result))


def overlap(a, args) -> dict:
    """A + A on the next seed, mixed as waveforms and as magnitudes (frames of both paths)."""
    import dataclasses

    from distill.generation.generate import GenerationParams, place_events, render_events

    rows = {"waveform sum": [], "magnitude mix": []}
    meta = a.metadata
    for seed in range(args.seeds):
        takes = [
            a.generate(args.seconds, seed=s, mode="texture", level="raw") for s in (seed, seed + 1)
        ]
        one, two = takes
        target = 0.5 * magnitude(one) + 0.5 * magnitude(two)
        voice = dataclasses.replace(a.voice({}), weight=0.5)
        events = []
        for number, s in enumerate((seed, seed + 1)):  # each seed's events, as its own voice
            params = GenerationParams(args.seconds, seed=s, mode="texture", level="raw")
            placed = place_events([voice], params, "texture", meta.spectral.frames_for(len(one)))
            events += [dataclasses.replace(e, voice=number) for e in placed]
        mixed = render_events([voice, voice], events, len(one))
        rows["waveform sum"].append(deviation(0.5 * one + 0.5 * two, target))
        rows["magnitude mix"].append(deviation(mixed, target))
    return report(f"{args.model_a} + itself on the next seed", rows, args)


def report(title: str, rows: dict, args) -> dict:
    print(f"{title}, 50/50, {args.seconds:g} s × {args.seeds} seeds")
    result = {}
    for name, values in rows.items():
        mean_abs = float(np.mean([v[0] for v in values]))
        ripple = float(np.mean([v[1] for v in values]))
        print(f"  {name:14s} mean |dev| {mean_abs:.2f} dB, ripple {ripple:.2f} dB")
        key = name.split()[0]
        result |= {f"{key}_dev_db": round(mean_abs, 2), f"{key}_ripple_db": round(ripple, 2)}
    return result


def pair(a, b, args) -> dict:
    from distill.generation.generate import BlendVoice

    rows = {"waveform sum": [], "magnitude mix": []}
    for seed in range(args.seeds):
        alone_a = a.generate(args.seconds, seed=seed)
        alone_b = b.generate(args.seconds, seed=seed)
        target = 0.5 * magnitude(alone_a) + 0.5 * magnitude(alone_b)
        summed = 0.5 * alone_a + 0.5 * alone_b
        params = a.params(
            args.seconds, seed=seed, blend=(BlendVoice(str(b.model_id or b.path), 50.0),)
        )
        mixed = a.render(params, [b])
        rows["waveform sum"].append(deviation(summed, target))
        rows["magnitude mix"].append(deviation(mixed, target))
    return report(f"{args.model_a} + {args.model_b}", rows, args)


if __name__ == "__main__":
    main()

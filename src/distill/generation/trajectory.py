"""The latent path a generation follows: SLERP between random anchors around the slider point.

Anchors sit every `interval` seconds; anchor k is `center + variation · DEVIATION · spread ⊙ ε_k`
with ε_k ~ N(0, I) drawn from the seed, where `spread` is the training data's standard deviation
of μ per latent dimension. Between two anchors the path follows the great circle between ε_k and
ε_k+1 (SLERP keeps the norm of a Gaussian sample, where a straight line would pass through a
shrunken, duller middle), eased with a raised cosine so it never turns a corner at an anchor.

`variation` (0…1) sets how far and how fast the sound wanders: 0 holds the slider point still,
1 moves ±DEVIATION standard deviations and reaches a new anchor every second.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DEVIATION = 1.0  # anchor spread at variation 1, in standard deviations of the training μ
SLOWEST_INTERVAL = 6.0  # seconds between anchors at variation 0 (where it does not matter)
FASTEST_INTERVAL = 1.0  # seconds between anchors at variation 1


def anchor_interval(variation: float) -> float:
    """Seconds between anchors: 6 s at variation 0 down to 1 s at variation 1."""
    return SLOWEST_INTERVAL + (FASTEST_INTERVAL - SLOWEST_INTERVAL) * variation


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of `a` and `b` (n, D) at fractions `t` (n,)."""
    a_norm, b_norm = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    cos = ((a / a_norm.clamp(min=1e-12)) * (b / b_norm.clamp(min=1e-12))).sum(-1, keepdim=True)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t[:, None]
    sin_omega = torch.sin(omega)
    straight = sin_omega.abs() < 1e-6  # parallel vectors: SLERP degenerates to a line
    safe = torch.where(straight, torch.ones_like(sin_omega), sin_omega)
    wa = torch.where(straight, 1 - t, torch.sin((1 - t) * omega) / safe)
    wb = torch.where(straight, t, torch.sin(t * omega) / safe)
    return wa * a + wb * b


def latent_path(
    center: torch.Tensor,
    spread: torch.Tensor,
    times: np.ndarray,
    *,
    variation: float,
    seed: int,
) -> torch.Tensor:
    """(n,) times in seconds → (n, D) latents along the seeded path around `center` (D,)."""
    times = np.asarray(times, dtype=np.float64)
    n = len(times)
    if variation <= 0 or n == 0:
        return center[None].expand(n, -1).clone()
    interval = anchor_interval(variation)
    n_anchors = math.floor(float(times.max(initial=0.0)) / interval) + 2
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(n_anchors, center.numel(), generator=generator, dtype=torch.float64)
    position = torch.from_numpy(times / interval)  # in anchors
    k = position.floor().long().clamp(0, n_anchors - 2)
    u = (position - k).clamp(0.0, 1.0)
    eased = 0.5 - 0.5 * torch.cos(math.pi * u)
    walk = slerp(eps[k], eps[k + 1], eased)  # (n, D), ~N(0, I) per row
    deviation = (variation * DEVIATION) * spread.to(torch.float64) * walk
    return (center.to(torch.float64) + deviation).to(center.dtype)

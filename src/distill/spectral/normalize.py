"""Per-channel normalization: zero mean, unit variance, statistics from the training set.

Statistics are accumulated as plain sums (count, sum, sum of squares per channel) so they can be
cached per file and combined for any subset of files without touching the audio again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ChannelSums:
    """Running sums over every value of each channel: enough to derive mean and std."""

    count: float = 0.0
    total: tuple[float, float] = (0.0, 0.0)
    total_sq: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def of(cls, spec: torch.Tensor) -> ChannelSums:
        """Sums of a `[..., 2, n_mels, frames]` tensor, accumulated in float64."""
        x = (
            spec.detach().to(torch.float64).transpose(0, -3).reshape(2, -1)
            if spec.dim() > 3
            else (spec.detach().to(torch.float64).reshape(2, -1))
        )
        return cls(
            count=float(x.shape[1]),
            total=(float(x[0].sum()), float(x[1].sum())),
            total_sq=(float((x[0] ** 2).sum()), float((x[1] ** 2).sum())),
        )

    def __add__(self, other: ChannelSums) -> ChannelSums:
        return ChannelSums(
            count=self.count + other.count,
            total=(self.total[0] + other.total[0], self.total[1] + other.total[1]),
            total_sq=(self.total_sq[0] + other.total_sq[0], self.total_sq[1] + other.total_sq[1]),
        )

    def to_dict(self) -> dict:
        return {"count": self.count, "total": list(self.total), "total_sq": list(self.total_sq)}

    @classmethod
    def from_dict(cls, data: dict) -> ChannelSums:
        return cls(float(data["count"]), tuple(data["total"]), tuple(data["total_sq"]))


@dataclass(frozen=True)
class ChannelStats:
    """Mean and standard deviation of each channel (0 = log magnitude, 1 = IF)."""

    mean: tuple[float, float] = (0.0, 0.0)
    std: tuple[float, float] = (1.0, 1.0)

    @classmethod
    def from_sums(cls, sums: ChannelSums) -> ChannelStats:
        if sums.count <= 0:
            raise ValueError("cannot compute statistics from no data")
        mean = tuple(t / sums.count for t in sums.total)
        var = tuple(
            max(sq / sums.count - m * m, 0.0) for sq, m in zip(sums.total_sq, mean, strict=True)
        )
        # A constant channel (e.g. IF of pure silence) keeps std 1 rather than dividing by ~0.
        std = tuple(math.sqrt(v) if v > 1e-12 else 1.0 for v in var)
        return cls(mean=mean, std=std)  # type: ignore[arg-type]

    def _shaped(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(2, 1, 1)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(2, 1, 1)
        return mean, std

    def normalize(self, spec: torch.Tensor) -> torch.Tensor:
        """`[..., 2, n_mels, frames]` → same shape, each channel zero-mean unit-variance."""
        mean, std = self._shaped(spec)
        return (spec - mean) / std

    def denormalize(self, spec: torch.Tensor) -> torch.Tensor:
        mean, std = self._shaped(spec)
        return spec * std + mean

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> ChannelStats:
        return cls(
            mean=tuple(float(v) for v in data["mean"]), std=tuple(float(v) for v in data["std"])
        )

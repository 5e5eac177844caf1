"""Decoded chunks overlap-added into one frame sequence, decoded lazily as frames are asked for.

Chunk c covers frames [c·H, c·H + W) with W = the model's chunk width (94 frames = 1 s) and
H = W / 2 (47 frames): every frame lies under two chunks. Each chunk is weighted by a periodic
Hann window over its W frames — sin²(π(j + ½)/W), which sums to 1 at 50 % overlap — so a chunk
fades in and out instead of switching, and the chunk edges (where the model saw zero padding in
training) count least. The sum is divided by the sum of the weights, which only differs from 1 in
the first and last half chunk. Resynthesis decodes a finer grid (H = W // 8) the same way.

The blend is in the model's normalized domain (log magnitude and IF), before the single inverse:
frames cross-fade, phase is then integrated once over the whole signal, and there is no seam.
"""

from __future__ import annotations

import torch

from distill.model.grid import ENCODE_BATCH as DECODE_BATCH
from distill.model.grid import chunk_count, chunk_hop, chunk_weights
from distill.model.vae import ConvVAE

__all__ = ["DECODE_BATCH", "DecodedFrames", "chunk_count", "chunk_hop", "chunk_weights"]


class DecodedFrames:
    """A frame source (see spectral.long.FrameSource) over decoded latents (n_chunks, D).

    Frames must be asked for in increasing order; decoded chunks behind the request are dropped,
    so memory holds a segment's worth of chunks whatever the length.
    """

    def __init__(
        self,
        model: ConvVAE,
        latents: torch.Tensor,
        precision: str = "fp32",
        hop: int | None = None,
    ) -> None:
        self.model = model
        self.precision = precision  # "bf16": decode under autocast (where the hardware has it)
        self.latents = latents
        self.width = model.config.frames
        self.hop = hop or chunk_hop(self.width)  # the grid the latents were encoded on
        self.device = next(model.parameters()).device
        self.weights = chunk_weights(self.width).to(self.device)
        self._decoded: dict[int, torch.Tensor] = {}  # chunk index → (2, M, W)

    @torch.no_grad()
    def _ensure(self, chunks: range) -> None:
        missing = [c for c in chunks if c not in self._decoded]
        for start in range(0, len(missing), DECODE_BATCH):
            batch = missing[start : start + DECODE_BATCH]
            z = self.latents[batch].to(self.device, torch.float32)
            with torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
            ):
                decoded = self.model.decode(z).float()
            for c, spec in zip(batch, decoded, strict=True):
                self._decoded[c] = spec

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        """(2, M, stop − start) normalized frames."""
        n_chunks = len(self.latents)
        first = max(0, (start - self.width) // self.hop + 1)
        last = min(n_chunks - 1, (stop - 1) // self.hop)
        for c in [c for c in self._decoded if c < first]:
            del self._decoded[c]
        self._ensure(range(first, last + 1))
        total = torch.zeros(2, self.model.config.n_mels, stop - start, device=self.device)
        weight = torch.zeros(stop - start, device=self.device)
        for c in range(first, last + 1):
            lo, hi = max(start, c * self.hop), min(stop, c * self.hop + self.width)
            if lo >= hi:
                continue
            j = slice(lo - c * self.hop, hi - c * self.hop)
            total[..., lo - start : hi - start] += self._decoded[c][..., j] * self.weights[j]
            weight[lo - start : hi - start] += self.weights[j]
        if bool((weight <= 0).any()):
            raise AssertionError("frames outside every chunk: too few latents for the length")
        return total / weight

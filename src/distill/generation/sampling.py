"""Latents from what the model learned: real chunk sequences, mixed with neighbours, perturbed.

A model's training recordings form separate clusters in its latent space (kicks, hats, notes of
each instrument); their average decodes to none of them. So a take never starts from the average:
it starts from one real recording's chunk sequence (μ of each 1 s chunk on the grid, kept in the
model file by controls.corpus), the *base*, and

1. mixes in a *partner*: another recording among the base's k nearest (by the μ of their first
   chunks, in units of the corpus spread), chunk by chunk at a fraction t;
2. adds posterior noise: one draw ε ~ N(0, I) per event, scaled by the mixed posterior σ (so
   dimensions the model is sure about barely move and unused ones move freely);
3. adds the sliders' offsets (controls.sliders), wherever the take is: a slider moves the sound
   from where it is, it does not pull it to the corpus mean.

`variation` (0…1) sets how far a take may move from the nearest real recording:

    neighbours k   = 1 + round(v² · (N − 2))     0: the nearest one … 1: any recording
    mix fraction t ~ U(T_LOW · v, T_HIGH · v)     0: the base alone … 1: t up to ½ (a new blend)
    noise          = (NOISE_LOW + (NOISE_HIGH − NOISE_LOW) · v) · σ ⊙ ε

so 0 gives sounds close to one of yours, 1 new blends between distant ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from distill.controls.corpus import CorpusMemory

T_LOW, T_HIGH = 0.3, 0.55  # mix fraction range at variation 1 (scaled by v)
NOISE_LOW, NOISE_HIGH = 0.25, 1.0  # posterior-σ multiples of noise at variation 0 and 1
GOLDEN_64 = 0x9E3779B97F4A7C15  # 2⁶⁴ / φ: the golden-ratio step in 64-bit fixed point
SIGNATURE_CHUNKS = 2
# Texture segments from continuous recordings: the chance that the next one goes on in the same
# recording, at variation 1 and at variation 0 (else it moves to a neighbouring recording).
STAY_LOW, STAY_HIGH = (
    0.4,
    0.9,
)  # a recording's signature: the mean μ of its first chunks (its attack)


@dataclass(frozen=True)
class Position:
    """Where a texture segment ended: a recording (None: the --like one) and its next chunk."""

    index: int | None
    position: int


@dataclass(frozen=True)
class Base:
    """A chunk sequence to start a take from: μ and σ, (n, D) each."""

    mu: torch.Tensor
    sigma: torch.Tensor


class LatentSampler:
    """Draws chunk sequences (n, D) for one voice; every draw takes a numpy Generator."""

    def __init__(
        self,
        corpus: CorpusMemory,
        spread: torch.Tensor,
        *,
        variation: float,
        offset: torch.Tensor | None = None,
        like: Base | None = None,
    ) -> None:
        self.corpus = corpus
        self.variation = float(variation)
        self.spread = spread.double().clamp(min=1e-6)  # (D,) std of the corpus μ per dimension
        self.offset = None if offset is None else offset.double()
        self.like = like
        self.signatures = torch.stack(
            [self._signature(*corpus.sequence(i)) for i in range(len(corpus))]
        )

    def _signature(self, mu: torch.Tensor, _sigma: torch.Tensor | None = None) -> torch.Tensor:
        return mu[:SIGNATURE_CHUNKS].double().mean(dim=0) / self.spread

    @property
    def stay(self) -> float:
        """Chance that a texture segment goes on in the recording the last one came from."""
        return STAY_HIGH - (STAY_HIGH - STAY_LOW) * self.variation

    @property
    def neighbours(self) -> int:
        """How many nearest recordings a partner is drawn from."""
        others = len(self.corpus) - (0 if self.like is not None else 1)
        return max(1, 1 + round(self.variation**2 * max(0, others - 1)))

    def base(self, rng: np.random.Generator, pick: int | None = None) -> tuple[Base, int | None]:
        """The take's base sequence and its corpus index (None for a --like recording).

        `pick` (a one-shot take's seed) chooses the recording by a golden-ratio sequence instead
        of a random draw: consecutive seeds (a sample pack) visit the corpus evenly, never the
        same recording twice in a row, where 12 random draws from 10 files repeat some and skip
        a third of them."""
        if self.like is not None:
            return self.like, None
        if pick is None:
            index = int(rng.integers(len(self.corpus)))
        else:
            weyl = (int(pick) * GOLDEN_64 + GOLDEN_64 // 2) % 2**64  # frac((pick + ½)·φ⁻¹)·2⁶⁴
            index = weyl * len(self.corpus) >> 64
        return Base(*self.corpus.sequence(index)), index

    def partner(self, base: Base, index: int | None, rng: np.random.Generator) -> Base | None:
        other = self.neighbour(base, index, rng)
        return None if other is None else Base(*self.corpus.sequence(other))

    def neighbour(self, base: Base, index: int | None, rng: np.random.Generator) -> int | None:
        """One of the `neighbours` recordings nearest to `base` (never itself), or None."""
        distance = (self.signatures - self._signature(base.mu)).norm(dim=1)
        if index is not None:
            distance[index] = math.inf
        order = torch.argsort(distance)
        candidates = order[: self.neighbours]
        candidates = candidates[torch.isfinite(distance[candidates])]
        if len(candidates) == 0:
            return None
        return int(candidates[int(rng.integers(len(candidates)))])

    def draw(
        self,
        rng: np.random.Generator,
        *,
        chunks: int | None = None,
        from_start: bool = True,
        pick: int | None = None,
    ) -> torch.Tensor:
        """(n, D) float32 latents of one event: the base's chunks from its start (or from a
        random chunk), `chunks` of them at most (default: all)."""
        base, index = self.base(rng, pick)
        start = 0 if from_start else int(rng.integers(len(base.mu)))
        return self._mixed(rng, base, index, start, chunks, from_start)

    def segment(
        self, rng: np.random.Generator, chunks: int, after: Position | None
    ) -> tuple[torch.Tensor, Position]:
        """The next stretch of a texture from continuous recordings, and where it ends.

        It goes on where the previous one stopped in the same recording (from its start again
        once it is over) with probability STAY_LOW…STAY_HIGH (variation 1…0), else moves to one
        of that recording's `neighbours`: a take wanders through related recordings instead of
        jumping between unrelated ones.
        """
        if after is None:
            base, index = self.base(rng)
            start = int(rng.integers(len(base.mu)))
        elif (
            after.index is None
            or rng.random() < STAY_HIGH - (STAY_HIGH - STAY_LOW) * self.variation
        ):
            base = self.like if after.index is None else Base(*self.corpus.sequence(after.index))
            index = after.index
            start = after.position if after.position < len(base.mu) else 0
        else:
            here = Base(*self.corpus.sequence(after.index))
            index = self.neighbour(here, after.index, rng)
            if index is None:
                base, index, start = here, after.index, 0
            else:
                base = Base(*self.corpus.sequence(index))
                start = int(rng.integers(len(base.mu)))
        latents = self._mixed(rng, base, index, start, chunks, from_start=False)
        return latents, Position(index, start + len(latents))

    def _mixed(
        self,
        rng: np.random.Generator,
        base: Base,
        index: int | None,
        start: int,
        chunks: int | None,
        from_start: bool,
    ) -> torch.Tensor:
        """The base's chunks from `start`, mixed with a partner, noised and offset (see module)."""
        partner = self.partner(base, index, rng)
        n_base = len(base.mu)
        n = n_base - start if chunks is None else min(chunks, n_base - start)
        mu = base.mu[start : start + n].double()
        sigma = base.sigma[start : start + n].double()
        v = self.variation
        t = float(rng.uniform(T_LOW * v, T_HIGH * v))
        if partner is not None and t > 0:
            p_start = 0 if from_start else int(rng.integers(len(partner.mu)))
            p_mu = partner.mu[p_start : p_start + n].double()
            p_sigma = partner.sigma[p_start : p_start + n].double()
            m = len(p_mu)  # the partner may be shorter: past its end, the base goes on alone
            mu[:m] = (1 - t) * mu[:m] + t * p_mu
            sigma[:m] = (1 - t) * sigma[:m] + t * p_sigma
        eps = torch.from_numpy(rng.standard_normal(mu.shape[1]))  # one draw for the whole event
        noise = (NOISE_LOW + (NOISE_HIGH - NOISE_LOW) * v) * sigma * eps
        z = mu + noise
        if self.offset is not None:
            z = z + self.offset
        return z.float()


def prior_corpus(center: torch.Tensor, spread: torch.Tensor) -> CorpusMemory:
    """A stand-in memory for model files written before the corpus memory existed: one
    'recording' of one chunk at `center` with posterior σ = `spread` (the old behaviour:
    Gaussian draws around the sliders' mean)."""
    from distill.controls.corpus import CorpusFile

    only = CorpusFile(
        name="(average)",
        first=0,
        count=1,
        duration=10.0,
        event_seconds=10.0,
        peak_seconds=0.0,
        onset_rate=0.0,
        loudness=None,
        oneshot=False,
    )
    return CorpusMemory(files=(only,), mu=center.float()[None], sigma=spread.float()[None])

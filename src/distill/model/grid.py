"""The chunk grid: how a signal's frames are cut into the model's 1 s chunks, and encoded.

Chunk c covers frames [c·H, c·H + W) with W = the model's chunk width (94 frames = 1 s at 48 kHz,
hop 512) and H = W // 2 = 47 frames (≈ 0.5 s): every frame lies under two chunks, as training
chunks overlap by half. The corpus memory and generation use this grid, so a file's chunk
sequence encoded here decodes back in place. Resynthesis takes a finer one of the same kind
(H = W // 8, generation.resynth): both functions take the hop. `encode_stream` encodes a signal
of any length from its frames as they arrive (a long resynthesis never holds all of them).

Both fit each chunk's μ to the chunk before returning it (`fit_latents`): the encoder's μ is a
one-pass guess, and a few gradient steps through the decoder find a latent it decodes closer to
the sound, its attacks first. Held-out resynthesis, 15-minute models (BENCHMARKS.md, "Fidelity",
rounds 4 and 5): drums 1.897 → 1.528 MR-STFT, notes 1.170 → 1.021, textures 1.689 → 1.591 with the
first settings; 1.418 → 1.359 on drums and 1.000 → 0.981 on notes with the present ones; drums
1.319 → 1.229 and notes 1.035 → 0.936 once it also weighed the bands by their loudness
(FIT_CONVERGENCE, round 12). Resynthesis then fits each batch of consecutive chunks together, to
their overlap-added decoding (`fit_overlapped`, `overlap_steps`; round 15).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from distill.model.loss import (
    ReconLossConfig,
    frame_weights,
    magnitude_convergence,
    magnitude_weights,
)
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG

ENCODE_BATCH = 16  # chunks per encoder/decoder call
# Latent fitting (measured on held-out drums, notes and textures, 15-minute models): Adam at 0.2
# for 50 steps. At 0.05, 25 steps gave drums 1.569 and notes 1.043, 50 gave 1.528 and 1.021, 100
# little more (1.499, 1.020) for twice the time; at 0.2 the same 50 steps reach further (round-4
# models: drums 1.418 → 1.359, notes 1.000 → 0.981 with the loud frames at 16). The pull back to
# the encoder's μ, in units of its σ, keeps the fit honest: without it the latent wandered where
# the spectrogram error was lower but the sound worse (notes 1.131 against 1.086 with 0.01); at
# 0.1 it held the latent so close that most of the gain was lost. 75 steps instead of 50 moved
# held-out drums by −0.009 … +0.009 over ten models, −0.002 on average (round 14; notes and
# textures −0.003 on one model each): the fit's own noise, not worth 1.5× the time. One 16-chunk
# step costs ≈ 18 ms on 2 CPU threads (channels-last, model.file.for_decoding).
FIT_STEPS = 50
FIT_LEARNING_RATE = 0.2
FIT_PULL = 0.01
# The magnitude error of each frame counts 1 + FIT_LOUD_FRAMES × (its level / the chunk's mean
# level). With every frame equal the fit traded the attack for the tail: held-out drums scored
# better (1.897 → 1.649) but their envelope peaked 9.1 dB below the original's, 19.5 ms late (6.2
# dB, 11.2 ms unfitted). Weighted by 8: 1.528, 4.0 dB, 5.5 ms; notes 1.086 → 1.021. By 16 at the
# rate of 0.2: drums 1.359, 2.4 dB (8: 1.377, 2.6 dB); 32 gave no more (at 0.1: 1.376 vs 1.370).
FIT_LOUD_FRAMES = 16.0
# Plus FIT_CONVERGENCE × the spectral convergence of the linear band magnitudes (loss.
# magnitude_convergence): the log L1 counts a band 60 dB down as much as the loudest, and the fit
# settled where the log spectrum was close on average and the loud bands were not. Held-out, the
# round-11 15-minute models (BENCHMARKS.md "Fidelity", round 12): drums 1.319 → 1.229, notes
# 1.035 → 0.936, textures 1.654 → 1.572 at 4 (2: 1.234, 0.946, 1.583; 8: 1.232, 0.944, 1.591;
# 16: drums 1.266), on every step, at no measurable cost. On squared magnitudes it did worse than
# none (notes 1.063 at 2), on their square roots less well (drums 1.240, notes 0.956).
FIT_CONVERGENCE = 4.0
# Resynthesis then refits the latents of consecutive chunks together, to what a listener gets:
# their overlap-added decoding against the frames they cover (fit_overlapped). Each chunk's own
# fit finds a latent that decodes its 1 s well on its own, but a frame is heard as the weighted
# mean of the 8 chunks over it, and one convergence per chunk counts a quiet tail's chunk as much
# as the attack's. Held-out, in-process, after 25 steps alone (BENCHMARKS.md "Fidelity", round
# 15): notes 0.925 → 0.850, textures 1.444 → 1.233, drums −0.009 on average over eleven models (9
# of 11 better; a one-shot is one batch of a few chunks). 30 steps at a rate of 0.05: notes 0.864,
# textures 1.303; 100 steps at 0.1: 0.837, 1.208, for 1.5× the time of these 60. A convergence
# weight of 8 was level with 4 on drums and notes, 16 worse. The whole resynthesis took 1.5×
# as long as each chunk's 50 steps alone (a 60 s input: 50 s instead of 33, 2 CPU threads).
OVERLAP_FIT_STEPS = 60
OVERLAP_FIT_LEARNING_RATE = 0.1
OVERLAP_FIT_CONVERGENCE = 4.0


def chunk_count(n_frames: int, width: int, hop: int) -> int:
    """Chunks needed so that every one of `n_frames` frames lies under at least one."""
    return 1 if n_frames <= width else math.ceil((n_frames - width) / hop) + 1


CHUNK_OVERLAP = 2  # chunks over every frame on the grid of generation and the corpus memory


def chunk_hop(width: int, overlap: int = CHUNK_OVERLAP) -> int:
    """Frames between consecutive chunks when `overlap` chunks lie over every frame."""
    return max(1, width // overlap)


def chunk_weights(width: int) -> torch.Tensor:
    """(width,) periodic Hann weights sin²(π(j + ½)/W), strictly positive, summing to 1 at 50 %
    overlap."""
    j = torch.arange(width, dtype=torch.float32)
    return torch.sin(math.pi * (j + 0.5) / width) ** 2


def silence(stats: ChannelStats, spectral: SpectralConfig) -> tuple[float, float]:
    """Normalized values of a silent frame: log magnitude at the floor, IF masked to 0."""
    log_floor = math.log(spectral.log_floor)
    return ((log_floor - stats.mean[MAG]) / stats.std[MAG], (0.0 - stats.mean[IF]) / stats.std[IF])


class _FitTerms:
    """The latent fits' spectrogram terms against a fixed target: the training loss's L1 on the
    log magnitude (its frames weighted by level, FIT_LOUD_FRAMES) and magnitude-weighted L1 on
    the IF, plus `convergence` × the spectral convergence of the linear band magnitudes, each item
    of the batch on its own. `frame_mask` (B, N) or (N,): how much each frame counts (None: all)."""

    def __init__(
        self,
        target: torch.Tensor,
        stats: ChannelStats,
        convergence: float,
        frame_mask: torch.Tensor | None = None,
    ) -> None:
        self.target, self.stats, self.convergence = target, stats, convergence
        self.recon = ReconLossConfig()
        self.weights = magnitude_weights(target, stats)
        self.loud = frame_weights(self.weights, FIT_LOUD_FRAMES)
        self.frame_mask = frame_mask
        if frame_mask is not None:
            over_bands = frame_mask.unsqueeze(-2)
            self.weights, self.loud = self.weights * over_bands, self.loud * over_bands

    def __call__(self, decoded: torch.Tensor) -> torch.Tensor:
        """(B, 2, M, N) normalized decoding → (B,) its terms."""
        target = self.target
        mag = ((decoded[:, MAG] - target[:, MAG]).abs() * self.loud).mean(dim=(1, 2))
        inst_freq = (self.weights * (decoded[:, IF] - target[:, IF]).abs()).mean(dim=(1, 2))
        convergence = magnitude_convergence(decoded, target, self.stats, self.frame_mask)
        return (
            self.recon.mag_weight * mag
            + self.recon.if_weight * inst_freq
            + self.convergence * convergence
        )


def fit_latents(
    model: ConvVAE,
    chunks: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    stats: ChannelStats,
    steps: int = FIT_STEPS,
    inside: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, 2, M, W) normalized chunks and their encoder (μ, σ), each (B, D) → fitted latents (B, D).

    Minimizes, for each chunk on its own, the training loss's spectrogram terms (L1 on the log
    magnitude, its frames weighted by level, magnitude-weighted L1 on the IF) of its decoding, plus
    FIT_CONVERGENCE × the spectral convergence of its linear band magnitudes and
    FIT_PULL · mean(((z − μ)/σ)²). The chunks' losses are summed, not averaged, so each
    latent's gradient, and Adam's per-coordinate step, is the same whatever else is in the batch.
    `inside` (B, W), 1 or 0: which frames of each chunk lie inside the signal; the silence padded
    past its end is not fitted (no one hears it). The model's weights are not touched (only the
    latents' gradients are computed).
    """
    if steps <= 0:
        return mu
    terms = _FitTerms(chunks.float(), stats, FIT_CONVERGENCE, inside)
    anchor, spread = mu.detach().float(), sigma.detach().float().clamp(min=1e-6)
    z = anchor.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=FIT_LEARNING_RATE)
    with torch.enable_grad():
        for _ in range(steps):
            pull = ((z - anchor) / spread).square().mean(dim=1)
            per_chunk = terms(model.decode(z).float()) + FIT_PULL * pull
            (z.grad,) = torch.autograd.grad(per_chunk.sum(), z)
            optimizer.step()
    return z.detach().to(mu.dtype)


def _cover(width: int, span: int, starts: torch.Tensor) -> torch.Tensor:
    """(span,) sum of the chunk weights over each frame of a span, of chunks `width` wide that
    start at `starts` (frames from the span's first; those outside add nothing)."""
    at = starts[:, None] + torch.arange(width)
    inside = (at >= 0) & (at < span)
    return torch.zeros(span).index_add(0, at[inside], chunk_weights(width).expand_as(at)[inside])


def batch_shares(width: int, hop: int, count: int, first: int, last: bool) -> torch.Tensor:
    """(span,) the share of each frame's chunk weight that a batch of `count` consecutive chunks
    holds: chunks `first` … `first + count − 1` of a grid of `hop` frames (`last`: the grid ends
    with them), over the (count − 1)·hop + width frames they cover. 1 where no other chunk of the
    grid reaches; over the batches of a grid, each frame's shares sum to 1."""
    span = (count - 1) * hop + width
    reach = -(-width // hop)  # chunks on either side that can reach into the span
    around = torch.arange(-min(first, reach), count + (0 if last else reach)) * hop
    return _cover(width, span, torch.arange(count) * hop) / _cover(width, span, around)


def fit_overlapped(
    model: ConvVAE,
    chunks: torch.Tensor,
    latents: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    stats: ChannelStats,
    hop: int,
    first: int,
    last: bool,
    steps: int = OVERLAP_FIT_STEPS,
    inside: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, 2, M, W) normalized chunks, consecutive on a grid of `hop` frames from its chunk
    `first` (`last`: the grid's last is among them), their fitted latents and encoder (μ, σ),
    each (B, D) → latents refitted together (B, D).

    Minimizes fit_latents' terms on the chunks' overlap-added decoding (each chunk weighted by
    chunk_weights, as generation.frames renders them) against the frames they cover, as one
    signal: the frames weighted by level across all of it and one spectral convergence over all
    of it (OVERLAP_FIT_CONVERGENCE), plus the same pull to μ. A frame that chunks outside the
    batch also cover counts by the batch's share of its weight. `inside` (B, W): as fit_latents'.
    The model's weights are not touched.
    """
    if steps <= 0:
        return latents
    count, _, bands, width = chunks.shape
    span = (count - 1) * hop + width
    device = chunks.device
    window = chunk_weights(width).to(device)
    where = torch.arange(count, device=device)[:, None] * hop + torch.arange(width, device=device)
    where = where.flatten()

    def overlap_add(spec: torch.Tensor) -> torch.Tensor:  # (count, 2, M, W) → (1, 2, M, span)
        weighted = (spec * window).permute(1, 2, 0, 3).reshape(2, bands, count * width)
        return spec.new_zeros(2, bands, span).index_add(2, where, weighted)[None]

    covered = _cover(width, span, torch.arange(count) * hop).to(device)
    shares = batch_shares(width, hop, count, first, last).to(device)
    if inside is not None:  # the same frame has the same flag in every chunk over it
        shares = shares * shares.new_zeros(span).index_put((where,), inside.flatten().float())
    target = overlap_add(chunks.float()) / covered  # the frames themselves, as one item
    terms = _FitTerms(target, stats, OVERLAP_FIT_CONVERGENCE, shares)
    anchor, spread = mu.detach().float(), sigma.detach().float().clamp(min=1e-6)
    z = latents.detach().float().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=OVERLAP_FIT_LEARNING_RATE)
    with torch.enable_grad():
        for _ in range(steps):
            pull = ((z - anchor) / spread).square().mean()
            decoded = overlap_add(model.decode(z).float()) / covered
            loss = count * (terms(decoded)[0] + FIT_PULL * pull)
            (z.grad,) = torch.autograd.grad(loss, z)
            optimizer.step()
    return z.detach().to(latents.dtype)


def _encode_batch(
    model: ConvVAE,
    chunks: torch.Tensor,
    stats: ChannelStats,
    fit_steps: int,
    hop: int,
    first: int,
    end: int | None,
    overlap: tuple[bool, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, M, W) normalized chunks, consecutive on a grid of `hop` frames from its chunk
    `first`, of a signal `end` frames long (None: all of these chunks lie inside it) → (fitted μ,
    σ), each (B, D) float32. `overlap`: (last, steps) of fit_overlapped."""
    mu, logvar = model.encode(chunks)
    sigma = torch.exp(0.5 * logvar.float())
    count, width = len(chunks), chunks.shape[-1]
    inside = None
    if end is not None and (first + count - 1) * hop + width > end:
        frame = (first + torch.arange(count))[:, None] * hop + torch.arange(width)
        inside = (frame < end).float().to(chunks.device)
    fitted = fit_latents(model, chunks, mu.float(), sigma, stats, fit_steps, inside)
    if overlap is not None and fit_steps > 0:
        last, steps = overlap
        fitted = fit_overlapped(
            model, chunks, fitted, mu.float(), sigma, stats, hop, first, last, steps, inside
        )
    return fitted, sigma


@torch.no_grad()
def encode_grid(
    model: ConvVAE,
    spec: torch.Tensor,
    stats: ChannelStats,
    spectral: SpectralConfig,
    fit_steps: int = FIT_STEPS,
    hop: int | None = None,
    overlap_steps: int = 0,
    fit_padding: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 2, M, N) normalized frames → (μ, σ) of each chunk on the grid, each (n_chunks, D).

    The last chunk is padded with silent frames (what the model saw after a short file's end).
    μ is fitted to each chunk (`fit_latents`, `fit_steps` steps; 0 = the encoder's μ as it is),
    then each batch of consecutive chunks together (`fit_overlapped`, `overlap_steps` steps; only
    after a fit of each chunk: started from the encoder's μ it gained less, BENCHMARKS.md round 15).
    `hop`: frames between chunks (default: the grid's, chunk_hop). `fit_padding` False: the
    silence padded past the end is not fitted (a resynthesis ends where its input does; generation
    and the corpus memory play whole chunks, their silence included).
    """
    width = model.config.frames
    hop = hop or chunk_hop(width)
    n_frames = spec.shape[-1]
    n_chunks = chunk_count(n_frames, width, hop)
    padded_frames = (n_chunks - 1) * hop + width
    padded = torch.empty(1, 2, spec.shape[2], padded_frames, dtype=spec.dtype, device=spec.device)
    for channel, value in enumerate(silence(stats, spectral)):
        padded[:, channel] = value
    padded[..., :n_frames] = spec
    chunks = padded[0].unfold(-1, width, hop).permute(2, 0, 1, 3)  # (n_chunks, 2, M, W)
    mus, sigmas = [], []
    for start in range(0, n_chunks, ENCODE_BATCH):
        batch = chunks[start : start + ENCODE_BATCH].contiguous()
        last = start + ENCODE_BATCH >= n_chunks
        overlap = (last, overlap_steps) if overlap_steps > 0 else None
        end = None if fit_padding else n_frames
        mu, sigma = _encode_batch(model, batch, stats, fit_steps, hop, start, end, overlap)
        mus.append(mu)
        sigmas.append(sigma)
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def encode_stream(
    model: ConvVAE,
    segments: Iterable[torch.Tensor],
    stats: ChannelStats,
    spectral: SpectralConfig,
    fit_steps: int = FIT_STEPS,
    hop: int | None = None,
    overlap_steps: int = 0,
    fit_padding: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_grid over frames that arrive as consecutive (2, M, n) normalized segments: the
    same (μ, σ), holding one segment and one batch of chunks at a time, whatever the length. A
    full batch waits for the chunk after it, so that the last batch is known as the last."""
    width = model.config.frames
    hop = hop or chunk_hop(width)
    device = next(model.parameters()).device
    pending: torch.Tensor | None = None  # frames from `start` on, not yet under every chunk
    start, chunk = 0, 0  # global index of pending's first frame; the next chunk to encode
    batch: list[torch.Tensor] = []
    mus, sigmas = [], []
    encoded, end = 0, None  # chunks encoded; the signal's frames, once the stream has ended

    def encode(final: bool = False) -> None:
        nonlocal encoded
        while batch and (final or len(batch) > ENCODE_BATCH):
            chunks = torch.stack(batch[:ENCODE_BATCH])
            last = final and len(batch) <= ENCODE_BATCH
            overlap = (last, overlap_steps) if overlap_steps > 0 else None
            mu, sigma = _encode_batch(model, chunks, stats, fit_steps, hop, encoded, end, overlap)
            mus.append(mu)
            sigmas.append(sigma)
            encoded += len(chunks)
            del batch[:ENCODE_BATCH]

    for segment in segments:
        segment = segment.to(device)
        pending = segment if pending is None else torch.cat([pending, segment], dim=-1)
        while chunk * hop + width <= start + pending.shape[-1]:
            at = chunk * hop - start
            batch.append(pending[:, :, at : at + width])
            chunk += 1
            encode()
        keep = chunk * hop - start  # frames before the next chunk's first are done with
        pending, start = pending[:, :, keep:], start + keep
    if pending is None:
        raise ValueError("no frames to encode")
    n_chunks = chunk_count(start + pending.shape[-1], width, hop)
    end = None if fit_padding else start + pending.shape[-1]
    if chunk < n_chunks:  # the last chunks, padded with silent frames past the end
        padded = torch.empty(2, pending.shape[1], (n_chunks - chunk - 1) * hop + width)
        for channel, value in enumerate(silence(stats, spectral)):
            padded[channel] = value
        padded = padded.to(pending)
        padded[:, :, : pending.shape[-1]] = pending
        for c in range(n_chunks - chunk):
            batch.append(padded[:, :, c * hop : c * hop + width])
            encode()
    encode(final=True)
    return torch.cat(mus), torch.cat(sigmas)

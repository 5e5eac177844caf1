"""The steps of the inverse, each measured on its own in bench/roundtrip.py.

1. `mel_to_linear`: band magnitudes (B, M, N) → linear magnitudes (B, F, N) by non-negative least
   squares (multiplicative updates). With the true phase put back this alone scores MR-STFT ≈ 0.4
   on tonal notes and ≈ 0.3 on drum one-shots: the magnitude path is close to transparent.
2. `phase_from_if`: each band integrates its own instantaneous frequency over time (cumulative
   sum: θ_b(n) = Σ 2π·f_b·hop / n_fft); every bin takes the phase of the band whose partial
   it sits under, plus π·k. The π·k term is the phase pattern a Hann-windowed sinusoid (or an
   impulse at a frame centre) leaves across neighbouring bins with centred frames, so the bins of
   one partial stay phase-locked and add up coherently instead of smearing.
3. `refine_phase`: a few fast Griffin-Lim steps (Perraudin et al. 2013), magnitude fixed, started
   from the IF phase: they make the spectrogram consistent across overlapping frames.
"""

from __future__ import annotations

import math

import torch

from distill.spectral.config import SpectralConfig
from distill.spectral.melscale import MelBands
from distill.spectral.stft import istft, stft


def mel_to_linear(band_mag: torch.Tensor, bands: MelBands, iterations: int) -> torch.Tensor:
    """(B, M, N) band magnitudes ≥ 0 → (B, F, N) bin magnitudes ≥ 0 with W · x ≈ band_mag.

    Starts from Wᵀ·y / Wᵀ·1 (each bin gets the mean of its bands) and applies the Lee–Seung
    multiplicative update x ← x · Wᵀy / WᵀWx, which keeps x ≥ 0 and is differentiable.
    A band at exactly 0 (silence) keeps its bins at exactly 0.

    The iterations run on (rows, B·N) matrices, every frame of every item a column: one copy in
    and one out, not two per product. With a gradient they run in `_MultiplicativeNNLS`, whose
    backward is written out: forward and backward of 5 iterations on a training step's 4 chunks
    take 19–24 ms instead of autograd's 24–30 (2 CPU threads, alternating runs), most of it the
    sparse products.
    """
    batch, _, frames = band_mag.shape
    w, wt = _weights(bands, band_mag)
    y = band_mag.transpose(0, 1).reshape(bands.weights.shape[0], batch * frames)  # (M, B·N)
    column_sums = bands.weights.sum(dim=0).to(band_mag).clamp(min=1e-12)[:, None]  # Wᵀ·1, (F, 1)
    if torch.is_grad_enabled() and band_mag.requires_grad:
        x = _MultiplicativeNNLS.apply(y, w, wt, column_sums, iterations)
    else:  # the same steps in place (generation, resynthesis)
        target = wt @ y
        x = target / column_sums
        for _ in range(iterations):
            fitted = _normal_product(x, w, wt).add_(1e-12)
            x.mul_(target).div_(fitted)
    return x.reshape(-1, batch, frames).transpose(0, 1)


def _normal_product(x: torch.Tensor, w: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """WᵀW x as Wᵀ(W x): two thin products, 4× fewer operations than with the F × F matrix."""
    return wt @ (w @ x)


class _MultiplicativeNNLS(torch.autograd.Function):
    """x₀ = a / Wᵀ1 with a = Wᵀy; x_{t+1} = x_t · a / f_t with f_t = WᵀW x_t + ε. Backward, for
    u = ∂L/∂x_{t+1}: ∂L/∂x_t = u·a/f_t − WᵀW (u·x_t·a / f_t²) and ∂L/∂a += u·x_t / f_t."""

    @staticmethod
    def forward(ctx, y, w, wt, column_sums, iterations):  # y: (M, B·N) → x: (F, B·N)
        target = wt @ y
        x = target / column_sums
        iterates, fitted = [], []
        for _ in range(iterations):
            f = _normal_product(x, w, wt).add_(1e-12)
            iterates.append(x)
            fitted.append(f)
            x = x * target / f
        ctx.save_for_backward(target, column_sums, *iterates, *fitted)
        ctx.weights = (w, wt)
        return x

    @staticmethod
    def backward(ctx, grad):
        target, column_sums, *saved = ctx.saved_tensors
        w, wt = ctx.weights
        iterations = len(saved) // 2
        iterates, fitted = saved[:iterations], saved[iterations:]
        g_target = torch.zeros_like(target)
        u = grad
        for x, f in zip(reversed(iterates), reversed(fitted), strict=True):
            ratio = u / f  # u / f_t
            g_target.addcmul_(ratio, x)
            direct = ratio.mul_(target)  # u·a / f_t
            u = direct - _normal_product(direct * x / f, w, wt)
        g_target.addcdiv_(u, column_sums)
        return w @ g_target, None, None, None, None


def _weights(bands: MelBands, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W (M, F) and Wᵀ (F, M) to multiply (·, B·N) matrices of `like`'s device and dtype.

    On the CPU in float32/64, sparse CSR matrices: every bin lies under at most two triangles,
    so W has ~2 000 non-zeros out of 131 000, and 50 NNLS steps over 30 s of frames take
    0.26–0.40 s (2 threads) instead of 0.34–0.40 s with a dense Wᵀ and 0.67 s with both dense.
    Elsewhere (GPU, bf16 autocast) dense matrices.
    """
    if like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64):
        return bands.sparse_weights.to(like.dtype), bands.sparse_weights_t.to(like.dtype)
    weights = bands.weights.to(like)
    return weights, weights.T


def _hann_lobe(distance: torch.Tensor) -> torch.Tensor:
    """|W(d)| / W(0) of a periodic Hann window at `distance` bins, zero outside its main lobe.

    Hann's transform is sinc(d) / (1 − d²) (one sine instead of the three of the textbook sum of
    shifted sincs); at d = ±1 the limit is 1/2.
    """
    d = distance.abs()
    near_one = (d - 1).abs() < 1e-4
    lobe = torch.sinc(d) / torch.where(near_one, torch.ones_like(d), 1 - d * d)
    lobe = torch.where(near_one, torch.full_like(d, 0.5), lobe)
    return torch.where(d < 2, lobe.abs(), torch.zeros_like(d))


# Steps per bin of the table `_hann_lobe_interpolated` reads.
LOBE_TABLE_STEPS = 1024


def _hann_lobe_interpolated(distance: torch.Tensor) -> torch.Tensor:
    """`_hann_lobe`, read by linear interpolation from a table of its values every 1/1024 bin.

    The table is computed in float64 on each call (2 050 values). The result is within 1e-6 of
    `_hann_lobe` in float64, except within 2e-4 of d = ±1, where that function holds 0.5 (7.5e-5
    from the true lobe; in float32 its rounding there is 3e-4). Over every bin of every frame it
    takes less than half the time: sinc and three selections over (B, 2, F, N) were 10 ms of each
    training step's audio term (4 chunks, 2 CPU threads). Computed in float32 at least.
    """
    dtype = distance.dtype if distance.dtype == torch.float64 else torch.float32
    steps = LOBE_TABLE_STEPS
    grid = torch.arange(2 * steps + 2, dtype=torch.float64, device=distance.device) / steps
    table = _hann_lobe(grid).to(dtype)  # 0 from d = 2 on: out of the main lobe
    # NaN (a diverged model's output) reads as out of the lobe, as it compared before: no band
    position = distance.to(dtype).abs().nan_to_num_(nan=2.0).clamp_(max=2.0).mul_(steps)
    index = position.to(torch.int64)
    fraction = position.sub_(index)
    low = table[index]
    return table[index + 1].sub_(low).mul_(fraction).add_(low)


def band_phase_advance(band_freq: torch.Tensor, cfg: SpectralConfig) -> torch.Tensor:
    """(B, M, N) band frequencies (bins) → phase advance per hop (radians, float64)."""
    return (2 * math.pi * cfg.hop_length / cfg.n_fft) * band_freq.to(torch.float64)


def phase_from_if(
    band_freq: torch.Tensor,
    band_mag: torch.Tensor,
    bands: MelBands,
    cfg: SpectralConfig,
    start_phase: torch.Tensor | None = None,
    first_frame: int = 0,
) -> torch.Tensor:
    """(B, M, N) band frequencies (bins) and magnitudes → (B, F, N) bin phases (radians).

    `start_phase` (B, M): each band's phase before the first frame, so a long signal can be
    synthesized segment by segment with its phase integrated once over the whole (0 if None).
    `cfg.scatter_phase`: bins more than a main lobe away from their band's frequency take a fixed
    pseudo-random phase (`scattered_phase`, indexed by `first_frame` + the frame) instead of the
    band's phase + π·k. The π·k pattern is right for a partial's lobe, but across a wide band of
    noise it puts a click at every frame centre: vertical stripes every hop (10.7 ms) in every
    resynthesized hi-hat, clap and snare, heard as a buzz at the frame rate.
    """
    # Summed in float64 and wrapped to [0, 2π): the top band advances ~1 600 rad per hop, so an
    # unwrapped float32 sum reaches 4.5e6 rad after 30 s, where one ulp is already 0.5 rad.
    band_phase = torch.cumsum(band_phase_advance(band_freq, cfg), dim=-1)  # (B, M, N): θ_b(n)
    if start_phase is not None:
        band_phase = band_phase + start_phase.to(band_phase)[..., None]
    band_phase = torch.remainder(band_phase, 2 * math.pi).to(band_freq.dtype)

    # Each bin lies under two triangles; it follows the one whose partial, placed at the band's
    # frequency with a Hann main-lobe shape, puts more magnitude on it.
    weights = bands.weights.to(band_freq)
    candidates = weights.topk(2, dim=0).indices  # (2, F)
    k = torch.arange(cfg.n_freqs, dtype=band_freq.dtype, device=band_freq.device)
    with torch.no_grad():  # a choice: no gradient goes through it, so no graph is kept
        freq_c = band_freq[:, candidates]  # (B, 2, F, N)
        lobe = _hann_lobe_interpolated(k[None, None, :, None] - freq_c)
        score = band_mag[:, candidates] * lobe.add_(1e-3)
        # A comparison, not argmax over the pair axis: argmax along a middle axis of length 2
        # took 0.46 s for 30 s of frames, this takes milliseconds.
        second = score[:, 1] > score[:, 0]  # (B, F, N)
        owner = torch.where(second, candidates[1][None, :, None], candidates[0][None, :, None])
    phase = torch.gather(band_phase, 1, owner) + math.pi * k[None, :, None]
    if not cfg.scatter_phase:
        return phase
    with torch.no_grad():  # a choice too
        # Outside the main lobe (|d| ≥ 2 bins, where _hann_lobe is 0) no partial of this band
        # reaches.
        off_lobe = (k[None, :, None] - torch.gather(band_freq, 1, owner)).abs() >= 2
    noise = scattered_phase(cfg.n_freqs, first_frame, phase.shape[-1], phase.device)
    return torch.where(off_lobe, noise.to(phase.dtype), phase)


def scattered_phase(bins: int, first_frame: int, frames: int, device: torch.device) -> torch.Tensor:
    """(bins, frames) phases in [0, 2π), a fixed function of (bin, absolute frame index).

    An integer hash, not a random generator: the same frame gets the same phases in every segment
    that holds it (long signals are synthesized in overlapping segments), and the same input always
    gives the same output.
    """
    mask = 0xFFFFFFFF
    k = torch.arange(bins, dtype=torch.int64, device=device)[:, None]
    n = torch.arange(first_frame, first_frame + frames, dtype=torch.int64, device=device)[None, :]
    # In place after the first sum: one (bins, frames) int64 buffer and one shift temporary, not a
    # fresh tensor per operation (a 22 s synthesis segment's table is 17 MB).
    x = (k * 0x9E3779B1 + 0x165667B1).add(n * 0x85EBCA77).bitwise_and_(mask)
    for multiplier in (0x7FEB352D, 0x846CA68B):  # two rounds of a 32-bit avalanche mix
        x.bitwise_xor_(x >> 16).mul_(multiplier).bitwise_and_(mask)
    x.bitwise_xor_(x >> 16)
    # The top 24 bits: exact in float32, so the phase stays below 2π.
    return (x >> 8).to(torch.float32).mul_(2 * math.pi / 2**24)


def refine_phase(
    magnitude: torch.Tensor,
    phase: torch.Tensor,
    cfg: SpectralConfig,
    length: int,
    iterations: int,
    momentum: float,
) -> torch.Tensor:
    """Fast Griffin-Lim from `phase`: returns the complex spectrogram after `iterations` steps."""
    previous = torch.polar(magnitude, phase)
    if not (torch.is_grad_enabled() and (magnitude.requires_grad or phase.requires_grad)):
        return _refine_in_place(magnitude, previous, cfg, length, iterations, momentum)
    accelerated = previous
    for _ in range(iterations):
        rebuilt = stft(istft(accelerated, cfg, length), cfg)
        # Unit phasors without torch.angle, whose gradient is NaN where a bin is exactly 0. The
        # epsilon (−200 dBFS, far below the log floor) keeps 1/|x| finite in float32 backward.
        unit = rebuilt * torch.rsqrt(rebuilt.real.square() + rebuilt.imag.square() + 1e-20)
        projected = magnitude * unit
        accelerated = projected + momentum * (projected - previous)
        previous = projected
    return previous


def _refine_in_place(
    magnitude: torch.Tensor,
    previous: torch.Tensor,
    cfg: SpectralConfig,
    length: int,
    iterations: int,
    momentum: float,
) -> torch.Tensor:
    """The same steps without autograd, updating buffers in place: about half the memory
    traffic of the differentiable loop (generation, resynthesis, previews)."""
    accelerated = previous  # read by the first istft before `previous` is updated in place
    for _ in range(iterations):
        projected = stft(istft(accelerated, cfg, length), cfg)
        # magnitude / |x|: complex abs in one pass (a sum over view_as_real's pair axis took
        # 4× longer); the epsilon (−200 dBFS) only matters where a bin is exactly 0
        gain = torch.div(magnitude, projected.abs().add_(1e-10))
        projected.mul_(gain)  # magnitude · unit phasor
        # accelerated = projected + momentum · (projected − previous), written into `previous`
        accelerated = previous.mul_(-momentum).add_(projected, alpha=1 + momentum)
        previous = projected
    return previous

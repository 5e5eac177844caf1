"""The training loss's audio distance: auraloss' MultiResolutionSTFTLoss, with its backward by hand.

Per resolution: spectral convergence ‖Y − X‖ / ‖Y‖ (over the whole batch) + mean |log X − log Y|,
on magnitudes √max(|STFT|², 1e-8) under a periodic Hann window (frames centred, reflect padding,
as torch.stft); then the mean over resolutions. auraloss also takes the phase of both signals at
every resolution, which a phase weight of 0 never uses.

Autograd through torch.stft and a dozen element-wise steps took 0.06 s of each training step's
0.2 s for its backward alone (4 chunks of 1 s, 4 resolutions, 2 CPU threads): the backward of a
one-sided FFT goes through a full complex FFT, and every step on the complex spectrum (real, imag,
square, clamp, sqrt) allocates its own gradient. `_Distance` computes the same gradient in a few
fused steps and one inverse real FFT: forward and backward 42 ms instead of 86 (BENCHMARKS.md,
"Fidelity", round 9). Value and gradient match auraloss' (tests/test_model.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

EPS = 1e-8  # auraloss' floor under |STFT|²


def _frames(x: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, T) → (B, frames, n_fft) windowed frames centred every `hop` samples, as torch.stft
    frames them (center=True, reflect padding)."""
    fft = window.shape[-1]
    padded = functional.pad(x[:, None], (fft // 2, fft // 2), mode="reflect")[:, 0]
    return padded.unfold(-1, fft, hop) * window


def _power(spec: torch.Tensor) -> torch.Tensor:
    return spec.real.square() + spec.imag.square()


class _Distance(torch.autograd.Function):
    """One resolution: spectral convergence + mean log distance of x's magnitudes to y_mag."""

    @staticmethod
    def forward(ctx, x, y_mag, window, hop):  # (B, T), (B, frames, F), (n_fft,), int
        spec = torch.fft.rfft(_frames(x, window, hop))  # (B, frames, F) complex
        power = _power(spec)
        mag = power.clamp(min=EPS).sqrt_()
        diff = y_mag - mag
        diff_norm, y_norm = torch.linalg.vector_norm(diff), torch.linalg.vector_norm(y_mag)
        log_diff = mag.log() - y_mag.log()
        floored = power < EPS  # where clamp passes no gradient
        ctx.save_for_backward(x, window, spec, mag, floored, diff, log_diff, diff_norm * y_norm)
        ctx.hop = hop
        return diff_norm / y_norm + log_diff.abs().mean()

    @staticmethod
    def backward(ctx, grad):
        x, window, spec, mag, floored, diff, log_diff, norms = ctx.saved_tensors
        fft, hop = window.shape[-1], ctx.hop
        # ∂/∂mag: −(Y − X) / (‖Y − X‖ ‖Y‖) from the convergence, sign(log X − log Y) / (X · count)
        # from the log distance.
        g_mag = diff * (-1.0 / norms)
        g_mag.add_(torch.sign(log_diff).div_(mag), alpha=1.0 / mag.numel()).mul_(grad)
        # Through √max(|S|², ε): ∂mag/∂Re S = Re S / mag, likewise Im; nothing where the floor held.
        g_mag.div_(mag).masked_fill_(floored, 0.0)
        g_spec = spec * g_mag
        # Through the one-sided FFT: ∂L/∂frame[n] = Σₖ Re(Gₖ e^{2πikn/N}) over k = 0 … N/2, i.e. an
        # inverse real FFT without its 1/N whose inner bins (which it counts twice) are halved.
        g_spec[..., 1:-1] *= 0.5
        g_frames = torch.fft.irfft(g_spec, n=fft, norm="forward").mul_(window)
        # Through the framing: overlap-add (unfold's adjoint), then fold the reflected edges back.
        padded = [x.shape[0], x.shape[-1] + 2 * (fft // 2)]
        g_padded = torch.ops.aten.unfold_backward(g_frames, padded, 1, fft, hop)
        g_x = torch.ops.aten.reflection_pad1d_backward(
            g_padded[:, None], x[:, None], [fft // 2, fft // 2]
        )[:, 0]
        return g_x, None, None, None


class MultiResolutionSTFT:
    """Called as auraloss' module is: (B, 1, T) prediction and target → a tensor of shape ()."""

    def __init__(
        self, fft_sizes: Sequence[int], hop_sizes: Sequence[int], win_lengths: Sequence[int]
    ) -> None:
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths, strict=True))
        self._windows: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def _window(self, fft: int, win: int, device: torch.device) -> torch.Tensor:
        """A periodic Hann window of `win` samples centred in `fft` (torch.stft's padding)."""
        key = (fft, win, device)
        if key not in self._windows:
            left = (fft - win) // 2
            window = torch.hann_window(win, device=device)
            self._windows[key] = functional.pad(window, (left, fft - win - left))
        return self._windows[key]

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = prediction.reshape(-1, prediction.shape[-1])
        y = target.reshape(-1, target.shape[-1])
        total = torch.zeros((), device=x.device)
        for fft, hop, win in self.resolutions:
            window = self._window(fft, win, x.device)
            with torch.no_grad():
                y_mag = _power(torch.fft.rfft(_frames(y, window, hop))).clamp_(min=EPS).sqrt_()
            total = total + _Distance.apply(x, y_mag, window, hop)
        return total / len(self.resolutions)

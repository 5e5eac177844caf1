"""The training loss, every weight and resolution in one `LossConfig`.

  total = stft.weight·ramp(t) · MR-STFT(audio rebuilt from the prediction, target audio)
        + recon.weight · (mag_weight · L1(log magnitude, its frames weighted by level)
                          + if_weight · magnitude-weighted L1(IF)
                          + convergence_weight · spectral convergence of the linear band magnitudes)
        + β(t) · KL (free bits per dimension)

MR-STFT is computed on audio: the predicted 2 channels go through the representation's own
differentiable inverse (mel → linear, IF → phase, ISTFT), which teaches the model a phase that
holds up across resolutions. It starts after `start_fraction` of training and ramps in: at full
weight from the first step it diverged in a prototype (KL ~6·10⁴, grad norm ~3·10³). It is
computed on at most `max_items` chunks of each batch to bound its cost.
Every component is ≥ 0 by construction; a negative term would be a bug.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from distill.model.mrstft import MultiResolutionSTFT
from distill.spectral.config import SpectralConfig
from distill.spectral.melscale import MelBands, mel_bands
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG, synthesize


@dataclass(frozen=True)
class STFTLossConfig:
    # 0.2: at 1 the audio term outweighed the spectrogram terms when it ramped in, the magnitude
    # error rose (notes: 0.38 → 0.46) and the best validation epoch was the one before the ramp;
    # at 0.2 held-out notes reached 1.772 instead of 1.846 in 15 minutes (BENCHMARKS.md).
    weight: float = 0.2
    fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256)
    hop_sizes: tuple[int, ...] = (512, 256, 128, 64)
    win_lengths: tuple[int, ...] = (2048, 1024, 512, 256)
    start_fraction: float = 0.25  # of all training steps: the term is off before this
    ramp_fraction: float = 0.15  # then rises linearly to `weight` over this fraction
    # Chunks of each batch that go through the inverse, and its NNLS steps (50 for final audio):
    # 4 items × 5 steps cost 0.15 s per step of 32 on 2 cores, against 0.34 s for 8 × 10. The
    # term is 60 % of a step of the 2 M-parameter model, but 2 items gained nothing that lasted:
    # better after 5 minutes (notes 1.078 → 1.042, drums 1.460 → 1.445), worse after 15 (notes
    # 1.028, drums 1.448; BENCHMARKS.md "Fidelity", round 5).
    max_items: int = 4
    nnls_iterations: int = 5
    refine_iterations: int = 0  # consistency steps inside the loss (0 = pure IF phase)


@dataclass(frozen=True)
class ReconLossConfig:
    weight: float = 1.0
    mag_weight: float = 1.0  # L1 on the normalized log-magnitude channel
    if_weight: float = 0.5  # magnitude-weighted L1 on the normalized IF channel
    # ‖P − T‖ / ‖T‖ on linear band magnitudes (magnitude_convergence): the log L1 counts a band 60
    # dB down as much as the loudest. Held-out after 300 epochs (the loudness-weighted latent fit
    # for all; BENCHMARKS.md "Fidelity", round 12), 0 → 0.25: drums seed 0 1.240 → 1.229 (1.237
    # at 1), seed 1 1.276 → 1.254, notes 0.918 → 0.912; training files drums 1.50 → 1.43, notes
    # 0.947 → 0.913.
    convergence_weight: float = 0.25
    # The log-magnitude L1 of each frame counts 1 + loud_frames × (its level / the chunk's mean
    # level), over 1 + loud_frames so that the term keeps its scale (frame_weights), as the
    # latent fit weighs its frames: every frame alike spent the model on the tails. Held-out
    # after 300 epochs (BENCHMARKS.md "Fidelity", round 13), 0 → 4: drums seed 0 1.229 → 1.214
    # (16: 1.219, 32: 1.225), seed 1 1.254 → 1.245 (at 16); training files 1.43 → 1.38. Notes pay
    # a little (0.912 → 0.926, 0.911 → 0.921: a note's loud frames are its sustain, not its
    # release); they stay well inside their target, the drums did not.
    loud_frames: float = 4.0


@dataclass(frozen=True)
class KLLossConfig:
    beta_max: float = 1e-3  # weight of the KL term (summed over latent dims) after warm-up
    warmup_fraction: float = 0.3  # β rises linearly from 0 to beta_max over this fraction
    free_bits: float = 0.05  # nats per latent dimension that cost nothing


@dataclass(frozen=True)
class LossConfig:
    stft: STFTLossConfig = field(default_factory=STFTLossConfig)
    recon: ReconLossConfig = field(default_factory=ReconLossConfig)
    kl: KLLossConfig = field(default_factory=KLLossConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LossConfig:
        def build(kind, values):
            known = {f.name for f in dataclasses.fields(kind)}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown {kind.__name__} settings: {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(
            stft=build(STFTLossConfig, data.get("stft", {})),
            recon=build(ReconLossConfig, data.get("recon", {})),
            kl=build(KLLossConfig, data.get("kl", {})),
        )

    def beta(self, progress: float) -> float:
        """KL weight at `progress` ∈ [0, 1] of training."""
        warmup = self.kl.warmup_fraction
        ramp = 1.0 if warmup <= 0 else min(max(progress, 0.0) / warmup, 1.0)
        return self.kl.beta_max * ramp

    def stft_weight(self, progress: float) -> float:
        """MR-STFT weight at `progress`: 0 before start_fraction, then a linear ramp."""
        cfg = self.stft
        if cfg.weight <= 0 or progress < cfg.start_fraction:
            return 0.0
        if cfg.ramp_fraction <= 0:
            return cfg.weight
        return cfg.weight * min((progress - cfg.start_fraction) / cfg.ramp_fraction, 1.0)


@dataclass
class LossTerms:
    """Each component (unweighted, ≥ 0) and the weighted total, as tensors of shape ()."""

    total: torch.Tensor
    stft: torch.Tensor
    mag: torch.Tensor
    inst_freq: torch.Tensor
    convergence: torch.Tensor
    kl: torch.Tensor
    beta: float
    stft_weight: float

    def as_floats(self) -> dict[str, float]:
        return {
            "total": float(self.total.detach()),
            "stft": float(self.stft.detach()),
            "mag": float(self.mag.detach()),
            "if": float(self.inst_freq.detach()),
            "conv": float(self.convergence.detach()),
            "kl": float(self.kl.detach()),
            "beta": self.beta,
            "stft_weight": self.stft_weight,
        }


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, I)) in nats per item: each dimension's batch mean clamped below at
    `free_bits`, summed over dimensions."""
    per_dim = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)  # (B, D), ≥ 0
    return torch.clamp(per_dim.mean(dim=0), min=free_bits).sum()


def log_magnitude(spec: torch.Tensor, stats: ChannelStats) -> torch.Tensor:
    """(B, M, N) natural-log magnitude of normalized (B, 2, M, N) spectrograms: the magnitude
    channel of stats.denormalize, without de-normalizing the IF (the latent fit calls it every
    step)."""
    return spec[:, MAG] * stats.std[MAG] + stats.mean[MAG]


def magnitude_weights(target: torch.Tensor, stats: ChannelStats) -> torch.Tensor:
    """(B, M, N) weights ≥ 0 with mean 1 per item, from the target's *linear* magnitude.

    De-normalized before exponentiating: weights computed from the zero-mean normalized channel
    changed sign in an earlier design and drove the IF term negative.
    """
    log_mag = log_magnitude(target, stats)
    magnitude = torch.exp(log_mag - log_mag.amax(dim=(1, 2), keepdim=True))  # ≤ 1, no overflow
    return magnitude / magnitude.mean(dim=(1, 2), keepdim=True).clamp(min=1e-12)


def frame_weights(weights: torch.Tensor, loud_frames: float) -> torch.Tensor:
    """(B, 1, N): 1 + loud_frames × each frame's level / the item's mean level, from
    magnitude_weights' (B, M, N); a frame of average level counts 1 + loud_frames."""
    level = weights.mean(dim=1, keepdim=True)  # (B, 1, N): each frame's mean linear magnitude
    return 1 + loud_frames * level / level.mean(dim=2, keepdim=True).clamp(min=1e-12)


def magnitude_convergence(
    prediction: torch.Tensor,
    target: torch.Tensor,
    stats: ChannelStats,
    frame_shares: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) spectral convergence ‖P − T‖ / ‖T‖ of each item's *linear* band magnitudes, from
    normalized (B, 2, M, N) prediction and target: the L1 on the log magnitude counts a band 60
    dB down as much as the loudest; this counts the bands by how loud they are, as the ear and
    MR-STFT do. Both are scaled by the target's peak before exponentiating (the ratio does not
    change), and a prediction more than e^20 over that peak counts as e^20 (a wild, untrained
    prediction stays finite; the log L1 brings it down). `frame_shares` (N,) or (B, N) ≥ 0, if
    given: how much each frame counts in both norms (its squared terms are multiplied by it)."""
    log_target, log_prediction = log_magnitude(target, stats), log_magnitude(prediction, stats)
    peak = log_target.amax(dim=(1, 2), keepdim=True)
    linear_target = torch.exp(log_target - peak)
    linear_prediction = torch.exp((log_prediction - peak).clamp(max=20.0))
    if frame_shares is not None:
        root = frame_shares.sqrt().unsqueeze(-2)  # over the bands
        linear_target, linear_prediction = linear_target * root, linear_prediction * root
    linear_target, linear_prediction = linear_target.flatten(1), linear_prediction.flatten(1)
    norm = linear_target.norm(dim=1).clamp(min=1e-12)
    return (linear_prediction - linear_target).norm(dim=1) / norm


class AudioDistance:
    """The audio term: normalized (B, 2, M, N) spectrograms through the representation's own
    differentiable inverse (the NNLS and phase steps `config` names), then MR-STFT against target
    audio, one value for a batch."""

    def __init__(
        self, config: STFTLossConfig, spectral: SpectralConfig, stats: ChannelStats
    ) -> None:
        self.stats = stats
        self.spectral = dataclasses.replace(
            spectral,
            nnls_iterations=config.nnls_iterations,
            refine_iterations=config.refine_iterations,
        )
        self.bands: MelBands = mel_bands(spectral)
        self.mrstft = MultiResolutionSTFT(
            fft_sizes=list(config.fft_sizes),
            hop_sizes=list(config.hop_sizes),
            win_lengths=list(config.win_lengths),
        )

    def rebuild(self, prediction: torch.Tensor, length: int) -> torch.Tensor:
        """(B, 2, M, N) normalized → (B, length) audio, differentiably."""
        return synthesize(
            prediction, self.spectral, length=length, stats=self.stats, bands=self.bands
        )

    def batch(self, prediction: torch.Tensor, target_audio: torch.Tensor) -> torch.Tensor:
        """One value for the batch (spectral convergence over all of it, as auraloss has it)."""
        audio = self.rebuild(prediction, target_audio.shape[-1])
        return self.mrstft(audio[:, None], target_audio[:, None].float())


class VAELoss:
    """Computes LossTerms; holds the audio term (its MR-STFT module and mel bands), built once."""

    def __init__(self, config: LossConfig, spectral: SpectralConfig, stats: ChannelStats) -> None:
        self.config = config
        self.stats = stats
        self.audio = AudioDistance(config.stft, spectral, stats)

    def __call__(
        self,
        prediction: torch.Tensor,  # (B, 2, M, N) normalized
        target: torch.Tensor,  # (B, 2, M, N) normalized
        target_audio: torch.Tensor,  # (B, T)
        mu: torch.Tensor,
        logvar: torch.Tensor,
        progress: float,
    ) -> LossTerms:
        cfg = self.config
        prediction = prediction.float()
        weights = magnitude_weights(target, self.stats)
        mag_error = (prediction[:, MAG] - target[:, MAG]).abs()
        if cfg.recon.loud_frames > 0:
            loud = cfg.recon.loud_frames
            mag_error = mag_error * frame_weights(weights, loud) / (1 + loud)
        mag = mag_error.mean()
        inst_freq = (weights * (prediction[:, IF] - target[:, IF]).abs()).mean()
        convergence = magnitude_convergence(prediction, target, self.stats).mean()
        kl = kl_divergence(mu.float(), logvar.float(), cfg.kl.free_bits)

        stft_weight = cfg.stft_weight(progress)
        if stft_weight > 0:
            n = min(cfg.stft.max_items, prediction.shape[0])
            stft = self.audio.batch(prediction[:n], target_audio[:n])
        else:
            stft = torch.zeros((), device=prediction.device)

        beta = cfg.beta(progress)
        total = (
            stft_weight * stft
            + cfg.recon.weight
            * (
                cfg.recon.mag_weight * mag
                + cfg.recon.if_weight * inst_freq
                + cfg.recon.convergence_weight * convergence
            )
            + beta * kl
        )
        return LossTerms(total, stft, mag, inst_freq, convergence, kl, beta, stft_weight)

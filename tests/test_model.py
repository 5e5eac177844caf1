"""ConvVAE shapes, derived sizes, output range, and the loss's components."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distill.audio import synth
from distill.model import ConvVAE, LossConfig, ModelConfig, VAELoss
from distill.model.loss import (
    KLLossConfig,
    STFTLossConfig,
    kl_divergence,
    magnitude_weights,
)
from distill.model.mrstft import MultiResolutionSTFT
from distill.spectral import ChannelStats, SpectralConfig, analyze
from distill.spectral.normalize import ChannelSums
from distill.spectral.transform import IF, MAG

SPECTRAL = SpectralConfig()
TINY = (4, 8, 8, 16, 16)  # same architecture, fewer channels: fast tests


@pytest.fixture(scope="module")
def real_batch():
    """Normalized 2-channel chunks and audio of varied synthetic sounds, with their statistics."""
    sounds = [
        synth.harmonic_note(110.0, 1.0, brightness=0.8, rng=0),
        synth.pluck(440.0, 1.0, rng=1),
        synth.snare(1.0, rng=2),
        synth.hihat(open=True, seconds=1.0, rng=3),
        synth.bell(660.0, 1.0, rng=4),
        synth.kick(1.0, rng=5),
    ]
    audio = torch.from_numpy(np.stack([s[: SPECTRAL.chunk_samples] for s in sounds]))
    spec = analyze(audio, SPECTRAL)
    stats = ChannelStats.from_sums(ChannelSums.of(spec))
    return stats.normalize(spec), audio, stats


def test_default_sizes_keep_the_seed_designs_shape_at_a_quarter_of_its_widths():
    config = ModelConfig.for_spectral(SPECTRAL)
    assert (config.n_mels, config.frames) == (128, 94)
    assert config.padded_shape == (128, 96)
    assert len(config.channels) == 5  # five stride-2 blocks, latent 128
    assert config.bottleneck_shape == (256, 4, 3)
    assert config.flatten_dim == 3_072
    assert config.profile_rank == 8
    model = ConvVAE(config)
    assert model.to_mu.in_features == 3_072 and model.to_mu.out_features == 128
    profiles = sum(p.numel() for p in model.profiles.parameters())
    assert 1.5e6 < sum(p.numel() for p in model.parameters()) - profiles < 2.5e6
    assert 0.8e6 < profiles < 1.2e6  # 512 hidden → 8 × (128 + 96) values
    recon, mu, logvar = model(torch.randn(2, 2, 128, 94))
    assert recon.shape == (2, 2, 128, 94) and mu.shape == logvar.shape == (2, 128)


def _upsampled(model: ConvVAE, z: torch.Tensor) -> torch.Tensor:
    """What the upsampling stages alone draw from z, cropped as decode crops."""
    x = model.decoder(model.from_latent(z).view(-1, *model.config.bottleneck_shape))
    return x[..., : model.config.n_mels, : model.config.frames]


def test_the_profile_map_adds_a_rank_k_map_to_the_magnitude_and_starts_at_zero():
    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8, profile_rank=3)).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(model.decode(z), _upsampled(model, z))  # a new model: no map yet
        torch.nn.init.normal_(model.profiles.bands.weight)
        added = model.decode(z) - _upsampled(model, z)
    assert added.shape == (2, 2, 128, 94)
    assert torch.equal(added[:, IF], torch.zeros(2, 128, 94))  # the IF as the stages draw it
    ranks = torch.linalg.matrix_rank(added[:, MAG].double(), rtol=1e-6)
    assert ranks.tolist() == [3, 3]
    assert not torch.allclose(added[0], added[1])  # drawn from each latent, not one template
    model.profiles.bands.weight.grad = None
    model.train()
    model.decode(torch.randn(2, 8)).square().mean().backward()
    assert model.profiles.bands.weight.grad.abs().amax() > 0


def test_profile_rank_zero_is_the_upsampling_stages_alone():
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8, profile_rank=0)).eval()
    assert model.profiles is None
    assert not any("profiles" in name for name in model.state_dict())
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(model.decode(z), _upsampled(model, z))


@pytest.mark.parametrize(
    ("n_mels", "frames", "bottleneck"), [(64, 47, (16, 2, 2)), (96, 200, (16, 3, 7))]
)
def test_sizes_are_derived_from_any_chunk_shape(n_mels, frames, bottleneck):
    config = ModelConfig(n_mels=n_mels, frames=frames, channels=TINY, latent_dim=8)
    assert config.bottleneck_shape == bottleneck
    model = ConvVAE(config)
    assert all(
        not isinstance(p, torch.nn.parameter.UninitializedParameter) for p in model.parameters()
    )
    recon, _, _ = model(torch.randn(3, 2, n_mels, frames))
    assert recon.shape == (3, 2, n_mels, frames)


def test_model_rebuilds_exactly_from_its_config():
    torch.manual_seed(0)
    config = ModelConfig(channels=TINY, latent_dim=16)
    model = ConvVAE(config).eval()
    clone = ConvVAE(ModelConfig.from_dict(config.to_dict())).eval()
    clone.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 2, 128, 94)
    assert torch.equal(model(x)[0], clone(x)[0])  # eval mode decodes μ: deterministic


def test_decoder_output_reaches_every_value_of_real_normalized_data(real_batch):
    """A squashed head (Tanh/Softplus) could not reach the targets' tails; the linear head can.

    The decoder is pushed to produce the lowest and highest value of each channel of real
    normalized data; an output activation bounded inside the data's range fails this.
    """
    target, _, _ = real_batch
    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8)).train()
    z = torch.zeros(2, 8, requires_grad=True)
    params = [*model.decoder.parameters(), *model.from_latent.parameters(), z]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    extremes = [(float(target[:, ch].min()), float(target[:, ch].max())) for ch in (MAG, IF)]
    for lo, hi in extremes:
        assert hi > 2.0 or lo < -2.0  # the data has tails past ±2
    for _ in range(200):
        optimizer.zero_grad()
        out = model.decode(z)
        loss = sum(
            (out[:, ch].amax() - hi).square() + (out[:, ch].amin() - lo).square()
            for ch, (lo, hi) in enumerate(extremes)
        )
        loss.backward()
        optimizer.step()
    out = model.decode(z).detach()
    for ch, (lo, hi) in enumerate(extremes):
        assert float(out[:, ch].max()) == pytest.approx(hi, abs=0.05 * abs(hi))
        assert float(out[:, ch].min()) == pytest.approx(lo, abs=0.05 * abs(lo))


def test_log_variance_is_bounded():
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8))
    _, _, logvar = model(torch.randn(2, 2, 128, 94) * 1e4)
    assert float(logvar.detach().abs().max()) <= model.config.logvar_limit


def test_kl_with_free_bits():
    mu, logvar = torch.zeros(4, 16), torch.zeros(4, 16)
    assert float(kl_divergence(mu, logvar, 0.05)) == pytest.approx(16 * 0.05)
    mu[:, 0] = 2.0  # one dimension carries 2 nats: 0.5 · 2²
    assert float(kl_divergence(mu, logvar, 0.05)) == pytest.approx(2.0 + 15 * 0.05)


def test_if_weights_stay_positive_when_normalized_magnitudes_are_negative(real_batch):
    target, _, stats = real_batch
    quiet = target.clone()
    quiet[:, MAG] = quiet[:, MAG] - 3.0  # mostly negative normalized magnitudes
    weights = magnitude_weights(quiet, stats)
    assert float(weights.min()) >= 0
    assert torch.allclose(weights.mean(dim=(1, 2)), torch.ones(len(quiet)), atol=1e-4)


def test_schedules():
    config = LossConfig(
        kl=KLLossConfig(beta_max=0.01, warmup_fraction=0.4),
        stft=STFTLossConfig(weight=2.0, start_fraction=0.2, ramp_fraction=0.1),
    )
    assert config.beta(0.0) == 0.0
    assert config.beta(0.2) == pytest.approx(0.005)
    assert config.beta(0.4) == config.beta(1.0) == pytest.approx(0.01)
    assert config.stft_weight(0.19) == 0.0
    assert config.stft_weight(0.25) == pytest.approx(1.0)
    assert config.stft_weight(0.9) == pytest.approx(2.0)
    assert LossConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("progress", [0.0, 0.6])
def test_every_component_is_finite_and_non_negative(real_batch, progress):
    target, audio, stats = real_batch
    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8)).train()
    loss = VAELoss(LossConfig(stft=STFTLossConfig(max_items=3)), SPECTRAL, stats)
    for scale in (1.0, 30.0):  # also wild, untrained-looking predictions
        prediction, mu, logvar = model(target)
        terms = loss(prediction * scale, target, audio, mu * scale, logvar, progress)
        values = terms.as_floats()
        assert all(np.isfinite(v) and v >= 0 for v in values.values()), values
        assert (values["stft"] > 0) == (progress >= 0.25)


def test_band_convergence_enters_the_total_at_its_weight(real_batch):
    """recon.convergence_weight × magnitude_convergence (mean over the batch) is in the total,
    and reported as "conv" whatever its weight."""
    from distill.model.loss import ReconLossConfig, magnitude_convergence

    target, audio, stats = real_batch
    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8)).eval()
    with torch.no_grad():
        prediction, mu, logvar = model(target)
    totals = {}
    for weight in (0.0, 0.5):
        config = LossConfig(recon=ReconLossConfig(convergence_weight=weight))
        terms = VAELoss(config, SPECTRAL, stats)(prediction, target, audio, mu, logvar, 0.0)
        expected = magnitude_convergence(prediction, target, stats).mean()
        torch.testing.assert_close(terms.convergence, expected)
        assert terms.as_floats()["conv"] > 0
        totals[weight] = terms.total
    torch.testing.assert_close(totals[0.5] - totals[0.0], 0.5 * expected)


def test_loud_frames_weigh_the_magnitude_error_by_level_at_the_same_scale(real_batch):
    """recon.loud_frames: a frame's log-magnitude error counts 1 + k × its level / the chunk's
    mean, over 1 + k. An error spread evenly costs what it does unweighted; the same error at a
    kick's attack costs more than in its tail."""
    from distill.model.loss import ReconLossConfig

    target, audio, stats = real_batch
    mu, logvar = torch.zeros(len(target), 8), torch.zeros(len(target), 8)

    def mag_term(prediction, loud):
        config = LossConfig(recon=ReconLossConfig(loud_frames=loud))
        return float(VAELoss(config, SPECTRAL, stats)(prediction, target, audio, mu, logvar, 0).mag)

    even = target.clone()
    even[:, MAG] += 0.5
    assert mag_term(even, 16.0) == pytest.approx(mag_term(even, 0.0), rel=1e-5)
    kick = target[5:6]  # synth.kick: its attack is the chunk's loudest frame
    level = kick[0, MAG].mean(dim=0)
    loud, quiet = int(level.argmax()), int(level.argmin())
    costs = {}
    for frame in (loud, quiet):
        wrong = target.clone()
        wrong[5, MAG, :, frame] += 1.0
        costs[frame] = (mag_term(wrong, 16.0), mag_term(wrong, 0.0))
    assert costs[loud][1] == pytest.approx(costs[quiet][1], rel=1e-5)  # unweighted: equal
    assert costs[loud][0] > 3 * costs[quiet][0], costs


def test_audio_loss_trains_both_channels(real_batch):
    target, audio, stats = real_batch
    loss = VAELoss(LossConfig(stft=STFTLossConfig(max_items=2)), SPECTRAL, stats)
    prediction = (target + 0.3 * torch.randn_like(target)).requires_grad_(True)
    mu, logvar = torch.zeros(len(target), 8), torch.zeros(len(target), 8)
    terms = loss(prediction, target, audio, mu, logvar, progress=1.0)
    terms.stft.backward()
    grad = prediction.grad
    assert torch.isfinite(grad).all()
    assert float(grad[:2, MAG].abs().sum()) > 0 and float(grad[:2, IF].abs().sum()) > 0
    assert float(grad[2:].abs().sum()) == 0  # only max_items chunks go through the inverse


def test_audio_term_is_auraloss_mr_stft_in_value_and_gradient(real_batch):
    """The training loss's own MR-STFT skips what auraloss computes and never uses (the phase);
    it must stay auraloss' distance, spectral convergence over the whole batch included (items 30
    dB apart in level would score differently if it were taken per item), and its backward, written
    by hand, auraloss' gradient: through the one-sided FFT, the overlap-add, the reflected edges and
    the floor under silent frames."""
    import auraloss

    _, audio, _ = real_batch
    config = STFTLossConfig()
    resolutions = dict(
        fft_sizes=list(config.fft_sizes),
        hop_sizes=list(config.hop_sizes),
        win_lengths=list(config.win_lengths),
    )
    levels = torch.tensor([1.0, 0.03, 0.3, 0.01, 1.0, 0.1])[:, None, None]
    target = audio[:, None] * levels
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    grads, values = [], []
    for distance in (
        auraloss.freq.MultiResolutionSTFTLoss(**resolutions),
        MultiResolutionSTFT(**resolutions),
    ):
        prediction = target * 0.7 + 0.01 * levels * noise
        prediction[0, :, -12000:] = 0.0  # digital silence: under auraloss' floor, no gradient
        prediction.requires_grad_(True)
        value = distance(prediction, target)
        value.backward()
        values.append(float(value.detach()))
        grads.append(prediction.grad)
    assert values[1] == pytest.approx(values[0], rel=1e-6)
    assert torch.allclose(grads[1], grads[0], rtol=1e-4, atol=1e-4 * float(grads[0].abs().max()))


def _briefly_trained(chunks: torch.Tensor) -> tuple[ConvVAE, torch.Tensor, torch.Tensor]:
    """A tiny autoencoder trained 60 steps on `chunks` (its decoder depends on z, its μ is rough),
    in eval mode, and the chunks' encoder (μ, σ)."""
    torch.manual_seed(0)
    model = ConvVAE(ModelConfig(channels=TINY, latent_dim=8))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        recon, _, _ = model(chunks)
        optimizer.zero_grad()
        (recon - chunks).abs().mean().backward()
        optimizer.step()
    model.eval().zero_grad(set_to_none=True)
    with torch.no_grad():
        mu, logvar = model.encode(chunks)
    return model, mu, torch.exp(0.5 * logvar)


def _fit_error(model: ConvVAE, chunks: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-chunk L1 of the decoded log magnitude, loud frames (top quarter) only."""
    with torch.no_grad():
        error = (model.decode(z)[:, MAG] - chunks[:, MAG]).abs().mean(dim=1)  # (B, N)
    loud = chunks[:, MAG].mean(dim=1) >= chunks[:, MAG].mean(dim=1).quantile(0.75, dim=1)[:, None]
    return (error * loud).sum(dim=1) / loud.sum(dim=1)


def test_fitting_latents_brings_the_decoding_closer_without_touching_the_model(
    real_batch, monkeypatch
):
    """model.grid.fit_latents: each chunk's latent moves to one the decoder renders closer to the
    chunk, loud frames (attacks) above all; the weights are left as they were; 0 steps is μ. The
    log terms alone here (the loudness-weighted term has its own test below: it trades quiet
    bands, which this measure counts, for loud ones)."""
    import distill.model.grid as grid
    from distill.model.grid import fit_latents

    monkeypatch.setattr(grid, "FIT_CONVERGENCE", 0.0)

    chunks, _, stats = real_batch
    model, mu, sigma = _briefly_trained(chunks)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fitted = fit_latents(model, chunks, mu, sigma, stats, steps=30)
    assert fitted.shape == mu.shape and torch.isfinite(fitted).all()
    error, start = _fit_error(model, chunks, fitted), _fit_error(model, chunks, mu)
    # on the chunks it was trained on the encoder is already close: measured 0.394 → 0.371
    assert float(error.mean()) < 0.97 * float(start.mean()), (error, start)
    assert (error <= start + 1e-3).all(), (error, start)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(fit_latents(model, chunks, mu, sigma, stats, steps=0), mu)
    # each chunk is fitted on its own: alone or in a batch, the same latent
    alone = fit_latents(model, chunks[2:3], mu[2:3], sigma[2:3], stats, steps=30)
    torch.testing.assert_close(alone, fitted[2:3], atol=1e-4, rtol=1e-4)
    # and the same input gives the same latents
    assert torch.equal(fit_latents(model, chunks, mu, sigma, stats, steps=30), fitted)


def test_magnitude_convergence_counts_bands_by_their_loudness():
    """‖P − T‖ / ‖T‖ on linear band magnitudes: 0 for the target itself, exactly 1 for twice its
    magnitude everywhere (+ln 2 on the log), per item, whatever the level of either."""
    from distill.model.loss import magnitude_convergence

    stats = ChannelStats(mean=(-6.0, 0.0), std=(3.0, 1.0))
    target = torch.randn(3, 2, 16, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(magnitude_convergence(target, target, stats), torch.zeros(3))
    doubled = target.clone()
    doubled[:, MAG] += math.log(2.0) / stats.std[MAG]
    torch.testing.assert_close(magnitude_convergence(doubled, target, stats), torch.ones(3))
    # very loud and very quiet alike: scaled by the target's peak, no overflow or underflow
    for shift in (-60.0, 60.0):
        louder = target.clone()
        louder[:, MAG] += shift
        moved = doubled.clone()
        moved[:, MAG] += shift
        torch.testing.assert_close(magnitude_convergence(moved, louder, stats), torch.ones(3))
    # a band 40 dB under the peak wrong by 6 dB costs far less than the peak wrong by 6 dB
    flat = torch.full((1, 2, 16, 20), -20.0 / stats.std[MAG])
    flat[:, MAG, 0, 0] = 0.0  # the peak, 20·ln(10)/… well above the rest
    quiet_wrong, loud_wrong = flat.clone(), flat.clone()
    quiet_wrong[:, MAG, 5, 5] += math.log(2.0) / stats.std[MAG]
    loud_wrong[:, MAG, 0, 0] += math.log(2.0) / stats.std[MAG]
    quiet = magnitude_convergence(quiet_wrong, flat, stats)
    loud = magnitude_convergence(loud_wrong, flat, stats)
    assert float(quiet) < 0.01 * float(loud), (quiet, loud)


def test_the_fit_weighs_the_bands_by_their_loudness(real_batch, monkeypatch):
    """The fit's convergence term (FIT_CONVERGENCE) brings each decoding's loud bands closer than
    the log-magnitude terms alone leave them, chunk by chunk."""
    import distill.model.grid as grid
    from distill.model.grid import fit_latents
    from distill.model.loss import magnitude_convergence

    chunks, _, stats = real_batch
    model, mu, sigma = _briefly_trained(chunks)
    assert grid.FIT_CONVERGENCE > 0
    weighed = fit_latents(model, chunks, mu, sigma, stats, steps=30)
    alone = fit_latents(model, chunks[4:5], mu[4:5], sigma[4:5], stats, steps=30)
    monkeypatch.setattr(grid, "FIT_CONVERGENCE", 0.0)
    log_only = fit_latents(model, chunks, mu, sigma, stats, steps=30)
    with torch.no_grad():
        before = magnitude_convergence(model.decode(log_only), chunks, stats)
        after = magnitude_convergence(model.decode(weighed), chunks, stats)
    assert float(after.mean()) < 0.9 * float(before.mean()), (before, after)
    assert int((after < before).sum()) >= len(after) - 1, (before, after)
    # still each chunk on its own: alone or in a batch, the same latent
    torch.testing.assert_close(alone, weighed[4:5], atol=1e-4, rtol=1e-4)


def test_batch_shares_split_every_frame_between_the_batches_over_it():
    """model.grid.batch_shares: over the batches of a grid, each frame's shares sum to 1; a batch
    that is the whole grid holds all of every frame; a middle batch holds all of its inner
    frames and part of its edges."""
    from distill.model.grid import batch_shares, chunk_count

    width, hop, n_chunks, size = 47, 5, 40, 16
    span = (n_chunks - 1) * hop + width
    total = torch.zeros(span)
    for first in range(0, n_chunks, size):
        count = min(size, n_chunks - first)
        shares = batch_shares(width, hop, count, first, first + count >= n_chunks)
        assert shares.shape == ((count - 1) * hop + width,)
        assert bool(((shares > 0) & (shares <= 1 + 1e-6)).all())
        total[first * hop : first * hop + len(shares)] += shares
    torch.testing.assert_close(total, torch.ones(span))
    whole = batch_shares(width, hop, n_chunks, 0, True)
    torch.testing.assert_close(whole, torch.ones(span))
    middle = batch_shares(width, hop, size, size, False)
    assert chunk_count(len(middle), width, hop) == size
    torch.testing.assert_close(
        middle[width : (size - 1) * hop], torch.ones((size - 1) * hop - width)
    )
    assert float(middle[0]) < 0.5 and float(middle[-1]) < 0.5


def test_fitting_chunks_together_brings_what_is_heard_closer():
    """model.grid.fit_overlapped: consecutive chunks' latents refitted together bring their
    overlap-added decoding (what resynthesis renders) closer to the frames than each chunk's own
    fit left it, on the fit's own terms; the weights are left as they were; 0 steps changes
    nothing; the same input gives the same latents."""
    from distill.generation.frames import DecodedFrames
    from distill.model.grid import fit_latents, fit_overlapped
    from distill.model.loss import frame_weights, magnitude_convergence

    sounds = [
        synth.harmonic_note(110.0, 1.2, brightness=0.8, rng=0),
        synth.snare(0.6, rng=2),
        synth.bell(660.0, 1.0, rng=4),
    ]
    audio = torch.from_numpy(np.concatenate(sounds))[None]
    spec = analyze(audio, SPECTRAL)
    stats = ChannelStats.from_sums(ChannelSums.of(spec))
    frames = stats.normalize(spec)[0]
    width, hop = SPECTRAL.chunk_frames, SPECTRAL.chunk_frames // 8
    count = (frames.shape[-1] - width) // hop + 1
    frames = frames[..., : (count - 1) * hop + width]
    chunks = frames.unfold(-1, width, hop).permute(2, 0, 1, 3).contiguous()
    model, mu, sigma = _briefly_trained(chunks)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    alone = fit_latents(model, chunks, mu, sigma, stats, steps=10)
    together = fit_overlapped(model, chunks, alone, mu, sigma, stats, hop, 0, True, steps=30)
    assert together.shape == alone.shape and torch.isfinite(together).all()

    def heard_error(latents: torch.Tensor) -> tuple[float, float]:
        heard = DecodedFrames(model, latents, hop=hop)(0, frames.shape[-1])[None]
        target = frames[None]
        loud = frame_weights(magnitude_weights(target, stats), 16.0)
        log_error = ((heard[:, MAG] - target[:, MAG]).abs() * loud).mean()
        return float(log_error), float(magnitude_convergence(heard, target, stats).sum())

    (log_alone, conv_alone), (log_together, conv_together) = (
        heard_error(alone),
        heard_error(together),
    )
    # measured: log 9.24 → 7.31, convergence 0.95 → 0.59
    assert log_together + conv_together < 0.95 * (log_alone + conv_alone), (
        (log_alone, conv_alone),
        (log_together, conv_together),
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(
        fit_overlapped(model, chunks, alone, mu, sigma, stats, hop, 0, True, 0), alone
    )
    again = fit_overlapped(model, chunks, alone, mu, sigma, stats, hop, 0, True, steps=30)
    assert torch.equal(again, together)


def test_the_fit_leaves_the_silence_past_the_end_alone(real_batch):
    """model.grid.fit_latents and fit_overlapped with `inside`: what the decoder draws past the
    signal's end (the padded silence, which a resynthesis cuts off) does not move the latents;
    without `inside` it does."""
    from distill.model.grid import fit_latents, fit_overlapped

    chunks, _, stats = real_batch
    model, mu, sigma = _briefly_trained(chunks)
    end = 30  # of 94 frames: each chunk's signal ends here, the rest is padding
    inside = (torch.arange(chunks.shape[-1]) < end).float().expand(len(chunks), -1)

    class WildPastTheEnd(torch.nn.Module):
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            decoded = model.decode(z)
            wild = torch.randn(decoded[..., end:].shape, generator=torch.Generator().manual_seed(1))
            return torch.cat([decoded[..., :end], 3.0 * wild], dim=-1)

    wild = WildPastTheEnd()

    def each_alone(decoder, inside):
        return fit_latents(decoder, chunks, mu, sigma, stats, 20, inside)

    def together(decoder, inside):  # the first chunk as a batch of one
        first = None if inside is None else inside[:1]
        return fit_overlapped(
            decoder, chunks[:1], mu[:1], mu[:1], sigma[:1], stats, 8, 0, True, 20, first
        )

    for fit in (each_alone, together):
        torch.testing.assert_close(fit(wild, inside), fit(model, inside), atol=1e-6, rtol=0)
        assert not torch.allclose(fit(wild, None), fit(model, None), atol=1e-3)

"""The 2-channel representation: shapes, value ranges, reconstruction quality, gradients."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from distill.audio import synth
from distill.spectral import ChannelStats, SpectralConfig, analyze, synthesize
from distill.spectral.inverse import (
    _hann_lobe,
    _hann_lobe_interpolated,
    mel_to_linear,
    phase_from_if,
    refine_phase,
    scattered_phase,
)
from distill.spectral.long import synthesize_long
from distill.spectral.melscale import mel_bands
from distill.spectral.normalize import ChannelSums
from distill.spectral.quality import measure
from distill.spectral.stft import istft, stft
from distill.spectral.transform import IF, MAG, decode_bands, magnitude_scale

CFG = SpectralConfig()
SR = CFG.sample_rate


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]


@pytest.fixture(scope="module")
def note() -> torch.Tensor:
    return _t(synth.harmonic_note(220.0, 1.0, brightness=0.6, rng=1))


@pytest.fixture(scope="module")
def drum() -> torch.Tensor:
    return _t(synth.snare(1.0, rng=2))


def test_chunk_shape_is_128_by_94():
    audio = torch.randn(3, CFG.chunk_samples) * 0.1
    spec = analyze(audio, CFG)
    assert spec.shape == (3, 2, 128, 94) == (3, 2, CFG.n_mels, CFG.chunk_frames)
    assert spec.dtype == torch.float32
    assert analyze(torch.zeros(1, 12_345), CFG).shape[-1] == 1 + 12_345 // CFG.hop_length


def test_value_ranges_and_silence():
    audio = torch.cat([_t(synth.sine(1000.0, 0.5)), torch.zeros(1, SR // 2)], dim=1)
    spec = analyze(audio, CFG)
    assert torch.isfinite(spec).all()
    log_floor = math.log(CFG.log_floor)
    assert float(spec[:, MAG].min()) >= log_floor - 1e-4
    assert float(spec[:, MAG].max()) <= math.log(1.5)  # a −1 dBFS sine stays below full scale
    silent_frames = spec[0, :, :, -20:]  # last 0.2 s: digital silence
    assert torch.allclose(silent_frames[MAG], torch.full_like(silent_frames[MAG], log_floor))
    assert torch.all(silent_frames[IF] == 0)  # IF masked where there is nothing to measure


@pytest.mark.parametrize("freq", [97.0, 440.0, 1234.5, 7000.0])
def test_if_channel_recovers_a_sines_frequency(freq):
    spec = analyze(_t(synth.sine(freq, 0.5)), CFG)
    bands = mel_bands(CFG)
    frame = 20
    loudest = int(spec[0, MAG, :, frame].argmax())
    band_freq = bands.center[loudest] + spec[0, IF, loudest, frame] * bands.half_width[loudest]
    hz = float(band_freq) * SR / CFG.n_fft
    assert hz == pytest.approx(freq, abs=0.5)


def test_stft_pair_is_exact_with_true_phase(note):
    rebuilt = istft(stft(note, CFG), CFG, note.shape[-1])
    assert rebuilt.shape == note.shape
    assert float((rebuilt - note).abs().max()) < 1e-5


def test_magnitude_step_alone_is_nearly_transparent(note):
    """NNLS mel → linear magnitudes with the true phase put back: the magnitude path's ceiling."""
    bands = mel_bands(CFG)
    band_mag, _ = decode_bands(analyze(note, CFG, bands), CFG, bands)
    magnitude = mel_to_linear(band_mag, bands, CFG.nnls_iterations)
    assert torch.all(magnitude >= 0)
    true = stft(note, CFG) / magnitude_scale(CFG)
    rebuilt = istft(
        torch.polar(magnitude, torch.angle(true)) * magnitude_scale(CFG), CFG, note.shape[-1]
    )
    assert measure(rebuilt, note).mrstft < 0.6


def test_magnitude_step_gradient_is_autograds_through_the_iterations(note):
    """mel_to_linear's written-out backward (training's audio term) gives the gradient autograd
    finds through the same multiplicative updates, done the plain way with the dense matrix;
    without a gradient it gives the same magnitudes in place."""
    bands = mel_bands(CFG)
    band_mag, _ = decode_bands(analyze(note, CFG, bands), CFG, bands)
    band_mag = torch.cat([band_mag, band_mag.flip(-1) * 0.3]).double()  # 2 items
    band_mag[1, 90:] = 0.0  # silent bands keep silent bins
    upstream = torch.randn(2, CFG.n_freqs, band_mag.shape[-1], dtype=torch.float64)
    weights = bands.weights.double()

    def reference(y: torch.Tensor) -> torch.Tensor:
        target = torch.einsum("mf,bmn->bfn", weights, y)
        x = target / weights.sum(dim=0).clamp(min=1e-12)[None, :, None]
        for _ in range(5):
            fitted = torch.einsum("mf,bmn->bfn", weights, torch.einsum("mf,bfn->bmn", weights, x))
            x = x * target / (fitted + 1e-12)
        return x

    grads, values = [], []
    for inverse in (lambda y: mel_to_linear(y, bands, 5), reference):
        leaf = band_mag.clone().requires_grad_(True)
        value = inverse(leaf)
        (value * upstream).sum().backward()
        grads.append(leaf.grad)
        values.append(value.detach())
    assert torch.allclose(values[0], values[1], rtol=1e-6, atol=1e-12)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7 * float(grads[1].abs().max()))
    assert float(grads[0].abs().sum()) > 0
    with torch.no_grad():
        assert torch.allclose(mel_to_linear(band_mag, bands, 5), values[1], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("sound", ["note", "drum"])
def test_round_trip_quality(sound, request):
    audio = request.getfixturevalue(sound)
    rebuilt = synthesize(analyze(audio, CFG), CFG, length=audio.shape[-1])
    assert rebuilt.shape == audio.shape  # sample-aligned, never a few ms short
    assert torch.isfinite(rebuilt).all()
    quality = measure(rebuilt, audio)
    # Bounds sit about 30 % above what the current inverse measures on these sounds, so a
    # regression in any step (magnitude, IF phase, refinement) fails here.
    limits = {"note": (0.45, 6.0), "drum": (0.9, 4.5)}[sound]
    assert quality.mrstft < limits[0], quality
    assert quality.lsd_db < limits[1], quality
    rms_in, rms_out = float(audio.square().mean().sqrt()), float(rebuilt.square().mean().sqrt())
    assert 20 * math.log10(rms_out / rms_in) == pytest.approx(0.0, abs=1.5)


def test_if_channel_beats_magnitude_alone(note):
    """Phase from the IF channel must do better than no phase information (zero phase)."""
    bands = mel_bands(CFG)
    band_mag, band_freq = decode_bands(analyze(note, CFG, bands), CFG, bands)
    true_mag = (stft(note, CFG) / magnitude_scale(CFG)).abs()
    length = note.shape[-1]

    def render(phase):
        spec_c = refine_phase(true_mag, phase, CFG, length, 0, CFG.refine_momentum)
        return istft(spec_c * magnitude_scale(CFG), CFG, length)

    with_if = measure(render(phase_from_if(band_freq, band_mag, bands, CFG)), note).mrstft
    zero = measure(render(torch.zeros_like(true_mag)), note).mrstft
    assert with_if < 0.75 * zero


def _hop_ripple(audio: np.ndarray) -> float:
    """Max / min of the mean energy at each sample position within a hop (edges left out): a
    click at every frame centre makes it large; stationary noise keeps it near 1 (≈ 2.5 for 1 s
    of white noise, whose 85 folded hops still vary)."""
    energy = np.square(audio[4096:-4096], dtype=np.float64)
    hop = CFG.hop_length
    profile = energy[: len(energy) // hop * hop].reshape(-1, hop).mean(axis=0)
    return float(profile.max() / profile.min())


def test_noise_comes_back_without_a_click_every_frame():
    """White noise through the round trip keeps an even level within each hop. With every bin of
    a wide band on its band's phase + π·k (scatter_phase off) each frame rebuilt as a click at its
    centre: a ripple of 29× (8 refinement steps) where the noise itself has 2.5×."""
    noise = _t(np.random.default_rng(3).standard_normal(SR) * 0.1)
    assert _hop_ripple(noise[0].numpy()) < 3.5
    for iterations in (0, CFG.refine_iterations):
        rebuilt = synthesize(analyze(noise, CFG), CFG, length=SR, refine_iterations=iterations)
        assert _hop_ripple(rebuilt[0].numpy()) < 4.0
    coherent = dataclasses.replace(CFG, scatter_phase=False)
    clicks = synthesize(analyze(noise, coherent), coherent, length=SR)
    assert _hop_ripple(clicks[0].numpy()) > 10.0


def test_interpolated_hann_lobe_matches_the_exact_one():
    """The table that picks each bin's band: a step off (index or scale) would move every lobe."""
    distance = torch.linspace(-3.0, 3.0, 60_001, dtype=torch.float64)  # 1e-4 bins apart
    exact = _hann_lobe(distance)
    table = _hann_lobe_interpolated(distance.clone())
    # _hann_lobe holds 0.5 within 1e-4 of d = ±1, where 1 − d² cancels: 7.5e-5 from the truth
    away = (distance.abs() - 1).abs() > 2e-4
    assert float((table - exact)[away].abs().max()) < 1e-6
    assert float((table - exact).abs().max()) < 1e-4
    for d, value in ((0.0, 1.0), (1.0, 0.5), (-1.0, 0.5), (2.0, 0.0), (2.5, 0.0), (-7.0, 0.0)):
        assert float(_hann_lobe_interpolated(torch.tensor([d]))[0]) == pytest.approx(
            value, abs=1e-6
        )
    odd = _hann_lobe_interpolated(torch.tensor([math.nan, math.inf, -math.inf]))
    assert odd.tolist() == [0.0, 0.0, 0.0]  # a diverged model's output: never past the table
    float32 = _hann_lobe_interpolated(distance.float())
    assert float32.dtype == torch.float32
    assert float((float32.double() - exact)[away].abs().max()) < 1e-5


def test_scattered_phase_is_a_function_of_bin_and_absolute_frame():
    """Overlapping segments of a long synthesis must agree on every frame they share."""
    whole = scattered_phase(CFG.n_freqs, 0, 300, torch.device("cpu"))
    assert torch.equal(whole[:, 120:], scattered_phase(CFG.n_freqs, 120, 180, torch.device("cpu")))
    assert float(whole.min()) >= 0 and float(whole.max()) < 2 * math.pi
    phasors = torch.polar(torch.ones_like(whole), whole)
    assert float(phasors.mean().abs()) < 0.01  # spread evenly round the circle
    assert float((phasors[:, 1:] * phasors[:, :-1].conj()).mean().abs()) < 0.01  # frame to frame
    assert float((phasors[1:] * phasors[:-1].conj()).mean().abs()) < 0.01  # bin to bin


def test_long_synthesis_in_segments_matches_one_pass_on_noise():
    """Segment by segment (each with its own context) gives the same noise as one pass."""
    noise = _t(np.random.default_rng(4).standard_normal(3 * SR) * 0.1)
    spec = analyze(noise, CFG)[0]
    one = synthesize_long(lambda a, b: spec[..., a:b], CFG, length=3 * SR, stats=ChannelStats())
    split = synthesize_long(
        lambda a, b: spec[..., a:b],
        CFG,
        length=3 * SR,
        stats=ChannelStats(),
        segment_frames=100,
    )
    assert _hop_ripple(split) < 4.0
    diff = 10 * math.log10(np.mean((split - one) ** 2) / np.mean(one**2))
    assert diff < -60  # the same noise (measured −220 dB); a per-segment draw measures −0.4 dB


def test_silence_round_trips_to_silence():
    rebuilt = synthesize(analyze(torch.zeros(2, SR), CFG), CFG, length=SR)
    assert float(rebuilt.abs().max()) < 1e-6


def test_identical_input_gives_identical_output(drum):
    first = synthesize(analyze(drum, CFG), CFG, length=drum.shape[-1])
    second = synthesize(analyze(drum, CFG), CFG, length=drum.shape[-1])
    assert torch.equal(first, second)


def test_batch_items_are_independent(note, drum):
    batch = torch.cat([note, drum])
    together = synthesize(analyze(batch, CFG), CFG, length=batch.shape[-1])
    alone = synthesize(analyze(drum, CFG), CFG, length=drum.shape[-1])
    assert torch.allclose(together[1], alone[0], atol=1e-5)


def test_gradient_flows_from_audio_to_both_channels(drum):
    spec = analyze(drum[:, : CFG.chunk_samples], CFG)
    stats = ChannelStats.from_sums(ChannelSums.of(spec))
    normalized = stats.normalize(spec).requires_grad_(True)
    audio = synthesize(normalized, CFG, length=CFG.chunk_samples, stats=stats)
    target = drum[:, : CFG.chunk_samples]

    def magnitude(x):  # as auraloss does: |X| with a floor, so silence has a finite gradient
        spec_c = stft(x, CFG)
        return (spec_c.real.square() + spec_c.imag.square()).clamp(min=1e-8).sqrt()

    loss = (magnitude(audio) - magnitude(target)).abs().mean()
    loss.backward()
    grad = normalized.grad
    assert torch.isfinite(grad).all()
    assert float(grad[:, MAG].abs().sum()) > 0
    assert float(grad[:, IF].abs().sum()) > 0  # the IF channel shapes the audio through the phase


def test_untrained_decoder_output_cannot_blow_up_the_inverse():
    wild = torch.randn(2, 2, CFG.n_mels, CFG.chunk_frames) * 50
    audio = synthesize(wild, CFG, length=CFG.chunk_samples)
    assert torch.isfinite(audio).all()


def test_normalization_statistics():
    torch.manual_seed(0)
    specs = [analyze(torch.randn(2, SR // 2) * s, CFG) for s in (0.01, 0.3)]
    sums = ChannelSums.of(specs[0]) + ChannelSums.of(specs[1])
    stats = ChannelStats.from_sums(sums)
    everything = torch.cat(specs)
    for ch in (MAG, IF):
        assert stats.mean[ch] == pytest.approx(float(everything[:, ch].double().mean()), rel=1e-5)
        assert stats.std[ch] == pytest.approx(float(everything[:, ch].double().std()), rel=1e-3)
    normalized = stats.normalize(everything)
    assert abs(float(normalized[:, MAG].mean())) < 1e-4
    assert float(normalized[:, IF].std()) == pytest.approx(1.0, rel=1e-3)
    assert torch.allclose(stats.denormalize(normalized), everything, atol=1e-4)
    assert ChannelStats.from_dict(stats.to_dict()) == stats
    assert ChannelSums.from_dict(sums.to_dict()) == sums


def test_config_round_trip_and_cache_key():
    cfg = SpectralConfig(n_mels=96, refine_iterations=3)
    assert SpectralConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.analysis_key() == dataclasses.replace(cfg, refine_iterations=0).analysis_key()
    assert cfg.analysis_key() != dataclasses.replace(cfg, hop_length=256).analysis_key()


def test_other_band_counts_work():
    cfg = SpectralConfig(n_mels=64)
    audio = _t(synth.pluck(330.0, 0.5, rng=3))
    spec = analyze(audio, cfg)
    assert spec.shape[2] == 64
    assert synthesize(spec, cfg, length=audio.shape[-1]).shape == audio.shape


@pytest.mark.parametrize("length", [48_000, 48_000 + 37, 24_000 - 1])
def test_block_istft_matches_torch_istft(length):
    from distill.spectral.stft import istft, stft, window

    cfg = SpectralConfig()
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(length)) * 0.1
    spec = stft(x, cfg) * torch.exp(1j * torch.rand(1, cfg.n_freqs, 1))  # not consistent
    ours = istft(spec, cfg, length)
    reference = torch.istft(
        spec, cfg.n_fft, cfg.hop_length, window=window(cfg, spec), center=True, length=length
    )
    assert ours.shape == reference.shape == (2, length)
    assert torch.allclose(ours, reference, atol=1e-6 * reference.abs().max())
    assert torch.allclose(istft(stft(x, cfg), cfg, length), x, atol=1e-5)  # perfect reconstruction


@pytest.mark.parametrize("length", [48_000, 48_000 + 37, 24_000 - 1])
def test_block_istft_gradient_is_torch_istfts(length):
    """The block inverse's hand-written backward (training's audio term) gives torch.istft's
    gradient: through the crop, the envelope, the overlap-add and the one-sided inverse FFT."""
    from distill.spectral.stft import istft, window

    cfg = SpectralConfig()
    generator = torch.Generator().manual_seed(length)
    frames = 1 + length // cfg.hop_length
    spec = torch.randn(2, cfg.n_freqs, frames, dtype=torch.complex128, generator=generator)
    upstream = torch.randn(2, length, dtype=torch.float64, generator=generator)
    grads = []
    for inverse in (
        lambda s: istft(s, cfg, length),
        lambda s: torch.istft(
            s, cfg.n_fft, cfg.hop_length, window=window(cfg, s), center=True, length=length
        ),
    ):
        leaf = spec.clone().requires_grad_(True)
        (inverse(leaf) * upstream).sum().backward()
        grads.append(leaf.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-9 * float(grads[1].abs().max()))

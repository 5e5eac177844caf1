"""Generation core: overlap-added chunks and events, long synthesis, resynthesis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.audio import synth
from distill.errors import UserError
from distill.generation.frames import DecodedFrames, chunk_count, chunk_hop, chunk_weights
from distill.generation.generate import GenerationParams
from distill.generation.layout import Event, EventFrames
from distill.generation.loaded import open_model_file
from distill.generation.resynth import resynthesize
from distill.model.file import load_model_file
from distill.spectral import ChannelStats, SpectralConfig, analyze, synthesize
from distill.spectral.long import synthesize_long
from distill.spectral.transform import IF, MAG


@pytest.fixture(scope="module")
def loaded(tiny_model):
    model, meta = load_model_file(tiny_model.model_file)
    meta.path = tiny_model.model_file  # where generate() opens it again
    return model, meta


def generate(loaded, **params) -> np.ndarray:
    """A texture take of the tiny model at its raw level (what these tests measure)."""
    _model, meta = loaded
    take = open_model_file(meta.path)
    return take.render(GenerationParams(**({"mode": "texture", "level": "raw"} | params)))


# -- chunks and frames ----------------------------------------------------------------------


def test_chunk_weights_sum_to_one_at_half_overlap():
    # exactly 1 for an even width; an odd width (hop = width // 2) ripples by ≤ 3.4 %, which the
    # division by the weight sum in DecodedFrames removes
    for width in (47, 94):
        hop = chunk_hop(width)
        w = chunk_weights(width)
        total = torch.zeros(hop * 10 + width)
        for c in range(11):
            total[c * hop : c * hop + width] += w
        middle = total[width : hop * 10]
        assert torch.allclose(middle, torch.ones_like(middle), atol=0.035), width


def test_every_frame_is_covered_and_a_lone_chunk_is_returned_unchanged(loaded):
    model, _ = loaded
    width = model.config.frames
    hop = chunk_hop(width)
    for n_frames in (1, width - 1, width, width + 1, 5 * width + 7):
        n = chunk_count(n_frames, width, hop)
        assert (n - 1) * hop + width >= n_frames > (n - 2) * hop + width or n == 1
    z = torch.randn(3, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    frames = DecodedFrames(model, z)
    with torch.no_grad():
        alone = model.decode(z[:1])[0]
    # frames [0, hop) lie under chunk 0 only
    assert torch.allclose(frames(0, hop), alone[..., :hop], atol=1e-5)
    # frames asked for in increasing, overlapping segments agree with one request
    whole = DecodedFrames(model, z)(0, 2 * hop + width)
    parts = torch.cat([frames(hop, 2 * hop), frames(2 * hop, 2 * hop + width)], dim=-1)
    assert torch.allclose(whole[..., hop:], parts, atol=1e-5)


# -- long synthesis -------------------------------------------------------------------------


def test_segmented_synthesis_matches_one_inverse_over_the_whole_signal():
    cfg = SpectralConfig()
    audio = np.concatenate(
        [synth.bell(330, 2.0), synth.pluck(220, 1.5, rng=1), synth.snare(0.5, rng=2)]
    )
    x = torch.from_numpy(audio.astype(np.float32))[None]
    spec = analyze(x, cfg)
    whole = synthesize(spec, cfg, length=x.shape[-1])[0].numpy()
    stats = ChannelStats()  # identity: the frames are already unnormalized
    pieces = synthesize_long(
        lambda a, b: spec[0, :, :, a:b], cfg, length=x.shape[-1], stats=stats, segment_frames=64
    )
    assert pieces.shape == whole.shape and pieces.dtype == np.float32
    snr = 10 * np.log10(np.sum(whole**2) / np.sum((pieces - whole) ** 2))
    assert snr > 80, snr


# -- generation -----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.5, 1.337, 4.0])
def test_generated_audio_has_the_exact_length_and_is_finite(loaded, seconds):
    audio = generate(loaded, duration=seconds, seed=1)
    assert audio.shape == (round(seconds * 48_000),) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-4  # not silence


def test_same_seed_same_samples_other_seed_other_samples(loaded):
    a = generate(loaded, duration=3.0, seed=11, variation=0.8)
    b = generate(loaded, duration=3.0, seed=11, variation=0.8)
    c = generate(loaded, duration=3.0, seed=12, variation=0.8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_parameters_are_user_errors(loaded):
    for params in (dict(duration=0.1), dict(duration=601), dict(variation=1.5), dict(seed=-1)):
        with pytest.raises(UserError):
            generate(loaded, **params)


def click_scores(audio: np.ndarray, positions: list[int], half: int = 2) -> np.ndarray:
    """Each position's largest sample-to-sample jump within ±half samples, over the typical
    (median) jump in the 2 048 samples around it: ~1–3 for smooth audio, ≫ 10 at a click."""
    jumps = np.abs(np.diff(audio))
    scores = []
    for p in positions:
        local = jumps[max(0, p - 1024) : p + 1024]
        scores.append(jumps[p - half : p + half].max() / (np.median(local) + 1e-9))
    return np.array(scores)


def spectral_flux(audio: np.ndarray, hop: int = 256) -> np.ndarray:
    """Positive log-magnitude change per 512-sample frame (hop 256), one value per frame."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, 512)[::hop] * np.hanning(512)
    mag = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-6)
    return np.maximum(np.diff(mag, axis=0), 0).mean(axis=1)


class ToneDecoder(torch.nn.Module):
    """A stand-in decoder with a known, click-free answer: latent z → a steady sine whose pitch
    is 440 · 2^(z₀/4) Hz, as the representation of its middle W frames. Generation along a
    wandering path must give a gliding tone with no click anywhere."""

    def __init__(self, cfg: SpectralConfig, latent_dim: int = 4) -> None:
        super().__init__()
        self.cfg = cfg
        frames = cfg.chunk_frames
        self.config = type(
            "Config", (), dict(frames=frames, n_mels=cfg.n_mels, latent_dim=latent_dim)
        )()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        w, hop, rate = self.config.frames, self.cfg.hop_length, self.cfg.sample_rate
        t = torch.arange((w + 8) * hop) / rate
        specs = []
        for row in z:
            freq = 440.0 * 2 ** (float(row[0]).__round__(6) / 4)
            sine = (0.5 * torch.sin(2 * torch.pi * freq * t))[None].float()
            specs.append(analyze(sine, self.cfg)[0, :, :, 4 : 4 + w])  # away from the edges
        return torch.stack(specs)


def chunk_edges(n_samples: int, width: int, cfg: SpectralConfig) -> list[int]:
    hop = chunk_hop(width)
    n_chunks = chunk_count(cfg.frames_for(n_samples), width, hop)
    edges = {e * cfg.hop_length for c in range(n_chunks) for e in (c * hop, c * hop + width)}
    return sorted(e for e in edges if 1024 < e < n_samples - 1024)


def test_no_clicks_at_chunk_or_segment_boundaries_of_a_gliding_tone():
    """Measured at every chunk edge and every segment edge: the sample-to-sample jump and the
    spectral flux there are no larger than elsewhere. The same measures flag the clicks of the
    naive way (each chunk inverted on its own and the pieces butted together)."""
    cfg = SpectralConfig(chunk_seconds=0.5)
    decoder = ToneDecoder(cfg)
    stats = ChannelStats()  # the stand-in returns unnormalized frames
    length = 6 * cfg.sample_rate
    n_chunks = chunk_count(
        cfg.frames_for(length), decoder.config.frames, chunk_hop(decoder.config.frames)
    )
    # a pitch gliding up and down by ±4 semitones over the take, one latent per chunk
    glide = 4 * torch.sin(torch.linspace(0, 3 * torch.pi, n_chunks))
    latents = torch.stack([glide, *torch.zeros(3, n_chunks)], dim=1)
    events = EventFrames([Event(0, 0, latents)], [decoder], [stats], cfg)
    audio = synthesize_long(
        events, cfg, length=length, stats=stats, segment_frames=100
    )  # segment edges every 1.07 s too
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.1
    edges = chunk_edges(length, decoder.config.frames, cfg)
    edges += [k * 100 * cfg.hop_length for k in range(1, 6)]
    elsewhere = list(range(1024 + 97, length - 1024, 331))
    at_edges, away = click_scores(audio, edges), click_scores(audio, elsewhere)
    assert at_edges.max() < 1.2 * away.max() and at_edges.max() < 4, (at_edges.max(), away.max())
    flux = spectral_flux(audio)

    def flux_near(positions: list[int]) -> np.ndarray:
        return np.array([flux[p // 256 - 2 : p // 256 + 2].max() for p in positions])

    edge_flux, away_flux = flux_near(edges), flux_near(elsewhere)
    assert edge_flux.max() <= 1.2 * away_flux.max(), (edge_flux.max(), away_flux.max())
    assert np.median(edge_flux) <= 1.3 * np.median(away_flux)

    # the naive way: each chunk inverted alone, butted together: the detector must see it
    width = decoder.config.frames
    with torch.no_grad():
        pieces = [
            synthesize(decoder.decode(z[None]), cfg, length=(width - 1) * cfg.hop_length)[0]
            for z in latents[::2]
        ]
    naive = torch.cat(pieces).numpy()
    seams = [k * len(pieces[0]) for k in range(1, len(pieces))]
    seams = [s for s in seams if s < len(naive) - 1024]
    naive_scores = click_scores(naive, seams)
    assert np.median(naive_scores) > 4 * np.median(at_edges), (naive_scores, at_edges)
    naive_flux = np.array([spectral_flux(naive)[s // 256 - 2 : s // 256 + 2].max() for s in seams])
    assert np.median(naive_flux) > 1.5 * np.median(edge_flux), (naive_flux, edge_flux)


# -- resynthesis ----------------------------------------------------------------------------


def test_resynthesis_keeps_length_and_timing(loaded):
    rng = np.random.default_rng(0)
    # clicks of a pluck every 0.37 s: their onsets must come back where they were
    audio = np.zeros(int(2.3 * 48_000), dtype=np.float32)
    onsets = [int(s * 48_000) for s in (0.2, 0.57, 0.94, 1.31, 1.68)]
    for o in onsets:
        note = synth.pluck(330, 0.3, rng=rng)
        audio[o : o + len(note)] += note[: len(audio) - o]
    model, meta = loaded
    out = resynthesize(model, torch.from_numpy(audio), meta.stats, meta.spectral).numpy()
    assert out.shape == audio.shape and np.isfinite(out).all()
    # The tiny model hears no onsets (its output is a flat −40 dB): the grid's bookkeeping is
    # checked through a model that decodes what it encodes, whose resynthesis is the round trip.
    cfg = meta.spectral
    through = resynthesize(IdentityVAE(cfg), torch.from_numpy(audio), meta.stats, cfg).numpy()
    env_in = np.convolve(np.abs(audio), np.ones(256) / 256, mode="same")
    env_out = np.convolve(np.abs(through), np.ones(256) / 256, mode="same")
    lags = np.arange(-2048, 2049, 16)
    corr = [np.dot(env_in, np.roll(env_out, lag)) for lag in lags]
    # a chunk placed one hop off (11 frames at least) would be ≥ 5 000 samples off
    assert abs(lags[int(np.argmax(corr))]) <= 64


class IdentityVAE(torch.nn.Module):
    """A stand-in whose latent is the chunk itself: resynthesis through it must give back the
    representation's own round trip, sample for sample in place."""

    def __init__(self, cfg: SpectralConfig) -> None:
        super().__init__()
        self.shape = (2, cfg.n_mels, cfg.chunk_frames)
        self.config = type("Config", (), dict(frames=cfg.chunk_frames, n_mels=cfg.n_mels))()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return spec.flatten(1), torch.zeros_like(spec.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(-1, *self.shape)


def test_resynthesis_through_an_identity_model_is_the_representation_round_trip():
    """The grid, its weights and the one inverse over the file lose nothing. Without the fit: the
    identity's "latents" are the frames themselves, there is nothing to fit."""
    cfg = SpectralConfig(chunk_seconds=0.5)
    audio = np.concatenate([synth.pluck(196, 0.7, rng=3), synth.bell(523, 1.1), synth.kick(0.4)])
    x = torch.from_numpy(audio.astype(np.float32))
    stats = ChannelStats(mean=(-9.0, 0.1), std=(4.0, 0.5))
    out = resynthesize(IdentityVAE(cfg), x, stats, cfg, fit_steps=0).numpy()
    plain = synthesize(analyze(x[None], cfg), cfg, length=len(x))[0].numpy()
    assert out.shape == plain.shape == audio.shape
    snr = 10 * np.log10(np.sum(plain**2) / np.sum((out - plain) ** 2))
    assert snr > 60, snr


def test_resynthesis_fits_and_decodes_eight_chunks_over_every_frame(loaded, monkeypatch):
    """Resynthesis's own grid (W // 8), not generation's (W // 2): each frame is the weighted
    mean of 8 fitted chunks (held-out notes 0.989 → 0.963, BENCHMARKS.md)."""
    import distill.generation.resynth as resynth_module
    from distill.model.grid import chunk_count

    model, meta = loaded
    seen = {}
    real_encode, real_frames = resynth_module.encode_grid, resynth_module.DecodedFrames

    def encode(*args, **kwargs):
        seen["encode_hop"] = kwargs.get("hop")
        mu, sigma = real_encode(*args, **kwargs)
        seen["chunks"] = len(mu)
        return mu, sigma

    def frames(model, latents, **kwargs):
        seen["decode_hop"] = kwargs.get("hop")
        return real_frames(model, latents, **kwargs)

    monkeypatch.setattr(resynth_module, "encode_grid", encode)
    monkeypatch.setattr(resynth_module, "DecodedFrames", frames)
    audio = torch.from_numpy(synth.bell(440, 2.0))
    out = resynthesize(model, audio, meta.stats, meta.spectral)
    width = model.config.frames
    hop = resynth_module.resynthesis_hop(width)
    assert hop == width // 8 and seen["encode_hop"] == seen["decode_hop"] == hop
    n_frames = meta.spectral.frames_for(len(audio))
    assert (
        seen["chunks"]
        == chunk_count(n_frames, width, hop)
        > 4 * chunk_count(n_frames, width, width // 2) - 4
    )
    assert out.shape == audio.shape and torch.isfinite(out).all()


def test_streamed_and_whole_resynthesis_fit_the_same_latents(loaded):
    """`distill resynth` streams the input (model.grid.encode_stream); the Python API and the
    page hold it whole (encode_grid): the same fitted latents, whatever the segments."""
    from distill.generation.resynth import resynthesis_hop
    from distill.model.grid import encode_grid, encode_stream

    model, meta = loaded
    spectral, stats = meta.spectral, meta.stats
    audio = torch.from_numpy(np.concatenate([synth.pluck(196, 0.7, rng=3), synth.kick(0.6)]))
    spec = stats.normalize(analyze(audio[None], spectral))
    hop = resynthesis_hop(model.config.frames)
    whole, _ = encode_grid(model, spec, stats, spectral, hop=hop)
    streamed, _ = encode_stream(model, torch.split(spec[0], 37, dim=-1), stats, spectral, hop=hop)
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-5)
    unfitted, _ = encode_grid(model, spec, stats, spectral, hop=hop, fit_steps=0)
    assert not torch.allclose(unfitted, whole, atol=1e-3)


@pytest.mark.parametrize("seconds", [2.5, 3.0])
def test_streamed_and_whole_resynthesis_fit_chunks_together_alike(loaded, seconds):
    """The fit of consecutive chunks together (model.grid.fit_overlapped) runs on batches of
    ENCODE_BATCH chunks, each knowing its place on the grid and where the signal ends: streamed or
    whole, the same latents, over several batches, whether the last batch is partial and its
    last chunk reaches past the end (2.5 s: 39 chunks) or the batches and the chunks fit the
    signal exactly (3.0 s: 48 chunks). The silence past the end is not fitted."""
    from distill.generation.resynth import resynthesis_hop
    from distill.model.grid import ENCODE_BATCH, chunk_count, encode_grid, encode_stream

    model, meta = loaded
    spectral, stats = meta.spectral, meta.stats
    audio = synth.harmonic_note(220.0, seconds, brightness=0.6, rng=1)
    spec = stats.normalize(analyze(torch.from_numpy(audio)[None], spectral))
    width, hop = model.config.frames, resynthesis_hop(model.config.frames)
    n_chunks = chunk_count(spec.shape[-1], width, hop)
    padding = (n_chunks - 1) * hop + width - spec.shape[-1]
    assert n_chunks > 2 * ENCODE_BATCH
    assert (n_chunks % ENCODE_BATCH > 0, padding > 0) == (
        (True, True) if seconds == 2.5 else (False, False)
    )
    steps = dict(fit_steps=5, overlap_steps=10, fit_padding=False)  # as resynthesis fits
    whole, _ = encode_grid(model, spec, stats, spectral, hop=hop, **steps)
    streamed, _ = encode_stream(
        model, torch.split(spec[0], 41, dim=-1), stats, spectral, hop=hop, **steps
    )
    assert len(whole) == n_chunks
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-5)
    alone, _ = encode_grid(model, spec, stats, spectral, hop=hop, fit_steps=5, fit_padding=False)
    assert not torch.allclose(alone, whole, atol=1e-4)
    steps["fit_padding"] = True
    with_padding, _ = encode_grid(model, spec, stats, spectral, hop=hop, **steps)
    assert torch.equal(with_padding, whole) == (padding == 0)


def test_resynthesis_offset_moves_the_latent(loaded):
    model, meta = loaded
    audio = torch.from_numpy(synth.bell(440, 1.2))
    plain = resynthesize(model, audio, meta.stats, meta.spectral)
    moved = resynthesize(model, audio, meta.stats, meta.spectral, offset=torch.full((8,), 2.0))
    assert plain.shape == moved.shape == audio.shape
    assert not torch.allclose(plain, moved)


def test_channel_indices_are_what_the_generation_assumes():
    assert (MAG, IF) == (0, 1)


def test_blend_is_deterministic_and_lies_between_its_models(tiny_model, tiny_model_b):
    from distill.generation.generate import BlendVoice
    from distill.generation.loaded import load

    a = load("tiny", home=tiny_model.home)
    b = load("tiny-b", home=tiny_model.home)

    def spectrum(audio: np.ndarray) -> np.ndarray:
        return np.log(np.abs(np.fft.rfft(audio)) + 1e-6)

    alone = a.generate(2.0, seed=9, mode="texture")
    one, half = (BlendVoice(b.model_id, 1.0),), (BlendVoice(b.model_id, 50.0),)
    mostly_a = a.render(a.params(2.0, seed=9, blend=one, mode="texture"), [b])
    half = a.render(a.params(2.0, seed=9, blend=half, mode="texture"), [b])
    again = a.render(
        a.params(2.0, seed=9, blend=(BlendVoice(b.model_id, 50.0),), mode="texture"), [b]
    )
    assert np.array_equal(half, again) and np.isfinite(half).all()
    near = np.abs(spectrum(mostly_a) - spectrum(alone)).mean()
    far = np.abs(spectrum(half) - spectrum(alone)).mean()
    assert near < 0.5 * far, (near, far)


def test_models_with_different_representations_cannot_blend():
    from distill.generation.blend import check_compatible

    check_compatible(
        [SpectralConfig(), SpectralConfig(chunk_seconds=0.5)]
    )  # chunk length may differ
    with pytest.raises(UserError, match="sample_rate"):
        check_compatible([SpectralConfig(), SpectralConfig(sample_rate=44_100)])


def test_bf16_decoding_stays_close_to_fp32(loaded):
    model, _ = loaded
    z = torch.randn(3, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    stop = 2 * chunk_hop(model.config.frames) + model.config.frames  # what 3 chunks cover
    full = DecodedFrames(model, z)(0, stop)
    half = DecodedFrames(model, z, precision="bf16")(0, stop)
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert (half - full).abs().max() < 0.05 * full.abs().max()

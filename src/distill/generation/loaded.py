"""A model ready to play: the object `distill.load` returns to scripts, the CLI and the UI.

model = distill.load("rain")                      # a library name, id prefix or .distill path
audio = model.generate(30, seed=7, sliders={"brightness": 4}, variation=0.3)   # (T,) 48 kHz
kick = model.generate(seed=3, mode="oneshot", like="my-kick.wav")  # a new kick like that one
again = model.resynth(my_audio, rate=44_100, sliders={"warmth": -2})
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill.controls.corpus import CorpusMemory
from distill.controls.sliders import Controls
from distill.errors import UserError
from distill.generation.defaults import DEFAULT_DENSITY, DEFAULT_LEVEL, DEFAULT_VARIATION
from distill.generation.generate import BlendVoice, GenerationParams, Voice, generate_audio
from distill.generation.resynth import resynthesize
from distill.generation.sampling import Base, LatentSampler, prior_corpus
from distill.generation.spatial import SpatialOptions
from distill.model.file import ModelMetadata, load_model_file
from distill.model.vae import ConvVAE, parameter_count

Sliders = Mapping[str, float] | Mapping[int, float] | Sequence[str] | None


@dataclass
class LoadedModel:
    model: ConvVAE
    metadata: ModelMetadata
    path: Path  # the .distill file it came from
    model_id: str | None = None  # its library id, when it came from the library

    @property
    def name(self) -> str:
        return str(self.metadata.info.get("name") or self.path.stem)

    @property
    def sample_rate(self) -> int:
        return self.metadata.spectral.sample_rate

    @property
    def controls(self) -> Controls | None:
        data = self.metadata.controls
        return Controls.from_dict(data) if data else None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def slider_values(self, sliders: Sliders) -> dict[int, float]:
        """Labels or 1-based numbers ("brightness=4", {"warmth": -2}, {1: 3}) → {0-based: value}.

        Integer keys of a mapping are 0-based indices (the Python API's convention); strings are
        what people type: labels or 1-based numbers.
        """
        if not sliders:
            return {}
        controls = self.controls
        if controls is None or not len(controls):
            raise UserError(
                f"model {self.name!r} has no sliders (its latent analysis is missing): "
                "generate without --slider"
            )
        if isinstance(sliders, Mapping) and all(isinstance(k, int) for k in sliders):
            return controls.resolve({str(k + 1): v for k, v in sliders.items()})
        return controls.resolve(sliders)  # type: ignore[arg-type]

    def center_and_spread(self, values: Mapping[int, float]) -> tuple[torch.Tensor, torch.Tensor]:
        """The slider point and how far `variation` may wander around it, per latent dimension."""
        dim = self.model.config.latent_dim
        controls = self.controls
        if controls is None:  # no analysis: the prior N(0, I) is all we know
            return torch.zeros(dim), torch.ones(dim)
        return controls.latent(values), controls.spread()

    def slider_offset(self, values: Mapping[int, float]) -> torch.Tensor | None:
        """(D,) how far the sliders move a latent from wherever it is; None when all are 0."""
        if not any(values.values()):
            return None
        center, _ = self.center_and_spread(values)
        return center - self.center_and_spread({})[0]

    @functools.cached_property
    def precision(self) -> str:
        """The precision every voice decodes in: bf16 only where the hardware has it and the model
        is wide enough to gain from it (training.device.pick_precision)."""
        from distill.training.device import pick_precision

        return pick_precision("auto", self.device, parameter_count(self.model.config))

    @functools.cached_property
    def corpus(self) -> CorpusMemory:
        """What generation samples from: the corpus memory, or for model files written before
        it existed, a stand-in at the sliders' mean (see sampling.prior_corpus)."""
        meta = self.metadata
        if meta.corpus and meta.corpus_tensors:
            try:
                return CorpusMemory.from_stored(meta.corpus, meta.corpus_tensors)
            except (KeyError, TypeError, ValueError) as err:
                raise UserError(
                    f"model {self.name!r} has a damaged corpus memory ({err}): run "
                    f"`distill model analyze {self.name} DATA_DIR` to rebuild it"
                ) from err
        return prior_corpus(*self.center_and_spread({}))

    def encode_like(self, path: str | Path) -> Base:
        """A recording to make variations of: its chunks' μ and σ (its first 30 s)."""
        from distill.audio.read import AudioReadError
        from distill.controls.corpus import read_head
        from distill.model.grid import encode_grid
        from distill.spectral.transform import analyze

        try:
            audio = read_head(Path(path), self.sample_rate)
        except (AudioReadError, OSError) as err:
            raise UserError(f"--like: {err}") from err
        if not len(audio) or not np.isfinite(audio).all() or not np.any(audio):
            raise UserError(f"--like: {Path(path).name} is silent or empty: choose a sound")
        meta = self.metadata
        spec = meta.stats.normalize(analyze(torch.from_numpy(audio)[None], meta.spectral))
        self.model.eval()
        mu, sigma = encode_grid(self.model, spec.to(self.device), meta.stats, meta.spectral)
        return Base(mu.cpu(), sigma.cpu())

    def generate(
        self,
        duration: float | None = None,
        *,
        seed: int = 0,
        sliders: Sliders = None,
        variation: float = DEFAULT_VARIATION,
        spatial: SpatialOptions | None = None,
        blend: Sequence[tuple[LoadedModel, float, Sliders]] = (),
        mode: str | None = None,
        density: float = DEFAULT_DENSITY,
        level: str = DEFAULT_LEVEL,
        like: str | Path | None = None,
    ) -> np.ndarray:
        """(T,) float32 audio at `sample_rate`, or (2, T) for stereo/binaural `spatial`.

        `duration` None: the model's typical length (a one-shot: its natural decay). `mode`
        None: the model's own ("oneshot" or "texture"). `like`: a recording to vary.
        `blend`: up to 3 other models as (model, weight in percent, its sliders).
        """
        voices = [
            BlendVoice(
                model=str(other.model_id or other.path),
                weight=float(weight),
                sliders=other.slider_values(other_sliders),
            )
            for other, weight, other_sliders in blend
        ]
        params = self.params(
            duration,
            seed=seed,
            sliders=sliders,
            variation=variation,
            spatial=spatial,
            blend=tuple(voices),
            mode=mode,
            density=density,
            level=level,
            like=like,
        )
        return self.render(params, [other for other, _, _ in blend])

    def params(
        self,
        duration: float | None = None,
        *,
        seed: int = 0,
        sliders: Sliders = None,
        variation: float = DEFAULT_VARIATION,
        spatial: SpatialOptions | None = None,
        blend: tuple[BlendVoice, ...] = (),
        mode: str | None = None,
        density: float = DEFAULT_DENSITY,
        level: str = DEFAULT_LEVEL,
        like: str | Path | None = None,
    ) -> GenerationParams:
        like_path = like_sha = None
        if like is not None:
            like_path = str(Path(like).expanduser().resolve())
            if not Path(like_path).is_file():
                raise UserError(f"--like: {like} not found: give the recording to vary")
            like_sha = _file_sha256(Path(like_path))
        params = GenerationParams(
            duration=None if duration is None else float(duration),
            seed=int(seed),
            sliders=self.slider_values(sliders),
            variation=float(variation),
            spatial=spatial or SpatialOptions(),
            blend=blend,
            mode=mode,
            density=float(density),
            level=level,
            like=like_path,
            like_sha256=like_sha,
        )
        params.validate()
        return params

    def voice(
        self,
        sliders: Mapping[int, float],
        weight: float = 1.0,
        *,
        variation: float = DEFAULT_VARIATION,
        like: Base | None = None,
    ) -> Voice:
        _, spread = self.center_and_spread({})
        sampler = LatentSampler(
            self.corpus,
            spread,
            variation=variation,
            offset=self.slider_offset(sliders),
            like=like,
        )
        meta = self.metadata
        return Voice(self.model, meta.spectral, meta.stats, sampler, spread, weight, self.precision)

    def render(
        self, params: GenerationParams, blend_models: Sequence[LoadedModel] = ()
    ) -> np.ndarray:
        """The audio of `params`; `blend_models` are params.blend's models, loaded, in order."""
        if len(blend_models) != len(params.blend):
            raise ValueError("one loaded model per blend voice is needed")
        like = None
        if params.like is not None:
            path = Path(params.like)
            if not path.is_file():
                raise UserError(f"--like: {path} not found: give the recording to vary")
            if params.like_sha256 and _file_sha256(path) != params.like_sha256:
                raise UserError(
                    f"--like: {path.name} has changed since this take was made, so it cannot "
                    "be rendered again exactly"
                )
            like = self.encode_like(path)
        voices = [
            self.voice(params.sliders, params.main_weight, variation=params.variation, like=like)
        ]
        for other, part in zip(blend_models, params.blend, strict=True):
            if other.path.resolve() == self.path.resolve():
                raise UserError(f"{self.name} is blended with itself: blend different models")
            voices.append(
                other.voice(part.sliders, part.weight / 100.0, variation=params.variation)
            )
        return generate_audio(voices, params)

    def resynth(
        self, audio: np.ndarray, rate: int | None = None, *, sliders: Sliders = None
    ) -> np.ndarray:
        """Mono audio (T,) at `rate` (default: the model's) → the model's version at the
        model's rate, as long as the input (resampled)."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if rate and rate != self.sample_rate:
            import soxr

            audio = soxr.resample(audio, rate, self.sample_rate, quality="HQ").astype(np.float32)
        offset = self.slider_offset(self.slider_values(sliders))
        meta = self.metadata
        out = resynthesize(self.model, audio, meta.stats, meta.spectral, offset=offset)
        return out.numpy()


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise UserError(f"--like: cannot read {path} ({err.strerror})") from err
    return digest.hexdigest()


def open_model_file(path: Path, device: str = "cpu", model_id: str | None = None) -> LoadedModel:
    from distill.training.device import pick_device

    model, metadata = load_model_file(Path(path), device=pick_device(device))
    return LoadedModel(model=model, metadata=metadata, path=Path(path), model_id=model_id)


def load(ref: str | Path, *, home: str | Path | None = None, device: str = "auto") -> LoadedModel:
    """A model by library name, id prefix, or the path of a `.distill` file."""
    from distill.home import resolve_home
    from distill.library.store import Library

    entry = Library(resolve_home(home)).resolve(str(ref))
    return open_model_file(entry.path, device=device, model_id=entry.id)

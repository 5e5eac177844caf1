"""A model ready to play: the object `distill.load` returns to scripts, the CLI and the UI.

model = distill.load("rain")                      # a library name, id prefix or .distill path
audio = model.generate(30, seed=7, sliders={"brightness": 4}, variation=0.3)   # (T,) 48 kHz
again = model.resynth(my_audio, rate=44_100, sliders={"warmth": -2})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill.controls.sliders import Controls
from distill.errors import UserError
from distill.generation.generate import BlendVoice, GenerationParams, Voice, generate_audio
from distill.generation.resynth import resynthesize
from distill.generation.spatial import SpatialOptions
from distill.library.model_file import ModelMetadata, load_model_file
from distill.model.vae import ConvVAE

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

    def generate(
        self,
        duration: float = 10.0,
        *,
        seed: int = 0,
        sliders: Sliders = None,
        variation: float = 0.5,
        spatial: SpatialOptions | None = None,
        blend: Sequence[tuple[LoadedModel, float, Sliders]] = (),
    ) -> np.ndarray:
        """(T,) float32 audio at `sample_rate`, or (2, T) for stereo/binaural `spatial`.

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
        )
        return self.render(params, [other for other, _, _ in blend])

    def params(
        self,
        duration: float,
        *,
        seed: int = 0,
        sliders: Sliders = None,
        variation: float = 0.5,
        spatial: SpatialOptions | None = None,
        blend: tuple[BlendVoice, ...] = (),
    ) -> GenerationParams:
        params = GenerationParams(
            duration=float(duration),
            seed=int(seed),
            sliders=self.slider_values(sliders),
            variation=float(variation),
            spatial=spatial or SpatialOptions(),
            blend=blend,
        )
        params.validate()
        return params

    def voice(self, sliders: Mapping[int, float], weight: float = 1.0) -> Voice:
        from distill.training.device import pick_precision

        center, spread = self.center_and_spread(sliders)
        meta = self.metadata
        precision = pick_precision("auto", self.device)  # bf16 only where the hardware has it
        return Voice(self.model, meta.spectral, meta.stats, center, spread, weight, precision)

    def render(
        self, params: GenerationParams, blend_models: Sequence[LoadedModel] = ()
    ) -> np.ndarray:
        """The audio of `params`; `blend_models` are params.blend's models, loaded, in order."""
        if len(blend_models) != len(params.blend):
            raise ValueError("one loaded model per blend voice is needed")
        voices = [self.voice(params.sliders, params.main_weight)]
        for other, part in zip(blend_models, params.blend, strict=True):
            if other.path.resolve() == self.path.resolve():
                raise UserError(f"{self.name} is blended with itself: blend different models")
            voices.append(other.voice(part.sliders, part.weight / 100.0))
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
        values = self.slider_values(sliders)
        offset = None
        if values:
            center, _ = self.center_and_spread(values)
            offset = center - self.center_and_spread({})[0]
        meta = self.metadata
        out = resynthesize(self.model, audio, meta.stats, meta.spectral, offset=offset)
        return out.numpy()


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

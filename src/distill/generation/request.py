"""One way from what a user asked for to validated generation parameters: the CLI and the web page
both describe a take as a `Request` (model references, slider settings as typed, a preset, blend
voices, spatial flags) and `prepare` resolves it: each model is loaded once, the preset applied
(its stale labels reported), sliders resolved by label, blend voices and spatial options validated,
and every default taken from defaults.py. Scripts holding loaded models call
`LoadedModel.generate`/`params`, the same validation underneath.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distill.errors import UserError
from distill.generation.defaults import DEFAULT_DENSITY, DEFAULT_LEVEL, DEFAULT_VARIATION
from distill.generation.generate import BlendVoice, GenerationParams
from distill.generation.loaded import LoadedModel, load
from distill.generation.spatial import SpatialOptions

SEED_RANGE = 2**31  # a random seed is drawn below this (exact in a browser's numbers too)
SliderSettings = Sequence[str] | Mapping[str, float]


@dataclass(frozen=True)
class BlendSpec:
    """Another model in the mix, as a user names it."""

    model: str  # library name, id (prefix) or .distill path
    weight: float  # percent
    sliders: SliderSettings | str = ()  # "name=v,name=v", ["name=v"], {"name": v} or "@preset"

    @classmethod
    def parse(cls, text: str) -> BlendSpec:
        """`MODEL:PERCENT[:SLIDERS]` as the CLI's --blend takes it."""
        parts = text.split(":", 2)
        try:
            ref, weight = parts[0].strip(), float(parts[1])
        except (IndexError, ValueError):
            raise UserError(
                f"--blend {text!r}: write MODEL:PERCENT, e.g. --blend rain:30 (or rain:30:warmth=2)"
            ) from None
        if not ref:
            raise UserError(f"--blend {text!r}: the model name is missing")
        if not weight > 0:
            raise UserError(f"--blend {text!r}: the weight must be more than 0 %")
        return cls(ref, weight, parts[2].strip() if len(parts) > 2 else "")


@dataclass(frozen=True)
class Request:
    model: str
    duration: float | None = None  # None: the model's typical length
    seed: int | None = None  # None: a random one
    sliders: SliderSettings = ()
    preset: str | None = None  # a saved preset of `model`; `sliders` override it
    variation: float | None = None  # None: the preset's, else DEFAULT_VARIATION
    mode: str | None = None
    density: float = DEFAULT_DENSITY
    level: str = DEFAULT_LEVEL
    like: Path | None = None
    blend: tuple[BlendSpec, ...] = ()
    spatial: Mapping[str, object] = field(default_factory=dict)  # only the options given


@dataclass(frozen=True)
class Prepared:
    loaded: LoadedModel
    params: GenerationParams
    blend_models: list[LoadedModel]  # params.blend's models, loaded, in order


def prepare(
    request: Request,
    *,
    home: str | Path | None,
    device: str = "auto",
    loaded: LoadedModel | None = None,
    warn: Callable[[str], None] = lambda _line: None,
) -> Prepared:
    """Resolve `request` (see the module docstring); `loaded`: the main model if already open."""
    loaded = loaded or load(request.model, home=home, device=device)
    values, preset_variation, preset_spatial = preset_settings(loaded, request.preset, home, warn)
    values |= loaded.slider_values(request.sliders or [])
    voices, blend_models = [], []
    for spec in request.blend:
        other = load(spec.model, home=home, device=str(loaded.device))
        blend_models.append(other)
        if isinstance(spec.sliders, str) and spec.sliders.startswith("@"):
            voice_values, _, _ = preset_settings(other, spec.sliders[1:], home, warn)
        elif isinstance(spec.sliders, str):
            voice_values = other.slider_values([v for v in spec.sliders.split(",") if v])
        else:
            voice_values = other.slider_values(spec.sliders)
        voices.append(BlendVoice(str(other.model_id or other.path), spec.weight, voice_values))
    variation = request.variation if request.variation is not None else preset_variation
    params = loaded.params(
        request.duration,
        seed=secrets.randbelow(SEED_RANGE) if request.seed is None else request.seed,
        sliders=values,
        variation=variation,
        spatial=spatial_options(preset_spatial, request.spatial),
        blend=tuple(voices),
        mode=request.mode,
        density=request.density,
        level=request.level,
        like=request.like,
    )
    return Prepared(loaded, params, blend_models)


def preset_settings(
    loaded: LoadedModel, preset: str | None, home, warn: Callable[[str], None]
) -> tuple[dict[int, float], float, dict]:
    """A preset's sliders (0-based), variation and spatial settings; stale labels reported."""
    if not preset:
        return {}, DEFAULT_VARIATION, {}
    from distill.library.presets import Presets

    store = Presets(home)
    found = store.get(loaded.model_id or str(loaded.path), preset)
    controls = loaded.controls
    if controls is None:
        raise UserError(f"model {loaded.name!r} has no sliders, so preset {preset!r} cannot apply")
    values, stale = store.apply(found, controls.labels)
    for label in stale:
        warn(
            f"warning: preset {preset!r} sets {label!r}, which {loaded.name} no longer has — "
            "ignored"
        )
    variation = found.variation if found.variation is not None else DEFAULT_VARIATION
    return values, variation, dict(found.spatial or {})


def spatial_options(base: Mapping, given: Mapping) -> SpatialOptions:
    """A preset's spatial settings overridden by the options given. Without a mode anywhere,
    azimuth/elevation/orbit mean binaural and width means stereo."""
    flags = {k: v for k, v in given.items() if v is not None and k != "mode"}
    settings = dict(base) | flags
    if given.get("mode") is not None:
        settings["mode"] = given["mode"]
    elif "mode" not in settings and flags:
        binaural = {"azimuth", "elevation", "orbit"} & set(flags)
        settings["mode"] = "binaural" if binaural else "stereo"
    options = SpatialOptions.from_dict(settings) if settings else SpatialOptions()
    options.validate()
    return options

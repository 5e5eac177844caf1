"""Generate takes and write them as files: audio, embedded tags and a sidecar JSON each.

The sidecar holds every parameter needed to render the same samples again (model, duration,
seed, sliders, variation, representation settings, export options); `distill history replay` and
scripts read it back with `params_from_sidecar`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from distill import __version__
from distill.audio.write import ExportOptions, ExportResult, write_audio
from distill.generation.generate import GenerationParams
from distill.generation.loaded import LoadedModel
from distill.home import safe_name

SIDECAR_KIND = "distill-generation"


@dataclass(frozen=True)
class Take:
    params: GenerationParams
    export: ExportResult
    audio: np.ndarray  # what was rendered (before export's resampling and gain), model rate

    @property
    def path(self) -> Path:
        return self.export.path


def take_path(out_dir: Path, stem: str, suffix: str) -> Path:
    """`out_dir/stem.suffix`, or `stem-2`, `-3` … if a file of that name (or its sidecar) is
    already there: a new take never overwrites an old one."""
    candidate, n = out_dir / f"{stem}{suffix}", 1
    while candidate.exists() or candidate.with_suffix(".json").exists():
        n += 1
        candidate = out_dir / f"{stem}-{n}{suffix}"
    return candidate


def describe_sliders(loaded: LoadedModel, values: dict[int, float]) -> dict[str, float]:
    controls = loaded.controls
    if controls is None:
        return {}
    return {controls.labels[i]: v for i, v in sorted(values.items())}


def sidecar_for(loaded: LoadedModel, params: GenerationParams, kind: str = "generate") -> dict:
    return {
        "format": SIDECAR_KIND,
        "kind": kind,
        "distill_version": __version__,
        "model": {
            "name": loaded.name,
            "id": loaded.model_id,
            "file": str(loaded.path),
            "trained": loaded.metadata.training.get("date"),
        },
        "params": params.to_dict(),
        "sliders_by_label": describe_sliders(loaded, params.sliders),
        "spectral": loaded.metadata.spectral.to_dict(),
        "device": str(loaded.device),
    }


def params_from_sidecar(data: dict) -> GenerationParams:
    return GenerationParams.from_dict(data["params"])


def render_takes(
    loaded: LoadedModel,
    params: GenerationParams,
    options: ExportOptions,
    out_dir: Path,
    *,
    count: int = 1,
    stem: str | None = None,
) -> list[Take]:
    """`count` takes with seeds params.seed, params.seed + 1, …, each written as it is done."""
    options.validate()
    params.validate()
    takes = []
    base = safe_name(stem or loaded.name, fallback="take")
    for i in range(count):
        take_params = replace(params, seed=params.seed + i)
        audio = loaded.render(take_params)
        sliders = describe_sliders(loaded, take_params.sliders)
        sidecar = sidecar_for(loaded, take_params)
        path = take_path(Path(out_dir), f"{base}-{take_params.seed}", options.suffix)
        result = write_audio(
            path,
            audio,
            loaded.sample_rate,
            options,
            tags={
                "title": f"{loaded.name} — seed {take_params.seed}",
                "model": loaded.name,
                "seed": str(take_params.seed),
                "sliders": ", ".join(f"{k}={v:g}" for k, v in sliders.items()) or "none",
                "params": json.dumps(sidecar["params"], sort_keys=True),
            },
            sidecar=sidecar,
        )
        takes.append(Take(params=take_params, export=result, audio=audio))
    return takes

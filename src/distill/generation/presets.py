"""Saving a preset: its settings checked as generation reads them, then stored by the library.

Slider labels (or 1-based numbers) become the model's own labels, values −10…+10; variation 0…1;
spatial settings as `SpatialOptions` validates them. `distill preset save` and the Generate tab's
presets both save through `save_preset`; `distill.library.presets.Presets` only stores the rows.
"""

from __future__ import annotations

import math
from pathlib import Path

from distill.controls.sliders import SLIDER_LIMIT
from distill.errors import UserError
from distill.generation.spatial import SpatialOptions
from distill.library.models import ModelEntry
from distill.library.presets import Preset, Presets, clean_preset_name, label_key


def save_preset(
    home: str | Path | None,
    model_ref: str | ModelEntry,
    name: str,
    *,
    sliders: dict[str, float],
    variation: float | None = None,
    spatial: dict | None = None,
    overwrite: bool = False,
) -> Preset:
    """Check the settings for the library model `model_ref` and store them under `name` (an
    existing preset of that name is replaced only with `overwrite`)."""
    store = Presets(home)
    entry = store.model(model_ref)
    name = clean_preset_name(name)
    return store.save(
        entry,
        name,
        sliders=check_sliders(entry, sliders),
        variation=check_variation(variation),
        spatial=check_spatial(spatial) if spatial else None,
        overwrite=overwrite,
    )


def check_sliders(entry: ModelEntry, sliders: dict[str, float]) -> dict[str, float]:
    """Labels (or 1-based numbers) → the model's own labels, values checked to be −10…+10."""
    labels = list(entry.controls)
    by_key = {label_key(label): label for label in labels}
    checked: dict[str, float] = {}
    for given, raw in sliders.items():
        text = label_key(given)
        if text.isdigit() and 1 <= int(text) <= len(labels):
            label = labels[int(text) - 1]
        elif text in by_key:
            label = by_key[text]
        elif labels:
            raise UserError(
                f"model {entry.name!r} has no slider {given!r}: its sliders are "
                f"{', '.join(labels)} (or 1–{len(labels)})"
            )
        else:
            raise UserError(f"model {entry.name!r} has no sliders: save the preset without them")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not -SLIDER_LIMIT <= value <= SLIDER_LIMIT:  # also false for NaN
            raise UserError(f"slider {given}={raw}: the value must be a number from −10 to 10")
        if label in checked:
            raise UserError(f"slider {label!r} is set twice: give each slider one value")
        checked[label] = value
    return checked


def check_variation(variation: float | None) -> float | None:
    if variation is None:
        return None
    value = float(variation)
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise UserError(f"variation must be between 0 and 1, got {variation:g}")
    return value


def check_spatial(spatial: dict) -> dict:
    """The given spatial settings, validated as generation would, with their types normalised."""
    options = SpatialOptions.from_dict(spatial)
    options.validate()
    full = options.to_dict()
    return {k: full[k] for k in spatial}

"""Sliders: positions −10…+10 on a model's labelled latent axes ↔ latent vectors.

Mapping: slider value v on axis k moves the latent from the PCA mean (the training data's average
μ) along the axis's unit direction d_k:

    z = mean + Σ_k (v_k / 10) · scale_k · d_k,   scale_k = HEADROOM · max |projection of a chunk|

so ±10 reaches 1.5× the training chunk farthest from the mean on that axis. The data's span along
the axis (low_k … high_k, latent units) is the safe range, 10 · low_k / scale_k … 10 · high_k /
scale_k in slider units: always inside ±6.7, and it reaches ±6.7 on at least one side. Beyond it is
the warning zone, where the decoder never saw a latent during training.

Indices: the Python API counts axes from 0 (`latent({0: 4.0})`, `safe_range(0)`); people see and
type them from 1 ("1=4", "axis 1"), in order of explained variance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from distill.controls.features import FEATURE_RECORDS
from distill.errors import UserError

SLIDER_LIMIT = 10.0  # sliders run −10…+10
HEADROOM = 1.5  # slider ±10 = this × the data's largest |projection| on the axis
MAX_LABEL_CHARS = 40
FORMAT_VERSION = 1


def slider_scale(low: float, high: float) -> float:
    """Latent units moved by slider +10 for an axis whose training projections span low…high."""
    return HEADROOM * max(abs(low), abs(high), 1e-6)


@dataclass(frozen=True)
class Axis:
    """One slider: a principal direction of the training latents, named after what it changes."""

    label: str
    variance: float  # share of the latent variance along this axis, 0…1
    direction: tuple[float, ...]  # unit vector (latent_dim), oriented so + = more of the label
    std: float  # latent units: standard deviation of the training projections
    low: float  # latent units: smallest training projection (relative to the mean)
    high: float  # latent units: largest training projection
    scale: float  # latent units moved by slider +10 (see slider_scale)
    correlations: dict[str, float]  # feature → Spearman ρ with the slider position in the sweep
    # feature → its change from slider −10 to +10 over the data's span (octaves for centroid,
    # rolloff and zcr; dB for rms and low_high_ratio; 0…1 flatness; onsets/s); {} in old files
    changes: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"direction": list(self.direction)}

    @classmethod
    def from_dict(cls, data: dict) -> Axis:
        return cls(
            label=str(data["label"]),
            variance=float(data["variance"]),
            direction=tuple(float(v) for v in data["direction"]),
            std=float(data["std"]),
            low=float(data["low"]),
            high=float(data["high"]),
            scale=float(data["scale"]),
            correlations={str(k): float(v) for k, v in data["correlations"].items()},
            changes={str(k): float(v) for k, v in (data.get("changes") or {}).items()},
        )


@dataclass(frozen=True)
class Controls:
    """A model's sliders: the PCA mean of its training latents and the labelled axes around it."""

    mean: tuple[float, ...]  # latent_dim floats: every slider at 0
    axes: tuple[Axis, ...]  # by explained variance, largest first
    latent_std: tuple[float, ...]  # latent_dim floats: std of the training μ per dimension

    def __post_init__(self) -> None:
        if len(self.latent_std) != len(self.mean):
            raise ValueError(
                f"the latent spread has {len(self.latent_std)} values, the mean {len(self.mean)}"
            )
        for axis in self.axes:
            if len(axis.direction) != len(self.mean):
                raise ValueError(
                    f"slider {axis.label!r} has {len(axis.direction)} latent values, "
                    f"the mean has {len(self.mean)}"
                )

    def __len__(self) -> int:
        return len(self.axes)

    @property
    def labels(self) -> list[str]:
        return [axis.label for axis in self.axes]

    def safe_range(self, index: int) -> tuple[float, float]:
        """(lo, hi) in slider units: the training data's span along axis `index` (0-based)."""
        axis = self.axes[index]
        return (SLIDER_LIMIT * axis.low / axis.scale, SLIDER_LIMIT * axis.high / axis.scale)

    def latent(self, values: Mapping[int, float]) -> torch.Tensor:
        """Slider positions {0-based axis: −10…+10} → latent vector (latent_dim,) float32."""
        z = torch.tensor(self.mean, dtype=torch.float64)
        for index, value in values.items():
            if not 0 <= index < len(self.axes):
                raise ValueError(f"no slider {index} (this model has {len(self.axes)})")
            if not -SLIDER_LIMIT <= value <= SLIDER_LIMIT:
                raise ValueError(f"slider values run −10…+10, got {value}")
            axis = self.axes[index]
            z += (
                (value / SLIDER_LIMIT)
                * axis.scale
                * torch.tensor(axis.direction, dtype=torch.float64)
            )
        return z.float()

    def spread(self) -> torch.Tensor:
        """(latent_dim,) float32: how far the training μ spread in each dimension (std), the
        scale for generation's wandering around a slider point."""
        return torch.tensor(self.latent_std, dtype=torch.float32)

    # -- names ------------------------------------------------------------------------------
    def index_of(self, name: str | int) -> int:
        """0-based index of a slider given by its 1-based number ("2", 2) or label, any case."""
        text = _normalized(str(name))
        if text.isdigit() and 1 <= int(text) <= len(self.axes):
            return int(text) - 1
        for index, label in enumerate(self.labels):
            if _normalized(label) == text:
                return index
        raise UserError(f"unknown slider {str(name)!r}: {self._valid_names()}")

    def resolve(self, assignments: Sequence[str] | Mapping[str, float]) -> dict[int, float]:
        """Settings like "brightness=4" and "2=-3.5" (or {"brightness": 4}) → {0-based: value}."""
        pairs = (
            list(assignments.items())
            if isinstance(assignments, Mapping)
            else [_split(text) for text in assignments]
        )
        values: dict[int, float] = {}
        for name, raw in pairs:
            index = self.index_of(name)
            if index in values:
                raise UserError(
                    f"slider {self.axes[index].label!r} is set twice: give each slider one value"
                )
            values[index] = _slider_value(name, raw)
        return values

    def rename(self, which: str | int, new_label: str) -> Controls:
        """A copy with one slider (1-based number or label) renamed; the label must be unique."""
        index = self.index_of(which)
        label = " ".join(str(new_label).split())
        problem = (
            "is empty"
            if not label
            else "is a number (numbers pick sliders by position)"
            if label.isdigit()
            else "contains '='"
            if "=" in label
            else f"is longer than {MAX_LABEL_CHARS} characters"
            if len(label) > MAX_LABEL_CHARS
            else None
        )
        if problem:
            raise UserError(f"slider name {new_label!r} {problem}: choose another name")
        taken = {_normalized(name) for i, name in enumerate(self.labels) if i != index}
        if _normalized(label) in taken:
            raise UserError(f"another slider is already called {label!r}: choose another name")
        axes = list(self.axes)
        axes[index] = dataclasses.replace(axes[index], label=label)
        return dataclasses.replace(self, axes=tuple(axes))

    def describe(self) -> list[str]:
        """One line per slider for display: number, label, explained variance, safe range."""
        lines = []
        for index, axis in enumerate(self.axes):
            lo, hi = self.safe_range(index)
            lines.append(
                f"{index + 1}. {axis.label:<16} {100 * axis.variance:5.1f} % of variance, "
                f"safe {lo:+.1f} … {hi:+.1f}"
                + (f"; across its range: {what_changes(axis)}" if axis.changes else "")
            )
        return lines

    def _valid_names(self) -> str:
        if not self.axes:
            return "this model has no sliders"
        return f"this model's sliders are {', '.join(self.labels)} (or 1–{len(self.axes)})"

    # -- storage (the "controls" entry of a .distill file) -----------------------------------
    def to_dict(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "slider_limit": SLIDER_LIMIT,
            "mean": list(self.mean),
            "latent_std": list(self.latent_std),
            "axes": [axis.to_dict() for axis in self.axes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Controls:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported controls version {data.get('version')!r}")
        return cls(
            mean=tuple(float(v) for v in data["mean"]),
            axes=tuple(Axis.from_dict(a) for a in data["axes"]),
            latent_std=tuple(float(v) for v in data["latent_std"]),
        )


# How each feature's change reads to a musician, and the smallest change worth naming.
# What a tooltip says of each feature's change: word, unit, smallest change worth saying, digits.
CHANGE_WORDS = {
    f.name: (f.change_word, f.change_unit, f.smallest_said, f.digits)
    for f in FEATURE_RECORDS
    if f.change_word
}


def what_changes(axis: Axis, most: int = 3) -> str:
    """The audible changes of moving a slider across its range, largest first:
    "brightness +0.8 oct, level −4.1 dB"."""
    scaled = [
        (abs(axis.changes[name]) / floor, name)
        for name, (_, _, floor, _) in CHANGE_WORDS.items()
        if name in axis.changes
    ]
    parts = []
    for ratio, name in sorted(scaled, reverse=True)[:most]:
        if ratio < 1:
            break
        word, unit, _, digits = CHANGE_WORDS[name]
        value = axis.changes[name]
        parts.append(f"{word} {value:+.{digits}f}{(' ' + unit) if unit and unit != '/s' else unit}")
    return ", ".join(parts) or "little audible change"


def _normalized(name: str) -> str:
    return " ".join(name.split()).casefold()


def _split(text: str) -> tuple[str, str]:
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip():
        raise UserError(f"slider setting {text!r} is not NAME=VALUE: write e.g. brightness=4")
    return name.strip(), value.strip()


def _slider_value(name: str, raw: object) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not -SLIDER_LIMIT <= value <= SLIDER_LIMIT:  # also false for NaN
        raise UserError(f"slider {name!s}={raw!s}: the value must be a number from −10 to 10")
    return value

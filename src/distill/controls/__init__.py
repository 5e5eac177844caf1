"""Musically meaningful controls: audio features, latent analysis, and the sliders built on it."""

from distill.controls.sliders import Axis, Controls

__all__ = ["Axis", "Controls"]

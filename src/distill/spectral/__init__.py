"""The 2-channel representation (log mel magnitude + mel-domain instantaneous frequency)."""

from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import analyze, synthesize

__all__ = ["ChannelStats", "SpectralConfig", "analyze", "synthesize"]

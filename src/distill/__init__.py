"""Distill: train a generative model on your own recordings and explore it with musical sliders."""

__version__ = "0.1.0"

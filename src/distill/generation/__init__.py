"""Turning a trained model's latents into audio."""

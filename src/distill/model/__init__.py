"""The ConvVAE and its loss."""

from distill.model.loss import LossConfig, LossTerms, VAELoss
from distill.model.vae import ConvVAE, ModelConfig

__all__ = ["ConvVAE", "LossConfig", "LossTerms", "ModelConfig", "VAELoss"]

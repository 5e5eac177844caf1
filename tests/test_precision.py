"""`auto` precision: bf16 only where the hardware has it and the model is wide enough to gain."""

import pytest
import torch

from distill.errors import UserError
from distill.model.vae import ModelConfig, build, parameter_count
from distill.training.device import CPU_BF16_MIN_PARAMETERS, pick_precision

CPU = torch.device("cpu")
SEED_WIDTHS = (64, 128, 256, 512, 1024)


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)


def test_the_default_model_trains_in_fp32_on_a_cpu_even_with_native_bf16(native_bf16):
    parameters = parameter_count(ModelConfig())
    assert parameters < CPU_BF16_MIN_PARAMETERS
    assert pick_precision("auto", CPU, parameters) == "fp32"


def test_a_wide_model_takes_bf16_where_the_cpu_has_it(native_bf16):
    parameters = parameter_count(ModelConfig(channels=SEED_WIDTHS))
    assert parameters >= CPU_BF16_MIN_PARAMETERS
    assert pick_precision("auto", CPU, parameters) == "bf16"


def test_without_native_bf16_auto_is_fp32(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert pick_precision("auto", CPU, parameter_count(ModelConfig(channels=SEED_WIDTHS))) == "fp32"


def test_an_explicit_precision_is_kept_and_a_wrong_one_is_one_line():
    assert pick_precision("bf16", CPU, 10) == "bf16"
    assert pick_precision("fp32", CPU, 10**9) == "fp32"
    with pytest.raises(UserError, match="auto, fp32 or bf16"):
        pick_precision("fp16", CPU, 10)


def test_parameter_count_matches_the_built_model():
    config = ModelConfig(channels=(4, 8, 8, 16, 16), latent_dim=8)
    assert parameter_count(config) == sum(p.numel() for p in build(config).parameters())

"""Choosing the torch device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import ctypes
import sys

import torch

from distill.errors import UserError

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters


def keep_freed_memory() -> None:
    """On glibc, serve large tensors from the heap and keep freed memory, instead of one
    mmap/munmap per tensor: each fresh mapping page-faults once per 4 KiB, which cost ~154 000
    faults per CPU training step and made steps 2–5× slower and erratic (bench/train_speed.py)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): leave the allocator alone
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


# On a CPU, bf16 autocast pays only for wide convolutions (bench/train_speed.py, 2 threads, AMX):
# the seed design's 17 M parameters train at 64.8 samples/s in bf16 against 46.0 in fp32, the
# default 2 M at 137.5 against 172.8: the casts cost more than the narrow convolutions save. (The
# default is 3.0 M since the profile map, whose 1.0 M are two plain linear layers: still fp32.)
CPU_BF16_MIN_PARAMETERS = 8_000_000


def pick_precision(requested: str, device: torch.device, parameters: int | None = None) -> str:
    """`auto`: bf16 autocast where the hardware computes it natively (CUDA with bf16; CPUs with
    AVX512-BF16/AMX for models of at least CPU_BF16_MIN_PARAMETERS `parameters`), else fp32."""
    if requested in ("fp32", "bf16"):
        return requested
    if requested != "auto":
        raise UserError(f"precision must be auto, fp32 or bf16 (got {requested!r})")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    wide = parameters is None or parameters >= CPU_BF16_MIN_PARAMETERS
    if device.type == "cpu" and wide and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested}: no CUDA GPU is available here; use --device cpu")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's MPS is not available here; use --device cpu")
    return torch.device(requested)

"""`.distill` model files: safetensors tensors + JSON metadata, never pickle.

Layout: one safetensors file. Its string metadata holds a single key, "distill", whose value is a
JSON document: {"format": "distill-model", "version": 1, "model": ModelConfig, "spectral":
SpectralConfig, "stats": ChannelStats, "training": summary, "info": {name, description, tags},
"controls": latent analysis or null, "sha256": digest of the tensor data}. The digest catches a
file altered after it was written; safetensors itself rejects a truncated file; a version newer
than this program's is refused with a message to upgrade.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from distill.atomic import atomic_write
from distill.errors import UserError
from distill.model.vae import ConvVAE, ModelConfig
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats

FORMAT = "distill-model"
VERSION = 1
SUFFIX = ".distill"


class ModelFileError(UserError):
    """A model file is missing, damaged, or from a newer Distill."""


@dataclass
class ModelMetadata:
    model: ModelConfig
    spectral: SpectralConfig
    stats: ChannelStats
    training: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # name, description, tags
    controls: dict | None = None

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model.to_dict(),
            "spectral": self.spectral.to_dict(),
            "stats": self.stats.to_dict(),
            "training": self.training,
            "info": self.info,
            "controls": self.controls,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelMetadata:
        return cls(
            model=ModelConfig.from_dict(data["model"]),
            spectral=SpectralConfig.from_dict(data["spectral"]),
            stats=ChannelStats.from_dict(data["stats"]),
            training=data.get("training") or {},
            info=data.get("info") or {},
            controls=data.get("controls"),
        )


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_model_file(path: Path, model: ConvVAE, metadata: ModelMetadata) -> Path:
    """Write atomically (temp file + rename); returns the path written."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"refusing to save non-finite weights ({name})")
    document = metadata.to_dict() | {"sha256": _digest(tensors)}
    payload = save(tensors, metadata={"distill": json.dumps(document)})
    try:
        atomic_write(path, lambda f: f.write(payload))
    except OSError as err:
        raise ModelFileError(
            f"cannot write {path} ({err.strerror}): free some disk space or choose another folder"
        ) from err
    return path


def read_metadata(path: Path) -> ModelMetadata:
    return _read(path, with_weights=False)[0]


def load_model_file(
    path: Path, device: str | torch.device = "cpu"
) -> tuple[ConvVAE, ModelMetadata]:
    """Rebuild the model from its config alone and load its weights (eval mode)."""
    metadata, tensors = _read(path, with_weights=True)
    model = ConvVAE(metadata.model)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ModelFileError(f"{path.name}: weights do not match the model description") from err
    return model.to(device).eval(), metadata


def _read(path: Path, with_weights: bool) -> tuple[ModelMetadata, dict[str, torch.Tensor]]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("distill")
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_weights else {}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(
            f"{path.name} is not a readable Distill model (damaged or "
            "truncated); export it again from the library it came from"
        ) from err
    try:
        document = json.loads(raw) if raw else {}
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path.name}: its description is damaged") from err
    if document.get("format") != FORMAT:
        raise ModelFileError(f"{path.name} is not a Distill model file")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ModelFileError(
            f"{path.name} was written by a newer Distill (format version "
            f"{version}, this one reads ≤ {VERSION}): upgrade Distill to open it"
        )
    if with_weights and document.get("sha256") != _digest(tensors):
        raise ModelFileError(
            f"{path.name} has been altered since it was saved (checksum "
            "mismatch): use the original file"
        )
    try:
        return ModelMetadata.from_dict(document), tensors
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path.name}: its description is incomplete ({err})") from err


def write_info(path: Path, info: dict) -> Path:
    """Replace the name, description and tags stored in a model file (atomically).

    The file is verified first (checksum included), so a damaged file is never re-signed; the
    weights and the rest of the description are written back unchanged.
    """
    return _rewrite(path, info=dict(info))


def write_controls(path: Path, controls: dict | None) -> Path:
    """Replace the sliders (latent analysis) stored in a model file, as write_info does."""
    return _rewrite(path, controls=controls)


def _rewrite(path: Path, **changes) -> Path:
    metadata, tensors = _read(path, with_weights=True)
    for field_name, value in changes.items():
        setattr(metadata, field_name, value)
    document = metadata.to_dict() | {"sha256": _digest(tensors)}
    payload = save(tensors, metadata={"distill": json.dumps(document)})
    try:
        atomic_write(path, lambda f: f.write(payload))
    except OSError as err:
        raise ModelFileError(
            f"cannot write {path} ({err.strerror}): free some disk space and try again"
        ) from err
    return path

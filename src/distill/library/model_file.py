"""`.distill` model files: safetensors tensors + JSON metadata, never pickle.

Layout: one safetensors file. Its string metadata holds a single key, "distill", whose value is a
JSON document: {"format": "distill-model", "version": 1, "model": ModelConfig, "spectral":
SpectralConfig, "stats": ChannelStats, "training": summary, "info": {name, description, tags},
"controls": latent analysis or null, "corpus": what the model learned about its training
recordings (controls.corpus) or null, "sha256": digest of the tensor data}. Tensors: the model's
weights, plus the corpus memory's arrays under the "corpus." prefix (files written before it
existed have none, and still load). The digest catches a
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
CORPUS_PREFIX = "corpus."  # tensor names of the corpus memory (never a ConvVAE parameter name)


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
    corpus: dict | None = None  # the corpus memory's description (controls.corpus)
    # Its arrays (μ, σ, file, position of every training chunk), stored as tensors, not JSON.
    corpus_tensors: dict[str, torch.Tensor] = field(default_factory=dict)

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
            "corpus": self.corpus,
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
            corpus=data.get("corpus"),
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
    tensors |= _prefixed(metadata.corpus_tensors)
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
    weights = {k: v for k, v in tensors.items() if not k.startswith(CORPUS_PREFIX)}
    try:
        model.load_state_dict(weights, strict=True)
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
        metadata = ModelMetadata.from_dict(document)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path.name}: its description is incomplete ({err})") from err
    metadata.corpus_tensors = {
        k.removeprefix(CORPUS_PREFIX): v for k, v in tensors.items() if k.startswith(CORPUS_PREFIX)
    }
    return metadata, tensors


def write_info(path: Path, info: dict) -> Path:
    """Replace the name, description and tags stored in a model file (atomically).

    The file is verified first (checksum included), so a damaged file is never re-signed; the
    weights and the rest of the description are written back unchanged.
    """
    return _rewrite(path, info=dict(info))


def write_controls(path: Path, controls: dict | None) -> Path:
    """Replace the sliders (latent analysis) stored in a model file, as write_info does."""
    return _rewrite(path, controls=controls)


def write_corpus(path: Path, corpus: dict | None, tensors: dict[str, torch.Tensor]) -> Path:
    """Replace the corpus memory stored in a model file, as write_info does."""
    return _rewrite(path, corpus=corpus, corpus_tensors=dict(tensors))


def _prefixed(corpus_tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {CORPUS_PREFIX + k: v.detach().cpu().contiguous() for k, v in corpus_tensors.items()}


def _rewrite(path: Path, **changes) -> Path:
    metadata, tensors = _read(path, with_weights=True)
    for field_name, value in changes.items():
        setattr(metadata, field_name, value)
    tensors = {k: v for k, v in tensors.items() if not k.startswith(CORPUS_PREFIX)}
    tensors |= _prefixed(metadata.corpus_tensors)
    document = metadata.to_dict() | {"sha256": _digest(tensors)}
    payload = save(tensors, metadata={"distill": json.dumps(document)})
    try:
        atomic_write(path, lambda f: f.write(payload))
    except OSError as err:
        raise ModelFileError(
            f"cannot write {path} ({err.strerror}): free some disk space and try again"
        ) from err
    return path

"""`.distill` model files: safetensors tensors + JSON metadata, never pickle.

Layout: one safetensors file. Its string metadata holds a single key, "distill", whose value is a
JSON document: {"format": "distill-model", "version": 1, "model": ModelConfig, "spectral":
SpectralConfig, "stats": ChannelStats, "training": summary, "info": {name, description, tags},
"controls": latent analysis or null, "corpus": what the model learned about its training
recordings (controls.corpus) or null, "sha256": digest of the tensor data, "sha256_description":
digest of the rest of the document}. Tensors: the model's weights, plus the corpus memory's arrays
under the "corpus." prefix (files written before it existed have none, and still load).

The digests catch a file altered after it was written (files written before the description's
digest existed carry only the tensors' one, and still load); safetensors itself rejects a
truncated file; a version newer than this program's is refused with a message to upgrade. Every
field of the description is checked against sane bounds (bounds.py) and the tensors' shapes
against it before anything is allocated: an edited header gives one line, never a huge
allocation or a hang.
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
from distill.model import bounds
from distill.model.vae import ConvVAE, ModelConfig, build
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats

FORMAT = "distill-model"
VERSION = 1
SUFFIX = ".distill"
CORPUS_PREFIX = "corpus."  # tensor names of the corpus memory (never a ConvVAE parameter name)
DIGEST_KEYS = ("sha256", "sha256_description")


def kept_weights(training: dict) -> str:
    """Which weights a model file holds, from its training summary: "last" (its schedule ran to
    its end) or "best" (its best validation epoch; files written before the summary said so)."""
    return "last" if training.get("weights") == "last" else "best"


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


def _description_digest(document: dict) -> str:
    """Digest of the document without its digests, in one canonical JSON form (sorted keys, ASCII:
    the same whatever wrote it; floats keep their exact repr through a JSON round trip)."""
    rest = {k: v for k, v in document.items() if k not in DIGEST_KEYS}
    rest = json.loads(json.dumps(rest))  # exactly what a reader parses (str keys, lists)
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _signed(metadata: ModelMetadata, tensors: dict[str, torch.Tensor]) -> dict:
    document = metadata.to_dict() | {"sha256": _digest(tensors)}
    return document | {"sha256_description": _description_digest(document)}


def save_model_file(path: Path, model: ConvVAE, metadata: ModelMetadata) -> Path:
    """Write atomically (temp file + rename); returns the path written."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= _prefixed(metadata.corpus_tensors)
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"refusing to save non-finite weights ({name})")
    return _write_signed(path, metadata, tensors, "free some disk space or choose another folder")


def read_metadata(path: Path) -> ModelMetadata:
    return _read(path, with_weights=False)[0]


def load_model_file(
    path: Path, device: str | torch.device = "cpu"
) -> tuple[ConvVAE, ModelMetadata]:
    """Rebuild the model from its config alone and load its weights (eval mode)."""
    metadata, tensors = _read(path, with_weights=True)  # shapes checked against the config
    model = build(metadata.model)
    weights = {k: v for k, v in tensors.items() if not k.startswith(CORPUS_PREFIX)}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:  # a dtype the description cannot say, e.g.
        raise _unusable(Path(path), "its weights do not match the model it describes") from err
    return for_decoding(model.to(device).eval()), metadata


def for_decoding(model: ConvVAE) -> ConvVAE:
    """`model` in the memory layout every user of a trained model decodes in: channels-last on
    a CPU, where the decoder's transposed convolutions run faster in it (a latent-fit step of 16
    chunks, most of a resynthesis, took 18.1 ms instead of 21.2 on 2 threads with the same
    held-out scores; BENCHMARKS.md "Fidelity", round 14). The packaging step analyses the
    sliders and the corpus memory in it too, so a loaded model recomputes them bit for bit."""
    if next(model.parameters()).device.type == "cpu":
        return model.to(memory_format=torch.channels_last)
    return model


def verify_model_file(path: Path) -> ModelMetadata:
    """Read a whole file and check it (description, shapes, both digests) without building it."""
    return _read(path, with_weights=True)[0]


def _read(path: Path, with_weights: bool) -> tuple[ModelMetadata, dict[str, torch.Tensor]]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("distill")
            names = list(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in names}
            document = _document(path, raw)
            _check(path, document, shapes)  # before a byte of the tensors is read
            tensors = {k: f.get_tensor(k) for k in names} if with_weights else {}
    except (SafetensorError, OSError) as err:
        raise ModelFileError(
            f"{path.name} is not a readable Distill model (damaged or "
            "truncated); export it again from the library it came from"
        ) from err
    if with_weights:
        if document.get("sha256") != _digest(tensors):
            raise _altered(path)
        try:
            bounds.check_corpus_values(_corpus_part(tensors))
        except ValueError as err:
            raise _unusable(path, err) from err
    metadata = ModelMetadata.from_dict(document)  # every field was checked: cannot fail
    metadata.corpus_tensors = _corpus_part(tensors)
    return metadata, tensors


def _document(path: Path, raw: str | None) -> dict:
    """The parsed description, of this format and a version this program reads."""
    try:
        document = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path.name}: its description is damaged") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path.name} is not a Distill model file")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ModelFileError(
            f"{path.name} was written by a newer Distill (format version "
            f"{version}, this one reads ≤ {VERSION}): upgrade Distill to open it"
        )
    described = document.get("sha256_description")  # absent in files written before it
    if described is not None and described != _description_digest(document):
        raise _altered(path)
    return document


def _check(path: Path, document: dict, shapes: dict[str, tuple[int, ...]]) -> None:
    """Every field in bounds, and the tensors exactly the shapes the description gives."""
    try:
        bounds.check_description(document)
        expected = bounds.expected_shapes(document)
        weights = {k: v for k, v in shapes.items() if not k.startswith(CORPUS_PREFIX)}
        if weights != expected:
            wrong = sorted(set(weights) ^ set(expected)) or sorted(
                k for k in expected if weights[k] != expected[k]
            )
            raise ValueError(f"its weights do not match the model it describes ({wrong[0]})")
        bounds.check_corpus_shapes(document, _corpus_part(shapes))
    except ValueError as err:
        raise _unusable(path, err) from err


def _corpus_part(items: dict) -> dict:
    prefix = CORPUS_PREFIX
    return {k.removeprefix(prefix): v for k, v in items.items() if k.startswith(prefix)}


def _altered(path: Path) -> ModelFileError:
    return ModelFileError(
        f"{path.name} has been altered since it was saved (checksum mismatch): "
        "use the original file"
    )


def _unusable(path: Path, err: Exception) -> ModelFileError:
    return ModelFileError(
        f"{path.name} is not a usable Distill model: {err}; the file was altered or damaged, "
        "use the original"
    )


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
    return _write_signed(path, metadata, tensors, "free some disk space and try again")


def _write_signed(
    path: Path, metadata: ModelMetadata, tensors: dict[str, torch.Tensor], advice: str
) -> Path:
    """Tensors and the signed description, atomically (temp file + rename); a failed write is
    one line ending in `advice`."""
    payload = save(tensors, metadata={"distill": json.dumps(_signed(metadata, tensors))})
    try:
        atomic_write(path, lambda f: f.write(payload))
    except OSError as err:
        raise ModelFileError(f"cannot write {path} ({err.strerror}): {advice}") from err
    return path

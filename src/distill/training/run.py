"""A run folder and the description of a run that `--resume` reads back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from distill.atomic import atomic_write
from distill.errors import UserError
from distill.home import safe_name
from distill.model.loss import LossConfig
from distill.model.vae import ModelConfig
from distill.spectral.config import SpectralConfig
from distill.training.config import TrainingConfig

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def spec_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def previews(self) -> Path:
        return self.path / "previews"

    @property
    def model_file(self) -> Path:
        return self.path / "model.distill"


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to start or resume a run exactly, stored as plain JSON."""

    name: str
    data_dir: Path
    training: TrainingConfig
    spectral: SpectralConfig
    loss: LossConfig
    model: ModelConfig
    train_files: tuple[str, ...]  # paths relative to data_dir (source files, no augmentation)
    validation_files: tuple[str, ...]
    created: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "data_dir": str(self.data_dir),
            "training": self.training.to_dict(),
            "spectral": self.spectral.to_dict(),
            "loss": self.loss.to_dict(),
            "model": self.model.to_dict(),
            "train_files": list(self.train_files),
            "validation_files": list(self.validation_files),
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return cls(
            name=data["name"],
            data_dir=Path(data["data_dir"]),
            training=TrainingConfig.from_dict(data["training"]),
            spectral=SpectralConfig.from_dict(data["spectral"]),
            loss=LossConfig.from_dict(data["loss"]),
            model=ModelConfig.from_dict(data["model"]),
            train_files=tuple(data["train_files"]),
            validation_files=tuple(data["validation_files"]),
            created=data["created"],
        )

    def save(self, folder: RunFolder) -> None:
        text = json.dumps(self.to_dict(), indent=2)
        atomic_write(folder.spec_file, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, folder: RunFolder) -> RunSpec:
        try:
            return cls.from_dict(json.loads(folder.spec_file.read_text(encoding="utf-8")))
        except FileNotFoundError as err:
            raise UserError(
                f"{folder.path} is not a Distill run folder (no {RUN_FILE}): "
                "pass the run's name or folder as printed when it started"
            ) from err
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise UserError(f"{folder.spec_file} is damaged ({err}); start a new run") from err


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_folder(runs_dir: Path, name: str) -> RunFolder:
    """`runs/<safe name>`, or `<safe name>-2`, `-3` … if taken: a new run never overwrites one."""
    base = safe_name(name, fallback="run")
    candidate, n = runs_dir / base, 1
    while candidate.exists():
        n += 1
        candidate = runs_dir / f"{base}-{n}"
    candidate.mkdir(parents=True)
    return RunFolder(candidate)


def find_run_folder(runs_dir: Path, run: str) -> RunFolder:
    """`--resume RUN`: a run folder path, or a run's name under the home's runs folder."""
    as_path = Path(run).expanduser()
    if (as_path / RUN_FILE).is_file():
        return RunFolder(as_path.resolve())
    by_name = runs_dir / safe_name(run, fallback="run")
    if (by_name / RUN_FILE).is_file():
        return RunFolder(by_name)
    known = sorted(p.name for p in runs_dir.glob("*") if (p / RUN_FILE).is_file())
    hint = f"known runs: {', '.join(known[-8:])}" if known else "no runs yet in this home"
    raise UserError(f"no run called {run!r}: {hint}")

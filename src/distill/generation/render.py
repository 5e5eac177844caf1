"""Generate takes and write them as files: audio, embedded tags and a sidecar JSON each.

The sidecar holds every parameter needed to render the same samples again (model, duration,
seed, sliders, variation, representation settings, export options); `distill history replay` and
scripts read it back with `params_from_sidecar`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from distill import __version__
from distill.audio.write import ExportOptions, ExportResult, reason_for, write_audio
from distill.errors import UserError
from distill.generation.generate import GenerationParams
from distill.generation.loaded import LoadedModel
from distill.home import safe_name

SIDECAR_KIND = "distill-generation"


@dataclass(frozen=True)
class Take:
    params: GenerationParams
    export: ExportResult
    audio: np.ndarray  # what was rendered (before export's resampling and gain), model rate
    mode: str = "texture"  # what params.mode resolved to: "oneshot" or "texture"

    @property
    def path(self) -> Path:
        return self.export.path


def take_path(out_dir: Path, stem: str, suffix: str) -> Path:
    """`out_dir/stem.suffix`, or `stem-2`, `-3` … if a file of that name (or its sidecar) is
    already there: a new take never overwrites an old one.

    The name is claimed atomically: empty placeholders of the file and of its sidecar are created
    with O_EXCL (the sidecar's first: `t.wav` and `t.flac` share `t.json`), so two processes
    writing into one folder at once never get the same name. Writing the take replaces them;
    `released_on_failure` removes them if the take is never written.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write in {out_dir}: {reason_for(err)}") from err
    n = 1
    while True:
        candidate = out_dir / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        n += 1
        sidecar = candidate.with_suffix(".json")
        if not _claim(sidecar):
            continue
        if _claim(candidate):
            return candidate
        sidecar.unlink(missing_ok=True)


def _claim(path: Path) -> bool:
    """Create `path` empty unless something is there already (atomic: O_CREAT | O_EXCL)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    except OSError as err:
        raise UserError(f"cannot write {path}: {reason_for(err)}") from err
    return True


@contextlib.contextmanager
def released_on_failure(path: Path) -> Iterator[Path]:
    """Around writing a take to a claimed `path`: if it fails, the empty placeholders of the file
    and its sidecar go (a written file is never empty, so nothing else is removed)."""
    try:
        yield path
    except BaseException:
        for placeholder in (path, path.with_suffix(".json")):
            with contextlib.suppress(OSError):
                if placeholder.stat().st_size == 0:
                    placeholder.unlink()
        raise


def load_blend(loaded: LoadedModel, params: GenerationParams, home) -> list[LoadedModel]:
    """The models of params.blend, from the library of `home`, on the main model's device."""
    from distill.generation.loaded import load

    return [load(v.model, home=home, device=str(loaded.device)) for v in params.blend]


def describe_sliders(loaded: LoadedModel, values: dict[int, float]) -> dict[str, float]:
    controls = loaded.controls
    if controls is None:
        return {}
    return {controls.labels[i]: v for i, v in sorted(values.items())}


def sidecar_for(
    loaded: LoadedModel,
    params: GenerationParams,
    blend_models: list[LoadedModel] = (),  # type: ignore[assignment]
    kind: str = "generate",
) -> dict:
    return {
        "format": SIDECAR_KIND,
        "kind": kind,
        "distill_version": __version__,
        "model": {
            "name": loaded.name,
            "id": loaded.model_id,
            "file": str(loaded.path),
            "trained": loaded.metadata.training.get("date"),
        },
        "params": params.to_dict(),
        "sliders_by_label": describe_sliders(loaded, params.sliders),
        "blend_models": [
            {
                "name": other.name,
                "id": other.model_id,
                "weight": part.weight,
                "sliders_by_label": describe_sliders(other, part.sliders),
            }
            for other, part in zip(blend_models, params.blend, strict=True)
        ],
        "spectral": loaded.metadata.spectral.to_dict(),
        "device": str(loaded.device),
    }


def params_from_sidecar(data: dict) -> GenerationParams:
    return GenerationParams.from_dict(data["params"])


def render_takes(
    loaded: LoadedModel,
    params: GenerationParams,
    options: ExportOptions,
    out_dir: Path,
    *,
    count: int = 1,
    stem: str | None = None,
    home: str | Path | None = None,
    history: bool = False,
    blend_models: list[LoadedModel] | None = None,
) -> list[Take]:
    """`count` takes with seeds params.seed, params.seed + 1, …: see iter_takes."""
    return list(
        iter_takes(
            loaded,
            params,
            options,
            out_dir,
            count=count,
            stem=stem,
            home=home,
            history=history,
            blend_models=blend_models,
        )
    )


def iter_takes(
    loaded: LoadedModel,
    params: GenerationParams,
    options: ExportOptions,
    out_dir: Path,
    *,
    count: int = 1,
    stem: str | None = None,
    home: str | Path | None = None,
    history: bool = False,
    blend_models: list[LoadedModel] | None = None,
) -> Iterator[Take]:
    """`count` takes with seeds params.seed, params.seed + 1, …, each yielded once written.

    One take is `NAME-SEED.wav`; several are a pack: `NAME-01.wav`, `NAME-02.wav`, … (names
    that sort in order), and once all are written, `NAME-pack.json` listing every take with its
    seed and parameters. Blend models are loaded once from the library of `home` unless given
    (loaded, in params.blend's order); with `history`, each take is also kept in that home's
    history.
    """
    options.validate()
    params.validate()
    if blend_models is None:
        blend_models = load_blend(loaded, params, home)
    base = safe_name(stem or loaded.name, fallback="take")
    digits = len(str(count))
    pack = _claim_pack(Path(out_dir), base) if count > 1 else None  # another pack's is not ours
    written = []
    try:
        for i in range(count):
            take_params = replace(params, seed=params.seed + i)
            number = f"{i + 1:0{max(2, digits)}d}"
            name = f"{base}-{take_params.seed}" if pack is None else f"{base}-{number}"
            path = take_path(Path(out_dir), name, options.suffix)
            with released_on_failure(path):
                take = write_take(loaded, take_params, options, path, blend_models)
            if history:
                record_history(take, home)
            written.append(take)
            yield take
        if pack is not None:
            write_pack_sidecar(pack, loaded, written)
    finally:
        if pack is not None and pack.exists() and pack.stat().st_size == 0:
            pack.unlink()  # the pack stopped before its sidecar was written: no empty file


def _claim_pack(out_dir: Path, base: str) -> Path:
    """`base-pack.json`, or `base-pack-2.json` … : claimed atomically like a take's name."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write in {out_dir}: {reason_for(err)}") from err
    n = 1
    while not _claim(candidate := out_dir / f"{base}-pack{'' if n == 1 else f'-{n}'}.json"):
        n += 1
    return candidate


def write_pack_sidecar(path: Path, loaded: LoadedModel, takes: list[Take]) -> Path:
    """One JSON for a sample pack: the model and, per take, its file, seed and parameters."""
    from distill.atomic import atomic_write

    document = {
        "format": "distill-pack",
        "distill_version": __version__,
        "model": {"name": loaded.name, "id": loaded.model_id, "file": str(loaded.path)},
        "takes": [
            {
                "file": t.path.name,
                "seed": t.params.seed,
                "mode": t.mode,
                "seconds": round(t.export.frames / t.export.sample_rate, 4),
                "peak_dbfs": round(t.export.peak_dbfs, 2),
                "params": t.params.to_dict(),
            }
            for t in takes
        ],
    }
    data = json.dumps(document, indent=2).encode()
    atomic_write(path, lambda f: f.write(data))
    return path


def write_take(
    loaded: LoadedModel,
    params: GenerationParams,
    options: ExportOptions,
    path: Path,
    blend_models: list[LoadedModel] = (),  # type: ignore[assignment]
) -> Take:
    audio = loaded.render(params, blend_models)
    sliders = describe_sliders(loaded, params.sliders)
    sidecar = sidecar_for(loaded, params, blend_models)
    mode = params.mode or loaded.corpus.mode
    sidecar["mode"] = mode
    names = [loaded.name, *(m.name for m in blend_models)]
    result = write_audio(
        path,
        audio,
        loaded.sample_rate,
        options,
        tags={
            "title": f"{' + '.join(names)} — seed {params.seed}",
            "model": " + ".join(names),
            "seed": str(params.seed),
            "sliders": ", ".join(f"{k}={v:g}" for k, v in sliders.items()) or "none",
            "params": json.dumps(sidecar["params"], sort_keys=True),
        },
        sidecar=sidecar,
    )
    return Take(params=params, export=result, audio=audio, mode=mode)


def record_history(take: Take, home: str | Path | None):
    """Keep the take in the home's generation history; returns the history entry."""
    from distill.home import resolve_home
    from distill.library.history import History

    assert take.export.sidecar_path is not None
    sidecar = json.loads(take.export.sidecar_path.read_text(encoding="utf-8"))
    return History(resolve_home(home)).record(sidecar, take.path)


def replay(sidecar: dict, out_dir: Path, *, home: str | Path | None = None) -> Take:
    """Render a take again from its sidecar: the same model, parameters and export options give
    the same samples (on the same device type)."""
    from distill.generation.loaded import load

    if sidecar.get("format") != SIDECAR_KIND:
        raise UserError("this is not the sidecar of a Distill generation: nothing to replay")
    model = sidecar["model"]
    ref = model.get("id") or model.get("file")
    loaded = load(ref, home=home, device=str(sidecar.get("device") or "cpu").split(":")[0])
    params = params_from_sidecar(sidecar)
    export = sidecar.get("export") or {}
    options = ExportOptions(**export["options"]) if "options" in export else ExportOptions()
    stem = Path(export.get("file") or loaded.name).stem
    path = take_path(Path(out_dir), f"{stem}-replay", options.suffix)
    with released_on_failure(path):
        return write_take(loaded, params, options, path, load_blend(loaded, params, home))


def replay_history(history, id_or_prefix, out_dir: Path) -> Path:
    """Render a take of `history` (a library History) again from its stored sidecar into
    `out_dir`; returns the new file."""
    entry = history.get(id_or_prefix)
    return replay(entry.sidecar, Path(out_dir), home=history.home).path


def write_resynthesis(
    loaded: LoadedModel,
    audio: np.ndarray,
    rate: int,
    values: dict[int, float],
    options: ExportOptions,
    path: Path,
    *,
    source: str,
) -> ExportResult:
    """Write a resynthesized recording (`audio` at `rate` Hz, from the file named `source`) with
    its tags and a sidecar naming the model, the input and the slider offsets."""
    labels = describe_sliders(loaded, values)
    return write_audio(
        path,
        audio,
        rate,
        options,
        tags={
            "title": f"{Path(source).stem} through {loaded.name}",
            "model": loaded.name,
            "sliders": ", ".join(f"{k}={v:g}" for k, v in labels.items()) or "none",
        },
        sidecar={
            "format": "distill-resynthesis",
            "model": {"name": loaded.name, "id": loaded.model_id, "file": str(loaded.path)},
            "input": source,
            "sliders": {str(k): v for k, v in values.items()},
            "sliders_by_label": labels,
        },
    )

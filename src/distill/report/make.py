"""Writing a report: where it goes, and the page plus its figures as JSON beside it."""

from __future__ import annotations

import json
from pathlib import Path

from distill.atomic import atomic_write
from distill.errors import UserError
from distill.home import safe_name
from distill.library.models import ModelEntry
from distill.training.run import RUN_FILE

REPORT_DIR = "report"  # inside the run folder: runs/<name>/report/
REPORT_FILE = "report.html"
FIGURES_FILE = "report.json"  # the numbers on the page, for scripts


def run_of(entry: ModelEntry) -> Path | None:
    """The training run folder a model came from, if it is still there: the library's record,
    or the folder holding the file (a run's own model.distill named by its path)."""
    for candidate in (entry.run, entry.path.parent):
        if candidate and (Path(candidate) / RUN_FILE).is_file():
            return Path(candidate)
    return None


def report_folder(entry: ModelEntry, home: Path) -> Path:
    """Where `distill model report` writes: the run's report/ folder, kept with the model; for a
    model without a run, <home>/reports/<id or name>/."""
    run = run_of(entry)
    if run is not None:
        return run / REPORT_DIR
    return Path(home) / "reports" / (entry.id or safe_name(entry.name, fallback="model"))


def write_report(
    model_file: Path,
    *,
    run: Path | None,
    out: Path,
    name: str | None = None,
    model_id: str | None = None,
    device: str = "auto",
) -> dict:
    """Make the report of `model_file` (trained in `run`, None if unknown) in the folder `out`.

    Returns the figures written beside it (report.json) plus "report", the page's path. A folder
    that cannot be written is one UserError line.
    """
    from distill.generation.loaded import open_model_file
    from distill.report.content import gather
    from distill.report.page import render

    model = open_model_file(Path(model_file), device=device, model_id=model_id)
    content = gather(model, run, name=name, model_id=model_id)
    page = render(content).encode("utf-8")
    figures = content.to_dict()
    page_path = Path(out) / REPORT_FILE
    try:
        atomic_write(page_path, lambda f: f.write(page))
        text = json.dumps(figures, indent=2, ensure_ascii=False).encode("utf-8")
        atomic_write(Path(out) / FIGURES_FILE, lambda f: f.write(text))
    except OSError as err:
        raise UserError(
            f"cannot write the report in {out} ({err.strerror or err}): free some space or pass "
            "--out with a writable folder"
        ) from err
    return figures | {"report": str(page_path)}

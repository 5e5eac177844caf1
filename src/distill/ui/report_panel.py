"""The Library tab's report panel: (re)make the selected model's report and offer it for
download — `distill.report`, as `distill model report` uses it.

A model trained here keeps its report in its run folder (runs/<name>/report/); one without its
run (or with a run outside this home) gets it in the page's own folder (ui/reports/<id>/): both
are folders the page may serve.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from distill.errors import UserError
from distill.ui.common import UIContext, shown_errors


def build(ctx: UIContext, model: gr.Dropdown) -> None:
    """A "Report" button for the model picked in `model` (a dropdown of library ids)."""
    with gr.Accordion("Report", open=False):
        gr.Markdown(
            "One page to read, keep or share: the loss curves, a few of its recordings next to "
            "the model's resynthesis of them (players and spectrograms), the held-out MR-STFT "
            "and what each slider changes. It takes a few seconds per recording."
        )
        button = gr.Button("Report", elem_id="lib-report")
        status = gr.Markdown(elem_id="lib-report-status")
        download = gr.File(
            label="Model report", interactive=False, visible=False, elem_id="lib-report-file"
        )

    @shown_errors
    def make(ref):
        if not ref:
            raise UserError("pick a model first")
        path, figures = make_report(ctx, ref)
        held_out = figures["heldout_mrstft"]
        lines = [f"Report of **{figures['model']}** written to `{path}`."]
        if held_out is not None:
            lines.append(f"Held-out MR-STFT: **{held_out:.2f}** (0 = identical, lower is better).")
        if not figures["curves"]:
            lines.append(figures["no_curves"])
        return "\n\n".join(lines), gr.File(value=str(path), visible=True)

    button.click(make, [model], [status, download], api_name="model_report")


def make_report(ctx: UIContext, ref: str) -> tuple[Path, dict]:
    """(the page's path, its figures) for a library model, written where the page can serve it."""
    from distill.library.store import Library
    from distill.report import REPORT_FILE, report_folder, run_of, write_report

    library = Library(ctx.home)
    entry = library.resolve(ref)
    out = report_folder(entry, library.home)
    served = [Path(d).resolve() for d in ctx.served_dirs()]
    if run_of(entry) is None or not any(out.resolve().is_relative_to(d) for d in served):
        out = ctx.ui_dir / "reports" / (entry.id or "model")  # (a run outside this home too)
    figures = write_report(
        entry.path,
        run=run_of(entry),
        out=out,
        name=entry.name,
        model_id=entry.id,
        device=ctx.device,
    )
    return out / REPORT_FILE, figures

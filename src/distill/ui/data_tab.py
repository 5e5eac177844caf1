"""Data tab: upload recordings or name a folder → the dataset check's verdicts, summary and
waveform thumbnails (`distill.audio.check.check_dataset`, as `distill dataset check` shows them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import gradio as gr

from distill.audio.check import MIN_USABLE_FILES, DatasetReport, check_dataset
from distill.errors import UserError
from distill.home import safe_name
from distill.ui.common import UIContext, fmt, shown_errors
from distill.ui.uploads import save_uploads

TABLE_HEADERS = ["", "file", "verdict", "reason", "rate (Hz)", "channels", "length (s)", "peak"]


@dataclass
class DataTab:
    checked_folder: gr.State  # the folder last checked (str), for "Train on this folder"
    use_button: gr.Button


def build(ctx: UIContext) -> DataTab:
    gr.Markdown(
        "Give Distill the recordings to learn from: **drop audio files** below, or type the "
        f"**path of a folder** that holds them. Every file is checked; at least "
        f"{MIN_USABLE_FILES} usable files are needed to train (20 or more work better)."
    )
    with gr.Row():
        with gr.Column():
            # No file_types: gradio would refuse the whole drop for one stray file; each file
            # is checked on the way in instead (uploads.py) and the bad ones are listed.
            files = gr.File(
                label="Audio files (WAV, FLAC, AIFF, OGG, MP3)",
                file_count="multiple",
                elem_id="data-upload",
            )
            set_name = gr.Textbox(
                label="Name for these sounds",
                placeholder="e.g. field recordings (default: upload + date)",
                elem_id="data-set-name",
            )
            upload_button = gr.Button("Upload and check", variant="primary")
        with gr.Column():
            folder = gr.Textbox(
                label="…or a folder on this computer",
                placeholder="/home/me/Music/rain",
                elem_id="data-folder",
            )
            check_button = gr.Button("Check folder", variant="primary", elem_id="data-check")
    summary = gr.Markdown(elem_id="data-summary")
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="Files",
        interactive=False,
        wrap=True,
        elem_id="data-table",
    )
    thumbnails = gr.Gallery(
        label="Waveforms", columns=4, height="auto", object_fit="contain", elem_id="data-thumbs"
    )
    checked = gr.State("")
    use_button = gr.Button("Train on these sounds →", visible=False, elem_id="data-use")

    @shown_errors
    def check_folder(path: str, progress=gr.Progress()):  # noqa: B008 (gradio's idiom)
        if not (path or "").strip():
            raise UserError("type the path of a folder of recordings first")
        return _check(ctx, Path(path.strip()), progress)

    @shown_errors
    def upload(paths: list[str] | None, name: str, progress=gr.Progress()):  # noqa: B008
        name = (name or "").strip() or f"upload {datetime.now():%Y-%m-%d %H%M%S}"
        saved = save_uploads(paths or [], ctx.uploads_dir, name, ctx.max_upload_bytes)
        notes = [f"- **{sent}** not copied: {why}" for sent, why in saved.rejected]
        if saved.folder is None:
            raise UserError(
                "none of the files could be used: "
                + "; ".join(f"{sent}: {why}" for sent, why in saved.rejected)
            )
        out = _check(ctx, saved.folder, progress)
        head = f"Copied {len(saved.copied)} file(s) to `{saved.folder}`."
        return ("\n".join([head, *notes, "", out[0]]), *out[1:])

    outputs = [summary, table, thumbnails, checked, use_button]
    check_button.click(check_folder, [folder], outputs, api_name="check_folder")
    folder.submit(check_folder, [folder], outputs, api_name=False)
    upload_button.click(upload, [files, set_name], outputs, api_name="upload_sounds")
    return DataTab(checked_folder=checked, use_button=use_button)


def _check(ctx: UIContext, folder: Path, progress) -> tuple:
    def on_file(index: int, total: int, name: str) -> None:
        progress((index, total), desc=f"checking {name}")

    report = check_dataset(folder, thumbnails_dir=_thumbnail_dir(ctx, folder), on_file=on_file)
    gallery = [(f.thumbnail, f"{f.path} — {f.verdict.value}") for f in report.files if f.thumbnail]
    return (
        _summary(report),
        [_row(f) for f in report.files],
        gallery,
        str(report.directory),
        gr.Button(visible=report.ok),
    )


def _thumbnail_dir(ctx: UIContext, folder: Path) -> Path:
    """One thumbnail folder per checked folder, inside the page's own folder."""
    resolved = folder.expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:10]
    return ctx.ui_dir / "thumbnails" / f"{safe_name(resolved.name, fallback='folder')}-{digest}"


def _row(f) -> list:
    return [
        "✓" if f.usable else "✗",
        f.path,
        f.verdict.value,
        f.reason,
        f.sample_rate or "",
        f.channels or "",
        "" if f.duration is None else round(f.duration, 2),
        "" if f.peak_dbfs is None else f"{fmt(f.peak_dbfs, 3)} dBFS",
    ]


def _summary(report: DatasetReport) -> str:
    data = report.summary()
    verdicts = ", ".join(f"{name} {n}" for name, n in sorted(data["verdicts"].items()))
    rates = ", ".join(f"{rate} Hz ×{n}" for rate, n in data["sample_rates"].items()) or "-"
    lines = [
        f"**{data['usable_files']} of {data['files_checked']} files usable** — "
        f"{data['usable_duration']:.1f} s of audio in `{data['directory']}`",
        "",
        f"verdicts: {verdicts}; sample rates: {rates}"
        + (f"; {data['ignored_files']} notes/pictures ignored" if data["ignored_files"] else ""),
    ]
    lines += [f"- warning: {w}" for w in data["warnings"]]
    if report.problem:
        lines += ["", f"**⚠ {report.problem}**"]
    else:
        lines += ["", "Ready to train: press **Train on these sounds** below."]
    return "\n".join(lines)

"""Data tab: upload recordings (files or a whole folder) or name a folder → the dataset check's
verdicts, summary and waveform thumbnails (`distill.audio.check.check_dataset`, as `distill
dataset check` shows them); a click on a row or a thumbnail plays that sound."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import gradio as gr
import numpy as np
import soundfile as sf

from distill.audio.check import MIN_USABLE_FILES, DatasetReport, check_dataset
from distill.errors import UserError
from distill.home import safe_name
from distill.ui.common import UIContext, fmt, shown_errors
from distill.ui.uploads import save_uploads

TABLE_HEADERS = ["", "file", "verdict", "note", "rate (Hz)", "channels", "length (s)", "peak"]
UPLOAD_HEIGHT = 220  # pixels: a long list of dropped files scrolls inside the box
LISTEN_BLOCK = 1 << 16  # frames read at a time when a sound is copied for listening


@dataclass
class DataTab:
    checked_folder: gr.State  # the folder last checked (str), for "Train on this folder"
    use_button: gr.Button


def build(ctx: UIContext) -> DataTab:
    gr.Markdown(
        "Give Distill the recordings to learn from: **drop audio files** below, choose a whole "
        "folder, or type the **path of a folder** on this computer. Every file is checked; at "
        f"least {MIN_USABLE_FILES} usable files are needed to train (20 or more work better)."
    )
    with gr.Row():
        with gr.Column():
            # No file_types: gradio would refuse the whole drop for one stray file; each file
            # is checked on the way in instead (uploads.py) and the bad ones are listed.
            files = gr.File(
                label="Audio files (WAV, FLAC, AIFF, OGG, MP3)",
                file_count="multiple",
                height=UPLOAD_HEIGHT,
                elem_id="data-upload",
            )
            set_name = gr.Textbox(
                label="Name for these sounds",
                placeholder="e.g. field recordings (default: upload + date)",
                elem_id="data-set-name",
            )
            with gr.Row():
                upload_button = gr.Button(
                    "Upload and check", variant="primary", elem_id="data-upload-button"
                )
                folder_upload = gr.UploadButton(
                    "Choose a whole folder…", file_count="directory", elem_id="data-upload-folder"
                )
        with gr.Column():
            folder = gr.Textbox(
                label="…or a folder on this computer",
                placeholder="/home/me/Music/rain",
                elem_id="data-folder",
            )
            check_button = gr.Button("Check folder", variant="primary", elem_id="data-check")
    summary = gr.Markdown(elem_id="data-summary")
    use_button = gr.Button("Train on these sounds →", visible=False, elem_id="data-use")
    listen = gr.Audio(
        label="Listen: click a file in the table or a waveform",
        type="filepath",
        interactive=False,
        elem_id="data-player",
    )
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="Files",
        interactive=False,
        wrap=True,
        elem_id="data-table",
    )
    thumbnails = gr.Gallery(
        label="Waveforms",
        columns=4,
        height="auto",
        object_fit="contain",
        allow_preview=False,
        elem_id="data-thumbs",
    )
    checked = gr.State("")
    # The checked files (relative paths) in table order and in gallery order: a click names a
    # row or a picture, never a path, so only a checked file can be played.
    listed = gr.State({"rows": [], "thumbnails": []})

    @shown_errors
    def check_folder(path: str, progress=gr.Progress()):  # noqa: B008 (gradio's idiom)
        if not (path or "").strip():
            raise UserError("type the path of a folder of recordings first")
        return _check(ctx, Path(path.strip()), progress)

    @shown_errors
    def upload(paths: list[str] | None, name: str, progress=gr.Progress()):  # noqa: B008
        return _upload(paths, name, progress, whole_folder=False)

    @shown_errors
    def upload_folder(paths: list[str] | None, name: str, progress=gr.Progress()):  # noqa: B008
        return _upload(paths, name, progress, whole_folder=True)

    def _upload(paths, name, progress, whole_folder: bool):
        name = (name or "").strip() or f"upload {datetime.now():%Y-%m-%d %H%M%S}"
        saved = save_uploads(
            paths or [], ctx.uploads_dir, name, ctx.max_upload_bytes, only_audio=whole_folder
        )
        notes = [f"- **{sent}** not copied: {why}" for sent, why in saved.rejected]
        if saved.skipped:
            notes.append(f"- {saved.skipped} file(s) that are not audio (notes, pictures…) skipped")
        if saved.folder is None:
            why = "; ".join(f"{sent}: {why}" for sent, why in saved.rejected)
            raise UserError(
                "none of the files could be used" + (f": {why}" if why else ": no audio files")
            )
        out = _check(ctx, saved.folder, progress)
        head = f"Copied {len(saved.copied)} file(s) to `{saved.folder}`."
        return ("\n".join([head, *notes, "", out[0]]), *out[1:])

    @shown_errors
    def play(where: str, folder: str, files: dict, evt: gr.SelectData):
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        names = (files or {}).get(where) or []
        if not folder or not isinstance(index, int) or not 0 <= index < len(names):
            return gr.skip()
        return str(_listening_copy(ctx, Path(folder), names[index]))

    outputs = [summary, table, thumbnails, checked, use_button, listed]
    check_button.click(check_folder, [folder], outputs, api_name="check_folder")
    folder.submit(check_folder, [folder], outputs, api_name=False)
    upload_button.click(upload, [files, set_name], outputs, api_name="upload_sounds")
    folder_upload.upload(upload_folder, [folder_upload, set_name], outputs, api_name=False)
    rows, pictures = gr.State("rows"), gr.State("thumbnails")
    table.select(play, [rows, checked, listed], listen, api_name=False)
    thumbnails.select(play, [pictures, checked, listed], listen, api_name=False)
    return DataTab(checked_folder=checked, use_button=use_button)


def _check(ctx: UIContext, folder: Path, progress) -> tuple:
    def on_file(index: int, total: int, name: str) -> None:
        progress((index, total), desc=f"checking {name}")

    report = check_dataset(folder, thumbnails_dir=_thumbnail_dir(ctx, folder), on_file=on_file)
    pictured = [f for f in report.files if f.thumbnail]
    gallery = [(f.thumbnail, f"{f.path} — {f.verdict.value}") for f in pictured]
    return (
        _summary(report),
        [_row(f) for f in report.files],
        gallery,
        str(report.directory),
        gr.Button(visible=report.ok),
        {"rows": [f.path for f in report.files], "thumbnails": [f.path for f in pictured]},
    )


def _thumbnail_dir(ctx: UIContext, folder: Path) -> Path:
    """One thumbnail folder per checked folder, inside the page's own folder."""
    resolved = folder.expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:10]
    return ctx.ui_dir / "thumbnails" / f"{safe_name(resolved.name, fallback='folder')}-{digest}"


def _listening_copy(ctx: UIContext, folder: Path, relative: str) -> Path:
    """A 16-bit WAV copy of a checked file, in the page's own folder (the page serves no other
    folder, and every browser plays WAV); made once per version of the file."""
    source = folder / relative
    try:
        stat = source.stat()
    except OSError as err:
        raise UserError(f"{relative} is gone from {folder}: check the folder again") from err
    key = f"{source.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    name = safe_name(Path(relative).stem, fallback="sound")
    target = ctx.ui_dir / "listen" / digest / f"{name}.wav"
    if target.is_file():
        return target
    from distill.atomic import atomic_write

    try:
        with sf.SoundFile(source) as f:

            def write(out) -> None:
                with sf.SoundFile(
                    out,
                    "w",
                    samplerate=f.samplerate,
                    channels=f.channels,
                    subtype="PCM_16",
                    format="WAV",
                ) as copy:
                    for block in f.blocks(blocksize=LISTEN_BLOCK, dtype="float32", always_2d=True):
                        copy.write(np.nan_to_num(np.clip(block, -1.0, 1.0)))

            atomic_write(target, write)
    except (OSError, sf.LibsndfileError, RuntimeError) as err:
        raise UserError(f"{relative} cannot be played: it does not decode as audio") from err
    return target


def _row(f) -> list:
    return [
        "✓" if f.usable else "✗",
        f.path,
        f.verdict.value,
        _note(f.verdict.value, f.reason),
        f.sample_rate or "",
        f.channels or "",
        "" if f.duration is None else round(f.duration, 2),
        "" if f.peak_dbfs is None else f"{fmt(f.peak_dbfs, 3)} dBFS",
    ]


def _note(verdict: str, reason: str) -> str:
    """The reason, without the verdict the column beside it already says (empty for a plain
    "ok")."""
    words = verdict.replace("_", " ").casefold()
    head, sep, rest = reason.partition(": ")
    if reason.casefold() == words:
        return ""
    if sep and head.casefold() in (words, verdict.casefold()):
        return rest
    return reason


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

"""Library tab: the models table with search, a model's details (training summary, sliders with
their safe ranges), rename, description and tags (the boxes hold the chosen model's own), delete
(after a confirmation), download as a `.distill` file and import of one —
`distill.library.store.Library`, as `distill model …` uses it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from distill.controls.sliders import Controls
from distill.errors import UserError
from distill.library.store import Library
from distill.model.file import read_metadata
from distill.ui import report_panel
from distill.ui.common import UIContext, fmt, model_choices, shown_errors

TABLE_HEADERS = [
    "name",
    "id",
    "tags",
    "dataset",
    "files",
    "audio (s)",
    "epochs",
    "sliders",
    "added",
]


@dataclass
class LibraryTab:
    search: gr.Textbox
    refresh: object  # fn(search, current model) → [table, model dropdown]
    refresh_inputs: list
    refresh_outputs: list


def build(ctx: UIContext) -> LibraryTab:
    with gr.Row():
        search = gr.Textbox(
            label="Search", placeholder="name, tag or description", scale=4, elem_id="lib-search"
        )
        search_button = gr.Button("Search", scale=1, elem_id="lib-search-button")
    table = gr.Dataframe(
        headers=TABLE_HEADERS, label="Models", interactive=False, wrap=True, elem_id="lib-table"
    )
    model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True, elem_id="lib-model")
    details = gr.Markdown(elem_id="lib-details")
    with gr.Accordion("Rename, describe", open=False):
        with gr.Row():
            new_name = gr.Textbox(label="Name", scale=3, elem_id="lib-new-name")
            rename = gr.Button("Rename", scale=1, elem_id="lib-rename")
        with gr.Row():
            description = gr.Textbox(label="Description", scale=3, elem_id="lib-description")
            tags = gr.Textbox(label="Tags (comma-separated)", scale=2, elem_id="lib-tags")
            describe = gr.Button("Save description and tags", scale=1, elem_id="lib-describe")
    with gr.Row():
        export = gr.Button("Download this model (.distill)", elem_id="lib-export")
        delete = gr.Button("Delete this model…", variant="stop", elem_id="lib-delete")
    exported = gr.File(
        label="Model file", interactive=False, visible=False, elem_id="lib-export-file"
    )
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, delete it", variant="stop", elem_id="lib-confirm-delete")
        keep = gr.Button("Cancel", elem_id="lib-keep")
    with gr.Accordion("Import a .distill file", open=False):
        upload = gr.File(label="Model file", file_types=[".distill"], elem_id="lib-import-file")
        import_button = gr.Button("Import", elem_id="lib-import")
    report_panel.build(ctx, model)

    library = Library(ctx.home)

    @shown_errors
    def list_models(text):
        return [_row(e) for e in library.list((text or "").strip() or None)]

    def refresh(text, current):
        choices = model_choices(ctx.home)
        ids = [value for _, value in choices]
        value = current if current in ids else (ids[0] if ids else None)
        return list_models(text), gr.Dropdown(choices=choices, value=value)

    @shown_errors
    def show(ref):
        """The details, and the edit boxes filled with this model's own name, description and
        tags (never what was typed for the model shown before)."""
        if not ref:
            empty = "The library is empty: train a model in the **Train** tab, or import one."
            return empty, "", "", ""
        entry = library.resolve(ref)
        return _details(entry), entry.name, entry.description or "", ", ".join(entry.tags)

    @shown_errors
    def do_export(ref):
        if not ref:
            raise UserError("pick a model first")
        entry = library.resolve(ref)
        folder = ctx.ui_dir / "exports" / (entry.id or "file")
        folder.mkdir(parents=True, exist_ok=True)
        path = library.export(entry, folder, overwrite=True)
        return gr.File(value=str(path), visible=True)

    def pick(rows, evt: gr.SelectData):
        """A click in the table selects that row's model."""
        try:
            row = rows.iloc[evt.index[0]] if hasattr(rows, "iloc") else rows[evt.index[0]]
            return _model_id(list(row))
        except (IndexError, TypeError):
            return gr.skip()

    @shown_errors
    def do_rename(ref, name, text):
        if not ref:
            raise UserError("pick a model first")
        old = library.resolve(ref)
        entry = library.rename(old, name or "")
        gr.Info(f"Renamed {old.name} to {entry.name}.")
        return *refresh(text, entry.id), entry.name

    @shown_errors
    def do_describe(ref, text_description, text_tags, text):
        if not ref:
            raise UserError("pick a model first")
        tag_list = [t.strip() for t in (text_tags or "").split(",") if t.strip()]
        entry = library.describe(ref, description=text_description or "", tags=tag_list)
        gr.Info(f"Saved the description and tags of {entry.name}.")
        return refresh(text, entry.id)[0], _details(entry)

    @shown_errors
    def ask(ref):
        if not ref:
            raise UserError("pick a model first")
        entry = library.resolve(ref)
        text = (
            f"**Delete {entry.name}** and its file? Its presets go with it. This cannot be undone."
        )
        return gr.Row(visible=True), text

    @shown_errors
    def do_delete(ref, text):
        gone = library.delete(ref)
        gr.Info(f"Deleted {gone.name}.")
        return gr.Row(visible=False), *refresh(text, None)

    @shown_errors
    def do_import(path, text):
        if not path:
            raise UserError("choose a .distill file to import first")
        if Path(path).suffix.lower() != ".distill":
            raise UserError(f"{Path(path).name} is not a .distill model file")
        entry = library.import_file(path)
        gr.Info(f"Imported {entry.name}.")
        return refresh(text, entry.id)

    search_button.click(list_models, [search], table, api_name="library_search")
    search.submit(list_models, [search], table, api_name=False)
    model.change(show, [model], [details, new_name, description, tags], api_name=False)
    table.select(pick, [table], model, api_name=False)
    rename.click(do_rename, [model, new_name, search], [table, model, new_name], api_name=False)
    describe.click(
        do_describe, [model, description, tags, search], [table, details], api_name=False
    )
    delete.click(ask, [model], [confirm_row, confirm_text], api_name=False)
    keep.click(lambda: gr.Row(visible=False), None, confirm_row, api_name=False)
    confirm.click(do_delete, [model, search], [confirm_row, table, model], api_name=False)
    import_button.click(do_import, [upload, search], [table, model], api_name="import_model")
    export.click(do_export, [model], exported, api_name="export_model")
    return LibraryTab(
        search=search,
        refresh=refresh,
        refresh_inputs=[search, model],
        refresh_outputs=[table, model],
    )


def _row(e) -> list:
    return [
        e.name,
        e.id,
        ", ".join(e.tags),
        e.dataset or "",
        "" if e.files is None else e.files,
        "" if e.duration_s is None else round(e.duration_s, 1),
        "" if e.epochs is None else e.epochs,
        len(e.controls),
        (e.created or "")[:10],
    ]


def _model_id(row: list) -> str:
    return str(row[TABLE_HEADERS.index("id")])


def _details(entry) -> str:
    data = entry.to_dict()
    final = data["final_losses"]
    losses = (
        f"{fmt(final.get('train_total'))} on its training sounds, "
        f"{fmt(final.get('val_total'))} on held-back ones (lower is better)"
    )
    epochs = entry.epochs_text()
    dataset = entry.dataset or "-"
    if entry.files is not None:
        dataset += f" ({entry.files} files"
        dataset += f", {entry.duration_s:.1f} s of audio)" if entry.duration_s is not None else ")"
    lines = [
        f"### {entry.name}",
        entry.description or "*no description*",
        "",
        f"- **id** `{entry.id}`" + (f" — tags: {', '.join(entry.tags)}" if entry.tags else ""),
        f"- **trained** {entry.trained or '-'} on {dataset}",
        f"- **preset** {entry.training.get('preset') or '-'}, **epochs** {epochs}",
        f"- **how far its copies are from your sounds** {losses}",
        f"- **sound descriptors** (latent size) {entry.latent_dim}",
        f"- **file** `{entry.path}`",
    ]
    controls = _controls(entry.path)
    if controls:
        lines += ["", "**Sliders** (safe range in slider units, −10…+10):", "```"]
        lines += [*controls.describe(), "```"]
    else:
        lines += ["", "No sliders (the latent analysis is missing)."]
    return "\n".join(lines)


def _controls(path: Path) -> Controls | None:
    """The model's sliders, read from its file's header (no weights loaded)."""
    try:
        data = read_metadata(path).controls
    except UserError:
        return None
    return Controls.from_dict(data) if data else None

"""History tab: recent takes with their thumbnails and parameters; two of them side by side (A/B)
with the settings that differ (the players follow A and B), a joined A/B file, replay, delete,
and a zip of the chosen takes — all through `distill.library.history.History`, as `distill
history …` uses it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import gradio as gr

from distill.errors import UserError
from distill.generation.render import replay_history
from distill.library.history import History
from distill.library.store import Library
from distill.ui.common import UIContext, fmt, model_choices, shown_errors
from distill.ui.zips import Member, write_zip

TABLE_HEADERS = ["id", "created", "model", "seed", "length (s)", "spatial", "sliders", "blend"]
# Short columns get the width their content needs (a header never breaks inside a word); the
# sliders and blend columns share the rest and wrap. Together 100 %: nothing is cut off.
COLUMN_WIDTHS = ["8%", "14%", "10%", "8%", "10%", "7%", "27%", "16%"]  # of the table's width
LIST_LIMIT = 50
# What a listener calls each setting a comparison lists (History.compare's dotted keys).
SETTING_WORDS = {
    "params.seed": "seed",
    "params.duration": "duration (s)",
    "params.variation": "variation",
    "params.mode": "mode",
    "params.density": "density",
    "params.level": "level",
    "params.like": "like this recording",
    "params.like_sha256": "like this recording (its content)",
    "params.spatial.mode": "spatial mode",
    "params.spatial.width": "stereo width",
    "params.spatial.azimuth": "direction (°)",
    "params.spatial.elevation": "height (°)",
    "params.spatial.orbit": "circling (s per turn)",
    "model.name": "model",
    "model.id": "model id",
    "model.file": "model file",
    "export.format": "file format",
    "export.sample_rate": "sample rate (Hz)",
    "export.bit_depth": "bit depth",
    "export.lufs": "loudness target (LUFS)",
    "export.peak_dbfs": "peak ceiling (dBFS)",
}
_BLEND_KEY = re.compile(r"params\.blend\.(\d+)\.(\w+)(?:\.(.+))?")


@dataclass
class HistoryTab:
    refresh: object  # fn(model filter, a, b) → updates of refresh_outputs
    refresh_inputs: list
    refresh_outputs: list


def build(ctx: UIContext) -> HistoryTab:
    gr.Markdown(
        "Every take generated in the Generate tab (or with `distill generate`) is kept here. "
        "Pick two to hear them side by side and see which settings differ."
    )
    with gr.Row():
        model_filter = gr.Dropdown(
            label="Model",
            choices=[("(all models)", "")],
            value="",
            scale=3,
            allow_custom_value=True,
            elem_id="hist-filter",
        )
        refresh_button = gr.Button("Refresh", scale=1, elem_id="hist-refresh")
    gallery = gr.Gallery(
        label="Recent takes (click one to make it A)",
        columns=4,
        height=260,
        object_fit="contain",
        allow_preview=False,
        elem_id="hist-gallery",
    )
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="Parameters",
        interactive=False,
        wrap=True,
        max_height=300,
        column_widths=COLUMN_WIDTHS,
        elem_id="hist-table",
    )
    with gr.Row():
        pick_a = gr.Dropdown(label="A", choices=[], allow_custom_value=True, elem_id="hist-a")
        pick_b = gr.Dropdown(label="B", choices=[], allow_custom_value=True, elem_id="hist-b")
    with gr.Row():
        compare = gr.Button("Compare A and B", variant="primary", elem_id="hist-compare")
        ab_button = gr.Button("A/B file (A, a gap, then B)", elem_id="hist-ab-file")
        replay = gr.Button("Replay A (render it again)", elem_id="hist-replay")
        delete = gr.Button("Delete A…", variant="stop", elem_id="hist-delete")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, delete it", variant="stop", elem_id="hist-confirm-delete")
        keep = gr.Button("Cancel")
    with gr.Row():
        player_a = gr.Audio(label="A", type="filepath", interactive=False, elem_id="hist-player-a")
        player_b = gr.Audio(label="B", type="filepath", interactive=False, elem_id="hist-player-b")
    differences = gr.Dataframe(
        headers=["setting", "A", "B"],
        label="What differs",
        interactive=False,
        wrap=True,
        elem_id="hist-diff",
    )
    result = gr.File(label="File", interactive=False, visible=False, elem_id="hist-file")
    with gr.Accordion("Download several takes as one zip", open=False):
        with gr.Row():
            zip_pick = gr.Dropdown(
                label="Takes (none chosen = every take listed above)",
                choices=[],
                multiselect=True,
                allow_custom_value=True,  # a script may name takes the page has not listed
                scale=3,
                elem_id="hist-zip-pick",
            )
            zip_button = gr.Button("Make the zip", scale=1, elem_id="hist-zip")
        zipped = gr.File(label="Zip", interactive=False, visible=False, elem_id="hist-zip-file")

    history = History(ctx.home)
    entry_ids = gr.State([])  # ids in gallery order, for gallery clicks

    @shown_errors
    def refresh(model_ref, a, b):
        entries = history.list(model_ref or None, limit=LIST_LIMIT)
        choices = [(_label(e), e.id) for e in entries]
        ids = [e.id for e in entries]
        models = model_choices(ctx.home)
        filter_update = gr.Dropdown(
            choices=[("(all models)", ""), *models],
            value=model_ref if model_ref in [v for _, v in models] else "",
        )
        a = a if a in ids else (ids[1] if len(ids) > 1 else (ids[0] if ids else None))
        b = b if b in ids else (ids[0] if ids else None)
        return (
            filter_update,
            [(str(e.thumbnail), _label(e)) for e in entries],
            [_row(e) for e in entries],
            gr.Dropdown(choices=choices, value=a),
            gr.Dropdown(choices=choices, value=b),
            ids,
            gr.Dropdown(choices=choices, value=[]),
        )

    def select(ids, evt: gr.SelectData):
        try:
            return ids[evt.index]
        except (IndexError, TypeError):
            return gr.skip()

    @shown_errors
    def do_compare(a, b):
        if not a or not b:
            raise UserError("pick two takes, A and B, first")
        first, second = history.get(a), history.get(b)
        rows = _differences(history.compare(first, second))
        if not rows:
            rows = [["(nothing)", "the same settings", "the same settings"]]
        return str(first.audio), str(second.audio), rows

    def follow(a, b):
        """The players and the differences follow A and B as they change (a pick, a delete):
        never a comparison of a pair no longer chosen."""
        try:
            return do_compare(a, b)
        except gr.Error:
            return None, None, []

    @shown_errors
    def do_ab_file(a, b):
        if not a or not b:
            raise UserError("pick two takes, A and B, first")
        first, second = history.get(a), history.get(b)
        folder = ctx.ui_dir / "ab"
        folder.mkdir(parents=True, exist_ok=True)
        path = history.ab_file(first, second, folder / f"ab-{first.id[:8]}-{second.id[:8]}.wav")
        return str(path)

    @shown_errors
    def do_replay(a):
        if not a:
            raise UserError("pick a take (A) first")
        gone = _deleted_models(ctx, history.get(a))
        if gone:
            names = " and ".join(repr(name) for name in gone)
            raise UserError(
                f"this take cannot be rendered again: it blends in {names}, deleted from the "
                "library since; import that model again to replay it (the kept take still plays)"
            )
        path = replay_history(history, a, ctx.ui_dir / "replays")
        gr.Info(f"Rendered again: {path.name}")
        return str(path), str(path)

    @shown_errors
    def ask(a):
        if not a:
            raise UserError("pick a take (A) first")
        entry = history.get(a)
        return gr.Row(visible=True), f"**Delete take {_label(entry)}** and its kept audio?"

    @shown_errors
    def do_delete(a, model_ref, b):
        gone = history.delete(a)
        gr.Info(f"Deleted take {gone.id[:8]}.")
        return gr.Row(visible=False), *refresh(model_ref, None, b)

    @shown_errors
    def do_zip(chosen, model_ref):
        listed = [e.id for e in history.list(model_ref or None, limit=LIST_LIMIT)]
        picked = [i for i in (chosen or []) if i] or listed
        if not picked:
            raise UserError("no takes to zip: generate some in the Generate tab first")
        members = []
        for entry in (history.get(i) for i in picked):
            members.append(Member(entry.audio.name, path=entry.audio))
            members.append(Member(f"{entry.audio.stem}.json", data=entry.sidecar))
        stamp = f"{datetime.now():%Y-%m-%d-%H%M%S}"
        path = write_zip(ctx.ui_dir / "zips" / f"history-{stamp}.zip", members)
        return gr.File(value=str(path), visible=True)

    refresh_inputs = [model_filter, pick_a, pick_b]
    refresh_outputs = [model_filter, gallery, table, pick_a, pick_b, entry_ids, zip_pick]
    refresh_button.click(refresh, refresh_inputs, refresh_outputs, api_name="history_list")
    model_filter.input(refresh, refresh_inputs, refresh_outputs, api_name=False)
    gallery.select(select, [entry_ids], pick_a, api_name=False)
    compare.click(
        do_compare, [pick_a, pick_b], [player_a, player_b, differences], api_name="history_compare"
    )
    gr.on(
        [pick_a.change, pick_b.change],
        follow,
        [pick_a, pick_b],
        [player_a, player_b, differences],
        api_name=False,
    )
    zip_button.click(do_zip, [zip_pick, model_filter], zipped, api_name="history_zip")

    def show_file():  # the file box stays hidden until it has something to offer
        return gr.File(visible=True)

    ab_button.click(do_ab_file, [pick_a, pick_b], result, api_name="history_ab_file").success(
        show_file, None, result, api_name=False
    )
    replay.click(do_replay, [pick_a], [player_a, result], api_name="history_replay").success(
        show_file, None, result, api_name=False
    )
    delete.click(ask, [pick_a], [confirm_row, confirm_text], api_name=False)
    keep.click(lambda: gr.Row(visible=False), None, confirm_row, api_name=False)
    confirm.click(
        do_delete, [pick_a, model_filter, pick_b], [confirm_row, *refresh_outputs], api_name=False
    )
    return HistoryTab(
        refresh=refresh, refresh_inputs=refresh_inputs, refresh_outputs=refresh_outputs
    )


def _label(entry) -> str:
    seed = f"seed {entry.seed}" if entry.seed is not None else "no seed"
    return f"{entry.created[:19].replace('T', ' ')} · {entry.model_name} · {seed} · {entry.id[:6]}"


def _row(entry) -> list:
    sidecar = entry.sidecar
    params = sidecar.get("params") or {}
    sliders = sidecar.get("sliders_by_label") or {}
    spatial = params.get("spatial") or {}
    blend = sidecar.get("blend_models") or []
    return [
        entry.id[:8],
        entry.created[:19].replace("T", " "),
        entry.model_name,
        "" if entry.seed is None else entry.seed,
        "" if entry.duration is None else round(entry.duration, 2),
        spatial.get("mode", "mono"),
        ", ".join(f"{k} {v:+.1f}" for k, v in sliders.items()),
        ", ".join(f"{b.get('name')} {fmt(b.get('weight'), 3)} %" for b in blend),
    ]


def _deleted_models(ctx: UIContext, entry) -> list[str]:
    """Names of the take's blend models no longer in the library (its sidecar names them)."""
    library, gone = Library(ctx.home), []
    for voice in entry.sidecar.get("blend_models") or []:
        try:
            library.resolve(str(voice.get("id") or voice.get("name") or ""))
        except UserError:
            gone.append(str(voice.get("name") or voice.get("id")))
    return gone


def _differences(changed: list[tuple[str, object, object]]) -> list[list[str]]:
    """History.compare's rows in words; a slider by index is left out when its label is
    listed (the same change, twice)."""
    labelled = any(key.startswith("sliders.") for key, _, _ in changed)
    rows = []
    for key, a, b in changed:
        if labelled and key.startswith("params.sliders."):
            continue
        rows.append([setting_words(key), _value(a), _value(b)])
    return rows


def setting_words(key: str) -> str:
    """A comparison's dotted key as a listener would say it."""
    if key in SETTING_WORDS:
        return SETTING_WORDS[key]
    if key.startswith("sliders."):
        return f"slider: {key.removeprefix('sliders.')}"
    if key.startswith("params.sliders."):
        return f"slider {int(key.rsplit('.', 1)[1]) + 1}"
    blend = _BLEND_KEY.fullmatch(key)
    if blend:
        number, part, rest = int(blend[1]) + 1, blend[2], blend[3]
        if part == "model":
            return f"blend model {number}"
        if part == "weight":
            return f"blend {number} weight (%)"
        return f"blend {number} {part}" + (f" {rest}" if rest else "")
    return key.removeprefix("params.").replace("_", " ").replace(".", " ")


def _value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return fmt(value, 6)
    return str(value)

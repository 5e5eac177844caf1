"""The page: five tabs over the package's functions, and serving it on this machine.

    blocks = build_app(home)                 # gr.Blocks; its training job is made here
    url = serve(blocks, home)                # 127.0.0.1, a free port from 7860, returns the URL

Nothing is global: each app has its own context and its own training job, so tests can run
several side by side.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from distill.home import resolve_home
from distill.ui import data_tab, generate_tab, history_tab, library_tab, train_tab
from distill.ui.common import DEFAULT_MAX_UPLOAD_MB, MB, UIContext
from distill.ui.jobs import TrainingJob

log = logging.getLogger("distill.ui")

LOCALHOST = "127.0.0.1"
TITLE = "Distill"
SHUTDOWN_WAIT_SECONDS = 60  # a stopping training saves a checkpoint and the model first
# Waveform thumbnails are 400 × 80 pixels: wide cells (with room for the caption), not squares.
# A "centred" slider (−10…+10, 0 the training sounds' average) is filled from its middle to the
# value, not from −10: gradio sets --range_progress (the value's position, 0…100 %) on it.
CSS = """
#data-thumbs .thumbnail-item, #hist-gallery .thumbnail-item { aspect-ratio: 3 / 1; }
.centred input[type=range]::-webkit-slider-runnable-track {
  background: linear-gradient(to right,
    var(--neutral-200) min(50%, var(--range_progress)),
    var(--slider-color) min(50%, var(--range_progress)),
    var(--slider-color) max(50%, var(--range_progress)),
    var(--neutral-200) max(50%, var(--range_progress))) !important;
}
.centred input[type=range]::-moz-range-progress { background: transparent !important; }
"""


def build_app(
    home: str | Path | None = None,
    *,
    device: str = "auto",
    training_overrides: dict | None = None,
    job: TrainingJob | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
) -> gr.Blocks:
    """The Distill page for `home`. `training_overrides` (tests) are passed to every training
    the page starts, e.g. tiny conv widths; `job` lets the caller keep the training job it
    stops at shutdown (one is made if not given)."""
    home_dir = resolve_home(home)
    ctx = UIContext(home=home_dir, device=device, max_upload_bytes=int(max_upload_mb * MB))
    job = job or TrainingJob(home_dir, device=device, overrides=training_overrides)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(
            "# Distill\nYour sounds in, new sounds out: check your recordings (**Data**), "
            "**Train** a model on them, play with its sliders (**Generate**), keep your models "
            "(**Library**) and compare takes (**History**)."
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Data", id="data", elem_id="tab-data"):
                data = data_tab.build(ctx)
            with gr.Tab("Train", id="train", elem_id="tab-train") as train_page:
                train = train_tab.build(ctx, job)
            with gr.Tab("Generate", id="generate", elem_id="tab-generate") as generate_page:
                generate = generate_tab.build(ctx)
            with gr.Tab("Library", id="library", elem_id="tab-library") as library_page:
                library = library_tab.build(ctx)
            with gr.Tab("History", id="history", elem_id="tab-history") as history_page:
                history = history_tab.build(ctx)

        data.use_button.click(
            lambda folder: (folder, gr.Tabs(selected="train")),
            [data.checked_folder],
            [train.folder, tabs],
            api_name=False,
        )
        # Each tab re-reads the library, runs and history when shown: another tab (or the CLI)
        # may have changed them.
        model_outputs = [generate.model, *generate.blend_models]
        # A training that saved a model: the Generate and Library lists have it at once, and
        # "Go to Generate" opens it there.
        train.trained.change(generate.refresh, [generate.model], model_outputs, api_name=False)
        train.trained.change(
            library.refresh, library.refresh_inputs, library.refresh_outputs, api_name=False
        )
        train.go_generate.click(
            lambda model_id: (gr.Tabs(selected="generate"), model_id or gr.skip()),
            [train.trained],
            [tabs, generate.model],
            api_name=False,
        )
        train_page.select(train.refresh_runs, None, train.tab_select_outputs, api_name=False)
        generate_page.select(generate.refresh, [generate.model], model_outputs, api_name=False)
        library_page.select(
            library.refresh, library.refresh_inputs, library.refresh_outputs, api_name=False
        )
        history_page.select(
            history.refresh, history.refresh_inputs, history.refresh_outputs, api_name=False
        )
        blocks.load(generate.refresh, [generate.model], model_outputs, api_name=False)
        blocks.load(
            library.refresh, library.refresh_inputs, library.refresh_outputs, api_name=False
        )
        blocks.load(
            history.refresh, history.refresh_inputs, history.refresh_outputs, api_name=False
        )
        blocks.load(train.refresh_runs, None, train.tab_select_outputs, api_name=False)
    return blocks


def served_paths(home: Path) -> list[str]:
    """The only folders of the home whose files the page may serve: what it wrote itself, the
    runs' previews and the kept takes (never the library's model files' folder as a whole)."""
    return [str(p) for p in UIContext(home=Path(home)).served_dirs()]


def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: the page loads nothing from the internet."""
    return gr.themes.Default(
        font=[gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")],
        font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")],
    )


def serve(
    blocks: gr.Blocks,
    home: str | Path,
    *,
    host: str = LOCALHOST,
    port: int | None = None,
    open_browser: bool = False,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
) -> str:
    """Start serving in the background; returns the page's URL."""
    _, url, _ = blocks.launch(
        server_name=host,
        server_port=port,
        inbrowser=open_browser,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
        max_file_size=int(max_upload_mb * MB),
        allowed_paths=served_paths(resolve_home(home)),
        ssr_mode=False,
        theme=theme(),
        css=CSS,
    )
    return url


def launch(
    home: str | Path | None = None,
    *,
    host: str = LOCALHOST,
    port: int | None = None,
    open_browser: bool = True,
    device: str = "auto",
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the page until Ctrl-C, telling `say` its URL; a running training is then stopped
    cleanly (checkpoint and model saved) before the process ends."""
    home_dir = resolve_home(home)
    job = TrainingJob(home_dir, device=device)
    blocks = build_app(home_dir, device=device, job=job, max_upload_mb=max_upload_mb)
    url = serve(
        blocks,
        home_dir,
        host=host,
        port=port,
        open_browser=open_browser,
        max_upload_mb=max_upload_mb,
    )
    say(f"Distill is running at {url}  (Ctrl-C stops it)")
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops as cleanly as Ctrl-C
    try:
        while blocks.is_running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if job.cancel("the web UI was stopped"):
            say("stopping the training: saving a checkpoint and the model…")
            job.wait(SHUTDOWN_WAIT_SECONDS)
        blocks.close()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt

"""`distill demo`: the whole journey on a built-in corpus, in a few minutes on a laptop CPU.

1. Synthesizes a small corpus of varied sounds by DSP (plucks, bells, drums, noise textures, FM
   and bowed notes: distill.audio.synth.demo_corpus) into OUT/corpus.
2. Trains a model on it with `distill train` (progress, previews, Ctrl-C all work the same), for
   --minutes of wall time; the model goes into the library as "demo" (or demo-2, …).
3. Renders a handful of takes with different slider settings into OUT/takes.
4. Says where everything is and what to try next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import DeviceOption, HomeOption, shared
from distill.errors import UserError

TAKE_SECONDS = 8.0
DEMO_LUFS = -18.0  # LUFS of the rendered takes


def demo_command(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the corpus and the rendered takes.")
    ] = Path("distill-demo"),
    minutes: Annotated[
        float, typer.Option(help="Training time in minutes (the schedule is fitted into it).")
    ] = 3.0,
    sounds: Annotated[int, typer.Option(help="Sounds in the synthesized corpus.")] = 36,
    seed: Annotated[int, typer.Option(help="Seed of the corpus, the training and the takes.")] = 0,
    home: HomeOption = None,
    device: DeviceOption = None,
    channels: Annotated[
        str | None, typer.Option(hidden=True, help="Conv widths (tests): see distill train.")
    ] = None,
    chunk_seconds: Annotated[
        float | None, typer.Option(hidden=True, help="Chunk length in seconds (tests).")
    ] = None,
    take_seconds: Annotated[
        float, typer.Option(hidden=True, help="Length of each rendered take.")
    ] = TAKE_SECONDS,
) -> None:
    """Synthesize a demo corpus, train a model on it, and render takes with different sliders."""
    home, device = shared(ctx, home, device)
    if not 5 <= sounds <= 500:
        raise UserError(f"--sounds must be between 5 and 500, got {sounds}")
    if minutes <= 0:
        raise UserError(f"--minutes must be more than 0, got {minutes:g}")
    out = out.expanduser()
    corpus = _write_corpus(out / "corpus", sounds, seed)
    typer.echo(f"demo corpus: {sounds} sounds in {corpus}")

    from distill.cli.train import train_command

    library = train_command(
        ctx,
        data_dir=corpus,
        name="demo",
        max_minutes=minutes,
        seed=seed,
        home=home,
        device=None if device == "auto" else device,
        channels=channels,
        chunk_seconds=chunk_seconds,
    )
    if not library:
        raise UserError("the demo model did not reach the library: see the messages above")

    from distill.audio.write import ExportOptions
    from distill.generation.loaded import load
    from distill.generation.render import render_takes

    loaded = load(library["id"], home=home, device=device)
    labels = loaded.controls.labels if loaded.controls else []
    typer.echo(f"\nrendering takes with {library['name']} into {out / 'takes'}")
    for stem, sliders in _settings(labels):
        params = loaded.params(take_seconds, seed=seed, sliders=sliders, variation=0.5)
        # a loudness target: an early model can be very quiet, and these are for listening
        options = ExportOptions(lufs=DEMO_LUFS)
        (take,) = render_takes(loaded, params, options, out / "takes", stem=stem, home=home)
        shown = ", ".join(sliders) or "all sliders at 0"
        typer.echo(f"  {take.path}  ({shown})")
    _next_steps(library["name"], labels, out)


def _write_corpus(folder: Path, count: int, seed: int) -> Path:
    import soundfile as sf

    from distill.audio import synth

    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, audio in synth.demo_corpus(seed, count):
            path = folder / f"{name}.wav"
            if not path.exists():
                sf.write(path, audio, synth.INTERNAL_RATE, subtype="PCM_24")
    except OSError as err:
        raise UserError(
            f"cannot write the demo corpus to {folder} ({err.strerror}): "
            "choose another folder with --out"
        ) from err
    return folder


def _settings(labels: list[str]) -> list[tuple[str, list[str]]]:
    """A neutral take, then the first two sliders pushed each way (within the safe zone).

    A "loudness" slider is passed over when there are others: the takes are rendered at one
    loudness target, which would level exactly what it changes."""
    settings: list[tuple[str, list[str]]] = [("demo-neutral", [])]
    audible = [label for label in labels if not label.startswith("loudness")] or labels
    for label in audible[:2]:
        slug = label.replace(" ", "-")
        settings += [(f"demo-{slug}-up", [f"{label}=6"]), (f"demo-{slug}-down", [f"{label}=-6"])]
    return settings


def _next_steps(name: str, labels: list[str], out: Path) -> None:
    first = (labels[0] if labels else None) or "1"
    quoted = f'"{first}"' if " " in first else first
    lines = [
        "",
        "next:",
        f"  distill model info {name}                     # its sliders and training summary",
        f"  distill generate {name} -d 30 --slider {quoted}=4 --format flac",
        f"  distill resynth {name} some-file.wav through-{name}.wav",
        "  distill train ~/my-recordings --name mine      # your own sounds (5–500 files)",
        f"  (listen to the takes in {out / 'takes'}; the sidecar .json beside each redoes it)",
    ]
    for line in lines:
        typer.echo(line)

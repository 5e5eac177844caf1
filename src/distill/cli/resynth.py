"""`distill resynth MODEL IN_FILE OUT_FILE`: hear your own material through a model.

The output has the input's sample rate (when it is one Distill exports: 44.1, 48 or 96 kHz;
otherwise 48 kHz) and exactly its length, so it lines up sample for sample in a DAW. Multichannel
input is downmixed to mono first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import (
    DepthOption,
    DeviceOption,
    HomeOption,
    JsonOption,
    LufsOption,
    SliderOption,
    echo_json,
    export_options,
    finite,
    say,
    shared,
)
from distill.errors import UserError

EXPORT_RATES = (44_100, 48_000, 96_000)
FORMATS = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".ogg": "ogg"}


def resynth_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="Model: library name, id (prefix) or .distill file.")
    ],
    in_file: Annotated[Path, typer.Argument(help="Audio file to run through the model.")],
    out_file: Annotated[
        Path, typer.Argument(help="Where to write (.wav, .flac, .mp3 or .ogg); never overwritten.")
    ],
    slider: SliderOption = None,
    bit_depth: DepthOption = "24",
    lufs: LufsOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite OUT_FILE if it exists.")] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
    device: DeviceOption = None,
) -> None:
    """Encode IN_FILE with MODEL, move it with --slider if asked, and decode it to OUT_FILE."""
    home, device = shared(ctx, home, device)
    format = FORMATS.get(out_file.suffix.lower())
    if format is None:
        raise UserError(
            f"{out_file.name}: name the output .wav, .flac, .mp3 or .ogg (the format follows it)"
        )
    sidecar = out_file.with_suffix(".json")
    for taken in (out_file, sidecar):  # the sidecar of another file of that stem, too
        if taken.exists() and not force:
            raise UserError(f"{taken} exists: choose another name or pass --force")
    if not in_file.is_file():
        raise UserError(
            f"{in_file} is a folder: pass an audio file"
            if in_file.is_dir()
            else f"file not found: {in_file}: check the path"
        )

    import numpy as np
    import soxr

    from distill.audio.read import probe, read_mono
    from distill.generation.loaded import load
    from distill.generation.render import describe_sliders, write_resynthesis

    info = probe(in_file)
    rate = info.sample_rate if info.sample_rate in EXPORT_RATES else 48_000
    options = export_options(format, rate, bit_depth, lufs)
    loaded = load(model, home=home, device=device)
    values = loaded.slider_values(slider or [])
    audio = read_mono(in_file, loaded.sample_rate)
    if len(audio) == 0:
        raise UserError(f"{in_file.name} holds no audio")
    out = loaded.resynth(audio, sliders={k: v for k, v in values.items()})
    if rate != loaded.sample_rate:
        out = soxr.resample(out, loaded.sample_rate, rate, quality="HQ").astype(np.float32)
    # exactly the input's length at the output rate: sample-aligned in a DAW
    target = info.frames if rate == info.sample_rate else round(info.duration * rate)
    out = np.pad(out[:target], (0, max(0, target - len(out))))
    sliders = describe_sliders(loaded, values)
    result = write_resynthesis(
        loaded, out, rate, values, options, out_file, source=str(in_file.resolve())
    )
    if json_output:
        echo_json(
            {
                "path": str(result.path),
                "sidecar": str(result.sidecar_path) if result.sidecar_path else None,
                "model": loaded.name,
                "sample_rate": rate,
                "frames": target,
                "sliders": sliders,
                "peak_dbfs": finite(result.peak_dbfs),
            }
        )
    else:
        say(f"{result.path}  ({target / rate:.2f} s at {rate} Hz, through {loaded.name})")

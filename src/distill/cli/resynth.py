"""`distill resynth MODEL IN_FILE OUT_FILE`: hear your own material through a model.

The output has the input's sample rate (when it is one Distill exports: 44.1, 48 or 96 kHz;
otherwise 48 kHz) and exactly its length, so it lines up sample for sample in a DAW. Multichannel
input is downmixed to mono first. Any length runs in bounded memory (the input, its frames and the
output are streams; only the latents are held), with an estimate of the time left on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

import typer

from distill.audio.formats import FORMATS as EXPORT_FORMATS
from distill.audio.formats import SAMPLE_RATES as EXPORT_RATES
from distill.audio.formats import choices
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

T = TypeVar("T")
FORMATS = {f.suffix: f.name for f in EXPORT_FORMATS.values()}  # ".wav" → "wav"


def resynth_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="Model: library name, id (prefix) or .distill file.")
    ],
    in_file: Annotated[Path, typer.Argument(help="Audio file to run through the model.")],
    out_file: Annotated[
        Path, typer.Argument(help=f"Where to write ({choices(FORMATS)}); never overwritten.")
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
            f"{out_file.name}: name the output {choices(FORMATS)} (the format follows it)"
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

    from distill.audio.read import probe
    from distill.generation.loaded import load
    from distill.generation.render import describe_sliders

    info = probe(in_file)
    if info.frames == 0:
        raise UserError(f"{in_file.name} holds no audio")
    rate = info.sample_rate if info.sample_rate in EXPORT_RATES else 48_000
    options = export_options(format, rate, bit_depth, lufs)
    loaded = load(model, home=home, device=device)
    values = loaded.slider_values(slider or [])
    # exactly the input's length at the output rate: sample-aligned in a DAW
    target = info.frames if rate == info.sample_rate else round(info.duration * rate)
    progress = Progress(info.duration, loaded.sample_rate, loaded.name)
    result = _write(loaded, in_file, values, rate, target, options, out_file, progress)
    progress.done()
    sliders = describe_sliders(loaded, values)
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


def _write(loaded, in_file: Path, values, rate: int, target: int, options, out_file, progress):
    """Resynthesize `in_file` through `loaded` and export it, all as a stream of blocks: memory
    stays at a few segments whatever the input's length (generation.resynth holds it whole)."""
    from distill.audio.write_long import write_audio_blocks
    from distill.generation.render import describe_sliders

    labels = describe_sliders(loaded, values)
    return write_audio_blocks(
        out_file,
        _resynthesized(loaded, in_file, values, rate, target, progress),
        rate,
        options,
        tags={
            "title": f"{in_file.stem} through {loaded.name}",
            "model": loaded.name,
            "sliders": ", ".join(f"{k}={v:g}" for k, v in labels.items()) or "none",
        },
        sidecar={  # as generation.render.write_resynthesis writes it
            "format": "distill-resynthesis",
            "model": {"name": loaded.name, "id": loaded.model_id, "file": str(loaded.path)},
            "input": str(in_file.resolve()),
            "sliders": {str(k): v for k, v in values.items()},
            "sliders_by_label": labels,
        },
    )


def _resynthesized(loaded, in_file: Path, values, rate: int, target: int, progress):
    """The model's version of `in_file`, as float32 blocks at `rate` Hz, `target` samples in all.

    The input is read twice (the IF mask needs its loudest moment first), its frames encoded on
    the resynthesis grid as they come (model.grid.encode_stream), each chunk's latent fitted to
    its frames; the latents (D floats every 11 frames) are all that is kept; they decode lazily
    into one segmented inverse with one running phase (spectral.long), as generation.resynth does
    on a whole array."""
    import numpy as np
    import soxr

    from distill.audio.read import iter_mono_blocks
    from distill.generation.frames import DecodedFrames
    from distill.generation.resynth import (
        RESYNTH_FIT_PADDING,
        RESYNTH_FIT_STEPS,
        resynthesis_hop,
    )
    from distill.model.grid import OVERLAP_FIT_STEPS, encode_stream
    from distill.spectral.long import LongAnalysis, iter_synthesize_long

    spectral, stats = loaded.metadata.spectral, loaded.metadata.stats
    analysis = LongAnalysis(
        lambda: progress.counted(iter_mono_blocks(in_file, spectral.sample_rate), "read"),
        spectral,
    )
    hop = resynthesis_hop(loaded.model.config.frames)  # as generation.resynth
    samples_per_frame = spectral.hop_length
    segments = progress.counted(
        (stats.normalize(s) for s in analysis),
        "fit",
        size=lambda s: s.shape[-1] * samples_per_frame,
    )
    latents, _ = encode_stream(  # as generation.resynth
        loaded.model,
        segments,
        stats,
        spectral,
        fit_steps=RESYNTH_FIT_STEPS,
        hop=hop,
        overlap_steps=OVERLAP_FIT_STEPS,
        fit_padding=RESYNTH_FIT_PADDING,
    )
    offset = loaded.slider_offset(values)
    if offset is not None:
        latents = latents + offset.to(latents)
    blocks = iter_synthesize_long(
        DecodedFrames(loaded.model, latents, hop=hop), spectral, length=analysis.length, stats=stats
    )
    resampler = (
        soxr.ResampleStream(spectral.sample_rate, rate, 1, dtype="float32", quality="HQ")
        if rate != spectral.sample_rate
        else None
    )
    written = 0
    for block in progress.counted(blocks, "render"):
        if resampler is not None:
            block = resampler.resample_chunk(block)
        block = block[: target - written]
        written += len(block)
        yield block
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        tail = tail[: target - written]
        written += len(tail)
        yield tail
    if written < target:
        yield np.zeros(target - written, dtype=np.float32)


class Progress:
    """How long a resynthesis will take, on stderr: the input is read twice, then rendered.

    Each stage's share of the time was measured on a 60 s input through a 15-minute model of the
    default size (2 threads): 0.17 s to find the loudest moment (the first read), 43 s to read
    again, encode and fit the latents on the resynthesis grid (model.grid.fit_latents, then
    fit_overlapped; 509 chunks), 2.1 s to render.
    The fit is counted by the frames it has fitted, not by the samples read: a segment of ~22 s
    is read whole before its chunks are fitted, and counting it when read put the estimate one
    segment ahead (a 60 s input stood at "about 2 s left" for 9–12 s).
    The time left is the time so far × (1 − share done) ÷ share done. A line at most every 10 s
    (one line rewritten in place on a terminal); nothing for inputs under a minute in a pipe.
    """

    # One share per pass of each stage, in order: the input is read twice, the second time for
    # the fit, which counts it.
    SHARES: ClassVar[dict[str, tuple[float, ...]]] = {
        "read": (0.004, 0.0),
        "fit": (0.949,),
        "render": (0.047,),
    }
    EVERY_S = 10.0

    def __init__(self, seconds: float, sample_rate: int, model: str) -> None:
        self.expected = max(1.0, seconds * sample_rate)  # samples of a pass, at the model's rate
        self.terminal = sys.stderr.isatty()
        self.show = self.terminal or seconds >= 60
        self.started = self.last = time.monotonic()
        self.share = 0.0
        self.passes: dict[str, int] = {}
        if self.show:
            say(
                f"resynthesizing {_duration(seconds)} through {model}: the input is read twice, "
                "then rendered",
                err=True,
            )

    def counted(
        self, items: Iterable[T], stage: str, size: Callable[[T], int] = len
    ) -> Iterator[T]:
        """`items` passed through, each counted towards the estimate once the consumer is done
        with it and asks for the next: `size(item)` samples of the input."""
        done = self.passes.get(stage, 0)
        self.passes[stage] = done + 1
        share, seen = self.SHARES[stage][done], 0
        if share == 0:  # a pass another stage counts
            yield from items
            return
        base = None
        for item in items:
            if base is None:  # after what the first item needed (an earlier pass) has counted
                base = self.share
            yield item
            seen += size(item)
            self._tick(base + share * min(1.0, seen / self.expected))
        self.share = (self.share if base is None else base) + share

    def _tick(self, share: float) -> None:
        now = time.monotonic()
        if not self.show or now - self.last < (1.0 if self.terminal else self.EVERY_S):
            return
        self.last = now
        elapsed = now - self.started
        left = f", about {_duration(elapsed * (1 - share) / share)} left" if share > 0.02 else ""
        text = f"resynthesis {100 * share:.0f} % after {_duration(elapsed)}{left}"
        sys.stderr.write(f"\r\033[K{text}" if self.terminal else text + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.show and self.terminal:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"

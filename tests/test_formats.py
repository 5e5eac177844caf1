"""The export formats table: every record's claims hold when a file is written and read back.

Each format must round-trip through write_audio (and the block writer) at every bit depth and
sample rate it declares, with its tags; the option check must accept exactly what the records
declare; a lossy record's decoded peak must stay under the ceiling; the CLI lists every format.
"""

from __future__ import annotations

import math
import typing

import mutagen
import numpy as np
import pytest
import soundfile as sf

from distill.audio.formats import BIT_DEPTHS, FORMATS, SAMPLE_RATES, ExportFormat
from distill.audio.write import ExportOptions, write_audio
from distill.audio.write_long import write_audio_blocks
from distill.errors import UserError

RATE = 48_000  # Hz: the source rate of the test tone
TAGS = {"title": "registry take", "model": "m", "seed": "3", "sliders": "", "params": "{}"}


def tone(seconds: float = 0.25, freq: float = 1000.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine at RATE, (T,) float32."""
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def declared() -> list[tuple[str, int, str]]:
    """(format, rate, bit depth) for every combination a record claims; "24" (ignored) where the
    codec decides the depth."""
    return [
        (name, rate, depth)
        for name, f in FORMATS.items()
        for rate in f.sample_rates
        for depth in f.bit_depths or ("24",)
    ]


def dominant_hz(data: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    return float(np.argmax(spectrum)) * rate / len(data)


def assert_reads_back(path, f: ExportFormat, rate: int, depth: str, frames: int) -> None:
    info = sf.info(str(path))
    assert (info.format, info.subtype) == (f.container, f.subtype(depth))
    assert (info.samplerate, info.channels, info.frames) == (rate, 1, frames)
    data, _ = sf.read(str(path), dtype="float64")
    assert dominant_hz(data, rate) == pytest.approx(1000.0, abs=2 * rate / len(data))
    described = mutagen.File(str(path)).pprint()  # ID3 or Vorbis comments, as mutagen finds them
    assert "Distill" in described and "registry take" in described


def test_every_record_is_consistent_and_supported_by_libsndfile():
    for name, f in FORMATS.items():
        assert f.name == name and f.suffix == f".{name}"
        assert f.sample_rates and set(f.sample_rates) <= set(SAMPLE_RATES)
        assert set(f.bit_depths) <= set(BIT_DEPTHS)
        assert bool(f.bit_depths) != bool(f.codec), f"{name}: bit depths or a codec, not both"
        for depth in f.bit_depths or ("24",):
            assert sf.check_format(f.container, f.subtype(depth)), (name, depth)


@pytest.mark.parametrize(("fmt", "rate", "depth"), declared())
def test_every_declared_combination_round_trips_with_its_tags(tmp_path, fmt, rate, depth):
    f = FORMATS[fmt]
    path = tmp_path / f"take{f.suffix}"
    result = write_audio(path, tone(), RATE, ExportOptions(fmt, rate, depth), tags=TAGS)
    assert result.bit_depth == (depth if f.bit_depths else None)
    assert_reads_back(path, f, rate, depth, frames=round(0.25 * rate))


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_block_writer_reads_the_same_record(tmp_path, fmt):
    f = FORMATS[fmt]
    depth = (f.bit_depths or ("24",))[0]
    path = tmp_path / f"long{f.suffix}"
    x = tone(0.5)
    blocks = (x[i : i + 5000] for i in range(0, len(x), 5000))
    options = ExportOptions(fmt, RATE, depth)
    write_audio_blocks(path, blocks, RATE, options, tags=TAGS, in_memory_seconds=0)
    assert_reads_back(path, f, RATE, depth, frames=len(x))


def test_the_option_check_accepts_exactly_what_the_records_declare():
    for name, f in FORMATS.items():
        for rate in SAMPLE_RATES:
            for depth in BIT_DEPTHS:
                claimed = rate in f.sample_rates and (not f.bit_depths or depth in f.bit_depths)
                options = ExportOptions(name, rate, depth)
                if claimed:
                    options.validate()
                else:
                    with pytest.raises(UserError, match=name.upper()):
                        options.validate()


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_decoded_peak_stays_under_the_ceiling(tmp_path, fmt):
    # 0.99 + a 3 kHz partial: a lossy codec overshoots the −1 dBFS ceiling on the first encode,
    # so a lossy format wrongly recorded as lossless would leave a file that peaks above it.
    t = np.arange(RATE // 2) / RATE
    hot = (0.99 * np.sin(2 * np.pi * 440 * t) + 0.4 * np.sin(2 * np.pi * 3000 * t)).astype(
        np.float32
    )
    f = FORMATS[fmt]
    path = tmp_path / f"hot{f.suffix}"
    write_audio(path, hot, RATE, ExportOptions(fmt, f.sample_rates[0], peak_dbfs=-1.0))
    data, _ = sf.read(str(path), dtype="float64")
    assert 20 * math.log10(np.abs(data).max()) <= -1.0


def test_the_cli_offers_every_format():
    from distill.cli import common, resynth

    help_text = typing.get_args(common.FormatOption)[1].help
    assert all(name in help_text for name in FORMATS)
    assert sorted(resynth.FORMATS.values()) == sorted(FORMATS)

"""Export formats, one record each: suffix, bit depths or codec, sample rates, lossy or not, and
the tag writer. `FORMATS` is the one table: the export writers (write.py, write_long.py), the
option check, the CLI's help and the page's choices all read it, so a new format is one record
here (and, for a container not tagged yet, its writer in tags.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from distill.audio import tags

SAMPLE_RATES = (44_100, 48_000, 96_000)  # Hz: every rate Distill exports; a format may store fewer
BIT_DEPTHS = ("16", "24", "32f")  # "32f" = 32-bit float; a lossless format stores some of them
PCM_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}  # as soundfile names them
DEPTH_WORDS = {"16": "16-bit", "24": "24-bit", "32f": "32-bit float"}


@dataclass(frozen=True)
class ExportFormat:
    name: str  # the --format choice, and the file suffix without its dot
    container: str  # soundfile's format name
    sample_rates: tuple[int, ...]  # Hz: the rates it can store, a subset of SAMPLE_RATES
    # A lossy codec does not keep the waveform: its decoded peak can exceed the one it was given,
    # so the peak ceiling is checked (and met) on the decoded file.
    lossy: bool
    tag: Callable[[BinaryIO, dict[str, str]], None]  # embeds tags in an encoded file, in place
    bit_depths: tuple[str, ...] = ()  # the depths it stores (BIT_DEPTHS); () = the codec decides
    codec: str | None = None  # soundfile's subtype where the format has no bit-depth choice
    compression_level: float | None = None  # libsndfile: 0 = best … 1 = smallest; None = default
    bitrate_mode: str | None = None  # libsndfile: "CONSTANT", "AVERAGE", "VARIABLE"; None = default

    @property
    def suffix(self) -> str:
        return f".{self.name}"

    def subtype(self, bit_depth: str) -> str:
        """soundfile's subtype for a file at `bit_depth` (ignored where the codec decides)."""
        return self.codec or PCM_SUBTYPES[bit_depth]


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("wav", "WAV", SAMPLE_RATES, False, tags.tag_wav, bit_depths=BIT_DEPTHS),
        ExportFormat("flac", "FLAC", SAMPLE_RATES, False, tags.tag_flac, bit_depths=("16", "24")),
        # MP3: MPEG-1 Layer III stops at 48 kHz. VBR at level 0 (≈ LAME -V0), and OGG at Vorbis
        # quality 1 − 0.2 = 0.8: both measured ≈ 270–300 kbit/s on stereo noise, against
        # ≈ 160 kbit/s with libsndfile's defaults.
        ExportFormat(
            "mp3",
            "MP3",
            (44_100, 48_000),
            True,
            tags.tag_mp3,
            codec="MPEG_LAYER_III",
            compression_level=0.0,
            bitrate_mode="VARIABLE",
        ),
        ExportFormat(
            "ogg", "OGG", SAMPLE_RATES, True, tags.tag_ogg, codec="VORBIS", compression_level=0.2
        ),
    )
}


def formats_with(*, bit_depth: str | None = None, sample_rate: int | None = None) -> list[str]:
    """Names of the formats that store `bit_depth` and/or `sample_rate`, in FORMATS order."""
    return [
        f.name
        for f in FORMATS.values()
        if (bit_depth is None or bit_depth in f.bit_depths)
        and (sample_rate is None or sample_rate in f.sample_rates)
    ]


def choices(values: Iterable) -> str:
    """'wav, flac, mp3 or ogg': a list of choices as a sentence says it."""
    *rest, last = [str(v) for v in values]
    return f"{', '.join(rest)} or {last}" if rest else last

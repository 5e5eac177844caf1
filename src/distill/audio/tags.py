"""Embed a take's title, model, seed, sliders and parameters in an encoded audio file (mutagen).

One tag writer per export format (the `tag` of its record in distill.audio.formats): WAV and MP3
carry an ID3 tag (in WAV, an "id3 " RIFF chunk); FLAC and OGG carry Vorbis comments. Players show
the title, the artist ("Distill") and the comment (the parameters as JSON); the DISTILL_* keys are
for scripts, which read them back without parsing the comment.

mutagen is imported by each writer, not at the top: the CLI reads the formats table for its help
text, and its start-up should not pay for the tagging library (~25 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from mutagen import FileType

ARTIST = "Distill"
TAG_KEYS = ("title", "model", "seed", "sliders", "params")  # what callers may pass
CUSTOM_KEYS = {"model": "DISTILL_MODEL", "seed": "DISTILL_SEED", "sliders": "DISTILL_SLIDERS"}
PARAMS_KEY = "DISTILL_PARAMS"


def tag_wav(file: BinaryIO, tags: dict[str, str]) -> None:
    """ID3 in the WAV's "id3 " RIFF chunk."""
    from mutagen.wave import WAVE

    _embed(file, tags, WAVE, _fill_id3)


def tag_mp3(file: BinaryIO, tags: dict[str, str]) -> None:
    """ID3 at the front of the MP3."""
    from mutagen.mp3 import MP3

    _embed(file, tags, MP3, _fill_id3)


def tag_flac(file: BinaryIO, tags: dict[str, str]) -> None:
    """Vorbis comments in the FLAC's metadata block."""
    from mutagen.flac import FLAC

    _embed(file, tags, FLAC, _fill_vorbis)


def tag_ogg(file: BinaryIO, tags: dict[str, str]) -> None:
    """Vorbis comments in the Ogg Vorbis comment header."""
    from mutagen.oggvorbis import OggVorbis

    _embed(file, tags, OggVorbis, _fill_vorbis)


def _embed(
    file: BinaryIO,
    tags: dict[str, str],
    file_type: Callable[[BinaryIO], FileType],
    fill: Callable[[Any, dict[str, str]], None],
) -> None:
    """Add `tags` to the encoded file held in the seekable `file` (rewritten in place).

    Any subset of TAG_KEYS may be given; an unknown key is a caller bug (ValueError).
    """
    unknown = set(tags) - set(TAG_KEYS)
    if unknown:
        raise ValueError(f"unknown tag keys {sorted(unknown)}; expected a subset of {TAG_KEYS}")
    values = {k: str(v) for k, v in tags.items()}
    file.seek(0)
    audio = file_type(file)
    if audio.tags is None:
        audio.add_tags()
    fill(audio, values)
    file.seek(0)
    audio.save(file)


def _fill_id3(audio: FileType, values: dict[str, str]) -> None:
    from mutagen.id3 import COMM, TIT2, TPE1, TXXX

    id3 = audio.tags
    utf8 = 3  # ID3v2.4 text encoding
    id3.add(TPE1(encoding=utf8, text=ARTIST))
    if "title" in values:
        id3.add(TIT2(encoding=utf8, text=values["title"]))
    for key, name in CUSTOM_KEYS.items():
        if key in values:
            id3.add(TXXX(encoding=utf8, desc=name, text=values[key]))
    if "params" in values:
        id3.add(TXXX(encoding=utf8, desc=PARAMS_KEY, text=values["params"]))
        id3.add(COMM(encoding=utf8, lang="eng", desc="", text=values["params"]))


def _fill_vorbis(audio: FileType, values: dict[str, str]) -> None:
    audio["ARTIST"] = ARTIST
    if "title" in values:
        audio["TITLE"] = values["title"]
    for key, name in CUSTOM_KEYS.items():
        if key in values:
            audio[name] = values[key]
    if "params" in values:
        audio[PARAMS_KEY] = values["params"]
        audio["COMMENT"] = values["params"]

"""Embed a take's title, model, seed, sliders and parameters in an encoded audio file (mutagen).

WAV and MP3 carry an ID3 tag (in WAV, an "id3 " RIFF chunk); FLAC and OGG carry Vorbis comments.
Players show the title, the artist ("Distill") and the comment (the parameters as JSON); the
DISTILL_* keys are for scripts, which read them back without parsing the comment.
"""

from __future__ import annotations

from typing import BinaryIO

from mutagen.flac import FLAC
from mutagen.id3 import COMM, ID3, TIT2, TPE1, TXXX
from mutagen.mp3 import MP3
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

ARTIST = "Distill"
TAG_KEYS = ("title", "model", "seed", "sliders", "params")  # what callers may pass
CUSTOM_KEYS = {"model": "DISTILL_MODEL", "seed": "DISTILL_SEED", "sliders": "DISTILL_SLIDERS"}
PARAMS_KEY = "DISTILL_PARAMS"


def embed_tags(file: BinaryIO, format: str, tags: dict[str, str]) -> None:
    """Add `tags` to the encoded `format` file held in the seekable `file` (rewritten in place).

    Any subset of TAG_KEYS may be given; an unknown key is a caller bug (ValueError).
    """
    unknown = set(tags) - set(TAG_KEYS)
    if unknown:
        raise ValueError(f"unknown tag keys {sorted(unknown)}; expected a subset of {TAG_KEYS}")
    values = {k: str(v) for k, v in tags.items()}
    file.seek(0)
    if format in ("wav", "mp3"):
        audio = WAVE(file) if format == "wav" else MP3(file)
        if audio.tags is None:
            audio.add_tags()
        _fill_id3(audio.tags, values)
    elif format in ("flac", "ogg"):
        audio = FLAC(file) if format == "flac" else OggVorbis(file)
        if audio.tags is None:
            audio.add_tags()
        _fill_vorbis(audio, values)
    else:
        raise ValueError(f"no tagging for format {format!r}")
    file.seek(0)
    audio.save(file)


def _fill_id3(id3: ID3, values: dict[str, str]) -> None:
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


def _fill_vorbis(audio: FLAC | OggVorbis, values: dict[str, str]) -> None:
    audio["ARTIST"] = ARTIST
    if "title" in values:
        audio["TITLE"] = values["title"]
    for key, name in CUSTOM_KEYS.items():
        if key in values:
            audio[name] = values[key]
    if "params" in values:
        audio[PARAMS_KEY] = values["params"]
        audio["COMMENT"] = values["params"]

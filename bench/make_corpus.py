"""Build the round-trip benchmark corpus: real sampled sounds rendered dry from a GM SoundFont.

    .venv/bin/python bench/make_corpus.py OUT_DIR [--drums 48] [--tonal 32] [--synth]

Writes OUT_DIR/drums/*.wav (GM percussion one-shots, 1.0–2.0 s, e.g. `kick_36_v100.wav`) and
OUT_DIR/tonal/*.wav (instrument notes C2–C6, 1.5–2.0 s, note-off at 1.2 s so the release is in
the file, e.g. `piano_c4.wav`), all 48 kHz mono 24-bit peaking at −1 dBFS. Existing WAVs in
those two folders are replaced, so the folder always holds exactly one run. fluidsynth and the
FluidR3 SoundFont are bench-only tools (`apt-get install fluidsynth fluid-soundfont-gm`);
`--synth` writes the same layout from distill.audio.synth instead. The output is deterministic:
fluidsynth has no random parts and renders to float, which we quantize ourselves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from distill.audio import synth

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RATE = 48_000  # Hz
PEAK = 10 ** (-1 / 20)  # −1 dBFS
FADE_S = 0.1  # fade-out where a ringing cymbal or sustained note is cut at the maximum length
END_DB = -60  # dB re peak: below this the tail counts as silence and is trimmed

# Per-kind rules: shortest and longest file (s), when the note is released (s), MIDI channel.
DRUM = {"min_s": 1.0, "max_s": 2.0, "note_off_s": 1.5, "channel": 9}  # channel 10: GM drums
TONAL = {"min_s": 1.5, "max_s": 2.0, "note_off_s": 1.2, "channel": 0}

# GM percussion notes 35–81 (channel 10); the note number in the file name tells the two
# kicks, snares, six toms, etc. apart.
# fmt: off
_DRUM_NAMES = (
    "kick", "kick", "sidestick", "snare", "clap", "snare", "tom",  # 35–41
    "hihat_closed", "tom", "hihat_pedal", "tom", "hihat_open", "tom", "tom",  # 42–48
    "crash", "tom", "ride", "china", "ride_bell", "tambourine", "splash",  # 49–55
    "cowbell", "crash", "vibraslap", "ride", "bongo", "bongo", "conga_mute",  # 56–62
    "conga", "conga", "timbale", "timbale", "agogo", "agogo", "cabasa",  # 63–69
    "maracas", "whistle", "whistle", "guiro", "guiro", "claves",  # 70–75
    "woodblock", "woodblock", "cuica_mute", "cuica", "triangle_mute", "triangle",  # 76–81
)
# fmt: on
GM_DRUMS = dict(enumerate(_DRUM_NAMES, start=35))
LOUD, SOFT = 100, 50  # MIDI velocities
CORE_KIT = (36, 38, 42, 46, 49, 51, 45, 48, 50, 39, 37, 44)  # first to get a soft hit

# (name, GM program 0-based, MIDI pitches in the order they are used), all within C2–C6.
INSTRUMENTS = (
    ("piano", 0, (60, 36, 84, 48)),
    ("epiano", 4, (57, 45, 72, 64)),
    ("guitar_nylon", 24, (52, 64, 45, 71)),
    ("guitar_steel", 25, (55, 43, 67, 50)),
    ("strings", 48, (60, 48, 72, 43)),
    ("brass", 61, (57, 48, 65, 53)),
    ("flute", 73, (72, 79, 84, 67)),
    ("clarinet", 71, (62, 55, 69, 76)),
    ("organ", 19, (60, 48, 36, 72)),
    ("marimba", 12, (60, 72, 48, 79)),
    ("harp", 46, (67, 55, 79, 43)),
    ("bass", 33, (36, 43, 48, 40)),
)


def drum_hits(count: int) -> list[tuple[str, int, int]]:
    """(name, note, velocity): every GM note loud, then soft hits starting with the core kit;
    fewer than 47 are spread evenly over the note range so each family is represented."""
    loud = [(note, LOUD) for note in GM_DRUMS]
    soft = [(n, SOFT) for n in (*CORE_KIT, *(n for n in GM_DRUMS if n not in CORE_KIT))]
    if count > len(loud) + len(soft):
        sys.exit(f"make_corpus: --drums is at most {len(loud) + len(soft)}")
    if count < len(loud):
        picks = [loud[i] for i in np.linspace(0, len(loud) - 1, count).round().astype(int)]
    else:
        picks = (loud + soft)[:count]
    return [(f"{GM_DRUMS[n]}_{n}_v{v}", n, v) for n, v in picks]


def tonal_notes(count: int) -> list[tuple[str, int, int]]:
    """(name, program, pitch): one note per instrument in turn, then the next pitch of each."""
    rounds = len(INSTRUMENTS[0][2])
    if count > rounds * len(INSTRUMENTS):
        sys.exit(f"make_corpus: --tonal is at most {rounds * len(INSTRUMENTS)}")
    notes = []
    for i in range(count):
        name, program, pitches = INSTRUMENTS[i % len(INSTRUMENTS)]
        pitch = pitches[i // len(INSTRUMENTS)]
        notes.append((f"{name}_{synth.note_name(pitch)}", program, pitch))
    return notes


def midi_file(channel: int, program: int, pitch: int, velocity: int, note_off_s: float) -> bytes:
    """A one-note Standard MIDI File (format 0). At the default 120 bpm (500 000 µs per quarter)
    a division of 500 ticks per quarter makes one tick one millisecond."""

    def vlq(n: int) -> bytes:  # variable-length delta time, 7 bits per byte, high bit = more
        out = [n & 0x7F]
        while n := n >> 7:
            out.append(0x80 | (n & 0x7F))
        return bytes(reversed(out))

    off_ms = round(note_off_s * 1000)
    events = (
        (0, bytes([0xC0 | channel, program])),
        (0, bytes([0x90 | channel, pitch, velocity])),
        (off_ms, bytes([0x80 | channel, pitch, 0])),
        (100, b"\xff\x2f\x00"),  # end of track; fluidsynth renders on until the voices fall silent
    )
    track = b"".join(vlq(delta) + event for delta, event in events)
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 500)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def render(soundfont: Path, midi: bytes, workdir: Path, name: str) -> np.ndarray:
    """Dry (no reverb, no chorus) float render of `midi`, downmixed to mono."""
    mid, wav = workdir / f"{name}.mid", workdir / f"{name}.wav"
    mid.write_bytes(midi)
    cmd = ["fluidsynth", "-niq", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RATE)]
    cmd += ["-O", "float", "-F", str(wav), str(soundfont), str(mid)]
    subprocess.run(cmd, check=True, capture_output=True)
    stereo, rate = sf.read(wav, dtype="float64", always_2d=True)
    assert rate == RATE, f"fluidsynth wrote {rate} Hz, asked for {RATE}"
    return stereo.mean(axis=1)


def shape(x: np.ndarray, min_s: float, max_s: float, name: str) -> np.ndarray:
    """Drop the renderer's leading zeros, cut the tail where it falls below END_DB (kept within
    [min_s, max_s]), fade out over FADE_S and normalize to PEAK."""
    level = np.abs(x)
    peak = level.max()
    if peak == 0:
        sys.exit(f"make_corpus: {name} rendered as silence; check the SoundFont")
    start = int(np.argmax(level > peak * 1e-4))  # −80 dB: below any attack, above exact zeros
    end = len(x) - int(np.argmax(level[::-1] > peak * 10 ** (END_DB / 20)))
    length = int(np.clip(end - start, min_s * RATE, max_s * RATE))
    x = x[start : start + length].copy()
    assert len(x) == length, f"{name}: render shorter than {min_s} s"
    fade = round(FADE_S * RATE)
    x[-fade:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(fade) / fade)  # raised cosine, 1 → ~0
    return x * (PEAK / np.abs(x).max())


def fluid_sounds(soundfont: Path, n_drums: int, n_tonal: int) -> dict[str, list]:
    """{"drums": [(name, audio)], "tonal": [...]}, rendered in parallel, in a fixed order."""
    jobs = [("drums", name, DRUM, 0, note, vel) for name, note, vel in drum_hits(n_drums)]
    jobs += [
        ("tonal", name, TONAL, prog, pitch, LOUD) for name, prog, pitch in tonal_notes(n_tonal)
    ]
    with tempfile.TemporaryDirectory() as tmp:

        def one(job):
            _, name, rule, program, pitch, velocity = job
            midi = midi_file(rule["channel"], program, pitch, velocity, rule["note_off_s"])
            return shape(
                render(soundfont, midi, Path(tmp), name), rule["min_s"], rule["max_s"], name
            )

        with ThreadPoolExecutor(os.cpu_count()) as pool:
            audio = list(pool.map(one, jobs))
    out = {"drums": [], "tonal": []}
    for (folder, name, *_), x in zip(jobs, audio, strict=True):
        out[folder].append((name, x))
    return out


def synth_sounds(n_drums: int, n_tonal: int) -> dict[str, list]:
    """The same layout from distill.audio.synth, made 2 s long and shaped like the renders."""
    drum_makers = {
        "kick": lambda s: synth.kick(2.0, 40 + 10 * (s % 4), s),
        "snare": lambda s: synth.snare(2.0, s),
        "hihat_closed": lambda s: synth.hihat(False, 2.0, s),
        "hihat_open": lambda s: synth.hihat(True, 2.0, s),
        "clap": lambda s: synth.clap(2.0, s),
    }
    tonal_makers = {
        "note": lambda f0, s: synth.harmonic_note(f0, 2.0, (s % 5) / 4, 1e-4, 0.0, s),
        "pluck": lambda f0, s: synth.pluck(f0, 2.0, 1.5, (s % 5) / 4, s),
        "bell": lambda f0, s: synth.bell(f0, 2.0, s),
        "fm": lambda f0, s: synth.fm_tone(f0, 2.0, 1 + s % 3, 3.0),
    }
    drums = []
    for i in range(n_drums):
        kind = list(drum_makers)[i % len(drum_makers)]
        drums.append((f"{kind}_{i:02d}", shape(drum_makers[kind](i), 1.0, 2.0, kind)))
    if n_tonal > 4 * 49:
        sys.exit("make_corpus: --tonal is at most 196 with --synth")
    tonal = []
    for i in range(n_tonal):
        kind, pitch = list(tonal_makers)[i % 4], 36 + (5 * i) % 49  # fourths walk all of C2–C6
        x = tonal_makers[kind](synth.midi_to_hz(pitch), i)
        tonal.append((f"{kind}_{synth.note_name(pitch)}", shape(x, 1.5, 2.0, kind)))
    return {"drums": drums, "tonal": tonal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--drums", type=int, default=48, help="drum one-shots (default 48)")
    parser.add_argument("--tonal", type=int, default=32, help="instrument notes (default 32)")
    parser.add_argument("--synth", action="store_true", help="use distill.audio.synth instead")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    args = parser.parse_args()

    if args.synth:
        sounds = synth_sounds(args.drums, args.tonal)
    elif shutil.which("fluidsynth") is None or not args.soundfont.is_file():
        sys.exit(
            f"make_corpus: fluidsynth or {args.soundfont} is missing; run "
            "`apt-get install fluidsynth fluid-soundfont-gm`, or pass --synth"
        )
    else:
        sounds = fluid_sounds(args.soundfont, args.drums, args.tonal)

    for folder, items in sounds.items():
        target = args.out_dir / folder
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob("*.wav"):
            stale.unlink()
        for name, x in items:
            sf.write(target / f"{name}.wav", x.astype(np.float32), RATE, subtype="PCM_24")

    seconds = {folder: sum(len(x) for _, x in items) / RATE for folder, items in sounds.items()}
    lengths = [len(x) / RATE for items in sounds.values() for _, x in items]
    print(
        f"wrote {len(sounds['drums'])} drums ({seconds['drums']:.1f} s) and "
        f"{len(sounds['tonal'])} tonal ({seconds['tonal']:.1f} s) to {args.out_dir}: "
        f"{sum(seconds.values()):.1f} s in all, each {min(lengths):.2f}–{max(lengths):.2f} s, "
        f"48 kHz mono 24-bit, {'synth' if args.synth else 'FluidR3 GM'}"
    )


if __name__ == "__main__":
    main()

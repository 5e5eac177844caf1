"""Render the generation benchmark material: real drum one-shots, sampled notes, event textures.

    .venv/bin/python bench/make_material.py OUT_DIR [--seed 0]

Writes three sets, each split into train/ and heldout/, all 48 kHz mono 24-bit WAV:

  OUT_DIR/drums/    60 one-shots from Debian's hydrogen-drumkits (14 kits under
                    /usr/share/hydrogen/data/drumkits): 10 kick, 10 snare, 10 hihat, 8 tom,
                    10 cymbal, 5 clap, 7 perc, the loudest velocity layer of each kit instrument,
                    classed by the kit's instrument name. Each class sorted by name, every fifth
                    file from the third (i % 5 == 2) is held out: 48 train, 12 held out, every
                    class in both. Leading samples below −80 dB re peak and the tail below −60 dB
                    re peak are cut (5 ms fade), anything longer is cut at 2 s (50 ms fade), and
                    anything shorter than 0.1 s is padded with silence to 0.1 s, because
                    `distill train` still rejects files under 0.1 s.
  OUT_DIR/notes/    40 notes, 10 instruments × 4 pitches (C2–C6), rendered dry from FluidR3 GM
                    with bench/make_corpus.py's MIDI writer, renderer and shaping (note-off at
                    1.2 s, 1.5–2.0 s long); every fifth by name held out: 32 train, 8 held out.
  OUT_DIR/texture/  16 files of 6–10 s: 8 drum loops sequenced from one hydrogen kit each
                    (80–150 bpm, random ghost notes, fills, ±5 ms timing and ±2 dB level) and
                    8 arpeggios over a four-chord progression with a bass line, rendered through
                    fluidsynth from a MIDI file written here; 12 train, 4 held out (2 of each).

Every file is normalized to −1 dBFS peak: the material stands for recordings a musician would
have trimmed and levelled, and a level spread would only add a nuisance the realism metric
ignores anyway (it works re each file's peak). Existing WAVs in the six folders are replaced.
The output is deterministic for a given --seed (the only randomness is the texture patterns and
the pick of kits; fluidsynth has no random parts). Needs fluidsynth, fluid-soundfont-gm and
hydrogen-drumkits (`apt-get install fluidsynth fluid-soundfont-gm hydrogen-drumkits`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from distill.audio import synth
from make_corpus import LOUD, PEAK, RATE, SOUNDFONT, TONAL, midi_file, render, shape

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
MAX_S = 2.0  # longest drum one-shot (s)
MIN_S = 0.1  # shortest file `distill train` accepts (s)
START_DB = -80  # dB re peak: leading samples below this are dropped
END_DB = -60  # dB re peak: the tail below this is trimmed
TAIL_FADE_S = 0.005  # fade where the tail is trimmed (already at −60 dB: a click guard)
CUT_FADE_S = 0.05  # fade where a ringing sound is cut at MAX_S or a texture at its length

# Drum classes in the order they are tried on a kit's instrument name (hats before cymbals,
# kicks before toms: "Kick (Tama...)", "Sabian Hat"), and how many of each the set holds.
CLASSES = (
    ("kick", r"kick|bass ?drum", 10),
    ("hihat", r"hat|\bo?hh\b", 10),
    ("snare", r"snare", 10),
    ("clap", r"clap|snap", 5),
    ("cymbal", r"crash|ride|china|splash|cymbal|paiste bell", 10),
    ("tom", r"\btom", 8),
    ("perc", r"cowbell|conga|bongo|djembe|cajon|tambourine|agogo|clave|woodblock|maraca"
     r"|sangban|dununba|kenkeni", 7),
)  # fmt: skip

# (name, GM program 0-based, MIDI pitches), all within C2–C6.
INSTRUMENTS = (
    ("piano", 0, (60, 43, 76, 52)),
    ("guitar", 24, (52, 64, 57, 69)),
    ("strings", 48, (55, 67, 48, 62)),
    ("brass", 61, (53, 60, 65, 58)),
    ("flute", 73, (72, 79, 67, 84)),
    ("bells", 14, (60, 67, 72, 55)),  # tubular bells
    ("organ", 19, (48, 60, 67, 55)),  # church organ
    ("bass", 33, (36, 43, 40, 47)),
    ("vibraphone", 11, (65, 72, 60, 77)),
    ("clarinet", 71, (58, 65, 62, 70)),
)

# Arpeggio textures: (name, GM program) for the melody; the bass line is GM 33 (fingered bass).
ARP_PROGRAMS = (
    ("piano", 0),
    ("harp", 46),
    ("marimba", 12),
    ("guitar", 24),
    ("pizzicato", 45),
    ("epiano", 4),
    ("celesta", 8),
    ("kalimba", 108),
)
N_LOOPS = 8
TEXTURE_S = (6.0, 10.0)  # shortest and longest texture (s)
PROGRESSIONS = ((0, 9, 5, 7), (0, 5, 7, 0), (9, 5, 0, 7), (0, 7, 9, 5))  # I vi IV V etc.
MAJOR, MINOR = (0, 4, 7), (0, 3, 7)  # triads, semitones above the root


@dataclass(frozen=True)
class Sample:
    kit: str
    instrument: str
    path: Path
    drum_class: str

    @property
    def kind(self) -> str:
        pattern = next(p for c, p, _ in CLASSES if c == self.drum_class)
        return re.search(pattern, self.instrument.lower())[0].replace(" ", "")

    @property
    def name(self) -> str:
        """e.g. `snare_blackpearl_pearl_snare_rimshot`: class, kit, the kit's instrument name
        without its key prefix ("d#3 - "), parentheses or the kit's name repeated."""
        folder = self.path.parent.name
        kit = re.sub(r"[^a-z0-9]", "", folder.lower().replace("the ", ""))[:10]
        number = re.search(r"(?<![.\d])\d+$", folder)  # Millo_MultiLayered2 and 3, not "1.0"
        kit += number[0] if number and not kit.endswith(number[0]) else ""
        instrument = re.sub(r"^[a-g]#?\d+ - |\(.*?\)", "", self.instrument.lower())
        instrument = instrument.replace(self.path.parent.name.lower(), "")
        return f"{self.drum_class}_{kit}_{re.sub(r'[^a-z0-9]+', '_', instrument).strip('_')}"


def classify(instrument: str) -> str | None:
    for drum_class, pattern, _ in CLASSES:
        if re.search(pattern, instrument.lower()):
            return drum_class
    return None


def kit_samples(root: Path = DRUMKITS) -> list[Sample]:
    """One sample per classed instrument of every kit: its loudest velocity layer (the layer
    with the highest <max>, or the instrument's own <filename> in the old kit format)."""

    def children(node, tag):
        return [c for c in node if c.tag.rsplit("}", 1)[-1] == tag]

    def text(node, tag, default=""):
        found = children(node, tag)
        return (found[0].text or default).strip() if found else default

    samples = []
    for xml in sorted(root.glob("*/drumkit.xml")):
        kit = text(ET.parse(xml).getroot(), "name", xml.parent.name)
        for node in ET.parse(xml).getroot().iter():
            if node.tag.rsplit("}", 1)[-1] != "instrument":
                continue
            name = text(node, "name")
            drum_class = None if "roll" in name.lower() else classify(name)  # not a one-shot
            layers = children(node, "layer")
            if layers:
                layer = max(layers, key=lambda layer: float(text(layer, "max", "1")))
                filename = text(layer, "filename")
            else:
                filename = text(node, "filename")
            path = xml.parent / filename
            if drum_class and filename and path.is_file():
                samples.append(Sample(kit, name, path, drum_class))
    if not samples:
        sys.exit(f"make_material: no drum kits under {root}; apt-get install hydrogen-drumkits")
    return samples


def read_48k(path: Path) -> np.ndarray:
    x, rate = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return x if rate == RATE else soxr.resample(x, rate, RATE)


def fade_out(x: np.ndarray, seconds: float) -> np.ndarray:
    n = min(len(x), round(seconds * RATE))
    x = x.copy()
    x[len(x) - n :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(n) / n)  # raised cosine, 1 → ~0
    return x


def one_shot(path: Path) -> np.ndarray:
    """A drum sample trimmed as the module docstring says, at −1 dBFS peak; None if silent."""
    x = read_48k(path)
    level = np.abs(x)
    peak = level.max()
    if peak == 0:
        return None
    start = int(np.argmax(level > peak * 10 ** (START_DB / 20)))
    end = len(x) - int(np.argmax(level[::-1] > peak * 10 ** (END_DB / 20)))
    if end - start > MAX_S * RATE:
        x = fade_out(x[start : start + round(MAX_S * RATE)], CUT_FADE_S)
    else:
        x = fade_out(x[start:end], TAIL_FADE_S)
    x = x * (PEAK / np.abs(x).max())
    return np.pad(x, (0, max(0, round(MIN_S * RATE) - len(x))))


def pick_drums(samples: list[Sample], rng: np.random.Generator) -> list[Sample]:
    """The CLASSES quota of each class, spread over kits and kinds: each pick is the instrument
    whose kit and then kind (the class keyword it matched: cowbell, conga, crash, ride...) were
    picked least so far, ties broken by a seeded shuffle."""
    picked = []
    for drum_class, _, quota in CLASSES:
        pool = [s for s in samples if s.drum_class == drum_class]
        pool = [pool[i] for i in rng.permutation(len(pool))]
        if len(pool) < quota:
            sys.exit(f"make_material: only {len(pool)} {drum_class} samples, need {quota}")
        kinds, kits = defaultdict(int), defaultdict(int)
        for _ in range(quota):
            best = min(pool, key=lambda s: (kits[s.kit], kinds[s.kind]))
            pool.remove(best)
            kinds[best.kind] += 1
            kits[best.kit] += 1
            picked.append(best)
    return picked


def split(names: list[str], every: int) -> set[str]:
    """Held-out names: every `every`-th of the sorted names, starting at the third."""
    return {n for i, n in enumerate(sorted(names)) if i % every == min(2, every - 1)}


def drums(samples: list[Sample], rng: np.random.Generator) -> dict[str, list]:
    sounds = {"train": [], "heldout": []}
    picked = [(s.name, one_shot(s.path)) for s in pick_drums(samples, rng)]
    assert len({name for name, _ in picked}) == len(picked), "two drum samples share a name"
    by_class = defaultdict(list)
    for name, x in picked:
        if x is not None:
            by_class[name.split("_")[0]].append(name)
    held = set().union(*(split(names, 5) for names in by_class.values()))
    for name, x in sorted(picked, key=lambda item: item[0]):
        if x is not None:
            sounds["heldout" if name in held else "train"].append((name, x))
    return sounds


def notes(workdir: Path) -> dict[str, list]:
    jobs = [(f"{n}_{synth.note_name(p)}", prog, p) for n, prog, ps in INSTRUMENTS for p in ps]
    held = split([name for name, *_ in jobs], 5)
    sounds = {"train": [], "heldout": []}
    for name, program, pitch in sorted(jobs):
        midi = midi_file(TONAL["channel"], program, pitch, LOUD, TONAL["note_off_s"])
        x = shape(render(SOUNDFONT, midi, workdir, name), TONAL["min_s"], TONAL["max_s"], name)
        sounds["heldout" if name in held else "train"].append((name, x))
    return sounds


def midi_events(events: list[tuple[int, bytes]]) -> bytes:
    """A Standard MIDI File (format 0) from (time in ms, event) pairs. At the default 120 bpm
    (500 000 µs per quarter) a division of 500 ticks per quarter makes one tick one millisecond."""

    def vlq(n: int) -> bytes:  # variable-length delta time, 7 bits per byte, high bit = more
        out = [n & 0x7F]
        while n := n >> 7:
            out.append(0x80 | (n & 0x7F))
        return bytes(reversed(out))

    track, now = b"", 0
    for ms, event in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):  # offs first
        track += vlq(ms - now) + event
        now = ms
    track += vlq(100) + b"\xff\x2f\x00"  # end of track; fluidsynth renders until voices end
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 500)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def finish(x: np.ndarray, seconds: float) -> np.ndarray:
    """Cut to `seconds` with a CUT_FADE_S fade (padding a short render) and set the peak."""
    n = round(seconds * RATE)
    x = fade_out(np.pad(x, (0, max(0, n - len(x))))[:n], CUT_FADE_S)
    return x * (PEAK / np.abs(x).max())


def arpeggio(program: int, rng: np.random.Generator, seconds: float) -> bytes:
    """Broken chords over a four-bar progression in a random key on channel 0, a root on every
    beat on channel 1 (bass), random pattern, note length and velocity."""
    bpm = rng.uniform(90, 150)
    beat_ms = 60_000 / bpm
    step_ms = beat_ms / rng.choice((2, 4))  # eighths or sixteenths
    key = 48 + int(rng.integers(0, 12))  # C3–B3
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    patterns = ((0, 1, 2, 3), (0, 2, 1, 3), (3, 2, 1, 0), (0, 1, 2, 3, 2, 1))  # chord tones
    pattern = patterns[rng.integers(len(patterns))]
    gate = rng.uniform(0.3, 0.95)  # note length as a share of the step
    events = [(0, bytes([0xC0, program])), (0, bytes([0xC1, 33]))]
    steps = int(seconds * 1000 / step_ms)
    steps_per_bar = round(4 * 60_000 / bpm / step_ms)
    for i in range(steps):
        bar = i // steps_per_bar
        root = key + progression[bar % 4]
        triad = MINOR if progression[bar % 4] == 9 else MAJOR
        tones = [root + t for t in triad] + [root + 12]
        pitch = tones[pattern[i % len(pattern)] % len(tones)] + 12
        t = round(i * step_ms)
        velocity = int(rng.integers(70, 111))
        note_off = t + round(gate * step_ms)
        events += [(t, bytes([0x90, pitch, velocity])), (note_off, bytes([0x80, pitch, 0]))]
        if i % (steps_per_bar // 4) == 0:  # bass on the beat, an octave below the chord root
            bass_off = t + round(0.8 * beat_ms)
            events += [(t, bytes([0x91, root - 12, 90])), (bass_off, bytes([0x81, root - 12, 0]))]
    return midi_events(events)


def drum_loop(kit: dict[str, list[np.ndarray]], rng: np.random.Generator, seconds: float):
    """A 16th-note loop: kick on 1 and 3 plus random extras, snare on 2 and 4 plus ghost notes,
    closed hats (any hat if the kit has none) on eighths or sixteenths, a cymbal on each fourth
    bar's downbeat, random perc and a tom fill at the end of every fourth bar; ±5 ms timing,
    ±2 dB level, a random one of the kit's samples of the class for each hit."""
    bpm = rng.uniform(80, 150)
    step = 60 / bpm / 4  # s per 16th
    hat_every = int(rng.choice((1, 2)))
    out = np.zeros(round((seconds + MAX_S) * RATE))

    def hit(drum_class: str, t: float, gain: float) -> None:
        if not kit.get(drum_class):
            return
        x = kit[drum_class][rng.integers(len(kit[drum_class]))]
        start = max(0, round((t + rng.uniform(-0.005, 0.005)) * RATE))
        gain *= 10 ** (rng.uniform(-2, 2) / 20)  # ±2 dB
        out[start : start + len(x)] += x[: len(out) - start] * gain

    for i in range(int(seconds / step)):
        t, beat_step, bar = i * step, i % 16, i // 16
        if beat_step in (0, 8) or (beat_step % 2 == 0 and rng.random() < 0.2):
            hit("kick", t, 1.0)
        if beat_step in (4, 12):
            hit("snare", t, 0.8)
        elif rng.random() < 0.08:
            hit("snare", t, 0.25)  # ghost note
        if bar % 4 == 3 and beat_step >= 12:
            hit("tom", t, 0.6)
        elif beat_step % hat_every == 0:
            hat = "closed_hat" if kit.get("closed_hat") else "hihat"
            hit(hat, t, 0.35 if beat_step % 4 == 0 else 0.22)
        if beat_step == 0 and bar % 4 == 0:
            hit("cymbal", t, 0.4)
        if rng.random() < 0.1:
            hit("perc", t, 0.3)
    return out


def textures(samples: list[Sample], rng: np.random.Generator, workdir: Path):
    by_kit = defaultdict(lambda: defaultdict(list))
    for s in samples:
        by_kit[s.kit][s.drum_class].append(s.path)
        if s.drum_class == "hihat" and re.search(r"clos|\bcl\b|chh", s.instrument.lower()):
            by_kit[s.kit]["closed_hat"].append(s.path)
    full = sorted(k for k, c in by_kit.items() if {"kick", "snare", "hihat"} <= set(c))
    kit_order = [full[i] for i in rng.permutation(len(full))[:N_LOOPS]]
    items = []
    for i, kit in enumerate(kit_order):
        sounds = {c: [one_shot(p) for p in paths] for c, paths in by_kit[kit].items()}
        sounds = {c: [x for x in xs if x is not None] for c, xs in sounds.items()}
        seconds = rng.uniform(*TEXTURE_S)
        slug = re.sub(r"[^a-z0-9]+", "_", kit.lower()).strip("_")
        items.append((f"loop_{i}_{slug}", finish(drum_loop(sounds, rng, seconds), seconds)))
    for i, (name, program) in enumerate(ARP_PROGRAMS):
        seconds = rng.uniform(*TEXTURE_S)
        midi = arpeggio(program, rng, seconds)
        items.append((f"arp_{i}_{name}", finish(render(SOUNDFONT, midi, workdir, name), seconds)))
    held = split([n for n, _ in items], 4)  # arp_2, arp_6, loop_2, loop_6
    return {
        "train": [(n, x) for n, x in sorted(items, key=lambda item: item[0]) if n not in held],
        "heldout": [(n, x) for n, x in sorted(items, key=lambda item: item[0]) if n in held],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="texture patterns, kit picks")
    args = parser.parse_args()
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        sys.exit(
            f"make_material: fluidsynth or {SOUNDFONT} is missing; "
            "run `apt-get install fluidsynth fluid-soundfont-gm`"
        )

    rng = np.random.default_rng(args.seed)
    samples = kit_samples()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "drums": drums(samples, rng),
            "notes": notes(Path(tmp)),
            "texture": textures(samples, rng, Path(tmp)),
        }

    for set_name, parts in sets.items():
        lines = []
        for part, items in parts.items():
            target = args.out_dir / set_name / part
            target.mkdir(parents=True, exist_ok=True)
            for stale in target.glob("*.wav"):
                stale.unlink()
            for name, x in items:
                sf.write(target / f"{name}.wav", x.astype(np.float32), RATE, subtype="PCM_24")
            lengths = [len(x) / RATE for _, x in items]
            lines.append(
                f"{part} {len(items)} files {sum(lengths):.1f} s "
                f"({min(lengths):.2f}–{max(lengths):.2f} s)"
            )
        print(f"{args.out_dir / set_name}: " + ", ".join(lines))
    print("48 kHz mono 24-bit, each file −1 dBFS peak")


if __name__ == "__main__":
    main()

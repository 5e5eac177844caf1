"""A grid of spectrograms, one labelled row per folder, to look at real and generated audio side
by side.

    .venv/bin/python bench/spectrogram_grid.py OUT.png DIR_OR_FILE... [--labels a,b,c] [--per-row 6]

Each argument is one row: a folder shows its first --per-row audio files (sorted by path,
sub-folders included), a file shows alone. Each cell is `sox FILE -n spectrogram -x 300 -y 200`
(300 px of time, 200 px of 0–24 kHz at 48 kHz, the file name as title); ImageMagick's `montage`
puts a row together and `convert` adds the row label on the left and stacks the rows. Needs sox
and imagemagick.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

AUDIO = {".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3"}
LABEL_PX = 160  # width of the label column (px)
FONT = "DejaVu-Sans"  # ImageMagick's default (Helvetica) is often not installed


def row_files(arg: Path, per_row: int) -> list[Path]:
    if arg.is_file():
        return [arg]
    if not arg.is_dir():
        sys.exit(f"spectrogram_grid: {arg} is neither a folder nor a file")
    files = sorted(p for p in arg.rglob("*") if p.suffix.lower() in AUDIO)
    if not files:
        sys.exit(f"spectrogram_grid: no audio files in {arg}")
    return files[:per_row]


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"spectrogram_grid: {' '.join(command[:2])} failed: {done.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("rows", type=Path, nargs="+", help="one folder or file per row")
    parser.add_argument("--labels", help="comma-separated row labels (default: folder names)")
    parser.add_argument("--per-row", type=int, default=6, help="files per row (default 6)")
    args = parser.parse_args()
    for tool in ("sox", "montage", "convert"):
        if shutil.which(tool) is None:
            sys.exit(f"spectrogram_grid: `{tool}` is missing; apt-get install sox imagemagick")
    labels = args.labels.split(",") if args.labels else [p.name for p in args.rows]
    if len(labels) != len(args.rows):
        sys.exit(f"spectrogram_grid: {len(labels)} labels for {len(args.rows)} rows")

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for r, (arg, label) in enumerate(zip(args.rows, labels, strict=True)):
            cells = []
            for c, path in enumerate(row_files(arg, args.per_row)):
                cell = Path(tmp, f"{r}_{c}.png")
                run(["sox", str(path), "-n", "spectrogram", "-x", "300", "-y", "200",
                     "-t", path.name, "-o", str(cell)])  # fmt: skip
                cells.append(str(cell))
            row = Path(tmp, f"row{r}.png")
            run(["montage", *cells, "-tile", f"{args.per_row}x1", "-geometry", "+2+2",
                 "-background", "white", str(row)])  # fmt: skip
            run(["convert", str(row), "-gravity", "West", "-background", "white",
                 "-splice", f"{LABEL_PX}x0", "-font", FONT, "-pointsize", "22",
                 "-annotate", "+10+0", label, str(row)])  # fmt: skip
            rows.append(str(row))
        run(["convert", *rows, "-background", "white", "-append", str(args.out)])
    print(f"wrote {args.out}: {len(rows)} rows of up to {args.per_row}")


if __name__ == "__main__":
    main()

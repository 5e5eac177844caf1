"""Text that came from a file, made safe to print on a terminal.

Dataset and file names, slider labels, descriptions and tags come from files anyone can write. An
ESC or OSC sequence inside one (`\\x1b]0;…\\x07` retitles the terminal, `\\x1b[2J` clears it) or a
bidi override (which reorders what is shown) must reach the screen as a visible mark, never as a
command. Everything the CLI prints that did not come from its own code goes through `printable`.
"""

from __future__ import annotations

import json
import re

# C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI on some terminals),
# the bidi marks, embeddings, overrides and isolates, and lone surrogates (the undecodable bytes
# of a file name that is not UTF-8: they cannot even be encoded for the terminal).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
REPLACEMENT = "\ufffd"  # �


def printable(text: object) -> str:
    """`text` with every terminal control character shown as �; tabs and newlines kept."""
    return _UNSAFE.sub(REPLACEMENT, str(text))


def json_text(data: object, **options) -> str:
    """json.dumps, with the control characters it leaves raw (DEL, C1, bidi) escaped as \\uXXXX
    (it escapes the C0 ones itself)."""
    text = json.dumps(data, **options)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

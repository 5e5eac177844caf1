"""Atomic file writes: a temp file in the same folder, flushed to disk, then renamed over the
target. A crash, a full disk or Ctrl-C at any moment leaves the old file or the new one, never
half of one, and no temp file behind.

Only kill -9 (or a power cut) can leave a temp file: `.NAME.PID-XXXXXXXX.tmp`, named after the
process that wrote it. The next atomic write into that folder removes the ones whose process is
gone (and any of Distill's temp files a day old), so a killed export of a large model does not
keep its space forever.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Ours: ".NAME.PID-XXXXXXXX.tmp"; before the PID was in the name: ".NAME.XXXXXXXX.tmp".
_TEMP = re.compile(r"^\..+\.(?:(\d+)-)?[a-z0-9_]{8}\.tmp$")
STALE_SECONDS = 60.0  # a temp file of a dead process this old is left over (a write takes less)
ABANDONED_SECONDS = 24 * 3600.0  # any temp file of ours this old is left over


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temp file beside `path`, fsync it, and rename it to `path`.

    Errors (OSError included) propagate after the temp file is removed; callers turn an OSError
    into a one-line message for the user.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temp files killed atomic writes left in `folder`; returns what went."""
    removed = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMP.match(entry.name)
            if not match:
                continue
            with contextlib.suppress(OSError):
                age = now - entry.stat(follow_symlinks=False).st_mtime
                pid = int(match.group(1)) if match.group(1) else None
                gone = pid is not None and age > STALE_SECONDS and not _running(pid)
                if (gone or age > ABANDONED_SECONDS) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would not just ask there: rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True

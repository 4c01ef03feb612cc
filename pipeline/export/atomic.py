"""Atomic file writes for every export: a file appears complete at its path or not at all.

`atomic_path(path)` yields a temporary path beside `path` (`<name>.part`); the caller writes the
whole file there, and only then does it replace `path` (os.replace, atomic on one file system). A
crash or a full disk never leaves a truncated file at `path`, and the `.part` file is removed.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_SUFFIX = ".part"  # the temporary file's name: the target's name plus this


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write; on leaving the block without an error it replaces
    `path`. The temporary file is removed in every case."""
    path = Path(path)
    tmp = path.with_name(path.name + PART_SUFFIX)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

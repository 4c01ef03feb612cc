"""Atomic, checked file writes for every output: a file appears complete at its path or not at all,
and a write that fails is one line naming the file and the system's cause.

`atomic_path(path)` yields a temporary path beside `path` (`<stem>.part<suffix>`, so writers that
choose the format by the extension, such as numpy's .npz or OpenCV's images, still see it); the
caller writes the whole file there, and only then does it replace `path` (os.replace, atomic on
one file system). An OSError on the way (full disk, file-size limit, read-only or vanished folder)
becomes `OutputError("cannot write <path>: <cause>")` (exit code 6); the temporary file is removed
in every case, so a crash or a full disk never leaves a truncated file at `path`.
`write_bytes`, `write_text` and `write_image` are the common cases.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.errors import OutputError

PART_SUFFIX = ".part"  # the temporary file's name: the target's stem plus this plus its suffix


def cause(e: OSError) -> str:
    """The system's one-line reason for an OSError ("No space left on device"), else its text."""
    return e.strerror or str(e) or type(e).__name__


def part_path(path: str | os.PathLike) -> Path:
    """The temporary path `atomic_path` writes before the rename: tracks.npz -> tracks.part.npz."""
    path = Path(path)
    return path.with_name(path.stem + PART_SUFFIX + path.suffix)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write; on leaving the block without an error it replaces
    `path`. OutputError (one line: the file and the cause) when writing or renaming fails with an
    OSError. The temporary file is removed in every case."""
    path = Path(path)
    tmp = part_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {cause(e)}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the folder itself vanished or turned read-only: nothing of ours is left to remove


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """`data` as the whole file at `path`, atomically (see `atomic_path`); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """`text` (UTF-8) as the whole file at `path`, atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """A BGR (or grey) uint8 image as the file at `path`, its format from the extension (.png,
    .jpg, ...), atomically. The image is encoded in memory first: cv2.imwrite only says False,
    while writing the bytes ourselves gives the system's cause when it fails."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, image)
    if not ok:
        raise OutputError(f"cannot write {path}: OpenCV cannot encode a {path.suffix} image")
    return write_bytes(path, buf.tobytes())

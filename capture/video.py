"""Recorded video as a stream of timestamped frames (never the whole video in memory)."""
from __future__ import annotations

import contextlib
import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.quiet import native_stderr_silenced

MAX_PLAUSIBLE_FPS = 1000   # frames per second; a container claiming more (or none) has no usable rate
DEFAULT_FPS = 30.0         # container without a rate: a common default; timestamps still come from the decoder
MS_PER_S = 1000.0          # OpenCV gives positions in milliseconds
# Some containers estimate their frame count from duration x rate: a decoded count within this
# share of the announced one (and at least one frame) is rounding, not a truncated file.
FRAME_COUNT_SLACK = 0.01


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frame_count: int  # as the container reports it; may be approximate for some codecs
    duration_s: float


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open a video file and describe it; InputError (one line) if it is not a usable video."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a video")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes)")
    with native_stderr_silenced():  # FFmpeg's own diagnosis of a broken file; ours is one line
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
        ok, frame = cap.read() if cap.isOpened() else (False, None)
    try:
        if not cap.isOpened():
            raise InputError(f"{p}: not a readable video (OpenCV/FFmpeg cannot open it)")
        if not ok or frame is None:
            raise InputError(f"{p}: video has no decodable frames")
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if not np.isfinite(fps) or fps <= 0 or fps > MAX_PLAUSIBLE_FPS:
        fps = DEFAULT_FPS
    if count < 2:
        raise InputError(f"{p}: has {max(count, 1)} frame; a video of at least 2 frames is needed")
    h, w = frame.shape[:2]
    return VideoInfo(str(p), w, h, float(fps), count, count / fps)


def frame_count_warning(info: VideoInfo, decoded: int) -> str | None:
    """One line when the file decodes fewer (or more) frames than its container announces, more
    than FRAME_COUNT_SLACK apart: a truncated or damaged file; None when they agree."""
    announced = info.frame_count
    if abs(announced - decoded) <= max(1.0, FRAME_COUNT_SLACK * announced):
        return None
    return (f"{info.path}: {decoded} frames decoded of the {announced} its container announces "
            f"(truncated or damaged file?); the take holds the decoded ones")


def read_frames(info: VideoInfo) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (index, t_s, frame) with frame an (H, W, 3) uint8 BGR image.

    t_s is the decoder's presentation time when it is strictly increasing, else index / fps.
    """
    cap = cv2.VideoCapture(info.path, cv2.CAP_FFMPEG)
    last_t = -1.0
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / MS_PER_S
            if not np.isfinite(t) or t <= last_t or abs(t - i / info.fps) > 1.0:
                t = i / info.fps
            last_t = t
            yield i, t, frame
            i += 1
    finally:
        cap.release()


CACHED_FRAMES = 32      # frames kept by frame_reader (1080p: 6 MB each)
MAX_DECODE_AHEAD = 30   # frame_reader decodes forward up to this many frames instead of seeking


@contextlib.contextmanager
def frame_reader(path: str | os.PathLike):
    """Random access to single frames: yields frame_at(i) -> BGR frame or None. The last
    CACHED_FRAMES frames read are kept (stages that look at the same frames decode them once), and
    a frame a little ahead is reached by decoding forward rather than seeking (a seek decodes
    from the previous key frame: a tenth of a second per 1080p frame)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    cache: dict[int, np.ndarray] = {}
    position = [0]  # the frame the next read returns

    def frame_at(i: int):
        i = int(i)
        if i in cache:
            return cache[i]
        if not 0 <= i - position[0] <= MAX_DECODE_AHEAD:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            position[0] = i
        while position[0] < i and cap.grab():
            position[0] += 1
        ok, frame = cap.read()
        position[0] += 1
        if not ok:
            return None
        cache[i] = frame
        if len(cache) > CACHED_FRAMES:
            cache.pop(next(iter(cache)))
        return frame
    try:
        yield frame_at
    finally:
        cap.release()

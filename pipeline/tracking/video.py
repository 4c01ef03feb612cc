"""A video file or any stream of frames -> `Tracks` (the one loop that tracks a whole take).

`track_video(path)` tracks every frame of a file (with a progress bar); `track_stream(frames, ...)`
tracks any iterable of (index, t_s, BGR frame), e.g. frames decoded elsewhere. Both return a
`Tracks` of exactly as many rows as frames were read, timestamps in seconds from the first frame,
with `meta["subject"]` saying how the subject was chosen among the people in view and kept
(`subject`: "auto" or N, see pipeline.tracking.subject).
"""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from capture.video import VideoInfo, probe, read_frames
from pipeline.core.tracks import Tracks
from pipeline.tracking.subject import AUTO
from pipeline.tracking.tracker import FaceBodyTracker, FrameResult, store_result

MIN_CAPACITY_FRAMES = 64  # rows allocated up front when the container's frame count is unknown or small


def track_stream(frames: Iterable[tuple[int, float, np.ndarray]], fps: float, image_size,
                 expected_frames: int = 0, source: str = "",
                 on_frame: Callable[[int, np.ndarray, FrameResult], None] | None = None,
                 subject: str | int = AUTO) -> Tracks:
    """Track every frame of a stream of (index, t_s, BGR frame) into Tracks.

    fps: the nominal rate (kept when fewer than 2 frames or their spacing is 0); image_size:
    (width, height) in pixels; expected_frames: the container's count, a first guess for the size.
    on_frame(row, frame, result) is called after each frame (progress bars, previews); subject:
    who to follow when several people are in view ("auto" or N, pipeline.tracking.subject).
    Arrays grow in chunks, so memory is proportional to the number of frames times the size of the
    landmarks (about 6 KB a frame), never to the video.
    """
    capacity = max(expected_frames, MIN_CAPACITY_FRAMES)
    tracks = Tracks.empty(capacity, fps, image_size, source)
    n = 0
    with FaceBodyTracker(subject=subject) as tracker:
        for _, t_s, frame in frames:
            if n == capacity:
                tracks = _resize(tracks, capacity * 2)
                capacity *= 2
            result = tracker.track(frame, t_s)
            tracks.t_s[n] = t_s
            store_result(tracks, n, result)
            if on_frame is not None:
                on_frame(n, frame, result)
            n += 1
        report = tracker.report()
    tracks = _resize(tracks, n)
    tracks.meta["subject"] = report
    if n >= 2:
        dt = float(np.median(np.diff(tracks.t_s)))
        tracks.duration_s = float(tracks.t_s[-1] + dt)
        tracks.fps = 1.0 / dt if dt > 0 else fps
    return tracks


def _resize(tracks: Tracks, n: int) -> Tracks:
    """A copy of `tracks` with n rows: the first rows kept, new rows empty (NaN, invalid)."""
    new = Tracks.empty(n, tracks.fps, tracks.image_size, tracks.source)
    k = min(n, tracks.n_frames)
    out = {}
    for f in fields(Tracks):
        a = getattr(tracks, f.name)
        if isinstance(a, np.ndarray):
            b = getattr(new, f.name)
            b[:k] = a[:k]
            out[f.name] = b
    return replace(tracks, **out)


def track_video(video: str | Path, progress: bool = True, info: VideoInfo | None = None,
                subject: str | int = AUTO) -> Tracks:
    """Tracks of one video file, with a progress bar on stderr unless progress is False.

    info: the file's `capture.video.probe` when the caller has it already (saves opening the file
    again); without it the file is probed here (InputError, one line, for an unusable file).
    The Tracks' source is `str(video)`; subject: see track_stream.
    """
    info = info or probe(video)
    bar = tqdm(total=info.frame_count, unit="frame", desc=f"tracking {Path(video).name}",
               disable=not progress, dynamic_ncols=True)
    try:
        return track_stream(read_frames(info), info.fps, (info.width, info.height), info.frame_count,
                            str(video), on_frame=lambda *_: bar.update(1), subject=subject)
    finally:
        bar.close()

"""TODO docstring."""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np  # noqa: E402

from pipeline.core.tracks import Tracks  # noqa: E402
from pipeline.tracking.tracker import FaceBodyTracker, FrameResult, store_result


def track_stream(frames: Iterable[tuple[int, float, np.ndarray]], fps: float, image_size,
                 expected_frames: int = 0, source: str = "",
                 on_frame: Callable[[int, np.ndarray, FrameResult], None] | None = None) -> Tracks:
    """Track every frame of a stream of (index, t_s, BGR frame) into Tracks.

    Arrays grow in chunks, so memory is proportional to the number of frames times the size of the
    landmarks (about 6 KB a frame), never to the video.
    """
    cap = max(expected_frames, 64)
    tr = Tracks.empty(cap, fps, image_size, source)
    n = 0
    with FaceBodyTracker() as tracker:
        for i, t_s, frame in frames:
            if n == cap:
                tr = _resize(tr, cap * 2)
                cap *= 2
            r = tracker.track(frame, t_s)
            tr.t_s[n] = t_s
            store_result(tr, n, r)
            if on_frame is not None:
                on_frame(n, frame, r)
            n += 1
    tr = _resize(tr, n)
    if n >= 2:
        dt = float(np.median(np.diff(tr.t_s)))
        tr.duration_s = float(tr.t_s[-1] + dt)
        tr.fps = 1.0 / dt if dt > 0 else fps
    return tr


def _resize(tr: Tracks, n: int) -> Tracks:
    new = Tracks.empty(n, tr.fps, tr.image_size, tr.source)
    k = min(n, tr.n_frames)
    out = {}
    for f in fields(Tracks):
        a = getattr(tr, f.name)
        if isinstance(a, np.ndarray):
            b = getattr(new, f.name)
            b[:k] = a[:k]
            out[f.name] = b
    return replace(tr, **out)


def track_video(video: str | Path, progress: bool = True):
    """Tracks of one video file, with a progress bar."""
    from tqdm import tqdm

    from capture.video import probe, read_frames
    from pipeline.tracking.video import track_stream

    info = probe(video)
    bar = tqdm(total=info.frame_count, unit="frame", desc=f"tracking {Path(video).name}",
               disable=not progress, dynamic_ncols=True)
    try:
        return track_stream(read_frames(info), info.fps, (info.width, info.height), info.frame_count,
                            str(video), on_frame=lambda *_: bar.update(1))
    finally:
        bar.close()

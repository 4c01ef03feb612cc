"""One recorded video -> a session folder (see pipeline.session.stages for what it holds).

`process_video(video, out_dir)` probes the file (one-line InputError for a missing or unusable
video, before any folder is made), tracks every frame (`pipeline.tracking.video.track_video`; the
subject: "auto" or N, see pipeline.tracking.subject) and runs every later stage on the tracks
(`finish_session`); it returns the manifest (a dict).
"""
from __future__ import annotations

import time
from pathlib import Path

from capture.video import frame_reader, probe
from pipeline.session.stages import Stopwatch, finish_session, make_session_dir
from pipeline.tracking.subject import AUTO
from pipeline.tracking.video import track_video


def process_video(video: str | Path, out_dir: str | Path, max_gap_s: float = 0.25,
                  progress: bool = True, subject: str | int = AUTO) -> dict:
    """Run every stage on one video; write the session folder; return the manifest.

    max_gap_s: tracking gaps up to this many seconds are filled (and flagged in tracks.npz);
    progress: a progress bar on stderr while tracking; subject: who to follow when several people
    are in view ("auto" or N, pipeline.tracking.subject).
    """
    sw = Stopwatch()
    t0 = time.perf_counter()
    info = probe(video)
    out = make_session_dir(out_dir)
    raw = track_video(video, progress, info=info, subject=subject)
    sw.lap("tracking", t0)
    with frame_reader(info.path) as frame_at:
        return finish_session(raw, out, Path(video).stem, frame_at, sw, max_gap_s, input_info={
            "video": str(Path(video).resolve()), "width": info.width, "height": info.height})

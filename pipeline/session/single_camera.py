"""TODO docstring."""
from __future__ import annotations

import time
from pathlib import Path

from pipeline.session.stages import Stopwatch, finish_session, make_session_dir


def process_video(video: str | Path, out_dir: str | Path, max_gap_s: float = 0.25,
                  progress: bool = True) -> dict:
    """Run every stage on one video; write the session folder; return the manifest."""
    from tqdm import tqdm

    from capture.video import frame_reader, probe, read_frames
    from pipeline.tracking.video import track_stream

    sw = Stopwatch()
    t0 = time.perf_counter()
    info = probe(video)
    out = make_session_dir(out_dir)
    bar = tqdm(total=info.frame_count, unit="frame", desc=f"tracking {Path(video).name}",
               disable=not progress, dynamic_ncols=True)
    raw = track_stream(read_frames(info), info.fps, (info.width, info.height), info.frame_count,
                       str(video), on_frame=lambda *_: bar.update(1))
    bar.close()
    sw.lap("tracking", t0)
    with frame_reader(info.path) as frame_at:
        return finish_session(raw, out, Path(video).stem, frame_at, sw, max_gap_s, input_info={
            "video": str(Path(video).resolve()), "width": info.width, "height": info.height})

"""One recorded video -> a session folder (see pipeline.session.stages for what it holds).

`process_video(video, out_dir)` probes the file (one-line InputError for a missing or unusable
video) and checks the model files (AssetError, exit code 5, naming a missing or altered one) and
`out_dir` (InputError when it holds a session and `overwrite` is not set), all before any work;
then it tracks every frame (`pipeline.tracking.video.track_video`; the subject: "auto" or N, see
pipeline.tracking.subject) and runs every later stage on the tracks (`finish_session`) in a
temporary sibling folder that becomes `out_dir` only once the session is whole
(`pipeline.core.session_folder.staged_session`); it returns the manifest (a dict).
"""
from __future__ import annotations

import time
from pathlib import Path

from capture.video import frame_count_warning, frame_reader, probe
from pipeline.core.assets import verified_models
from pipeline.core.session_folder import staged_session
from pipeline.session.stages import Stopwatch, finish_session
from pipeline.tracking.subject import AUTO
from pipeline.tracking.video import track_video


def process_video(video: str | Path, out_dir: str | Path, max_gap_s: float = 0.25,
                  progress: bool = True, subject: str | int = AUTO, overwrite: bool = False,
                  face_calibration: str | Path | None = None) -> dict:
    """Run every stage on one video; write the session folder whole; return the manifest.

    max_gap_s: tracking gaps up to this many seconds are filled (and flagged in tracks.npz);
    progress: a progress bar on stderr while tracking; subject: who to follow when several people
    are in view ("auto" or N, pipeline.tracking.subject); overwrite: replace a session already
    in out_dir whole (else InputError); face_calibration: None, "auto" or a face_calibration.json
    applied to the expression (pipeline.session.stages.calibrate_expression). The manifest's
    "input" gives the frames the container announces and the frames decoded; a warning says when
    they differ (a truncated file).
    """
    sw = Stopwatch()
    t0 = time.perf_counter()
    info = probe(video)
    list(verified_models())  # a corrupt model stops the run now, not after the tracking
    with staged_session(out_dir, overwrite) as out:
        raw = track_video(video, progress, info=info, subject=subject)
        sw.lap("tracking", t0)
        short = frame_count_warning(info, raw.n_frames)
        with frame_reader(info.path) as frame_at:
            return finish_session(raw, out, Path(video).stem, frame_at, sw, max_gap_s, input_info={
                "video": str(Path(video).resolve()), "width": info.width, "height": info.height,
                "frames_announced": info.frame_count, "frames_decoded": raw.n_frames},
                warnings=[short] if short else [], face_calibration=face_calibration)

"""One recorded take -> its session folder, whether one video or several calibrated cameras
(`python -m pipeline.process`).

`process_take(videos, out_dir, calibration=None)` runs `process_video` on one video, or with a
calibration file `process_multiview` on several videos of the take; it returns the manifest (dict).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pipeline.face.calibration import FaceCalibration
from pipeline.session.multi_camera import process_multiview
from pipeline.session.single_camera import process_video
from pipeline.tracking.subject import AUTO


def process_take(videos: Sequence[str | Path], out_dir: str | Path, calibration: str | Path | None = None,
                 offsets: str | Sequence[float] = "auto", max_gap_s: float = 0.25, progress: bool = True,
                 subject: str | int = AUTO, overwrite: bool = False,
                 face_calibration: str | Path | None = None) -> dict:
    """The session of one take: videos[0] alone without a calibration; with one, every video
    (one per calibrated camera; offsets: "auto", "none" or seconds per video, see
    pipeline.session.multi_camera). max_gap_s: tracking gaps up to this long (seconds) are filled;
    progress: progress bars on stderr; subject: who to follow when several people are in view
    ("auto" or N, pipeline.tracking.subject; with several cameras, chosen in each camera's view);
    overwrite: replace a session already in out_dir whole (else InputError, before any work);
    face_calibration: None, "auto" or a face_calibration.json (read now: a bad file stops the run
    before any work) applied to the expression."""
    if face_calibration not in (None, "auto"):
        FaceCalibration.load(face_calibration)
    if calibration:
        return process_multiview(videos, calibration, out_dir, max_gap_s=max_gap_s, progress=progress,
                                 offsets=offsets, subject=subject, overwrite=overwrite,
                                 face_calibration=face_calibration)
    return process_video(videos[0], out_dir, max_gap_s, progress=progress, subject=subject, overwrite=overwrite,
                         face_calibration=face_calibration)

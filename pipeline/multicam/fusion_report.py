"""The JSON-ready summary of a fusion of several cameras (the session manifest's "multiview").

In:  what pipeline.multicam.fusion worked with and made: the cameras and their names, offsets,
     the `FusedBody` (pipeline.multicam.body_fusion) and `FusedFace` (pipeline.multicam.face_fusion).
Out: a dict of plain numbers and lists: per camera its frames, landmarks used and rejected,
     left/right swaps and reprojection errors (pixels); for the take the error statistics, the
     number of landmarks by cameras used, the pose frame and the world's up.
"""
from __future__ import annotations

import numpy as np

from pipeline.multicam.body_fusion import FusedBody
from pipeline.multicam.calibration import Camera
from pipeline.multicam.face_fusion import FusedFace
from pipeline.multicam.view_sampling import SampledView

STATS_DECIMALS = 2       # pixels are reported to a hundredth
OFFSET_DECIMALS = 5      # seconds: a hundredth of a millisecond
FRACTION_DECIMALS = 4
ROTATION_DECIMALS = 6
UPPER_BODY_BIT, LOWER_BODY_BIT = 1, 2  # pipeline.multicam.left_right_swaps' flags


def error_stats(x: np.ndarray) -> dict:
    """{"n", "median", "mean", "p90", "max"} of the finite values of x (pixels); {"n": 0} if none."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"n": 0}
    return {"n": int(len(x)), "median": round(float(np.median(x)), STATS_DECIMALS),
            "mean": round(float(x.mean()), STATS_DECIMALS),
            "p90": round(float(np.percentile(x, 90)), STATS_DECIMALS),
            "max": round(float(x.max()), STATS_DECIMALS)}


def _camera_entry(c: int, name: str, cam: Camera, calibration_index: int, offset_s: float,
                  view: SampledView, body: FusedBody, face: FusedFace) -> dict:
    """The report of camera c (see the module docstring)."""
    used = body.used[c]
    seen = np.isfinite(body.camera_error_px[c])
    swapped = body.swapped[c]
    return {
        "name": name, "calibration_camera": cam.name, "calibration_index": int(calibration_index),
        "offset_s": round(float(offset_s), OFFSET_DECIMALS),
        "body_frames": int(view.pose_ok.sum()), "face_frames": int(face.camera_ok[c].sum()),
        "face_chosen_frames": int((face.view == c).sum()),
        "landmarks_used": int(used.sum()),
        "landmarks_rejected": int((seen & ~used & np.isfinite(body.error_px)[None]).sum()),
        "left_right_swapped_frames": int((swapped > 0).sum()),
        "left_right_swapped": {"upper_body": int(((swapped & UPPER_BODY_BIT) > 0).sum()),
                               "lower_body": int(((swapped & LOWER_BODY_BIT) > 0).sum())},
        "reprojection_error_px": error_stats(np.where(used, body.camera_error_px[c], np.nan)),
    }


def fusion_report(names: list[str], cams: list[Camera], cameras: list[int], offsets: np.ndarray,
                  reference: int, preview: int, views: list[SampledView], body: FusedBody, face: FusedFace,
                  up_from_calibration: bool, max_error_px: float) -> dict:
    """The fusion's summary (see the module docstring). cameras: index of each camera in the
    calibration; offsets (C,) seconds, on any origin (reported relative to the reference's)."""
    per_cam = [_camera_entry(c, names[c], cams[c], cameras[c], offsets[c] - offsets[reference], views[c], body,
                             face) for c in range(len(cams))]
    n_views = body.n_views
    frames = body.pose_valid[:, None] & np.ones_like(n_views, bool)
    hist = np.bincount(n_views[frames].ravel(), minlength=len(cams) + 1)
    return {
        "cameras": per_cam, "reference": names[reference], "preview": names[preview],
        "max_error_px": max_error_px,
        "body_frames": int(body.pose_valid.sum()),
        "reprojection_error_px": error_stats(np.where(n_views >= 2, body.error_px, np.nan)),
        "landmarks_by_views": {str(k): int(v) for k, v in enumerate(hist)},
        "triangulated_fraction": round(float((n_views[frames] >= 2).mean()), FRACTION_DECIMALS)
        if frames.any() else 0.0,
        "pose_frame_rows_in_world": np.round(body.pose_frame, ROTATION_DECIMALS).tolist(),
        "up_in_world": np.round(body.up, ROTATION_DECIMALS).tolist(),
        "up_from": "calibration" if up_from_calibration else "body",
    }

"""Several cameras' body landmarks on one timeline -> one triangulated body in the pose frame.

In:  the calibrated cameras and each camera's `SampledView` (pipeline.multicam.view_sampling) on the
     reference timeline (N instants): the 33 MediaPipe landmarks in pixels and their visibility.
Out: a `FusedBody`: the landmarks triangulated in the calibration's world (metres, weighted DLT with
     outlier cameras dropped, pipeline.multicam.triangulation), after undoing left/right swaps
     (pipeline.multicam.left_right_swaps); the pose frame; and the landmarks in it as the body solve
     reads single-camera tracks (pose_world_m, visibility, root, pose_image in the preview camera).

The pose frame (pose_world_m's axes, MediaPipe's convention: metres, x right, y down, z away from
the camera, origin between the hips): a virtual camera, level (its y is the world's down), looking
horizontally at the subject's front, the subject's mean facing direction over the take (from the
shoulder and hip lines). The world's up is the calibration's, or, when the calibration does not know
it, the take's median torso direction. Landmarks no two cameras agree on fall back to the best
camera's own MediaPipe world landmark rotated into the pose frame (`n_views` 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.tracks import N_POSE_LANDMARKS, POSE
from pipeline.multicam.calibration import MIN_DEPTH_M, Camera
from pipeline.multicam.left_right_swaps import fix_swapped_sides, mirror_swapped
from pipeline.multicam.triangulation import triangulate
from pipeline.multicam.view_sampling import SampledView

FALLBACK_VISIBILITY = 0.8    # one camera's landmark counts this much of its visibility
MIN_LEFT_LENGTH_M = 1e-6     # metres: a shorter left-right line gives no facing direction
LEVEL_AXIS_LIMIT = 0.9       # |up . x axis| below this: the world's x is far enough from up to cross with
# A triangulated landmark's visibility falls from full at max_error_px to half at twice that.
ERROR_VISIBILITY_SPAN = 2.0  # in units of max_error_px
MIN_ERROR_VISIBILITY = 0.5   # fraction of the visibility kept however large the error
HIPS = [POSE["left_hip"], POSE["right_hip"]]
SHOULDERS = [POSE["left_shoulder"], POSE["right_shoulder"]]


def unit(v: np.ndarray) -> np.ndarray:
    """v (..., k) scaled to unit length along its last axis (NaN for zero vectors)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / n


def pose_frame_rotation(points_m: np.ndarray, up: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(R, up): R (3, 3) world -> pose frame (a level virtual camera in front of the subject, see
    the module docstring), from triangulated landmarks (N, 33, 3) in the world."""
    hips = points_m[:, HIPS].mean(1)
    shoulders = points_m[:, SHOULDERS].mean(1)
    ok = np.isfinite(hips).all(1) & np.isfinite(shoulders).all(1)
    if up is None:
        if not ok.any():
            raise ValueError("no frame with triangulated hips and shoulders")
        up = unit(np.median(unit(shoulders[ok] - hips[ok]), axis=0))
    up = unit(np.asarray(up, np.float64))
    left = (points_m[:, POSE["left_shoulder"]] - points_m[:, POSE["right_shoulder"]]
            + points_m[:, POSE["left_hip"]] - points_m[:, POSE["right_hip"]])
    left = left - (left @ up)[:, None] * up
    has_left = np.isfinite(left).all(1) & (np.linalg.norm(left, axis=1) > MIN_LEFT_LENGTH_M)
    if has_left.any():
        forward = np.cross(unit(np.median(unit(left[has_left]), axis=0)), up)  # left x up = forward
    elif abs(up[0]) < LEVEL_AXIS_LIMIT:
        forward = np.cross(up, [1.0, 0.0, 0.0])
    else:
        forward = np.cross(up, [0.0, 1.0, 0.0])
    forward = unit(forward - (forward @ up) * up)
    z = -forward        # the virtual camera looks back at the subject's front
    y = -up
    x = np.cross(y, z)  # = up x forward = the subject's left, on the image's right
    return np.stack([x, y, z]), up


@dataclass(eq=False)
class FusedBody:
    """The body of C cameras over N instants (see the module docstring); 33 landmarks.

    points_m:   (N, 33, 3) float64 triangulated in the world, metres; NaN where not triangulated.
    used:       (C, N, 33) bool, the camera's reading went into the point.
    error_px:   (N, 33) RMS reprojection error over the cameras used, pixels.
    camera_error_px: (C, N, 33) each camera's reprojection error, pixels (NaN where unseen).
    n_views:    (N, 33) cameras used per landmark.
    swapped:    (C, N) int8 left/right swap flags (pipeline.multicam.left_right_swaps).
    pose_frame: (3, 3) rotation world -> pose frame; up: (3,) the world's up used for it.
    hips:       (N, 3) middle of the hips in the world, metres.
    pose_valid: (N,) bool, frames with a body in the pose frame.
    world_pose: (N, 33, 3) landmarks in the pose frame, origin between the hips, metres.
    visibility: (N, 33) their visibility (NaN where not pose_valid).
    root_m:     (N, 3) the hips in the pose frame's axes, metres (NaN where not pose_valid).
    """

    points_m: np.ndarray
    used: np.ndarray
    error_px: np.ndarray
    camera_error_px: np.ndarray
    n_views: np.ndarray
    swapped: np.ndarray
    pose_frame: np.ndarray
    up: np.ndarray
    hips: np.ndarray
    pose_valid: np.ndarray
    world_pose: np.ndarray
    visibility: np.ndarray
    root_m: np.ndarray


def _triangulated_visibility(used: np.ndarray, vis: np.ndarray, error_px: np.ndarray,
                             max_error_px: float) -> np.ndarray:
    """(N, 33) visibility of each triangulated landmark: the second best visibility among the
    cameras used (two are needed), lowered as its reprojection error approaches twice the threshold.
    used (C, N, 33) bool, vis (C, N, 33), error_px (N, 33) pixels."""
    ranked = np.sort(np.where(used, vis, 0.0), axis=0)
    second_best = ranked[-2] if len(used) >= 2 else ranked[-1]
    with np.errstate(invalid="ignore"):
        return second_best * np.clip(ERROR_VISIBILITY_SPAN - np.nan_to_num(error_px, nan=0.0) / max_error_px,
                                     MIN_ERROR_VISIBILITY, 1.0)


def _fill_from_one_camera(world_pose: np.ndarray, visibility: np.ndarray, missing: np.ndarray,
                          views: list[SampledView], vis: np.ndarray, cams: list[Camera],
                          pose_frame: np.ndarray) -> None:
    """Where a landmark is `missing` (N, 33), the most confident camera's own MediaPipe world
    landmark (relative to its hips, metres) rotated into the pose frame; written in place into
    world_pose (N, 33, 3) and visibility (N, 33) (FALLBACK_VISIBILITY of that camera's)."""
    pose_ok = np.stack([v.pose_ok for v in views])
    best = np.argmax(np.where(pose_ok[:, :, None], vis, -1.0), axis=0)
    for c, v in enumerate(views):
        m = missing & (best == c) & v.pose_ok[:, None]
        if not m.any():
            continue
        rel = v.world - v.world[:, HIPS].mean(1, keepdims=True)
        world_pose[m] = (rel @ (pose_frame @ cams[c].R.T).T)[m]
        visibility[m] = FALLBACK_VISIBILITY * vis[c][m]


def fuse_body(cams: list[Camera], views: list[SampledView], up: np.ndarray | None, max_error_px: float,
              min_weight: float) -> FusedBody:
    """The body of every camera's view triangulated and put in the pose frame (module docstring).
    up: the calibration's up in the world, or None (then the torso's). The views' world landmarks
    are relabelled in place like their swapped readings."""
    n_cams, n_frames = len(cams), len(views[0].pose_ok)
    uv = np.stack([v.uv for v in views])            # (C, N, 33, 2)
    vis = np.stack([v.vis for v in views])          # (C, N, 33)
    swapped = fix_swapped_sides(cams, uv, vis, max_error_px, min_weight)
    for c, v in enumerate(views):  # keep the views consistent with the swapped labels
        mirror_swapped(v.world, swapped[c])
    tri = triangulate(cams, uv.reshape(n_cams, -1, 2), vis.reshape(n_cams, -1), max_error_px,
                      min_weight=min_weight)
    points = tri.points_m.reshape(n_frames, N_POSE_LANDMARKS, 3)
    used = tri.used.reshape(n_cams, n_frames, N_POSE_LANDMARKS)
    error = tri.error_px.reshape(n_frames, N_POSE_LANDMARKS)

    pose_frame, up = pose_frame_rotation(points, up)
    hips = points[:, HIPS].mean(1)
    body_ok = np.isfinite(hips).all(1) & np.isfinite(points[:, SHOULDERS]).all(axis=(1, 2))

    world_pose = np.full((n_frames, N_POSE_LANDMARKS, 3), np.nan)
    visibility = np.zeros((n_frames, N_POSE_LANDMARKS))
    have = np.isfinite(points).all(-1) & body_ok[:, None]
    world_pose[have] = ((points - hips[:, None]) @ pose_frame.T)[have]
    visibility[have] = _triangulated_visibility(used, vis, error, max_error_px)[have]
    _fill_from_one_camera(world_pose, visibility, ~have & body_ok[:, None], views, vis, cams, pose_frame)
    pose_valid = body_ok & np.isfinite(world_pose).all(axis=(1, 2))
    world_pose[~pose_valid] = np.nan
    visibility[~pose_valid] = np.nan
    root = np.where(pose_valid[:, None], hips @ pose_frame.T, np.nan)
    return FusedBody(points, used, error, tri.camera_error_px.reshape(n_cams, n_frames, N_POSE_LANDMARKS),
                     used.sum(0), swapped, pose_frame, up, hips, pose_valid, world_pose, visibility, root)


def project_into_preview(body: FusedBody, cam: Camera, image_size: tuple[int, int]) -> np.ndarray:
    """(N, 33, 3) the fused body as MediaPipe's pose_image in the preview camera: x, y normalised
    by the image's (width, height) pixels, z the depth relative to the hips in image widths (scaled
    like x); NaN where the body is not valid."""
    width, height = image_size
    n_frames = len(body.pose_valid)
    full = np.where(body.pose_valid[:, None, None], body.world_pose @ body.pose_frame + body.hips[:, None],
                    np.nan)
    img = cam.project(full)
    depth = cam.to_camera(full)[..., 2]
    pose_image = np.full((n_frames, N_POSE_LANDMARKS, 3), np.nan)
    pose_image[..., 0] = img[..., 0] / width
    pose_image[..., 1] = img[..., 1] / height
    with np.errstate(invalid="ignore"):
        pose_image[..., 2] = (depth - cam.to_camera(body.hips)[:, 2:3]) * cam.focal_px() \
            / np.maximum(cam.to_camera(body.hips)[:, 2:3], MIN_DEPTH_M) / width
    return pose_image

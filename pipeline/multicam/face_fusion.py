"""Several cameras' faces on one timeline -> one face track: blendshapes, landmarks, head turn.

In:  the calibrated cameras, each camera's `SampledView` (pipeline.multicam.view_sampling) on the
     reference timeline (N instants), each camera's image size (pixels), the pose frame (3, 3,
     world -> pose frame, pipeline.multicam.body_fusion) and the output image's size.
Out: a `FusedFace`.

Blendshape scores are averaged over the cameras that see the face, weighted toward the camera that
sees it most frontally (weight ((cos a - cos 75 deg) / (1 - cos 75 deg))^2, a the angle between the
face's normal and the direction to the camera: a face turned more than 75 degrees away from a camera
does not count, unless no camera sees it more frontally than that, when the most frontal one alone
counts). Landmarks and the face transform are one camera's, per frame: the most frontal one,
switching only when another is clearly better (hysteresis), with the rotation from that camera to
the pose frame kept (`rotation`) so the head turns in the pose frame. Landmark x coordinates are
rescaled to the output image's aspect ratio so pipeline.face.head_space unprojects them as their own
camera did. Face landmarks seen by two cameras or more are also triangulated (`world_m`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.tracks import N_FACE_LANDMARKS
from pipeline.multicam.body_fusion import unit
from pipeline.multicam.calibration import Camera
from pipeline.multicam.triangulation import triangulate
from pipeline.multicam.view_sampling import SampledView

FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes <-> MediaPipe face / glTF camera axes
FACE_PROFILE_DEG = 75.0            # faces turned further from a camera do not vote on blendshapes
FACE_SWITCH_MARGIN = 0.1           # frontal-ness (cosine) another camera must win by to take over
MIN_TRIANGULATION_WEIGHT = 0.5     # a camera that sees the face counts at least this much in its DLT
FACE_MIN_WEIGHT = 0.1              # weights below this leave a face landmark out of the DLT


@dataclass(eq=False)
class FusedFace:
    """The face of C cameras over N instants (see the module docstring).

    camera_ok:  (C, N) bool, the camera sees the face.
    weights:    (C, N) blendshape weight of each camera (0 where it does not count).
    view:       (N,) index of the camera whose landmarks and transform are used; -1 where none.
    valid:      (N,) bool, view >= 0.
    blendshapes: (N, 52) fused scores (NaN where not valid).
    view_blendshapes: (C, N, 52) each camera's own scores where it counts, NaN elsewhere.
    landmarks:  (N, 478, 3) the chosen camera's, normalised image coordinates of the output image.
    matrix:     (N, 4, 4) the chosen camera's face transform (canonical face -> its camera).
    rotation:   (N, 3, 3) the chosen camera's axes -> the pose frame's (MediaPipe camera axes).
    world_m:    (N, 478, 3) float32 face landmarks triangulated in the pose frame's axes, metres, or
                None when no frame has the face in two cameras; reproj_px: (N, 478) their error.
    """

    camera_ok: np.ndarray
    weights: np.ndarray
    view: np.ndarray
    valid: np.ndarray
    blendshapes: np.ndarray
    view_blendshapes: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    rotation: np.ndarray
    world_m: np.ndarray | None
    reproj_px: np.ndarray | None


def face_frontal(mat: np.ndarray) -> np.ndarray:
    """(N,) cosine between the face's normal and the direction from the face to the camera, from
    MediaPipe's face transforms (N, 4, 4) (canonical face -> camera, +Z out of the face)."""
    normal = mat[:, :3, 2]
    to_cam = -mat[:, :3, 3]
    return (unit(normal) * unit(to_cam)).sum(-1)


def choose_with_hysteresis(score: np.ndarray, margin: float) -> np.ndarray:
    """(N,) index of the camera to use per frame from scores (C, N) (NaN = unavailable): the best,
    but the current one is kept until another beats it by `margin`. -1 where none."""
    n_frames = score.shape[1]
    out = np.full(n_frames, -1)
    current = -1
    s = np.where(np.isfinite(score), score, -np.inf)
    for i in range(n_frames):
        best = int(np.argmax(s[:, i]))
        if not np.isfinite(s[best, i]):
            current = -1
            continue
        if current < 0 or not np.isfinite(s[current, i]) or s[best, i] > s[current, i] + margin:
            current = best
        out[i] = current
    return out


def _blendshape_weights(views: list[SampledView]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera_ok (C, N) bool, weights (C, N), view (N,)): which cameras see the face, how much
    each counts in the blendshapes (see the module docstring), and the most frontal camera."""
    camera_ok = np.stack([v.face_ok for v in views])                      # (C, N)
    frontal = np.stack([face_frontal(np.nan_to_num(v.face_mat)) for v in views])
    frontal = np.where(camera_ok, frontal, np.nan)
    cos_profile = np.cos(np.radians(FACE_PROFILE_DEG))
    weights = np.clip((np.nan_to_num(frontal, nan=-1.0) - cos_profile) / (1 - cos_profile), 0.0, 1.0) ** 2
    weights = np.where(camera_ok, weights, 0.0)
    view = choose_with_hysteresis(frontal, FACE_SWITCH_MARGIN)
    lonely = (weights.sum(0) == 0) & (view >= 0)  # only profile views: the best one alone
    weights[view[lonely], np.flatnonzero(lonely)] = 1.0
    return camera_ok, weights, view


def _chosen_camera_face(views: list[SampledView], cams: list[Camera], sizes: list[tuple[int, int]],
                        view: np.ndarray, pose_frame: np.ndarray, output_size: tuple[int, int]):
    """(landmarks (N, 478, 3), matrix (N, 4, 4), rotation (N, 3, 3)) of the camera `view` chose per
    frame (NaN / identity where none); landmark x rescaled from that camera's aspect ratio (sizes,
    pixels) to the output image's."""
    n_frames = len(view)
    landmarks = np.full((n_frames, N_FACE_LANDMARKS, 3), np.nan)
    matrix = np.full((n_frames, 4, 4), np.nan)
    rotation = np.tile(np.eye(3), (n_frames, 1, 1))
    aspect_out = output_size[0] / output_size[1]
    for c, v in enumerate(views):
        m = view == c
        if not m.any():
            continue
        lm = v.face_lm[m].copy()
        width, height = sizes[c]
        lm[..., 0] = 0.5 + (lm[..., 0] - 0.5) * (width / height) / aspect_out
        landmarks[m] = lm
        matrix[m] = v.face_mat[m]
        rotation[m] = FLIP @ pose_frame @ cams[c].R.T @ FLIP
    return landmarks, matrix, rotation


def _triangulate_face(views: list[SampledView], cams: list[Camera], sizes: list[tuple[int, int]],
                      camera_ok: np.ndarray, weights: np.ndarray, pose_frame: np.ndarray,
                      max_error_px: float):
    """(world_m (N, 478, 3) float32 in the pose frame's axes, metres; reproj_px (N, 478) float32)
    for the frames at least two cameras see the face in; (None, None) when there is none."""
    both = np.flatnonzero(camera_ok.sum(0) >= 2)
    if not len(both):
        return None, None
    n_cams, n_frames = camera_ok.shape
    uv = np.stack([v.face_lm[both, :, :2] * sizes[c] for c, v in enumerate(views)])
    w = np.where(camera_ok, np.maximum(weights, MIN_TRIANGULATION_WEIGHT), 0.0)
    w = np.repeat(w[:, both, None], N_FACE_LANDMARKS, 2)
    tri = triangulate(cams, uv.reshape(n_cams, -1, 2), w.reshape(n_cams, -1), max_error_px,
                      min_weight=FACE_MIN_WEIGHT)
    world = np.full((n_frames, N_FACE_LANDMARKS, 3), np.nan, np.float32)
    error = np.full((n_frames, N_FACE_LANDMARKS), np.nan, np.float32)
    world[both] = tri.points_m.reshape(len(both), N_FACE_LANDMARKS, 3) @ pose_frame.T
    error[both] = tri.error_px.reshape(len(both), N_FACE_LANDMARKS)
    return world, error


def fuse_face(cams: list[Camera], views: list[SampledView], sizes: list[tuple[int, int]],
              pose_frame: np.ndarray, output_size: tuple[int, int], max_error_px: float) -> FusedFace:
    """The face of every camera's view fused (see the module docstring). sizes: each camera's image
    (width, height) pixels; output_size: the output image's."""
    camera_ok, weights, view = _blendshape_weights(views)
    blend = np.stack([np.nan_to_num(v.blend) for v in views])
    with np.errstate(invalid="ignore", divide="ignore"):
        fused_blend = (weights[..., None] * blend).sum(0) / weights.sum(0)[:, None]
    valid = view >= 0
    fused_blend[~valid] = np.nan
    landmarks, matrix, rotation = _chosen_camera_face(views, cams, sizes, view, pose_frame, output_size)
    world, error = _triangulate_face(views, cams, sizes, camera_ok, weights, pose_frame, max_error_px)
    view_blend = np.where((weights > 0)[..., None], blend, np.nan).astype(np.float32)
    return FusedFace(camera_ok, weights, view, valid, fused_blend, view_blend, landmarks, matrix, rotation,
                     world, error)

"""One camera's `Tracks` sampled at given instants of another clock (the reference camera's).

In:  a camera's `Tracks` (its own frame times `t_s`, seconds) and the instants (N,) seconds at which
     to read it, on that camera's own clock (the caller adds its time offset: pipeline.multicam.
     time_offset's convention, an event at t in the reference is at t + offset_s in that camera).
Out: a `SampledView`: body landmarks in pixels, their visibility, MediaPipe world landmarks, face
     landmarks, transforms and blendshapes at those instants, each linearly interpolated between the
     two nearest frames where both are valid, else the nearer valid one within half a frame, else
     NaN (validity masks say which). Face transforms are rigid: the nearer frame's, never averaged.

Used by the fusion (pipeline.multicam.fusion) and the reprojection refinement of time offsets
(pipeline.multicam.synchronise).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.tracks import Tracks

DEFAULT_FPS = 30.0      # frames per second assumed for tracks that do not say theirs
MIN_FRAME_GAP_S = 1e-9  # seconds: two frames at one instant still interpolate without dividing by 0


def sample_index(frame_times: np.ndarray, times: np.ndarray, fps: float):
    """For each instant of `times` (M,) seconds: the frame pair (i0, i1) of `frame_times` (n,)
    seconds around it and the weight (M,) of i1 (linear in time, 0..1), plus a mask (M,) of instants
    inside the recording (within half a frame of its ends, `fps` frames per second)."""
    n = len(frame_times)
    if n < 2:
        zeros = np.zeros(len(times), int)
        inside = (np.abs(times - frame_times[0]) <= 0.5 / fps) if n else zeros.astype(bool)
        return zeros, zeros, np.zeros(len(times)), inside
    i1 = np.clip(np.searchsorted(frame_times, times), 1, n - 1)
    i0 = i1 - 1
    span = np.maximum(frame_times[i1] - frame_times[i0], MIN_FRAME_GAP_S)
    weight = np.clip((times - frame_times[i0]) / span, 0.0, 1.0)
    half_frame = 0.5 / fps
    inside = (times >= frame_times[0] - half_frame) & (times <= frame_times[-1] + half_frame)
    return i0, i1, weight, inside


def lerp_frames(x: np.ndarray, ok: np.ndarray, i0, i1, a, inside) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame values x (n, ...) read between frames i0 and i1 (weight a of i1) where both are ok
    (n,), else at the nearer ok one; (values (M, ...), NaN where not valid; valid (M,))."""
    both = ok[i0] & ok[i1]
    near = np.where(a < 0.5, i0, i1)
    aa = a.reshape(-1, *[1] * (x.ndim - 1)).astype(x.dtype)  # float32 stays float32 (face: 478 points)
    out = np.where(both.reshape(aa.shape), (1 - aa) * x[i0] + aa * x[i1], x[near])
    valid = inside & (both | ok[near])
    out[~valid] = np.nan
    return out, valid


@dataclass(eq=False)
class SampledView:
    """One camera's tracks sampled on the reference timeline (N instants)."""
    uv: np.ndarray          # (N, 33, 2) body landmarks, pixels
    vis: np.ndarray         # (N, 33) their visibility, 0 where the body is not valid
    world: np.ndarray       # (N, 33, 3) MediaPipe world landmarks (camera axes), metres
    pose_ok: np.ndarray     # (N,) bool
    face_lm: np.ndarray     # (N, 478, 3) normalised image coordinates
    face_mat: np.ndarray    # (N, 4, 4) canonical face -> camera (MediaPipe's), NaN where no face
    blend: np.ndarray       # (N, 52) blendshape scores
    face_ok: np.ndarray     # (N,) bool


def sample_view(tracks: Tracks, times: np.ndarray) -> SampledView:
    """`tracks` read at `times` (N,) seconds of its own clock (see the module docstring)."""
    fps = float(tracks.fps) if tracks.fps else DEFAULT_FPS
    i0, i1, a, inside = sample_index(np.asarray(tracks.t_s, np.float64), times, fps)
    width, height = tracks.image_size
    pose_ok = np.asarray(tracks.pose_valid, bool) & np.isfinite(tracks.pose_image).all(axis=(1, 2))
    pixels = tracks.pose_image[..., :2].astype(np.float64) * (width, height)
    uv, body_ok = lerp_frames(pixels, pose_ok, i0, i1, a, inside)
    vis, _ = lerp_frames(np.nan_to_num(tracks.pose_visibility.astype(np.float64)), pose_ok, i0, i1, a, inside)
    world, _ = lerp_frames(tracks.pose_world_m.astype(np.float64), pose_ok, i0, i1, a, inside)
    face_ok = np.asarray(tracks.face_valid, bool) & np.isfinite(tracks.face_matrix).all(axis=(1, 2))
    face_lm, face_sampled = lerp_frames(tracks.face_landmarks, face_ok, i0, i1, a, inside)
    blend, _ = lerp_frames(tracks.blendshapes.astype(np.float64), face_ok, i0, i1, a, inside)
    # A rigid transform is not averaged: the nearer frame's.
    near = np.where(a < 0.5, i0, i1)
    near = np.where(face_ok[near], near, np.where(near == i0, i1, i0))
    face_mat = tracks.face_matrix[near].astype(np.float64)
    face_mat[~face_sampled] = np.nan
    return SampledView(uv, np.where(body_ok[:, None], vis, 0.0), world, body_ok, face_lm, face_mat, blend,
                       face_sampled)

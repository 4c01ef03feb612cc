"""Left/right label swaps of MediaPipe body readings, found and undone across several cameras.

MediaPipe sometimes reads a body seen from behind or from the side with left and right swapped,
the whole body or the legs alone. With three cameras or more, rounds of: triangulate; relabel
stretches of the 3D body that swap sides from one frame to the next (a two-state Viterbi on its
motion, upper and lower body apart: where swapped cameras outvoted the others); swap the labels of a
camera's upper or lower body in a frame where they reproject much better swapped (median error
halved, and above the outlier threshold).

In:  calibrated cameras, body landmarks uv (C, N, 33, 2) pixels and visibilities vis (C, N, 33).
Out: the same arrays relabelled in place, and (C, N) int8 flags of what was swapped per camera and
     frame (bit 0 the upper body, bit 1 the lower body, see SIDE_GROUPS).
"""
from __future__ import annotations

import warnings

import numpy as np

from pipeline.core.tracks import MIRROR_LANDMARKS, N_POSE_LANDMARKS
from pipeline.multicam.calibration import Camera
from pipeline.multicam.triangulation import triangulate

SWAP_GAIN = 0.5              # swapped labels must at least halve the camera's median error
CONTINUITY_FLIP_M = 0.02     # Viterbi: cost of relabelling a frame, metres of mean motion
SWAP_ROUNDS = 3              # triangulate-and-relabel rounds at most (they stop once nothing changes)
FIRST_LIMB_LANDMARK = 11     # MediaPipe landmarks from the shoulders on; before them, the face
MIN_LIMB_LANDMARKS = 4       # landmarks of a group that make its motion worth comparing


def _mirror_map(group: np.ndarray) -> np.ndarray:
    """(33,) landmark index after swapping left and right within `group` only."""
    m = np.arange(N_POSE_LANDMARKS)
    m[group] = MIRROR_LANDMARKS[group]
    return m


# MediaPipe swaps the legs alone as often as the whole body: the upper body (face, arms) and the
# lower body (hips, legs) are relabelled separately. Each group is closed under the mirror.
SIDE_GROUPS = [np.arange(0, 23), np.arange(23, 33)]
GROUP_MIRRORS = [_mirror_map(g) for g in SIDE_GROUPS]


def continuity_flips(points: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(N,) bool: frames of triangulated landmarks (N, 33, 3) metres whose left/right labels within
    `group` to swap so the body moves least from frame to frame (two-state Viterbi; swapping costs
    a little, so the labelling most frames have is kept). Frames without landmarks keep theirs."""
    n_frames = len(points)
    limbs = group[group >= FIRST_LIMB_LANDMARK]
    judged = limbs if len(limbs) >= MIN_LIMB_LANDMARKS else group  # limbs: the face adds little
    ok = np.isfinite(points[:, judged]).all(-1).sum(1) >= MIN_LIMB_LANDMARKS
    idx = np.flatnonzero(ok)
    out = np.zeros(n_frames, bool)
    if len(idx) < 2:
        return out
    states = np.stack([points[idx][:, judged], points[idx][:, MIRROR_LANDMARKS[judged]]], axis=1)  # (M, 2, k, 3)
    prior = np.array([0.0, CONTINUITY_FLIP_M])
    cost = prior.copy()
    back = np.zeros((len(idx), 2), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(1, len(idx)):
            motion = np.linalg.norm(states[k - 1][:, None] - states[k][None], axis=-1)  # (2, 2, k)
            step = np.nan_to_num(np.nanmean(motion, -1), nan=0.0)
            total = cost[:, None] + step
            back[k] = total.argmin(0)
            cost = total.min(0) + prior
    path = np.zeros(len(idx), np.int64)
    path[-1] = int(cost.argmin())
    for k in range(len(idx) - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    out[idx] = path.astype(bool)
    return out


def _relabel_3d(points: np.ndarray) -> None:
    """Give the triangulated body (N, 33, 3) one labelling through time, in place, per side group."""
    for group, mirror in zip(SIDE_GROUPS, GROUP_MIRRORS):
        flip = continuity_flips(points, group)
        points[flip] = points[flip][:, mirror]


def _frames_better_swapped(projected: np.ndarray, uv: np.ndarray, seen: np.ndarray, group: np.ndarray,
                           mirror: np.ndarray, max_error_px: float) -> np.ndarray:
    """(N,) bool: frames where one camera's readings uv (N, 33, 2) pixels of `group`, mirrored,
    reproject at most SWAP_GAIN of their unmirrored median error (pixels, above max_error_px) onto
    the body projected into that camera (N, 33, 2); `seen` (N, 33) the readings that count."""
    limbs = group[group >= FIRST_LIMB_LANDMARK]  # judged on the limbs
    error = np.where(seen, np.linalg.norm(projected - uv, axis=-1), np.nan)[:, limbs]
    error_mirrored = np.where(seen[:, mirror], np.linalg.norm(projected[:, mirror] - uv, axis=-1), np.nan)[:, limbs]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames nobody sees: all-NaN rows
        median, median_mirrored = np.nanmedian(error, 1), np.nanmedian(error_mirrored, 1)
    return (median_mirrored < SWAP_GAIN * median) & (median > max_error_px)


def fix_swapped_sides(cams: list[Camera], uv: np.ndarray, vis: np.ndarray, max_error_px: float,
                      min_weight: float) -> np.ndarray:
    """Swap left/right labels of (camera, frame) readings that disagree with the body seen by the
    others, the upper and lower body separately. uv (C, N, 33, 2) pixels, vis (C, N, 33) are changed
    in place; returns (C, N) int8, bit 0 set where the upper body was swapped, bit 1 the lower.

    Each round: triangulate; give the 3D body one labelling through time (continuity_flips: a
    stretch where swapped cameras outvoted the others is relabelled like its neighbours); then
    swap a camera's group in a frame where it reprojects much better swapped (median error at
    most SWAP_GAIN of unswapped, which is above the outlier threshold)."""
    n_cams, n_frames = uv.shape[:2]
    swapped = np.zeros((n_cams, n_frames), np.int8)
    if n_cams < 3:
        return swapped  # two views cannot outvote each other
    for _ in range(SWAP_ROUNDS):
        tri = triangulate(cams, uv.reshape(n_cams, -1, 2), vis.reshape(n_cams, -1), max_error_px,
                          min_weight=min_weight, exact_errors=False, keep_unresolved=True)
        points = tri.points_m.reshape(n_frames, N_POSE_LANDMARKS, 3)
        _relabel_3d(points)
        changed = False
        for c, cam in enumerate(cams):
            projected = cam.project(points)
            seen = vis[c] >= min_weight
            for bit, (group, mirror) in enumerate(zip(SIDE_GROUPS, GROUP_MIRRORS)):
                swap = _frames_better_swapped(projected, uv[c], seen, group, mirror, max_error_px)
                if swap.any():
                    uv[c, swap] = uv[c, swap][:, mirror]
                    vis[c, swap] = vis[c, swap][:, mirror]
                    swapped[c, swap] ^= np.int8(1 << bit)
                    changed = True
        if not changed:
            break
    return swapped


def mirror_swapped(values: np.ndarray, swapped: np.ndarray) -> None:
    """Relabel one camera's per-landmark values (N, 33, ...) in place like its readings were:
    `swapped` (N,) int8 flags from fix_swapped_sides for that camera."""
    for bit, mirror in enumerate(GROUP_MIRRORS):
        s = (swapped & (1 << bit)) > 0
        values[s] = values[s][:, mirror]

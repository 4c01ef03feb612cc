"""Several cameras' tracks of one take + their calibration -> one `Tracks` for the body solve.

`fuse_views` produces tracks the single-camera stages consume unchanged:

Timeline: the reference camera's frames (default the first). Every other camera is sampled at
the same instants, shifted by its time offset (pipeline.time_offset convention: an event at t in
the reference is at t + offset_s in that camera), linearly between its two nearest frames.

Body: the 33 MediaPipe landmarks of every camera, in pixels, weighted by their visibility, are
triangulated (pipeline.triangulation: weighted DLT, outlier cameras dropped by reprojection
error). MediaPipe sometimes reads a body seen from behind or from the side with left and right
swapped, the whole body or the legs alone. With three cameras or more, rounds of: triangulate;
relabel stretches of the 3D body that swap sides from one frame to the next (a two-state Viterbi
on its motion, upper and lower body apart: where swapped cameras outvoted the others); swap the
labels of a camera's upper or lower body in a frame where they reproject much better swapped
(median error halved, and above the outlier threshold). Landmarks no two cameras agree on fall
back to the best camera's own MediaPipe world landmark rotated into the pose frame
(`pose_n_views` 0).

The pose frame (pose_world_m's axes, MediaPipe's convention: metres, x right, y down, z away from
the camera, origin between the hips): a virtual camera, level (its y is the world's down), looking
horizontally at the subject's front, the subject's mean facing direction over the take (from the
shoulder and hip lines). So body_solve's MediaPipe -> glTF map makes the avatar face +Z with Y up,
and its root motion is the triangulated hips (`pose_root_m`), metric. The world's up is the
calibration's, or, when the calibration does not know it, the take's median torso direction.

Face: blendshape scores are averaged over the cameras that see the face, weighted toward the
camera that sees it most frontally (weight ((cos a - cos 75 deg) / (1 - cos 75 deg))^2, a the
angle between the face's normal and the direction to the camera: a face turned more than 75
degrees away from a camera does not count, unless no camera sees it more frontally than that,
when the most frontal one alone counts). Landmarks and the
face transform are one camera's, per frame: the most frontal one, switching only when another is
clearly better (hysteresis), with the rotation from that camera to the pose frame kept in
`face_view_rotation` so the head turns in the pose frame. Landmark x coordinates are rescaled to
the output image's aspect ratio so pipeline.face_space unprojects them as their own camera did.
Face landmarks seen by two cameras or more are also triangulated (`face_world_m`).

The output's image (image_size, pose_image) is the preview camera's (default: the reference):
pose_image is the fused 3D body projected into it, so the contact sheet shows the triangulated
body over that camera's video.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pipeline.core.tracks import MIRROR_LANDMARKS, N_FACE_LANDMARKS, N_POSE_LANDMARKS, POSE, Tracks
from pipeline.multicam.calibration import Calibration, Camera
from pipeline.multicam.triangulation import DEFAULT_MAX_ERROR_PX, DEFAULT_MIN_WEIGHT, triangulate

FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes <-> MediaPipe face / glTF camera axes
FACE_PROFILE_DEG = 75.0            # faces turned further from a camera do not vote on blendshapes
FACE_SWITCH_MARGIN = 0.1           # frontal-ness (cosine) another camera must win by to take over
SWAP_GAIN = 0.5                    # swapped labels must at least halve the camera's median error
CONTINUITY_FLIP_M = 0.02          # Viterbi: cost of relabelling a frame, metres of mean motion
FALLBACK_VISIBILITY = 0.8          # one camera's landmark counts this much of its visibility
HIPS = [POSE["left_hip"], POSE["right_hip"]]
SHOULDERS = [POSE["left_shoulder"], POSE["right_shoulder"]]
BODY = np.arange(11, 33)


@dataclass(eq=False)
class Fusion:
    """tracks:   the fused Tracks (see pipeline.tracks for the multi-view fields).
    points_m: (N, 33, 3) float64 body landmarks triangulated in the calibration's world frame
              (NaN where not triangulated), for diagnostics and tests.
    pose_frame: (3, 3) rotation world -> pose frame (rows: its x, y, z axes in the world).
    report:   JSON-ready summary (also in tracks.meta["multiview"]).
    view_blendshapes: (C, N, 52) float32, each camera's own blendshape scores on the reference
              timeline where it sees the face within FACE_PROFILE_DEG of frontal (or is the only
              one that sees it), NaN elsewhere: for the expression rig, which fuses the cameras
              by encoding each view (pipeline.latent_rig)."""

    tracks: Tracks
    points_m: np.ndarray
    pose_frame: np.ndarray
    report: dict
    view_blendshapes: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# Sampling the cameras on one timeline


def _sample_index(t: np.ndarray, times: np.ndarray, fps: float):
    """For each time: the frame pair (i0, i1) around it and the weight a of i1 (linear), plus a
    mask of times inside the recording (within half a frame of its ends)."""
    n = len(t)
    if n < 2:
        z = np.zeros(len(times), int)
        return z, z, np.zeros(len(times)), (np.abs(times - t[0]) <= 0.5 / fps) if n else z.astype(bool)
    i1 = np.clip(np.searchsorted(t, times), 1, n - 1)
    i0 = i1 - 1
    span = np.maximum(t[i1] - t[i0], 1e-9)
    a = np.clip((times - t[i0]) / span, 0.0, 1.0)
    half = 0.5 / fps
    inside = (times >= t[0] - half) & (times <= t[-1] + half)
    return i0, i1, a, inside


def _lerp(x: np.ndarray, ok: np.ndarray, i0, i1, a, inside) -> tuple[np.ndarray, np.ndarray]:
    """x sampled between frames i0 and i1 where both are ok, else the nearer ok one within half a
    frame; (values, valid)."""
    both = ok[i0] & ok[i1]
    near = np.where(a < 0.5, i0, i1)
    aa = a.reshape(-1, *[1] * (x.ndim - 1)).astype(x.dtype)  # float32 stays float32 (face: 478 points)
    out = np.where(both.reshape(aa.shape), (1 - aa) * x[i0] + aa * x[i1], x[near])
    valid = inside & (both | ok[near])
    out[~valid] = np.nan
    return out, valid


@dataclass(eq=False)
class _View:
    """One camera's tracks sampled on the reference timeline."""
    uv: np.ndarray          # (N, 33, 2) pixels
    vis: np.ndarray         # (N, 33)
    world: np.ndarray       # (N, 33, 3) MediaPipe world landmarks (camera axes)
    pose_ok: np.ndarray     # (N,)
    face_lm: np.ndarray     # (N, 478, 3) normalised image coordinates
    face_mat: np.ndarray    # (N, 4, 4)
    blend: np.ndarray       # (N, 52)
    face_ok: np.ndarray     # (N,)


def _sample_view(tr: Tracks, times: np.ndarray) -> _View:
    fps = float(tr.fps) if tr.fps else 30.0
    i0, i1, a, inside = _sample_index(np.asarray(tr.t_s, np.float64), times, fps)
    W, H = tr.image_size
    pose_ok = np.asarray(tr.pose_valid, bool) & np.isfinite(tr.pose_image).all(axis=(1, 2))
    img, p_ok = _lerp(tr.pose_image[..., :2].astype(np.float64) * (W, H), pose_ok, i0, i1, a, inside)
    vis, _ = _lerp(np.nan_to_num(tr.pose_visibility.astype(np.float64)), pose_ok, i0, i1, a, inside)
    world, _ = _lerp(tr.pose_world_m.astype(np.float64), pose_ok, i0, i1, a, inside)
    face_ok = np.asarray(tr.face_valid, bool) & np.isfinite(tr.face_matrix).all(axis=(1, 2))
    lm, f_ok = _lerp(tr.face_landmarks, face_ok, i0, i1, a, inside)
    bl, _ = _lerp(tr.blendshapes.astype(np.float64), face_ok, i0, i1, a, inside)
    # A rigid transform is not averaged: the nearer frame's.
    near = np.where(a < 0.5, i0, i1)
    near = np.where(face_ok[near], near, np.where(near == i0, i1, i0))
    mat = tr.face_matrix[near].astype(np.float64)
    mat[~f_ok] = np.nan
    return _View(img, np.where(p_ok[:, None], vis, 0.0), world, p_ok, lm, mat, bl, f_ok)


# ---------------------------------------------------------------------------------------------
# Geometry


def _unit(v: np.ndarray) -> np.ndarray:
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
        up = _unit(np.median(_unit(shoulders[ok] - hips[ok]), axis=0))
    up = _unit(np.asarray(up, np.float64))
    left = (points_m[:, POSE["left_shoulder"]] - points_m[:, POSE["right_shoulder"]]
            + points_m[:, POSE["left_hip"]] - points_m[:, POSE["right_hip"]])
    left = left - (left @ up)[:, None] * up
    okl = np.isfinite(left).all(1) & (np.linalg.norm(left, axis=1) > 1e-6)
    if okl.any():
        fwd = np.cross(_unit(np.median(_unit(left[okl]), axis=0)), up)  # left x up = forward
    else:
        fwd = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 1.0, 0.0])
    fwd = _unit(fwd - (fwd @ up) * up)
    z = -fwd            # the virtual camera looks back at the subject's front
    y = -up
    x = np.cross(y, z)  # = up x forward = the subject's left, on the image's right
    return np.stack([x, y, z]), up


def _face_frontal(mat: np.ndarray) -> np.ndarray:
    """(N,) cosine between the face's normal and the direction from the face to the camera, from
    MediaPipe's face transforms (N, 4, 4) (canonical face -> camera, +Z out of the face)."""
    normal = mat[:, :3, 2]
    to_cam = -mat[:, :3, 3]
    return (_unit(normal) * _unit(to_cam)).sum(-1)


def _choose_with_hysteresis(score: np.ndarray, margin: float) -> np.ndarray:
    """(N,) index of the camera to use per frame from scores (C, N) (NaN = unavailable): the best,
    but the current one is kept until another beats it by `margin`. -1 where none."""
    C, N = score.shape
    out = np.full(N, -1)
    cur = -1
    s = np.where(np.isfinite(score), score, -np.inf)
    for i in range(N):
        best = int(np.argmax(s[:, i]))
        if not np.isfinite(s[best, i]):
            cur = -1
            continue
        if cur < 0 or not np.isfinite(s[cur, i]) or s[best, i] > s[cur, i] + margin:
            cur = best
        out[i] = cur
    return out


def _mirror_map(group: np.ndarray) -> np.ndarray:
    """(33,) landmark index after swapping left and right within `group` only."""
    m = np.arange(N_POSE_LANDMARKS)
    m[group] = MIRROR_LANDMARKS[group]
    return m


# MediaPipe swaps the legs alone as often as the whole body: the upper body (face, arms) and the
# lower body (hips, legs) are relabelled separately. Each group is closed under the mirror.
SIDE_GROUPS = [np.arange(0, 23), np.arange(23, 33)]
GROUP_MIRRORS = [_mirror_map(g) for g in SIDE_GROUPS]


def _continuity_flips(X: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(N,) bool: frames of triangulated landmarks (N, 33, 3) whose left/right labels within
    `group` to swap so the body moves least from frame to frame (two-state Viterbi; swapping costs
    a little, so the labelling most frames have is kept). Frames without landmarks keep theirs."""
    N = len(X)
    g = group[group >= 11] if (group >= 11).sum() >= 4 else group  # limbs: the face adds little
    ok = np.isfinite(X[:, g]).all(-1).sum(1) >= 4
    idx = np.flatnonzero(ok)
    out = np.zeros(N, bool)
    if len(idx) < 2:
        return out
    S = np.stack([X[idx][:, g], X[idx][:, MIRROR_LANDMARKS[g]]], axis=1)      # (M, 2, k, 3)
    prior = np.array([0.0, CONTINUITY_FLIP_M])
    cost = prior.copy()
    back = np.zeros((len(idx), 2), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(1, len(idx)):
            d = np.linalg.norm(S[k - 1][:, None] - S[k][None], axis=-1)            # (2, 2, k)
            step = np.nan_to_num(np.nanmean(d, -1), nan=0.0)
            total = cost[:, None] + step
            back[k] = total.argmin(0)
            cost = total.min(0) + prior
    h = np.zeros(len(idx), np.int64)
    h[-1] = int(cost.argmin())
    for k in range(len(idx) - 1, 0, -1):
        h[k - 1] = back[k, h[k]]
    out[idx] = h.astype(bool)
    return out


def _fix_swapped_sides(cams: list[Camera], uv: np.ndarray, vis: np.ndarray, max_error_px: float,
                       min_weight: float) -> np.ndarray:
    """Swap left/right labels of (camera, frame) readings that disagree with the body seen by the
    others, the upper and lower body separately. uv (C, N, 33, 2), vis (C, N, 33) are changed in
    place; returns (C, N) int8, bit 0 set where the upper body was swapped, bit 1 the lower.

    Each round: triangulate; give the 3D body one labelling through time (_continuity_flips: a
    stretch where swapped cameras outvoted the others is relabelled like its neighbours); then
    swap a camera's group in a frame where it reprojects much better swapped (median error at
    most SWAP_GAIN of unswapped, which is above the outlier threshold)."""
    C, N = uv.shape[:2]
    swapped = np.zeros((C, N), np.int8)
    if C < 3:
        return swapped  # two views cannot outvote each other
    for _ in range(3):
        tri = triangulate(cams, uv.reshape(C, -1, 2), vis.reshape(C, -1), max_error_px,
                          min_weight=min_weight, exact_errors=False, keep_unresolved=True)
        X = tri.points_m.reshape(N, N_POSE_LANDMARKS, 3)
        for group, mirror in zip(SIDE_GROUPS, GROUP_MIRRORS):
            flip = _continuity_flips(X, group)
            X[flip] = X[flip][:, mirror]
        changed = False
        for c, cam in enumerate(cams):
            p = cam.project(X)
            seen = vis[c] >= min_weight
            for bit, (group, mirror) in enumerate(zip(SIDE_GROUPS, GROUP_MIRRORS)):
                g = group[group >= 11]  # judged on the limbs
                e = np.where(seen, np.linalg.norm(p - uv[c], axis=-1), np.nan)[:, g]
                em = np.where(seen[:, mirror], np.linalg.norm(p[:, mirror] - uv[c], axis=-1), np.nan)[:, g]
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # frames nobody sees: all-NaN rows
                    me, mm = np.nanmedian(e, 1), np.nanmedian(em, 1)
                sw = (mm < SWAP_GAIN * me) & (me > max_error_px)
                if sw.any():
                    uv[c, sw] = uv[c, sw][:, mirror]
                    vis[c, sw] = vis[c, sw][:, mirror]
                    swapped[c, sw] ^= np.int8(1 << bit)
                    changed = True
        if not changed:
            break
    return swapped


# ---------------------------------------------------------------------------------------------
# Fusion


def fuse_views(tracks: list[Tracks], calibration: Calibration, cameras: list[int] | None = None,
               offsets_s: list[float] | None = None, reference: int = 0, preview: int | None = None,
               max_error_px: float = DEFAULT_MAX_ERROR_PX, min_weight: float = DEFAULT_MIN_WEIGHT,
               names: list[str] | None = None) -> Fusion:
    """Fuse the tracks of C cameras of one take (see the module docstring).

    tracks:    per camera, as pipeline.tracking gives them.
    cameras:   index into calibration.cameras for each tracks (default: in order).
    offsets_s: per camera, time offset relative to the reference (default 0: synchronised).
    reference: which tracks gives the timeline; preview: whose image the output's is (default
               the reference).
    """
    C = len(tracks)
    if C < 2:
        raise ValueError("fuse_views needs at least two cameras")
    cameras = list(range(C)) if cameras is None else list(cameras)
    offsets = np.zeros(C) if offsets_s is None else np.asarray(offsets_s, np.float64)
    preview = reference if preview is None else preview
    cams = [calibration.cameras[k] for k in cameras]
    names = names or [cams[c].name for c in range(C)]
    for c, (tr, cam) in enumerate(zip(tracks, cams)):
        if tuple(tr.image_size) != tuple(cam.size):
            # A video a few pixels smaller than its calibration (e.g. 1080 coded as 1088, cropped)
            # keeps its pixel grid; a different resolution would need scaled intrinsics.
            w, h = tr.image_size
            if abs(w - cam.size[0]) > 16 or abs(h - cam.size[1]) > 16:
                raise ValueError(f"{names[c]}: video is {w}x{h} but camera {cam.name} was calibrated "
                                 f"at {cam.size[0]}x{cam.size[1]}")

    ref = tracks[reference]
    t = np.asarray(ref.t_s, np.float64)
    N = len(t)
    views = [_sample_view(tr, t - offsets[reference] + offsets[c]) for c, tr in enumerate(tracks)]

    # Body.
    uv = np.stack([v.uv for v in views])            # (C, N, 33, 2)
    vis = np.stack([v.vis for v in views])          # (C, N, 33)
    swapped = _fix_swapped_sides(cams, uv, vis, max_error_px, min_weight)
    for c, v in enumerate(views):  # keep the views consistent with the swapped labels
        for bit, mirror in enumerate(GROUP_MIRRORS):
            s = (swapped[c] & (1 << bit)) > 0
            v.world[s] = v.world[s][:, mirror]
    tri = triangulate(cams, uv.reshape(C, -1, 2), vis.reshape(C, -1), max_error_px,
                      min_weight=min_weight)
    X = tri.points_m.reshape(N, N_POSE_LANDMARKS, 3)
    used = tri.used.reshape(C, N, N_POSE_LANDMARKS)
    err = tri.error_px.reshape(N, N_POSE_LANDMARKS)
    cam_err = tri.camera_error_px.reshape(C, N, N_POSE_LANDMARKS)
    n_views = used.sum(0)

    R_pose, up = pose_frame_rotation(X, calibration.up)
    hips = X[:, HIPS].mean(1)
    body_ok = np.isfinite(hips).all(1) & np.isfinite(X[:, SHOULDERS]).all(axis=(1, 2))

    # Visibility of a triangulated landmark: the second best visibility among the cameras used
    # (two are needed), lowered as its reprojection error approaches twice the threshold.
    v_used = np.sort(np.where(used, vis, 0.0), axis=0)
    v2 = v_used[-2] if C >= 2 else v_used[-1]
    with np.errstate(invalid="ignore"):
        v_tri = v2 * np.clip(2.0 - np.nan_to_num(err, nan=0.0) / max_error_px, 0.5, 1.0)

    world_pose = np.full((N, N_POSE_LANDMARKS, 3), np.nan)
    vis_out = np.zeros((N, N_POSE_LANDMARKS))
    have = np.isfinite(X).all(-1) & body_ok[:, None]
    world_pose[have] = ((X - hips[:, None]) @ R_pose.T)[have]
    vis_out[have] = v_tri[have]
    # Fallback: the most confident camera's own world landmark, rotated into the pose frame.
    best = np.argmax(np.where(np.stack([v.pose_ok for v in views])[:, :, None], vis, -1.0), axis=0)
    for c, v in enumerate(views):
        m = ~have & body_ok[:, None] & (best == c) & v.pose_ok[:, None]
        if not m.any():
            continue
        rel = v.world - v.world[:, HIPS].mean(1, keepdims=True)
        world_pose[m] = (rel @ (R_pose @ cams[c].R.T).T)[m]
        vis_out[m] = FALLBACK_VISIBILITY * vis[c][m]
    pose_valid = body_ok & np.isfinite(world_pose).all(axis=(1, 2))
    world_pose[~pose_valid] = np.nan
    vis_out[~pose_valid] = np.nan
    root = np.where(pose_valid[:, None], hips @ R_pose.T, np.nan)

    # Output image: the preview camera's, with the fused body projected into it.
    pcam = cams[preview]
    W, H = tracks[preview].image_size
    full = np.where(pose_valid[:, None, None], world_pose @ R_pose + hips[:, None], np.nan)
    img = pcam.project(full)
    depth = pcam.to_camera(full)[..., 2]
    pose_image = np.full((N, N_POSE_LANDMARKS, 3), np.nan)
    pose_image[..., 0] = img[..., 0] / W
    pose_image[..., 1] = img[..., 1] / H
    with np.errstate(invalid="ignore"):
        pose_image[..., 2] = (depth - pcam.to_camera(hips)[:, 2:3]) * pcam.focal_px() \
            / np.maximum(pcam.to_camera(hips)[:, 2:3], 1e-6) / W

    # Face.
    face_ok = np.stack([v.face_ok for v in views])                      # (C, N)
    frontal = np.stack([_face_frontal(np.nan_to_num(v.face_mat)) for v in views])
    frontal = np.where(face_ok, frontal, np.nan)
    c75 = np.cos(np.radians(FACE_PROFILE_DEG))
    wf = np.clip((np.nan_to_num(frontal, nan=-1.0) - c75) / (1 - c75), 0.0, 1.0) ** 2
    wf = np.where(face_ok, wf, 0.0)
    chosen = _choose_with_hysteresis(frontal, FACE_SWITCH_MARGIN)
    lonely = (wf.sum(0) == 0) & (chosen >= 0)  # only profile views: the best one alone
    wf[chosen[lonely], np.flatnonzero(lonely)] = 1.0
    blend = np.stack([np.nan_to_num(v.blend) for v in views])
    with np.errstate(invalid="ignore", divide="ignore"):
        fused_blend = (wf[..., None] * blend).sum(0) / wf.sum(0)[:, None]
    face_valid = chosen >= 0
    fused_blend[~face_valid] = np.nan
    face_lm = np.full((N, N_FACE_LANDMARKS, 3), np.nan)
    face_mat = np.full((N, 4, 4), np.nan)
    face_rot = np.tile(np.eye(3), (N, 1, 1))
    aspect_out = W / H
    for c, v in enumerate(views):
        m = chosen == c
        if not m.any():
            continue
        lm = v.face_lm[m].copy()
        w_c, h_c = tracks[c].image_size
        lm[..., 0] = 0.5 + (lm[..., 0] - 0.5) * (w_c / h_c) / aspect_out
        face_lm[m] = lm
        face_mat[m] = v.face_mat[m]
        face_rot[m] = FLIP @ R_pose @ cams[c].R.T @ FLIP
    # Face landmarks seen by two cameras or more, triangulated.
    face_world = face_err = None
    both = np.flatnonzero(face_ok.sum(0) >= 2)
    if len(both):
        fuv = np.stack([v.face_lm[both, :, :2] * tracks[c].image_size for c, v in enumerate(views)])
        fw = np.repeat(np.where(face_ok, np.maximum(wf, 0.5), 0.0)[:, both, None], N_FACE_LANDMARKS, 2)
        ftri = triangulate(cams, fuv.reshape(C, -1, 2), fw.reshape(C, -1), max_error_px,
                           min_weight=0.1)
        face_world = np.full((N, N_FACE_LANDMARKS, 3), np.nan, np.float32)
        face_err = np.full((N, N_FACE_LANDMARKS), np.nan, np.float32)
        face_world[both] = ftri.points_m.reshape(len(both), N_FACE_LANDMARKS, 3) @ R_pose.T
        face_err[both] = ftri.error_px.reshape(len(both), N_FACE_LANDMARKS)

    report = _report(names, cams, cameras, offsets, reference, preview, tri, used, cam_err, err,
                     swapped, n_views, pose_valid, face_ok, chosen, R_pose, up, calibration,
                     max_error_px, views)
    out = Tracks(
        t_s=t.copy(), fps=float(ref.fps), duration_s=float(ref.duration_s), image_size=(W, H),
        face_valid=face_valid, face_filled=np.zeros(N, bool),
        face_landmarks=face_lm.astype(np.float32), blendshapes=fused_blend.astype(np.float32),
        face_matrix=face_mat.astype(np.float32),
        pose_valid=pose_valid, pose_filled=np.zeros(N, bool),
        pose_image=np.where(pose_valid[:, None, None], pose_image, np.nan).astype(np.float32),
        pose_world_m=world_pose.astype(np.float32), pose_visibility=vis_out.astype(np.float32),
        source=" + ".join(str(tr.source) for tr in tracks), meta={"multiview": report},
        pose_root_m=root.astype(np.float32),
        pose_reproj_px=np.where(n_views >= 2, err, np.nan).astype(np.float32),
        pose_n_views=np.where(pose_valid[:, None], n_views, 0).astype(np.int8),
        face_view=chosen.astype(np.int8), face_view_rotation=face_rot.astype(np.float32),
        face_world_m=face_world, face_reproj_px=face_err)
    view_blend = np.where((wf > 0)[..., None], blend, np.nan).astype(np.float32)
    return Fusion(out, X, R_pose, report, view_blend)


def _stats(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"n": 0}
    return {"n": int(len(x)), "median": round(float(np.median(x)), 2),
            "mean": round(float(x.mean()), 2), "p90": round(float(np.percentile(x, 90)), 2),
            "max": round(float(x.max()), 2)}


def _report(names, cams, cameras, offsets, reference, preview, tri, used, cam_err, err, swapped,
            n_views, pose_valid, face_ok, chosen, R_pose, up, calibration, max_error_px, views) -> dict:
    C = len(cams)
    seen = np.isfinite(cam_err)
    per_cam = []
    for c in range(C):
        u = used[c]
        per_cam.append({
            "name": names[c], "calibration_camera": cams[c].name, "calibration_index": int(cameras[c]),
            "offset_s": round(float(offsets[c] - offsets[reference]), 5),
            "body_frames": int(views[c].pose_ok.sum()), "face_frames": int(face_ok[c].sum()),
            "face_chosen_frames": int((chosen == c).sum()),
            "landmarks_used": int(u.sum()),
            "landmarks_rejected": int((seen[c] & ~u & np.isfinite(err)[None]).sum()),
            "left_right_swapped_frames": int((swapped[c] > 0).sum()),
            "left_right_swapped": {"upper_body": int(((swapped[c] & 1) > 0).sum()),
                                   "lower_body": int(((swapped[c] & 2) > 0).sum())},
            "reprojection_error_px": _stats(np.where(u, cam_err[c], np.nan)),
        })
    body = pose_valid[:, None] & np.ones_like(n_views, bool)
    hist = np.bincount(n_views[body].ravel(), minlength=C + 1)
    return {
        "cameras": per_cam, "reference": names[reference], "preview": names[preview],
        "max_error_px": max_error_px,
        "body_frames": int(pose_valid.sum()),
        "reprojection_error_px": _stats(np.where(n_views >= 2, err, np.nan)),
        "landmarks_by_views": {str(k): int(v) for k, v in enumerate(hist)},
        "triangulated_fraction": round(float((n_views[body] >= 2).mean()), 4) if body.any() else 0.0,
        "pose_frame_rows_in_world": np.round(R_pose, 6).tolist(),
        "up_in_world": np.round(up, 6).tolist(),
        "up_from": "calibration" if calibration.up is not None else "body",
    }


# ---------------------------------------------------------------------------------------------
# Synchronisation against the calibration


def reprojection_sync(tracks: list[Tracks], calibration: Calibration, cameras: list[int] | None = None,
                      offsets_s: list[float] | None = None, reference: int = 0,
                      search_s: float = 0.05, max_frames: int = 1500) -> tuple[np.ndarray, dict]:
    """Refine time offsets so that the body triangulates best: per camera in turn (two sweeps),
    the offset within +-search_s of the current one that minimises the median reprojection error of
    all cameras' body landmarks (plain DLT, no rejection), first on whole frames then on quarter
    frames. Much sharper than correlating motion once the cameras are calibrated, since a wrong
    offset puts the same landmark at two places.

    Returns (offsets (C,), {"median_error_px_before", "median_error_px_after"}).
    """
    C = len(tracks)
    cameras = list(range(C)) if cameras is None else list(cameras)
    cams = [calibration.cameras[k] for k in cameras]
    off = np.zeros(C) if offsets_s is None else np.asarray(offsets_s, np.float64).copy()
    t = np.asarray(tracks[reference].t_s, np.float64)
    if len(t) > max_frames:
        t = t[np.linspace(0, len(t) - 1, max_frames).round().astype(int)]
    base = [_sample_view(tr, t - off[reference] + off[c]) for c, tr in enumerate(tracks)]

    def cost(c: int, o: float) -> float:
        views = list(base)
        views[c] = _sample_view(tracks[c], t - off[reference] + o)
        uv = np.stack([v.uv[:, BODY] for v in views]).reshape(C, -1, 2)
        w = np.stack([v.vis[:, BODY] for v in views]).reshape(C, -1)
        tri = triangulate(cams, uv, w, None, exact_errors=False)
        e = np.where(tri.used, tri.camera_error_px, np.nan)
        e = e[np.isfinite(e)]
        return float(np.median(e)) if len(e) > 50 else np.inf

    before = cost(reference, off[reference])
    for _ in range(2):
        for c in range(C):
            if c == reference:
                continue
            dt = 1.0 / float(tracks[c].fps or 30.0)
            grid = off[c] + np.arange(-round(search_s / dt), round(search_s / dt) + 1) * dt
            costs = [cost(c, o) for o in grid]
            best = float(grid[int(np.argmin(costs))])
            fine = best + np.array([-0.5, -0.25, 0.25, 0.5]) * dt
            fc = [cost(c, o) for o in fine]
            if min(fc) < min(costs):
                best = float(fine[int(np.argmin(fc))])
            off[c] = best
            base[c] = _sample_view(tracks[c], t - off[reference] + off[c])
    after = cost(reference, off[reference])
    return off, {"median_error_px_before": round(before, 3), "median_error_px_after": round(after, 3)}

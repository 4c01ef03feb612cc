"""Body motion: joint rotations of the humanoid `Skeleton` that follow the tracked body.

Frames and units: glTF world, metres, Y up, right-handed, the avatar faces +Z (its left is +X).
MediaPipe world landmarks (metres, hip-centred, x image-right, y down, z away from the camera)
map to it with (x, y, z) -> (x, -y, -z), a 180 degree turn about X. MediaPipe's facial transform
(canonical face -> virtual camera, +Y up, camera looking down -Z) is then already in this frame:
its rotation is the head's global rotation, the head's rest frame being the canonical face frame.

Quaternions are xyzw (glTF and scipy order). A joint's local rotation is relative to its parent,
in the joint's rest frame; every rest rotation is identity (T-pose), so FK is
    G[j] = G[parent] * L[j],   p[j] = p[parent] + G[parent] (rest_local[j]),   p[hips] = root.

How a frame is solved (`solve_body`):
  * hips: full orientation from the hips -> shoulders up vector (+Y, exact) and the hip line
    (+X, made perpendicular to it);
  * spine, chest: each half of the rotation from the hips to the shoulder frame (same up, X
    along the shoulder line): the torso's twist, so the chest ends on the shoulder line;
  * neck: swing toward the middle of the ears; head: the face transform when the face is
    tracked (local = inverse(parent global) * face rotation), else ears and nose;
  * limbs: the shortest-arc swing (in the parent's frame) that points the rest bone along the
    tracked bone, plus, where a secondary landmark shows it, a twist about the bone: the hand
    plane index - pinky (lower arm pronation, hand) and the ankle above the heel -> toe line
    (foot roll). Upper arms and legs are swing only. Toes and eyes stay identity. Knees bend
    only backward and toes point ahead of the heel: the depth of a shin or foot that breaks this
    is taken as mirrored by MediaPipe and mirrored back.
  * Bones whose landmarks are not confidently visible blend (visibility 0.5 -> 0.7) to a relaxed
    default: arms hanging beside the body, legs straight, head and neck straight.
Rotations only: bone lengths never change. Quaternions are kept in one hemisphere frame to frame,
and a limb swinging near 180 degrees from its rest direction (where the shortest arc is
ill-defined) is carried over from the previous frame instead of jumping.

Conditioning (`condition_pose`), before solving:
  * MediaPipe sometimes reads a body facing the camera as facing away (left/right labels swapped
    and depth mirrored) for a run of frames. A two-state Viterbi pass over the take picks, per
    frame, MediaPipe's reading or its mirror (labels swapped, z negated about the hips) so that
    the pose changes least from frame to frame, with a cost on readings where the head (nose
    behind the ears while the nose is visible or the face is tracked) and the upright torso both
    face away, and a cost on mirroring a reading without that evidence (so ambiguous side views
    keep MediaPipe's reading).
  * Frames that still jump away from their neighbours (visibility-weighted mean distance to a
    7-frame temporal median > 8 cm) are replaced by interpolation when the gap is <= 0.25 s.
  * Runs of fewer than 3 tracked frames amid untracked ones are dropped as glitches.

Smoothing: world landmarks are filtered with a centred Savitzky-Golay filter (cubic, 0.2 s
window; about 6-7 Hz cut-off at 24-60 fps) per run of tracked frames. It is zero-phase, so it
adds no lag; the face rotation gets the same filter on its quaternions. Visibilities get a
zero-phase first-order low-pass (0.1 s, forward and backward), so a limb eases in and out of its
default pose instead of popping. The root's X/Z use a quadratic 0.5 s Savitzky-Golay window
(the depth comes from the body's apparent size and is the noisiest signal); its height comes
from the smoothed pose and gets only the light 0.2 s filter, so the feet stay on the floor.

Several cameras (`Tracks.multiview`, from pipeline.multiview): the landmarks are triangulated in a
level virtual camera in front of the subject, so neither the levelling nor the facing-flip pass is
applied (the frame is level by construction; left and right were checked across views); the root
follows the triangulated hips (`pose_root_m`, metric) instead of `camera_translation`; and the face
rotation is taken into the pose frame per frame (`face_view_rotation`), since each frame's face
comes from the camera that sees it best.

Frames without a body hold the last solved pose (`valid` False; frames before the first tracked
one take its pose); the head still follows the face in those frames when the face is tracked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import lfilter, lfilter_zi, savgol_filter
from scipy.spatial.transform import Rotation

from pipeline.body.kinematics import forward_kinematics
from pipeline.body.skeleton import EAR_MID_IN_FACE_M, Skeleton
from pipeline.core.tracks import MIRROR_LANDMARKS, POSE, Tracks, gap_spans

MP_TO_GLTF = np.array([1.0, -1.0, -1.0])
CAMERA_VFOV_DEG = 63.0           # MediaPipe face geometry's virtual camera
VIS_LO, VIS_HI = 0.5, 0.7        # visibility ramp: below LO the relaxed default, above HI tracked
LANDMARK_WINDOW_S = 0.2
VISIBILITY_TAU_S = 0.1           # visibility low-pass, so limbs ease in and out of the default
MIN_RUN_FRAMES = 3               # shorter runs of tracked frames are MediaPipe glitches
ROOT_WINDOW_S = 0.5
ARM_DOWN_DEG = 8.0               # relaxed arms: this far out from hanging straight down
NOSE_TIP_FACE_M = np.array([0.0, -0.0113, 0.0748])  # canonical landmark 1


@dataclass(eq=False)
class BodyMotion:
    """Per-frame pose of a `Skeleton`.

    t_s:                (N,) float64 seconds (the tracks' timestamps).
    local_rotations:    (N, J, 4) float32 xyzw quaternions, each joint relative to its parent, in
                        the joint's rest frame (identity = T-pose); continuous in sign frame to frame.
    root_translation_m: (N, 3) float32 hips position in glTF world (metres): X/Z relative to the
                        first tracked frame, Y from the feet on the floor (or the rest hips height).
    valid:              (N,) bool, a body was tracked in this frame (else the last pose is held).
    joint_confidence:   (N, J) float32 in [0, 1], visibility of the landmarks that drive each joint
                        (1 for the head when driven by the face; 0 where the default is used).
    level_xyzw:         (4,) rotation from the camera-aligned frame (MediaPipe world in glTF axes)
                        to the levelled world the motion lives in (see `level_rotation`).
    """

    t_s: np.ndarray
    local_rotations: np.ndarray
    root_translation_m: np.ndarray
    valid: np.ndarray
    joint_confidence: np.ndarray
    level_xyzw: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))

    @property
    def n_frames(self) -> int:
        return len(self.t_s)

    def forward_kinematics(self, skel: Skeleton) -> np.ndarray:
        """(N, J, 3) float64 world joint positions (metres, glTF frame) of the motion."""
        return forward_kinematics(skel.parents, skel.rest_local_m, self.local_rotations,
                                  self.root_translation_m)[0]

    def global_rotations(self, skel: Skeleton) -> np.ndarray:
        """(N, J, 4) xyzw world rotations of the joints (relative to the rest pose)."""
        return forward_kinematics(skel.parents, skel.rest_local_m, self.local_rotations,
                                  self.root_translation_m)[1]


# ---------------------------------------------------------------------------------------------
# Small vector / rotation helpers (all batched over frames)


def _unit(v: np.ndarray, fallback=(0.0, 0.0, 1.0)) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), np.asarray(fallback, float))


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smoothstep from 0 (x <= lo) to 1 (x >= hi)."""
    t = np.clip((np.asarray(x, float) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _frame(x: np.ndarray, up: np.ndarray) -> Rotation:
    """Rotation whose columns are Y along `up`, X as near x as possible, Z = X x Y."""
    Y = _unit(up, (0.0, 1.0, 0.0))
    Z = _unit(np.cross(x, Y), (0.0, 0.0, 1.0))
    X = np.cross(Y, Z)
    return Rotation.from_matrix(np.stack([X, Y, Z], axis=-1))


def _frame_x_fwd(x: np.ndarray, fwd: np.ndarray) -> Rotation:
    """Rotation with X along x and Z as near `fwd` as possible."""
    X = _unit(x, (1.0, 0.0, 0.0))
    Y = _unit(np.cross(fwd, X), (0.0, 1.0, 0.0))
    Z = np.cross(X, Y)
    return Rotation.from_matrix(np.stack([X, Y, Z], axis=-1))


def _blend(r0: Rotation, r1: Rotation, w: np.ndarray) -> Rotation:
    """Per-frame slerp from r0 (w = 0) to r1 (w = 1)."""
    return r0 * Rotation.from_rotvec((r0.inv() * r1).as_rotvec() * np.asarray(w, float)[:, None])


def _identity(n: int) -> Rotation:
    return Rotation.identity(n)


def _arc(a: np.ndarray, b: np.ndarray) -> Rotation:
    """Shortest-arc rotations taking direction(s) a to b ((N, 3) or (3,)); a stack of rotations."""
    a, b = np.broadcast_arrays(np.atleast_2d(_unit(np.asarray(a, float))),
                               np.atleast_2d(_unit(np.asarray(b, float))))
    c = np.cross(a, b)
    w = 1.0 + np.einsum("...i,...i->...", a, b)
    q = np.concatenate([c, w[..., None]], axis=-1)
    anti = w < 1e-9  # exactly opposite: any perpendicular axis
    if np.any(anti):
        perp = np.cross(a[anti], [1.0, 0.0, 0.0])
        perp = np.where(np.linalg.norm(perp, axis=-1, keepdims=True) < 1e-6,
                        np.cross(a[anti], [0.0, 1.0, 0.0]), perp)
        q[anti] = np.concatenate([_unit(perp), np.zeros((int(anti.sum()), 1))], axis=-1)
    return Rotation.from_quat(q.reshape(-1, 4))


def _swing(a: np.ndarray, b_local: np.ndarray) -> Rotation:
    """Swing taking the rest direction a (3,) to b_local (N, 3), both in the parent's frame.

    The shortest arc flips around when b passes near -a; there (150 -> 165 degrees from a) the
    rotation is instead carried over from the previous frame by the small arc between the two
    frames' directions. Both candidates map a onto b, so blending them never moves the bone.
    """
    a = _unit(np.asarray(a, float))
    b = _unit(b_local)
    direct = _arc(a, b)
    ang = np.arccos(np.clip(b @ a, -1.0, 1.0))
    z = _ramp(ang, np.radians(150), np.radians(165))
    if not np.any(z > 0):
        return direct
    q = direct.as_quat()
    for i in range(1, len(b)):
        if z[i] > 0:
            carried = _arc(b[i - 1], b[i]) * Rotation.from_quat(q[i - 1])
            q[i] = _blend(Rotation.from_quat(q[i:i + 1]), carried, z[i:i + 1]).as_quat()[0]
    return Rotation.from_quat(q)


def _twist(local: Rotation, parent_g: Rotation, a: np.ndarray, r_rest: np.ndarray,
           t_world: np.ndarray, w: np.ndarray) -> Rotation:
    """Add a twist about the bone axis a (joint rest frame) turning r_rest toward t_world.

    r_rest: (3,) a rest direction perpendicular-ish to a; t_world (N, 3) where it should point
    now. The twist angle is scaled by w (N,) and faded out when t is nearly along the bone.
    """
    a = _unit(np.asarray(a, float))
    t = (parent_g * local).inv().apply(t_world)
    t_p = t - (t @ a)[:, None] * a
    r_p = r_rest - (r_rest @ a) * a
    phi = np.arctan2(np.cross(r_p, t_p) @ a, t_p @ r_p)
    strength = np.linalg.norm(t_p, axis=-1) / np.maximum(np.linalg.norm(t, axis=-1), 1e-9)
    w_eff = np.nan_to_num(w * _ramp(strength, 0.25, 0.5))
    return local * Rotation.from_rotvec(np.outer(np.nan_to_num(phi) * w_eff, a))


def _hemisphere(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs so consecutive frames have a non-negative dot product. (N, J, 4)."""
    q = q.copy()
    for i in range(1, len(q)):
        d = np.einsum("ji,ji->j", q[i], q[i - 1])
        q[i, d < 0] *= -1
    return q


# ---------------------------------------------------------------------------------------------
# Input conditioning


def _savgol_runs(x: np.ndarray, valid: np.ndarray, fps: float, window_s: float,
                 order: int) -> np.ndarray:
    """Centred Savitzky-Golay along axis 0, separately on every run of valid frames."""
    out = x.copy()
    win = int(round(window_s * fps)) | 1
    bounds = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    for s, e in zip(bounds[::2], bounds[1::2]):
        n = e - s
        w = min(win, n if n % 2 else n - 1)
        if w <= order + 1:
            continue  # too short to filter
        out[s:e] = savgol_filter(x[s:e], w, order, axis=0, mode="interp")
    return out


def _lowpass_runs(x: np.ndarray, valid: np.ndarray, fps: float, tau_s: float) -> np.ndarray:
    """Zero-phase first-order low-pass (forward then backward, time constant tau_s) along axis 0,
    separately on every run of valid frames. No overshoot, unlike Savitzky-Golay."""
    out = x.copy()
    alpha = 1.0 - np.exp(-1.0 / max(tau_s * fps, 1e-6))
    b, a = [alpha], [1.0, alpha - 1.0]
    zi = lfilter_zi(b, a)
    bounds = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    for s, e in zip(bounds[::2], bounds[1::2]):
        seg = x[s:e]
        y, _ = lfilter(b, a, seg, axis=0, zi=zi.reshape(-1, *[1] * (seg.ndim - 1)) * seg[:1])
        y, _ = lfilter(b, a, y[::-1], axis=0, zi=zi.reshape(-1, *[1] * (seg.ndim - 1)) * y[-1:])
        out[s:e] = y[::-1]
    return out


def _hold(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid frames with the last valid one (the first valid before any)."""
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = np.flatnonzero(valid)[0]
    return x[idx]


FLIP_PRIOR_M = 0.005      # Viterbi: cost of reading a frame mirrored, metres of mean motion
FACING_AWAY_COST_M = 0.3  # Viterbi: cost of a reading where head and torso both face away
UNSUPPORTED_FLIP_M = 0.1  # Viterbi: cost of mirroring a frame whose reading does not face away
OUTLIER_M = 0.08          # weighted distance to the temporal median beyond which a frame jumps
MAX_OUTLIER_GAP_S = 0.25


@dataclass(eq=False)
class PoseInput:
    """MediaPipe pose landmarks after conditioning (not yet smoothed); see the module docstring.

    world_mp:   (N, 33, 3) float64 MediaPipe world landmarks (MediaPipe's frame, metres), mirrored
                where `flipped`, interpolated where `outlier`; NaN where not valid.
    image:      (N, 33, 3) float64 normalised image landmarks, relabelled like world_mp.
    visibility: (N, 33) float64.
    valid:      (N,) bool, a body was tracked (runs shorter than MIN_RUN_FRAMES are dropped).
    flipped:    (N,) bool, MediaPipe's reading was mirrored (left/right swapped, depth negated).
    outlier:    (N,) bool, the frame jumped away from its neighbours and was interpolated.
    """

    world_mp: np.ndarray
    image: np.ndarray
    visibility: np.ndarray
    valid: np.ndarray
    flipped: np.ndarray
    outlier: np.ndarray

    def world_gltf(self) -> np.ndarray:
        """(N, 33, 3) world landmarks in the glTF frame (x, -y, -z)."""
        return self.world_mp * MP_TO_GLTF


def _facing_away(x_mp: np.ndarray) -> np.ndarray:
    """How clearly a reading (..., 33, 3) has an upright body whose head and torso both face away
    from the camera, in [0, 1]. Side views, lying or flipping bodies score 0 (no evidence)."""
    g = x_mp * MP_TO_GLTF
    nose_ahead = g[..., 0, 2] - g[..., [7, 8], 2].mean(-1)  # > 0: nose nearer the camera
    side = g[..., 11, :] - g[..., 12, :] + g[..., 23, :] - g[..., 24, :]
    up = _unit(g[..., [11, 12], :].mean(-2) - g[..., [23, 24], :].mean(-2))
    fwd_z = _unit(np.cross(side, up))[..., 2]
    head = np.clip((-nose_ahead - 0.02) / 0.06, 0, 1)
    torso = np.clip((-fwd_z - 0.3) / 0.4, 0, 1)
    upright = np.clip((up[..., 1] - 0.5) / 0.3, 0, 1)
    return np.minimum(np.minimum(head, torso), upright)


def _facing_flips(world: np.ndarray, vis: np.ndarray, face_valid: np.ndarray) -> np.ndarray:
    """(M,) bool: which of M consecutive tracked frames to mirror (two-state Viterbi)."""
    m = len(world)
    if m == 0:
        return np.zeros(0, bool)
    X = np.stack([world, world[:, MIRROR_LANDMARKS] * [1.0, 1.0, -1.0]], axis=1)  # (M, 2, 33, 3)
    # Trust "the face is toward the camera" when the face tracker sees it or the nose is visible.
    w = np.where(face_valid, 1.0, _ramp(vis[:, POSE["nose"]], 0.8, 0.95))
    away = w[:, None] * _facing_away(X)  # (M, 2)
    # Mirroring is only cheap where MediaPipe's own reading is evidently wrong; elsewhere (side
    # views, where the mirror is a small change) it must pay for itself in continuity.
    unary = FACING_AWAY_COST_M * away
    unary[:, 1] += FLIP_PRIOR_M + UNSUPPORTED_FLIP_M * (1.0 - away[:, 0])
    cost = unary[0].copy()
    back = np.zeros((m, 2), np.int64)
    for k in range(1, m):
        step = np.linalg.norm(X[k - 1][:, None] - X[k][None], axis=-1).mean(-1)  # (2, 2)
        total = cost[:, None] + step
        back[k] = total.argmin(0)
        cost = total.min(0) + unary[k]
    h = np.zeros(m, np.int64)
    h[-1] = int(cost.argmin())
    for k in range(m - 1, 0, -1):
        h[k - 1] = back[k, h[k]]
    return h.astype(bool)


def condition_pose(tracks: Tracks) -> PoseInput:
    """Undo MediaPipe's facing flips and replace frames that jump (see the module docstring)."""
    valid = np.asarray(tracks.pose_valid, bool) & np.isfinite(tracks.pose_world_m).all(axis=(1, 2))
    world = tracks.pose_world_m.astype(np.float64)
    image = tracks.pose_image.astype(np.float64)
    vis = np.nan_to_num(tracks.pose_visibility.astype(np.float64))
    runs = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    lens = runs[1::2] - runs[::2]
    if len(lens) and lens.max() >= MIN_RUN_FRAMES:
        for s, e in zip(runs[::2], runs[1::2]):
            if e - s < MIN_RUN_FRAMES:
                valid[s:e] = False  # a frame or two of body amid nothing: a glitch
    world[~valid] = np.nan
    flipped = np.zeros(len(valid), bool)
    outlier = np.zeros(len(valid), bool)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return PoseInput(world, image, vis, valid, flipped, outlier)
    if not tracks.multiview:  # triangulated labels were checked across views (pipeline.multiview)
        flipped[idx] = _facing_flips(world[idx], vis[idx], np.asarray(tracks.face_valid, bool)[idx])
    f = flipped
    world[f] = world[f][:, MIRROR_LANDMARKS] * [1.0, 1.0, -1.0]
    image[f] = image[f][:, MIRROR_LANDMARKS]
    vis[f] = vis[f][:, MIRROR_LANDMARKS]
    if len(idx) >= 7:
        w = world[idx]
        dev = np.linalg.norm(w - median_filter(w, size=(7, 1, 1), mode="nearest"), axis=-1)
        v = vis[idx] + 1e-3
        dev = (dev * v).sum(-1) / v.sum(-1)
        outlier[idx[dev > OUTLIER_M]] = True
        fps = float(tracks.fps) if tracks.fps and tracks.fps > 0 else 30.0
        keep = valid & ~outlier
        for s, e in gap_spans(keep):
            span = np.arange(s, e)
            inner = outlier[span]
            if not inner.any():
                continue
            if s == 0 or e == len(valid) or (e - s) / fps > MAX_OUTLIER_GAP_S or not valid[span].all():
                outlier[span] = False  # not a short glitch inside a tracked run: keep the data
                continue
            a = (span - (s - 1)) / (e - (s - 1))
            for arr in (world, image, vis):
                arr[span] = (1 - a.reshape(-1, *[1] * (arr.ndim - 1))) * arr[s - 1] \
                    + a.reshape(-1, *[1] * (arr.ndim - 1)) * arr[e]
    return PoseInput(world, image, vis, valid, flipped, outlier)


def level_rotation(P: np.ndarray, w_hip: np.ndarray, min_frames: int = 10) -> Rotation:
    """Rotation that levels a tilted camera: the take's median torso direction (hips -> shoulders,
    frames with the hips seen) becomes +Y; yaw is left alone.

    MediaPipe's world landmarks are aligned with the camera, so a camera looking down at the
    subject (Pose2Sim's cam01, 30 degrees) would make an upright person lean. A take's median
    torso is upright to a few degrees for standing, walking or seated people.
    P: (N, 33, 3) landmarks, glTF axes; w_hip: (N,) weight in [0, 1] of the hips being seen.
    """
    seen = w_hip > 0.5
    if seen.sum() < min_frames:
        return Rotation.identity()
    up = P[seen][:, [POSE["left_shoulder"], POSE["right_shoulder"]]].mean(1) \
        - P[seen][:, [POSE["left_hip"], POSE["right_hip"]]].mean(1)
    up = np.median(_unit(up), axis=0)
    return _arc(_unit(up[None]), np.array([[0.0, 1.0, 0.0]]))[0]


def _rest_landmarks(skel: Skeleton) -> np.ndarray:
    """(33, 3) landmarks of the rest pose (relaxed by the solver because visibility is 0), glTF
    frame, hip-centred: stands in for a take without any body."""
    W = skel.rest_world_m
    j = skel.index
    p = np.zeros((33, 3))
    head_face = W[j("head")] + skel.head_anchor_m
    for side, sx in (("left", 1.0), ("right", -1.0)):
        p[POSE[f"{side}_shoulder"]] = W[j(f"{side}UpperArm")]
        p[POSE[f"{side}_elbow"]] = W[j(f"{side}LowerArm")]
        p[POSE[f"{side}_wrist"]] = W[j(f"{side}Hand")]
        hand = W[j(f"{side}Hand")]
        p[POSE[f"{side}_index"]] = hand + (sx * 0.09, 0.0, 0.03)
        p[POSE[f"{side}_pinky"]] = hand + (sx * 0.08, 0.0, -0.03)
        p[POSE[f"{side}_thumb"]] = hand + (sx * 0.04, 0.0, 0.05)
        p[POSE[f"{side}_hip"]] = W[j(f"{side}UpperLeg")]
        p[POSE[f"{side}_knee"]] = W[j(f"{side}LowerLeg")]
        p[POSE[f"{side}_ankle"]] = W[j(f"{side}Foot")]
        p[POSE[f"{side}_heel"]] = W[j(f"{side}Foot")] + skel.heel_offset_m
        p[POSE[f"{side}_foot_index"]] = W[j(f"{side}Toes")] + skel.toe_tip_offset_m
        p[POSE[f"{side}_ear"]] = head_face + EAR_MID_IN_FACE_M + (sx * 0.075, 0.0, 0.0)
        p[POSE[f"{side}_eye"]] = W[j(f"{side}Eye")]
    p[POSE["nose"]] = head_face + NOSE_TIP_FACE_M
    p[POSE["mouth_left"]] = head_face + (0.025, -0.045, 0.06)
    p[POSE["mouth_right"]] = head_face + (-0.025, -0.045, 0.06)
    return p - W[j("hips")]


def _face_rotations(tracks: Tracks, fps: float) -> tuple[Rotation, np.ndarray]:
    """Smoothed head rotations from the face transform (identity where the face is missing)."""
    n = tracks.n_frames
    ok = np.asarray(tracks.face_valid, bool) & np.isfinite(tracks.face_matrix).all(axis=(1, 2))
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
        q = _savgol_runs(q, ok, fps, LANDMARK_WINDOW_S, 3)
        q[ok] = _hemisphere(q[ok][:, None])[:, 0]
    return Rotation.from_quat(q), ok


# ---------------------------------------------------------------------------------------------
# Root motion


def camera_translation(image_size: tuple[int, int], image: np.ndarray, world_mp: np.ndarray,
                       vis: np.ndarray) -> np.ndarray:
    """(N, 3) hips position in MediaPipe's camera frame (x right, y down, z forward, metres).

    image: (N, 33, 3) normalised image landmarks; world_mp: (N, 33, 3) world landmarks
    (MediaPipe frame); vis: (N, 33).

    Linear least squares per frame for the translation t such that the pinhole projection of
    (world landmark + t) hits the image landmark, with MediaPipe's virtual camera (vertical field
    of view 63 degrees, principal point at the image centre). Landmarks must be visible (>= 0.5)
    and inside the image; NaN where fewer than 4 are.
    """
    W, H = image_size
    f = 0.5 * H / np.tan(np.radians(CAMERA_VFOV_DEG) / 2)
    cx, cy = 0.5 * W, 0.5 * H
    u = image[..., 0] * W
    v = image[..., 1] * H
    X, Y, Z = (world_mp[..., k] for k in range(3))
    with np.errstate(invalid="ignore"):
        inside = ((image[..., 0] > -0.02) & (image[..., 0] < 1.02)
                  & (image[..., 1] > -0.02) & (image[..., 1] < 1.02))
    wt = np.where((vis >= 0.5) & inside & np.isfinite(u) & np.isfinite(X), vis, 0.0)
    u, v, X, Y, Z = (np.nan_to_num(a) for a in (u, v, X, Y, Z))
    # Rows: [f, 0, cx - u] t = (u - cx) Z - f X   and   [0, f, cy - v] t = (v - cy) Z - f Y
    n, k = u.shape
    A = np.zeros((n, k, 2, 3))
    A[..., 0, 0] = f
    A[..., 0, 2] = cx - u
    A[..., 1, 1] = f
    A[..., 1, 2] = cy - v
    b = np.stack([(u - cx) * Z - f * X, (v - cy) * Z - f * Y], axis=-1)
    sw = np.sqrt(wt)[..., None]
    A = (A * sw[..., None]).reshape(n, 2 * k, 3)
    b = (b * sw).reshape(n, 2 * k)
    AtA = np.einsum("nki,nkj->nij", A, A) + 1e-9 * np.eye(3)
    Atb = np.einsum("nki,nk->ni", A, b)
    t = np.linalg.solve(AtA, Atb[..., None])[..., 0]
    t[(wt > 0).sum(-1) < 4] = np.nan
    t[t[:, 2] <= 0.1] = np.nan  # behind / inside the camera: a failed fit
    return t


# ---------------------------------------------------------------------------------------------
# The solver


def solve_body(skel: Skeleton, tracks: Tracks, head_from_face: bool = True) -> BodyMotion:
    """Joint rotations and root translation of `skel` following the body in `tracks`."""
    n, J = tracks.n_frames, skel.n_joints
    fps = float(tracks.fps) if tracks.fps and tracks.fps > 0 else 30.0
    if n == 0:
        return BodyMotion(np.zeros(0), np.zeros((0, J, 4), np.float32), np.zeros((0, 3), np.float32),
                          np.zeros(0, bool), np.zeros((0, J), np.float32))
    rest_hips = skel.rest_world_m[0]

    pin = condition_pose(tracks)
    valid = pin.valid
    if valid.any():
        world_mp = _savgol_runs(pin.world_mp, valid, fps, LANDMARK_WINDOW_S, 3)
        vis = np.clip(_lowpass_runs(pin.visibility, valid, fps, VISIBILITY_TAU_S), 0.0, 1.0)
        if tracks.multiview:  # the hips triangulated in the room, already in the pose frame
            cam_t = np.where(valid[:, None], tracks.pose_root_m.astype(np.float64), np.nan)
        else:
            cam_t = camera_translation(tracks.image_size, pin.image, world_mp, vis)
        world_mp, vis = _hold(world_mp, valid), _hold(vis, valid)
        P = world_mp * MP_TO_GLTF
        if tracks.multiview:  # the pose frame is level already (the calibration's up)
            level = Rotation.identity()
        else:
            w_hips = _ramp(vis[:, [POSE["left_hip"], POSE["right_hip"]]].min(1), VIS_LO, VIS_HI)
            level = level_rotation(P, w_hips)
        P = level.apply(P.reshape(-1, 3)).reshape(P.shape)
        cam_t = level.apply(cam_t * MP_TO_GLTF) * MP_TO_GLTF  # NaN rows stay NaN
    else:  # no body at all: the rest skeleton's landmarks, invisible -> the relaxed default
        P = np.broadcast_to(_rest_landmarks(skel), (n, 33, 3)).copy()
        vis = np.zeros((n, 33))
        cam_t = np.full((n, 3), np.nan)
        level = Rotation.identity()

    def lm(*names: str) -> np.ndarray:
        return P[:, [POSE[k] for k in names]].mean(axis=1)

    def conf(*names: str) -> np.ndarray:
        return vis[:, [POSE[k] for k in names]].min(axis=1)

    def wv(*names: str) -> np.ndarray:
        return _ramp(conf(*names), VIS_LO, VIS_HI)

    j = skel.index
    R = skel.rest_local_m
    L: dict[str, Rotation] = {}
    G: dict[str, Rotation] = {}
    C = np.zeros((n, J))
    ident = _identity(n)
    mhip, msh = lm("left_hip", "right_hip"), lm("left_shoulder", "right_shoulder")

    # Hips and torso. Unseen hips (a head-and-shoulders shot) borrow the shoulder line's yaw and
    # an upright torso rather than MediaPipe's guess.
    w_hip = wv("left_hip", "right_hip")
    x_sh = _unit(lm("left_shoulder") - lm("right_shoulder"), (1.0, 0.0, 0.0))
    x_hip = _unit(lm("left_hip") - lm("right_hip"), (1.0, 0.0, 0.0))
    up = _unit(w_hip[:, None] * _unit(msh - mhip, (0.0, 1.0, 0.0))
               + (1 - w_hip[:, None]) * np.array([0.0, 1.0, 0.0]), (0.0, 1.0, 0.0))
    G["hips"] = L["hips"] = _frame(_unit(w_hip[:, None] * x_hip + (1 - w_hip[:, None]) * x_sh), up)
    chest_g = _frame(x_sh, up)
    half = Rotation.from_rotvec(0.5 * (G["hips"].inv() * chest_g).as_rotvec())
    L["spine"] = L["chest"] = half
    G["spine"] = G["hips"] * half
    G["chest"] = G["spine"] * half
    C[:, j("hips")] = conf("left_hip", "right_hip")
    C[:, j("spine")] = C[:, j("chest")] = conf("left_hip", "right_hip", "left_shoulder",
                                               "right_shoulder")

    # Neck: swing toward the middle of the ears (its rest direction: straight up to the ears).
    # The neck base is placed above the tracked shoulder centre, not at the end of the rest-length
    # torso chain, so a torso length or lean that differs from the take does not tilt the neck.
    shoulder_y = skel.rest_world_m[j("leftUpperArm"), 1]
    neck_pos = msh + G["chest"].apply([0.0, skel.rest_world_m[j("neck"), 1] - shoulder_y, 0.0])
    a_neck = R[j("head")] + skel.head_anchor_m + EAR_MID_IN_FACE_M
    ears = lm("left_ear", "right_ear")
    w_neck = wv("left_ear", "right_ear", "left_shoulder", "right_shoulder")
    L["neck"] = _blend(ident, _swing(a_neck, G["chest"].inv().apply(ears - neck_pos)), w_neck)
    G["neck"] = G["chest"] * L["neck"]
    C[:, j("neck")] = conf("left_ear", "right_ear", "left_shoulder", "right_shoulder")

    # Head: from the face transform where the face is tracked, else ears and nose.
    rest_head = _frame_x_fwd(np.array([[1.0, 0.0, 0.0]]), NOSE_TIP_FACE_M - EAR_MID_IN_FACE_M)
    pose_head = _frame_x_fwd(lm("left_ear") - lm("right_ear"), lm("nose") - ears) * rest_head.inv()
    w_head = wv("left_ear", "right_ear", "nose")
    head_local = _blend(ident, G["neck"].inv() * pose_head, w_head).as_quat()
    C[:, j("head")] = conf("left_ear", "right_ear", "nose")
    if head_from_face:
        face_g, face_ok = _face_rotations(tracks, fps)
        face_g = level * face_g
        head_local[face_ok] = (G["neck"].inv() * face_g).as_quat()[face_ok]
        C[face_ok, j("head")] = 1.0
    L["head"] = Rotation.from_quat(head_local)
    G["head"] = G["neck"] * L["head"]
    L["leftEye"] = L["rightEye"] = ident

    for side, sx in (("left", 1.0), ("right", -1.0)):
        # Clavicle: identity; the chest frame already puts the shoulder joints on the shoulder line.
        L[f"{side}Shoulder"] = ident
        G[f"{side}Shoulder"] = G["chest"]
        C[:, j(f"{side}Shoulder")] = conf("left_shoulder", "right_shoulder")

        # Upper arm: swing only, to the elbow. (Its twist is not observable without a hand
        # plane; the lower arm takes the forearm's roll from the hand.)
        ax = np.array([sx, 0.0, 0.0])
        sh, el, wr = lm(f"{side}_shoulder"), lm(f"{side}_elbow"), lm(f"{side}_wrist")
        knu = lm(f"{side}_index", f"{side}_pinky")
        across = lm(f"{side}_index") - lm(f"{side}_pinky")  # rest (palms down, T-pose): +Z
        parent = G[f"{side}Shoulder"]
        ua = _swing(ax, parent.inv().apply(el - sh))
        relaxed = _arc(ax, np.array([sx * np.sin(np.radians(ARM_DOWN_DEG)),
                                     -np.cos(np.radians(ARM_DOWN_DEG)), 0.0]))
        relaxed = Rotation.from_quat(np.tile(relaxed.as_quat(), (n, 1)))
        L[f"{side}UpperArm"] = _blend(relaxed, ua, wv(f"{side}_shoulder", f"{side}_elbow"))
        G[f"{side}UpperArm"] = parent * L[f"{side}UpperArm"]
        C[:, j(f"{side}UpperArm")] = conf(f"{side}_shoulder", f"{side}_elbow")

        # Lower arm: swing to the wrist, twist (pronation) from the hand plane.
        parent = G[f"{side}UpperArm"]
        la = _swing(ax, parent.inv().apply(wr - el))
        w_hand = wv(f"{side}_wrist", f"{side}_index", f"{side}_pinky")
        la = _twist(la, parent, ax, np.array([0.0, 0.0, 1.0]), across, w_hand)
        L[f"{side}LowerArm"] = _blend(ident, la, wv(f"{side}_elbow", f"{side}_wrist"))
        G[f"{side}LowerArm"] = parent * L[f"{side}LowerArm"]
        C[:, j(f"{side}LowerArm")] = conf(f"{side}_elbow", f"{side}_wrist")

        # Hand: swing to the knuckles, twist from index - pinky.
        parent = G[f"{side}LowerArm"]
        hd = _swing(ax, parent.inv().apply(knu - wr))
        hd = _twist(hd, parent, ax, np.array([0.0, 0.0, 1.0]), across, np.ones(n))
        L[f"{side}Hand"] = _blend(ident, hd, w_hand)
        G[f"{side}Hand"] = parent * L[f"{side}Hand"]
        C[:, j(f"{side}Hand")] = conf(f"{side}_wrist", f"{side}_index", f"{side}_pinky")

        # Upper leg: swing only, to the knee (a knee bending forward then stays a hinge about X).
        down = np.array([0.0, -1.0, 0.0])
        hp, kn, an = lm(f"{side}_hip"), lm(f"{side}_knee"), lm(f"{side}_ankle")
        heel, toe = lm(f"{side}_heel"), lm(f"{side}_foot_index")
        parent = G["hips"]
        ul = _swing(down, parent.inv().apply(kn - hp))
        L[f"{side}UpperLeg"] = _blend(ident, ul, wv(f"{side}_hip", f"{side}_knee"))
        G[f"{side}UpperLeg"] = parent * L[f"{side}UpperLeg"]
        C[:, j(f"{side}UpperLeg")] = conf(f"{side}_hip", f"{side}_knee")

        # Lower leg: swing to the ankle. A knee cannot bend forward: a shin ahead of the thigh
        # (+Z in the thigh's frame) is MediaPipe mirroring the depth of the lower leg, so mirror
        # it back.
        parent = G[f"{side}UpperLeg"]
        b = parent.inv().apply(an - kn)
        b[:, 2] = -np.abs(b[:, 2])
        ll = _swing(down, b)
        L[f"{side}LowerLeg"] = _blend(ident, ll, wv(f"{side}_knee", f"{side}_ankle"))
        G[f"{side}LowerLeg"] = parent * L[f"{side}LowerLeg"]
        C[:, j(f"{side}LowerLeg")] = conf(f"{side}_knee", f"{side}_ankle")

        # Foot: heel -> toe is +Z at rest; roll from the ankle above that line. Toes behind the
        # heel (-Z in the shin's frame) are a depth mirror too: mirror back.
        parent = G[f"{side}LowerLeg"]
        fwd = np.array([0.0, 0.0, 1.0])
        b = parent.inv().apply(toe - heel)
        b[:, 2] = np.abs(b[:, 2])
        ft = _swing(fwd, b)
        ft = _twist(ft, parent, fwd, np.array([0.0, 1.0, 0.0]), an - heel, np.ones(n))
        L[f"{side}Foot"] = _blend(ident, ft, wv(f"{side}_heel", f"{side}_foot_index", f"{side}_ankle"))
        G[f"{side}Foot"] = parent * L[f"{side}Foot"]
        C[:, j(f"{side}Foot")] = conf(f"{side}_heel", f"{side}_foot_index", f"{side}_ankle")
        L[f"{side}Toes"] = ident
        C[:, j(f"{side}Toes")] = C[:, j(f"{side}Foot")]
    if head_from_face:
        C[:, j("leftEye")] = C[:, j("rightEye")] = face_ok.astype(float)

    q = np.stack([L[name].as_quat() for name in skel.names], axis=1)
    q = _hemisphere(q)
    C[~valid] = 0.0
    if head_from_face:
        C[~valid & face_ok, j("head")] = 1.0

    root = _root_translation(skel, q, valid, cam_t, vis, fps, rest_hips)
    return BodyMotion(t_s=np.asarray(tracks.t_s, np.float64).copy(),
                      local_rotations=q.astype(np.float32),
                      root_translation_m=root.astype(np.float32),
                      valid=valid.copy(), joint_confidence=np.clip(C, 0, 1).astype(np.float32),
                      level_xyzw=level.as_quat())


def _root_translation(skel: Skeleton, q: np.ndarray, valid: np.ndarray, cam_t: np.ndarray,
                      vis: np.ndarray, fps: float, rest_hips: np.ndarray) -> np.ndarray:
    """(N, 3) hips position: X/Z follow the camera-space hips relative to the first tracked frame;
    Y puts the lowest heel or toe tip of the solved pose on the floor (blended to the rest hips
    height as the feet become unseen)."""
    n = len(q)
    root = np.zeros((n, 3))
    # Horizontal: camera frame -> glTF (the avatar faces the camera), relative to the first
    # valid estimate, gaps interpolated.
    t_gl = cam_t * MP_TO_GLTF
    ok = np.isfinite(t_gl).all(axis=1)
    if ok.any():
        t_gl = t_gl - t_gl[np.flatnonzero(ok)[0]]
        idx = np.arange(n)
        for k in (0, 2):
            root[:, k] = np.interp(idx, idx[ok], t_gl[ok, k])
    # Vertical: FK with the hips at the origin, lowest sole point to Y = 0.
    pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, q, np.zeros((n, 3)))
    lows = []
    for side in ("left", "right"):
        f, t = skel.index(f"{side}Foot"), skel.index(f"{side}Toes")
        heel = pos[:, f] + Rotation.from_quat(glob[:, f]).apply(skel.heel_offset_m)
        tip = pos[:, t] + Rotation.from_quat(glob[:, t]).apply(skel.toe_tip_offset_m)
        lows.append(np.minimum(heel[:, 1], tip[:, 1]))
    contact = -np.minimum(*lows)
    feet_vis = np.max([vis[:, [POSE[f"{s}_heel"], POSE[f"{s}_foot_index"], POSE[f"{s}_ankle"]]].min(1)
                       for s in ("left", "right")], axis=0)
    w = _ramp(feet_vis, VIS_LO, VIS_HI)
    root[:, 1] = w * contact + (1 - w) * rest_hips[1]
    if n > 1:
        everything = np.ones(n, bool)
        root[:, [0, 2]] = _savgol_runs(root[:, [0, 2]], everything, fps, ROOT_WINDOW_S, 2)
        # The height comes from the already smoothed pose: filter it only lightly, so the feet
        # keep touching the floor.
        root[:, 1] = _savgol_runs(root[:, 1], everything, fps, LANDMARK_WINDOW_S, 3)
    if valid.any():
        if not valid.all():
            root = _hold(root, valid)  # frames without a body hold the last solved pose
        root[:, [0, 2]] -= root[np.flatnonzero(valid)[0], [0, 2]]  # start at X = Z = 0
    return root

"""Frames of the body solve and its small rotation helpers, all batched over N frames.

Frames and units: glTF world, metres, Y up, right-handed, the avatar faces +Z (its left is +X).
MediaPipe world landmarks (metres, hip-centred, x image-right, y down, z away from the camera)
map to it with (x, y, z) -> (x, -y, -z) (`MP_TO_GLTF`), a 180 degree turn about X. MediaPipe's
facial transform (canonical face -> virtual camera, +Y up, camera looking down -Z) is then already
in this frame: its rotation is the head's global rotation, the head's rest frame being the
canonical face frame.

Quaternions are xyzw (glTF and scipy order). A joint's local rotation is relative to its parent,
in the joint's rest frame; every rest rotation is identity (T-pose), so FK
(pipeline.body.kinematics) is
    G[j] = G[parent] * L[j],   p[j] = p[parent] + G[parent] (rest_local[j]),   p[hips] = root.

Inputs are directions or vectors (N, 3) (or (3,), broadcast) and weights (N,) in [0, 1]; outputs
are scipy `Rotation` stacks of N rotations, unit vectors (N, 3) or quaternion arrays (N, J, 4).
Limbs swing along the shortest arc; a limb swinging near 180 degrees from its rest direction (where
the shortest arc is ill-defined) is carried over from the previous frame instead of jumping, and
quaternions are kept in one hemisphere frame to frame (`_hemisphere`).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.core.quaternions import slerp_one, turn_toward

MP_TO_GLTF = np.array([1.0, -1.0, -1.0])  # MediaPipe world axes -> glTF axes (a half turn about X)

# `_swing`: angle from the rest direction (degrees) where the shortest arc starts to be replaced by
# the rotation carried over from the previous frame, and where it is fully replaced.
SWING_CARRY_START_DEG = 150
SWING_CARRY_FULL_DEG = 165
# A bone coming back into view catches up with its landmarks at most this fast (degrees per second
# of its local rotation; 12 a frame at 30 fps), so its arm does not sweep across in a frame or two:
# Sports2D's jumping jacks re-enter s2d_seated's crop 100+ degrees from the rest pose they eased to,
# and the ease-in by the seen weight alone turned a forearm by 31-46 degrees a frame (the whole-frame
# solve of the same take: at most 23). Two bones of a chain then move at most 24 a frame.
CATCH_UP_DEG_PER_S = 360.0
# `_twist`: the twist fades in as the target's component across the bone grows from this fraction
# of its length to this one (a target nearly along the bone gives no reliable roll).
TWIST_FADE_START = 0.25
TWIST_FADE_FULL = 0.5


def _unit(v: np.ndarray, fallback=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Unit vectors (..., 3) of v (..., 3); `fallback` where v is (nearly) zero."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), np.asarray(fallback, float))


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smoothstep from 0 (x <= lo) to 1 (x >= hi)."""
    t = np.clip((np.asarray(x, float) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _frame(x: np.ndarray, up: np.ndarray) -> Rotation:
    """Rotation whose columns are Y along `up`, X as near x as possible, Z = X x Y."""
    axis_y = _unit(up, (0.0, 1.0, 0.0))
    axis_z = _unit(np.cross(x, axis_y), (0.0, 0.0, 1.0))
    axis_x = np.cross(axis_y, axis_z)
    return Rotation.from_matrix(np.stack([axis_x, axis_y, axis_z], axis=-1))


def _frame_x_fwd(x: np.ndarray, fwd: np.ndarray) -> Rotation:
    """Rotation with X along x and Z as near `fwd` as possible."""
    axis_x = _unit(x, (1.0, 0.0, 0.0))
    axis_y = _unit(np.cross(fwd, axis_x), (0.0, 1.0, 0.0))
    axis_z = np.cross(axis_x, axis_y)
    return Rotation.from_matrix(np.stack([axis_x, axis_y, axis_z], axis=-1))


def _blend(r0: Rotation, r1: Rotation, w: np.ndarray) -> Rotation:
    """Per-frame slerp from r0 (w = 0) to r1 (w = 1)."""
    return r0 * Rotation.from_rotvec((r0.inv() * r1).as_rotvec() * np.asarray(w, float)[:, None])


def _identity(n: int) -> Rotation:
    """A stack of n identity rotations."""
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
    angle = np.arccos(np.clip(b @ a, -1.0, 1.0))
    carry = _ramp(angle, np.radians(SWING_CARRY_START_DEG), np.radians(SWING_CARRY_FULL_DEG))
    if not np.any(carry > 0):
        return direct
    q = direct.as_quat()
    for i in range(1, len(b)):
        if carry[i] > 0:
            carried = _arc(b[i - 1], b[i]) * Rotation.from_quat(q[i - 1])
            q[i] = _blend(Rotation.from_quat(q[i:i + 1]), carried, carry[i:i + 1]).as_quat()[0]
    return Rotation.from_quat(q)


def _twist(local: Rotation, parent_g: Rotation, a: np.ndarray, r_rest: np.ndarray,
           t_world: np.ndarray, w: np.ndarray) -> Rotation:
    """Add a twist about the bone axis a (joint rest frame) turning r_rest toward t_world.

    local, parent_g: the joint's local rotations and its parent's global ones (N).
    r_rest: (3,) a rest direction perpendicular-ish to a; t_world (N, 3) where it should point
    now. The twist angle is scaled by w (N,) and faded out when t is nearly along the bone.
    """
    a = _unit(np.asarray(a, float))
    t = (parent_g * local).inv().apply(t_world)
    t_p = t - (t @ a)[:, None] * a
    r_p = r_rest - (r_rest @ a) * a
    phi = np.arctan2(np.cross(r_p, t_p) @ a, t_p @ r_p)
    strength = np.linalg.norm(t_p, axis=-1) / np.maximum(np.linalg.norm(t, axis=-1), 1e-9)
    w_eff = np.nan_to_num(w * _ramp(strength, TWIST_FADE_START, TWIST_FADE_FULL))
    return local * Rotation.from_rotvec(np.outer(np.nan_to_num(phi) * w_eff, a))


def _hemisphere(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs so consecutive frames have a non-negative dot product. (N, J, 4)."""
    q = q.copy()
    for i in range(1, len(q)):
        d = np.einsum("ji,ji->j", q[i], q[i - 1])
        q[i, d < 0] *= -1
    return q


def _ease_unseen(view: Rotation, weight: np.ndarray, default: Rotation, clock_s: np.ndarray,
                 tau_s: float) -> Rotation:
    """N rotations of a bone that follows `view` where it is seen and eases to `default` where not.

    view, default: N rotations (the bone's rotation from the landmarks, its default pose); weight:
    (N,) in [0, 1], how far the bone is seen (smooth in time); clock_s: (N,) seconds (advancing only
    in frames with a body). Seen (weight at least one half): the view. Unseen: the previous frame's
    rotation eased toward the default with time constant tau_s (a first-order decay, no pop; the
    default before the bone is first seen), then blended toward the view by twice the weight, so a
    bone coming back into view eases in as its weight rises and arrives at the view where it counts
    as seen. Decaying from the previous frame's rotation (not from the last seen view) keeps a bone
    that fades out moving toward rest: holding the last seen view pulled a forearm leaving the crop
    back to a pose 3 degrees farther from rest in one frame (s2d_seated). From each unseen frame
    until it meets the view again the bone turns at most CATCH_UP_DEG_PER_S (`turn_toward`), except
    in the first frame with a body after frames without one (clock_s not advancing), which is
    taken as it is, as elsewhere in the solve.
    """
    seen = weight >= 0.5
    if seen.all():
        return view
    vq, dq = view.as_quat(), default.as_quat()
    out = vq.copy()
    blend = np.clip(2.0 * weight, 0.0, 1.0)
    dt = np.diff(clock_s, prepend=clock_s[0])
    limit = np.radians(CATCH_UP_DEG_PER_S) * dt
    catching = False
    for k in range(len(vq)):
        if seen[k] and not catching:
            continue
        if seen[k]:
            target = vq[k]
        else:
            base = dq[k] if k == 0 else slerp_one(dq[k], out[k - 1], np.exp(-dt[k] / tau_s))
            target = slerp_one(base, vq[k], blend[k])
            catching = k > 0
        if k == 0 or (k >= 2 and dt[k - 1] == 0 and dt[k] > 0):  # the start, or a body back after none
            out[k] = target  # (the pose was held meanwhile: a new one is no motion to limit)
            catching = not seen[k]
            continue
        out[k], met = turn_toward(out[k - 1], target, limit[k])
        catching = not (met and seen[k])
    return Rotation.from_quat(out)

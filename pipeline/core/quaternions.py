"""Unit quaternion maths, xyzw order (glTF's and scipy's): on numpy arrays batched over any leading
axes (products, inverses, logarithm and exponential as rotation vectors in radians, rotating
vectors), and on one quaternion at a time (a slerp and a turn by at most an angle).

Cheaper than scipy's `Rotation` on few quaternions at a time (forward kinematics joint by joint,
a per-frame loop in the body solve, a per-frame filter in the live stream), where building the
objects costs more than the maths.
"""
from __future__ import annotations

import math

import numpy as np

SMALL_ANGLE_RAD = 1e-9   # below this rotation angle exp/log use their first-order series


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of xyzw quaternions (..., 4) (b applied first, then a)."""
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of unit xyzw quaternions (..., 4)."""
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_log(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (axis * angle, radians, angle in [0, pi]) of unit xyzw quaternions."""
    q = np.where(q[..., 3:] < 0, -q, q)  # the short way round
    s = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., 3:])
    scale = np.where(s > SMALL_ANGLE_RAD, angle / np.maximum(s, SMALL_ANGLE_RAD), 2.0)
    return q[..., :3] * scale


def quat_exp(v: np.ndarray) -> np.ndarray:
    """Unit xyzw quaternions (..., 4) of rotation vectors v (..., 3) (radians)."""
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    scale = np.where(angle > SMALL_ANGLE_RAD, np.sin(half) / np.maximum(angle, SMALL_ANGLE_RAD), 0.5)
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def normalise_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4); a zero or non-finite row becomes identity."""
    q = np.asarray(q, np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    ok = np.isfinite(n) & (n > 1e-12)
    return np.where(ok, q / np.where(ok, n, 1.0), np.array([0.0, 0.0, 0.0, 1.0]))


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u x v of (..., 3) vectors (np.cross costs more than this on small arrays)."""
    ux, uy, uz = u[..., 0], u[..., 1], u[..., 2]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx], axis=-1)


def quat_apply(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectors (..., 3) v rotated by unit xyzw quaternions (..., 4) q (broadcast)."""
    u, w = q[..., :3], q[..., 3:]
    t = 2.0 * _cross(u, v)
    return v + w * t + _cross(u, t)


# One quaternion at a time, in plain floats: a per-frame loop pays numpy's call overhead (tens of
# microseconds a call) on every op, this a few microseconds.

def _unit1(q) -> tuple[float, float, float, float]:
    x, y, z, w = q.tolist() if isinstance(q, np.ndarray) else q
    n = math.sqrt(x * x + y * y + z * z + w * w)
    return (x / n, y / n, z / n, w / n) if n > 1e-12 else (0.0, 0.0, 0.0, 1.0)


def _mul1(a, b) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def _log1(q) -> tuple[float, float, float]:
    x, y, z, w = q if q[3] >= 0 else (-q[0], -q[1], -q[2], -q[3])
    s = math.sqrt(x * x + y * y + z * z)
    scale = 2.0 * math.atan2(s, w) / s if s > SMALL_ANGLE_RAD else 2.0
    return (x * scale, y * scale, z * scale)


def _exp1(v) -> tuple[float, float, float, float]:
    angle = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    scale = math.sin(0.5 * angle) / angle if angle > SMALL_ANGLE_RAD else 0.5
    return (v[0] * scale, v[1] * scale, v[2] * scale, math.cos(0.5 * angle))


def _step1(a, b) -> tuple[tuple, tuple[float, float, float]]:
    """(unit a, rotation vector of the short arc from a to b in a's frame)."""
    a = _unit1(a)
    return a, _log1(_mul1((-a[0], -a[1], -a[2], a[3]), _unit1(b)))


def slerp_one(a, b, t: float) -> np.ndarray:
    """xyzw quaternion (4,) t of the way from a (t = 0) to b (t = 1) along the short arc; a and b
    are single quaternions (4,), normalised first."""
    a, v = _step1(a, b)
    return np.array(_mul1(a, _exp1((v[0] * t, v[1] * t, v[2] * t))))


def turn_toward(a, b, max_rad: float) -> tuple[np.ndarray, bool]:
    """(xyzw quaternion (4,) turned from a toward b by at most max_rad radians along the short arc,
    whether it reached b (then b itself is returned)); a and b single quaternions (4,)."""
    a, v = _step1(a, b)
    angle = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if angle <= max_rad:
        return b, True
    f = max_rad / angle
    return np.array(_mul1(a, _exp1((v[0] * f, v[1] * f, v[2] * f)))), False

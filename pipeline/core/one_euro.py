"""Causal (live) smoothing filters: the One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for
vectors and for rotations, one frame in and one frame out, without looking ahead.

A One Euro filter is a first-order low-pass whose cut-off rises with the signal's speed: slow
motion (where jitter shows) is smoothed hard, fast motion follows with little lag. Per frame, with
the time step dt (s) taken from the frames' timestamps (dropped frames are fine):
    speed      d = low-pass(derivative of the input, cut-off `d_cutoff_hz`)
    cut-off    f = min_cutoff_hz + beta * |d|
    output     y = y_prev + alpha(f, dt) * (x - y_prev),  alpha(f, dt) = 1 / (1 + 1 / (2 pi f dt))

`OneEuroFilter`: arrays of any shape (e.g. (51,) blendshape weights), each element on its own
(the speed is per element, in units per second). `RotationOneEuro`: (J, 4) xyzw unit quaternions,
one per joint; the step toward the input is taken on the sphere (the output moves along the
shortest arc from the previous output toward the input: a slerp by alpha), the speed is the
input's angular speed (rad/s) and every output is a unit quaternion in the input's hemisphere
(sign-continuous frame to frame). `PoseSmoother` holds one of each for a stream of poses
(weights and joint rotations), as pipeline.live.vmc sends them. Settings are chosen by
measurement: benchmarks/bench_filters.py, results in benchmarks/results/filters.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.quaternions import normalise_quat, quat_conjugate, quat_exp, quat_log, quat_multiply

MIN_DT_S = 1e-4          # s: shortest time step (a repeated timestamp would divide by zero)
MAX_DT_S = 1.0           # s: a longer pause (the stream stopped) restarts the filter on the new frame


def smoothing_factor(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """alpha in (0, 1] of a first-order low-pass with cut-off `cutoff_hz` (Hz) over a step dt_s (s)."""
    tau_s = 1.0 / (2.0 * np.pi * np.maximum(cutoff_hz, 1e-9))
    return 1.0 / (1.0 + tau_s / dt_s)


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff_hz: cut-off when still (Hz; lower = smoother, more lag when slow);
    beta: how fast the cut-off rises with speed (per unit of the signal per second; higher = less
    lag when fast); d_cutoff_hz: cut-off of the speed estimate (Hz)."""

    min_cutoff_hz: float
    beta: float
    d_cutoff_hz: float = 1.0


class OneEuroFilter:
    """One Euro filter of an array signal (any fixed shape), element by element.

    `update(x, t_s)` takes the frame's values x (float, NaN not allowed) and its time in seconds
    and returns the filtered values (float64, x's shape). The first frame, and a frame more than
    MAX_DT_S after the previous one, passes unchanged (the filter restarts); a frame whose time does
    not increase is treated as MIN_DT_S later.
    """

    def __init__(self, params: OneEuroParams):
        self.params = params
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame passes unchanged."""
        self._x: np.ndarray | None = None    # previous input
        self._y: np.ndarray | None = None    # previous output
        self._dx: np.ndarray | None = None   # filtered speed (units/s)
        self._t: float | None = None

    def update(self, x, t_s: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._y is None or self._t is None or t_s - self._t > MAX_DT_S or self._y.shape != x.shape:
            self._x, self._y, self._dx, self._t = x.copy(), x.copy(), np.zeros_like(x), float(t_s)
            return x.copy()
        p = self.params
        dt = max(float(t_s) - self._t, MIN_DT_S)
        self._dx = self._dx + smoothing_factor(p.d_cutoff_hz, dt) * ((x - self._x) / dt - self._dx)
        alpha = smoothing_factor(p.min_cutoff_hz + p.beta * np.abs(self._dx), dt)
        self._y = self._y + alpha * (x - self._y)
        self._x, self._t = x.copy(), float(t_s)
        return self._y.copy()


class RotationOneEuro:
    """One Euro filter of J rotations per frame ((J, 4) xyzw unit quaternions, e.g. a skeleton's
    local joint rotations), each joint on its own.

    The speed is the input's angular speed (rad/s, the norm of the low-passed angular velocity
    between consecutive inputs),
    so `beta` is per rad/s; the output moves from the previous output toward the input by the
    fraction alpha of the rotation between them (a slerp), which keeps every output a unit
    quaternion. Outputs are signed like the input (the same hemisphere), so a sign-continuous input
    gives a sign-continuous output. Restarts like OneEuroFilter.
    """

    def __init__(self, params: OneEuroParams):
        self.params = params
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame passes unchanged."""
        self._q: np.ndarray | None = None    # previous input (J, 4)
        self._y: np.ndarray | None = None    # previous output (J, 4)
        self._w: np.ndarray | None = None    # filtered angular velocity (J, 3) rad/s (joint's frame)
        self._t: float | None = None

    def update(self, q, t_s: float) -> np.ndarray:
        q = normalise_quat(q)
        if self._y is None or self._t is None or t_s - self._t > MAX_DT_S or self._y.shape != q.shape:
            self._q, self._y, self._w, self._t = q.copy(), q.copy(), np.zeros(q.shape[:-1] + (3,)), float(t_s)
            return q.copy()
        p = self.params
        dt = max(float(t_s) - self._t, MIN_DT_S)
        # the velocity vector is filtered before its norm is taken, so that noise averages out
        velocity = quat_log(quat_multiply(quat_conjugate(self._q), q)) / dt
        self._w = self._w + smoothing_factor(p.d_cutoff_hz, dt) * (velocity - self._w)
        alpha = smoothing_factor(p.min_cutoff_hz + p.beta * np.linalg.norm(self._w, axis=-1), dt)
        step = quat_log(quat_multiply(quat_conjugate(self._y), q))  # previous output -> input
        y = normalise_quat(quat_multiply(self._y, quat_exp(alpha[..., None] * step)))
        y = np.where(np.sum(y * q, axis=-1, keepdims=True) < 0, -y, y)  # the input's hemisphere
        self._q, self._y, self._t = q.copy(), y, float(t_s)
        return y.copy()


class PoseSmoother:
    """The causal smoothing of a stream of poses: blendshape weights (K,) through a OneEuroFilter
    and joint rotations (J, 4) xyzw through a RotationOneEuro, each with its own settings.
    `update(weights, rotations, t_s)` returns both smoothed (float64; weights stay within the
    range of the inputs, rotations unit quaternions); `reset()` forgets the past."""

    def __init__(self, weights: OneEuroParams, rotations: OneEuroParams):
        self.weights = OneEuroFilter(weights)
        self.rotations = RotationOneEuro(rotations)

    def reset(self) -> None:
        self.weights.reset()
        self.rotations.reset()

    def update(self, weights, rotations, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        return self.weights.update(weights, t_s), self.rotations.update(rotations, t_s)

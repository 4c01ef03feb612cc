"""Zero-phase filters over the runs of tracked frames of a take, and holding a value over gaps.

Inputs: x (N, ...) float64 along time (axis 0), valid (N,) bool (the frames that hold data; each
run of consecutive valid frames is filtered on its own, so nothing leaks across a gap), the frame
rate `fps` (frames per second) and a window or time constant in seconds. Outputs: arrays shaped
like x; frames outside the runs are returned unchanged (or, for `_hold`, filled).

Smoothing of the body solve: world landmarks are filtered with a centred Savitzky-Golay filter
(cubic, 0.2 s window, `LANDMARK_WINDOW_S`; about 6-7 Hz cut-off at 24-60 fps) per run of tracked
frames. It is zero-phase, so it adds no lag; the face rotation gets the same filter on its
quaternions. Visibilities get a zero-phase first-order low-pass (0.1 s, forward and backward,
`VISIBILITY_TAU_S`), so a limb eases in and out of its default pose instead of popping.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter, lfilter_zi, savgol_filter

LANDMARK_WINDOW_S = 0.2          # Savitzky-Golay window of landmarks and the face rotation, seconds
LANDMARK_ORDER = 3               # ... and its polynomial order (cubic)
VISIBILITY_TAU_S = 0.1           # visibility low-pass, so limbs ease in and out of the default


def _run_bounds(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) frame indices of every run of valid frames."""
    bounds = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    return bounds[::2], bounds[1::2]


def _savgol_runs(x: np.ndarray, valid: np.ndarray, fps: float, window_s: float,
                 order: int) -> np.ndarray:
    """Centred Savitzky-Golay along axis 0, separately on every run of valid frames."""
    out = x.copy()
    win = int(round(window_s * fps)) | 1
    for s, e in zip(*_run_bounds(valid)):
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
    for s, e in zip(*_run_bounds(valid)):
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

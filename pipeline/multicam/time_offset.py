"""Time offset between two recordings of one take, from the motion itself.

As Pose2Sim's synchronisation does: each recording is reduced to one signal, the vertical image
velocity of the body landmarks (MediaPipe pose, image coordinates), and the offset is the lag
that maximises the normalised (Pearson) cross-correlation of the two signals.

Why vertical velocity: vertical motion looks alike from every camera standing around a person
(horizontal motion swaps sign and shrinks with the viewing direction), and velocity, unlike
position, does not depend on where each camera stands. Per frame, the signal is the
visibility-weighted mean over landmarks of dv/dt divided by the body's height in the image (so
near and far cameras agree), low-passed at 6 Hz (zero phase) as Pose2Sim does. Both signals are
resampled on a common grid at the higher frame rate; the correlation at each lag uses only the
samples both recordings have. A parabola through the peak gives a sub-frame offset.

Convention: an event at time t in the reference recording happens at t + offset_s in the other.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

from pipeline.core.tracks import Tracks
from pipeline.multicam.view_sampling import DEFAULT_FPS

CUTOFF_HZ = 6.0             # low-pass of the motion signal, Hz (Pose2Sim's)
FILTER_ORDER = 4            # Butterworth order of that low-pass
MIN_FILTER_RUN = 27         # samples: shorter runs of the signal are left unfiltered (sosfiltfilt's padding)
MIN_VISIBILITY = 0.4        # landmarks less visible than this do not move the signal
MIN_BODY_HEIGHT = 0.02      # image heights: a smaller body gives no signal
MIN_OVERLAP_S = 0.5         # seconds two signals must share at a lag for it to count...
MIN_OVERLAP_FRACTION = 0.5  # ... and this fraction of the shorter one...
MIN_OVERLAP_SAMPLES = 8     # ... and this many samples
MARGIN_WINDOW_S = 0.25      # seconds: lags further than this from the peak compete with it (the margin)
MAX_SUBFRAME_STEP = 0.5     # the parabola's peak moves the offset at most this many grid steps
BODY_LANDMARKS = np.arange(11, 33)  # shoulders down: the face points add little but noise


@dataclass(frozen=True)
class TimeOffset:
    """offset_s:   event at time t in the reference is at t + offset_s in the other recording.
    confidence: Pearson correlation of the two signals at that offset, in [-1, 1].
    margin:     confidence minus the best correlation farther than 0.25 s from the peak: near 0
                when another offset fits about as well (repetitive or too little motion).
    overlap_s:  length of the stretch the two signals share at that offset.
    lags_s, correlation: the whole correlation curve (for plots and diagnostics)."""

    offset_s: float
    confidence: float
    margin: float
    overlap_s: float
    lags_s: np.ndarray
    correlation: np.ndarray

    def reliable(self, min_confidence: float = 0.5, min_margin: float = 0.05) -> bool:
        """The offset is finite, its correlation at least min_confidence and its margin min_margin."""
        return bool(np.isfinite(self.offset_s) and self.confidence >= min_confidence
                    and self.margin >= min_margin)


def motion_signal(tracks: Tracks) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, signal): per frame, mean vertical velocity of the body landmarks in body heights per
    second (image down positive), NaN where the body is not tracked in the frame or its neighbours."""
    t = np.asarray(tracks.t_s, np.float64)
    n = len(t)
    sig = np.full(n, np.nan)
    if n < 3:
        return t, sig
    y = tracks.pose_image[:, BODY_LANDMARKS, 1].astype(np.float64)
    vis = np.nan_to_num(tracks.pose_visibility[:, BODY_LANDMARKS].astype(np.float64))
    valid = np.asarray(tracks.pose_valid, bool) & np.isfinite(y).all(1)
    # body height in the image: extent of the confidently visible landmarks, median over the take
    all_y = np.where(np.nan_to_num(tracks.pose_visibility) > MIN_VISIBILITY, tracks.pose_image[..., 1], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
        height = np.nanmedian(np.nanmax(all_y, 1) - np.nanmin(all_y, 1))
    if not np.isfinite(height) or height < MIN_BODY_HEIGHT:
        return t, sig
    # central differences over the frame's neighbours
    dt = t[2:] - t[:-2]
    vel = (y[2:] - y[:-2]) / dt[:, None]
    w = np.minimum(vis[2:], vis[:-2])
    w = np.where(w >= MIN_VISIBILITY, w, 0.0)
    ok = valid[2:] & valid[:-2] & (w.sum(1) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (np.nan_to_num(vel) * w).sum(1) / w.sum(1) / height
    sig[1:-1] = np.where(ok, s, np.nan)
    return t, sig


def _resample(t: np.ndarray, s: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear resampling of s(t) at grid; NaN where either neighbour is NaN or outside t."""
    out = np.full(len(grid), np.nan)
    ok = np.isfinite(s)
    if ok.sum() < 2:
        return out
    i = np.clip(np.searchsorted(t, grid) - 1, 0, len(t) - 2)
    a = (grid - t[i]) / np.maximum(t[i + 1] - t[i], 1e-12)
    inside = (grid >= t[0]) & (grid <= t[-1]) & ok[i] & ok[i + 1]
    out[inside] = ((1 - a) * s[i] + a * s[i + 1])[inside]
    return out


def _lowpass(s: np.ndarray, fs: float) -> np.ndarray:
    """Zero-phase 4th-order Butterworth at CUTOFF_HZ over each run of finite samples."""
    out = s.copy()
    if CUTOFF_HZ >= fs / 2:
        return out
    sos = butter(FILTER_ORDER, CUTOFF_HZ / (fs / 2), output="sos")
    ok = np.isfinite(s)
    edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a > MIN_FILTER_RUN:  # sosfiltfilt's default padding needs 3 * (2 * sections + 1) samples
            out[a:b] = sosfiltfilt(sos, s[a:b])
    return out


def _correlation(a: np.ndarray, b: np.ndarray, lags: np.ndarray, base_i: int, min_n: int,
                 dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(correlation (L,), overlap_s (L,)) of signals a and b on grids dt seconds apart, b's starting
    base_i steps after a's, at each lag (L,) in steps; NaN / 0 where fewer than min_n samples pair."""
    corr = np.full(len(lags), np.nan)
    overlap = np.zeros(len(lags))
    for k, lag in enumerate(lags):
        # a[i] pairs with b[j] where time_b = time_a + lag*dt, i.e. j = i + lag - base_i
        shift = lag - base_i
        i0, i1 = max(0, -shift), min(len(a), len(b) - shift)
        if i1 - i0 < min_n:
            continue
        x, y = a[i0:i1], b[i0 + shift:i1 + shift]
        m = np.isfinite(x) & np.isfinite(y)
        if m.sum() < min_n:
            continue
        x, y = x[m] - x[m].mean(), y[m] - y[m].mean()
        den = np.sqrt((x * x).sum() * (y * y).sum())
        if den > 0:
            corr[k] = (x * y).sum() / den
            overlap[k] = m.sum() * dt
    return corr, overlap


def _subframe_shift(corr: np.ndarray, k: int) -> float | None:
    """Where the parabola through corr[k - 1 .. k + 1] peaks, in steps from k (at most
    MAX_SUBFRAME_STEP); None when a neighbour is missing or it does not curve down."""
    if not (0 < k < len(corr) - 1 and np.isfinite(corr[k - 1]) and np.isfinite(corr[k + 1])):
        return None
    c0, c1, c2 = corr[k - 1], corr[k], corr[k + 1]
    den = c0 - 2 * c1 + c2
    if not den < 0:
        return None
    return float(np.clip(0.5 * (c0 - c2) / den, -MAX_SUBFRAME_STEP, MAX_SUBFRAME_STEP))


def estimate_offset(reference: Tracks, other: Tracks, max_offset_s: float = 2.0,
                    subframe: bool = True) -> TimeOffset:
    """Offset of `other` relative to `reference` (see the module docstring)."""
    t_ref, signal_ref = motion_signal(reference)
    t_other, signal_other = motion_signal(other)
    fps = max(float(reference.fps or DEFAULT_FPS), float(other.fps or DEFAULT_FPS))
    dt = 1.0 / fps
    # Both on one grid covering both recordings (times of each in its own clock).
    grid_ref = np.arange(t_ref[0], t_ref[-1] + dt / 2, dt) if len(t_ref) else np.zeros(0)
    grid_other = np.arange(t_other[0], t_other[-1] + dt / 2, dt) if len(t_other) else np.zeros(0)
    a = _lowpass(_resample(t_ref, signal_ref, grid_ref), fps)
    b = _lowpass(_resample(t_other, signal_other, grid_other), fps)
    max_lag = int(round(max_offset_s * fps))
    lags = np.arange(-max_lag, max_lag + 1)
    # Short overlaps correlate well by chance: demand most of the shorter recording.
    shorter = min(len(a), len(b))
    min_n = max(int(MIN_OVERLAP_S * fps), int(MIN_OVERLAP_FRACTION * shorter), MIN_OVERLAP_SAMPLES)
    # grid b starts this many steps after a
    base = (grid_other[0] - grid_ref[0]) / dt if len(grid_ref) and len(grid_other) else 0.0
    base_i = int(round(base))
    corr, overlap = _correlation(a, b, lags, base_i, min_n, dt)
    lag_s = lags * dt + (base - base_i) * dt
    if not np.isfinite(corr).any():
        return TimeOffset(float("nan"), float("nan"), 0.0, 0.0, lag_s, corr)
    k = int(np.nanargmax(corr))
    peak = float(corr[k])
    off = float(lag_s[k])
    shift = _subframe_shift(corr, k) if subframe else None
    if shift is not None:
        off += shift * dt
    far = np.abs(lag_s - lag_s[k]) > MARGIN_WINDOW_S
    margin = peak - float(np.nanmax(corr[far])) if np.isfinite(corr[far]).any() else peak
    return TimeOffset(off, peak, margin, float(overlap[k]), lag_s, corr)

"""Points seen by several calibrated cameras -> 3D points, with outlier cameras rejected.

`triangulate` works on M independent points at once (frames x landmarks flattened), numpy only:
  1. observations are undistorted to normalised image coordinates (capture.calibration.Camera);
  2. confidence-weighted DLT: each camera adds two rows w * (x P3 - P1), w * (y P3 - P2) with P
     its [R | t]; the point is the eigenvector of the smallest eigenvalue of the 4x4 A^T A
     (batched `numpy.linalg.eigh`);
  3. reprojection error per camera, in pixels (normalised error times the focal length);
  4. while a point's worst used camera is off by more than `max_error_px` and more than
     `min_views` cameras remain, the camera whose removal leaves the smallest worst error is
     dropped and the point solved again (leave-one-out: a wrong detection drags the DLT toward
     itself, so the worst-reprojecting camera is not always the wrong one). A point behind a
     camera it was seen by counts as infinitely wrong for that camera.
Observations with weight below `min_weight` are not used. Points seen by fewer than `min_views`
usable cameras are NaN, and so are points still off by more than `max_error_px` with only
`min_views` cameras left (two cameras that disagree cannot tell which one is wrong).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.multicam.calibration import Camera

DEFAULT_MAX_ERROR_PX = 20.0
DEFAULT_MIN_WEIGHT = 0.3
CHUNK_POINTS = 200_000


@dataclass(eq=False)
class Triangulated:
    """M triangulated points.

    points_m:     (M, 3) float64 world points, metres (calibration frame); NaN where not solved.
    error_px:     (M,) float64 RMS reprojection error over the cameras used, pixels (with the
                  cameras' distortion); NaN where not solved.
    camera_error_px: (C, M) float64 reprojection error of every camera's observation of the
                  solved point, used or rejected; NaN where a camera has no usable observation.
    used:         (C, M) bool, the camera's observation went into the point.
    """

    points_m: np.ndarray
    error_px: np.ndarray
    camera_error_px: np.ndarray
    used: np.ndarray

    @property
    def n_views(self) -> np.ndarray:
        """(M,) number of cameras used per point (0 where not solved)."""
        return self.used.sum(0)

    @property
    def rejected(self) -> np.ndarray:
        """(C, M) bool: observed with enough weight but dropped as an outlier."""
        return np.isfinite(self.camera_error_px) & ~self.used & np.isfinite(self.points_m[:, 0])


def dlt(Rt: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted DLT. Rt: (C, 3, 4) [R | t] per camera; xy: (C, M, 2) normalised coordinates;
    w: (C, M) weights (0 = unused; NaN coordinates must have weight 0). Returns (M, 3); NaN where
    the solution is at infinity."""
    xy = np.nan_to_num(xy)
    # rows (C, M, 2, 4): x P3 - P1, y P3 - P2
    rows = xy[..., None] * Rt[:, None, 2:3, :] - Rt[:, None, :2, :]
    rows = rows * w[..., None, None]
    A = rows.transpose(1, 0, 2, 3).reshape(xy.shape[1], -1, 4)
    AtA = np.einsum("mki,mkj->mij", A, A)
    _, vec = np.linalg.eigh(AtA)
    X = vec[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        P = X[:, :3] / X[:, 3:4]
    P[~np.isfinite(P).all(1)] = np.nan
    return P


def _errors(Rt: np.ndarray, f: np.ndarray, xy: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(C, M) reprojection error in pixels (normalised error times focal length); inf behind the
    camera."""
    cam = np.einsum("cij,mj->cmi", Rt[:, :, :3], X) + Rt[:, None, :, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = cam[..., :2] / z[..., None]
        e = np.linalg.norm(proj - xy, axis=-1) * f[:, None]
    e[z <= 1e-6] = np.inf
    return e


def triangulate(cameras: list[Camera], uv_px: np.ndarray, weight: np.ndarray | None = None,
                max_error_px: float | None = DEFAULT_MAX_ERROR_PX, min_views: int = 2,
                min_weight: float = DEFAULT_MIN_WEIGHT, exact_errors: bool = True,
                keep_unresolved: bool = False) -> Triangulated:
    """Triangulate M points seen by C cameras.

    uv_px:  (C, M, 2) pixel observations (NaN = not seen).
    weight: (C, M) confidences in [0, 1] (e.g. MediaPipe visibility); None = all 1.
    max_error_px: reprojection error above which the worst camera is dropped (None: never).
    exact_errors: report errors through the cameras' distortion models (else the undistorted
                  approximation used while rejecting, which is faster).
    keep_unresolved: keep the points still off by more than max_error_px with min_views cameras
                  (default: NaN).
    """
    C = len(cameras)
    uv_px = np.asarray(uv_px, np.float64)
    if uv_px.ndim != 3 or uv_px.shape[0] != C or uv_px.shape[2] != 2:
        raise ValueError(f"uv_px must be (C={C}, M, 2), got {uv_px.shape}")
    M = uv_px.shape[1]
    if M > CHUNK_POINTS:  # bounded memory: the DLT's (M, 2C, 4) rows for a long take's face are GBs
        parts = [triangulate(cameras, uv_px[:, a:a + CHUNK_POINTS],
                             None if weight is None else np.asarray(weight)[:, a:a + CHUNK_POINTS],
                             max_error_px, min_views, min_weight, exact_errors, keep_unresolved)
                 for a in range(0, M, CHUNK_POINTS)]
        return Triangulated(np.concatenate([p.points_m for p in parts]),
                            np.concatenate([p.error_px for p in parts]),
                            np.concatenate([p.camera_error_px for p in parts], axis=1),
                            np.concatenate([p.used for p in parts], axis=1))
    w = np.ones((C, M)) if weight is None else np.nan_to_num(np.asarray(weight, np.float64))
    xy = np.stack([cam.undistort(uv_px[c]) for c, cam in enumerate(cameras)])
    seen = np.isfinite(xy).all(-1) & (w >= min_weight)
    w = np.where(seen, w, 0.0)
    Rt = np.stack([cam.Rt for cam in cameras])
    f = np.array([cam.focal_px() for cam in cameras])

    used = seen.copy()
    X = np.full((M, 3), np.nan)
    solvable = used.sum(0) >= min_views
    if solvable.any():
        X[solvable] = dlt(Rt, xy[:, solvable], w[:, solvable])
    err = np.where(seen, _errors(Rt, f, xy, np.nan_to_num(X)), np.nan)
    if max_error_px is not None:
        for _ in range(max(C - min_views, 0)):
            worst = np.where(used, np.nan_to_num(err, nan=np.inf), -1.0).max(0)
            todo = np.flatnonzero(solvable & (worst > max_error_px) & (used.sum(0) > min_views))
            if len(todo) == 0:
                break
            # Leave-one-out over the cameras still used: keep the subset whose worst error is least.
            best_err = np.full(len(todo), np.inf)
            best_cam = np.full(len(todo), -1)
            best_X = np.full((len(todo), 3), np.nan)
            for c in range(C):
                cand = used[c, todo]
                if not cand.any():
                    continue
                idx = todo[cand]
                u = used[:, idx].copy()
                u[c] = False
                Xc = dlt(Rt, xy[:, idx], np.where(u, w[:, idx], 0.0))
                ec = _errors(Rt, f, xy[:, idx], np.nan_to_num(Xc))
                ec = np.where(u, np.nan_to_num(ec, nan=np.inf), -1.0).max(0)
                ec[~np.isfinite(Xc).all(1)] = np.inf
                k = np.flatnonzero(cand)
                better = ec < best_err[k]
                best_err[k[better]] = ec[better]
                best_cam[k[better]] = c
                best_X[k[better]] = Xc[better]
            ok = best_cam >= 0
            used[best_cam[ok], todo[ok]] = False
            X[todo[ok]] = best_X[ok]
            err[:, todo[ok]] = np.where(seen[:, todo[ok]],
                                        _errors(Rt, f, xy[:, todo[ok]], np.nan_to_num(best_X[ok])), np.nan)
    bad = ~np.isfinite(X).all(1) | (used.sum(0) < min_views)
    bad |= (np.where(used, err, 0.0) == np.inf).any(0)  # still behind a camera it uses
    if max_error_px is not None and not keep_unresolved:
        bad |= np.where(used, np.nan_to_num(err, nan=0.0), 0.0).max(0) > max_error_px
    X[bad] = np.nan
    used[:, bad] = False
    if exact_errors:
        err = np.full((C, M), np.nan)
        for c, cam in enumerate(cameras):
            m = seen[c] & ~bad
            if m.any():
                err[c, m] = np.linalg.norm(cam.project(X[m]) - uv_px[c, m], axis=-1)
    else:
        err = np.where(seen & ~bad[None], err, np.nan)
    with np.errstate(invalid="ignore"):
        rms = np.sqrt(np.where(used, err ** 2, 0.0).sum(0) / np.maximum(used.sum(0), 1))
    rms[bad] = np.nan
    return Triangulated(X, rms, err, used)


def triangulate_naive(cameras: list[Camera], uv_px: np.ndarray) -> np.ndarray:
    """Unweighted DLT from every camera that sees the point, no rejection: the baseline the
    benchmark compares against. Returns (M, 3)."""
    xy = np.stack([cam.undistort(uv_px[c]) for c, cam in enumerate(cameras)])
    seen = np.isfinite(xy).all(-1)
    X = np.full((xy.shape[1], 3), np.nan)
    ok = seen.sum(0) >= 2
    X[ok] = dlt(np.stack([c.Rt for c in cameras]), xy[:, ok], seen[:, ok].astype(float))
    return X

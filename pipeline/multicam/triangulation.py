"""Points seen by several calibrated cameras -> 3D points, with outlier cameras rejected.

`triangulate` works on M independent points at once (frames x landmarks flattened), numpy only:
  1. observations are undistorted to normalised image coordinates (pipeline.multicam.calibration.Camera);
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

from pipeline.multicam.calibration import MIN_DEPTH_M, Camera

DEFAULT_MAX_ERROR_PX = 20.0
DEFAULT_MIN_WEIGHT = 0.3
CHUNK_POINTS = 200_000        # points solved at once: bounds the DLT's (M, 2C, 4) rows in memory


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


def _errors(Rt: np.ndarray, focal_px: np.ndarray, xy: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(C, M) reprojection error in pixels (normalised error times focal length) of points (M, 3)
    against normalised observations xy (C, M, 2); inf behind the camera."""
    cam = np.einsum("cij,mj->cmi", Rt[:, :, :3], points) + Rt[:, None, :, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = cam[..., :2] / z[..., None]
        e = np.linalg.norm(proj - xy, axis=-1) * focal_px[:, None]
    e[z <= MIN_DEPTH_M] = np.inf
    return e


def _worst_used_error(used: np.ndarray, errors_px: np.ndarray) -> np.ndarray:
    """(M,) the largest error (C, M) among the cameras used (C, M) per point (NaN counts as inf)."""
    return np.where(used, np.nan_to_num(errors_px, nan=np.inf), -1.0).max(0)


def _leave_one_out(Rt: np.ndarray, focal_px: np.ndarray, xy: np.ndarray, weight: np.ndarray,
                   used: np.ndarray, todo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the points `todo` (K,) indices: which used camera to drop so that the others' worst
    reprojection error is least, and the point they give. Returns (camera (K,), -1 where none helps;
    points (K, 3) metres)."""
    n_cams = len(Rt)
    best_err = np.full(len(todo), np.inf)
    best_cam = np.full(len(todo), -1)
    best_points = np.full((len(todo), 3), np.nan)
    for c in range(n_cams):
        cand = used[c, todo]
        if not cand.any():
            continue
        idx = todo[cand]
        others = used[:, idx].copy()
        others[c] = False
        points = dlt(Rt, xy[:, idx], np.where(others, weight[:, idx], 0.0))
        worst = _worst_used_error(others, _errors(Rt, focal_px, xy[:, idx], np.nan_to_num(points)))
        worst[~np.isfinite(points).all(1)] = np.inf
        k = np.flatnonzero(cand)
        better = worst < best_err[k]
        best_err[k[better]] = worst[better]
        best_cam[k[better]] = c
        best_points[k[better]] = points[better]
    return best_cam, best_points


def _drop_outlier_cameras(Rt, focal_px, xy, weight, seen, used, points, errors_px, solvable,
                          max_error_px: float, min_views: int) -> None:
    """While a point's worst used camera is off by more than max_error_px and more than min_views
    cameras remain, drop the camera whose removal leaves the smallest worst error and solve again
    (leave-one-out: a wrong detection drags the DLT toward itself, so the worst-reprojecting camera
    is not always the wrong one). used (C, M), points (M, 3) and errors_px (C, M) change in place."""
    n_cams = len(Rt)
    for _ in range(max(n_cams - min_views, 0)):
        worst = _worst_used_error(used, errors_px)
        todo = np.flatnonzero(solvable & (worst > max_error_px) & (used.sum(0) > min_views))
        if len(todo) == 0:
            break
        best_cam, best_points = _leave_one_out(Rt, focal_px, xy, weight, used, todo)
        ok = best_cam >= 0
        used[best_cam[ok], todo[ok]] = False
        points[todo[ok]] = best_points[ok]
        errors_px[:, todo[ok]] = np.where(seen[:, todo[ok]],
                                          _errors(Rt, focal_px, xy[:, todo[ok]], np.nan_to_num(best_points[ok])),
                                          np.nan)


def _in_chunks(cameras: list[Camera], uv_px: np.ndarray, weight: np.ndarray | None, *args) -> Triangulated:
    """`triangulate` over CHUNK_POINTS points at a time, the results concatenated."""
    n_points = uv_px.shape[1]
    parts = [triangulate(cameras, uv_px[:, a:a + CHUNK_POINTS],
                         None if weight is None else np.asarray(weight)[:, a:a + CHUNK_POINTS], *args)
             for a in range(0, n_points, CHUNK_POINTS)]
    return Triangulated(np.concatenate([p.points_m for p in parts]),
                        np.concatenate([p.error_px for p in parts]),
                        np.concatenate([p.camera_error_px for p in parts], axis=1),
                        np.concatenate([p.used for p in parts], axis=1))


def _pixel_errors(cameras: list[Camera], uv_px: np.ndarray, points: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(C, M) distance in pixels between each observation uv_px (C, M, 2) and the point (M, 3)
    projected through its camera's distortion model, where observed (C, M); NaN elsewhere."""
    errors_px = np.full(observed.shape, np.nan)
    for c, cam in enumerate(cameras):
        m = observed[c]
        if m.any():
            errors_px[c, m] = np.linalg.norm(cam.project(points[m]) - uv_px[c, m], axis=-1)
    return errors_px


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
    n_cams = len(cameras)
    uv_px = np.asarray(uv_px, np.float64)
    if uv_px.ndim != 3 or uv_px.shape[0] != n_cams or uv_px.shape[2] != 2:
        raise ValueError(f"uv_px must be (C={n_cams}, M, 2), got {uv_px.shape}")
    n_points = uv_px.shape[1]
    if n_points > CHUNK_POINTS:  # bounded memory: the DLT's (M, 2C, 4) rows for a long take's face are GBs
        return _in_chunks(cameras, uv_px, weight, max_error_px, min_views, min_weight, exact_errors,
                          keep_unresolved)
    w = np.ones((n_cams, n_points)) if weight is None else np.nan_to_num(np.asarray(weight, np.float64))
    xy = np.stack([cam.undistort(uv_px[c]) for c, cam in enumerate(cameras)])
    seen = np.isfinite(xy).all(-1) & (w >= min_weight)
    w = np.where(seen, w, 0.0)
    Rt = np.stack([cam.Rt for cam in cameras])
    focal_px = np.array([cam.focal_px() for cam in cameras])

    used = seen.copy()
    points = np.full((n_points, 3), np.nan)
    solvable = used.sum(0) >= min_views
    if solvable.any():
        points[solvable] = dlt(Rt, xy[:, solvable], w[:, solvable])
    errors_px = np.where(seen, _errors(Rt, focal_px, xy, np.nan_to_num(points)), np.nan)
    if max_error_px is not None:
        _drop_outlier_cameras(Rt, focal_px, xy, w, seen, used, points, errors_px, solvable, max_error_px,
                              min_views)
    bad = ~np.isfinite(points).all(1) | (used.sum(0) < min_views)
    bad |= (np.where(used, errors_px, 0.0) == np.inf).any(0)  # still behind a camera it uses
    if max_error_px is not None and not keep_unresolved:
        bad |= np.where(used, np.nan_to_num(errors_px, nan=0.0), 0.0).max(0) > max_error_px
    points[bad] = np.nan
    used[:, bad] = False
    if exact_errors:
        errors_px = _pixel_errors(cameras, uv_px, points, seen & ~bad)
    else:
        errors_px = np.where(seen & ~bad[None], errors_px, np.nan)
    with np.errstate(invalid="ignore"):
        rms = np.sqrt(np.where(used, errors_px ** 2, 0.0).sum(0) / np.maximum(used.sum(0), 1))
    rms[bad] = np.nan
    return Triangulated(points, rms, errors_px, used)


def triangulate_naive(cameras: list[Camera], uv_px: np.ndarray) -> np.ndarray:
    """Unweighted DLT from every camera that sees the point, no rejection: the baseline the
    benchmark compares against. Returns (M, 3)."""
    xy = np.stack([cam.undistort(uv_px[c]) for c, cam in enumerate(cameras)])
    seen = np.isfinite(xy).all(-1)
    X = np.full((xy.shape[1], 3), np.nan)
    ok = seen.sum(0) >= 2
    X[ok] = dlt(np.stack([c.Rt for c in cameras]), xy[:, ok], seen[:, ok].astype(float))
    return X

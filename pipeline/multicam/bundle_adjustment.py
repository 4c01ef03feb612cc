"""Bundle adjustment of a camera rig on board corners (a step of pipeline.multicam.calibration_solver).

In:  the cameras (intrinsics; camera 0 is the gauge, held at the world's origin), the board's
     corner observations (`Observations`: camera, frame, corner id, pixel) and a starting point:
     every other camera's pose (world -> camera) and the board's pose (board -> world) in every
     frame, as rotation vectors and translations in metres.
Out: a `BundleSolution`: the refined poses (and intrinsics when asked), every observation's
     reprojection error in pixels and which ones were kept.

scipy.optimize.least_squares (trust region, Huber loss, sparse Jacobian) moves the cameras' poses
and the board's poses so every corner of every view reprojects as well as possible; optionally the
intrinsics too (fx fy cx cy k1 k2 p1 p2; k3 stays). Observations off by more than OUTLIER_FACTOR
times the median and OUTLIER_MIN_PX after a first solve are dropped and it is solved again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation

from pipeline.multicam.calibration import Camera
from pipeline.multicam.calibration_board import BoardSpec

OUTLIER_FACTOR, OUTLIER_MIN_PX = 5.0, 3.0  # corners further off than both (x the median, pixels) are dropped
SOLVE_ROUNDS = 2             # a first solve, then one without its outliers
HUBER_SCALE_PX = 1.0         # residuals beyond this many pixels count linearly, not squared
MAX_EVALUATIONS = 200        # residual evaluations per solve
TOLERANCE = 1e-10            # relative change of the parameters and of the cost that ends a solve
POSE_PARAMS = 6              # rotation vector (3), translation in metres (3)
INTRINSIC_PARAMS = 8         # fx fy cx cy (pixels) k1 k2 p1 p2
DISTORTION_PARAMS = 5        # k1 k2 p1 p2 k3, OpenCV's order


def project_points(K: np.ndarray, dist: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n, 2) pixels: vectorised pinhole + Brown-Conrady (k1 k2 p1 p2 k3) projection, one camera per
    point, given per point: K (n, 4) [fx fy cx cy], dist (n, 5), R (n, 3, 3), t (n, 3), X (n, 3)."""
    Xc = np.einsum("nij,nj->ni", R, X) + t
    x = Xc[:, 0] / Xc[:, 2]
    y = Xc[:, 1] / Xc[:, 2]
    r2 = x * x + y * y
    k1, k2, p1, p2, k3 = dist.T
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([K[:, 0] * xd + K[:, 2], K[:, 1] * yd + K[:, 3]], axis=1)


def rotvecs_to_mats(r: np.ndarray) -> np.ndarray:
    """(n, 3) rotation vectors -> (n, 3, 3) matrices."""
    return Rotation.from_rotvec(r).as_matrix()


@dataclass(eq=False)
class Observations:
    """n board corners seen: camera (n,) int, frame (n,) int (index among the adjusted frames),
    corner (n,) int (index in BoardSpec.object_points()), uv (n, 2) float64 pixels."""

    camera: np.ndarray
    frame: np.ndarray
    corner: np.ndarray
    uv: np.ndarray

    def __getitem__(self, keep: np.ndarray) -> "Observations":
        return Observations(self.camera[keep], self.frame[keep], self.corner[keep], self.uv[keep])


class BundleProblem:
    """Parameters: per camera 6 (rotvec, t; camera 0 fixed), per frame 6 (board -> world), and
    optionally per camera 8 intrinsics (fx fy cx cy k1 k2 p1 p2)."""

    def __init__(self, board: BoardSpec, cams: list[Camera], obs: Observations, n_frames: int,
                 refine_intrinsics: bool):
        self.C = len(cams)
        self.F = n_frames
        self.obj = board.object_points()
        self.cam, self.frame, self.pid, self.uv = obs.camera, obs.frame, obs.corner, obs.uv
        self.refine = refine_intrinsics
        self.K0 = np.array([[c.K[0, 0], c.K[1, 1], c.K[0, 2], c.K[1, 2]] for c in cams])
        d = np.zeros((self.C, DISTORTION_PARAMS))
        for i, c in enumerate(cams):
            d[i, :min(DISTORTION_PARAMS, len(c.dist))] = c.dist[:DISTORTION_PARAMS]
        self.d0 = d
        self.n_ext = POSE_PARAMS * (self.C - 1)
        self.n_frame = POSE_PARAMS * self.F
        self.n_int = INTRINSIC_PARAMS * self.C if refine_intrinsics else 0

    def unpack(self, p):
        """(camera poses (C, 6), frame poses (F, 6), K (C, 4) [fx fy cx cy], dist (C, 5))."""
        ext = np.zeros((self.C, POSE_PARAMS))
        ext[1:] = p[:self.n_ext].reshape(-1, POSE_PARAMS)
        fr = p[self.n_ext:self.n_ext + self.n_frame].reshape(-1, POSE_PARAMS)
        K, d = self.K0.copy(), self.d0.copy()
        if self.refine:
            ii = p[self.n_ext + self.n_frame:].reshape(-1, INTRINSIC_PARAMS)
            K = ii[:, :4]
            d[:, :4] = ii[:, 4:]
        return ext, fr, K, d

    def residuals(self, p):
        """(2n,) reprojection residuals in pixels, u and v of each observation."""
        ext, fr, K, d = self.unpack(p)
        Rc = rotvecs_to_mats(ext[:, :3])
        Rf = rotvecs_to_mats(fr[:, :3])
        Xw = np.einsum("nij,nj->ni", Rf[self.frame], self.obj[self.pid]) + fr[self.frame, 3:]
        uv = project_points(K[self.cam], d[self.cam], Rc[self.cam], ext[self.cam, 3:], Xw)
        return (uv - self.uv).ravel()

    def sparsity(self):
        """Which parameters each residual depends on: its camera's pose, its frame's board pose
        (and its camera's intrinsics)."""
        n = len(self.cam)
        pose = np.arange(POSE_PARAMS)
        cols = [self.n_ext + POSE_PARAMS * self.frame[:, None] + pose]
        ext = np.where(self.cam[:, None] > 0, POSE_PARAMS * (self.cam[:, None] - 1) + pose, -1)
        cols.append(ext)
        if self.refine:
            cols.append(self.n_ext + self.n_frame + INTRINSIC_PARAMS * self.cam[:, None]
                        + np.arange(INTRINSIC_PARAMS))
        cols = np.concatenate(cols, axis=1)                      # (n, k)
        rows = np.repeat(np.arange(n), cols.shape[1]).reshape(n, -1)
        ok = cols >= 0
        r = np.concatenate([2 * rows[ok], 2 * rows[ok] + 1])
        c = np.concatenate([cols[ok], cols[ok]])
        m = self.n_ext + self.n_frame + self.n_int
        return coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(2 * n, m)).tocsr()


@dataclass(eq=False)
class BundleSolution:
    """camera_poses (C, 6) world -> camera (rotvec, t metres; camera 0 zero), frame_poses (F, 6)
    board -> world, K (C, 4) [fx fy cx cy] and dist (C, 5) (the given ones unless refined);
    error_px (n,) every observation's reprojection error, pixels; kept (n,) bool, the observations
    of the last solve; threshold_px the outlier threshold of the last round."""

    camera_poses: np.ndarray
    frame_poses: np.ndarray
    K: np.ndarray
    dist: np.ndarray
    error_px: np.ndarray
    kept: np.ndarray
    threshold_px: float


def bundle_adjust(board: BoardSpec, cams: list[Camera], obs: Observations, n_frames: int, start: np.ndarray,
                  refine_intrinsics: bool, say: Callable[[str], None]) -> BundleSolution:
    """Solve the rig (see the module docstring) from `start`: the cameras 1..C-1's poses then the
    frames' poses, 6 numbers each (rotvec, t). say: progress messages."""
    n_cams = len(cams)
    p0 = start
    keep = np.ones(len(obs.camera), bool)
    for rnd in range(SOLVE_ROUNDS):
        prob = BundleProblem(board, cams, obs[keep], n_frames, refine_intrinsics)
        if refine_intrinsics and rnd == 0:
            p0 = np.r_[p0, np.c_[prob.K0, prob.d0[:, :4]].ravel()]
        say(f"bundle adjustment ({keep.sum()} corners, {n_frames} frames, {n_cams} cameras)")
        sol = least_squares(prob.residuals, p0, jac_sparsity=prob.sparsity(), method="trf",
                            loss="huber", f_scale=HUBER_SCALE_PX, x_scale="jac", max_nfev=MAX_EVALUATIONS,
                            xtol=TOLERANCE, ftol=TOLERANCE)
        p0 = sol.x
        full = BundleProblem(board, cams, obs, n_frames, refine_intrinsics)
        error = np.linalg.norm(full.residuals(sol.x).reshape(-1, 2), axis=1)
        threshold = max(OUTLIER_FACTOR * np.median(error[keep]), OUTLIER_MIN_PX)
        new_keep = error <= threshold
        if rnd == SOLVE_ROUNDS - 1 or new_keep.sum() == keep.sum():
            break
        keep = new_keep
    ext, fr, K, d = prob.unpack(sol.x)
    return BundleSolution(ext, fr, K, d, error, keep, threshold)

"""Calibrating cameras from board detections: intrinsics, extrinsics, bundle adjustment, floor.

Input: for C cameras and F synchronised frames, the board's detections (capture.board.detect),
None where a camera did not find it. Output: a `capture.calibration.Calibration` and a
`RigReport` a person can act on.

  1. Intrinsics per camera (unless given): OpenCV's calibrateCamera on up to MAX_INTRINSIC_VIEWS
     of its views (spread over the take), k3 fixed (k1 k2 p1 p2, as anipose / Pose2Sim files hold);
     views reprojecting far worse than the others (a misdetection) are dropped and it is run again.
  2. The board's pose in every view (solvePnP, IPPE for a plane, refined by Levenberg-Marquardt).
  3. Covisibility: frames each pair of cameras shares. Cameras are chained from the best connected
     one along the pairs sharing most frames (a maximum spanning tree); each link's relative pose
     is the robust mean of its shared frames' (the rotation nearest to the chordal mean of the
     inlier rotations, the median translation).
  4. Bundle adjustment (scipy.optimize.least_squares, trust region, Huber loss, sparse Jacobian):
     the cameras' poses and the board's pose in every frame seen by two cameras or more, so every
     corner of every view reprojects as well as possible; optionally the intrinsics too. The first
     camera is held fixed (the gauge); observations off by more than 5 times the median and 3 px
     after a first solve are dropped and it is solved again.
  5. World: the board's pose in the floor frame (by default the first frame seen by the most
     cameras: lay the board flat on the floor there) becomes Z up, the floor at Z = 0, origin
     at the middle of the board, metres (the board's squares give the scale). Without a floor
     frame, the world is the first camera's frame and its up is unknown.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation

from pipeline.multicam.calibration import Calibration, CalibrationError, Camera
from pipeline.multicam.calibration_board import BoardSpec, Detection

MIN_VIEWS = 5                 # views with the board a camera needs for its intrinsics
MIN_SHARED = 3                # frames two cameras must share to be linked
MAX_INTRINSIC_VIEWS = 40      # calibrateCamera grows cubically; this many views spread well suffice
MAX_BA_FRAMES = 150           # frames kept for bundle adjustment (spread over the take)
OUTLIER_FACTOR, OUTLIER_MIN_PX = 5.0, 3.0


@dataclass
class CameraReport:
    name: str
    views: int                         # frames where the board was found
    intrinsic_views: int = 0           # views used for its intrinsics
    intrinsic_rms_px: float = float("nan")
    rms_px: float = float("nan")       # bundle adjustment RMS over its observations (outliers left out)
    observations: int = 0              # board corners in the bundle adjustment
    outliers: int = 0                  # corners left out (more than 5x the median and 3 px off)
    height_m: float = float("nan")     # above the floor, when the floor is known

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else
                    (None if isinstance(v, float) else v)) for k, v in self.__dict__.items()}


@dataclass
class RigReport:
    cameras: list[CameraReport]
    covisibility: np.ndarray                 # (C, C) frames seen by both (diagonal: by each)
    frames_used: int = 0                     # frames in the bundle adjustment
    rms_px: float = float("nan")
    floor_frame: int | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"cameras": [c.as_dict() for c in self.cameras],
                "covisibility": self.covisibility.tolist(), "frames_used": self.frames_used,
                "rms_px": None if not np.isfinite(self.rms_px) else round(self.rms_px, 4),
                "floor_frame": self.floor_frame, "warnings": self.warnings}

    def covisibility_table(self) -> str:
        names = [c.name for c in self.cameras]
        w = max(6, *(len(n) for n in names))
        lines = [" " * w + "".join(f"{n:>{w + 1}}" for n in names)]
        for i, n in enumerate(names):
            lines.append(f"{n:<{w}}" + "".join(f"{int(v):>{w + 1}}" for v in self.covisibility[i]))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Intrinsics


def _spread(idx: list[int], k: int) -> list[int]:
    if len(idx) <= k:
        return list(idx)
    return [idx[i] for i in np.linspace(0, len(idx) - 1, k).round().astype(int)]


def calibrate_intrinsics(board: BoardSpec, detections: list[Detection | None], size: tuple[int, int],
                         name: str = "camera", min_views: int = MIN_VIEWS,
                         fix_k3: bool = True) -> tuple[Camera, int]:
    """Pinhole intrinsics and distortion of one camera from its board views. Returns the camera
    (at the origin, R = I, t = 0; error_px = RMS over the views used) and the number of views used.
    CalibrationError when fewer than min_views views hold the board."""
    idx = [i for i, d in enumerate(detections) if d is not None and len(d) >= 6]
    if len(idx) < min_views:
        raise CalibrationError(
            f"only {len(idx)} view{'s' * (len(idx) != 1)} with the board found in {name}; need "
            f"{min_views} (show the whole board to {name} at several angles and places, closer)"
            if idx else f"the board ({board.describe()}) was never found in {name}: check --board "
                        f"(counts, dictionary) and that {name} sees it sharply")
    obj_all = board.object_points().astype(np.float32)
    idx = _spread(idx, MAX_INTRINSIC_VIEWS)
    w, h = size
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    for _ in range(2):
        obj = [obj_all[detections[i].ids] for i in idx]
        img = [detections[i].corners_px.astype(np.float32) for i in idx]
        # Start from a plausible pinhole (OpenCV's own initial guess fails on some sets of views).
        K0 = np.array([[max(w, h), 0, (w - 1) / 2], [0, max(w, h), (h - 1) / 2], [0, 0, 1]], np.float64)
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, (w, h), K0, None,
                                                         flags=flags | cv2.CALIB_USE_INTRINSIC_GUESS)
        per_view = np.array([np.sqrt(np.mean(np.sum((cv2.projectPoints(o, r, t, K, dist)[0].reshape(-1, 2)
                                                     - i.reshape(-1, 2)) ** 2, 1)))
                             for o, i, r, t in zip(obj, img, rvecs, tvecs)])
        bad = per_view > max(3.0 * np.median(per_view), 1.0)
        if not bad.any() or len(idx) - bad.sum() < min_views:
            break
        idx = [i for i, b in zip(idx, bad) if not b]
    dist = dist.ravel()[:4] if fix_k3 else dist.ravel()[:5]
    return Camera(name, (w, h), K, dist, error_px=float(rms)), len(idx)


# ---------------------------------------------------------------------------------------------
# Extrinsics


def board_pose(board: BoardSpec, det: Detection, cam: Camera) -> tuple[np.ndarray, np.ndarray] | None:
    """(R, t) board -> camera for one detection, or None."""
    obj = board.object_points()[det.ids]
    img = det.corners_px.reshape(-1, 1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, cam.K, cam.dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        return None
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, cam.K, cam.dist, rvec, tvec)
    R = cv2.Rodrigues(rvec)[0]
    t = tvec.ravel()
    if t[2] <= 0:
        return None
    return R, t


def _mean_pose(Rs: list[np.ndarray], ts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Robust mean of rigid transforms: rotations within 3x the median angle of their chordal mean,
    then the rotation nearest their mean; the median translation of the same inliers."""
    Rs, ts = np.array(Rs), np.array(ts)
    rot = Rotation.from_matrix(Rs)
    centre = rot.mean()
    ang = (centre.inv() * rot).magnitude()
    keep = ang <= max(3 * np.median(ang), np.radians(2.0))
    R = rot[keep].mean().as_matrix()
    t = np.median(ts[keep], axis=0)
    return R, t


def _components(adj: np.ndarray) -> list[list[int]]:
    C = len(adj)
    seen, comps = set(), []
    for s in range(C):
        if s in seen:
            continue
        stack, comp = [s], []
        seen.add(s)
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in np.flatnonzero(adj[i]):
                if j not in seen:
                    seen.add(int(j))
                    stack.append(int(j))
        comps.append(sorted(comp))
    return comps


def _connectivity_error(names: list[str], comps: list[list[int]]) -> CalibrationError:
    main = max(comps, key=len)
    others = [c for c in comps if c is not main]
    lone = [c for c in others if len(c) == 1]
    if len(comps) == len(names) and len(names) == 2:
        return CalibrationError(f"{names[0]} and {names[1]} never saw the board at the same time "
                                f"(in at least {MIN_SHARED} frames): show it to both at once")
    if lone and len(others) == len(lone):
        who = ", ".join(names[c[0]] for c in lone)
        return CalibrationError(
            f"camera {who} never saw the board together with another camera (in at least "
            f"{MIN_SHARED} frames): record the board where {who} and another camera both see it")
    a = ", ".join(names[i] for i in main)
    b = "; ".join(", ".join(names[i] for i in c) for c in others)
    return CalibrationError(f"cameras {b} never saw the board together with cameras {a}: record "
                            f"the board where both groups see it at once")


def _project(K: np.ndarray, dist: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Vectorised pinhole + Brown-Conrady (k1 k2 p1 p2 [k3]) projection, one camera per point.
    K (n, 3, 3)... given per point: K (n,4) [fx fy cx cy], dist (n,5), R (n,3,3), t (n,3), X (n,3)."""
    Xc = np.einsum("nij,nj->ni", R, X) + t
    x = Xc[:, 0] / Xc[:, 2]
    y = Xc[:, 1] / Xc[:, 2]
    r2 = x * x + y * y
    k1, k2, p1, p2, k3 = dist.T
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([K[:, 0] * xd + K[:, 2], K[:, 1] * yd + K[:, 3]], axis=1)


def _rotvecs_to_mats(r: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(r).as_matrix()


class _Problem:
    """Parameters: per camera 6 (rotvec, t; camera 0 fixed), per frame 6 (board -> world), and
    optionally per camera 8 intrinsics (fx fy cx cy k1 k2 p1 p2)."""

    def __init__(self, board, cams, obs_cam, obs_frame, obs_id, obs_uv, n_frames, refine_intrinsics):
        self.C = len(cams)
        self.F = n_frames
        self.obj = board.object_points()
        self.cam, self.frame, self.pid, self.uv = obs_cam, obs_frame, obs_id, obs_uv
        self.refine = refine_intrinsics
        self.K0 = np.array([[c.K[0, 0], c.K[1, 1], c.K[0, 2], c.K[1, 2]] for c in cams])
        d = np.zeros((self.C, 5))
        for i, c in enumerate(cams):
            d[i, :min(5, len(c.dist))] = c.dist[:5]
        self.d0 = d
        self.n_ext = 6 * (self.C - 1)
        self.n_frame = 6 * self.F
        self.n_int = 8 * self.C if refine_intrinsics else 0

    def unpack(self, p):
        ext = np.zeros((self.C, 6))
        ext[1:] = p[:self.n_ext].reshape(-1, 6)
        fr = p[self.n_ext:self.n_ext + self.n_frame].reshape(-1, 6)
        K, d = self.K0.copy(), self.d0.copy()
        if self.refine:
            ii = p[self.n_ext + self.n_frame:].reshape(-1, 8)
            K = ii[:, :4]
            d[:, :4] = ii[:, 4:]
        return ext, fr, K, d

    def residuals(self, p):
        ext, fr, K, d = self.unpack(p)
        Rc = _rotvecs_to_mats(ext[:, :3])
        Rf = _rotvecs_to_mats(fr[:, :3])
        Xw = np.einsum("nij,nj->ni", Rf[self.frame], self.obj[self.pid]) + fr[self.frame, 3:]
        uv = _project(K[self.cam], d[self.cam], Rc[self.cam], ext[self.cam, 3:], Xw)
        return (uv - self.uv).ravel()

    def sparsity(self):
        """Which parameters each residual depends on: its camera's pose, its frame's board pose
        (and its camera's intrinsics)."""
        n = len(self.cam)
        cols = [self.n_ext + 6 * self.frame[:, None] + np.arange(6)]
        ext = np.where(self.cam[:, None] > 0, 6 * (self.cam[:, None] - 1) + np.arange(6), -1)
        cols.append(ext)
        if self.refine:
            cols.append(self.n_ext + self.n_frame + 8 * self.cam[:, None] + np.arange(8))
        cols = np.concatenate(cols, axis=1)                      # (n, k)
        rows = np.repeat(np.arange(n), cols.shape[1]).reshape(n, -1)
        ok = cols >= 0
        r = np.concatenate([2 * rows[ok], 2 * rows[ok] + 1])
        c = np.concatenate([cols[ok], cols[ok]])
        m = self.n_ext + self.n_frame + self.n_int
        return coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(2 * n, m)).tocsr()


def calibrate_rig(board: BoardSpec, detections: list[list[Detection | None]],
                  sizes: list[tuple[int, int]], names: list[str],
                  intrinsics: list[Camera] | None = None, refine_intrinsics: bool = False,
                  floor_frame: int | str | None = "auto", min_views: int = MIN_VIEWS,
                  progress=None) -> tuple[Calibration, RigReport]:
    """Calibrate C cameras from their board detections over F synchronised frames
    (`detections[c][f]`, None where not found). See the module docstring.

    intrinsics: known intrinsics per camera (K, dist used; poses ignored), or None to compute them.
    floor_frame: "auto" (the first frame seen by the most cameras), a frame index, or None (world
                 = the first camera's frame, up unknown).
    progress: optional callable(str) for stage messages.
    """
    say = progress or (lambda s: None)
    C = len(detections)
    if board.kind == "checkerboard" and not board.oriented and C > 1:
        raise CalibrationError(f"a {board.cols}x{board.rows} checkerboard looks the same turned half a "
                               f"turn, so cameras cannot agree on its corners: use a ChArUco board or a "
                               f"checkerboard with one odd and one even count (e.g. 9x6)")
    F = len(detections[0])
    seen = np.array([[d is not None and len(d) >= 6 for d in dets] for dets in detections])
    reports = [CameraReport(n, int(s.sum())) for n, s in zip(names, seen)]
    warnings: list[str] = []

    # 1. Intrinsics.
    cams: list[Camera] = []
    for c in range(C):
        if intrinsics is not None:
            k = intrinsics[c]
            cams.append(Camera(names[c], sizes[c], k.K, k.dist, fisheye=k.fisheye, error_px=k.error_px))
            reports[c].intrinsic_rms_px = k.error_px
            continue
        say(f"intrinsics of {names[c]}")
        cam, used = calibrate_intrinsics(board, detections[c], sizes[c], names[c], min_views)
        cams.append(cam)
        reports[c].intrinsic_views, reports[c].intrinsic_rms_px = used, cam.error_px
        if cam.error_px > 1.0:
            warnings.append(f"{names[c]}: intrinsic calibration RMS {cam.error_px:.2f} px (> 1 px): "
                            f"blurred or badly lit views? hold the board still")
    covis = (seen[:, None, :] & seen[None, :, :]).sum(-1)
    report = RigReport(reports, covis, warnings=warnings)
    if C == 1:
        report.rms_px = cams[0].error_px
        return Calibration(cams, None, False, {"board": board.text()}), report

    # 2. Board poses per view.
    say("board poses")
    poses: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for c in range(C):
        for f in np.flatnonzero(seen[c]):
            p = board_pose(board, detections[c][f], cams[c])
            if p is not None:
                poses[c, int(f)] = p
    posed = np.zeros((C, F), bool)
    for c, f in poses:
        posed[c, f] = True
    shared = (posed[:, None, :] & posed[None, :, :]).sum(-1)
    report.covisibility = shared
    adj = (shared >= MIN_SHARED) & ~np.eye(C, dtype=bool)
    comps = _components(adj)
    if len(comps) > 1:
        raise _connectivity_error(names, comps)

    # 3. Initial camera poses: maximum spanning tree over shared frames, from camera 0 (the gauge).
    world_R = {0: np.eye(3)}
    world_t = {0: np.zeros(3)}
    while len(world_R) < C:
        best = None
        for i in world_R:
            for j in range(C):
                if j not in world_R and adj[i, j] and (best is None or shared[i, j] > shared[best]):
                    best = (i, j)
        i, j = best
        Rs, ts = [], []
        for f in np.flatnonzero(posed[i] & posed[j]):
            Ri, ti = poses[i, int(f)]
            Rj, tj = poses[j, int(f)]
            Rji = Rj @ Ri.T           # camera i -> camera j
            Rs.append(Rji)
            ts.append(tj - Rji @ ti)
        Rji, tji = _mean_pose(Rs, ts)
        world_R[j] = Rji @ world_R[i]
        world_t[j] = Rji @ world_t[i] + tji

    # Frames seen by two cameras or more, spread over the take; board pose in the world from the
    # camera that sees most of it.
    multi = np.flatnonzero(posed.sum(0) >= 2)
    frames = np.array(_spread(list(multi), MAX_BA_FRAMES), int)
    fpose = np.zeros((len(frames), 6))
    for k, f in enumerate(frames):
        c = max((c for c in range(C) if posed[c, f]), key=lambda c: len(detections[c][f]))
        Rb, tb = poses[c, int(f)]
        Rw = world_R[c].T @ Rb
        tw = world_R[c].T @ (tb - world_t[c])
        fpose[k] = np.r_[Rotation.from_matrix(Rw).as_rotvec(), tw]

    # 4. Bundle adjustment.
    obs = [(c, k, i, uv) for k, f in enumerate(frames) for c in range(C) if posed[c, f]
           for i, uv in zip(detections[c][f].ids, detections[c][f].corners_px)]
    oc = np.array([o[0] for o in obs])
    of = np.array([o[1] for o in obs])
    oi = np.array([o[2] for o in obs])
    ouv = np.array([o[3] for o in obs], np.float64)
    p0 = np.concatenate([np.concatenate([np.r_[Rotation.from_matrix(world_R[c]).as_rotvec(), world_t[c]]
                                         for c in range(1, C)]), fpose.ravel()])
    keep = np.ones(len(oc), bool)
    for rnd in range(2):
        prob = _Problem(board, cams, oc[keep], of[keep], oi[keep], ouv[keep], len(frames), refine_intrinsics)
        if refine_intrinsics and rnd == 0:
            p0 = np.r_[p0, np.c_[prob.K0, prob.d0[:, :4]].ravel()]
        say(f"bundle adjustment ({keep.sum()} corners, {len(frames)} frames, {C} cameras)")
        sol = least_squares(prob.residuals, p0, jac_sparsity=prob.sparsity(), method="trf",
                            loss="huber", f_scale=1.0, x_scale="jac", max_nfev=200, xtol=1e-10, ftol=1e-10)
        p0 = sol.x
        full = _Problem(board, cams, oc, of, oi, ouv, len(frames), refine_intrinsics)
        r = np.linalg.norm(full.residuals(sol.x).reshape(-1, 2), axis=1)
        thr = max(OUTLIER_FACTOR * np.median(r[keep]), OUTLIER_MIN_PX)
        new_keep = r <= thr
        if rnd == 1 or new_keep.sum() == keep.sum():
            break
        keep = new_keep
    ext, fr, K, d = prob.unpack(sol.x)
    for c in range(C):
        cams[c].R = _rotvecs_to_mats(ext[c:c + 1, :3])[0]
        cams[c].t = ext[c, 3:].copy()
        if refine_intrinsics:
            cams[c].K = np.array([[K[c, 0], 0, K[c, 2]], [0, K[c, 1], K[c, 3]], [0, 0, 1.0]])
            cams[c].dist = d[c, :4].copy()
        m = keep & (oc == c)
        cams[c].error_px = float(np.sqrt(np.mean(r[m] ** 2))) if m.any() else float("nan")
        reports[c].rms_px, reports[c].observations = cams[c].error_px, int(m.sum())
        reports[c].outliers = int((~keep & (oc == c)).sum())
    report.rms_px = float(np.sqrt(np.mean(r[keep] ** 2)))
    report.frames_used = len(frames)
    dropped = int((~keep).sum())
    if dropped > 0.05 * len(keep):
        warnings.append(f"{dropped} of {len(keep)} corners reprojected more than {thr:.1f} px off and "
                        f"were left out: motion blur or unsynchronised cameras?")

    # 5. World frame.
    calib = Calibration(cams, None, False, {"board": board.text(), "adjusted": True})
    if floor_frame is not None:
        if floor_frame == "auto":
            count = posed.sum(0)
            floor_frame = int(np.flatnonzero(count == count.max())[0])
        floor_frame = int(floor_frame)
        if not 0 <= floor_frame < F or posed[:, floor_frame].sum() == 0:
            raise CalibrationError(f"the board was not found in frame {floor_frame}, chosen as the floor")
        if floor_frame in set(frames.tolist()):
            k = int(np.flatnonzero(frames == floor_frame)[0])
            Rb = _rotvecs_to_mats(fr[k:k + 1, :3])[0]
            tb = fr[k, 3:]
        else:  # from one camera's view of it
            c = int(np.flatnonzero(posed[:, floor_frame])[0])
            Rc_b, tc_b = poses[c, floor_frame]
            Rb = cams[c].R.T @ Rc_b
            tb = cams[c].R.T @ (tc_b - cams[c].t)
        set_floor(calib, Rb, tb + Rb @ board.centre_m())
        report.floor_frame = floor_frame
        heights = [float(c.centre_m[2]) for c in calib.cameras]
        for rep, h in zip(reports, heights):
            rep.height_m = h
        if np.median(heights) < 0.2:
            warnings.append(f"the board in frame {floor_frame} does not look like it lies on the floor "
                            f"(camera heights {', '.join(f'{h:.2f}' for h in heights)} m): lay it flat, "
                            f"printed side up, where every camera sees it, at the start of the recording")
    return calib, report


def set_floor(calib: Calibration, R_board: np.ndarray, origin: np.ndarray) -> None:
    """Make the world the floor frame of a board lying face up with pose (R_board, origin) in the
    current world: X along its rows, Z up (its -Z), the floor Z = 0 through `origin`."""
    # Board +Z points into the floor; half a turn about its X gives Z up and stays right-handed.
    R_wb = R_board @ np.diag([1.0, -1.0, -1.0])     # new world axes, in the old world
    for cam in calib.cameras:
        t_new = cam.R @ origin + cam.t               # x_cam = R (R_wb x_new + origin) + t
        cam.R = cam.R @ R_wb
        cam.t = t_new
    calib.up = np.array([0.0, 0.0, 1.0])
    calib.floor = True

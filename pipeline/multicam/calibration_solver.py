"""Board detections of one or several cameras -> a `Calibration` (intrinsics, poses, floor).

Not to be confused with: pipeline.multicam.calibration (the Calibration / Camera types and their
files), calibration_board (the board: its spec, detection, printable page), board_views (frames of
videos, images or cameras -> board detections) and calibration_job (the whole `python -m
pipeline.calibrate` run: sources -> TOML + report).

Input: for C cameras and F synchronised frames, the board's detections
(pipeline.multicam.calibration_board.detect), None where a camera did not find it; each camera's
image size (pixels) and name. Output: a `pipeline.multicam.calibration.Calibration` (world in
metres) and a `RigReport` a person can act on.

  1. Intrinsics per camera (unless given): OpenCV's calibrateCamera on up to MAX_INTRINSIC_VIEWS
     of its views (spread over the take), k3 fixed (k1 k2 p1 p2, as anipose / Pose2Sim files hold);
     views reprojecting far worse than the others (a misdetection) are dropped and it is run again.
  2. The board's pose in every view (solvePnP, IPPE for a plane, refined by Levenberg-Marquardt).
  3. Covisibility: frames each pair of cameras shares. Cameras are chained from the best connected
     one along the pairs sharing most frames (a maximum spanning tree); each link's relative pose
     is the robust mean of its shared frames' (the rotation nearest to the chordal mean of the
     inlier rotations, the median translation).
  4. Bundle adjustment (pipeline.multicam.bundle_adjustment): the cameras' poses and the board's
     pose in every frame seen by two cameras or more, so every corner of every view reprojects as
     well as possible; optionally the intrinsics too. The first camera is held fixed (the gauge);
     observations off by more than 5 times the median and 3 px after a first solve are dropped and
     it is solved again.
  5. World: the board's pose in the floor frame (by default the first frame seen by the most
     cameras: lay the board flat on the floor there) becomes Z up, the floor at Z = 0, origin
     at the middle of the board, metres (the board's squares give the scale). Without a floor
     frame, the world is the first camera's frame and its up is unknown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.multicam.bundle_adjustment import BundleSolution, Observations, bundle_adjust, rotvecs_to_mats
from pipeline.multicam.calibration import Calibration, CalibrationError, Camera
from pipeline.multicam.calibration_board import BoardSpec, Detection

MIN_VIEWS = 5                 # views with the board a camera needs for its intrinsics
MIN_SHARED = 3                # frames two cameras must share to be linked
MAX_INTRINSIC_VIEWS = 40      # calibrateCamera grows cubically; this many views spread well suffice
MAX_BA_FRAMES = 150           # frames kept for bundle adjustment (spread over the take)
MIN_CORNERS = 6               # corners a detection needs to count as a view of the board
INTRINSIC_ROUNDS = 2          # calibrateCamera runs: a first, then one without the views it found bad
VIEW_OUTLIER_FACTOR = 3.0     # an intrinsic view reprojecting this many times the median RMS is dropped...
VIEW_OUTLIER_MIN_PX = 1.0     # ... when also worse than this, pixels
MAX_GOOD_INTRINSIC_RMS_PX = 1.0  # pixels: worse intrinsics get a warning
ROTATION_OUTLIER_FACTOR = 3.0  # relative rotations further than this many times the median angle are outliers
MIN_INLIER_ANGLE_DEG = 2.0    # ... unless within this angle, degrees
MAX_DROPPED_FRACTION = 0.05   # more corners than this fraction left out of the adjustment: a warning
MIN_CAMERA_HEIGHT_M = 0.2     # metres: cameras lower than this above the floor mean the floor frame is wrong
# Board +Z points into the floor; half a turn about its X gives Z up and stays right-handed.
BOARD_TO_FLOOR = np.diag([1.0, -1.0, -1.0])


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

    def summary(self, sizes: list[tuple[int, int]]) -> str:
        """The report as `python -m pipeline.calibrate` prints it: a table of the cameras (sizes:
        their images', pixels), which saw the board together, the adjustment's RMS and the warnings."""
        def px(v):
            return f"{v:.2f} px" if v is not None and np.isfinite(v) else "-"
        lines = [f"{'camera':<12}{'size':>11}{'views':>7}{'intr. RMS':>11}{'BA RMS':>9}{'corners':>9}"
                 f"{'outliers':>10}{'height':>9}"]
        for r, size in zip(self.cameras, sizes):
            h = f"{r.height_m:.2f} m" if np.isfinite(r.height_m) else "-"
            lines.append(f"{r.name:<12}{f'{size[0]}x{size[1]}':>11}{r.views:>7}{px(r.intrinsic_rms_px):>11}"
                         f"{px(r.rms_px):>9}{r.observations:>9}{r.outliers:>10}{h:>9}")
        if len(self.cameras) > 1 and np.isfinite(self.rms_px):
            lines.append("frames where both cameras saw the board:")
            lines.append(self.covisibility_table())
        if np.isfinite(self.rms_px):
            lines.append(f"bundle adjustment: {self.frames_used} frames, RMS {self.rms_px:.3f} px"
                         + (f"; floor from frame {self.floor_frame}" if self.floor_frame is not None else
                            "; no floor: the world is the first camera's frame"))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Intrinsics


def _spread(idx: list[int], k: int) -> list[int]:
    """At most k of idx, evenly spread over it."""
    if len(idx) <= k:
        return list(idx)
    return [idx[i] for i in np.linspace(0, len(idx) - 1, k).round().astype(int)]


def _too_few_views(board: BoardSpec, idx: list[int], name: str, min_views: int) -> CalibrationError:
    """The error for a camera that found the board in fewer than min_views views (idx)."""
    return CalibrationError(
        f"only {len(idx)} view{'s' * (len(idx) != 1)} with the board found in {name}; need "
        f"{min_views} (show the whole board to {name} at several angles and places, closer)"
        if idx else f"the board ({board.describe()}) was never found in {name}: check --board "
                    f"(counts, dictionary) and that {name} sees it sharply")


def calibrate_intrinsics(board: BoardSpec, detections: list[Detection | None], size: tuple[int, int],
                         name: str = "camera", min_views: int = MIN_VIEWS,
                         fix_k3: bool = True) -> tuple[Camera, int]:
    """Pinhole intrinsics and distortion of one camera from its board views. Returns the camera
    (at the origin, R = I, t = 0; error_px = RMS over the views used) and the number of views used.
    CalibrationError when fewer than min_views views hold the board."""
    idx = [i for i, d in enumerate(detections) if d is not None and len(d) >= MIN_CORNERS]
    if len(idx) < min_views:
        raise _too_few_views(board, idx, name, min_views)
    obj_all = board.object_points().astype(np.float32)
    idx = _spread(idx, MAX_INTRINSIC_VIEWS)
    w, h = size
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    for _ in range(INTRINSIC_ROUNDS):
        obj = [obj_all[detections[i].ids] for i in idx]
        img = [detections[i].corners_px.astype(np.float32) for i in idx]
        # Start from a plausible pinhole (OpenCV's own initial guess fails on some sets of views).
        K0 = np.array([[max(w, h), 0, (w - 1) / 2], [0, max(w, h), (h - 1) / 2], [0, 0, 1]], np.float64)
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, (w, h), K0, None,
                                                         flags=flags | cv2.CALIB_USE_INTRINSIC_GUESS)
        per_view = np.array([np.sqrt(np.mean(np.sum((cv2.projectPoints(o, r, t, K, dist)[0].reshape(-1, 2)
                                                     - i.reshape(-1, 2)) ** 2, 1)))
                             for o, i, r, t in zip(obj, img, rvecs, tvecs)])
        bad = per_view > max(VIEW_OUTLIER_FACTOR * np.median(per_view), VIEW_OUTLIER_MIN_PX)
        if not bad.any() or len(idx) - bad.sum() < min_views:
            break
        idx = [i for i, b in zip(idx, bad) if not b]
    dist = dist.ravel()[:4] if fix_k3 else dist.ravel()[:5]
    return Camera(name, (w, h), K, dist, error_px=float(rms)), len(idx)


def calibrate_each_camera(board: BoardSpec, detections: list[list[Detection | None]],
                          sizes: list[tuple[int, int]], names: list[str]) -> tuple[Calibration, RigReport]:
    """Intrinsics only, every camera on its own (unsynchronised views): cameras at the origin, no
    world; the report's covisibility is each camera's views on its diagonal."""
    cams, reps = [], []
    for c, name in enumerate(names):
        cam, used = calibrate_intrinsics(board, detections[c], sizes[c], name)
        cams.append(cam)
        reps.append(CameraReport(name, sum(d is not None for d in detections[c]), used, cam.error_px))
    calib = Calibration(cams, None, False, {"board": board.text(), "intrinsics_only": True})
    return calib, RigReport(reps, np.diag([r.views for r in reps]))


def _rig_intrinsics(board: BoardSpec, detections: list[list[Detection | None]], sizes: list[tuple[int, int]],
                    names: list[str], intrinsics: list[Camera] | None, min_views: int,
                    reports: list[CameraReport], warnings: list[str], say: Callable[[str], None]) -> list[Camera]:
    """Each camera with its intrinsics, given or calibrated from its views (step 1), at the origin;
    the reports and warnings are filled in."""
    cams: list[Camera] = []
    for c in range(len(detections)):
        if intrinsics is not None:
            k = intrinsics[c]
            cams.append(Camera(names[c], sizes[c], k.K, k.dist, fisheye=k.fisheye, error_px=k.error_px))
            reports[c].intrinsic_rms_px = k.error_px
            continue
        say(f"intrinsics of {names[c]}")
        cam, used = calibrate_intrinsics(board, detections[c], sizes[c], names[c], min_views)
        cams.append(cam)
        reports[c].intrinsic_views, reports[c].intrinsic_rms_px = used, cam.error_px
        if cam.error_px > MAX_GOOD_INTRINSIC_RMS_PX:
            warnings.append(f"{names[c]}: intrinsic calibration RMS {cam.error_px:.2f} px (> 1 px): "
                            f"blurred or badly lit views? hold the board still")
    return cams


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
    keep = ang <= max(ROTATION_OUTLIER_FACTOR * np.median(ang), np.radians(MIN_INLIER_ANGLE_DEG))
    R = rot[keep].mean().as_matrix()
    t = np.median(ts[keep], axis=0)
    return R, t


def _components(adj: np.ndarray) -> list[list[int]]:
    """Connected components (sorted camera indices) of the cameras' link matrix adj (C, C) bool."""
    n_cams = len(adj)
    seen, comps = set(), []
    for s in range(n_cams):
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
    """The error saying which cameras never saw the board together with the others."""
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


def _board_poses(board: BoardSpec, detections: list[list[Detection | None]], seen: np.ndarray,
                 cams: list[Camera]) -> tuple[dict[tuple[int, int], tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """(poses {(camera, frame): (R, t) board -> camera}, posed (C, F) bool) for every view of the
    board (`seen` (C, F)) whose pose could be solved (step 2)."""
    poses: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for c in range(len(cams)):
        for f in np.flatnonzero(seen[c]):
            p = board_pose(board, detections[c][f], cams[c])
            if p is not None:
                poses[c, int(f)] = p
    posed = np.zeros(seen.shape, bool)
    for c, f in poses:
        posed[c, f] = True
    return poses, posed


def _initial_camera_poses(adj: np.ndarray, shared: np.ndarray, posed: np.ndarray,
                          poses: dict) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """({camera: R}, {camera: t}) world -> camera, the world camera 0's frame (the gauge): a maximum
    spanning tree over the frames pairs of cameras share (shared (C, C), links adj (C, C)), each
    link the robust mean of its shared frames' relative poses (step 3)."""
    n_cams = len(adj)
    world_R = {0: np.eye(3)}
    world_t = {0: np.zeros(3)}
    while len(world_R) < n_cams:
        best = None
        for i in world_R:
            for j in range(n_cams):
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
    return world_R, world_t


def _adjustment_start(frames: np.ndarray, posed: np.ndarray, detections: list[list[Detection | None]],
                      poses: dict, world_R: dict, world_t: dict) -> np.ndarray:
    """The bundle adjustment's starting parameters: cameras 1..C-1's poses (rotvec, t), then the
    board's pose in the world in each of `frames`, from the camera that sees most of it."""
    n_cams = len(posed)
    frame_poses = np.zeros((len(frames), 6))
    for k, f in enumerate(frames):
        c = max((c for c in range(n_cams) if posed[c, f]), key=lambda c: len(detections[c][f]))
        Rb, tb = poses[c, int(f)]
        Rw = world_R[c].T @ Rb
        tw = world_R[c].T @ (tb - world_t[c])
        frame_poses[k] = np.r_[Rotation.from_matrix(Rw).as_rotvec(), tw]
    cameras = np.concatenate([np.r_[Rotation.from_matrix(world_R[c]).as_rotvec(), world_t[c]]
                              for c in range(1, n_cams)])
    return np.concatenate([cameras, frame_poses.ravel()])


def _observations(frames: np.ndarray, posed: np.ndarray, detections: list[list[Detection | None]]) -> Observations:
    """Every corner of every posed view in `frames` (frame numbers become indices into frames)."""
    obs = [(c, k, i, uv) for k, f in enumerate(frames) for c in range(len(posed)) if posed[c, f]
           for i, uv in zip(detections[c][f].ids, detections[c][f].corners_px)]
    return Observations(np.array([o[0] for o in obs]), np.array([o[1] for o in obs]),
                        np.array([o[2] for o in obs]), np.array([o[3] for o in obs], np.float64))


def _store_solution(cams: list[Camera], reports: list[CameraReport], obs: Observations, sol: BundleSolution,
                    refine_intrinsics: bool) -> None:
    """The adjusted poses (and intrinsics) into the cameras, their RMS and counts into the reports."""
    keep, error = sol.kept, sol.error_px
    for c in range(len(cams)):
        cams[c].R = rotvecs_to_mats(sol.camera_poses[c:c + 1, :3])[0]
        cams[c].t = sol.camera_poses[c, 3:].copy()
        if refine_intrinsics:
            K = sol.K
            cams[c].K = np.array([[K[c, 0], 0, K[c, 2]], [0, K[c, 1], K[c, 3]], [0, 0, 1.0]])
            cams[c].dist = sol.dist[c, :4].copy()
        m = keep & (obs.camera == c)
        cams[c].error_px = float(np.sqrt(np.mean(error[m] ** 2))) if m.any() else float("nan")
        reports[c].rms_px, reports[c].observations = cams[c].error_px, int(m.sum())
        reports[c].outliers = int((~keep & (obs.camera == c)).sum())


# ---------------------------------------------------------------------------------------------
# The rig


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
    n_cams = len(detections)
    if board.kind == "checkerboard" and not board.oriented and n_cams > 1:
        raise CalibrationError(f"a {board.cols}x{board.rows} checkerboard looks the same turned half a "
                               f"turn, so cameras cannot agree on its corners: use a ChArUco board or a "
                               f"checkerboard with one odd and one even count (e.g. 9x6)")
    seen = np.array([[d is not None and len(d) >= MIN_CORNERS for d in dets] for dets in detections])
    reports = [CameraReport(n, int(s.sum())) for n, s in zip(names, seen)]
    warnings: list[str] = []
    cams = _rig_intrinsics(board, detections, sizes, names, intrinsics, min_views, reports, warnings, say)
    report = RigReport(reports, (seen[:, None, :] & seen[None, :, :]).sum(-1), warnings=warnings)
    if n_cams == 1:
        report.rms_px = cams[0].error_px
        return Calibration(cams, None, False, {"board": board.text()}), report

    say("board poses")
    poses, posed = _board_poses(board, detections, seen, cams)
    shared = (posed[:, None, :] & posed[None, :, :]).sum(-1)
    report.covisibility = shared
    adj = (shared >= MIN_SHARED) & ~np.eye(n_cams, dtype=bool)
    comps = _components(adj)
    if len(comps) > 1:
        raise _connectivity_error(names, comps)
    world_R, world_t = _initial_camera_poses(adj, shared, posed, poses)

    # Frames seen by two cameras or more, spread over the take.
    frames = np.array(_spread(list(np.flatnonzero(posed.sum(0) >= 2)), MAX_BA_FRAMES), int)
    obs = _observations(frames, posed, detections)
    start = _adjustment_start(frames, posed, detections, poses, world_R, world_t)
    sol = bundle_adjust(board, cams, obs, len(frames), start, refine_intrinsics, say)
    _store_solution(cams, reports, obs, sol, refine_intrinsics)
    report.rms_px = float(np.sqrt(np.mean(sol.error_px[sol.kept] ** 2)))
    report.frames_used = len(frames)
    dropped = int((~sol.kept).sum())
    if dropped > MAX_DROPPED_FRACTION * len(sol.kept):
        warnings.append(f"{dropped} of {len(sol.kept)} corners reprojected more than {sol.threshold_px:.1f} px "
                        f"off and were left out: motion blur or unsynchronised cameras?")

    calib = Calibration(cams, None, False, {"board": board.text(), "adjusted": True})
    if floor_frame is not None:
        _place_on_floor(calib, board, floor_frame, posed, poses, frames, sol.frame_poses, report)
    return calib, report


# ---------------------------------------------------------------------------------------------
# World frame


def _place_on_floor(calib: Calibration, board: BoardSpec, floor_frame: int | str, posed: np.ndarray,
                    poses: dict, frames: np.ndarray, frame_poses: np.ndarray, report: RigReport) -> None:
    """Step 5: the world becomes the floor frame of the board in frame `floor_frame` ("auto": the
    first seen by the most cameras), its pose from the adjustment (frame_poses (len(frames), 6)) or
    one camera's view; the report gets the floor frame, the cameras' heights and a warning when
    they look wrong. CalibrationError when the board was not found in that frame."""
    if floor_frame == "auto":
        count = posed.sum(0)
        floor_frame = int(np.flatnonzero(count == count.max())[0])
    floor_frame = int(floor_frame)
    if not 0 <= floor_frame < posed.shape[1] or posed[:, floor_frame].sum() == 0:
        raise CalibrationError(f"the board was not found in frame {floor_frame}, chosen as the floor")
    if floor_frame in set(frames.tolist()):
        k = int(np.flatnonzero(frames == floor_frame)[0])
        Rb = rotvecs_to_mats(frame_poses[k:k + 1, :3])[0]
        tb = frame_poses[k, 3:]
    else:  # from one camera's view of it
        c = int(np.flatnonzero(posed[:, floor_frame])[0])
        Rc_b, tc_b = poses[c, floor_frame]
        cam = calib.cameras[c]
        Rb = cam.R.T @ Rc_b
        tb = cam.R.T @ (tc_b - cam.t)
    set_floor(calib, Rb, tb + Rb @ board.centre_m())
    report.floor_frame = floor_frame
    heights = [float(c.centre_m[2]) for c in calib.cameras]
    for rep, h in zip(report.cameras, heights):
        rep.height_m = h
    if np.median(heights) < MIN_CAMERA_HEIGHT_M:
        report.warnings.append(
            f"the board in frame {floor_frame} does not look like it lies on the floor "
            f"(camera heights {', '.join(f'{h:.2f}' for h in heights)} m): lay it flat, "
            f"printed side up, where every camera sees it, at the start of the recording")


def set_floor(calib: Calibration, R_board: np.ndarray, origin: np.ndarray) -> None:
    """Make the world the floor frame of a board lying face up with pose (R_board, origin) in the
    current world: X along its rows, Z up (its -Z), the floor Z = 0 through `origin`."""
    R_wb = R_board @ BOARD_TO_FLOOR                 # new world axes, in the old world
    for cam in calib.cameras:
        t_new = cam.R @ origin + cam.t               # x_cam = R (R_wb x_new + origin) + t
        cam.R = cam.R @ R_wb
        cam.t = t_new
    calib.up = np.array([0.0, 0.0, 1.0])
    calib.floor = True

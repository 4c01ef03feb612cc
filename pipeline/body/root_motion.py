"""Root motion of the body solve: where the hips are, frame by frame.

Inputs: MediaPipe landmarks of N frames (image (N, 33, 3) normalised, world (N, 33, 3) metres in
MediaPipe's frame, visibility (N, 33)) or, with several cameras, the triangulated hips; the solved
local rotations (N, J, 4) xyzw of a `Skeleton`. Outputs: the hips in MediaPipe's camera frame
(N, 3) metres (`camera_translation`) and the root translation (N, 3) metres in the glTF world
(`_root_translation`).

The root's X/Z follow the camera-space hips (relative to the first tracked frame) with a quadratic
0.5 s Savitzky-Golay window (the depth comes from the body's apparent size and is the noisiest
signal); its height comes from the smoothed pose (the lowest heel or toe tip on the floor) and gets
only the light 0.2 s landmark filter, so the feet stay on the floor. With several cameras the X/Z
follow the triangulated hips (`Tracks.pose_root_m`, metric) instead of `camera_translation`.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.conditioning import VIS_HI, VIS_LO
from pipeline.body.filters import LANDMARK_ORDER, LANDMARK_WINDOW_S, _hold, _savgol_runs
from pipeline.body.kinematics import forward_kinematics
from pipeline.body.rotations import MP_TO_GLTF, _ramp
from pipeline.body.skeleton import Skeleton
from pipeline.core.tracks import POSE

CAMERA_VFOV_DEG = 63.0           # MediaPipe face geometry's virtual camera
FIT_MIN_VISIBILITY = 0.5         # landmarks used to place the hips in the camera: at least this visible
INSIDE_IMAGE = (-0.02, 1.02)     # normalised image coordinates counted as inside (2 % margin)
FIT_MIN_LANDMARKS = 4            # fewer usable landmarks: no camera translation (NaN)
MIN_CAMERA_DEPTH_M = 0.1         # a fit this close to the camera (or behind it) has failed
ROOT_WINDOW_S = 0.5              # Savitzky-Golay window of the root's X/Z, seconds
ROOT_ORDER = 2                   # ... and its polynomial order (quadratic)


def camera_translation(image_size: tuple[int, int], image: np.ndarray, world_mp: np.ndarray,
                       vis: np.ndarray) -> np.ndarray:
    """(N, 3) hips position in MediaPipe's camera frame (x right, y down, z forward, metres).

    image: (N, 33, 3) normalised image landmarks; world_mp: (N, 33, 3) world landmarks
    (MediaPipe frame); vis: (N, 33).

    Linear least squares per frame for the translation t such that the pinhole projection of
    (world landmark + t) hits the image landmark, with MediaPipe's virtual camera (vertical field
    of view 63 degrees, principal point at the image centre). Landmarks must be visible (>= 0.5)
    and inside the image; NaN where fewer than 4 are.
    """
    width, height = image_size
    focal_px = 0.5 * height / np.tan(np.radians(CAMERA_VFOV_DEG) / 2)
    cx, cy = 0.5 * width, 0.5 * height
    u = image[..., 0] * width
    v = image[..., 1] * height
    wx, wy, wz = (world_mp[..., k] for k in range(3))
    lo, hi = INSIDE_IMAGE
    with np.errstate(invalid="ignore"):
        inside = ((image[..., 0] > lo) & (image[..., 0] < hi)
                  & (image[..., 1] > lo) & (image[..., 1] < hi))
    weight = np.where((vis >= FIT_MIN_VISIBILITY) & inside & np.isfinite(u) & np.isfinite(wx), vis, 0.0)
    u, v, wx, wy, wz = (np.nan_to_num(a) for a in (u, v, wx, wy, wz))
    # Rows: [f, 0, cx - u] t = (u - cx) Z - f X   and   [0, f, cy - v] t = (v - cy) Z - f Y
    n, k = u.shape
    rows = np.zeros((n, k, 2, 3))
    rows[..., 0, 0] = focal_px
    rows[..., 0, 2] = cx - u
    rows[..., 1, 1] = focal_px
    rows[..., 1, 2] = cy - v
    rhs = np.stack([(u - cx) * wz - focal_px * wx, (v - cy) * wz - focal_px * wy], axis=-1)
    sw = np.sqrt(weight)[..., None]
    rows = (rows * sw[..., None]).reshape(n, 2 * k, 3)
    rhs = (rhs * sw).reshape(n, 2 * k)
    normal = np.einsum("nki,nkj->nij", rows, rows) + 1e-9 * np.eye(3)
    projected = np.einsum("nki,nk->ni", rows, rhs)
    t = np.linalg.solve(normal, projected[..., None])[..., 0]
    t[(weight > 0).sum(-1) < FIT_MIN_LANDMARKS] = np.nan
    t[t[:, 2] <= MIN_CAMERA_DEPTH_M] = np.nan  # behind / inside the camera: a failed fit
    return t


def _horizontal_root(cam_t: np.ndarray) -> np.ndarray:
    """(N, 3) root with X/Z from the camera-space hips cam_t (N, 3) (NaN rows: gaps, interpolated)
    taken to glTF (the avatar faces the camera), relative to the first valid estimate; Y zero."""
    n = len(cam_t)
    root = np.zeros((n, 3))
    t_gl = cam_t * MP_TO_GLTF
    ok = np.isfinite(t_gl).all(axis=1)
    if ok.any():
        t_gl = t_gl - t_gl[np.flatnonzero(ok)[0]]
        idx = np.arange(n)
        for k in (0, 2):
            root[:, k] = np.interp(idx, idx[ok], t_gl[ok, k])
    return root


def _floor_height(skel: Skeleton, q: np.ndarray, vis: np.ndarray, rest_hips: np.ndarray) -> np.ndarray:
    """(N,) hips height (metres) that puts the lowest heel or toe tip of the pose q (N, J, 4) on
    Y = 0, blended to the rest hips height as the feet (visibility vis (N, 33)) become unseen."""
    n = len(q)
    # FK with the hips at the origin, lowest sole point to Y = 0.
    pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, q, np.zeros((n, 3)))
    lows = []
    for side in ("left", "right"):
        foot, toes = skel.index(f"{side}Foot"), skel.index(f"{side}Toes")
        heel = pos[:, foot] + Rotation.from_quat(glob[:, foot]).apply(skel.heel_offset_m)
        tip = pos[:, toes] + Rotation.from_quat(glob[:, toes]).apply(skel.toe_tip_offset_m)
        lows.append(np.minimum(heel[:, 1], tip[:, 1]))
    contact = -np.minimum(*lows)
    feet_vis = np.max([vis[:, [POSE[f"{s}_heel"], POSE[f"{s}_foot_index"], POSE[f"{s}_ankle"]]].min(1)
                       for s in ("left", "right")], axis=0)
    w = _ramp(feet_vis, VIS_LO, VIS_HI)
    return w * contact + (1 - w) * rest_hips[1]


def _root_translation(skel: Skeleton, q: np.ndarray, valid: np.ndarray, cam_t: np.ndarray,
                      vis: np.ndarray, fps: float, rest_hips: np.ndarray) -> np.ndarray:
    """(N, 3) hips position: X/Z follow the camera-space hips relative to the first tracked frame;
    Y puts the lowest heel or toe tip of the solved pose on the floor (blended to the rest hips
    height as the feet become unseen).

    q: (N, J, 4) local rotations; valid: (N,) bool; cam_t: (N, 3) hips in the camera frame (NaN
    where unknown); vis: (N, 33); fps: frames per second; rest_hips: (3,) rest hips position.
    """
    n = len(q)
    root = _horizontal_root(cam_t)
    root[:, 1] = _floor_height(skel, q, vis, rest_hips)
    if n > 1:
        everything = np.ones(n, bool)
        root[:, [0, 2]] = _savgol_runs(root[:, [0, 2]], everything, fps, ROOT_WINDOW_S, ROOT_ORDER)
        # The height comes from the already smoothed pose: filter it only lightly, so the feet
        # keep touching the floor.
        root[:, 1] = _savgol_runs(root[:, 1], everything, fps, LANDMARK_WINDOW_S, LANDMARK_ORDER)
    if valid.any():
        if not valid.all():
            root = _hold(root, valid)  # frames without a body hold the last solved pose
        root[:, [0, 2]] -= root[np.flatnonzero(valid)[0], [0, 2]]  # start at X = Z = 0
    return root

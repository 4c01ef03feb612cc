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

Then the planted feet (pipeline.body.feet) move it: `root_height_on_feet` stands the planted feet
on the floor, `root_path_on_feet` makes the X/Z follow them (one camera), `lean_to_clear` leans the
body about a planted ankle to lift the other foot out of the floor (arrays in, arrays out: root
(N, 3) or its parts, metres, glTF world).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.conditioning import VIS_HI, VIS_LO
from pipeline.body.filters import LANDMARK_ORDER, LANDMARK_WINDOW_S, _hold, _savgol_runs
from pipeline.body.kinematics import forward_kinematics
from pipeline.body.landmarks import inside_image
from pipeline.body.rotations import MP_TO_GLTF, _ramp
from pipeline.body.skeleton import Skeleton
from pipeline.core.chunks import per_frame_chunks
from pipeline.core.tracks import POSE

CAMERA_VFOV_DEG = 63.0           # MediaPipe face geometry's virtual camera
FIT_MIN_VISIBILITY = 0.5         # landmarks used to place the hips in the camera: at least this visible
FIT_MIN_LANDMARKS = 4            # fewer usable landmarks: no camera translation (NaN)
MIN_CAMERA_DEPTH_M = 0.1         # a fit this close to the camera (or behind it) has failed
ROOT_WINDOW_S = 0.5              # Savitzky-Golay window of the root's X/Z, seconds
ROOT_ORDER = 2                   # ... and its polynomial order (quadratic)


def camera_focal_px(image_size: tuple[int, int]) -> float:
    """Focal length in pixels of MediaPipe's virtual camera (vertical field of view 63 degrees) for
    an image of image_size (width, height) pixels."""
    return 0.5 * image_size[1] / np.tan(np.radians(CAMERA_VFOV_DEG) / 2)


def camera_translation(image_size: tuple[int, int], image: np.ndarray, world_mp: np.ndarray,
                       vis: np.ndarray) -> np.ndarray:
    """(N, 3) hips position in MediaPipe's camera frame (x right, y down, z forward, metres).

    image: (N, 33, 3) normalised image landmarks; world_mp: (N, 33, 3) world landmarks
    (MediaPipe frame); vis: (N, 33).

    Linear least squares per frame for the translation t such that the pinhole projection of
    (world landmark + t) hits the image landmark, with MediaPipe's virtual camera (vertical field
    of view 63 degrees, principal point at the image centre). Landmarks must be visible (>= 0.5)
    and inside the image; NaN where fewer than 4 are. Each frame on its own, in chunks of frames.
    """
    return per_frame_chunks(lambda *a: _camera_translation_chunk(image_size, *a), image, world_mp, vis)


def _camera_translation_chunk(image_size: tuple[int, int], image: np.ndarray, world_mp: np.ndarray,
                              vis: np.ndarray) -> np.ndarray:
    """camera_translation on one chunk of frames."""
    width, height = image_size
    focal_px = camera_focal_px(image_size)
    cx, cy = 0.5 * width, 0.5 * height
    u = image[..., 0] * width
    v = image[..., 1] * height
    wx, wy, wz = (world_mp[..., k] for k in range(3))
    inside = inside_image(image)
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


def root_height_on_feet(root_y: np.ndarray, ankle_rel_y: np.ndarray, contact: np.ndarray,
                        ankle_height_m: float, fps: float) -> np.ndarray:
    """(N,) hips height that stands the feet in contact flat on the floor.

    root_y: (N,) the solve's hips height (metres); ankle_rel_y: (N, F) height of each of F ankles
    relative to the hips (world, metres); contact: (N, F) bool, the foot is planted; ankle_height_m:
    the ankle joint above the sole of a flat foot. In frames with a contact, the hips are placed so
    that the lowest planted ankle is at ankle_height_m (a higher planted ankle rises on the ball of
    its foot); the change from root_y is interpolated across frames without contact (held at the
    ends) and smoothed with the landmark filter, so switching between feet never pops.
    """
    any_contact = contact.any(axis=1)
    if not any_contact.any():
        return root_y.copy()
    lowest = np.where(contact, ankle_rel_y, np.inf).min(axis=1)
    delta = np.full(len(root_y), np.nan)
    delta[any_contact] = ankle_height_m - lowest[any_contact] - root_y[any_contact]
    idx = np.arange(len(root_y))
    delta = np.interp(idx, idx[any_contact], delta[any_contact])
    if len(delta) > 1:
        delta = _savgol_runs(delta, np.ones(len(delta), bool), fps, LANDMARK_WINDOW_S, LANDMARK_ORDER)
    return root_y + delta


def root_path_on_feet(root_xz: np.ndarray, ball_rel_xz: np.ndarray, weight: np.ndarray, fps: float) -> np.ndarray:
    """(N, 2) hips X/Z that follow the planted feet.

    root_xz: (N, 2) the solve's hips X/Z (from the camera or the triangulation, metres);
    ball_rel_xz: (N, F, 2) where each of F planted feet's ball sits relative to the hips (world,
    metres; for a heel that rises, the ball the foot pivots on); weight: (N, F) in [0, 1], how far
    each foot holds the root in frame t (it must be planted in frames t - 1 and t).

    The path is integrated frame to frame: its velocity is the one that keeps the planted balls
    still (a weighted mean over feet, weights summing to at most 1) blended with the solve's
    velocity for the rest of the weight. Velocities, not positions, are blended, so a contact that
    starts or ends never makes the root jump. The path starts where the solve's does and gets the
    root's filter (ROOT_WINDOW_S at fps frames per second), so the legs' frame-to-frame noise stays
    in the legs (the planted feet's IK) rather than shaking the whole body. No weight in any frame:
    the solve's path, unchanged.
    """
    if not np.any(weight > 0):
        return root_xz.copy()
    v_solve = np.diff(root_xz, axis=0)
    v_feet = -np.diff(ball_rel_xz, axis=0)              # (N - 1, F, 2)
    w = weight[1:] / np.maximum(weight[1:].sum(axis=1, keepdims=True), 1.0)
    v = (1.0 - w.sum(axis=1))[:, None] * v_solve + np.einsum("nf,nfc->nc", w, v_feet)
    path = root_xz[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(v, axis=0)])
    # The root's own filter: the legs' IK takes up what it smooths away.
    return _savgol_runs(path, np.ones(len(path), bool), fps, ROOT_WINDOW_S, ROOT_ORDER)


def lean_to_clear(pivot: np.ndarray, point: np.ndarray, weight: np.ndarray, max_lean_rad: float) -> Rotation:
    """(N) rotations of the whole body about pivot (N, 3) (a planted ankle, world metres) that lift
    point (N, 3) (the lowest sole point of the other, swinging foot) up to the floor Y = 0.

    The body leans toward the swinging foot about the horizontal axis across the line from the
    pivot to it; by the smallest angle that lifts the point to the floor, at most max_lean_rad,
    times weight (N,) in [0, 1]; no lean where the point is above the floor or straight below the
    pivot. Rotating the body as a whole keeps its pose: one camera's depth can put a leg lifted to
    the side below the standing foot when the body leans more than the solve says (Pose2Sim cam01).
    """
    rel = point - pivot
    out = np.hypot(rel[:, 0], rel[:, 2])
    toward = np.stack([rel[:, 0], np.zeros(len(rel)), rel[:, 2]], axis=1) / np.maximum(out, 1e-9)[:, None]
    axis = np.cross(toward, [0.0, 1.0, 0.0])  # turning about it raises `toward`
    # Height after a lean a: pivot_y + out sin(a) + rel_y cos(a) = 0 -> amplitude sin(a + phase) = -pivot_y.
    amplitude, phase = np.hypot(out, rel[:, 1]), np.arctan2(rel[:, 1], out)
    with np.errstate(invalid="ignore"):
        lean = np.arcsin(np.clip(-pivot[:, 1] / np.maximum(amplitude, 1e-9), -1.0, 1.0)) - phase
    lean = np.where((point[:, 1] < 0) & (out > 1e-6), np.clip(lean, 0.0, max_lean_rad), 0.0) * weight
    return Rotation.from_rotvec(axis * lean[:, None])

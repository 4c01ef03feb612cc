"""Synthetic multi-camera scenes with known cameras, for the calibration and triangulation tests
and the triangulation benchmark.

`rig()` places cameras on a circle looking at the middle of the room (world Z up, metres, floor
Z = 0); `render_board_view` draws a printed board at a known pose through a camera's full model
(distortion included) by inverse mapping every pixel onto the board plane, so board detection,
intrinsics and bundle adjustment are tested on pixels, not on projected points.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.multicam.calibration import Calibration, Camera
from pipeline.multicam.calibration_board import BoardSpec


def look_at(centre: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) world -> camera (OpenCV axes) of a camera at `centre` looking at `target`."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ centre


def rig(n: int = 4, radius: float = 2.5, height: float = 2.0, size=(1280, 720), f: float = 1000.0,
        dist=(-0.12, 0.06, 0.0005, -0.0003), arc_deg: float = 180.0, seed: int = 0) -> Calibration:
    """n cameras spread evenly over an arc of `arc_deg` around the room's middle (centred on -Y)."""
    rng = np.random.default_rng(seed)
    cams = []
    for i in range(n):
        a = -np.pi / 2 + np.radians(arc_deg) * ((i + 0.5) / n - 0.5) + rng.uniform(-0.1, 0.1)
        centre = np.array([radius * np.cos(a), radius * np.sin(a), height + rng.uniform(-0.3, 0.3)])
        R, t = look_at(centre, np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, 3))
        fx = f * (1 + rng.uniform(-0.05, 0.05))
        K = np.array([[fx, 0, size[0] / 2 + rng.uniform(-15, 15)],
                      [0, fx * (1 + rng.uniform(-0.002, 0.002)), size[1] / 2 + rng.uniform(-15, 15)],
                      [0, 0, 1]])
        cams.append(Camera(f"cam{i + 1}", size, K, np.array(dist, float) * (1 + rng.uniform(-0.2, 0.2, 4)), R, t))
    return Calibration(cams, np.array([0.0, 0.0, 1.0]), True)


class BoardRenderer:
    """Renders `board` (ChArUco or checkerboard) at board -> world poses into the cameras."""

    def __init__(self, board: BoardSpec, px_per_square: int = 80):
        self.board = board
        self.pps = px_per_square
        self.img = board.image(px_per_square)
        # board metres -> board image pixels: ChArUco's image starts at the board's outer corner;
        # the checkerboard picture has one square of margin before its first square, and its
        # corner 0 (the board frame's origin) one square further.
        self.offset_px = 0.0 if board.kind == "charuco" else 2 * px_per_square
        self._rays: dict[int, np.ndarray] = {}

    def _camera_rays(self, cam: Camera) -> np.ndarray:
        key = id(cam)
        if key not in self._rays:
            w, h = cam.size
            uv = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 2).astype(np.float64)
            xy = cam.undistort(uv)
            self._rays[key] = np.c_[xy, np.ones(len(xy))].reshape(h, w, 3)
        return self._rays[key]

    def render(self, cam: Camera, R_wb: np.ndarray, t_wb: np.ndarray, rng=None,
               noise: float = 2.0, blur: float = 0.6) -> np.ndarray:
        """Grey image of the board with pose board -> world (R_wb, t_wb) seen by `cam`; blank
        (mid grey plus noise) where the board is not, and when its back faces the camera."""
        rng = rng or np.random.default_rng(0)
        w, h = cam.size
        R = cam.R @ R_wb                  # board -> camera
        t = cam.R @ t_wb + cam.t
        out = np.full((h, w), 110.0, np.float32)
        if (R[:, 2] @ -t) > 0:            # the board's +Z (into it) points toward the camera: its back
            return self._finish(out, rng, noise, blur)
        rays = self._camera_rays(cam)
        Rt_r = rays @ R                   # R^T r for every pixel
        Rt_t = R.T @ t
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = Rt_t[2] / Rt_r[..., 2]
        Xb = lam[..., None] * Rt_r - Rt_t
        mx = (Xb[..., 0] / self.board.square_m * self.pps + self.offset_px - 0.5).astype(np.float32)
        my = (Xb[..., 1] / self.board.square_m * self.pps + self.offset_px - 0.5).astype(np.float32)
        front = lam > 0
        mx[~front] = -1e6
        warped = cv2.remap(self.img, mx, my, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        inside = (mx >= 0) & (my >= 0) & (mx <= self.img.shape[1] - 1) & (my <= self.img.shape[0] - 1)
        out[inside] = warped[inside]
        return self._finish(out, rng, noise, blur)

    @staticmethod
    def _finish(img, rng, noise, blur):
        if blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        img = img + rng.normal(0, noise, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)


def board_poses(n: int, board: BoardSpec, calib: Calibration, seed: int = 1,
                floor_first: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """n board -> world poses: the first lying face up on the floor with its middle at the world
    origin (when floor_first), the others held up around the middle of the room, each turned
    toward a point between two random cameras."""
    rng = np.random.default_rng(seed)
    centre = board.centre_m()
    poses = []
    if floor_first:
        R = np.diag([1.0, -1.0, -1.0])  # board +Z into the floor, its X along world X
        poses.append((R, -R @ centre))
    cams = calib.cameras
    while len(poses) < n:
        if rng.uniform() < 0.4:  # close to one camera, filling its image (its intrinsics)
            a = rng.integers(len(cams))
            target = cams[a].centre_m
            room = np.array([0.0, 0.0, 1.2])
            pos = room + rng.uniform(0.45, 0.65) * (target - room) + rng.normal(0, 0.15, 3)
        else:                    # in the middle, between two cameras (their relative pose)
            a, b = rng.choice(len(cams), 2, replace=False) if len(cams) > 1 else (0, 0)
            target = 0.5 * (cams[a].centre_m + cams[b].centre_m)
            pos = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.7, 1.6)])
        # board +Z (into it) points away from the camera it faces, tilted up to 40 degrees
        z = pos - target
        z /= np.linalg.norm(z)
        tilt = Rotation.from_rotvec(rng.normal(0, 1, 3) * np.radians(20))
        z = tilt.apply(z)
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z], axis=1)
        R = R @ Rotation.from_rotvec([0, 0, rng.uniform(-0.4, 0.4)]).as_matrix()  # spin in its plane
        poses.append((R, pos - R @ centre))
    return poses

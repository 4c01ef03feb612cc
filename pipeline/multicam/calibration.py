"""The calibration of a set of cameras: the artifact, and the files it moves in.

Holds the types (`Camera`: intrinsics, distortion and pose, with projection and undistortion;
`Calibration`: cameras sharing one world) and their files (anipose / Pose2Sim TOML, Qualisys
.qca.txt). Not to be confused with: pipeline.multicam.calibration_solver (computes a Calibration
from board detections), calibration_board (the board: spec, detection, printable page), board_views
(frames of videos, images or cameras -> board detections) and calibration_job (the whole
`python -m pipeline.calibrate` run).

Frames and units (every array below):
  * World: metres, right-handed. Calibrations made here (`python -m pipeline.calibrate`) and
    Qualisys / Pose2Sim ones are Z up with the floor at Z = 0; `Calibration.up` says which world
    direction is up, or is None when the file does not say (an anipose calibration is usually in
    its first camera's frame). Conversion to glTF's Y up happens downstream, in pipeline.multicam.fusion.
  * Camera (OpenCV): x right, y down, z forward along the optical axis, metres;
    x_cam = R @ x_world + t.
  * Pixels: (u, v) with (0, 0) the centre of the top-left pixel, u right, v down.

File formats:
  * TOML as written by anipose (aniposelib `CameraGroup.dump`) and Pose2Sim: one table per camera
    with `name`, `size` [w, h], `matrix` (K), `distortions` (OpenCV order k1 k2 p1 p2 [k3], or
    k1..k4 when `fisheye`), `rotation` (Rodrigues vector, world -> camera), `translation`
    (metres), `fisheye`; then `[metadata]`. Our extra keys live in `[metadata]` only, prefixed
    `dhcap_`, so both tools still read the files we write.
  * Qualisys `.qca.txt` (XML), read as Pose2Sim's `calib_qca_fun` does (pixel values in 1/64
    sub-pixels, the camera looking down its -Z, positions in mm), except the distortion
    coefficients, which Pose2Sim also divides by 64: a checkerboard calibration of the same cameras
    (tests/test_calibration.py) recovers the undivided values (k1 -0.037..-0.052 against the file's
    -0.046..-0.048, k2 about 0.14 against 0.135..0.140; divided by 64 they would be 0.0007, 0.002).
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tomllib

from pipeline.core.atomic import write_text
from pipeline.core.errors import InputError, PipelineError

MIN_DEPTH_M = 1e-6            # metres: points nearer a camera than this are not in front of it
UNDISTORT_ITERATIONS, UNDISTORT_EPS = 20, 1e-10  # more than undistortPoints' default 5, for wide lenses
SIZE_TOLERANCE_PX = 16        # a video this many pixels off its calibration's size is the same pixels, cropped
ASPECT_TOLERANCE = 0.01       # relative: a resized recording keeps its calibration's aspect ratio within this
ORIGIN_ATOL = 1e-9            # a camera whose R and t are this close to I and 0 is the world's origin
MM_PER_M = 1000.0
MIN_CAMERA_DISTANCE_M = 1e-9  # metres from the origin: nearer, a Qualisys residual has no pixel scale


class CalibrationError(PipelineError):
    """The cameras could not be calibrated from what was recorded (board unseen, too few views,
    cameras never seeing the board together); the message says what to record again."""

    exit_code = 6


@dataclass(eq=False)
class Camera:
    """One calibrated camera.

    name:     label (matches a video's file stem when possible, e.g. "cam01").
    size:     (width, height) of its images, pixels.
    K:        (3, 3) float64 intrinsic matrix, pixels.
    dist:     (n,) float64 distortion, OpenCV order: k1 k2 p1 p2 [k3 ...]; fisheye: k1 k2 k3 k4.
    R:        (3, 3) float64 rotation world -> camera.
    t:        (3,) float64 translation world -> camera, metres.
    fisheye:  OpenCV's fisheye model instead of the pinhole + Brown-Conrady one.
    error_px: RMS reprojection error of the calibration that produced it (NaN if unknown).
    """

    name: str
    size: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))
    fisheye: bool = False
    error_px: float = float("nan")

    def __post_init__(self):
        self.size = (int(self.size[0]), int(self.size[1]))
        self.K = np.asarray(self.K, np.float64).reshape(3, 3)
        self.dist = np.asarray(self.dist, np.float64).ravel()
        self.R = np.asarray(self.R, np.float64).reshape(3, 3)
        self.t = np.asarray(self.t, np.float64).ravel()

    @property
    def rvec(self) -> np.ndarray:
        return cv2.Rodrigues(self.R)[0].ravel()

    @property
    def centre_m(self) -> np.ndarray:
        """(3,) position of the optical centre in the world, metres."""
        return -self.R.T @ self.t

    @property
    def Rt(self) -> np.ndarray:
        """(3, 4) [R | t]: world -> camera, the projection matrix in normalised coordinates."""
        return np.c_[self.R, self.t]

    def to_camera(self, X: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) camera frame."""
        return np.asarray(X, np.float64) @ self.R.T + self.t

    def project(self, X: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 2) pixels, with distortion; NaN for non-finite points and
        points not in front of the camera."""
        X = np.asarray(X, np.float64)
        shape = X.shape[:-1]
        P = X.reshape(-1, 3)
        ok = np.isfinite(P).all(1)
        ok[ok] = self.to_camera(P[ok])[:, 2] > MIN_DEPTH_M
        out = np.full((len(P), 2), np.nan)
        if ok.any():
            pts = P[ok].reshape(-1, 1, 3)
            if self.fisheye:
                uv = cv2.fisheye.projectPoints(pts, self.rvec, self.t, self.K, self.dist[:4])[0]
            else:
                uv = cv2.projectPoints(pts, self.rvec, self.t, self.K, self.dist)[0]
            out[ok] = uv.reshape(-1, 2)
        return out.reshape(*shape, 2)

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) normalised image coordinates (x/z, y/z) without distortion;
        NaN stays NaN."""
        uv = np.asarray(uv, np.float64)
        shape = uv.shape[:-1]
        p = uv.reshape(-1, 2)
        ok = np.isfinite(p).all(1)
        out = np.full_like(p, np.nan)
        if ok.any():
            src = p[ok].reshape(-1, 1, 2)
            if self.fisheye:
                n = cv2.fisheye.undistortPoints(src, self.K, self.dist[:4])
            elif not self.dist.any():
                n = (src - self.K[:2, 2]) / np.diag(self.K)[:2]
            else:  # more iterations than undistortPoints' default 5, for wide lenses
                n = cv2.undistortPoints(src, self.K, self.dist, None, None, None,
                                        (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, UNDISTORT_ITERATIONS,
                                         UNDISTORT_EPS))
            out[ok] = n.reshape(-1, 2)
        return out.reshape(*shape, 2)

    def focal_px(self) -> float:
        return float(0.5 * (self.K[0, 0] + self.K[1, 1]))

    def for_size(self, size: tuple[int, int], tolerance_px: int = SIZE_TOLERANCE_PX) -> "Camera":
        """This camera for images of `size`: itself when the size is within tolerance_px (e.g. a
        1080-pixel video of a 1088-pixel calibration: the same pixels, cropped), scaled when the
        images are the calibrated ones resized (same aspect ratio, as Pose2Sim's binning); None
        otherwise."""
        w, h = size
        cw, ch = self.size
        if abs(w - cw) <= tolerance_px and abs(h - ch) <= tolerance_px:
            return self
        s = w / cw
        if abs(h / ch - s) > ASPECT_TOLERANCE * s:
            return None
        K = self.K.copy()
        K[:2, :2] *= s
        K[:2, 2] = (K[:2, 2] + 0.5) * s - 0.5  # pixel centres: (0, 0) is the first pixel's middle
        return Camera(self.name, (w, h), K, self.dist.copy(), self.R.copy(), self.t.copy(), self.fisheye,
                      self.error_px * s)


@dataclass(eq=False)
class Calibration:
    """Cameras sharing one world frame (see the module docstring).

    cameras:  in file order.
    up:       (3,) unit vector, the world's up direction; None when unknown.
    floor:    the world's Z = 0 plane is the floor (calibrated from a board lying on it).
    metadata: free-form, written to the TOML's [metadata] table (error, board, date, ...).
    """

    cameras: list[Camera]
    up: np.ndarray | None = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    floor: bool = False
    metadata: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def __len__(self) -> int:
        return len(self.cameras)

    def camera(self, name: str) -> Camera:
        for c in self.cameras:
            if c.name == name:
                return c
        raise KeyError(name)

    def match(self, labels: list[str]) -> list[int]:
        """Index of the camera for each video label (file stem): by name when every label names a
        camera, else by order. InputError when the counts differ."""
        names = self.names
        if all(lb in names for lb in labels) and len(set(labels)) == len(labels):
            return [names.index(lb) for lb in labels]
        if len(labels) != len(names):
            raise InputError(f"{len(labels)} videos but the calibration has {len(names)} cameras "
                             f"({', '.join(names)}); name the videos after the cameras or give one "
                             f"video per camera, in order")
        return list(range(len(labels)))


# ---------------------------------------------------------------------------------------------
# TOML (anipose / Pose2Sim)

_NOT_CAMERAS = {"metadata", "capture_volume", "charuco", "checkerboard"}


def _fmt(x) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)
    if isinstance(x, str):
        return '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(x, (list, tuple, np.ndarray)):
        return "[ " + ", ".join(_fmt(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)) + "]"
    raise TypeError(f"cannot write {type(x).__name__} to TOML")


def save_toml(calib: Calibration, path: str | Path) -> None:
    """Write `calib` in the anipose / Pose2Sim TOML format (atomically)."""
    lines = []
    width = max(1, len(str(len(calib.cameras))))
    for i, c in enumerate(calib.cameras, start=1):
        lines += [f"[cam_{i:0{width}d}]",
                  f"name = {_fmt(c.name)}",
                  f"size = {_fmt([float(c.size[0]), float(c.size[1])])}",
                  f"matrix = {_fmt(c.K)}",
                  f"distortions = {_fmt(c.dist)}",
                  f"rotation = {_fmt(c.rvec)}",
                  f"translation = {_fmt(c.t)}",
                  f"fisheye = {_fmt(c.fisheye)}", ""]
    errs = [c.error_px for c in calib.cameras]
    meta = {"adjusted": bool(calib.metadata.get("adjusted", False)),
            "error": float(np.nanmean(errs)) if np.isfinite(errs).any() else 0.0,
            "dhcap_units": "m",
            "dhcap_floor": bool(calib.floor)}
    if calib.up is not None:
        meta["dhcap_up"] = [float(v) for v in calib.up]
    if np.isfinite(errs).any():
        meta["dhcap_errors_px"] = [float(e) if np.isfinite(e) else -1.0 for e in errs]
    for k, v in calib.metadata.items():
        if k not in meta and isinstance(v, (bool, int, float, str, list, tuple)):
            meta[k] = v
    lines.append("[metadata]")
    lines += [f"{k} = {_fmt(v)}" for k, v in meta.items()]
    write_text(path, "\n".join(lines) + "\n")  # atomic; OutputError naming the file when refused


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def load_toml(path: str | Path) -> Calibration:
    """Read an anipose / Pose2Sim TOML calibration; InputError (one line) when it is not one."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such calibration file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read the calibration ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{p}: not a valid TOML calibration ({e})") from None
    cams = []
    for key, tab in data.items():
        if key in _NOT_CAMERAS or not isinstance(tab, dict):
            continue
        try:
            size = [float(v) for v in tab["size"]]
            K = np.array(tab["matrix"], np.float64)
            dist = np.array(tab.get("distortions", [0.0, 0.0, 0.0, 0.0]), np.float64)
            rvec = np.array(tab["rotation"], np.float64).ravel()
            t = np.array(tab["translation"], np.float64).ravel()
            if K.shape != (3, 3) or rvec.shape != (3,) or t.shape != (3,) or len(size) != 2:
                raise ValueError("wrong shapes")
            if not (np.isfinite(K).all() and np.isfinite(rvec).all() and np.isfinite(t).all()):
                raise ValueError("non-finite values")
            if K[0, 0] <= 0 or K[1, 1] <= 0 or min(size) <= 0:
                raise ValueError("focal length and image size must be positive")
        except KeyError as e:
            raise InputError(f"{p}: camera [{key}] has no {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise InputError(f"{p}: camera [{key}] is malformed ({e})") from None
        cams.append(Camera(str(tab.get("name", key)), (round(size[0]), round(size[1])), K, dist,
                           cv2.Rodrigues(rvec)[0], t, bool(tab.get("fisheye", False))))
    if not cams:
        raise InputError(f"{p}: no cameras in this calibration file")
    meta = dict(data.get("metadata", {})) if isinstance(data.get("metadata"), dict) else {}
    errs = meta.get("dhcap_errors_px")
    if isinstance(errs, list) and len(errs) == len(cams):
        for c, e in zip(cams, errs):
            c.error_px = float(e) if e >= 0 else float("nan")
    up = meta.get("dhcap_up")
    if up is not None:
        up = np.asarray(up, np.float64)
        up = up / np.linalg.norm(up)
    elif "dhcap_units" in meta or not _looks_like_pose2sim(cams):
        up = None  # ours without a floor, or anipose: the world is a camera's frame
    else:
        up = np.array([0.0, 0.0, 1.0])  # Pose2Sim's convention
    return Calibration(cams, up, bool(meta.get("dhcap_floor", False)), meta)


def _looks_like_pose2sim(cams: list[Camera]) -> bool:
    # Pose2Sim writes its calibrations in a Z-up lab frame: no camera sits at the origin. Anipose's
    # world is one camera's frame: that camera has R = I and t = 0.
    return not any(np.allclose(c.R, np.eye(3), atol=ORIGIN_ATOL) and np.allclose(c.t, 0, atol=ORIGIN_ATOL)
                   for c in cams)


# ---------------------------------------------------------------------------------------------
# Qualisys

QUALISYS_SUBPIXELS = 64  # Qualisys expresses pixel quantities in 1/64 sub-pixels


# OpenCV's camera is Qualisys' (looking down its -Z, its Y up) turned half a turn about X.
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def _qca_camera(tag: ET.Element, name: str, binning: int, path: Path) -> Camera:
    """One video camera of a Qualisys calibration (see load_qca); InputError when malformed."""
    try:
        fov = tag.find("fov_video").attrib
        intrinsic = tag.find("intrinsic").attrib
        transform = tag.find("transform").attrib

        def value(key: str, intrinsic=intrinsic) -> float:
            return float(intrinsic[key])
        left, top = float(fov["left"]), float(fov["top"])
        width = (float(fov["right"]) - left + 1) / binning
        height = (float(fov["bottom"]) - top + 1) / binning
        scale = QUALISYS_SUBPIXELS * binning
        K = np.array([[value("focalLengthU") / scale, value("skew") / scale if "skew" in intrinsic else 0.0,
                       value("centerPointU") / scale - left],
                      [0.0, value("focalLengthV") / scale, value("centerPointV") / scale - top],
                      [0.0, 0.0, 1.0]])
        dist = np.array([value("radialDistortion1"), value("radialDistortion2"),
                         value("tangentalDistortion1"), value("tangentalDistortion2"),
                         value("radialDistortion3") if "radialDistortion3" in intrinsic else 0.0])
        axes = np.array([[float(transform[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
        position = np.array([float(transform[k]) for k in "xyz"]) / MM_PER_M
    except (AttributeError, KeyError, ValueError) as e:
        raise InputError(f"{path}: camera {name} is malformed ({e!r})") from None
    # Qualisys: rows of `axes` are the camera's axes in the world.
    R = QUALISYS_TO_OPENCV @ axes
    t = -R @ position
    u, _, vt = np.linalg.svd(R)  # the file's 16 digits are orthonormal to ~1e-9; make it exact
    R = u @ vt
    # Qualisys reports its residual in mm; in pixels at the camera's distance, as Pose2Sim does.
    residual_mm = float(tag.attrib.get("avg-residual", "nan"))
    error_px = residual_mm / MM_PER_M * K[0, 0] / max(float(np.linalg.norm(position)), MIN_CAMERA_DISTANCE_M)
    return Camera(name, (round(width), round(height)), K, dist, R, t, False, error_px)


def load_qca(path: str | Path, binning: int = 1) -> Calibration:
    """Read a Qualisys `.qca.txt` calibration (video cameras only), Z up, metres.

    binning: 2 when the video was recorded binned (e.g. 540p on a 1080p sensor), as in Pose2Sim.
    """
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except FileNotFoundError:
        raise InputError(f"{p}: no such calibration file") from None
    except (OSError, ET.ParseError) as e:
        raise InputError(f"{p}: not a valid Qualisys calibration ({e})") from None
    cams = []
    for tag in root.findall("cameras/camera"):
        model = tag.attrib.get("model", "").lower()
        if not any(m in model for m in ("video", "none")):
            continue  # marker (infrared) cameras: not ours
        name = tag.attrib.get("serial", f"cam{len(cams) + 1}")
        cams.append(_qca_camera(tag, name, binning, p))
    if not cams:
        raise InputError(f"{p}: no video cameras in this Qualisys calibration")
    cams.sort(key=lambda c: _natural_key(c.name))
    return Calibration(cams, np.array([0.0, 0.0, 1.0]), False, {"source": f"qualisys {p.name}"})


def load_calibration(path: str | Path) -> Calibration:
    """A calibration file by its kind: anipose/Pose2Sim `.toml` or Qualisys `.qca.txt`."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such calibration file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a calibration file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: calibration file is empty (0 bytes)")
    head = p.read_bytes()[:256].lstrip()
    if p.name.lower().endswith((".qca.txt", ".qca", ".xml")) or head.startswith(b"<"):
        return load_qca(p)
    return load_toml(p)

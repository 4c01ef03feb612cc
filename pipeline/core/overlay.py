"""Landmark and blendshape overlays drawn on pictures (the session preview, the live preview).

`draw_landmarks(frame, face, pose, visibility)`: a copy of a BGR frame with MediaPipe's face
landmarks (dots) and pose skeleton (lines), from normalised image coordinates (x, y in 0..1);
`blendshape_bars(scores, names)`: the strongest blendshape scores (0..1) as bars, a BGR picture.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.core.tracks import POSE

POSE_BONES = [(POSE[a], POSE[b]) for a, b in [
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_ankle", "left_foot_index"), ("right_ankle", "right_foot_index")]]
PX_PER_DOT_RADIUS = 400    # pixels of the frame's shorter side per pixel of landmark dot radius (at least 1)
MIN_BONE_VISIBILITY = 0.5  # MediaPipe visibility (0..1) of both ends of a pose bone for it to be drawn


def draw_landmarks(frame_bgr: np.ndarray, face_landmarks=None, pose_image=None,
                   pose_visibility=None) -> np.ndarray:
    """Copy of the frame with face landmarks (dots) and the pose skeleton (lines) drawn on it.
    Coordinates are MediaPipe normalised image coordinates."""
    img = frame_bgr.copy()
    h, w = img.shape[:2]
    r = max(1, int(round(min(w, h) / PX_PER_DOT_RADIUS)))
    if pose_image is not None and np.isfinite(pose_image).all():
        p = (pose_image[:, :2] * (w, h)).astype(int)
        vis = np.ones(len(p)) if pose_visibility is None else pose_visibility
        for a, b in POSE_BONES:
            if vis[a] > MIN_BONE_VISIBILITY and vis[b] > MIN_BONE_VISIBILITY:
                cv2.line(img, tuple(p[a]), tuple(p[b]), (80, 200, 255), 2 * r, cv2.LINE_AA)
    if face_landmarks is not None and np.isfinite(face_landmarks).all():
        for x, y in (face_landmarks[:, :2] * (w, h)).astype(int):
            cv2.circle(img, (int(x), int(y)), r, (120, 255, 120), -1, cv2.LINE_AA)
    return img


def blendshape_bars(scores: np.ndarray, names, size=(220, 480), top: int = 16) -> np.ndarray:
    """The `top` strongest blendshape scores as horizontal bars, (H, W, 3) BGR."""
    w, h = size
    img = np.full((h, w, 3), 30, np.uint8)
    s = np.nan_to_num(np.asarray(scores, np.float64))
    order = np.argsort(-s)[:top]
    row = h / top
    for i, k in enumerate(order):
        y = int(i * row)
        cv2.rectangle(img, (110, y + 3), (110 + int((w - 115) * s[k]), int(y + row - 3)), (90, 180, 250), -1)
        cv2.putText(img, str(names[k])[:16], (3, int(y + row * 0.7)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.38, (230, 230, 230), 1, cv2.LINE_AA)
    return img

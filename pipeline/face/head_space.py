"""Face landmarks lifted from the image into metric canonical face space ("head space").

MediaPipe gives, per frame, 478 landmarks in normalised image coordinates (x, y and a relative
depth z in units of image width) and a rigid transform M from canonical face space (cm) to a
virtual perspective camera (vertical field of view 63 degrees, looking down -Z). We unproject the
landmarks through that same camera and take them back through M^-1: the result is the subject's
face, with its expression, in the head's own frame (+Y up, +Z out of the face, metres), free of
head motion. Expression rigs are fitted on these points.

A face tracked on a crop around the head (`Tracks.face_crop_px`, pipeline.tracking.head_crop) is
unprojected in that crop, as MediaPipe saw it: its landmarks back in crop coordinates, its matrix
back in the crop's virtual camera, the crop's (square) size.
"""
from __future__ import annotations

import numpy as np

from pipeline.core.tracks import Tracks
from pipeline.face.canonical import load_canonical_face
from pipeline.tracking.head_crop import MEDIAPIPE_VERTICAL_FOV_DEG, frame_to_crop_landmarks, frame_to_crop_matrix

__all__ = ["MEDIAPIPE_VERTICAL_FOV_DEG", "face_points_m", "unproject_landmarks"]


def unproject_landmarks(landmarks: np.ndarray, matrix: np.ndarray, image_size, crop_px=None) -> np.ndarray:
    """One frame: (478, 3) normalised landmarks + (4, 4) face matrix -> (478, 3) face space, metres.

    Depth: MediaPipe's z is relative and its scale is not documented, so per frame we fit
    camera depth = a + b * z on the 468 mesh landmarks against the depths of the canonical mesh
    placed by M, then unproject x, y at that depth. crop_px: the frame's (3,) head crop
    [x0, y0, side] px when the face was tracked in one (NaN or None: the whole frame).
    """
    if crop_px is not None and np.isfinite(crop_px).all():
        landmarks = frame_to_crop_landmarks(landmarks, crop_px, image_size)
        matrix = frame_to_crop_matrix(matrix, crop_px, image_size)
        image_size = (crop_px[2], crop_px[2])
    w, h = image_size
    m = matrix.astype(np.float64)
    canon_cm = load_canonical_face().vertices_m * 100.0
    cam_depth = canon_cm @ m[2, :3] + m[2, 3]  # camera Z of the canonical mesh placed by M
    z = landmarks[:, 2].astype(np.float64)
    a, b = np.linalg.lstsq(np.c_[np.ones(468), z[:468]], cam_depth, rcond=None)[0]
    depth = a + b * z  # negative: in front of the camera
    t = np.tan(np.radians(MEDIAPIPE_VERTICAL_FOV_DEG) / 2)
    x_ndc = 2 * landmarks[:, 0].astype(np.float64) - 1
    y_ndc = 1 - 2 * landmarks[:, 1].astype(np.float64)
    cam = np.stack([x_ndc * -depth * t * (w / h), y_ndc * -depth * t, depth], axis=1)
    face_cm = (cam - m[:3, 3]) @ m[:3, :3]  # R^T (p - t), R orthonormal
    return face_cm / 100.0


def face_points_m(tracks: Tracks, frames: np.ndarray | None = None) -> np.ndarray:
    """(N, 478, 3) landmarks in canonical face space, metres; NaN where the face is not valid.
    frames: only these frame indices (n,) -> (n, 478, 3)."""
    frames = np.arange(tracks.n_frames) if frames is None else np.asarray(frames, int)
    out = np.full((len(frames), tracks.face_landmarks.shape[1], 3), np.nan)
    crops = tracks.face_crop_px
    for k in np.flatnonzero(tracks.face_valid[frames]):
        i = frames[k]
        out[k] = unproject_landmarks(tracks.face_landmarks[i], tracks.face_matrix[i], tracks.image_size,
                                     None if crops is None else crops[i])
    return out

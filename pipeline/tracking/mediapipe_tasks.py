"""MediaPipe Tasks landmarkers, configured in one place: the face, pose and hand landmarkers in
VIDEO mode (a take, frame after frame, `pipeline.tracking.tracker`) or IMAGE mode (single
pictures: photos, the head texture's chosen frames).

Models come from `pipeline.core.assets` (checksummed before use). Only this module imports
mediapipe, so the log levels below are set before MediaPipe's native libraries load.
"""
from __future__ import annotations

import os
from functools import lru_cache

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log noise ("Sparsity tensors ...")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import mediapipe as mp  # noqa: E402
import numpy as np  # noqa: E402
from mediapipe.tasks.python import BaseOptions, vision  # noqa: E402

from pipeline.core.assets import FACE_MODEL, HAND_MODEL, POSE_MODEL, model_path  # noqa: E402
from pipeline.core.quiet import native_stderr_silenced  # noqa: E402

MIN_CONFIDENCE = 0.5      # detection, presence and tracking confidence of every landmarker
KINDS = ("face", "pose", "hand")
MODES = ("video", "image")
MAX_HANDS = 2
# Faces / bodies the several-people landmarkers look for. MediaPipe runs its detector on every
# frame while it tracks fewer than this many, and the landmark model once per person found, so
# it costs: 4 covers a small group (Pose2Sim's multi-person demo shows 3) at a bounded price.
MAX_PEOPLE = 4


def create_landmarker(kind: str, mode: str = "video", min_confidence: float = MIN_CONFIDENCE, count: int = 1,
                      masks: bool = False):
    """A new landmarker: "face" (52 blendshapes and the facial transformation matrix per face),
    "pose" (world landmarks per body; with `masks`, each body's segmentation mask too) or "hand"
    (up to two hands), in "video" or "image" running mode; faces and bodies: up to `count` of them
    (1 to MAX_PEOPLE). The caller closes it."""
    if kind not in KINDS or mode not in MODES:
        raise ValueError(f"landmarker kind must be one of {KINDS} and mode one of {MODES}")
    if not 1 <= count <= MAX_PEOPLE:
        raise ValueError(f"count must be 1 to {MAX_PEOPLE}, not {count}")
    running = vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE
    with native_stderr_silenced():  # MediaPipe prints dozens of lines while it starts
        if kind == "face":
            return vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(model_path(FACE_MODEL))),
                running_mode=running, num_faces=count,
                min_face_detection_confidence=min_confidence,
                min_face_presence_confidence=min_confidence, min_tracking_confidence=min_confidence,
                output_face_blendshapes=True, output_facial_transformation_matrixes=True))
        if kind == "pose":
            return vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(model_path(POSE_MODEL))),
                running_mode=running, num_poses=count,
                min_pose_detection_confidence=min_confidence,
                min_pose_presence_confidence=min_confidence, min_tracking_confidence=min_confidence,
                output_segmentation_masks=masks))
        return vision.HandLandmarker.create_from_options(vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path(HAND_MODEL))),
            running_mode=running, num_hands=MAX_HANDS,
            min_hand_detection_confidence=min_confidence,
            min_hand_presence_confidence=min_confidence, min_tracking_confidence=min_confidence))


def mp_image(frame_bgr: np.ndarray) -> mp.Image:
    """An OpenCV BGR frame as MediaPipe's RGB image."""
    return mp_rgb_image(np.ascontiguousarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)))


def mp_rgb_image(rgb: np.ndarray) -> mp.Image:
    """A contiguous RGB uint8 array (H, W, 3) as MediaPipe's image."""
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)


@lru_cache(maxsize=None)
def image_landmarker(kind: str):
    """The IMAGE-mode landmarker of a kind (one face or body), made once per process."""
    return create_landmarker(kind, "image")


def detect_image(kind: str, image_bgr: np.ndarray):
    """MediaPipe's result for one picture (IMAGE mode)."""
    return image_landmarker(kind).detect(mp_image(image_bgr))


@lru_cache(maxsize=None)
def _mask_landmarker():
    return create_landmarker("pose", "image", count=MAX_PEOPLE, masks=True)


def person_masks(image_bgr: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every body MediaPipe's pose landmarker finds in one picture (up to MAX_PEOPLE): its
    segmentation mask (H, W) float32 in [0, 1] (person probability) and its image landmarks
    (33, 2) normalised (x right, y down)."""
    result = _mask_landmarker().detect(mp_image(image_bgr))
    masks = result.segmentation_masks or []
    return [(m.numpy_view().astype(np.float32).reshape(image_bgr.shape[:2]),
             np.array([(p.x, p.y) for p in lm], np.float32))
            for m, lm in zip(masks, result.pose_landmarks)]


class CropLandmarker:
    """A one-result VIDEO-mode landmarker of its own for square crops (face or body), made on first
    use so a take that never needs it never pays for it; `frames` counts the crops it ran on.
    Subclasses add `track`; `detect(crop_bgr, ms)` runs it (integer milliseconds, increasing)."""

    def __init__(self, kind: str, min_confidence: float):
        self._kind = kind
        self._min_confidence = min_confidence
        self._landmarker = None
        self.frames = 0

    def detect(self, crop_bgr: np.ndarray, ms: int):
        """MediaPipe's result on one crop."""
        if self._landmarker is None:
            self._landmarker = create_landmarker(self._kind, "video", self._min_confidence)
        return self._landmarker.detect_for_video(mp_image(crop_bgr), ms)

    def preload(self, ms: int, side_px: int) -> None:
        """Make the landmarker now and run it once on a blank crop (sets up MediaPipe's graph)."""
        self.detect(np.zeros((side_px, side_px, 3), np.uint8), ms)

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
        self._landmarker = None

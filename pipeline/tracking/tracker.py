"""MediaPipe face and pose landmarks of the subject, one frame at a time (VIDEO running mode).

`FaceBodyTracker.track(frame, t_s)` works on one frame (batch and live capture): the bodies in view
(pipeline.tracking.people), the subject among them (pipeline.tracking.subject), the subject's face
on the whole frame or, when the head is too small there or its face is not found, on an upscaled
crop around the head (pipeline.tracking.head_crop). `store_result` copies a frame's result into a
row of a `Tracks` (the one place that does); `track_video` (pipeline.tracking.video) streams a
whole file into a `Tracks` artifact; `FaceBodyTracker.report()` says how the subject was kept.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.core.quiet import native_stderr_silenced
from pipeline.core.tracks import POSE, Tracks
from pipeline.tracking.head_crop import HeadCropTracker, head_too_small, pose_head
from pipeline.tracking.mediapipe_tasks import MAX_PEOPLE, MIN_CONFIDENCE, mp_image
from pipeline.tracking.people import LandmarkerSource, PoseOnCrop, nearest_body
from pipeline.tracking.results import FaceResult, FrameResult, PoseResult
from pipeline.tracking.subject import AUTO, FaceChooser, SubjectTracker

__all__ = ["FaceBodyTracker", "FaceResult", "FrameResult", "PoseResult", "store_result", "torso_tilt_deg"]

MS_PER_S = 1000  # MediaPipe's VIDEO mode takes integer milliseconds
# Once on the head crop, a growing head goes back to the whole frame only this much above the
# threshold, so a head near it does not switch every frame (each switch restarts a tracker).
HEAD_CROP_HYSTERESIS = 1.2
# The one-body landmarker's body is the subject's when its torso centre is nearest the subject's
# among the bodies in view and within this share of the subject's torso size (on Pose2Sim's
# multi-person cameras the one-body and several-bodies readings of one body are 0.00-0.05 apart;
# another person standing in front of the subject, 1.2-1.7)
STEADY_SAME_TORSOS = 0.3
# When the one-body landmarker follows someone else (a person in front of the subject), it is
# tried again only this often after STEADY_MISSES misses in a row: its run costs one more pose
# inference a frame
STEADY_MISSES, STEADY_RETRY_S = 5, 0.5


def torso_tilt_deg(world_m: np.ndarray) -> np.ndarray:
    """Angle between the torso (hips to shoulders) and the camera's up axis, degrees.

    world_m: (..., 33, 3) MediaPipe world landmarks (y down). 0 = upright, 90 = lying.
    """
    up = -(world_m[..., [POSE["left_shoulder"], POSE["right_shoulder"]], :].mean(-2)
           - world_m[..., [POSE["left_hip"], POSE["right_hip"]], :].mean(-2))
    cos = up[..., 1] / np.maximum(np.linalg.norm(up, axis=-1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


class FaceBodyTracker:
    """The subject's face and body, frame after frame; call `track` with increasing timestamps.

    subject: "auto" or N (pipeline.tracking.subject); max_people: bodies and faces looked for (1:
    only ever MediaPipe's one-result landmarkers, the behaviour before several people were
    followed); head_crop: track small faces on the head crop; parallel: while the last frame's
    face came from the one-face landmarker on the whole frame, run it on this frame in a second
    thread beside the bodies' landmarkers (the usual desk webcam and close-up path: 1.3-1.5 x the
    frames per second on 2 cores; the same results while frames take that run, tested on a desk
    webcam clip. A frame that turns to another face path (head crop, several faces) leaves the
    one-face landmarker having seen it, which running them in turn does not: VIDEO-mode tracking
    may then differ slightly from the next frame that uses it again).
    """

    def __init__(self, face: bool = True, pose: bool = True, min_confidence: float = MIN_CONFIDENCE,
                 subject: str | int = AUTO, max_people: int = MAX_PEOPLE, head_crop: bool = True,
                 parallel: bool = True):
        self._ahead = ThreadPoolExecutor(1, "face-ahead") if parallel and face and pose else None
        self._last_ms = -1
        self._frames = 0
        self._faces = LandmarkerSource("face", min_confidence, max_people) if face else None
        self._poses = LandmarkerSource("pose", min_confidence, max_people) if pose else None
        self._crop = HeadCropTracker(min_confidence) if face and pose and head_crop else None
        self._body_crop = PoseOnCrop(min_confidence) if pose and max_people > 1 else None
        self._crop_mode = False
        self._steady_misses, self._steady_retry_t = 0, -np.inf  # see _steady_subject
        self._subject = SubjectTracker(subject)
        self._chooser = FaceChooser()
        self.counts: Counter = Counter()
        for src in (self._faces, self._poses):
            if src is not None:
                src.load("one")  # the usual models now, the others when first needed (or preload)

    def preload(self, image_size) -> None:
        """Load every model the take may need and run each once on a blank frame of image_size
        (width, height), so that no frame of a live take waits for a model to load."""
        blank = mp_image(np.zeros((image_size[1], image_size[0], 3), np.uint8))
        self._last_ms += 1
        with native_stderr_silenced():
            for src in (self._faces, self._poses):
                if src is not None:
                    src.preload(blank, self._last_ms)
            if self._crop is not None:
                self._crop.preload(self._last_ms)
            if self._body_crop is not None:
                self._body_crop.preload(self._last_ms, max(image_size))

    def track(self, frame_bgr: np.ndarray, t_s: float) -> FrameResult:
        if self._frames == 0:
            with native_stderr_silenced():
                return self._track(frame_bgr, t_s)
        return self._track(frame_bgr, t_s)

    def _track(self, frame_bgr: np.ndarray, t_s: float) -> FrameResult:
        self._frames += 1
        # VIDEO mode needs strictly increasing integer milliseconds.
        ms = max(int(round(t_s * MS_PER_S)), self._last_ms + 1)
        image = mp_image(frame_bgr)
        if self._ahead is not None and self._faces.last_one_ms == self._last_ms >= 0:
            self._faces.ahead(image, ms, self._ahead)
        self._last_ms = ms
        poses, k = self._subject_pose(image, frame_bgr, ms, t_s) if self._poses is not None else ([], None)
        pose = poses[k] if k is not None else None
        others = [p for i, p in enumerate(poses) if i != k]
        face = self._subject_face(image, frame_bgr, ms, t_s, pose, others) if self._faces is not None else None
        if self._faces is not None:
            self._faces.settle()  # a run ahead this frame did not take ends with the frame
        self.counts["frames"] += 1
        self.counts["subject_frames"] += pose is not None
        self.counts["others_only_frames"] += pose is None and bool(others)
        self.counts["people_max"] = max(self.counts["people_max"], len(poses))
        if face is not None:
            self.counts["face_head_crop_frames" if face.crop_px is not None else "face_whole_frame_frames"] += 1
        return FrameResult(t_s, face, pose, len(poses))

    def _subject_pose(self, image, frame_bgr: np.ndarray, ms: int, t_s: float) -> tuple[list, int | None]:
        """(every body in view, index of the subject's or None): the one-body landmarker while one
        person is in view, checks for others when due or when its body is not the subject."""
        src = self._poses
        several = src.several_mode
        poses = src.run(image, ms, t_s)
        one = None if several else poses  # the one-body landmarker's result, when it ran
        if src.check_due(t_s) or (poses and self._subject.counting(t_s) and src.recheck_allowed(t_s)):
            poses = src.check(image, t_s, poses)
        k = self._subject.update(poses, frame_bgr, t_s)
        if k is None and poses and not several and src.recheck_allowed(t_s):
            everybody = src.check(image, t_s, poses)
            if everybody is not poses:
                poses, k = everybody, self._subject.update(everybody, frame_bgr, t_s)
        if k is None and self._body_crop is not None and self._subject.recently_seen(t_s):
            return self._subject_on_crop(frame_bgr, ms, t_s, poses)
        if k is not None and poses is not one:  # the several-bodies landmarker's (or a check's) bodies
            poses = self._steady_subject(image, ms, t_s, frame_bgr, poses, k, one)
        return poses, k

    def _steady_subject(self, image, ms: int, t_s: float, frame_bgr: np.ndarray, poses: list, k: int,
                        one) -> list:
        """`poses` with the subject's body taken from the one-body VIDEO landmarker when that one
        is on the same body: it follows its body from frame to frame, where the several-bodies
        landmarker detects everybody anew in every frame and jitters about 4x as much (Pose2Sim's
        multi-person camera 1: 30 against 8 px/frame² of limb acceleration)."""
        if one is None:
            if self._steady_misses >= STEADY_MISSES and t_s < self._steady_retry_t:
                return poses
            one = self._poses.one(image, ms)
        size = (frame_bgr.shape[1], frame_bgr.shape[0])
        if not one or nearest_body(one[0], poses, size, STEADY_SAME_TORSOS) != k:
            self._steady_misses += 1
            self._steady_retry_t = t_s + STEADY_RETRY_S
            return poses
        self._steady_misses = 0
        self.counts["subject_from_one_body_frames"] += 1
        return poses[:k] + [one[0]] + poses[k + 1:]

    def _subject_on_crop(self, frame_bgr: np.ndarray, ms: int, t_s: float, poses: list) -> tuple[list, int | None]:
        """The subject looked for on a crop around where it was last seen (the landmarkers lost it):
        (bodies in view, the subject's found there included, its index) or (bodies, None)."""
        found = self._body_crop.track(frame_bgr, ms, self._subject.last.box)
        if found is None:
            return poses, None
        k = self._subject.update(poses + [found], frame_bgr, t_s)
        if k != len(poses):
            return poses, None
        self.counts["subject_on_body_crop_frames"] += 1
        return poses + [found], k

    def _whole_frame_faces(self, image, ms: int, t_s: float, pose: PoseResult | None,
                           others: list) -> tuple[list, bool]:
        """(faces on the whole frame, whether the several-faces landmarker gave them): every face
        while several people are (or were just) in view, else the one-face landmarker, with checks
        for other faces while no body is in view."""
        faces_src = self._faces
        if others or (self._poses is not None and self._poses.several_mode):
            return faces_src.several(image, ms), True
        if pose is not None:
            return faces_src.one(image, ms), False
        several = faces_src.several_mode
        faces = faces_src.run(image, ms, t_s)
        if faces and faces_src.check_due(t_s):
            faces = faces_src.check(image, t_s, faces)
        return faces, several

    def _subject_face(self, image, frame_bgr: np.ndarray, ms: int, t_s: float, pose: PoseResult | None,
                      others: list) -> FaceResult | None:
        """The subject's face: on the whole frame unless its head is too small there, on the head
        crop when the head is seen but its face is not found on the whole frame."""
        size = (frame_bgr.shape[1], frame_bgr.shape[0])
        head = pose_head(pose.image, pose.visibility, size) if pose is not None else None
        if head is not None and self._crop is not None:
            margin = HEAD_CROP_HYSTERESIS if self._crop_mode else 1.0
            self._crop_mode = head_too_small(head, size, margin)
            if self._crop_mode:
                return self._crop_face(frame_bgr, ms, pose, head)
        faces, several = self._whole_frame_faces(image, ms, t_s, pose, others)
        face = self._chooser.choose(faces, pose, head, others, size)
        if face is None and len(faces) == 1 and not several and self._faces.max_people > 1:
            # the one face found is not on the subject's head: look at every face
            face = self._chooser.choose(self._faces.several(image, ms), pose, head, others, size)
        if face is None and head is not None and self._crop is not None:
            face = self._crop_face(frame_bgr, ms, pose, head)
        return face

    def _crop_face(self, frame_bgr: np.ndarray, ms: int, pose: PoseResult, head) -> FaceResult | None:
        """The face on the head crop, when it sits on the subject's head."""
        size = (frame_bgr.shape[1], frame_bgr.shape[0])
        face = self._crop.track(frame_bgr, ms, head)
        if face is None or not self._chooser.on_head(face, pose, size):
            return None
        self._chooser.remember(face, size)
        return face

    def report(self) -> dict:
        """How the subject was chosen and kept, and where its face came from (meta["subject"])."""
        runs = {src.kind: dict(src.runs) for src in (self._faces, self._poses) if src is not None}
        if self._crop is not None:
            runs["head_crop"] = self._crop.frames
        if self._body_crop is not None:
            runs["body_crop"] = self._body_crop.frames
        return {**self._subject.report(), **{k: int(v) for k, v in self.counts.items()},
                "landmarker_runs": runs}

    def close(self):
        with native_stderr_silenced():
            for src in (self._faces, self._poses, self._crop, self._body_crop):
                if src is not None:
                    src.close()
        if self._ahead is not None:
            self._ahead.shutdown()
        self._faces = self._poses = self._crop = self._body_crop = self._ahead = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def store_result(tracks: Tracks, i: int, result: FrameResult | None) -> None:
    """Copy one frame's tracker result into row i of `tracks` (valid flags and arrays); a
    missing face or body leaves the row as it is (NaN, invalid)."""
    if result is None:
        return
    if tracks.people_in_view is not None:
        tracks.people_in_view[i] = min(result.people, np.iinfo(np.int8).max)
    if result.face is not None:
        tracks.face_valid[i] = True
        tracks.face_landmarks[i] = result.face.landmarks
        tracks.blendshapes[i] = result.face.blendshapes
        tracks.face_matrix[i] = result.face.matrix
        if tracks.face_crop_px is not None and result.face.crop_px is not None:
            tracks.face_crop_px[i] = result.face.crop_px
    if result.pose is not None:
        tracks.pose_valid[i] = True
        tracks.pose_image[i] = result.pose.image
        tracks.pose_world_m[i] = result.pose.world_m
        tracks.pose_visibility[i] = result.pose.visibility

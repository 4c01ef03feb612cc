"""Per-frame tracking results of one take: the artifact between the tracker and every later stage.

Stored in a session as `tracks.npz` (numpy, no pickles); every array is documented on `Tracks`.
Frames where MediaPipe found nothing hold NaN and `*_valid == False`: values are never
invented. `fill_short_gaps` interpolates gaps up to a bound and flags them in `*_filled`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from pipeline.core.atomic import atomic_path

# MediaPipe's 52 blendshape categories, in model output order. Index 0 (`_neutral`) is not an
# ARKit shape and is never exported; the other 51 are Apple ARKit's names.
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
ARKIT_NAMES = BLENDSHAPE_NAMES[1:]  # the 51 exported morph targets, in this order

N_FACE_LANDMARKS = 478
N_POSE_LANDMARKS = 33

# MediaPipe pose landmark indices used across the stages.
POSE = dict(
    nose=0, left_eye=2, right_eye=5, left_ear=7, right_ear=8, mouth_left=9, mouth_right=10,
    left_shoulder=11, right_shoulder=12, left_elbow=13, right_elbow=14, left_wrist=15,
    right_wrist=16, left_pinky=17, right_pinky=18, left_index=19, right_index=20,
    left_thumb=21, right_thumb=22, left_hip=23, right_hip=24, left_knee=25, right_knee=26,
    left_ankle=27, right_ankle=28, left_heel=29, right_heel=30, left_foot_index=31,
    right_foot_index=32,
)

# Pose landmark index after swapping the subject's left and right: MIRROR_LANDMARKS[i] is the
# landmark that plays i's part on the other side (left_eye <-> right_eye, ...).
MIRROR_LANDMARKS = np.arange(N_POSE_LANDMARKS)
for _a, _b in [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(i, i + 1) for i in range(11, 33, 2)]:
    MIRROR_LANDMARKS[_a], MIRROR_LANDMARKS[_b] = _b, _a


@dataclass
class Tracks:
    """Tracking of N frames of one camera.

    t_s:             (N,) float64, frame timestamps in seconds from the start of the video.
    fps:             nominal frame rate of the video (frames per second).
    duration_s:      length of the video in seconds (frame count / fps unless the container says
                     otherwise); the exported animation lasts exactly this long.
    image_size:      (width, height) in pixels.
    face_valid:      (N,) bool, a face was tracked (or filled, see face_filled) in this frame.
    face_filled:     (N,) bool, the face values of this frame were interpolated over a short gap.
    face_landmarks:  (N, 478, 3) float32, MediaPipe normalised image coordinates: x in [0,1] to the
                     right, y in [0,1] down, z relative depth in units of image width (smaller =
                     nearer the camera). NaN where not valid.
    blendshapes:     (N, 52) float32 scores in [0,1], columns in BLENDSHAPE_NAMES order. NaN where
                     not valid.
    face_matrix:     (N, 4, 4) float32, MediaPipe's facial transformation: canonical face space
                     (centimetres, +Y up, +Z out of the face) to MediaPipe's virtual camera
                     (centimetres, +Y up, looking down -Z, vertical field of view 63 degrees).
    pose_valid:      (N,) bool, a body was tracked (or filled) in this frame.
    pose_filled:     (N,) bool.
    pose_image:      (N, 33, 3) float32, normalised image coordinates like face_landmarks.
    pose_world_m:    (N, 33, 3) float32, MediaPipe world landmarks in metres, origin between the
                     hips, x to the image's right, y down, z away from the camera.
    pose_visibility: (N, 33) float32 in [0,1], likelihood each landmark is visible.
    source:          path of the video (or camera) the tracks come from.
    meta:            free-form, saved in the header (e.g. the "multiview" report of the fusion;
                     "subject": how the subject was chosen among the people in view and kept,
                     pipeline.tracking.tracker.FaceBodyTracker.report; "screening": detections
                     rejected as implausible, by reason; "joint_names": the J skeleton joints of
                     joint_from_view).

    Present in tracks made by the tracker since several people are followed (None in older files
    and in tracks fused from several cameras):
    people_in_view:  (N,) int8, bodies MediaPipe's pose landmarker found in the frame, the subject
                     included (0: nobody). While one person is in view only one body is looked for
                     and others are looked for every second (pipeline.tracking.people), so a
                     newcomer may count from up to that much later.
    face_crop_px:    (N, 3) float32, [x0, y0, side] in pixels of the square crop around the pose's
                     head the face was tracked in when it was too small (or not found) in the whole
                     frame (pipeline.tracking.head_crop); NaN where the face came from the whole
                     frame or there is none. face_landmarks stay whole-frame normalised coordinates
                     and face_matrix is in the whole frame's virtual camera either way;
                     pipeline.face.head_space unprojects a crop-tracked face in its crop.

    Set by the body's screening (pipeline.body.screening; None when it has not run):
    pose_rejected:   (N,) bool, the frame's body detection was rejected as implausible (bone
                     lengths far from the take's skeleton, hips at shoulder height, a head nowhere
                     near the tracked face, a jump no human makes in one frame): pose_valid is
                     False and its arrays NaN there, never animated.
    face_rejected:   (N,) bool, likewise for the face detection (face_valid False, arrays NaN).
    joint_from_view: (N, J) bool, per skeleton joint (meta["joint_names"]): its rotation was solved
                     from landmarks seen in that frame (else a default, held or inferred pose).

    Present only in tracks fused from several calibrated cameras (pipeline.multiview), None
    otherwise. Their frame, the "pose frame", is the one pose_world_m's axes are in: a virtual
    camera standing in front of the subject, level (x to its image's right, y down, z away from
    it, metres); for one camera it is that camera's frame.
    pose_root_m:     (N, 3) float32, hips centre (mean of landmarks 23, 24) in the pose frame with
                     its origin at the calibration's world origin, metres: the body's position in
                     the room, triangulated. NaN where not triangulated.
    pose_reproj_px:  (N, 33) float32, RMS reprojection error of each triangulated landmark over the
                     cameras used, pixels. NaN where the landmark came from one camera only.
    pose_n_views:    (N, 33) int8, number of cameras the landmark was triangulated from (0: it is
                     one camera's MediaPipe estimate, rotated into the pose frame).
    face_view:       (N,) int8, index (in meta["multiview"]["cameras"]) of the camera whose
                     face_landmarks and face_matrix this frame holds; -1 where no face.
    face_view_rotation: (N, 3, 3) float32, rotation from that camera's MediaPipe face frame (+Y up,
                     looking down -Z) to the pose frame in the same axes convention (x, -y, -z of
                     the pose frame): the head's rotation in the pose frame is this times
                     face_matrix's rotation. (One camera: None, identity.)
    face_world_m:    (N, 478, 3) float32, face landmarks triangulated from the cameras that see the
                     face, pose frame, origin as pose_root_m; NaN where fewer than two did.
    face_reproj_px:  (N, 478) float32, their RMS reprojection error, pixels.
    """

    t_s: np.ndarray
    fps: float
    duration_s: float
    image_size: tuple[int, int]
    face_valid: np.ndarray
    face_filled: np.ndarray
    face_landmarks: np.ndarray
    blendshapes: np.ndarray
    face_matrix: np.ndarray
    pose_valid: np.ndarray
    pose_filled: np.ndarray
    pose_image: np.ndarray
    pose_world_m: np.ndarray
    pose_visibility: np.ndarray
    source: str = ""
    meta: dict = field(default_factory=dict)
    pose_root_m: np.ndarray | None = None
    pose_reproj_px: np.ndarray | None = None
    pose_n_views: np.ndarray | None = None
    face_view: np.ndarray | None = None
    face_view_rotation: np.ndarray | None = None
    face_world_m: np.ndarray | None = None
    face_reproj_px: np.ndarray | None = None
    people_in_view: np.ndarray | None = None
    face_crop_px: np.ndarray | None = None
    pose_rejected: np.ndarray | None = None
    face_rejected: np.ndarray | None = None
    joint_from_view: np.ndarray | None = None

    @property
    def multiview(self) -> bool:
        """The tracks were fused from several calibrated cameras (see pose_root_m)."""
        return self.pose_root_m is not None

    @property
    def n_frames(self) -> int:
        return len(self.t_s)

    @classmethod
    def empty(cls, n: int, fps: float, image_size, source: str = "") -> "Tracks":
        """n frames at fps with nothing tracked (NaN, invalid), the tracker's optional arrays
        (people_in_view 0, face_crop_px NaN) included."""
        nan = np.float32("nan")
        return cls(
            t_s=np.arange(n) / fps, fps=fps, duration_s=n / fps, image_size=tuple(image_size),
            face_valid=np.zeros(n, bool), face_filled=np.zeros(n, bool),
            face_landmarks=np.full((n, N_FACE_LANDMARKS, 3), nan, np.float32),
            blendshapes=np.full((n, len(BLENDSHAPE_NAMES)), nan, np.float32),
            face_matrix=np.full((n, 4, 4), nan, np.float32),
            pose_valid=np.zeros(n, bool), pose_filled=np.zeros(n, bool),
            pose_image=np.full((n, N_POSE_LANDMARKS, 3), nan, np.float32),
            pose_world_m=np.full((n, N_POSE_LANDMARKS, 3), nan, np.float32),
            pose_visibility=np.full((n, N_POSE_LANDMARKS), nan, np.float32),
            source=source, people_in_view=np.zeros(n, np.int8), face_crop_px=np.full((n, 3), nan, np.float32),
        )

    def save(self, path: Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        header = dict(fps=self.fps, duration_s=self.duration_s, image_size=list(self.image_size),
                      source=self.source, meta=self.meta, blendshape_names=list(BLENDSHAPE_NAMES))
        with atomic_path(path) as tmp:  # OutputError naming the file when the disk refuses it
            np.savez_compressed(tmp, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: Path) -> "Tracks":
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            known = {f.name for f in fields(cls)}  # optional arrays absent from older files stay None
            arrays = {k: z[k] for k in z.files if k in known}
        return cls(fps=header["fps"], duration_s=header["duration_s"],
                   image_size=tuple(header["image_size"]), source=header["source"],
                   meta=header.get("meta", {}), **arrays)


def gap_spans(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index spans where valid is False."""
    v = np.concatenate([[True], np.asarray(valid, bool), [True]])
    d = np.diff(v.astype(np.int8))
    return list(zip(np.flatnonzero(d == -1), np.flatnonzero(d == 1)))


def _interp_rows(t: np.ndarray, a: np.ndarray, idx: np.ndarray, i0: int, i1: int) -> np.ndarray:
    """Linear interpolation of a[idx] between rows i0 and i1 (both valid), by time."""
    w = ((t[idx] - t[i0]) / (t[i1] - t[i0])).reshape((-1,) + (1,) * (a.ndim - 1))
    return (1 - w) * a[i0] + w * a[i1]


def fill_short_gaps(tr: Tracks, max_gap_s: float = 0.25, in_place: bool = False) -> Tracks:
    """Interpolate face and body over interior gaps no longer than max_gap_s; flag them.

    Gaps at the start or end of the take, and longer gaps, stay NaN / invalid.
    Face transforms are interpolated with slerp (rotation) and lerp (translation).
    A face gap between two frames tracked on the head crop gets crop boxes interpolated too
    (NaN, the whole frame, when either end was not); people_in_view is left as tracked. A gap
    holding a detection the screening rejected (pose_rejected / face_rejected) is not filled.
    Multi-view tracks: pose_root_m is interpolated with the body; reprojection errors and view
    counts stay NaN / 0 (nothing was measured); a face gap whose two ends come from different
    cameras is not filled (their image landmarks are not comparable). in_place: the gaps are filled
    in `tr`'s own landmark arrays (for a caller that hands the raw tracks over; the flags are new).
    """
    t = tr.t_s
    pose_arrays = ("pose_image", "pose_world_m", "pose_visibility") \
        + (("pose_root_m",) if tr.pose_root_m is not None else ())
    face_arrays = ("face_landmarks", "blendshapes") + (("face_crop_px",) if tr.face_crop_px is not None else ())
    spans = {kind: [(s, e) for s, e in gap_spans(getattr(tr, f"{kind}_valid"))
                    if not (s == 0 or e == len(t) or t[e] - t[s - 1] > max_gap_s + 1e-9 + 1.0 / tr.fps)]
             for kind in ("face", "pose")}
    # Only the arrays that will change are copied: the others are shared with `tr`, so that a long
    # take's landmarks are not held once more when it has no gap to fill (flat memory in its length).
    changed = {"face_valid", "face_filled", "pose_valid", "pose_filled"}
    if spans["face"] and not in_place:
        changed |= {*face_arrays, "face_matrix", "face_view", "face_view_rotation"}
    if spans["pose"] and not in_place:
        changed |= set(pose_arrays)
    out = replace(tr, **{name: getattr(tr, name).copy() for name in changed if getattr(tr, name) is not None},
                  meta=dict(tr.meta))
    for kind, arrays in (("face", face_arrays), ("pose", pose_arrays)):
        valid = getattr(out, f"{kind}_valid")
        filled = getattr(out, f"{kind}_filled")
        for s, e in spans[kind]:
            idx = np.arange(s, e)
            rejected = getattr(out, f"{kind}_rejected")
            if rejected is not None and rejected[idx].any():
                continue  # a detection the screening rejected is never bridged into the animation
            if kind == "face" and out.face_view is not None:
                if out.face_view[s - 1] != out.face_view[e]:
                    continue
                out.face_view[idx] = out.face_view[s - 1]
                if out.face_view_rotation is not None:
                    out.face_view_rotation[idx] = out.face_view_rotation[s - 1]
            for name in arrays:
                a = getattr(out, name)
                a[idx] = _interp_rows(t, a, idx, s - 1, e)
            if kind == "face":
                m = out.face_matrix
                rots = Rotation.from_matrix(m[[s - 1, e], :3, :3].astype(np.float64))
                slerp = Slerp([t[s - 1], t[e]], rots)
                m[idx, :3, :3] = slerp(t[idx]).as_matrix()
                m[idx, :3, 3] = _interp_rows(t, m[:, :3, 3], idx, s - 1, e)
                m[idx, 3] = (0, 0, 0, 1)
            valid[idx] = True
            filled[idx] = True
    return out

"""What a take shows: its framing and, per body part, the share of frames in which it was tracked.

Input: the screened `Tracks` of a take (pipeline.body.screening: rejected detections are invalid
already). Output (`framing_report`): the manifest's "framing" section, a dict
  framing:             one of FRAMINGS (see `classify_framing`);
  parts_tracked_share: {part: share of the take's N frames in [0, 1]} for PARTS;
  people_max:          the most people (pose detections) the tracker saw in one frame;
  rejected_frames:     {reason: frames} from the screening (meta["screening"]).

A body part is tracked in a frame when a body was tracked there (not gap-filled) and passed
screening, and at least one of the part's landmarks (left or right) is seen: visibility at least
SEEN_VISIBILITY (the hips HIPS_SEEN_VISIBILITY) and inside the image
(pipeline.body.landmarks.inside_image). "face" is the face landmarker's face; "head" is the face
or the pose's nose and ears.
"""
from __future__ import annotations

import numpy as np

from pipeline.body.landmarks import inside_image
from pipeline.core.tracks import POSE, Tracks

FRAMINGS = ("no_person", "face_only", "close_up", "head_and_shoulders", "upper_body", "seated", "full_body")
PARTS: dict[str, tuple[str, ...]] = {
    "face": (), "head": ("nose", "left_ear", "right_ear"), "shoulders": ("left_shoulder", "right_shoulder"),
    "elbows": ("left_elbow", "right_elbow"), "wrists": ("left_wrist", "right_wrist"),
    "hips": ("left_hip", "right_hip"), "knees": ("left_knee", "right_knee"), "ankles": ("left_ankle", "right_ankle"),
}
SEEN_VISIBILITY = 0.5    # MediaPipe visibility at which a landmark inside the image counts as seen
# ... the hips at this: hips below the frame's bottom edge are reported inside it with visibility
# 0.6-0.9, hips in view 0.91 and up (pipeline.body.landmarks.HIPS_VISIBILITY_RAMP, its middle)
HIPS_SEEN_VISIBILITY = 0.9
IN_VIEW_SHARE = 0.5      # a part tracked in at least this share of the frames with a body is "in view"
# Seated: the thighs' median angle from the torso's down direction (hips -> knees against
# shoulders -> hips, frames where both are seen), degrees. Standing and walking: under 40;
# sitting: near 90.
SEATED_THIGH_DEG = 60.0


def _measured(tracks: Tracks, kind: str) -> np.ndarray:
    """(N,) bool: frames where the tracker found the face / body ("face", "pose") and it passed
    screening; frames bridged by gap filling (`*_filled`) were not tracked."""
    valid = np.asarray(getattr(tracks, f"{kind}_valid"), bool)
    filled = getattr(tracks, f"{kind}_filled", None)
    return valid & ~np.asarray(filled, bool) if filled is not None else valid


def _seen(tracks: Tracks) -> np.ndarray:
    """(N, 33) bool: the landmark is seen in a frame whose body passed screening."""
    vis = np.nan_to_num(tracks.pose_visibility.astype(np.float64))
    threshold = np.full(vis.shape[1], SEEN_VISIBILITY)
    threshold[[POSE["left_hip"], POSE["right_hip"]]] = HIPS_SEEN_VISIBILITY
    return _measured(tracks, "pose")[:, None] & (vis >= threshold) & inside_image(tracks.pose_image)


def parts_tracked(tracks: Tracks) -> dict[str, np.ndarray]:
    """{part: (N,) bool} frames in which each part of PARTS was tracked (see the module docstring)."""
    seen = _seen(tracks)
    face = _measured(tracks, "face")
    out = {}
    for part, names in PARTS.items():
        out[part] = face.copy() if part == "face" else seen[:, [POSE[k] for k in names]].any(axis=1)
    out["head"] |= face
    return out


def _seated(tracks: Tracks) -> bool:
    """The take's thighs, where seen, point away from the torso's down direction by more than
    SEATED_THIGH_DEG (median over frames and sides)."""
    seen = _seen(tracks)
    world = tracks.pose_world_m.astype(np.float64)
    down = world[:, [POSE["left_hip"], POSE["right_hip"]]].mean(1) \
        - world[:, [POSE["left_shoulder"], POSE["right_shoulder"]]].mean(1)
    angles = []
    for side in ("left", "right"):
        hip, knee = POSE[f"{side}_hip"], POSE[f"{side}_knee"]
        ok = seen[:, hip] & seen[:, knee]
        thigh = world[ok, knee] - world[ok, hip]
        cos = (thigh * down[ok]).sum(1) / np.maximum(np.linalg.norm(thigh, axis=1) * np.linalg.norm(down[ok], axis=1),
                                                       1e-9)
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    angles = np.concatenate(angles)
    return len(angles) > 0 and float(np.median(angles)) > SEATED_THIGH_DEG


def classify_framing(tracks: Tracks, tracked: dict[str, np.ndarray]) -> str:
    """One of FRAMINGS. Among the frames with a body, the parts in view (IN_VIEW_SHARE) decide:
    hips and knees, with the thighs saying so: seated; hips, knees and ankles: full_body; hips or
    elbows: upper_body; shoulders: head_and_shoulders; else close_up.
    No body: face_only, or no_person without a face either."""
    body = np.asarray(tracks.pose_valid, bool)
    if not body.any():
        return "face_only" if tracked["face"].any() else "no_person"
    in_view = {part: tracked[part][body].mean() >= IN_VIEW_SHARE for part in PARTS}
    if in_view["hips"] and in_view["knees"] and _seated(tracks):
        return "seated"
    if in_view["hips"] and in_view["knees"] and in_view["ankles"]:
        return "full_body"
    if in_view["hips"] or in_view["elbows"]:
        return "upper_body"
    return "head_and_shoulders" if in_view["shoulders"] else "close_up"


def framing_report(tracks: Tracks) -> dict:
    """The manifest's "framing" section of a screened take (see the module docstring)."""
    tracked = parts_tracked(tracks)
    n = max(tracks.n_frames, 1)
    people = getattr(tracks, "people_in_view", None)
    people_max = int(np.max(people)) if people is not None and len(people) else int(np.asarray(tracks.pose_valid).any())
    return {
        "framing": classify_framing(tracks, tracked),
        "parts_tracked_share": {part: round(float(tracked[part].sum()) / n, 4) for part in PARTS},
        "people_max": people_max,
        "rejected_frames": dict(tracks.meta.get("screening", {})),
    }

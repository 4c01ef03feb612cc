"""The avatar's humanoid skeleton, sized from the take.

Input: a take's `Tracks` (MediaPipe pose world landmarks, metres) or None; output: a `Skeleton`
(joint names, parents, rest offsets and positions in metres, head anchor, stature, hand and foot
sizes, the measured segment lengths and where each length came from).

Frames and units (glTF): metres, Y up, right-handed, the avatar faces +Z, so its LEFT side is +X.
The rest pose is a T-pose: arms straight out along +-X with palms down, legs straight down, feet
flat with the toes pointing +Z and the soles on Y = 0. Every joint's rest rotation is identity, so
a joint's local rotation is directly its rotation relative to the T-pose, and a rest offset
(`rest_local_m`) is expressed in the parent's (axis-aligned) rest frame.

The bone names are the Unity / VRM humanoid names. The head joint sits at the top of the neck
(skull base); its rest frame equals MediaPipe's canonical face frame (+Y up, +Z out of the face),
and the canonical face origin (roughly between the ears) is at head joint + `head_anchor_m`.

Sizing: every length comes from MediaPipe's world landmarks of the take (weighted median over
frames where both ends are confidently visible). Parts that are rarely visible fall back to
proportions of the stature, where the stature is estimated from the parts that are seen. The
proportions below are calibrated on MediaPipe's own world landmarks (three full-body takes), so
measured and fallback lengths agree; the few that MediaPipe cannot measure (ankle height, crown
of the head, full hand and foot length) are classic anthropometric ratios (Drillis & Contini).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from pipeline.body.image_lift import image_segment_lengths, weighted_median
from pipeline.core.tracks import POSE, Tracks
from pipeline.face.canonical import load_canonical_face

HUMANOID_BONES: tuple[tuple[str, str | None], ...] = (
    ("hips", None),
    ("spine", "hips"),
    ("chest", "spine"),
    ("neck", "chest"),
    ("head", "neck"),
    ("leftEye", "head"),
    ("rightEye", "head"),
    ("leftShoulder", "chest"),
    ("leftUpperArm", "leftShoulder"),
    ("leftLowerArm", "leftUpperArm"),
    ("leftHand", "leftLowerArm"),
    ("rightShoulder", "chest"),
    ("rightUpperArm", "rightShoulder"),
    ("rightLowerArm", "rightUpperArm"),
    ("rightHand", "rightLowerArm"),
    ("leftUpperLeg", "hips"),
    ("leftLowerLeg", "leftUpperLeg"),
    ("leftFoot", "leftLowerLeg"),
    ("leftToes", "leftFoot"),
    ("rightUpperLeg", "hips"),
    ("rightLowerLeg", "rightUpperLeg"),
    ("rightFoot", "rightLowerLeg"),
    ("rightToes", "rightFoot"),
)

DEFAULT_HEIGHT_M = 1.75
MIN_HEIGHT_M, MAX_HEIGHT_M = 1.0, 2.3  # an estimated stature is clipped to this range, metres

# Segment lengths as fractions of the stature. The first group is what MediaPipe's world
# landmarks measure (calibrated on its output, see the module docstring); "hand" is wrist to the
# middle of the index and pinky knuckles, "foot_mp" MediaPipe's heel -> foot_index span (which
# is much shorter than a real foot, so it only feeds the stature estimate).
MEASURED_RATIOS: dict[str, float] = dict(
    shoulder_width=0.206, hip_width=0.136, upper_arm=0.149, lower_arm=0.146, hand=0.044,
    upper_leg=0.247, lower_leg=0.227, torso=0.304, neck=0.102, ear_width=0.092, foot_mp=0.080,
)
# Not measurable from MediaPipe: anthropometric fractions of the stature.
ANKLE_HEIGHT_RATIO = 0.041    # sole to ankle joint
CROWN_ABOVE_EARS_RATIO = 0.078  # ear canal to the top of the head
HAND_LENGTH_RATIO = 0.108     # wrist to the tip of the middle finger
FOOT_LENGTH_RATIO = 0.152     # heel to the tip of the longest toe
HEEL_BEHIND_ANKLE = 0.22      # fraction of the foot length behind the ankle joint
BALL_OF_FOOT = 0.72           # toes joint, as a fraction of the foot length from the heel
# A measured segment is bounded to these fractions of its length in proportion to the stature.
MIN_OF_EXPECTED, MAX_OF_EXPECTED = 0.75, 1.33
# The forearm is never shorter than this fraction below its proportion of the measured upper arm,
# nor the upper arm below its proportion of the forearm (MEASURED_RATIOS' lower_arm / upper_arm).
# A segment pointing along the view is measured short (its depth is MediaPipe's, under-read): on
# Pose2Sim's cam04, which sees the man from behind and above with his forearms reaching away from
# it, the forearm came out 0.81 of the upper arm (cams 1-3: 0.95-0.97, the 4-camera reference
# 0.95). The ratio varies little between people (the brachial index, radius / humerus, has a
# standard deviation of about 3 %, population means within +-5 %): 12 % allows for both.
ARM_RATIO_TOLERANCE = 0.12

# Placement of joints along their segments (fractions) and small offsets (metres for the default
# 1.75 m stature, scaled with the stature).
SPINE_JOINT_OF_TORSO = 0.25   # spine joint above the hips, fraction of the hips -> shoulders length
CHEST_JOINT_OF_TORSO = 0.6    # chest joint above the hips, same fraction
NECK_JOINT_OF_NECK = 0.25     # neck joint (C7) above the shoulders, fraction of shoulders -> ears
MIN_NECK_BONE_M = 0.04        # the neck bone (neck -> head joint) is never shorter
CLAVICLE_OF_HALF_SHOULDERS = 0.2  # shoulder (clavicle) joint out from the spine, fraction of half
TOE_JOINT_HEIGHT_M = 0.025    # toes joint above the sole

# The canonical face origin relative to the head joint (skull base) in the head's rest frame, and
# the ears relative to the face origin (canonical landmarks 234/454 are at z = -0.024, the ear
# canal a little behind). With these two, the ears sit straight above the head joint. Metres; the
# canonical face has a fixed size, so these are not scaled with the body.
HEAD_ANCHOR_M = np.array([0.0, 0.035, 0.030])
EAR_MID_IN_FACE_M = np.array([0.0, 0.0, -0.030])
# Eyeball centres in canonical face space [left, right] when the caller gives none: the middle of
# each eye's corners (landmarks 263/362 and 33/133) pushed 5 mm back into the orbit.
DEFAULT_EYE_CENTRES_FACE_M = np.array([[0.0315, 0.0262, 0.0297], [-0.0315, 0.0262, 0.0297]])
LEFT_EYE_CORNERS = [263, 362]     # canonical face landmarks at the corners of each eye
RIGHT_EYE_CORNERS = [33, 133]
EYEBALL_BEHIND_CORNERS_M = 0.005  # eyeball centre behind the middle of its corners, metres

# Landmark groups (averaged) and the segments measured between them.
_PTS: dict[str, tuple[int, ...]] = {
    "ls": (POSE["left_shoulder"],), "rs": (POSE["right_shoulder"],),
    "le": (POSE["left_elbow"],), "re": (POSE["right_elbow"],),
    "lw": (POSE["left_wrist"],), "rw": (POSE["right_wrist"],),
    "lknu": (POSE["left_index"], POSE["left_pinky"]), "rknu": (POSE["right_index"], POSE["right_pinky"]),
    "lh": (POSE["left_hip"],), "rh": (POSE["right_hip"],),
    "lk": (POSE["left_knee"],), "rk": (POSE["right_knee"],),
    "la": (POSE["left_ankle"],), "ra": (POSE["right_ankle"],),
    "lheel": (POSE["left_heel"],), "rheel": (POSE["right_heel"],),
    "ltoe": (POSE["left_foot_index"],), "rtoe": (POSE["right_foot_index"],),
    "lear": (POSE["left_ear"],), "rear": (POSE["right_ear"],),
    "mhip": (POSE["left_hip"], POSE["right_hip"]),
    "msh": (POSE["left_shoulder"], POSE["right_shoulder"]),
    "mear": (POSE["left_ear"], POSE["right_ear"]),
}
_SEGMENTS: dict[str, tuple[tuple[str, str], ...]] = dict(
    shoulder_width=(("ls", "rs"),), hip_width=(("lh", "rh"),),
    upper_arm=(("ls", "le"), ("rs", "re")), lower_arm=(("le", "lw"), ("re", "rw")),
    hand=(("lw", "lknu"), ("rw", "rknu")),
    upper_leg=(("lh", "lk"), ("rh", "rk")), lower_leg=(("lk", "la"), ("rk", "ra")),
    torso=(("mhip", "msh"),), neck=(("msh", "mear"),), ear_width=(("lear", "rear"),),
    foot_mp=(("lheel", "ltoe"), ("rheel", "rtoe")),
)
MIN_VISIBILITY = 0.5
# A segment seen in fewer frames than this (and than this fraction of the tracked frames, per
# landmark pair) is not measured: a part flashing into view is not trusted.
MIN_SEGMENT_FRAMES = 3
MIN_SEGMENT_COVERAGE = 0.1


@dataclass(eq=False)
class Skeleton:
    """A humanoid skeleton in its rest T-pose (see the module docstring for frames).

    names:          (J,) joint names, parent before child (HUMANOID_BONES order).
    parents:        (J,) int, parent index, -1 for the root (hips).
    rest_local_m:   (J, 3) float64, rest translation of each joint from its parent, in the parent's
                    rest frame; for the hips its position in model space.
    rest_world_m:   (J, 3) float64, rest joint positions in model space.
    head_anchor_m:  (3,) canonical face origin relative to the head joint, head rest frame.
    height_m:       stature (sole to crown) of the rest pose.
    hand_length_m:  wrist to finger tip (the hand joint has no child bone).
    foot_length_m:  heel to toe tip.
    heel_offset_m:  (3,) the heel's sole point relative to the foot (ankle) joint, rest frame.
    toe_tip_offset_m: (3,) the toe tip's sole point relative to the toes joint, rest frame.
    lengths_m:      every sized segment (keys of MEASURED_RATIOS plus derived ones), metres.
    length_source:  for each key of lengths_m: "measured", "proportion" (of a stature estimated
                    from the measured parts) or "default" (no body seen: a 1.75 m adult).
    """

    names: tuple[str, ...]
    parents: np.ndarray
    rest_local_m: np.ndarray
    rest_world_m: np.ndarray
    head_anchor_m: np.ndarray
    height_m: float = DEFAULT_HEIGHT_M
    hand_length_m: float = HAND_LENGTH_RATIO * DEFAULT_HEIGHT_M
    foot_length_m: float = FOOT_LENGTH_RATIO * DEFAULT_HEIGHT_M
    heel_offset_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    toe_tip_offset_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    lengths_m: dict[str, float] = field(default_factory=dict)
    length_source: dict[str, str] = field(default_factory=dict)

    @property
    def n_joints(self) -> int:
        return len(self.names)

    @property
    def head_space_origin_m(self) -> np.ndarray:
        """(3,) where the head's own space (canonical face space) has its origin in the rest
        pose's model space, metres."""
        return self.rest_world_m[self.index("head")] + self.head_anchor_m

    def index(self, name: str) -> int:
        """Index of a joint by its humanoid name (ValueError if unknown)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"no joint {name!r} in the skeleton") from None

    def children(self, j: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == j)]


def measure_segments(tracks: Tracks) -> tuple[dict[str, float], dict[str, float]]:
    """Weighted-median length of each segment of _SEGMENTS over the take.

    Only frames where every landmark of the segment has visibility >= 0.5 count, weighted by the
    smallest of those visibilities. Returns (lengths in metres, fraction of valid frames that
    counted); segments seen in too few frames are absent from the lengths.
    """
    valid = np.asarray(tracks.pose_valid, bool)
    if not valid.any():
        return {}, {}
    world = tracks.pose_world_m[valid].astype(np.float64)
    vis = np.nan_to_num(tracks.pose_visibility[valid].astype(np.float64))
    n = int(valid.sum())
    lengths, coverage = {}, {}
    for key, pairs in _SEGMENTS.items():
        seen_lengths, seen_weights = [], []
        for a, b in pairs:
            pa, pb = world[:, _PTS[a]].mean(1), world[:, _PTS[b]].mean(1)
            weight = np.minimum(vis[:, _PTS[a]].min(1), vis[:, _PTS[b]].min(1))
            length = np.linalg.norm(pa - pb, axis=-1)
            ok = (weight >= MIN_VISIBILITY) & np.isfinite(length)
            seen_lengths.append(length[ok])
            seen_weights.append(weight[ok])
        length, weight = np.concatenate(seen_lengths), np.concatenate(seen_weights)
        coverage[key] = len(length) / (n * len(pairs))
        # A part seen in a handful of frames (a hand flashing into view) is not trusted.
        if len(length) >= max(MIN_SEGMENT_FRAMES, MIN_SEGMENT_COVERAGE * n * len(pairs)):
            lengths[key] = weighted_median(length, weight)
    return lengths, coverage


class _Levels(NamedTuple):
    """Rest heights (Y, metres above the soles) of the spine's joints and landmarks."""

    hips: float
    shoulders: float
    ears: float
    head: float
    neck: float


class _FootLayout(NamedTuple):
    """Rest foot geometry (metres): the heel and the toes joint along Z from the ankle, and the
    toes joint's height above the sole."""

    heel_z: float
    ball_z: float
    toe_joint_y: float


def _default_eye_centres() -> np.ndarray:
    """(2, 3) [left, right] eyeball centres in canonical face space (metres), from the canonical
    mesh when the face model is there, else DEFAULT_EYE_CENTRES_FACE_M."""
    try:  # the canonical mesh ships in the face model; fall back to constants without it
        v = load_canonical_face().vertices_m
        left, right = v[LEFT_EYE_CORNERS].mean(0), v[RIGHT_EYE_CORNERS].mean(0)
        return np.stack([left, right]) + np.array([0.0, 0.0, -EYEBALL_BEHIND_CORNERS_M])
    except Exception:  # noqa: BLE001 - any missing/unreadable asset
        return DEFAULT_EYE_CENTRES_FACE_M.copy()


def _eye_centres(eye_centres_face_m: np.ndarray | None) -> np.ndarray:
    """The caller's (2, 3) eyeball centres, or the default ones; ValueError if misshapen."""
    eyes = _default_eye_centres() if eye_centres_face_m is None else np.asarray(eye_centres_face_m, float)
    if eyes.shape != (2, 3):
        raise ValueError(f"eye_centres_face_m must be (2, 3), got {eyes.shape}")
    return eyes


def _hold_arm_proportions(measured: dict[str, float]) -> None:
    """Lengthen, in place, a measured upper or lower arm (metres) that is shorter than its
    proportion of the other by more than ARM_RATIO_TOLERANCE (the shorter is the foreshortened one:
    a length is under-read, hardly ever over-read)."""
    if "upper_arm" not in measured or "lower_arm" not in measured:
        return
    ratio = MEASURED_RATIOS["lower_arm"] / MEASURED_RATIOS["upper_arm"]
    upper, lower = measured["upper_arm"], measured["lower_arm"]
    measured["lower_arm"] = max(lower, (1.0 - ARM_RATIO_TOLERANCE) * ratio * upper)
    measured["upper_arm"] = max(upper, (1.0 - ARM_RATIO_TOLERANCE) * lower / ratio)


def _stature(measured: dict[str, float]) -> float:
    """Stature (metres) from every measured segment length; the median shrugs off one badly
    measured part. DEFAULT_HEIGHT_M when nothing was measured."""
    if not measured:
        return DEFAULT_HEIGHT_M
    height = float(np.median([measured[k] / MEASURED_RATIOS[k] for k in measured]))
    return float(np.clip(height, MIN_HEIGHT_M, MAX_HEIGHT_M))


def _segment_lengths(measured: dict[str, float], height: float) -> tuple[dict[str, float], dict[str, str]]:
    """Every sized segment (metres) and where its length came from (see `Skeleton.length_source`):
    the measured length bounded to plausible proportions of the stature `height`, else the
    proportion; plus the derived ankle height, crown, foot and hand lengths."""
    lengths, source = {}, {}
    for key, ratio in MEASURED_RATIOS.items():
        expected = ratio * height
        if key in measured:
            # Bound to plausible proportions: guards against a mis-tracked limb.
            lengths[key] = float(np.clip(measured[key], MIN_OF_EXPECTED * expected, MAX_OF_EXPECTED * expected))
            source[key] = "measured"
        else:
            lengths[key] = expected
            source[key] = "proportion" if measured else "default"
    derived = "proportion" if measured else "default"
    lengths["ankle_height"], source["ankle_height"] = ANKLE_HEIGHT_RATIO * height, derived
    lengths["crown_above_ears"], source["crown_above_ears"] = CROWN_ABOVE_EARS_RATIO * height, derived
    lengths["foot_length"], source["foot_length"] = FOOT_LENGTH_RATIO * height, derived
    # Hand: scale MediaPipe's wrist -> knuckles span to the full hand when it was measured.
    lengths["hand_length"] = lengths["hand"] * HAND_LENGTH_RATIO / MEASURED_RATIOS["hand"]
    source["hand_length"] = source["hand"]
    return lengths, source


def _levels(lengths: dict[str, float], scale: float) -> _Levels:
    """Rest heights of the hips, shoulders, ears, head and neck joints from the segment lengths
    (metres); scale: stature / DEFAULT_HEIGHT_M."""
    y_hip = lengths["ankle_height"] + lengths["lower_leg"] + lengths["upper_leg"]
    y_sh = y_hip + lengths["torso"]
    y_ears = y_sh + lengths["neck"]
    ear_above_head = HEAD_ANCHOR_M[1] + EAR_MID_IN_FACE_M[1]
    y_head = y_ears - ear_above_head
    # The neck joint (base of the neck, C7) sits a little above the shoulder joints, but never
    # so high that the neck bone gets shorter than 4 cm.
    y_neck = min(y_sh + NECK_JOINT_OF_NECK * lengths["neck"], y_head - MIN_NECK_BONE_M * scale)
    return _Levels(y_hip, y_sh, y_ears, y_head, y_neck)


def _foot_layout(foot_length: float, scale: float) -> _FootLayout:
    """Heel and toes joint of a foot `foot_length` metres long; scale: stature / DEFAULT_HEIGHT_M."""
    heel_z = -HEEL_BEHIND_ANKLE * foot_length
    ball_z = heel_z + BALL_OF_FOOT * foot_length
    return _FootLayout(heel_z, ball_z, TOE_JOINT_HEIGHT_M * scale)


def _rest_positions(lengths: dict[str, float], levels: _Levels, foot: _FootLayout,
                    eyes: np.ndarray) -> dict[str, tuple | np.ndarray]:
    """Rest (T-pose) model-space position (metres) of every joint, by humanoid name."""
    half_shoulders, half_hips = 0.5 * lengths["shoulder_width"], 0.5 * lengths["hip_width"]
    y_hip, y_sh = levels.hips, levels.shoulders
    head = np.array([0.0, levels.head, 0.0])
    world = {
        "hips": (0.0, y_hip, 0.0),
        "spine": (0.0, y_hip + SPINE_JOINT_OF_TORSO * lengths["torso"], 0.0),
        "chest": (0.0, y_hip + CHEST_JOINT_OF_TORSO * lengths["torso"], 0.0),
        "neck": (0.0, levels.neck, 0.0),
        "head": head,
        "leftEye": head + HEAD_ANCHOR_M + eyes[0],
        "rightEye": head + HEAD_ANCHOR_M + eyes[1],
    }
    for side, sx in (("left", 1.0), ("right", -1.0)):
        world[f"{side}Shoulder"] = (sx * CLAVICLE_OF_HALF_SHOULDERS * half_shoulders, y_sh, 0.0)
        world[f"{side}UpperArm"] = (sx * half_shoulders, y_sh, 0.0)
        world[f"{side}LowerArm"] = (sx * (half_shoulders + lengths["upper_arm"]), y_sh, 0.0)
        world[f"{side}Hand"] = (sx * (half_shoulders + lengths["upper_arm"] + lengths["lower_arm"]), y_sh, 0.0)
        world[f"{side}UpperLeg"] = (sx * half_hips, y_hip, 0.0)
        world[f"{side}LowerLeg"] = (sx * half_hips, y_hip - lengths["upper_leg"], 0.0)
        world[f"{side}Foot"] = (sx * half_hips, lengths["ankle_height"], 0.0)
        world[f"{side}Toes"] = (sx * half_hips, foot.toe_joint_y, foot.ball_z)
    return world


def build_skeleton(tracks: Tracks | None, eye_centres_face_m: np.ndarray | None = None) -> Skeleton:
    """Size the humanoid skeleton from a take (or a default 1.75 m adult if `tracks` is None or
    holds no body).

    eye_centres_face_m: optional (2, 3) [left, right] eyeball centres in canonical face space
    (metres); the eye joints go to head joint + head_anchor_m + centre.
    """
    measured, _ = measure_segments(tracks) if tracks is not None else ({}, {})
    if tracks is not None and not tracks.multiview:  # MediaPipe's arms come out ~10 % short: the image
        measured.update({k: v for k, v in image_segment_lengths(tracks).items() if k in measured})
    _hold_arm_proportions(measured)
    height = _stature(measured)
    lengths, source = _segment_lengths(measured, height)
    scale = height / DEFAULT_HEIGHT_M
    levels = _levels(lengths, scale)
    foot_length = lengths["foot_length"]
    foot = _foot_layout(foot_length, scale)
    world = _rest_positions(lengths, levels, foot, _eye_centres(eye_centres_face_m))

    names = tuple(n for n, _ in HUMANOID_BONES)
    parents = np.array([-1 if p is None else names.index(p) for _, p in HUMANOID_BONES], np.int64)
    rest_world = np.array([world[n] for n in names], np.float64)
    rest_local = rest_world.copy()
    rest_local[1:] -= rest_world[parents[1:]]
    return Skeleton(
        names=names, parents=parents, rest_local_m=rest_local, rest_world_m=rest_world,
        head_anchor_m=HEAD_ANCHOR_M.copy(),
        height_m=float(levels.ears + lengths["crown_above_ears"]),
        hand_length_m=float(lengths["hand_length"]), foot_length_m=float(foot_length),
        heel_offset_m=np.array([0.0, -lengths["ankle_height"], foot.heel_z]),
        toe_tip_offset_m=np.array([0.0, -foot.toe_joint_y, foot.heel_z + foot_length - foot.ball_z]),
        lengths_m=lengths, length_source=source,
    )

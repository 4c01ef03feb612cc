"""The avatar's humanoid skeleton, sized from the take.

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

import numpy as np

from pipeline.core.tracks import POSE, Tracks

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

# The canonical face origin relative to the head joint (skull base) in the head's rest frame, and
# the ears relative to the face origin (canonical landmarks 234/454 are at z = -0.024, the ear
# canal a little behind). With these two, the ears sit straight above the head joint. Metres; the
# canonical face has a fixed size, so these are not scaled with the body.
HEAD_ANCHOR_M = np.array([0.0, 0.035, 0.030])
EAR_MID_IN_FACE_M = np.array([0.0, 0.0, -0.030])
# Eyeball centres in canonical face space [left, right] when the caller gives none: the middle of
# each eye's corners (landmarks 263/362 and 33/133) pushed 5 mm back into the orbit.
DEFAULT_EYE_CENTRES_FACE_M = np.array([[0.0315, 0.0262, 0.0297], [-0.0315, 0.0262, 0.0297]])

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

    def index(self, name: str) -> int:
        """Index of a joint by its humanoid name (ValueError if unknown)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"no joint {name!r} in the skeleton") from None

    def children(self, j: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == j)]


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    x, w = x[order], w[order]
    c = np.cumsum(w)
    return float(x[np.searchsorted(c, 0.5 * c[-1])])


def measure_segments(tracks: Tracks) -> tuple[dict[str, float], dict[str, float]]:
    """Weighted-median length of each segment of _SEGMENTS over the take.

    Only frames where every landmark of the segment has visibility >= 0.5 count, weighted by the
    smallest of those visibilities. Returns (lengths in metres, fraction of valid frames that
    counted); segments seen in too few frames are absent from the lengths.
    """
    valid = np.asarray(tracks.pose_valid, bool)
    if not valid.any():
        return {}, {}
    w = tracks.pose_world_m[valid].astype(np.float64)
    vis = np.nan_to_num(tracks.pose_visibility[valid].astype(np.float64))
    n = int(valid.sum())
    lengths, coverage = {}, {}
    for key, pairs in _SEGMENTS.items():
        ds, ws = [], []
        for a, b in pairs:
            pa, pb = w[:, _PTS[a]].mean(1), w[:, _PTS[b]].mean(1)
            v = np.minimum(vis[:, _PTS[a]].min(1), vis[:, _PTS[b]].min(1))
            d = np.linalg.norm(pa - pb, axis=-1)
            ok = (v >= MIN_VISIBILITY) & np.isfinite(d)
            ds.append(d[ok])
            ws.append(v[ok])
        d, wt = np.concatenate(ds), np.concatenate(ws)
        coverage[key] = len(d) / (n * len(pairs))
        # A part seen in a handful of frames (a hand flashing into view) is not trusted.
        if len(d) >= max(3, 0.1 * n * len(pairs)):
            lengths[key] = _weighted_median(d, wt)
    return lengths, coverage


def _default_eye_centres() -> np.ndarray:
    try:  # the canonical mesh ships in the face model; fall back to constants without it
        from pipeline.face.canonical import load_canonical_face

        v = load_canonical_face().vertices_m
        left, right = v[[263, 362]].mean(0), v[[33, 133]].mean(0)
        return np.stack([left, right]) + np.array([0.0, 0.0, -0.005])
    except Exception:  # noqa: BLE001 - any missing/unreadable asset
        return DEFAULT_EYE_CENTRES_FACE_M.copy()


def build_skeleton(tracks: Tracks | None, eye_centres_face_m: np.ndarray | None = None) -> Skeleton:
    """Size the humanoid skeleton from a take (or a default 1.75 m adult if `tracks` is None or
    holds no body).

    eye_centres_face_m: optional (2, 3) [left, right] eyeball centres in canonical face space
    (metres); the eye joints go to head joint + head_anchor_m + centre.
    """
    measured, _ = measure_segments(tracks) if tracks is not None else ({}, {})
    if measured:
        # Stature from every measured part; the median shrugs off one badly measured part.
        height = float(np.median([measured[k] / MEASURED_RATIOS[k] for k in measured]))
        height = float(np.clip(height, 1.0, 2.3))
    else:
        height = DEFAULT_HEIGHT_M
    L, src = {}, {}
    for key, ratio in MEASURED_RATIOS.items():
        expected = ratio * height
        if key in measured:
            # Bound to plausible proportions: guards against a mis-tracked limb.
            L[key] = float(np.clip(measured[key], 0.75 * expected, 1.33 * expected))
            src[key] = "measured"
        else:
            L[key] = expected
            src[key] = "proportion" if measured else "default"
    derived = "proportion" if measured else "default"
    L["ankle_height"], src["ankle_height"] = ANKLE_HEIGHT_RATIO * height, derived
    L["crown_above_ears"], src["crown_above_ears"] = CROWN_ABOVE_EARS_RATIO * height, derived
    L["foot_length"], src["foot_length"] = FOOT_LENGTH_RATIO * height, derived
    # Hand: scale MediaPipe's wrist -> knuckles span to the full hand when it was measured.
    L["hand_length"] = L["hand"] * HAND_LENGTH_RATIO / MEASURED_RATIOS["hand"]
    src["hand_length"] = src["hand"]

    s = height / DEFAULT_HEIGHT_M
    y_hip = L["ankle_height"] + L["lower_leg"] + L["upper_leg"]
    y_sh = y_hip + L["torso"]
    y_ears = y_sh + L["neck"]
    ear_above_head = HEAD_ANCHOR_M[1] + EAR_MID_IN_FACE_M[1]
    y_head = y_ears - ear_above_head
    # The neck joint (base of the neck, C7) sits a little above the shoulder joints, but never
    # so high that the neck bone gets shorter than 4 cm.
    y_neck = min(y_sh + 0.25 * L["neck"], y_head - 0.04 * s)
    hsw, hhw = 0.5 * L["shoulder_width"], 0.5 * L["hip_width"]
    fl = L["foot_length"]
    heel_z = -HEEL_BEHIND_ANKLE * fl
    ball_z = heel_z + BALL_OF_FOOT * fl
    toe_joint_y = 0.025 * s

    eyes = _default_eye_centres() if eye_centres_face_m is None else np.asarray(eye_centres_face_m, float)
    if eyes.shape != (2, 3):
        raise ValueError(f"eye_centres_face_m must be (2, 3), got {eyes.shape}")
    head = np.array([0.0, y_head, 0.0])
    world = {
        "hips": (0.0, y_hip, 0.0),
        "spine": (0.0, y_hip + 0.25 * L["torso"], 0.0),
        "chest": (0.0, y_hip + 0.6 * L["torso"], 0.0),
        "neck": (0.0, y_neck, 0.0),
        "head": head,
        "leftEye": head + HEAD_ANCHOR_M + eyes[0],
        "rightEye": head + HEAD_ANCHOR_M + eyes[1],
    }
    for side, sx in (("left", 1.0), ("right", -1.0)):
        world[f"{side}Shoulder"] = (sx * 0.2 * hsw, y_sh, 0.0)
        world[f"{side}UpperArm"] = (sx * hsw, y_sh, 0.0)
        world[f"{side}LowerArm"] = (sx * (hsw + L["upper_arm"]), y_sh, 0.0)
        world[f"{side}Hand"] = (sx * (hsw + L["upper_arm"] + L["lower_arm"]), y_sh, 0.0)
        world[f"{side}UpperLeg"] = (sx * hhw, y_hip, 0.0)
        world[f"{side}LowerLeg"] = (sx * hhw, y_hip - L["upper_leg"], 0.0)
        world[f"{side}Foot"] = (sx * hhw, L["ankle_height"], 0.0)
        world[f"{side}Toes"] = (sx * hhw, toe_joint_y, ball_z)

    names = tuple(n for n, _ in HUMANOID_BONES)
    parents = np.array([-1 if p is None else names.index(p) for _, p in HUMANOID_BONES], np.int64)
    rest_world = np.array([world[n] for n in names], np.float64)
    rest_local = rest_world.copy()
    rest_local[1:] -= rest_world[parents[1:]]
    return Skeleton(
        names=names, parents=parents, rest_local_m=rest_local, rest_world_m=rest_world,
        head_anchor_m=HEAD_ANCHOR_M.copy(),
        height_m=float(y_ears + L["crown_above_ears"]),
        hand_length_m=float(L["hand_length"]), foot_length_m=float(fl),
        heel_offset_m=np.array([0.0, -L["ankle_height"], heel_z]),
        toe_tip_offset_m=np.array([0.0, -toe_joint_y, heel_z + fl - ball_z]),
        lengths_m=L, length_source=src,
    )

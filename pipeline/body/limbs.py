"""Arms and legs of the body solve, seen or not.

Inputs: a `Skeleton`, the levelled `Landmarks` of N frames and the `SolvedPose` whose torso is
solved (pipeline.body.landmarks; glTF world, metres, the avatar faces +Z, its left is +X).
Output: the limb joints' local rotations, confidences and from-view flags, attached to the pose.

A seen bone swings (in its parent's frame) along the shortest arc that points its rest direction
along the tracked bone, plus, where a secondary landmark shows it, a twist about the bone: the hand
plane index - pinky (lower arm pronation, hand) and the ankle above the heel -> toe line (foot
roll). Upper arms and legs are swing only. Knees bend only backward and toes point ahead of the
heel: the depth of a shin or foot that breaks this is taken as mirrored by MediaPipe and mirrored
back.

An unseen bone (out of the frame, or not visible: pipeline.body.landmarks) is never solved from
MediaPipe's guess: it keeps its last seen rotation and eases to its default with the time constant
EASE_TO_REST_S (an arm leaving the frame drops back to rest in about a second, no pop). Defaults:
arms hanging ARM_DOWN_DEG out from the body, straight elbows and wrists; legs standing, or seated
when the seen hips and thighs say so (thighs pointing forward, closer to horizontal than vertical:
the thigh then points forward and the shin hangs straight down); a shin whose knee and ankle are
unseen hangs straight down below the knee (never bending the knee forward), feet at right angles
to the shins.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.filters import VISIBILITY_TAU_S, _lowpass_runs
from pipeline.body.landmarks import HAND_SEEN_RAMP, SEEN, Landmarks, SolvedPose
from pipeline.body.rotations import _arc, _blend, _ease_unseen, _identity, _ramp, _swing, _twist, _unit
from pipeline.body.skeleton import Skeleton

ARM_DOWN_DEG = 8.0        # relaxed arms: this far out from hanging straight down
EASE_TO_REST_S = 0.4      # an unseen bone eases from its last seen rotation to its default, time constant (s)
# Seated legs: a seen thigh whose angle from straight down (in the hips' frame) ramps from START to
# FULL (and points forward) says "seated". Standing and walking thighs stay under 35 degrees from
# the hips' down axis; a seated person's are near 90.
SEATED_START_DEG = 45.0
SEATED_FULL_DEG = 65.0

UP = np.array([0.0, 1.0, 0.0])
DOWN = np.array([0.0, -1.0, 0.0])
FORWARD = np.array([0.0, 0.0, 1.0])
SEATED_THIGH = _arc(DOWN, FORWARD)[0]  # the seated thigh's local rotation: straight forward


def _relaxed_upper_arm(sx: float, n: int) -> Rotation:
    """N rotations of an upper arm hanging ARM_DOWN_DEG out from straight down (side sign sx)."""
    ax = np.array([sx, 0.0, 0.0])
    relaxed = _arc(ax, np.array([sx * np.sin(np.radians(ARM_DOWN_DEG)),
                                 -np.cos(np.radians(ARM_DOWN_DEG)), 0.0]))
    return Rotation.from_quat(np.tile(relaxed.as_quat(), (n, 1)))


def _attach_eased(skel: Skeleton, pose: SolvedPose, name: str, parent: str, view: Rotation,
                  default: Rotation, weight: np.ndarray, confidence: np.ndarray) -> None:
    """Attach joint `name` following `view` where seen (weight (N,)), else easing to `default`."""
    local = _ease_unseen(view, weight, default, pose.clock_s, EASE_TO_REST_S)
    pose.attach(skel, name, parent, local, confidence, weight)


def solve_arm(skel: Skeleton, marks: Landmarks, pose: SolvedPose, side: str, sx: float) -> None:
    """Clavicle, upper arm, lower arm and hand of one side (sx: the sign of its X)."""
    n = len(marks.points_m)
    ident = _identity(n)
    # Clavicle: identity; the chest frame already puts the shoulder joints on the shoulder line.
    pose.attach(skel, f"{side}Shoulder", "chest", ident, marks.confidence("left_shoulder", "right_shoulder"),
                marks.weight("left_shoulder", "right_shoulder"))
    ax = np.array([sx, 0.0, 0.0])
    shoulder, elbow = marks.mean(f"{side}_shoulder"), marks.mean(f"{side}_elbow")
    wrist = marks.mean(f"{side}_wrist")
    knuckles = marks.mean(f"{side}_index", f"{side}_pinky")
    across = marks.mean(f"{side}_index") - marks.mean(f"{side}_pinky")  # rest (palms down, T-pose): +Z

    # Upper arm: swing only, to the elbow. (Its twist is not observable without a hand plane; the
    # lower arm takes the forearm's roll from the hand.)
    upper = _swing(ax, pose.global_rot[f"{side}Shoulder"].inv().apply(elbow - shoulder))
    ends = (f"{side}_shoulder", f"{side}_elbow")
    _attach_eased(skel, pose, f"{side}UpperArm", f"{side}Shoulder", upper, _relaxed_upper_arm(sx, n),
                  marks.weight(*ends), marks.confidence(*ends))

    # Lower arm: swing to the wrist, twist (pronation) from the hand plane.
    parent = pose.global_rot[f"{side}UpperArm"]
    w_hand = marks.weight(f"{side}_wrist", f"{side}_index", f"{side}_pinky", ramp=HAND_SEEN_RAMP)
    lower = _twist(_swing(ax, parent.inv().apply(wrist - elbow)), parent, ax, FORWARD, across, w_hand)
    _attach_eased(skel, pose, f"{side}LowerArm", f"{side}UpperArm", lower, ident,
                  marks.weight(f"{side}_elbow", f"{side}_wrist"), marks.confidence(f"{side}_elbow", f"{side}_wrist"))

    # Hand: swing to the knuckles, twist from index - pinky.
    parent = pose.global_rot[f"{side}LowerArm"]
    hand = _twist(_swing(ax, parent.inv().apply(knuckles - wrist)), parent, ax, FORWARD, across, np.ones(n))
    _attach_eased(skel, pose, f"{side}Hand", f"{side}LowerArm", hand, ident, w_hand,
                  marks.confidence(f"{side}_wrist", f"{side}_index", f"{side}_pinky"))


def seated_share(marks: Landmarks, hips: Rotation, valid: np.ndarray, fps: float) -> np.ndarray:
    """(N,) in [0, 1]: how far the take's legs are seated, frame by frame.

    From the frames whose hips and knees are seen (either side): the thighs' angle from the hips'
    down axis (SEATED_START_DEG -> SEATED_FULL_DEG, thighs pointing forward); carried to the frames
    between and around them (nearest seen evidence, interpolated), then low-pass filtered. Zero in
    every frame when no thigh is ever seen (legs at rest: standing).
    """
    n = len(valid)
    evidence, weight = np.zeros(n), np.zeros(n)
    for side in ("left", "right"):
        thigh = hips.inv().apply(marks.mean(f"{side}_knee") - marks.mean(f"{side}_hip"))
        angle = np.degrees(np.arccos(np.clip(_unit(thigh) @ DOWN, -1.0, 1.0)))
        forward = _ramp(_unit(thigh)[:, 2], 0.0, 0.3)  # a thigh pointing back is not seated
        w = (marks.weight(f"{side}_hip", f"{side}_knee") >= SEEN) & valid
        evidence += w * _ramp(angle, SEATED_START_DEG, SEATED_FULL_DEG) * forward
        weight += w
    seen = weight > 0
    if not seen.any():
        return np.zeros(n)
    idx = np.arange(n)
    share = np.interp(idx, idx[seen], evidence[seen] / weight[seen])
    return np.clip(_lowpass_runs(share, np.ones(n, bool), fps, VISIBILITY_TAU_S), 0.0, 1.0)


def solve_leg(skel: Skeleton, marks: Landmarks, pose: SolvedPose, side: str, seated: np.ndarray) -> None:
    """Upper leg, lower leg, foot and toes of one side; seated: (N,) see `seated_share`."""
    n = len(marks.points_m)
    ident = _identity(n)
    hip, knee, ankle = marks.mean(f"{side}_hip"), marks.mean(f"{side}_knee"), marks.mean(f"{side}_ankle")
    heel, toe = marks.mean(f"{side}_heel"), marks.mean(f"{side}_foot_index")
    # Upper leg: swing only, to the knee (a knee bending forward then stays a hinge about X).
    upper = _swing(DOWN, pose.global_rot["hips"].inv().apply(knee - hip))
    standing_or_seated = _blend(ident, SEATED_THIGH * ident, seated)
    _attach_eased(skel, pose, f"{side}UpperLeg", "hips", upper, standing_or_seated,
                  marks.weight(f"{side}_hip", f"{side}_knee"), marks.confidence(f"{side}_hip", f"{side}_knee"))

    # Lower leg: swing to the ankle. A knee cannot bend forward: a shin ahead of the thigh (+Z in
    # the thigh's frame) is MediaPipe mirroring the depth of the lower leg, so mirror it back. The
    # default hangs straight down (the same rule keeps its knee from bending forward).
    parent = pose.global_rot[f"{side}UpperLeg"]
    shin, hanging = parent.inv().apply(ankle - knee), parent.inv().apply(np.tile(DOWN, (n, 1)))
    shin[:, 2], hanging[:, 2] = -np.abs(shin[:, 2]), -np.abs(hanging[:, 2])
    _attach_eased(skel, pose, f"{side}LowerLeg", f"{side}UpperLeg", _swing(DOWN, shin), _swing(DOWN, hanging),
                  marks.weight(f"{side}_knee", f"{side}_ankle"), marks.confidence(f"{side}_knee", f"{side}_ankle"))

    # Foot: heel -> toe is +Z at rest; roll from the ankle above that line. Toes behind the heel
    # (-Z in the shin's frame) are a depth mirror too: mirror back.
    parent = pose.global_rot[f"{side}LowerLeg"]
    sole = parent.inv().apply(toe - heel)
    sole[:, 2] = np.abs(sole[:, 2])
    foot = _twist(_swing(FORWARD, sole), parent, FORWARD, UP, ankle - heel, np.ones(n))
    foot_names = (f"{side}_heel", f"{side}_foot_index", f"{side}_ankle")
    _attach_eased(skel, pose, f"{side}Foot", f"{side}LowerLeg", foot, ident, marks.weight(*foot_names),
                  marks.confidence(*foot_names))
    # the toes are not solved from their landmark (pipeline.body.feet bends them): never "from view"
    pose.attach(skel, f"{side}Toes", f"{side}Foot", ident, pose.confidence[:, skel.index(f"{side}Foot")])

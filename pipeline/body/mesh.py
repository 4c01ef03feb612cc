"""A simple skinned body (everything below the head) for a `Skeleton`.

Input: a `Skeleton` (pipeline.body.skeleton); output: a `SkinnedMesh` (float32 positions and unit
normals in metres, uint32 triangles, up to MAX_INFLUENCES uint16 joints and float32 weights per
vertex, linear RGBA vertex colours).

Frames and units: the skeleton's rest (T-pose) model space: glTF, metres, Y up, facing +Z, the
avatar's left at +X, soles on Y = 0. The body is a set of closed, smooth "lofted" tubes with
rounded ends, one per part (torso, neck stub, upper/lower arms, hands, upper/lower legs, feet);
neighbouring parts overlap at the joints so no gap opens when they bend. The neck stub stops a
little above the head joint: the head mesh (another module) covers the rest.

Skin weights: each vertex is weighted by inverse distance (power 4) to the bone segments of its
part and its neighbours, keeping the 4 strongest; at an elbow or knee a vertex halfway between
the two segments gets about half of each, which bends the surface smoothly. The tops of the
upper arms and legs are rigid to their bone (they are tucked into the torso, and blending them
with the trunk would pinch them when the limb swings far from the T-pose).
"""
from __future__ import annotations

import numpy as np
import trimesh

from pipeline.body.skeleton import BALL_OF_FOOT, DEFAULT_HEIGHT_M, Skeleton
from pipeline.core.mesh import SkinnedMesh

# Linear-space RGBA colours (glTF COLOR_0 is linear).
SKIN = (0.62, 0.38, 0.28, 1.0)
SHIRT = (0.08, 0.18, 0.40, 1.0)
TROUSERS = (0.06, 0.06, 0.07, 1.0)
SHOES = (0.20, 0.12, 0.07, 1.0)
MAX_INFLUENCES = 4
SKIN_POWER = 4                # skin weight: inverse distance to the bone segment to this power
MIN_SKIN_DISTANCE_M = 1e-3    # distances below this count as this (a vertex on a bone)
MIN_INFLUENCE = 1e-3          # normalised skin weights below this are dropped
AXIS_X, AXIS_Y, AXIS_Z = np.eye(3)

# Sizes below are metres for the default 1.75 m stature and scale with the skeleton's stature.
# Semi-axes of a limb's rings are given from its root joint to its end.

# Skinning segments of joints without a child bone in the rest pose.
PELVIS_SEGMENT_BELOW_M = 0.08  # the hips' segment starts this far below the hip joint
HEAD_SEGMENT_M = 0.12          # the head's segment: straight up from the head joint
TOE_SEGMENT_RAISE_M = 0.02     # the toes' segment ends this far above the toe tip

# Torso: elliptic rings, bottom to top, from below the pelvis to the base of the neck.
PELVIS_BELOW_HIPS_M = 0.07     # lowest ring below the hip joints
HIP_RING_ABOVE_HIPS_M = 0.04   # second ring above them
WAIST_OF_TORSO = 0.45          # waist ring: fraction of the way from the hips to the shoulders
RIBS_OF_TORSO = 0.75           # rib-cage ring: same fraction
NECK_RING_ABOVE_M = 0.01       # top ring above the middle of the shoulders and the neck joint
PELVIS_FLESH_M = 0.05          # lowest ring's half width beyond the hip joints
HIP_FLESH_M = 0.06             # second ring's half width beyond the hip joints
WAIST_OF_SHOULDERS = 0.78      # waist half width, fraction of the half shoulder width (+ SHOULDER_FLESH_M)
RIBS_OF_SHOULDERS = 0.92       # rib-cage half width, same fraction (+ SHOULDER_FLESH_M)
SHOULDER_FLESH_M = 0.02        # half width beyond the shoulder joints
NECK_RING_OF_SHOULDERS = 0.55  # top ring's half width, fraction of the half shoulder width
TORSO_DEPTHS_M = (0.095, 0.105, 0.100, 0.112, 0.090, 0.070)  # front-back semi-axes, bottom to top
TORSO_CAP_RINGS, TORSO_CAP_SCALE = 3, 0.6  # rounded end caps: rings, length over the end ring's smaller semi-axis

# Neck stub: from inside the torso to a little above (and in front of) the head joint.
NECK_BELOW_JOINT_M = 0.03
NECK_TOP_FROM_HEAD_M = (0.0, 0.03, 0.01)
NECK_RADII_M = ((0.055, 0.058), (0.05, 0.055))  # (side, front-back)
NECK_CAP_RINGS, NECK_CAP_SCALE = 2, 0.5

# Arms along +-X: (front-back, up-down) semi-axes at the root, the middle and the end.
UPPER_ARM_RADII_M = ((0.050, 0.050), (0.044, 0.042), (0.038, 0.036))
FOREARM_RADII_M = ((0.038, 0.036), (0.034, 0.030), (0.028, 0.022))
HAND_RADII_M = ((0.035, 0.018), (0.045, 0.016), (0.040, 0.011))
HAND_START_M = 0.02            # the hand starts this far out from the wrist joint
HAND_MID_OF_LENGTH = 0.45      # the hand's middle ring, fraction of the hand length
HAND_END_OF_LENGTH = 0.8       # its last ring (the rounded cap reaches the finger tips)
HAND_CAP_RINGS, HAND_CAP_SCALE = 3, 1.6

# Legs: (side, front-back) semi-axes at the root, the middle and the end.
THIGH_RADII_M = ((0.080, 0.080), (0.066, 0.066), (0.052, 0.052))
SHIN_RADII_M = ((0.052, 0.052), (0.048, 0.050), (0.034, 0.034))
THIGH_TOP_ABOVE_HIP_M = 0.03   # the thigh starts above the hip joint (inside the pelvis)
SHIN_END_ABOVE_ANKLE_M = 0.01

# Foot: rings from heel to toe tip, (z, half width, half height); z at the heel + HEEL_RING_M,
# at fractions of the foot length (the arch, the ball of the foot) and the toe tip - TIP_RING_M.
HEEL_RING_M = 0.02
ARCH_OF_FOOT = 0.35
TIP_RING_M = 0.025
FOOT_HALF_WIDTHS_M = (0.032, 0.040, 0.045, 0.038)
FOOT_HALF_HEIGHTS_M = (0.036, 0.050, 0.030, 0.018)
FOOT_CAP_RINGS, FOOT_CAP_SCALE = 3, 0.7

_Part = tuple[trimesh.Trimesh, list[str], tuple]  # a tube, the joints that may skin it, its colour


def _rows_with_caps(centres: np.ndarray, radii: np.ndarray, axis: np.ndarray, cap_rings: int,
                    cap_scale: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Ring centres (R, 3) and semi-axes (R, 2) of a tube through centres (K, 3) with radii (K, 2)
    along the unit `axis`, with `cap_rings` extra rings beyond each end shrinking like a quarter
    ellipse; and the cap lengths (metres) at the start and at the end."""
    phis = np.linspace(0, np.pi / 2, cap_rings + 2)[1:-1]
    rows_c, rows_r = [], []
    h0 = cap_scale * radii[0].min()
    for phi in phis[::-1]:
        rows_c.append(centres[0] - axis * h0 * np.sin(phi))
        rows_r.append(radii[0] * np.cos(phi))
    rows_c.extend(centres)
    rows_r.extend(radii)
    h1 = cap_scale * radii[-1].min()
    for phi in phis:
        rows_c.append(centres[-1] + axis * h1 * np.sin(phi))
        rows_r.append(radii[-1] * np.cos(phi))
    return np.array(rows_c), np.array(rows_r), h0, h1


def _tube_faces(n_rows: int, n_around: int) -> np.ndarray:
    """(F, 3) triangles of n_rows rings of n_around vertices (row-major), closed at both ends by
    fans to two pole vertices that follow the rings."""
    row_start = np.arange(n_rows - 1)[:, None] * n_around
    col = np.arange(n_around)[None, :]
    # Each quad: a, b on one ring, c, d the same columns on the next.
    a, b = row_start + col, row_start + (col + 1) % n_around
    c, d = a + n_around, b + n_around
    faces = [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    pole0, pole1 = n_rows * n_around, n_rows * n_around + 1
    first, last = np.arange(n_around), (n_rows - 1) * n_around + np.arange(n_around)
    faces.append(np.stack([np.full(n_around, pole0), np.roll(first, -1), first], -1))
    faces.append(np.stack([np.full(n_around, pole1), last, np.roll(last, -1)], -1))
    return np.concatenate(faces)


def loft(centres: np.ndarray, radii: np.ndarray, e1: np.ndarray, e2: np.ndarray,
         n_around: int = 16, cap_rings: int = 3, cap_scale: float = 1.0) -> trimesh.Trimesh:
    """A closed tube through `centres` (K, 3) with elliptic sections.

    radii: (K, 2) semi-axes along the unit vectors e1 and e2 (both perpendicular to the tube's
    main direction). Each end gets a rounded (half-ellipsoid) cap of `cap_rings` rings whose
    length is cap_scale times the end's smaller radius. Faces point outward.
    """
    centres = np.asarray(centres, float)
    radii = np.asarray(radii, float)
    axis = centres[-1] - centres[0]
    axis /= np.linalg.norm(axis)
    rows_c, rows_r, h0, h1 = _rows_with_caps(centres, radii, axis, cap_rings, cap_scale)
    angles = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    ring = (rows_c[:, None, :] + rows_r[:, None, 0:1] * np.cos(angles)[None, :, None] * e1
            + rows_r[:, None, 1:2] * np.sin(angles)[None, :, None] * e2)
    verts = np.concatenate([ring.reshape(-1, 3), [centres[0] - axis * h0],
                            [centres[-1] + axis * h1]])
    mesh = trimesh.Trimesh(verts, _tube_faces(len(rows_c), n_around), process=False)
    if mesh.volume < 0:  # the winding depends on the handedness of (e1, e2, axis)
        mesh.faces = mesh.faces[:, ::-1]
    return mesh


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p (V, 3) to the segment a-b."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=-1)


def _bone_segments(skel: Skeleton) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rest-pose segment each skinning joint moves: from the joint to its child (or a stand-in)."""
    rest_world = skel.rest_world_m
    joint = skel.index
    scale = skel.height_m / DEFAULT_HEIGHT_M
    seg = {
        "hips": (rest_world[joint("hips")] - [0, PELVIS_SEGMENT_BELOW_M * scale, 0], rest_world[joint("spine")]),
        "spine": (rest_world[joint("spine")], rest_world[joint("chest")]),
        "chest": (rest_world[joint("chest")], rest_world[joint("neck")]),
        "neck": (rest_world[joint("neck")], rest_world[joint("head")]),
        "head": (rest_world[joint("head")], rest_world[joint("head")] + [0, HEAD_SEGMENT_M * scale, 0]),
    }
    for side, sx in (("left", 1.0), ("right", -1.0)):
        for name, child in (("Shoulder", "UpperArm"), ("UpperArm", "LowerArm"), ("LowerArm", "Hand")):
            seg[f"{side}{name}"] = (rest_world[joint(f"{side}{name}")], rest_world[joint(f"{side}{child}")])
        hand = rest_world[joint(f"{side}Hand")]
        seg[f"{side}Hand"] = (hand, hand + [sx * skel.hand_length_m, 0, 0])
        for name, child in (("UpperLeg", "LowerLeg"), ("LowerLeg", "Foot"), ("Foot", "Toes")):
            seg[f"{side}{name}"] = (rest_world[joint(f"{side}{name}")], rest_world[joint(f"{side}{child}")])
        toes = rest_world[joint(f"{side}Toes")]
        seg[f"{side}Toes"] = (toes, toes + skel.toe_tip_offset_m + [0, TOE_SEGMENT_RAISE_M * scale, 0])
    return seg


def _skin(skel: Skeleton, verts: np.ndarray, candidates: list[str],
          segments: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 4) joints and weights by inverse distance^4 to the candidates' bone segments."""
    d = np.stack([_segment_distance(verts, *segments[c]) for c in candidates], axis=1)
    w = 1.0 / np.maximum(d, MIN_SKIN_DISTANCE_M) ** SKIN_POWER
    order = np.argsort(-w, axis=1)[:, :MAX_INFLUENCES]
    w_top = np.take_along_axis(w, order, axis=1)
    idx = np.array([skel.index(c) for c in candidates])[order]
    if w_top.shape[1] < MAX_INFLUENCES:  # fewer candidates than slots: pad
        pad = MAX_INFLUENCES - w_top.shape[1]
        w_top = np.pad(w_top, ((0, 0), (0, pad)))
        idx = np.pad(idx, ((0, 0), (0, pad)))
    w_top /= w_top.sum(1, keepdims=True)
    w_top[w_top < MIN_INFLUENCE] = 0.0  # negligible influences: drop, then renormalise
    w_top /= w_top.sum(1, keepdims=True)
    idx[w_top == 0] = 0
    return idx.astype(np.uint16), w_top.astype(np.float32)


def _torso_parts(skel: Skeleton, scale: float, n_around: int) -> list[_Part]:
    """The torso (pelvis to the base of the neck, elliptic sections wider than deep) and the neck
    stub (from inside the torso to a little above the head joint). scale: stature / 1.75 m."""
    rest_world = skel.rest_world_m
    joint = skel.index
    y_hip, y_sh = rest_world[joint("hips"), 1], rest_world[joint("leftUpperArm"), 1]
    y_neck = rest_world[joint("neck"), 1]
    half_hips, half_shoulders = rest_world[joint("leftUpperLeg"), 0], rest_world[joint("leftUpperArm"), 0]
    heights_and_half_widths = [
        (y_hip - PELVIS_BELOW_HIPS_M * scale, half_hips + PELVIS_FLESH_M * scale),
        (y_hip + HIP_RING_ABOVE_HIPS_M * scale, half_hips + HIP_FLESH_M * scale),
        (y_hip + WAIST_OF_TORSO * (y_sh - y_hip), WAIST_OF_SHOULDERS * half_shoulders + SHOULDER_FLESH_M * scale),
        (y_hip + RIBS_OF_TORSO * (y_sh - y_hip), RIBS_OF_SHOULDERS * half_shoulders + SHOULDER_FLESH_M * scale),
        (y_sh, half_shoulders + SHOULDER_FLESH_M * scale),
        (0.5 * (y_sh + y_neck) + NECK_RING_ABOVE_M * scale, NECK_RING_OF_SHOULDERS * half_shoulders),
    ]
    torso = loft([(0, y, 0) for y, _ in heights_and_half_widths],
                 [(half_width, depth * scale) for (_, half_width), depth in zip(heights_and_half_widths,
                                                                                TORSO_DEPTHS_M)],
                 AXIS_X, AXIS_Z, n_around=2 * n_around, cap_rings=TORSO_CAP_RINGS, cap_scale=TORSO_CAP_SCALE)
    neck = loft([rest_world[joint("neck")] - [0, NECK_BELOW_JOINT_M * scale, 0],
                 rest_world[joint("head")] + np.array(NECK_TOP_FROM_HEAD_M) * scale],
                np.array(NECK_RADII_M) * scale, AXIS_X, AXIS_Z, n_around, NECK_CAP_RINGS, NECK_CAP_SCALE)
    return [(torso, ["hips", "spine", "chest", "neck", "leftShoulder", "rightShoulder"], SHIRT),
            (neck, ["chest", "neck", "head"], SKIN)]


def _arm_parts(skel: Skeleton, side: str, sx: float, scale: float, n_around: int) -> list[_Part]:
    """Upper arm (sleeve), forearm and hand of one side (sx: the sign of its X), along +-X with
    semi-axes along Z (front-back) and Y (up-down)."""
    rest_world = skel.rest_world_m
    upper = rest_world[skel.index(f"{side}UpperArm")]
    lower = rest_world[skel.index(f"{side}LowerArm")]
    hand = rest_world[skel.index(f"{side}Hand")]
    out = np.array([sx, 0, 0])
    hand_length = skel.hand_length_m
    return [
        (loft([upper, 0.5 * (upper + lower), lower], np.array(UPPER_ARM_RADII_M) * scale, AXIS_Z, AXIS_Y,
              n_around),
         [f"{side}UpperArm", f"{side}LowerArm"], SHIRT),
        (loft([lower, 0.5 * (lower + hand), hand], np.array(FOREARM_RADII_M) * scale, AXIS_Z, AXIS_Y, n_around),
         [f"{side}UpperArm", f"{side}LowerArm", f"{side}Hand"], SKIN),
        (loft([hand + out * HAND_START_M * scale, hand + out * HAND_MID_OF_LENGTH * hand_length,
               hand + out * HAND_END_OF_LENGTH * hand_length],
              np.array(HAND_RADII_M) * scale, AXIS_Z, AXIS_Y, n_around, HAND_CAP_RINGS, HAND_CAP_SCALE),
         [f"{side}LowerArm", f"{side}Hand"], SKIN),
    ]


def _leg_parts(skel: Skeleton, side: str, scale: float, n_around: int) -> list[_Part]:
    """Thigh, shin and foot of one side."""
    rest_world = skel.rest_world_m
    upper = rest_world[skel.index(f"{side}UpperLeg")]
    lower = rest_world[skel.index(f"{side}LowerLeg")]
    ankle = rest_world[skel.index(f"{side}Foot")]
    thigh = loft([upper + [0, THIGH_TOP_ABOVE_HIP_M * scale, 0], 0.5 * (upper + lower), lower],
                 np.array(THIGH_RADII_M) * scale, AXIS_X, AXIS_Z, n_around)
    shin = loft([lower, 0.5 * (lower + ankle), ankle + [0, SHIN_END_ABOVE_ANKLE_M * scale, 0]],
                np.array(SHIN_RADII_M) * scale, AXIS_X, AXIS_Z, n_around)
    # Foot: heel to toe tip along +Z, sole on Y = 0 (each ring's centre height equals its
    # vertical semi-axis, so its bottom touches the floor).
    heel_z = (ankle + skel.heel_offset_m)[2]
    tip_z = (rest_world[skel.index(f"{side}Toes")] + skel.toe_tip_offset_m)[2]
    foot_length = skel.foot_length_m
    ring_z = [heel_z + HEEL_RING_M * scale, heel_z + ARCH_OF_FOOT * foot_length,
              heel_z + BALL_OF_FOOT * foot_length, tip_z - TIP_RING_M * scale]
    half_widths = [w * scale for w in FOOT_HALF_WIDTHS_M]
    half_heights = [h * scale for h in FOOT_HALF_HEIGHTS_M]
    foot = loft([(ankle[0], ry, z) for z, ry in zip(ring_z, half_heights)], list(zip(half_widths, half_heights)),
                AXIS_X, AXIS_Y, n_around, FOOT_CAP_RINGS, FOOT_CAP_SCALE)
    return [(thigh, [f"{side}UpperLeg", f"{side}LowerLeg"], TROUSERS),
            (shin, [f"{side}UpperLeg", f"{side}LowerLeg", f"{side}Foot"], TROUSERS),
            (foot, [f"{side}LowerLeg", f"{side}Foot", f"{side}Toes"], SHOES)]


def _assemble(skel: Skeleton, parts: list[_Part]) -> SkinnedMesh:
    """One skinned mesh of all parts: vertices, outward unit normals, triangles, skin weights to the
    parts' candidate joints and per-vertex colours."""
    segments = _bone_segments(skel)
    positions, normals, faces, joints, weights, colors = [], [], [], [], [], []
    offset = 0
    for mesh, candidates, rgba in parts:
        v = np.asarray(mesh.vertices)
        positions.append(v)
        normals.append(np.asarray(mesh.vertex_normals))
        faces.append(np.asarray(mesh.faces) + offset)
        jw = _skin(skel, v, candidates, segments)
        joints.append(jw[0])
        weights.append(jw[1])
        colors.append(np.tile(rgba, (len(v), 1)))
        offset += len(v)
    nrm = np.concatenate(normals)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    return SkinnedMesh(
        name="Body",
        positions=np.concatenate(positions).astype(np.float32),
        normals=nrm.astype(np.float32),
        triangles=np.concatenate(faces).astype(np.uint32),
        joints=np.concatenate(joints),
        weights=np.concatenate(weights),
        uv=None,
        color=np.concatenate(colors).astype(np.float32),
    )


def build_body_mesh(skel: Skeleton, n_around: int = 16) -> SkinnedMesh:
    """The skinned body of `skel` (no head); a few thousand vertices."""
    scale = skel.height_m / DEFAULT_HEIGHT_M  # radii scale with the stature
    parts = _torso_parts(skel, scale, n_around)
    for side, sx in (("left", 1.0), ("right", -1.0)):
        parts += _arm_parts(skel, side, sx, scale, n_around)
        parts += _leg_parts(skel, side, scale, n_around)
    return _assemble(skel, parts)

"""A simple skinned body (everything below the head) for a `Skeleton`.

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

from pipeline.body.skeleton import Skeleton
from pipeline.core.mesh import SkinnedMesh

# Linear-space RGBA colours (glTF COLOR_0 is linear).
SKIN = (0.62, 0.38, 0.28, 1.0)
SHIRT = (0.08, 0.18, 0.40, 1.0)
TROUSERS = (0.06, 0.06, 0.07, 1.0)
SHOES = (0.20, 0.12, 0.07, 1.0)
MAX_INFLUENCES = 4


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
    # Cap rings: shrink like a quarter ellipse beyond each end.
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
    rows_c, rows_r = np.array(rows_c), np.array(rows_r)
    th = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    ring = (rows_c[:, None, :] + rows_r[:, None, 0:1] * np.cos(th)[None, :, None] * e1
            + rows_r[:, None, 1:2] * np.sin(th)[None, :, None] * e2)
    verts = np.concatenate([ring.reshape(-1, 3), [centres[0] - axis * h0],
                            [centres[-1] + axis * h1]])
    r = len(rows_c)
    i = np.arange(r - 1)[:, None] * n_around
    k = np.arange(n_around)[None, :]
    a, b = i + k, i + (k + 1) % n_around
    c, d = a + n_around, b + n_around
    faces = [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    p0, p1 = len(verts) - 2, len(verts) - 1
    first, last = np.arange(n_around), (r - 1) * n_around + np.arange(n_around)
    faces.append(np.stack([np.full(n_around, p0), np.roll(first, -1), first], -1))
    faces.append(np.stack([np.full(n_around, p1), last, np.roll(last, -1)], -1))
    mesh = trimesh.Trimesh(verts, np.concatenate(faces), process=False)
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
    W = skel.rest_world_m
    j = skel.index
    s = skel.height_m / 1.75
    seg = {
        "hips": (W[j("hips")] - [0, 0.08 * s, 0], W[j("spine")]),
        "spine": (W[j("spine")], W[j("chest")]),
        "chest": (W[j("chest")], W[j("neck")]),
        "neck": (W[j("neck")], W[j("head")]),
        "head": (W[j("head")], W[j("head")] + [0, 0.12 * s, 0]),
    }
    for side, sx in (("left", 1.0), ("right", -1.0)):
        seg[f"{side}Shoulder"] = (W[j(f"{side}Shoulder")], W[j(f"{side}UpperArm")])
        seg[f"{side}UpperArm"] = (W[j(f"{side}UpperArm")], W[j(f"{side}LowerArm")])
        seg[f"{side}LowerArm"] = (W[j(f"{side}LowerArm")], W[j(f"{side}Hand")])
        hand = W[j(f"{side}Hand")]
        seg[f"{side}Hand"] = (hand, hand + [sx * skel.hand_length_m, 0, 0])
        seg[f"{side}UpperLeg"] = (W[j(f"{side}UpperLeg")], W[j(f"{side}LowerLeg")])
        seg[f"{side}LowerLeg"] = (W[j(f"{side}LowerLeg")], W[j(f"{side}Foot")])
        seg[f"{side}Foot"] = (W[j(f"{side}Foot")], W[j(f"{side}Toes")])
        seg[f"{side}Toes"] = (W[j(f"{side}Toes")], W[j(f"{side}Toes")] + skel.toe_tip_offset_m
                           + [0, 0.02 * s, 0])
    return seg


def _skin(skel: Skeleton, verts: np.ndarray, candidates: list[str],
          segments: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 4) joints and weights by inverse distance^4 to the candidates' bone segments."""
    d = np.stack([_segment_distance(verts, *segments[c]) for c in candidates], axis=1)
    w = 1.0 / np.maximum(d, 1e-3) ** 4
    order = np.argsort(-w, axis=1)[:, :MAX_INFLUENCES]
    w_top = np.take_along_axis(w, order, axis=1)
    idx = np.array([skel.index(c) for c in candidates])[order]
    if w_top.shape[1] < MAX_INFLUENCES:  # fewer candidates than slots: pad
        pad = MAX_INFLUENCES - w_top.shape[1]
        w_top = np.pad(w_top, ((0, 0), (0, pad)))
        idx = np.pad(idx, ((0, 0), (0, pad)))
    w_top /= w_top.sum(1, keepdims=True)
    w_top[w_top < 1e-3] = 0.0  # negligible influences: drop, then renormalise
    w_top /= w_top.sum(1, keepdims=True)
    idx[w_top == 0] = 0
    return idx.astype(np.uint16), w_top.astype(np.float32)


def build_body_mesh(skel: Skeleton, n_around: int = 16) -> SkinnedMesh:
    """The skinned body of `skel` (no head); a few thousand vertices."""
    W = skel.rest_world_m
    j = skel.index
    s = skel.height_m / 1.75  # radii scale with the stature
    X, Y, Z = np.eye(3)
    segs = _bone_segments(skel)
    parts: list[tuple[trimesh.Trimesh, list[str], tuple]] = []

    # Torso: pelvis to the base of the neck, elliptic sections (wider than deep).
    y_hip, y_sh, y_neck = W[j("hips"), 1], W[j("leftUpperArm"), 1], W[j("neck"), 1]
    hhw, hsw = W[j("leftUpperLeg"), 0], W[j("leftUpperArm"), 0]  # half hip / shoulder widths
    torso_rings = [
        (y_hip - 0.07 * s, hhw + 0.05 * s, 0.095 * s),
        (y_hip + 0.04 * s, hhw + 0.06 * s, 0.105 * s),
        (y_hip + 0.45 * (y_sh - y_hip), 0.78 * hsw + 0.02 * s, 0.100 * s),
        (y_hip + 0.75 * (y_sh - y_hip), 0.92 * hsw + 0.02 * s, 0.112 * s),
        (y_sh, hsw + 0.02 * s, 0.090 * s),
        (0.5 * (y_sh + y_neck) + 0.01 * s, 0.55 * hsw, 0.070 * s),
    ]
    torso = loft([(0, y, 0) for y, _, _ in torso_rings], [(rx, rz) for _, rx, rz in torso_rings],
                 X, Z, n_around=2 * n_around, cap_rings=3, cap_scale=0.6)
    parts.append((torso, ["hips", "spine", "chest", "neck", "leftShoulder", "rightShoulder"],
                  SHIRT))

    # Neck stub: from inside the torso to a little above the head joint.
    neck = loft([W[j("neck")] - [0, 0.03 * s, 0], W[j("head")] + [0, 0.03 * s, 0.01 * s]],
                [(0.055 * s, 0.058 * s), (0.05 * s, 0.055 * s)], X, Z, n_around, 2, 0.5)
    parts.append((neck, ["chest", "neck", "head"], SKIN))

    for side, sx in (("left", 1.0), ("right", -1.0)):
        def r(*pairs):  # (K, 2) radii, scaled with the stature
            return np.array(pairs) * s

        ua, la, hd = W[j(f"{side}UpperArm")], W[j(f"{side}LowerArm")], W[j(f"{side}Hand")]
        out = np.array([sx, 0, 0])
        hl = skel.hand_length_m
        # Arms along +-X: semi-axes along Z (front-back) and Y (up-down).
        parts.append((loft([ua, 0.5 * (ua + la), la], r((0.050, 0.050), (0.044, 0.042), (0.038, 0.036)),
                           Z, Y, n_around),
                      [f"{side}UpperArm", f"{side}LowerArm"], SHIRT))
        parts.append((loft([la, 0.5 * (la + hd), hd], r((0.038, 0.036), (0.034, 0.030), (0.028, 0.022)),
                           Z, Y, n_around),
                      [f"{side}UpperArm", f"{side}LowerArm", f"{side}Hand"], SKIN))
        parts.append((loft([hd + out * 0.02 * s, hd + out * 0.45 * hl, hd + out * 0.8 * hl],
                           r((0.035, 0.018), (0.045, 0.016), (0.040, 0.011)), Z, Y, n_around, 3, 1.6),
                      [f"{side}LowerArm", f"{side}Hand"], SKIN))

        ul, ll, ft = W[j(f"{side}UpperLeg")], W[j(f"{side}LowerLeg")], W[j(f"{side}Foot")]
        parts.append((loft([ul + [0, 0.03 * s, 0], 0.5 * (ul + ll), ll],
                           r((0.080, 0.080), (0.066, 0.066), (0.052, 0.052)), X, Z, n_around),
                      [f"{side}UpperLeg", f"{side}LowerLeg"], TROUSERS))
        parts.append((loft([ll, 0.5 * (ll + ft), ft + [0, 0.01 * s, 0]],
                           r((0.052, 0.052), (0.048, 0.050), (0.034, 0.034)), X, Z, n_around),
                      [f"{side}UpperLeg", f"{side}LowerLeg", f"{side}Foot"], TROUSERS))
        # Foot: heel to toe tip along +Z, sole on Y = 0 (each ring's centre height equals its
        # vertical semi-axis, so its bottom touches the floor). Rings: (z, half width, half height).
        heel_z = (ft + skel.heel_offset_m)[2]
        tip_z = (W[j(f"{side}Toes")] + skel.toe_tip_offset_m)[2]
        fl = skel.foot_length_m
        rings = [(heel_z + 0.02 * s, 0.032 * s, 0.036 * s), (heel_z + 0.35 * fl, 0.040 * s, 0.050 * s),
                 (heel_z + 0.72 * fl, 0.045 * s, 0.030 * s), (tip_z - 0.025 * s, 0.038 * s, 0.018 * s)]
        foot = loft([(ft[0], ry, z) for z, _, ry in rings], [(rx, ry) for _, rx, ry in rings],
                    X, Y, n_around, 3, 0.7)
        parts.append((foot, [f"{side}LowerLeg", f"{side}Foot", f"{side}Toes"], SHOES))

    positions, normals, faces, joints, weights, colors = [], [], [], [], [], []
    offset = 0
    for mesh, candidates, rgba in parts:
        v = np.asarray(mesh.vertices)
        positions.append(v)
        normals.append(np.asarray(mesh.vertex_normals))
        faces.append(np.asarray(mesh.faces) + offset)
        jw = _skin(skel, v, candidates, segs)
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

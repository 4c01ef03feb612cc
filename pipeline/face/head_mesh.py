"""A whole head mesh around the subject's face: face + scalp + neck + eyeballs + mouth bag.

`build_head(face_points_m)` takes the subject's neutral face landmarks in MediaPipe's canonical
face space (metres, +X = subject's left, +Y up, +Z out of the face) and returns a `HeadMesh`:

* the 468 face landmarks, in order, as the first 468 vertices (so morph target deltas fitted on
  landmarks apply to them directly), with the canonical face triangles minus the ones that cover
  the eye openings and the mouth opening;
* a skull/scalp shell from the face oval (the face mesh's only boundary loop) over the top and
  back of the head down to the top of the neck, and a neck tube going down about 10 cm to an
  open ring, `neck_base_ids`, where the body takes over;
* an eye socket behind each eye opening (a pocket that seals the opening, concentric with the
  eyeball so the eye can turn inside it) and an eyeball sphere in it (white sclera, dark iris and
  pupil facing +Z), to be skinned to an eye joint at `eye_centres_m`;
* a mouth bag hanging from the inner lip contour back into the head (dark red), so an open jaw
  shows a dark mouth interior instead of a hole.

Everything is one triangle list, counter-clockwise seen from outside (outward normals); the only
open boundary is the neck base ring (the eyeballs are separate closed spheres).

The shell and the neck have a fixed topology (built once from the canonical face: a spherical
Delaunay triangulation, i.e. the convex hull of directions from the head centre, between the face
oval and the top ring of the neck), so every subject's head has the same vertex count. Per
subject their shape follows a template head (a smooth fit of a superellipsoid skull and a neck
tube to the canonical face, mapped by an affine fit of the canonical face to the subject's) bent
smoothly (biharmonic
displacement) so that it meets the subject's face oval with matching tangents: the seam has no
crease and no gap.

Seam vertices are duplicated where the texture layout changes (face oval -> scalp, eye contour ->
socket, inner lip contour -> mouth bag): a duplicate has the same position as face vertex
`source_id[v]`, gets that vertex's morph deltas and is welded to it for normals (scalp) or not
(socket, mouth bag: the lid/lip edge is a crease).

UV layout (v = 0 at the top, image style, like the canonical face UVs): the face keeps the
canonical UVs (an oval filling most of [0,1]^2); everything else lives in the corner squares the
face oval does not reach, see `UV_TILES` (u0, v0, u1, v1):

* "scalp_neck" (top-left): one chart for the scalp and neck, an azimuthal projection of the
  direction from the head centre around the back of the head (back of the head in the middle,
  top of the head up, the face oval on the outer rim, the neck as a disk in the lower half,
  shrinking to the neck base ring);
* "mouth" (top-right): polar chart of the mouth bag (lips on the rim, the back of the throat in
  the middle);
* "eye_right", "eye_left" (bottom-left, upper half): polar chart of each eyeball around the
  gaze axis (pupil in the centre, iris around it, the back of the eyeball on the rim);
* "socket_right", "socket_left" (bottom-left, lower half): polar chart of each eye socket;
* the bottom-right corner is unused.

Modules: `head_layout` (regions, contours, UV tiles), `head_template` (the fixed topology and
template shape, built once), `head_skin` (face, scalp, neck, mouth bag of a subject),
`head_eyes` (eyeballs and sockets), `head_geometry` (small mesh utilities). This module builds
the whole head from them and holds the public names (re-exported from `head_layout`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import trimesh

from pipeline.core.mesh import welded_vertex_normals
from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_eyes import EYE_RADIUS_M, add_eye, eye_centres
from pipeline.face.head_geometry import MeshParts
from pipeline.face.head_layout import (
    EYE_LEFT,
    EYE_RIGHT,
    EYE_RINGS,
    N_FACE,
    N_LANDMARKS_WITH_IRISES,
    SKIN_RGB,
)
from pipeline.face.head_skin import DELTA_FALLOFF_M, add_mouth_bag, add_skin, affine_fit, fit_shell
from pipeline.face.head_template import head_template


@dataclass
class HeadMesh:
    """A closed head mesh in canonical face space (metres).

    positions_m:   (V, 3) float32; rows 0..467 are the face landmarks, in landmark order.
    normals:       (V, 3) float32, unit.
    triangles:     (F, 3) uint32, counter-clockwise seen from outside.
    uv:            (V, 2) float32, v = 0 at the top (see the module docstring and UV_TILES).
    region:        (V,) uint8, FACE / SCALP / NECK / MOUTH / EYE_LEFT / EYE_RIGHT / EYE_SOCKET.
    color:         (V, 4) float32 linear RGBA vertex colours.
    eye_centres_m: (2, 3) float32 eyeball centres (rotation pivots), [left (+X), right (-X)].
    eye_radius_m:  eyeball radius.
    neck_base_ids: (R,) int64 vertex ids of the open ring at the bottom of the neck, in order
                   around the neck.
    neck_top_ids:  (R,) int64 the ring where the neck tube leaves the head (under the jaw to the
                   nape): a reasonable height for the head joint.
    neck_weight:   (V,) float32 in [0, 1]: how much a vertex follows the neck bone rather than the
                   head bone: 1 at the neck base ring, 0 from the neck top ring up.
    source_id:     (V,) int64: for a seam copy of a face vertex, that face vertex; else itself.
    normal_weld:   (V,) int64: vertices with the same id share one normal (the face and its
                   scalp seam copies do; the lid and lip copies in the sockets and mouth do not).
    delta_weights: (V, 468) scipy.sparse CSR: head deltas = delta_weights @ face deltas
                   (used by `extend_deltas`).
    """

    positions_m: np.ndarray
    normals: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray
    region: np.ndarray
    color: np.ndarray
    eye_centres_m: np.ndarray
    eye_radius_m: float
    neck_base_ids: np.ndarray
    neck_top_ids: np.ndarray
    neck_weight: np.ndarray
    source_id: np.ndarray
    normal_weld: np.ndarray = field(repr=False)
    delta_weights: sp.csr_matrix = field(repr=False)

    @property
    def n_vertices(self) -> int:
        return len(self.positions_m)

    def region_ids(self, region: int) -> np.ndarray:
        return np.flatnonzero(self.region == region)


def _check_points(face_points_m: np.ndarray) -> np.ndarray:
    """(468, 3) or (478, 3) finite landmarks as float64, else ValueError."""
    pts = np.asarray(face_points_m, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] not in (N_FACE, N_LANDMARKS_WITH_IRISES):
        raise ValueError(f"face_points_m must be (468, 3) or (478, 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("face_points_m has non-finite values")
    return pts


def _assemble(parts: MeshParts, neck_rings: np.ndarray, centres: list, radius: float) -> HeadMesh:
    """The accumulated parts as one HeadMesh (attributes concatenated, normals computed, the
    delta-transfer weights as a sparse (V, 468) matrix)."""
    positions = parts.cat("pos")
    triangles = parts.cat("tris")
    weld = parts.cat("weld").astype(np.int64)
    color = np.concatenate([np.clip(parts.cat("color"), 0, 1), np.ones((parts.n, 1))], 1)
    weights = sp.coo_matrix((parts.cat("w_vals"), (parts.cat("w_rows"), parts.cat("w_cols"))),
                            shape=(parts.n, N_FACE)).tocsr()
    weights.eliminate_zeros()
    return HeadMesh(
        positions_m=positions.astype(np.float32),
        normals=welded_vertex_normals(positions, triangles, weld),
        triangles=triangles.astype(np.uint32),
        uv=parts.cat("uv").astype(np.float32),
        region=parts.cat("region").astype(np.uint8),
        color=color.astype(np.float32),
        eye_centres_m=np.array(centres, np.float32),
        eye_radius_m=float(radius),
        neck_base_ids=neck_rings[-1].astype(np.int64),
        neck_top_ids=neck_rings[0].astype(np.int64),
        neck_weight=parts.cat("neck_weight").astype(np.float32),
        source_id=parts.cat("source").astype(np.int64),
        normal_weld=weld,
        delta_weights=weights.astype(np.float32),
    )


def build_head(face_points_m: np.ndarray, skin_rgb=SKIN_RGB) -> HeadMesh:
    """Whole head mesh around the subject's neutral face.

    face_points_m: (468, 3) or (478, 3) landmarks in canonical face space, metres (with the
                   478-landmark model the iris centres place the eyeballs).
    skin_rgb:      linear RGB in [0, 1] for the skin vertex colours (face, scalp, neck; the eye
                   sockets get a darker shade of it). Convert sRGB samples to linear first.
    """
    pts = _check_points(face_points_m)
    skin = np.clip(np.asarray(skin_rgb, dtype=np.float64).reshape(3), 0.0, 1.0)
    template = head_template()
    face = pts[:N_FACE]
    linear, offset = affine_fit(load_canonical_face().vertices_m, face)
    s_mean = float(np.linalg.det(linear)) ** (1 / 3)          # overall size relative to canonical

    parts = MeshParts()
    graph_pos = fit_shell(template, face, linear, offset)
    neck_rings = add_skin(parts, template, face, graph_pos, skin, DELTA_FALLOFF_M * s_mean)
    add_mouth_bag(parts, template, face, s_mean)

    radius = EYE_RADIUS_M * s_mean
    centres = eye_centres(pts, template.face_tris, radius)
    for side, ring in enumerate(EYE_RINGS):
        add_eye(parts, template, face, ring, centres[side], radius, side, skin)
    return _assemble(parts, neck_rings, centres, radius)


# ================================================================================================
# Rig helpers
# ================================================================================================

def extend_deltas(head: HeadMesh, face_deltas_m: np.ndarray) -> np.ndarray:
    """(K, 468, 3) morph target deltas on the face landmarks -> (K, V, 3) for the whole head.

    Face vertices and their seam copies keep theirs; the mouth bag follows the lip ring it hangs
    from (fading with depth); the eye sockets follow the eyelid ring (fading); scalp and neck
    vertices get a harmonic blend of the face-oval deltas times a cosine falloff that reaches 0
    DELTA_FALLOFF_M (6 cm, scaled to the face) along the surface from the oval, so the seam
    never tears and the back of the head stays put; eyeballs get 0 (they turn with eye joints).
    Linear: the result is `head.delta_weights @ face_deltas_m[k]` for each k.
    """
    d = np.asarray(face_deltas_m, dtype=np.float32)
    squeeze = d.ndim == 2
    if squeeze:
        d = d[None]
    if d.ndim != 3 or d.shape[1:] != (N_FACE, 3):
        raise ValueError(f"face_deltas_m must be (K, 468, 3), got {np.shape(face_deltas_m)}")
    weights = head.delta_weights
    out = np.stack([weights @ d[k] for k in range(len(d))]).astype(np.float32)
    return out[0] if squeeze else out


def eye_vertex_ids(head: HeadMesh, side: str) -> np.ndarray:
    """Vertex ids of one eyeball: side "left" (subject's left, +X) or "right"."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return head.region_ids(EYE_LEFT if side == "left" else EYE_RIGHT)


def vertex_normals(head: HeadMesh, positions_m: np.ndarray | None = None) -> np.ndarray:
    """Normals of the head for (possibly morphed) positions, with the same smoothing groups as
    `head.normals` (face and scalp welded across the seam; lip and lid edges creased)."""
    p = head.positions_m if positions_m is None else np.asarray(positions_m)
    return welded_vertex_normals(p, head.triangles.astype(np.int64), head.normal_weld)


def to_trimesh(head: HeadMesh, weld: bool = False):
    """A trimesh.Trimesh of the head (seam copies merged into their face vertex if weld)."""
    tris = head.triangles.astype(np.int64)
    if weld:
        tris = head.source_id[tris]
    return trimesh.Trimesh(head.positions_m.astype(np.float64), tris, process=False)

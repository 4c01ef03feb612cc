"""The head mesh's fixed topology and template shape, built once from MediaPipe's canonical face.

Input: the canonical face (468 vertices in metres, canonical face space: +X the subject's left,
+Y up, +Z out of the face; its triangles). Output: `head_template()`, a cached `HeadTemplate`:

* the face triangles with the eye and mouth openings left open, and the face oval (the face's
  outer boundary loop);
* a skull/scalp shell between the face oval and the top ring of a neck tube: a spherical Delaunay
  triangulation (the convex hull of unit directions from SKULL_CENTRE) of Fibonacci-sphere
  directions outside the face oval and the neck's top ring;
* the neck tube: NECK_RINGS rings of NECK_SEGMENTS vertices below that top ring;
* the template positions of all of it (a superellipsoid skull fitted smoothly between the face
  and the neck), the factorised bi-Laplacian the per-subject fit solves with, the harmonic
  extension of face-oval values over shell and neck (for the morph deltas), the scalp/neck UV
  chart and the mouth ring's parameters.

"Graph numbering" (the shell solve's vertex ids): 0..467 the face, then the S interior shell
vertices, then the neck rings (ring 0, the top loop, is part of the shell's boundary).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import ConvexHull

from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_geometry import (
    angle_to_polyline,
    boundary_loops,
    closure_triangles,
    fibonacci_sphere,
    loft,
    point_in_polygon,
    stereo_back,
    to_tile,
    uniform_laplacian,
)
from pipeline.face.head_layout import (
    LEFT_EYE_RING,
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    MOUTH_RING,
    N_FACE,
    RIGHT_EYE_RING,
    UV_TILES,
)

# --- template head, in canonical face space (metres); mapped to the subject by an affine fit -----
SKULL_CENTRE = np.array([0.0, 0.015, -0.035])
SKULL_AXES = np.array([0.080, 0.115, 0.100])     # semi-axes x, y, z
SKULL_EXPONENT = 2.4                             # superellipsoid: a little squarer than an ellipsoid
NECK_TOP_CENTRE = np.array([0.0, -0.083, -0.045])
NECK_TOP_TILT = 0.30                             # top ring plane: y rises by this per metre of -z
NECK_TILT_FADE_EXPONENT = 1.5                    # tilt * (1 - ring fraction) ** this: flat at the base
NECK_BASE_CENTRE = np.array([0.0, -0.175, -0.060])
NECK_RADII = np.array([0.056, 0.050])            # x, z
NECK_BASE_FLARE = 1.12                           # base ring radii / top ring radii
NECK_SEGMENTS = 28
NECK_RINGS = 7                                   # rings below the top loop; the last is the base
SHELL_SAMPLES = 760                              # Fibonacci directions over the whole sphere
# Shell sample directions closer than this share of the sample spacing (radians) to the face oval
# or the neck's top ring are dropped: no slivers along the seams.
SHELL_SEAM_CLEARANCE = 0.65
# Soft pull of the shell towards the superellipsoid (weight against the bi-Laplacian, per
# vertex), ramping in quadratically from 1 to 1 + SKULL_PULL_RAMP_HOPS edges away from the seams
# so the shell bends smoothly into the face and the neck.
SKULL_PULL = 0.02
SKULL_PULL_RAMP_HOPS = 3.0
# Scalp/neck chart: the neck base ring's radius around the neck's chart centre, as a share of the
# top ring's is 1 - NECK_CHART_SHRINK; the whole chart fills the tile to 1 / CHART_MARGIN.
NECK_CHART_SHRINK = 0.85
CHART_MARGIN = 1.02


@dataclass(frozen=True)
class HeadTemplate:
    face_tris: np.ndarray          # canonical face triangles minus eye and mouth closures
    face_loop: np.ndarray          # (36,) face oval, in the face triangles' direction
    shell_dirs: np.ndarray         # (S, 3) unit directions from SKULL_CENTRE of interior shell verts
    shell_tris: np.ndarray         # triangles in graph numbering
    n_shell: int                   # interior shell vertices
    neck_rings: np.ndarray         # (NECK_RINGS + 1, NECK_SEGMENTS) graph ids, ring 0 = top loop
    shell_template: np.ndarray     # (n_graph, 3) canonical-space positions of the whole graph
    graph_tris: np.ndarray         # face_tris + shell_tris + neck, graph numbering
    solve_free: np.ndarray         # graph ids solved for (interior shell vertices)
    solve_fixed: np.ndarray        # graph ids held (face, neck rings)
    solve_lu: object               # factorised bi-Laplacian on the free vertices
    solve_coupling: sp.csr_matrix  # A[free, fixed]
    harmonic: np.ndarray           # (n_graph - 468, 36) harmonic extension of face loop values
    chart_uv: np.ndarray           # (n_graph - 468 + 36, 2) scalp/neck UVs (seam copies first)
    mouth_s: np.ndarray            # (20,) lip ring parameter in [-1, 1] (corner to corner)
    mouth_side: np.ndarray         # (20,) +1 upper lip, -1 lower lip, 0 corners


def neck_ring(k_frac: float, n: int) -> np.ndarray:
    """(n, 3) template neck ring at fraction k_frac from the top loop (0) to the base (1),
    canonical space. The top ring lies on a plane tilted so its front (under the chin) is lower
    than its back (the nape); the tilt fades out towards the horizontal base."""
    phi = 2 * np.pi * np.arange(n) / n
    # angle 0 at +X, going towards -Z (back) first so that the rings run the right way round
    centre = NECK_TOP_CENTRE + (NECK_BASE_CENTRE - NECK_TOP_CENTRE) * k_frac
    flare = 1 + (NECK_BASE_FLARE - 1) * k_frac ** 2
    x = NECK_RADII[0] * flare * np.cos(phi)
    z = -NECK_RADII[1] * flare * np.sin(phi)
    tilt = NECK_TOP_TILT * (1 - k_frac) ** NECK_TILT_FADE_EXPONENT
    y = -tilt * z
    return np.stack([centre[0] + x, centre[1] + y, centre[2] + z], 1)


def _skull_directions(points: np.ndarray) -> np.ndarray:
    """(..., 3) unit directions from SKULL_CENTRE to the points."""
    d = points - SKULL_CENTRE
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _open_face(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical face triangles -> (face triangles without the ones closing the eyes and the
    mouth, the face oval: the one remaining boundary loop, in the triangles' direction)."""
    tris = triangles.astype(np.int64)
    closed = np.zeros(len(tris), bool)
    for ring in (LEFT_EYE_RING, RIGHT_EYE_RING, MOUTH_RING):
        closed |= closure_triangles(tris, ring)
    face_tris = tris[~closed]
    loops = boundary_loops(face_tris)
    ring_sets = [set(LEFT_EYE_RING), set(RIGHT_EYE_RING), set(MOUTH_RING)]
    outer = [lp for lp in loops if not any(set(lp.tolist()) == s for s in ring_sets)]
    if len(loops) != 4 or len(outer) != 1:
        raise RuntimeError("canonical face mesh: unexpected boundary loops after opening eyes/mouth")
    return face_tris, outer[0]


def _inside_seams(dirs: np.ndarray, loop_dirs: np.ndarray, neck_dirs: np.ndarray) -> np.ndarray:
    """(N,) bool: unit directions inside the face oval or the neck's top ring (seen from the back
    of the head, stereographically)."""
    proj = stereo_back(dirs)
    return point_in_polygon(proj, stereo_back(loop_dirs)) | point_in_polygon(proj, stereo_back(neck_dirs))


def _shell_directions(loop_dirs: np.ndarray, neck_dirs: np.ndarray) -> np.ndarray:
    """(S, 3) unit directions of the interior shell vertices: Fibonacci directions outside the
    face oval and the neck's top ring and not too close to either."""
    cand = fibonacci_sphere(SHELL_SAMPLES)
    # mean angular spacing (radians) of the samples in a hexagonal packing of the sphere
    spacing = np.sqrt(4 * np.pi / SHELL_SAMPLES / (np.sqrt(3) / 2))
    inside = _inside_seams(cand, loop_dirs, neck_dirs)
    far = np.minimum(angle_to_polyline(cand, loop_dirs),
                     angle_to_polyline(cand, neck_dirs)) > SHELL_SEAM_CLEARANCE * spacing
    return cand[~inside & far]


def _shell_hull(loop_dirs: np.ndarray, shell_dirs: np.ndarray, neck_dirs: np.ndarray) -> np.ndarray:
    """Triangles (local ids: [face loop][shell interior][neck top loop]) of the spherical
    Delaunay triangulation of the directions, facing outwards, without those over the face and
    the neck opening."""
    all_d = np.concatenate([loop_dirs, shell_dirs, neck_dirs])
    hull = ConvexHull(all_d).simplices.astype(np.int64)
    cen = all_d[hull].mean(1)
    nrm = np.cross(all_d[hull[:, 1]] - all_d[hull[:, 0]], all_d[hull[:, 2]] - all_d[hull[:, 0]])
    flip = (nrm * cen).sum(1) < 0
    hull[flip] = hull[flip][:, ::-1]
    drop = _inside_seams(cen / np.linalg.norm(cen, axis=1, keepdims=True), loop_dirs, neck_dirs)
    return hull[~drop]


def _neck_tube(shell_tris: np.ndarray, face_loop: np.ndarray, neck_ids: np.ndarray,
               neck_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The neck tube's triangles under the shell (graph numbering). Checks that the shell's
    boundary is the face oval and the neck's top ring, with the face's winding opposite to the
    shell's. Returns (neck ring ids, neck ring positions, both reversed around the neck if the
    shell runs the top ring the other way, tube triangles)."""
    loops = boundary_loops(shell_tris)
    top_loop = [lp for lp in loops if set(lp.tolist()) == set(neck_ids[0].tolist())]
    face_side = [lp for lp in loops if set(lp.tolist()) == set(face_loop.tolist())]
    if len(loops) != 2 or not top_loop or not face_side:
        raise RuntimeError("head shell triangulation does not have the face and neck loops as its boundary")
    # shell traverses neck ring 0 along top_loop; the tube continues with the opposite direction
    pos_in = {int(v): i for i, v in enumerate(top_loop[0])}
    n_neck = neck_ids.shape[1]
    forward = pos_in[int(neck_ids[0][1])] == (pos_in[int(neck_ids[0][0])] + 1) % n_neck
    if forward:
        neck_ids = neck_ids[:, ::-1]
        neck_pos = neck_pos[:, ::-1]
    # ring_a must run the way the *existing* surface traverses it for loft; the shell runs
    # top ring as neck_ids[0] reversed now, so loft from the reversed ring.
    neck_tris = np.concatenate([loft(neck_ids[k][::-1], neck_ids[k + 1][::-1]) for k in range(NECK_RINGS)])
    # check: the face traverses the face loop opposite to the shell
    if set(map(tuple, np.stack([face_side[0], np.roll(face_side[0], -1)], 1).tolist())) & \
            set(map(tuple, np.stack([face_loop, np.roll(face_loop, -1)], 1).tolist())):
        raise RuntimeError("shell and face disagree on winding")
    return neck_ids, neck_pos, neck_tris


def _template_positions(face_m: np.ndarray, face_loop: np.ndarray, shell_dirs: np.ndarray,
                        shell_ids: np.ndarray, neck_ids: np.ndarray, neck_pos: np.ndarray,
                        laplacian: sp.csr_matrix, bilaplacian: sp.csr_matrix) -> np.ndarray:
    """(n_graph, 3) template positions (metres): face and neck fixed, the shell a smooth
    (bi-Laplacian) fit to the skull superellipsoid, pulled towards it away from the seams."""
    n_graph = laplacian.shape[0]
    radius = (np.abs(shell_dirs / SKULL_AXES) ** SKULL_EXPONENT).sum(1) ** (-1.0 / SKULL_EXPONENT)
    target = SKULL_CENTRE + shell_dirs * radius[:, None]
    tmpl = np.zeros((n_graph, 3))
    tmpl[:N_FACE] = face_m
    tmpl[shell_ids] = target
    tmpl[neck_ids.ravel()] = neck_pos.reshape(-1, 3)
    free = shell_ids
    fixed = np.setdiff1d(np.arange(n_graph), free)
    adj = (abs(laplacian) > 0).astype(float)
    hop = dijkstra(adj, indices=np.concatenate([face_loop, neck_ids[0]]), unweighted=True,
                   min_only=True)[free]
    pull = SKULL_PULL * np.clip((hop - 1) / SKULL_PULL_RAMP_HOPS, 0.0, 1.0) ** 2
    a_free = bilaplacian[free][:, free] + sp.diags(pull)
    rhs = -bilaplacian[free][:, fixed] @ tmpl[fixed] + pull[:, None] * target
    tmpl[free] = spla.spsolve(a_free.tocsc(), rhs)
    return tmpl


def _harmonic_extension(laplacian: sp.csr_matrix, face_loop: np.ndarray) -> np.ndarray:
    """(n_graph - 468, 36): the harmonic extension of values on the face oval over the shell and
    neck (rows in graph order from N_FACE)."""
    n_graph = laplacian.shape[0]
    sub = np.concatenate([face_loop, np.arange(N_FACE, n_graph)])  # loop first, then graph order
    lap_sub = laplacian[sub][:, sub]
    nb = len(face_loop)
    ext = np.zeros((len(sub) - nb, nb))
    lap_free = lap_sub[nb:][:, nb:].tocsc()
    ext[:] = spla.splu(lap_free).solve(-lap_sub[nb:][:, :nb].toarray())
    return ext


def _chart(dirs: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant projection around -Z (the back of the head): (N, 2), radius 0 at
    the back, 1 at the front."""
    theta = np.arccos(np.clip(-dirs[:, 2], -1, 1)) / np.pi
    phi = np.arctan2(dirs[:, 1], dirs[:, 0])
    return np.stack([theta * np.cos(phi), theta * np.sin(phi)], 1)


def _scalp_neck_chart(loop_dirs: np.ndarray, shell_dirs: np.ndarray, shell_ids: np.ndarray,
                      neck_ids: np.ndarray, neck_pos: np.ndarray, n_graph: int) -> np.ndarray:
    """(36 + n_graph - 468, 2) UVs in the "scalp_neck" tile: rows the face loop's seam copies,
    then graph ids N_FACE.. in order. The neck is a disk shrinking down to its base ring."""
    n_loop = len(loop_dirs)
    allc = np.zeros((n_loop + n_graph - N_FACE, 2))
    allc[:n_loop] = _chart(loop_dirs)
    allc[n_loop + shell_ids - N_FACE] = _chart(shell_dirs)
    ch_neck0 = _chart(_skull_directions(neck_pos[0]))
    nc = ch_neck0.mean(0)
    for k in range(NECK_RINGS + 1):
        allc[n_loop + neck_ids[k] - N_FACE] = nc + (ch_neck0 - nc) * (1 - NECK_CHART_SHRINK * k / NECK_RINGS)
    mid = (allc.max(0) + allc.min(0)) / 2
    half = (allc.max(0) - allc.min(0)).max() / 2 * CHART_MARGIN
    return to_tile((allc - mid) / half, UV_TILES["scalp_neck"])


def _mouth_ring_parameters(face_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(20,) position of each inner lip vertex from corner (-1) to corner (+1), and (20,) its lip:
    +1 upper, -1 lower, 0 the corners."""
    ring = face_m[list(MOUTH_RING)]
    xc = (ring[:, 0].max() + ring[:, 0].min()) / 2
    s = np.clip((ring[:, 0] - xc) / ((ring[:, 0].max() - ring[:, 0].min()) / 2), -1, 1)
    side = np.array([0] + [1] * (len(LIP_UPPER_INNER) - 2) + [0] + [-1] * (len(LIP_LOWER_INNER) - 2))
    return s, side


@lru_cache(maxsize=1)
def head_template() -> HeadTemplate:
    """The head's topology and template, built once (see the module docstring)."""
    cf = load_canonical_face()
    face_m = cf.vertices_m
    face_tris, face_loop = _open_face(cf.triangles)
    neck_pos = np.stack([neck_ring(k / NECK_RINGS, NECK_SEGMENTS) for k in range(NECK_RINGS + 1)])

    # shell triangulation in direction space (spherical Delaunay = hull of unit vectors)
    loop_dirs = _skull_directions(face_m[face_loop])
    neck_dirs = _skull_directions(neck_pos[0])
    shell_dirs = _shell_directions(loop_dirs, neck_dirs)
    hull = _shell_hull(loop_dirs, shell_dirs, neck_dirs)
    n_shell = len(shell_dirs)
    # local -> graph ids
    shell_ids = N_FACE + np.arange(n_shell)
    neck_ids = N_FACE + n_shell + np.arange((NECK_RINGS + 1) * NECK_SEGMENTS).reshape(NECK_RINGS + 1,
                                                                                       NECK_SEGMENTS)
    shell_tris = np.concatenate([face_loop, shell_ids, neck_ids[0]])[hull]
    neck_ids, neck_pos, neck_tris = _neck_tube(shell_tris, face_loop, neck_ids, neck_pos)
    n_graph = N_FACE + n_shell + (NECK_RINGS + 1) * NECK_SEGMENTS
    graph_tris = np.concatenate([face_tris, shell_tris, neck_tris])

    laplacian = uniform_laplacian(n_graph, graph_tris)
    bilaplacian = (laplacian.T @ laplacian).tocsr()
    tmpl = _template_positions(face_m, face_loop, shell_dirs, shell_ids, neck_ids, neck_pos,
                               laplacian, bilaplacian)
    # the subject solve: biharmonic displacement with face and neck held
    free = shell_ids
    fixed = np.setdiff1d(np.arange(n_graph), free)
    lu = spla.splu(bilaplacian[free][:, free].tocsc())
    coupling = bilaplacian[free][:, fixed].tocsr()

    mouth_s, mouth_side = _mouth_ring_parameters(face_m)
    return HeadTemplate(face_tris=face_tris, face_loop=face_loop, shell_dirs=shell_dirs,
                        shell_tris=shell_tris, n_shell=n_shell, neck_rings=neck_ids,
                        shell_template=tmpl, graph_tris=graph_tris, solve_free=free,
                        solve_fixed=fixed, solve_lu=lu, solve_coupling=coupling,
                        harmonic=_harmonic_extension(laplacian, face_loop),
                        chart_uv=_scalp_neck_chart(loop_dirs, shell_dirs, shell_ids, neck_ids, neck_pos,
                                                   n_graph),
                        mouth_s=mouth_s, mouth_side=mouth_side)

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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import ConvexHull

from pipeline.face.canonical import load_canonical_face

# --- regions -----------------------------------------------------------------------------------
FACE = 0        # the 468 face landmark vertices
SCALP = 1       # skull shell above the jaw line level
NECK = 2        # shell below the jaw-angle level (under the chin, nape) and the neck tube
MOUTH = 3       # mouth bag (inner lip seam copies and the cavity)
EYE_LEFT = 4    # subject's left eyeball (+X)
EYE_RIGHT = 5   # subject's right eyeball (-X)
EYE_SOCKET = 6  # the pockets behind the eye openings (both sides)
REGION_NAMES = {FACE: "face", SCALP: "scalp", NECK: "neck", MOUTH: "mouth",
                EYE_LEFT: "eye_left", EYE_RIGHT: "eye_right", EYE_SOCKET: "eye_socket"}

N_FACE = 468

# --- landmark contours (canonical face mesh indices) --------------------------------------------
# Eyelid margins, subject's left eye (+X) and right eye (-X), as closed loops.
LEFT_EYE_RING = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
# Inner lip contours, from the subject's right mouth corner (78, -X) to the left one (308).
LIP_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_RING = LIP_UPPER_INNER + LIP_LOWER_INNER[-2:0:-1]  # closed loop, 20 vertices
# Jaw angles (gonion area) on the face oval: the SCALP / NECK split height.
JAW_ANGLES = (58, 288, 172, 397)
# MediaPipe's 478-landmark model: 468..472 and 473..477 are the irises (centre first). Which is
# which side is decided by proximity to the eyelid rings, not assumed.
IRIS_CENTRES = (468, 473)

# --- UV tiles (u0, v0, u1, v1), outside the canonical face oval ----------------------------------
UV_TILES = {
    "scalp_neck": (0.005, 0.005, 0.155, 0.155),
    "mouth": (0.845, 0.005, 0.995, 0.155),
    "eye_right": (0.005, 0.845, 0.080, 0.920),
    "eye_left": (0.080, 0.845, 0.155, 0.920),
    "socket_right": (0.005, 0.920, 0.080, 0.995),
    "socket_left": (0.080, 0.920, 0.155, 0.995),
}

# --- template head, in canonical face space (metres); mapped to the subject by an affine fit -----
SKULL_CENTRE = np.array([0.0, 0.015, -0.035])
SKULL_AXES = np.array([0.080, 0.115, 0.100])     # semi-axes x, y, z
SKULL_EXPONENT = 2.4                             # superellipsoid: a little squarer than an ellipsoid
NECK_TOP_CENTRE = np.array([0.0, -0.083, -0.045])
NECK_TOP_TILT = 0.30                             # top ring plane: y rises by this per metre of -z
NECK_BASE_CENTRE = np.array([0.0, -0.175, -0.060])
NECK_RADII = np.array([0.056, 0.050])            # x, z
NECK_BASE_FLARE = 1.12                           # base ring radii / top ring radii
NECK_SEGMENTS = 28
NECK_RINGS = 7                                   # rings below the top loop; the last is the base
SHELL_SAMPLES = 760                              # Fibonacci directions over the whole sphere

EYE_RADIUS_M = 0.012                             # for the canonical face; scaled to the subject
SOCKET_RADIUS = 1.04                             # socket sphere radius / eyeball radius
IRIS_PULL = 0.5                                  # eye centre: this far from the opening's middle to the iris
EYE_CLEARANCE = 1.07                             # min face vertex distance from the eye centre / radius
SOCKET_FADE = (0.6, 0.35, 0.15)                  # socket rings' share of the eyelid deltas
DELTA_FALLOFF_M = 0.06                           # scalp/neck deltas fade to 0 this far from the face
# Mouth bag rings behind the inner lip contour: (blend from the lip contour to an ellipse,
# ellipse half-width / half the mouth width, ellipse half-height (m), blend of depth from the lip
# contour's to the mouth corners', extra depth (m), share of the lip deltas). Canonical metres,
# scaled to the subject.
MOUTH_BAG_RINGS = ((0.5, 0.86, 0.004, 0.4, 0.005, 0.85), (1.0, 0.80, 0.009, 0.8, 0.010, 0.6),
                   (1.0, 0.78, 0.011, 1.0, 0.016, 0.35), (1.0, 0.62, 0.009, 1.0, 0.023, 0.2))
MOUTH_DEPTH_M = 0.028                            # cap of the mouth bag behind the mouth corners
MOUTH_CAP_FADE = 0.1

SKIN_RGB = (0.8, 0.6, 0.5)
SCLERA_RGB = (0.82, 0.80, 0.76)
IRIS_RGB = (0.10, 0.05, 0.025)
PUPIL_RGB = (0.008, 0.006, 0.005)
LIMBUS_RGB = (0.03, 0.02, 0.015)
MOUTH_LIP_RGB = (0.16, 0.025, 0.025)
MOUTH_DEEP_RGB = (0.025, 0.004, 0.004)


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


# ================================================================================================
# Small geometry helpers
# ================================================================================================

def _boundary_loops(tris: np.ndarray) -> list[np.ndarray]:
    """Ordered boundary loops of a triangle list, each following the triangles' own direction
    (edge a->b of a triangle on the boundary gives a->b in the loop)."""
    half = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    keys = {(int(a), int(b)) for a, b in half}
    nxt = {}
    for a, b in half:
        if (int(b), int(a)) not in keys:
            nxt[int(a)] = int(b)
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        while nxt[loop[-1]] != start:
            loop.append(nxt[loop[-1]])
            seen.add(loop[-1])
        loops.append(np.array(loop))
    return loops


def _loft(ring_a: np.ndarray, ring_b: np.ndarray) -> np.ndarray:
    """Quads between two closed rings of equal length (a_i, a_i+1, b_i+1, b_i) as triangles.
    If ring_a runs along its boundary in the direction the existing surface traverses it, the new
    band continues that surface with the same winding."""
    a, b = np.asarray(ring_a), np.asarray(ring_b)
    a1, b1 = np.roll(a, -1), np.roll(b, -1)
    # existing surface has directed edge a_i -> a_i+1, so the band must use a_i+1 -> a_i
    return np.concatenate([np.stack([a1, a, b], 1), np.stack([a1, b, b1], 1)])


def _fan(ring: np.ndarray, centre: int) -> np.ndarray:
    r = np.asarray(ring)
    return np.stack([np.roll(r, -1), r, np.full_like(r, centre)], 1)


def _vertex_normals(pos: np.ndarray, tris: np.ndarray, weld: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals; vertices with the same weld id share one normal."""
    p = pos.astype(np.float64)
    fn = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    acc = np.zeros_like(p)
    for k in range(3):
        np.add.at(acc, weld[tris[:, k]], fn)
    n = acc[weld]
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)).astype(np.float32)


def _uniform_laplacian(n: int, tris: np.ndarray) -> sp.csr_matrix:
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    return (sp.identity(n) - sp.diags(1.0 / np.maximum(deg, 1)) @ adj).tocsr()


def _to_tile(xy: np.ndarray, tile: tuple, flip_v: bool = True) -> np.ndarray:
    """Map chart coordinates in [-1, 1]^2 (y up) into a UV tile (v down)."""
    u0, v0, u1, v1 = tile
    u = u0 + (xy[:, 0] + 1) * 0.5 * (u1 - u0)
    y = -xy[:, 1] if flip_v else xy[:, 1]
    v = v0 + (y + 1) * 0.5 * (v1 - v0)
    return np.stack([u, v], 1)


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def _stereo_back(d: np.ndarray) -> np.ndarray:
    """Stereographic projection of unit directions from the -Z pole (the back of the head)."""
    return d[:, :2] / (1 + d[:, 2:3])


def _point_in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    x, y = pts[:, 0:1], pts[:, 1:2]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    cond = (y0 > y) != (y1 > y)
    xi = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-30, y1 - y0)
    return (cond & (x < xi)).sum(1) % 2 == 1


def _angle_to_polyline(d: np.ndarray, loop_dirs: np.ndarray) -> np.ndarray:
    """Smallest angle (radians, approximately) between unit directions d and a closed polyline
    of unit directions, sampling each edge."""
    a, b = loop_dirs, np.roll(loop_dirs, -1, 0)
    ts = np.linspace(0, 1, 6)[:-1]
    samples = (a[None] * (1 - ts)[:, None, None] + b[None] * ts[:, None, None]).reshape(-1, 3)
    samples /= np.linalg.norm(samples, axis=1, keepdims=True)
    return np.arccos(np.clip(d @ samples.T, -1, 1)).min(1)


def _neck_ring(k_frac: float, n: int) -> np.ndarray:
    """Template neck ring at fraction k_frac from the top loop (0) to the base (1), canonical
    space. The top ring lies on a plane tilted so its front (under the chin) is lower than its
    back (the nape); the tilt fades out towards the horizontal base."""
    phi = 2 * np.pi * np.arange(n) / n
    # angle 0 at +X, going towards -Z (back) first so that the rings run the right way round
    c = NECK_TOP_CENTRE + (NECK_BASE_CENTRE - NECK_TOP_CENTRE) * k_frac
    flare = 1 + (NECK_BASE_FLARE - 1) * k_frac ** 2
    x = NECK_RADII[0] * flare * np.cos(phi)
    z = -NECK_RADII[1] * flare * np.sin(phi)
    tilt = NECK_TOP_TILT * (1 - k_frac) ** 1.5
    y = -tilt * z
    return np.stack([c[0] + x, c[1] + y, c[2] + z], 1)


# ================================================================================================
# Fixed topology, built once from the canonical face
# ================================================================================================

@dataclass(frozen=True)
class _Template:
    face_tris: np.ndarray          # canonical face triangles minus eye and mouth closures
    face_loop: np.ndarray          # (36,) face oval, in the face triangles' direction
    shell_dirs: np.ndarray         # (S, 3) unit directions from SKULL_CENTRE of interior shell verts
    shell_tris: np.ndarray         # triangles in "graph" numbering (see below)
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


# Graph numbering (used by the shell solve): 0..467 face, then the S interior shell vertices,
# then the neck rings (ring 0, the top loop, is part of the shell boundary).


def _closure_triangles(tris: np.ndarray, ring) -> np.ndarray:
    s = set(int(i) for i in ring)
    return np.array([all(int(v) in s for v in t) for t in tris])


@lru_cache(maxsize=1)
def _template() -> _Template:
    cf = load_canonical_face()
    tris = cf.triangles.astype(np.int64)
    closed = np.zeros(len(tris), bool)
    for ring in (LEFT_EYE_RING, RIGHT_EYE_RING, MOUTH_RING):
        closed |= _closure_triangles(tris, ring)
    face_tris = tris[~closed]
    loops = _boundary_loops(face_tris)
    ring_sets = [set(LEFT_EYE_RING), set(RIGHT_EYE_RING), set(MOUTH_RING)]
    outer = [lp for lp in loops if not any(set(lp.tolist()) == s for s in ring_sets)]
    if len(loops) != 4 or len(outer) != 1:
        raise RuntimeError("canonical face mesh: unexpected boundary loops after opening eyes/mouth")
    face_loop = outer[0]

    V = cf.vertices_m
    C = SKULL_CENTRE
    # neck rings (template positions, canonical space)
    neck_pos = np.stack([_neck_ring(k / NECK_RINGS, NECK_SEGMENTS) for k in range(NECK_RINGS + 1)])

    # --- shell triangulation in direction space (spherical Delaunay = hull of unit vectors) ---
    def unit(p):
        d = p - C
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    loop_d = unit(V[face_loop])
    neck_d = unit(neck_pos[0])
    cand = _fibonacci_sphere(SHELL_SAMPLES)
    spacing = np.sqrt(4 * np.pi / SHELL_SAMPLES / (np.sqrt(3) / 2))
    proj = _stereo_back(cand)
    inside = _point_in_polygon(proj, _stereo_back(loop_d)) | _point_in_polygon(proj, _stereo_back(neck_d))
    far = np.minimum(_angle_to_polyline(cand, loop_d), _angle_to_polyline(cand, neck_d)) > 0.65 * spacing
    shell_d = cand[~inside & far]
    n_shell = len(shell_d)
    n_loop, n_neck = len(face_loop), NECK_SEGMENTS
    # local ids: [face loop][shell interior][neck top loop]
    all_d = np.concatenate([loop_d, shell_d, neck_d])
    hull = ConvexHull(all_d).simplices.astype(np.int64)
    cen = all_d[hull].mean(1)
    nrm = np.cross(all_d[hull[:, 1]] - all_d[hull[:, 0]], all_d[hull[:, 2]] - all_d[hull[:, 0]])
    flip = (nrm * cen).sum(1) < 0
    hull[flip] = hull[flip][:, ::-1]
    cproj = _stereo_back(cen / np.linalg.norm(cen, axis=1, keepdims=True))
    drop = _point_in_polygon(cproj, _stereo_back(loop_d)) | _point_in_polygon(cproj, _stereo_back(neck_d))
    hull = hull[~drop]
    # local -> graph ids
    g_loop = face_loop
    g_shell = N_FACE + np.arange(n_shell)
    g_neck = N_FACE + n_shell + np.arange((NECK_RINGS + 1) * n_neck).reshape(NECK_RINGS + 1, n_neck)
    local_to_graph = np.concatenate([g_loop, g_shell, g_neck[0]])
    shell_tris = local_to_graph[hull]
    # the neck tube: ring 0 must run the way the shell traverses it
    loops = _boundary_loops(shell_tris)
    top_loop = [lp for lp in loops if set(lp.tolist()) == set(g_neck[0].tolist())]
    face_side = [lp for lp in loops if set(lp.tolist()) == set(g_loop.tolist())]
    if len(loops) != 2 or not top_loop or not face_side:
        raise RuntimeError("head shell triangulation does not have the face and neck loops as its boundary")
    # shell traverses neck ring 0 along top_loop; the tube continues with the opposite direction
    pos_in = {int(v): i for i, v in enumerate(top_loop[0])}
    forward = pos_in[int(g_neck[0][1])] == (pos_in[int(g_neck[0][0])] + 1) % n_neck
    if forward:
        g_neck = g_neck[:, ::-1]
        neck_pos = neck_pos[:, ::-1]
    # ring_a must run the way the *existing* surface traverses it for _loft; the shell runs
    # top ring as g_neck[0] reversed now, so loft from the reversed ring.
    neck_tris = np.concatenate([_loft(g_neck[k][::-1], g_neck[k + 1][::-1]) for k in range(NECK_RINGS)])
    # check: the face traverses the face loop opposite to the shell
    if set(map(tuple, np.stack([face_side[0], np.roll(face_side[0], -1)], 1).tolist())) & \
            set(map(tuple, np.stack([face_loop, np.roll(face_loop, -1)], 1).tolist())):
        raise RuntimeError("shell and face disagree on winding")

    n_graph = N_FACE + n_shell + (NECK_RINGS + 1) * n_neck
    graph_tris = np.concatenate([face_tris, shell_tris, neck_tris])

    # --- template positions: face and neck fixed, shell from a smooth fit to the skull superellipsoid
    t = (np.abs(shell_d / SKULL_AXES) ** SKULL_EXPONENT).sum(1) ** (-1.0 / SKULL_EXPONENT)
    target = C + shell_d * t[:, None]
    tmpl = np.zeros((n_graph, 3))
    tmpl[:N_FACE] = V
    tmpl[g_shell] = target
    tmpl[g_neck.ravel()] = neck_pos.reshape(-1, 3)
    L = _uniform_laplacian(n_graph, graph_tris)
    free = g_shell
    fixed = np.setdiff1d(np.arange(n_graph), free)
    A = (L.T @ L).tocsr()
    # soft pull to the superellipsoid, weaker near the seams so the shell bends into the face and neck
    adj = (abs(L) > 0).astype(float)
    hop = dijkstra(adj, indices=np.concatenate([face_loop, g_neck[0]]), unweighted=True,
                   min_only=True)[free]
    w = 0.02 * np.clip((hop - 1) / 3.0, 0.0, 1.0) ** 2
    A_ff = A[free][:, free] + sp.diags(w)
    rhs = -A[free][:, fixed] @ tmpl[fixed] + w[:, None] * target
    tmpl[free] = spla.spsolve(A_ff.tocsc(), rhs)

    # --- the subject solve: biharmonic displacement with face and neck held
    A_ff2 = A[free][:, free].tocsc()
    lu = spla.splu(A_ff2)
    coupling = A[free][:, fixed].tocsr()

    # --- harmonic extension of face loop values over shell + neck (for extend_deltas)
    sub = np.concatenate([face_loop, np.arange(N_FACE, n_graph)])  # loop first, then graph order
    Ls = L[sub][:, sub]
    nb = len(face_loop)
    H = np.zeros((len(sub) - nb, nb))
    Lff = Ls[nb:][:, nb:].tocsc()
    H[:] = spla.splu(Lff).solve(-Ls[nb:][:, :nb].toarray())

    # --- scalp/neck UV chart: azimuthal equidistant projection around -Z (back of the head)
    def chart(d):
        theta = np.arccos(np.clip(-d[:, 2], -1, 1)) / np.pi   # 0 at the back, 1 at the front
        phi = np.arctan2(d[:, 1], d[:, 0])
        return np.stack([theta * np.cos(phi), theta * np.sin(phi)], 1)

    # rows: the face loop seam copies, then graph ids N_FACE.. in order
    allc = np.zeros((n_loop + n_graph - N_FACE, 2))
    allc[:n_loop] = chart(loop_d)
    allc[n_loop + g_shell - N_FACE] = chart(shell_d)
    ch_neck0 = chart(unit(neck_pos[0]))
    nc = ch_neck0.mean(0)
    for k in range(NECK_RINGS + 1):
        allc[n_loop + g_neck[k] - N_FACE] = nc + (ch_neck0 - nc) * (1 - 0.85 * k / NECK_RINGS)
    mid = (allc.max(0) + allc.min(0)) / 2
    half = (allc.max(0) - allc.min(0)).max() / 2 * 1.02
    chart_uv = _to_tile((allc - mid) / half, UV_TILES["scalp_neck"])

    # mouth ring parameters from the canonical face
    M = V[list(MOUTH_RING)]
    xc = (M[:, 0].max() + M[:, 0].min()) / 2
    s = np.clip((M[:, 0] - xc) / ((M[:, 0].max() - M[:, 0].min()) / 2), -1, 1)
    side = np.array([0] + [1] * 9 + [0] + [-1] * 9)

    return _Template(face_tris=face_tris, face_loop=face_loop, shell_dirs=shell_d,
                     shell_tris=shell_tris, n_shell=n_shell, neck_rings=g_neck,
                     shell_template=tmpl, graph_tris=graph_tris, solve_free=free,
                     solve_fixed=fixed, solve_lu=lu, solve_coupling=coupling, harmonic=H,
                     chart_uv=chart_uv, mouth_s=s, mouth_side=side)


# ================================================================================================
# Per-subject construction
# ================================================================================================

def _affine_fit(src: np.ndarray, dst: np.ndarray):
    """Affine map x -> x @ A.T + t taking src to dst in the least-squares sense, with its
    stretch (A = R S, polar decomposition) limited to [0.6, 1.6] and no mirroring. Captures the
    subject's face size and proportions, and any rotation or shear of the input, so the
    template skull and neck follow the face."""
    sm, dm = src.mean(0), dst.mean(0)
    X, Y = src - sm, dst - dm
    A = np.linalg.lstsq(X, Y, rcond=None)[0].T
    U, sv, Vt = np.linalg.svd(A)
    if np.linalg.det(U @ Vt) < 0:
        U[:, -1] *= -1
    R = U @ Vt
    S = Vt.T @ np.diag(np.clip(sv, 0.6, 1.6)) @ Vt
    A = R @ S
    return A, dm - sm @ A.T


def _eyeball(centre: np.ndarray, radius: float, n_lon: int = 24):
    """UV sphere with its pole facing +Z. Returns positions, triangles (local), polar angle per
    vertex (degrees) and chart coordinates in [-1, 1]^2."""
    lat = np.array([0, 5, 9, 11, 16, 22, 27, 30, 34, 45, 60, 80, 100, 125, 150, 180], float)
    rings = lat[1:-1]
    phi = 2 * np.pi * np.arange(n_lon) / n_lon
    th = np.radians(rings)[:, None]
    pts = np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi),
                    np.cos(th) * np.ones_like(phi)], -1).reshape(-1, 3)
    dirs = np.concatenate([[[0, 0, 1.0]], pts, [[0, 0, -1.0]]])
    ang = np.concatenate([[0.0], np.repeat(rings, n_lon), [180.0]])
    ids = 1 + np.arange(len(rings) * n_lon).reshape(len(rings), n_lon)
    tris = [np.stack([np.zeros(n_lon, int), ids[0], np.roll(ids[0], -1)], 1)]
    for k in range(len(rings) - 1):
        a, b = ids[k], ids[k + 1]
        tris.append(np.stack([a, b, np.roll(b, -1)], 1))
        tris.append(np.stack([a, np.roll(b, -1), np.roll(a, -1)], 1))
    last = len(dirs) - 1
    tris.append(np.stack([ids[-1], np.full(n_lon, last), np.roll(ids[-1], -1)], 1))
    tris = np.concatenate(tris)
    # chart: radius = polar angle / 180 deg, the back pole (never visible) at the rim
    r = 0.98 * ang / 180.0
    ph = np.arctan2(dirs[:, 1], dirs[:, 0])
    chart = np.stack([r * np.cos(ph), r * np.sin(ph)], 1)
    return centre + radius * dirs, tris, ang, chart


def _eye_colour(ang: np.ndarray) -> np.ndarray:
    col = np.empty((len(ang), 3))
    col[:] = SCLERA_RGB
    col[ang <= 30.5] = LIMBUS_RGB
    col[ang <= 27.5] = IRIS_RGB
    col[ang <= 9.5] = PUPIL_RGB
    return col


def _place_eye(face: np.ndarray, face_tris: np.ndarray, eye: int, iris: np.ndarray | None,
               radius: float) -> np.ndarray:
    """Eyeball centre: one radius behind the front of the eye opening, behind the middle of the
    eyelid opening (moved IRIS_PULL of the way towards the iris centre if given), then pushed back along -Z until no face
    vertex is closer than EYE_CLEARANCE radii (so neither the eyeball nor its socket pokes
    through the lids or the skin around them), and further if a facet of the socket or of the
    skin nearby would still cut into the eyeball (nearly closed lids)."""
    R = face[list((LEFT_EYE_RING, RIGHT_EYE_RING)[eye])]
    front_z = np.sort(R[:, 2])[-4:].mean()
    mid = np.array([(R[:, 0].min() + R[:, 0].max()) / 2, R[:, 1].mean()])
    cxy = mid
    if iris is not None:
        # halfway to the iris centre (the iris moves with the gaze, the eyeball centre does
        # not), pulled further towards the middle of the opening if not well inside the eyelid
        # contour (the socket is built around the eye axis, which must pass through the opening)
        inner = mid + (R[:, :2] - mid) * 0.6
        for f in np.linspace(IRIS_PULL, 0.0, 11):
            cxy = mid + (iris[:2] - mid) * f
            if _point_in_polygon(cxy[None], inner)[0]:
                break
    c = np.array([cxy[0], cxy[1], front_z - radius])
    need = EYE_CLEARANCE * radius
    dxy2 = ((face[:, :2] - c[:2]) ** 2).sum(1)
    near = dxy2 < need ** 2                  # vertices inside the cylinder the eyeball moves in
    if near.any():
        h = np.sqrt(need ** 2 - dxy2[near])
        dz = face[near, 2] - c[2]
        ahead = dz > -h                      # (the face has nothing far behind the eye)
        if ahead.any():
            c[2] -= max(0.0, float((h[ahead] - dz[ahead]).max()))
    close = face_tris[(np.linalg.norm(face[face_tris] - c, axis=2) < 3 * radius).any(1)]
    for _ in range(20):
        spos, stris = _socket(R, c, SOCKET_RADIUS * radius, eye)[:2]
        d = min(_min_distance(c, spos, stris), _min_distance(c, face, close))
        if d >= 1.005 * radius:
            break
        c[2] -= 1.01 * radius - d
    return c


def _min_distance(c: np.ndarray, pos: np.ndarray, tris: np.ndarray, n: int = 8) -> float:
    """Approximate smallest distance from point c to a set of triangles (barycentric grid)."""
    if len(tris) == 0:
        return np.inf
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1))
    keep = i + j <= n
    b = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], 1) / n      # (G, 3)
    pts = np.einsum("gk,tkd->tgd", b, pos[tris])
    return float(np.linalg.norm(pts - c, axis=2).min())


class _Parts:
    """Accumulates mesh parts (vertex attributes, triangles, delta-transfer weights)."""

    def __init__(self):
        self.n = 0
        self.pos, self.uv, self.region, self.color, self.source, self.weld = [], [], [], [], [], []
        self.neck_weight, self.tris = [], []
        self.w_rows, self.w_cols, self.w_vals = [], [], []

    def add(self, pos, uv, region, color, source=None, weld=None, neck_weight=None) -> np.ndarray:
        """Add vertices; returns their ids. source/weld default to the new ids themselves."""
        pos = np.asarray(pos, float)
        ids = self.n + np.arange(len(pos))
        self.pos.append(pos)
        self.uv.append(np.asarray(uv, float))
        self.region.append(np.broadcast_to(np.asarray(region, np.uint8), (len(pos),)))
        self.color.append(np.broadcast_to(np.asarray(color, float), (len(pos), 3)))
        self.source.append(ids if source is None else np.asarray(source))
        self.weld.append(ids if weld is None else np.asarray(weld))
        self.neck_weight.append(np.zeros(len(pos)) if neck_weight is None else neck_weight)
        self.n += len(pos)
        return ids

    def add_tris(self, tris):
        self.tris.append(np.asarray(tris, np.int64))

    def add_weights(self, rows, cols, vals):
        """Delta transfer: vertex rows[i] gets vals[i] times the delta of face vertex cols[i]."""
        rows, cols, vals = np.broadcast_arrays(rows, cols, vals)
        self.w_rows.append(rows.ravel())
        self.w_cols.append(cols.ravel())
        self.w_vals.append(vals.ravel().astype(float))

    def cat(self, name):
        return np.concatenate(getattr(self, name))


def _fit_shell(T: _Template, face: np.ndarray, A: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Shell + neck positions (graph numbering) for the subject's face: the template head and
    neck mapped by the affine fit of the canonical face to the subject's, plus a biharmonic
    displacement that takes the template face exactly onto the subject's."""
    tmpl = T.shell_template @ A.T + offset
    delta = np.zeros_like(tmpl)
    delta[:N_FACE] = face - tmpl[:N_FACE]
    delta[T.solve_free] = T.solve_lu.solve(-(T.solve_coupling @ delta[T.solve_fixed]))
    pos = tmpl + delta
    pos[:N_FACE] = face
    return pos


def _add_skin(parts: _Parts, T: _Template, face: np.ndarray, graph_pos: np.ndarray,
              skin: np.ndarray, falloff_m: float) -> np.ndarray:
    """Face, scalp and neck. Returns the neck rings as head vertex ids (ring 0 = top)."""
    loop = T.face_loop
    n_loop = len(loop)
    can_uv = load_canonical_face().uv
    parts.add(face, can_uv, FACE, skin)
    copies = parts.add(face[loop], T.chart_uv[:n_loop], SCALP, skin, source=loop, weld=loop)
    rest = parts.add(graph_pos[N_FACE:], T.chart_uv[n_loop:], SCALP, skin)
    # graph id -> head id: face ids stay, the shell's face loop uses the seam copies
    g2h = np.concatenate([np.arange(N_FACE), rest])
    g2h_shell = g2h.copy()
    g2h_shell[loop] = copies
    n_face_tris, n_shell_tris = len(T.face_tris), len(T.shell_tris)
    parts.add_tris(T.face_tris)
    parts.add_tris(g2h_shell[T.shell_tris])
    parts.add_tris(g2h[T.graph_tris[n_face_tris + n_shell_tris:]])
    neck_rings = g2h[T.neck_rings]

    # regions: the shell below the level of the jaw angles, and the neck tube, are NECK
    jaw_y = face[list(JAW_ANGLES), 1].mean()
    region = np.where(graph_pos[N_FACE:, 1] < jaw_y, NECK, SCALP).astype(np.uint8)
    region[neck_rings.ravel() - rest[0]] = NECK
    parts.region[-1] = region
    parts.region[-2] = np.where(face[loop, 1] < jaw_y, NECK, SCALP).astype(np.uint8)
    # neck weight: smoothstep down the neck tube, 0 on the head
    kf = np.arange(NECK_RINGS + 1) / NECK_RINGS
    nw = np.zeros(len(rest))
    nw[neck_rings - rest[0]] = (kf * kf * (3 - 2 * kf))[:, None]
    parts.neck_weight[-1] = nw

    # deltas: face and seam copies exact; the rest a harmonic blend of the face-oval deltas times
    # a cosine falloff with the distance along the surface from the oval
    parts.add_weights(np.arange(N_FACE), np.arange(N_FACE), 1.0)
    parts.add_weights(copies, loop, 1.0)
    skin_pos = np.concatenate(parts.pos[-3:])
    n_skin = len(skin_pos)
    adj = _edge_graph(np.concatenate(parts.tris[-3:]), skin_pos, n_skin)
    dist = dijkstra(adj, indices=copies, min_only=True)[rest]
    fall = np.where(dist < falloff_m, 0.5 * (1 + np.cos(np.pi * dist / falloff_m)), 0.0)
    Hw = T.harmonic * fall[:, None]              # rows: graph ids N_FACE.. == rest, in order
    r_i, c_i = np.nonzero(Hw > 1e-6)
    parts.add_weights(rest[r_i], loop[c_i], Hw[r_i, c_i])
    return neck_rings


def _add_mouth_bag(parts: _Parts, T: _Template, face: np.ndarray, scale: float):
    """A pocket from the inner lip contour back into the head, closed at the back."""
    mring = np.array(MOUTH_RING)
    M = face[mring]
    n = len(mring)
    xc, yc = (M[:, 0].max() + M[:, 0].min()) / 2, M[:, 1].mean()
    half_w = (M[:, 0].max() - M[:, 0].min()) / 2
    z_corner = M[:, 2].min()
    s = T.mouth_s
    ell_y = T.mouth_side * np.sqrt(np.clip(1 - s * s, 0, 1))
    chart = np.stack([s, ell_y], 1) * 0.98
    n_rings = len(MOUTH_BAG_RINGS)
    lip = np.array(MOUTH_LIP_RGB)
    deep = np.array(MOUTH_DEEP_RGB)
    ring0 = parts.add(M, _to_tile(chart, UV_TILES["mouth"]), MOUTH, lip, source=mring)
    parts.add_weights(ring0, mring, 1.0)
    first_tri = len(parts.tris)
    prev = ring0[::-1]
    for k, (blend, wf, h, zb, dep, fade) in enumerate(MOUTH_BAG_RINGS):
        ell = np.stack([xc + s * half_w * wf, yc + ell_y * h * scale, np.zeros(n)], 1)
        p = (1 - blend) * M + blend * ell
        p[:, 2] = (1 - zb) * M[:, 2] + zb * z_corner - dep * scale
        t = (k + 1) / (n_rings + 1)
        ids = parts.add(p, _to_tile(chart * (1 - t), UV_TILES["mouth"]), MOUTH,
                        (1 - t) * lip + t * deep)
        parts.add_weights(ids, mring, fade)
        parts.add_tris(_loft(prev, ids[::-1]))
        prev = ids[::-1]
    cap = parts.add([[xc, yc, z_corner - MOUTH_DEPTH_M * scale]],
                    _to_tile(np.zeros((1, 2)), UV_TILES["mouth"]), MOUTH, deep)
    parts.add_weights(np.full(n, cap[0]), mring, MOUTH_CAP_FADE / n)
    parts.add_tris(_fan(prev, cap[0]))
    bag = np.concatenate(parts.tris[first_tri:])
    del parts.tris[first_tri:]
    parts.add_tris(_orient_to(bag, T.face_tris, mring, ring0))


def _add_eye(parts: _Parts, T: _Template, face: np.ndarray, ring, centre: np.ndarray,
             radius: float, side: int, skin: np.ndarray):
    """Socket behind one eye opening and the eyeball in it. side 0 = left (+X), 1 = right."""
    ring = np.array(ring)
    n_r = len(ring)
    spos, stris, lid_a, lid_b, lid_w, fade, chart, depth = _socket(
        face[ring], centre, SOCKET_RADIUS * radius, side)
    if side == 1:
        chart = chart * np.array([-1.0, 1.0])    # mirror the right socket's chart
    dark = skin * np.array([0.5, 0.3, 0.3])
    colour = (1 - depth[:, None]) * skin * 0.85 + depth[:, None] * dark
    source = np.concatenate([ring, parts.n + np.arange(n_r, len(spos))])
    ids = parts.add(spos, _to_tile(chart, UV_TILES[("socket_left", "socket_right")[side]]),
                    EYE_SOCKET, colour, source=source)
    parts.add_tris(_orient_to(stris + ids[0], T.face_tris, ring, ids[:n_r]))
    parts.add_weights(ids, ring[lid_a], lid_w * fade)
    parts.add_weights(ids, ring[lid_b], (1 - lid_w) * fade)

    epos, etris, eang, echart = _eyeball(centre, radius)
    ids = parts.add(epos, _to_tile(echart, UV_TILES[("eye_left", "eye_right")[side]]),
                    (EYE_LEFT, EYE_RIGHT)[side], _eye_colour(eang))
    parts.add_tris(etris + ids[0])


def build_head(face_points_m: np.ndarray, skin_rgb=SKIN_RGB) -> HeadMesh:
    """Whole head mesh around the subject's neutral face.

    face_points_m: (468, 3) or (478, 3) landmarks in canonical face space, metres (with the
                   478-landmark model the iris centres place the eyeballs).
    skin_rgb:      linear RGB in [0, 1] for the skin vertex colours (face, scalp, neck; the eye
                   sockets get a darker shade of it). Convert sRGB samples to linear first.
    """
    pts = np.asarray(face_points_m, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] not in (468, 478):
        raise ValueError(f"face_points_m must be (468, 3) or (478, 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("face_points_m has non-finite values")
    skin = np.clip(np.asarray(skin_rgb, dtype=np.float64).reshape(3), 0.0, 1.0)
    T = _template()
    face = pts[:N_FACE]
    A, offset = _affine_fit(load_canonical_face().vertices_m, face)
    s_mean = float(np.linalg.det(A)) ** (1 / 3)          # overall size relative to canonical

    parts = _Parts()
    graph_pos = _fit_shell(T, face, A, offset)
    neck_rings = _add_skin(parts, T, face, graph_pos, skin, DELTA_FALLOFF_M * s_mean)
    _add_mouth_bag(parts, T, face, s_mean)

    radius = EYE_RADIUS_M * s_mean
    iris_pts = pts[list(IRIS_CENTRES)] if len(pts) == 478 else None
    centres = []
    for side, ring in enumerate((LEFT_EYE_RING, RIGHT_EYE_RING)):
        iris = None
        if iris_pts is not None:
            rc = face[list(ring)].mean(0)
            iris = iris_pts[np.argmin(np.linalg.norm(iris_pts[:, :2] - rc[:2], axis=1))]
        centres.append(_place_eye(face, T.face_tris, side, iris, radius))
    for side, ring in enumerate((LEFT_EYE_RING, RIGHT_EYE_RING)):
        _add_eye(parts, T, face, ring, centres[side], radius, side, skin)

    positions = parts.cat("pos")
    triangles = parts.cat("tris")
    weld = parts.cat("weld").astype(np.int64)
    color = np.concatenate([np.clip(parts.cat("color"), 0, 1), np.ones((parts.n, 1))], 1)
    W = sp.coo_matrix((parts.cat("w_vals"), (parts.cat("w_rows"), parts.cat("w_cols"))),
                      shape=(parts.n, N_FACE)).tocsr()
    W.eliminate_zeros()
    return HeadMesh(
        positions_m=positions.astype(np.float32),
        normals=_vertex_normals(positions, triangles, weld),
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
        delta_weights=W.astype(np.float32),
    )


@lru_cache(maxsize=2)
def _canonical_lid_azimuths(eye: int):
    """(16,) unwrapped azimuths of the eyelid ring around the middle of the canonical eye
    opening, times the sign that makes them increase along the ring, and that sign. eye 0 is
    the left eye, 1 the right."""
    R = load_canonical_face().vertices_m[list((LEFT_EYE_RING, RIGHT_EYE_RING)[eye])]
    mid = np.array([(R[:, 0].min() + R[:, 0].max()) / 2, R[:, 1].mean()])
    psi = np.unwrap(np.arctan2(R[:, 1] - mid[1], R[:, 0] - mid[0]))
    sgn = 1.0 if psi[-1] > psi[0] else -1.0
    if not (np.diff(psi * sgn) > 0).all():
        raise RuntimeError("canonical eyelid ring is not star-shaped around its middle")
    return psi * sgn, sgn


def _zipper(a: np.ndarray, psi_a: np.ndarray, b: np.ndarray, psi_b: np.ndarray,
            pos: np.ndarray) -> np.ndarray:
    """Triangles stitching two closed rings whose angles increase around the same axis (ring a
    traversed a_i -> a_i+1 by the triangles, ring b the other way). Starts at aligned angles and
    then advances along the ring whose new edge (diagonal) is shorter, never letting one ring
    run more than a step ahead of the other in angle."""
    two_pi = 2 * np.pi
    pa = psi_a - psi_a[0]
    pb = np.mod(psi_b - psi_a[0], two_pi)
    j0 = int(np.argmin(pb))
    b = np.roll(b, -j0)
    pb = np.roll(pb, -j0)
    pb = np.where(np.arange(len(pb)) > 0, np.where(pb <= pb[0], pb + two_pi, pb), pb)
    na, nb = len(a), len(b)
    pa_ext = np.append(pa, two_pi)
    pb_ext = np.append(pb, pb[0] + two_pi)
    tris, i, j = [], 0, 0
    while i < na or j < nb:
        if j == nb:
            adv_a = True
        elif i == na:
            adv_a = False
        else:
            # angle order, unless the other choice gives the shorter diagonal and stays ordered
            adv_a = pa_ext[i + 1] <= pb_ext[j + 1]
            da = np.linalg.norm(pos[a[(i + 1) % na]] - pos[b[j % nb]])
            db = np.linalg.norm(pos[a[i % na]] - pos[b[(j + 1) % nb]])
            if adv_a and db < da and pb_ext[j + 1] <= pa_ext[i + 1] + (pa_ext[i + 1] - pa_ext[i]):
                adv_a = False
            elif not adv_a and da < db and pa_ext[i + 1] <= pb_ext[j + 1] + (pb_ext[j + 1] - pb_ext[j]):
                adv_a = True
        if adv_a:
            tris.append((a[i % na], a[(i + 1) % na], b[j % nb]))
            i += 1
        else:
            tris.append((a[i % na], b[(j + 1) % nb], b[j % nb]))
            j += 1
    return np.array(tris)


def _socket(lid: np.ndarray, c: np.ndarray, r_sock: float, eye: int, n_seg: int = 32,
            n_lat: int = 9):
    """An eye socket: a pocket from the eyelid ring `lid` onto the sphere of radius r_sock
    around the eyeball centre c (so the eyeball turns freely inside it), closed at the back.

    Local ids: the lid ring copies first, then n_lat rings of n_seg vertices evenly spaced in
    azimuth (fine enough that the flat facets stay outside the eyeball), then the back pole.
    Returns positions, triangles (local ids), for each vertex the two lid ring indices it takes
    its delta from, the weight of the first, a fade factor, polar chart coordinates in
    [-1, 1]^2 and a depth in [0, 1] (for the colour)."""
    n_r = len(lid)
    d = lid - c
    u = d / np.linalg.norm(d, axis=1, keepdims=True)
    alpha = np.arccos(np.clip(u[:, 2], -1, 1))              # angle from the gaze axis (+Z)
    # azimuth of each lid vertex around the eye axis, taken from the canonical (open) eye, so
    # the pocket's layout holds for narrowed or closed lids too
    ps, sgn = _canonical_lid_azimuths(eye)                    # ps increases along the ring
    psi = ps * sgn
    pu = ps[0] + 2 * np.pi * (np.arange(n_seg) + 0.5) / n_seg
    ps_ext = np.append(ps, ps[0] + 2 * np.pi)
    al_ext = np.append(alpha, alpha[0])
    k = np.clip(np.searchsorted(ps_ext, pu, side="right") - 1, 0, n_r - 1)
    w1 = (pu - ps_ext[k]) / (ps_ext[k + 1] - ps_ext[k])
    lat0 = (1 - w1) * al_ext[k] + w1 * al_ext[k + 1] + np.radians(10)
    # smallest Lipschitz majorant (slope 0.7 per radian of azimuth): neighbouring columns never
    # differ by more than ~8 degrees of latitude, so the facets stay close to the sphere
    gap = np.abs(np.angle(np.exp(1j * (pu[:, None] - pu[None, :]))))
    lat0 = (lat0[None, :] - 0.7 * gap).max(1)
    az = pu * sgn
    lid_a = np.concatenate([np.arange(n_r)] + [k] * n_lat + [[0]])
    lid_b = np.concatenate([np.arange(n_r)] + [(k + 1) % n_r] * n_lat + [[0]])
    lid_w = np.concatenate([np.ones(n_r)] + [1 - w1] * n_lat + [[1.0]])
    fades = list(SOCKET_FADE) + [0.0] * n_lat
    fade = np.concatenate([np.ones(n_r)] + [np.full(n_seg, f) for f in fades[:n_lat]] + [[0.0]])
    pos = [lid]
    chart = [np.stack([np.cos(psi), np.sin(psi)], 1) * 0.98]
    depth = [np.zeros(n_r)]
    rings = []
    for r in range(n_lat):
        lat = lat0 + (np.pi - lat0) * r / n_lat
        dirs = np.stack([np.sin(lat) * np.cos(az), np.sin(lat) * np.sin(az), np.cos(lat)], 1)
        pos.append(c + r_sock * dirs)
        rings.append(n_r + r * n_seg + np.arange(n_seg))
        chart.append(np.stack([np.cos(az), np.sin(az)], 1) * 0.98 * (1 - (r + 1) / (n_lat + 1)))
        depth.append(np.full(n_seg, min(1.0, (r + 1) / 2)))
    pole = n_r + n_lat * n_seg
    pos.append([c - np.array([0, 0, r_sock])])
    chart.append([[0.0, 0.0]])
    depth.append([1.0])
    allpos = np.concatenate(pos)
    tris = [_zipper(np.arange(n_r), ps, rings[0], pu, allpos)]
    for r in range(n_lat - 1):
        tris.append(_loft(rings[r][::-1], rings[r + 1][::-1]))
    tris.append(_fan(rings[-1][::-1], pole))
    return (allpos, np.concatenate(tris), lid_a, lid_b, lid_w, fade,
            np.concatenate(chart), np.concatenate(depth))


def _edge_graph(tris: np.ndarray, pos: np.ndarray, n: int) -> sp.csr_matrix:
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    w = np.linalg.norm(pos[e[:, 0]] - pos[e[:, 1]], axis=1)
    g = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    return g.maximum(g.T)


def _orient_to(new_tris: np.ndarray, face_tris: np.ndarray, face_ring, copy_ring) -> np.ndarray:
    """Flip a part if needed so that across the ring it shares with the face (as seam copies
    copy_ring of the face vertices face_ring) the two surfaces run the shared edges in opposite
    directions (consistent winding)."""
    to_face = {int(c): int(f) for c, f in zip(copy_ring, face_ring)}
    face_half = {(int(t[i]), int(t[(i + 1) % 3])) for t in face_tris for i in range(3)}
    same = opp = 0
    for t in new_tris:
        for i in range(3):
            a, b = int(t[i]), int(t[(i + 1) % 3])
            if a in to_face and b in to_face:
                same += (to_face[a], to_face[b]) in face_half
                opp += (to_face[b], to_face[a]) in face_half
    return new_tris[:, ::-1].copy() if same > opp else new_tris


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
    W = head.delta_weights
    out = np.stack([W @ d[k] for k in range(len(d))]).astype(np.float32)
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
    return _vertex_normals(p, head.triangles.astype(np.int64), head.normal_weld)


def to_trimesh(head: HeadMesh, weld: bool = False):
    """A trimesh.Trimesh of the head (seam copies merged into their face vertex if weld)."""
    import trimesh
    tris = head.triangles.astype(np.int64)
    if weld:
        tris = head.source_id[tris]
    return trimesh.Trimesh(head.positions_m.astype(np.float64), tris, process=False)

"""Small triangle-mesh utilities the head mesh is built with.

Triangles are (F, 3) int arrays of vertex ids, counter-clockwise seen from outside; positions are
(V, 3) float arrays (metres, canonical face space); rings are 1-D arrays of vertex ids in order.
`MeshParts` accumulates the head's parts (vertex attributes, triangles, delta-transfer weights)
as they are built.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

POLYLINE_SAMPLES_PER_EDGE = 5    # points sampled along each edge by `angle_to_polyline`


def boundary_loops(tris: np.ndarray) -> list[np.ndarray]:
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


def closure_triangles(tris: np.ndarray, ring) -> np.ndarray:
    """(F,) bool: the triangles whose three vertices all lie on `ring` (those closing it)."""
    s = set(int(i) for i in ring)
    return np.array([all(int(v) in s for v in t) for t in tris])


def loft(ring_a: np.ndarray, ring_b: np.ndarray) -> np.ndarray:
    """Quads between two closed rings of equal length (a_i, a_i+1, b_i+1, b_i) as triangles.
    If ring_a runs along its boundary in the direction the existing surface traverses it, the new
    band continues that surface with the same winding."""
    a, b = np.asarray(ring_a), np.asarray(ring_b)
    a1, b1 = np.roll(a, -1), np.roll(b, -1)
    # existing surface has directed edge a_i -> a_i+1, so the band must use a_i+1 -> a_i
    return np.concatenate([np.stack([a1, a, b], 1), np.stack([a1, b, b1], 1)])


def fan(ring: np.ndarray, centre: int) -> np.ndarray:
    """Triangles closing a ring with one centre vertex (the ring's winding continued)."""
    r = np.asarray(ring)
    return np.stack([np.roll(r, -1), r, np.full_like(r, centre)], 1)


def uniform_laplacian(n: int, tris: np.ndarray) -> sp.csr_matrix:
    """(n, n) graph Laplacian I - D^-1 Adj of the mesh's edges (uniform weights)."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    return (sp.identity(n) - sp.diags(1.0 / np.maximum(deg, 1)) @ adj).tocsr()


def edge_graph(tris: np.ndarray, pos: np.ndarray, n: int) -> sp.csr_matrix:
    """(n, n) symmetric sparse graph of the mesh's edges weighted by their length (metres)."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    w = np.linalg.norm(pos[e[:, 0]] - pos[e[:, 1]], axis=1)
    g = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    return g.maximum(g.T)


def to_tile(xy: np.ndarray, tile: tuple, flip_v: bool = True) -> np.ndarray:
    """Map (N, 2) chart coordinates in [-1, 1]^2 (y up) into a UV tile (u0, v0, u1, v1), v down."""
    u0, v0, u1, v1 = tile
    u = u0 + (xy[:, 0] + 1) * 0.5 * (u1 - u0)
    y = -xy[:, 1] if flip_v else xy[:, 1]
    v = v0 + (y + 1) * 0.5 * (v1 - v0)
    return np.stack([u, v], 1)


def fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) unit directions spread evenly over the sphere (golden-angle spiral)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def stereo_back(d: np.ndarray) -> np.ndarray:
    """(N, 2) stereographic projection of (N, 3) unit directions from the -Z pole (the back of
    the head)."""
    return d[:, :2] / (1 + d[:, 2:3])


def point_in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(N,) bool: which of the (N, 2) points lie inside the closed (M, 2) polygon (even-odd)."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    cond = (y0 > y) != (y1 > y)
    xi = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-30, y1 - y0)
    return (cond & (x < xi)).sum(1) % 2 == 1


def angle_to_polyline(d: np.ndarray, loop_dirs: np.ndarray) -> np.ndarray:
    """(N,) smallest angle (radians, approximately) between (N, 3) unit directions d and a closed
    polyline of (M, 3) unit directions, sampling each edge."""
    a, b = loop_dirs, np.roll(loop_dirs, -1, 0)
    ts = np.linspace(0, 1, POLYLINE_SAMPLES_PER_EDGE + 1)[:-1]
    samples = (a[None] * (1 - ts)[:, None, None] + b[None] * ts[:, None, None]).reshape(-1, 3)
    samples /= np.linalg.norm(samples, axis=1, keepdims=True)
    return np.arccos(np.clip(d @ samples.T, -1, 1)).min(1)


def min_distance(c: np.ndarray, pos: np.ndarray, tris: np.ndarray, n: int = 8) -> float:
    """Approximate smallest distance (metres) from point c to a set of triangles, sampled on an
    n-step barycentric grid of each."""
    if len(tris) == 0:
        return np.inf
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1))
    keep = i + j <= n
    b = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], 1) / n      # (G, 3)
    pts = np.einsum("gk,tkd->tgd", b, pos[tris])
    return float(np.linalg.norm(pts - c, axis=2).min())


def zipper(a: np.ndarray, psi_a: np.ndarray, b: np.ndarray, psi_b: np.ndarray,
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


def orient_to(new_tris: np.ndarray, face_tris: np.ndarray, face_ring, copy_ring) -> np.ndarray:
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


class MeshParts:
    """Accumulates mesh parts: per vertex position (metres), uv, region, linear RGB colour,
    source face vertex, normal weld id and neck weight; triangles; delta-transfer weights."""

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

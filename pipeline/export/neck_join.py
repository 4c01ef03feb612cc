"""The head and the body meet at the neck without a seam: matched neck rings, shared skin weights
and normals, and the body's skin colour blended into the head's at the join.

Inputs: the body `SkinnedMesh` (its only open boundary is a ring at the top of the neck,
pipeline.body.mesh), the head `SkinnedMesh` in model space (pipeline.export.avatar.head_part) and
its `HeadMesh` (for `neck_base_ids`, the head's open ring at the bottom of its neck tube, in
order, and `neck_weight`, 1 at that ring and 0 from the top of the tube up). Frames: glTF model
space, metres, rest (T) pose. Output: (body, head) with:

  * the head's neck base ring moved onto the body's ring (each of its vertices to the body ring's
    point at the same angle around the neck), the rest of the neck tube following in proportion
    to `neck_weight` (the tube's top ring does not move), head normals recomputed;
  * the head's base ring skinned like the body's ring at those points (their weights blended and
    pruned to 4), so in every pose both rings move together;
  * a bridge in the body: copies of the head's base ring (same positions, weights and normals)
    stitched to the body's ring by a strip of triangles, so the two rings are joined edge to edge
    (not merely close) in every frame;
  * the body's ring vertices sharing the head's normals at the same angle, and the body's colour
    blended into the head's colour at the ring over NECK_BLEND_M below it (the head's texture
    sampled at its ring's UVs, or its vertex colours), on the skin only.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.core.colour import sample_uv, srgb_to_linear
from pipeline.core.mesh import SkinnedMesh
from pipeline.face.head_mesh import HeadMesh, vertex_normals

NECK_BLEND_M = 0.04     # the body's colour turns into the head's over this distance below the ring
WELD_DECIMALS = 6       # positions equal to a micrometre are one vertex (the body splits UV seams)
MAX_INFLUENCES = 4
TWO_PI = 2 * np.pi


def _welded(positions: np.ndarray) -> np.ndarray:
    """(V,) weld id of each vertex: vertices at the same position share one."""
    return np.unique(np.round(positions, WELD_DECIMALS), axis=0, return_inverse=True)[1].ravel()


def boundary_loop(mesh: SkinnedMesh) -> np.ndarray:
    """Vertex ids of the mesh's open boundary, in order (one vertex per welded position); it must
    be a single loop."""
    weld = _welded(mesh.positions)
    tris = weld[mesh.triangles.astype(np.int64)]
    directed = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    edges = {tuple(e) for e in directed.tolist()}
    nxt = {a: b for a, b in edges if (b, a) not in edges}
    start = next(iter(nxt))
    loop = [start]
    while nxt[loop[-1]] != start:
        loop.append(nxt[loop[-1]])
        if len(loop) > len(nxt):
            raise ValueError("the body's open boundary is not one loop")
    if len(loop) != len(nxt):
        raise ValueError("the body has more than one open boundary")
    first = np.full(weld.max() + 1, -1)
    first[weld[::-1]] = np.arange(len(weld))[::-1]  # the first vertex of each weld id
    return first[np.array(loop)]


def _ring_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, e1, e2) of a ring's best-fit plane: angles are measured from e1 toward e2, with
    e1 x e2 pointing up (+Y)."""
    centre = points.mean(0)
    normal = np.linalg.svd(points - centre)[2][2]
    normal = normal if normal[1] > 0 else -normal
    e1 = np.array([1.0, 0.0, 0.0]) - normal[0] * normal
    e1 /= np.linalg.norm(e1)
    return centre, e1, np.cross(normal, e1)


def _angles(points: np.ndarray, frame) -> np.ndarray:
    centre, e1, e2 = frame
    d = points - centre
    return np.arctan2(d @ e2, d @ e1) % TWO_PI


def _at_angles(angles: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left index, right index, fraction): where query angles fall between the ring vertices of
    `angles` (radians, any order, periodic), to interpolate the ring's values there."""
    order = np.argsort(angles)
    a = angles[order]
    i = np.searchsorted(a, query) % len(a)
    left, right = order[i - 1], order[i]
    span = (angles[right] - angles[left]) % TWO_PI
    t = np.where(span > 0, ((query - angles[left]) % TWO_PI) / np.where(span > 0, span, 1), 0.0)
    return left, right, t


def _blend_weights(joints: np.ndarray, weights: np.ndarray, left, right, t) -> tuple[np.ndarray, np.ndarray]:
    """Skin weights of points between ring vertices left/right (fraction t): blended, 4 kept."""
    n_joints = int(joints.max()) + 1
    dense = np.zeros((len(t), n_joints))
    rows = np.arange(len(t))[:, None]
    np.add.at(dense, (rows, joints[left]), (1 - t)[:, None] * weights[left])
    np.add.at(dense, (rows, joints[right]), t[:, None] * weights[right])
    j = np.argsort(-dense, axis=1)[:, :MAX_INFLUENCES]
    w = np.take_along_axis(dense, j, 1)
    w /= w.sum(1, keepdims=True)
    return np.where(w > 0, j, 0).astype(np.uint16), w.astype(np.float32)


def _zipper(n_body: int, body_angles: np.ndarray, n_head: int, head_angles: np.ndarray) -> np.ndarray:
    """Triangles (F, 3) stitching two rings sorted by angle: body ids 0..n_body-1, head ids
    n_body..n_body+n_head-1, each ring increasing in angle."""
    tris, i, j = [], 0, 0
    while i < n_body or j < n_head:
        next_body = body_angles[(i + 1) % n_body] + TWO_PI * ((i + 1) // n_body)
        next_head = head_angles[(j + 1) % n_head] + TWO_PI * ((j + 1) // n_head)
        b, h = i % n_body, n_body + j % n_head
        if j >= n_head or (i < n_body and next_body <= next_head):
            tris.append((b, h, (i + 1) % n_body))
            i += 1
        else:
            tris.append((b, h, n_body + (j + 1) % n_head))
            j += 1
    return np.array(tris, np.int64)


def _head_colour(head: SkinnedMesh, ids: np.ndarray) -> np.ndarray:
    """(R, 3) linear RGB of the head at vertices `ids`: its texture there, else its vertex colours."""
    if head.texture is not None:
        return srgb_to_linear(sample_uv(head.texture, head.uv[ids]) / 255.0)
    return np.asarray(head.color[ids, :3], np.float64)


def _moved_head(head: SkinnedMesh, head_mesh: HeadMesh, target: np.ndarray, frame, base_angles) -> np.ndarray:
    """(V, 3) head positions with the neck base ring on `target` and the tube following in
    proportion to its neck weight."""
    base = head_mesh.neck_base_ids
    positions = head.positions.astype(np.float64)
    shift = target - positions[base]
    tube = np.flatnonzero(head_mesh.neck_weight > 0)
    left, right, t = _at_angles(base_angles, _angles(positions[tube], frame))
    positions[tube] += head_mesh.neck_weight[tube, None] * ((1 - t)[:, None] * shift[left] + t[:, None] * shift[right])
    positions[base] = target
    return positions


def _bridge(body: SkinnedMesh, ring: np.ndarray, ring_angles: np.ndarray, copies: dict,
            base_angles: np.ndarray) -> SkinnedMesh:
    """The body with the head ring's copies (`copies`: positions, normals, joints, weights, color
    (R, ...)) appended and stitched to its ring."""
    ring_order, base_order = np.argsort(ring_angles), np.argsort(base_angles)
    local = _zipper(len(ring), ring_angles[ring_order], len(base_order), base_angles[base_order])
    ids = np.r_[ring[ring_order], body.n_vertices + base_order]
    tris = ids[local]
    p = np.vstack([body.positions, copies["positions"]]).astype(np.float64)
    normal = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    outward = p[tris].mean(1) - p[ring].mean(0)
    if np.sum(np.einsum("ij,ij->i", normal, outward)) < 0:
        tris = tris[:, ::-1]
    nearest_uv = body.uv[ring[np.argmin(np.abs((base_angles[:, None] - ring_angles[None]) % TWO_PI), axis=1)]]
    return replace(body, positions=p.astype(np.float32),
                   normals=np.vstack([body.normals, copies["normals"]]).astype(np.float32),
                   triangles=np.vstack([body.triangles, tris]).astype(np.uint32),
                   joints=np.vstack([body.joints, copies["joints"]]).astype(np.uint16),
                   weights=np.vstack([body.weights, copies["weights"]]).astype(np.float32),
                   uv=None if body.uv is None else np.vstack([body.uv, nearest_uv]).astype(np.float32),
                   color=np.vstack([body.color, copies["color"]]).astype(np.float32))


def _blend_body_colour(body: SkinnedMesh, ring: np.ndarray, ring_colour: np.ndarray) -> np.ndarray:
    """(V, 4) body colours turning into the ring's colour (R, 3) over NECK_BLEND_M below it, on
    the skin only (the vertices coloured like the ring: the neck, not a collar)."""
    d = np.linalg.norm(body.positions[:, None, :] - body.positions[ring][None], axis=2)
    nearest = np.argmin(d, axis=1)
    skin = np.all(np.isclose(body.color, np.median(body.color[ring], axis=0), atol=1e-4), axis=1)
    s = skin[:, None] * np.clip(1.0 - d[np.arange(len(d)), nearest] / NECK_BLEND_M, 0.0, 1.0)[:, None]
    color = body.color.astype(np.float64).copy()
    color[:, :3] = (1 - s) * color[:, :3] + s * ring_colour[nearest]
    return color


def join_neck(body: SkinnedMesh, head: SkinnedMesh, head_mesh: HeadMesh) -> tuple[SkinnedMesh, SkinnedMesh]:
    """(body, head) joined at the neck (see the module docstring)."""
    ring = boundary_loop(body)
    ring_pos = body.positions[ring].astype(np.float64)
    frame = _ring_frame(ring_pos)
    ring_angles = _angles(ring_pos, frame)
    base = head_mesh.neck_base_ids
    base_angles = _angles(head.positions[base].astype(np.float64), frame)
    left, right, t = _at_angles(ring_angles, base_angles)
    target = (1 - t)[:, None] * ring_pos[left] + t[:, None] * ring_pos[right]
    positions = _moved_head(head, head_mesh, target, frame, base_angles)
    normals = vertex_normals(head_mesh, positions)
    joints, weights = head.joints.copy(), head.weights.copy()
    joints[base], weights[base] = _blend_weights(body.joints[ring], body.weights[ring], left, right, t)
    targets = None if head.targets is None else head.targets.copy()
    if targets is not None:
        targets[:, base] = 0.0  # the ring is the body's: no expression moves it
    head = replace(head, positions=positions.astype(np.float32), normals=normals, joints=joints,
                   weights=weights, targets=targets)
    base_colour = _head_colour(head, base)
    weld = _welded(body.positions)
    on_ring = np.isin(weld, weld[ring])
    body_normals = body.normals.copy()
    l2, r2, t2 = _at_angles(base_angles, _angles(body.positions[on_ring].astype(np.float64), frame))
    shared = (1 - t2)[:, None] * normals[base][l2] + t2[:, None] * normals[base][r2]
    body_normals[on_ring] = shared / np.linalg.norm(shared, axis=1, keepdims=True)
    l3, r3, t3 = _at_angles(base_angles, ring_angles)
    ring_colour = (1 - t3)[:, None] * base_colour[l3] + t3[:, None] * base_colour[r3]
    body = replace(body, normals=body_normals, color=_blend_body_colour(body, ring, ring_colour))
    copies = {"positions": target, "normals": normals[base], "joints": joints[base], "weights": weights[base],
              "color": np.c_[base_colour, np.ones(len(base))]}
    return _bridge(body, ring, ring_angles, copies, base_angles), head

"""Whole head mesh (pipeline.face.head_mesh) on the canonical face and on real tracked landmarks.

Geometric checks use plain numpy helpers below (ray casts, a triangle/triangle crossing test,
a z-buffer renderer), so no optional trimesh back end (rtree, embree) is needed. The test also
writes /tmp/head_preview.png (front, side, three-quarter and back views; real face; jaw open).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import trimesh

from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_layout import (
    EYE_LEFT,
    EYE_RIGHT,
    EYE_SOCKET,
    FACE,
    LEFT_EYE_RING,
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    MOUTH,
    MOUTH_RING,
    NECK,
    REGION_NAMES,
    RIGHT_EYE_RING,
    SCALP,
    UV_TILES,
)
from pipeline.face.head_mesh import build_head, extend_deltas, eye_vertex_ids, vertex_normals
from pipeline.face.head_template import head_template

PREVIEW = "/tmp/head_preview.png"


# ------------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------------

def ray_hits(origin, direction, verts, tris):
    """Distance along the ray to each triangle (Moller-Trumbore), inf where it misses."""
    v0, v1, v2 = (verts[tris[:, k]].astype(np.float64) for k in range(3))
    e1, e2 = v1 - v0, v2 - v0
    p = np.cross(direction, e2)
    det = (e1 * p).sum(1)
    ok = np.abs(det) > 1e-18
    inv = np.where(ok, 1 / np.where(ok, det, 1), 0)
    s = origin - v0
    u = (s * p).sum(1) * inv
    q = np.cross(s, e1)
    v = (q * direction).sum(1) * inv
    t = (e2 * q).sum(1) * inv
    return np.where(ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0), t, np.inf)


def self_intersections(verts, tris, weld, chunk=64, points=False):
    """(triangle, triangle) pairs where an edge of the first crosses the second, over triangles
    that share no vertex (after welding seam copies); touching at a vertex or along an edge does
    not count. With points=True also returns the crossing points."""
    verts = verts.astype(np.float64)
    wt = weld[tris]
    v0, v1, v2 = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    lo = np.minimum(np.minimum(v0, v1), v2)
    hi = np.maximum(np.maximum(v0, v1), v2)
    e1, e2 = v1 - v0, v2 - v0
    out = {}
    for s in range(0, len(tris), chunk):
        idx = np.arange(s, min(s + chunk, len(tris)))
        ii, jj = np.nonzero(((lo[None] <= hi[idx, None]) & (hi[None] >= lo[idx, None])).all(-1))
        keep = ~(wt[idx[ii]][:, :, None] == wt[jj][:, None, :]).any((1, 2))
        a_idx, jj = idx[ii[keep]], jj[keep]
        for k in range(3):
            a = verts[tris[a_idx, k]]
            d = verts[tris[a_idx, (k + 1) % 3]] - a
            p = np.cross(d, e2[jj])
            det = (e1[jj] * p).sum(1)
            ok = np.abs(det) > 1e-18
            inv = np.where(ok, 1 / np.where(ok, det, 1), 0)
            sv = a - v0[jj]
            u = (sv * p).sum(1) * inv
            q = np.cross(sv, e1[jj])
            v = (q * d).sum(1) * inv
            t = (e2[jj] * q).sum(1) * inv
            e = 1e-6
            hit = ok & (u > e) & (v > e) & (u + v < 1 - e) & (t > e) & (t < 1 - e)
            for ta, tb, x in zip(a_idx[hit], jj[hit], (a + t[:, None] * d)[hit]):
                out[(int(ta), int(tb))] = x
    pairs = sorted(out)
    if points:
        return pairs, np.array([out[k] for k in pairs]).reshape(-1, 3)
    return pairs


def skin_mesh(head, cap_neck=False):
    """trimesh of everything but the eyeballs, seam copies welded to their face vertex."""
    keep = ~np.isin(head.region[head.triangles], [EYE_LEFT, EYE_RIGHT]).any(1)
    tris = head.source_id[head.triangles[keep].astype(np.int64)]
    verts = head.positions_m.astype(np.float64)
    if cap_neck:
        base = head.neck_base_ids
        verts = np.vstack([verts, verts[base].mean(0)])
        cap = np.stack([base, np.roll(base, -1), np.full(len(base), len(verts) - 1)], 1)
        m = trimesh.Trimesh(verts, np.vstack([tris, cap]), process=False)
        if not m.is_winding_consistent:
            m = trimesh.Trimesh(verts, np.vstack([tris, cap[:, ::-1]]), process=False)
        return m
    return trimesh.Trimesh(verts, tris, process=False)


def boundary_vertex_sets(mesh):
    edges = mesh.edges_sorted
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    return uniq[counts == 1]


# ------------------------------------------------------------------------------------------------
# a plausible jawOpen morph (harmonic weights on the face graph, rotation about a hinge)
# ------------------------------------------------------------------------------------------------

def jaw_open_deltas(head, deg=18.0):
    face = head.positions_m[:468].astype(np.float64)
    t = head.triangles.astype(np.int64)
    t = t[(t < 468).all(1)]
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(468, 468)).tocsr()
    adj.data[:] = 1.0
    lap = (sp.diags(np.asarray(adj.sum(1)).ravel()) - adj).tocsr()
    val = np.full(468, np.nan)
    val[face[:, 1] > face[1, 1]] = 0.0                       # above the nose tip: still
    val[list(LIP_UPPER_INNER[1:-1])] = 0.0
    val[list(LIP_LOWER_INNER[1:-1])] = 1.0
    oval = np.unique(head.source_id[np.isin(head.region, [SCALP, NECK])])
    oval = oval[oval < 468]
    val[oval[face[oval, 1] < face[78, 1] - 0.02]] = 1.0      # jaw line below the mouth
    fx = ~np.isnan(val)
    w = val.copy()
    w[~fx] = spla.spsolve(lap[~fx][:, ~fx].tocsc(), -lap[~fx][:, fx] @ val[fx])
    w = np.clip(w, 0, 1)
    hinge = np.array([0.0, face[234, 1] - 0.005, face[234, 2] - 0.01])
    a = -np.radians(deg)
    rot = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])
    moved = (face - hinge) @ rot.T + hinge + np.array([0, 0, 0.012]) * deg / 18.0
    return ((moved - face) * w[:, None]).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# preview renderer (orthographic z-buffer, vertex colours, Lambert)
# ------------------------------------------------------------------------------------------------

def render(pos, tris, col, normals, view="front", size=360, extent=0.175, centre=(0, -0.025, -0.02)):
    p = pos.astype(np.float64) - np.asarray(centre)
    n = normals.astype(np.float64)
    yaw = {"front": 0, "side": 90, "threequarter": 35, "back": 180}[view]
    a = np.radians(yaw)
    rot = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    p, n = p @ rot.T, n @ rot.T
    px = (p[:, 0] / extent + 1) * size / 2
    py = (1 - p[:, 1] / extent) * size / 2
    light = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
    c = col[:, :3] * (0.25 + 0.75 * np.clip(n @ light, 0, 1))[:, None]
    img = np.full((size, size, 3), 0.85)
    zb = np.full((size, size), -np.inf)
    for t in tris.astype(np.int64):
        x, y = px[t], py[t]
        area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0])
        if area >= 0:   # back face (screen y points down)
            continue
        x0, x1 = int(max(x.min(), 0)), int(min(x.max() + 1, size))
        y0, y1 = int(max(y.min(), 0)), int(min(y.max() + 1, size))
        if x0 >= x1 or y0 >= y1:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
        w0 = ((x[1] - gx) * (y[2] - gy) - (x[2] - gx) * (y[1] - gy)) / area
        w1 = ((x[2] - gx) * (y[0] - gy) - (x[0] - gx) * (y[2] - gy)) / area
        w2 = 1 - w0 - w1
        m = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        z = w0 * p[t[0], 2] + w1 * p[t[1], 2] + w2 * p[t[2], 2]
        sub = zb[y0:y1, x0:x1]
        m &= z > sub
        sub[m] = z[m]
        img[y0:y1, x0:x1][m] = (w0[..., None] * c[t[0]] + w1[..., None] * c[t[1]]
                                + w2[..., None] * c[t[2]])[m]
    img = np.clip(img, 0, 1)
    return np.where(img <= 0.0031308, 12.92 * img, 1.055 * img ** (1 / 2.4) - 0.055)


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canonical():
    return load_canonical_face().vertices_m


@pytest.fixture(scope="module")
def head(canonical):
    return build_head(canonical)


def _procrustes_to_face_space(landmarks, width, height):
    """Tracked landmarks (normalised image coordinates) -> canonical face space, metres: image
    pixels (x right, y up, z towards the camera) aligned to the canonical face by a weighted
    similarity transform on MediaPipe's Procrustes landmarks (weak perspective)."""
    lm = landmarks.astype(np.float64)
    p = np.stack([lm[:, 0] * width, -lm[:, 1] * height, -lm[:, 2] * width], 1)
    cf = load_canonical_face()
    w = cf.procrustes_weights / cf.procrustes_weights.sum()
    x, y = p[cf.procrustes_ids], cf.vertices_m[cf.procrustes_ids]
    mx, my = w @ x, w @ y
    u, d, vt = np.linalg.svd(((x - mx) * w[:, None]).T @ (y - my))
    e = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = (u @ e @ vt).T
    s = (d * np.diag(e)).sum() / (w @ ((x - mx) ** 2).sum(1))
    return s * (p - mx) @ r.T + my


@pytest.fixture(scope="module")
def real_faces():
    """Every tracked frame of the "single_face" sample video, in canonical face space."""
    from capture.video import probe, read_frames
    from pipeline.core import samples
    from pipeline.tracking.tracker import FaceBodyTracker

    info = probe(samples.fetch("single_face"))
    faces = []
    with FaceBodyTracker(pose=False) as tracker:
        for _, t_s, frame in read_frames(info):
            r = tracker.track(frame, t_s)
            if r.face is not None:
                faces.append(_procrustes_to_face_space(r.face.landmarks, info.width, info.height))
    assert len(faces) > 30, "the sample video should show a face in most frames"
    faces = np.array(faces)
    assert faces.shape[1:] == (478, 3)
    # real faces, not the template: a few millimetres from the canonical face on average
    rms = np.sqrt(((faces[:, :468] - load_canonical_face().vertices_m) ** 2).sum(2).mean(1))
    assert (0.0005 < rms).all() and (rms < 0.02).all()
    return faces


@pytest.fixture(scope="module")
def real_face(real_faces):
    return real_faces[0]


@pytest.fixture(scope="module")
def real_head(real_face):
    return build_head(real_face, skin_rgb=(0.55, 0.36, 0.27))


# ------------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------------

def test_arrays_and_counts(head, canonical):
    v = head.positions_m.shape[0]
    assert head.positions_m.shape == (v, 3) and head.positions_m.dtype == np.float32
    assert head.normals.shape == (v, 3) and head.normals.dtype == np.float32
    assert head.uv.shape == (v, 2) and head.uv.dtype == np.float32
    assert head.color.shape == (v, 4) and head.color.dtype == np.float32
    assert head.region.shape == (v,) and head.region.dtype == np.uint8
    assert head.neck_weight.shape == (v,) and head.neck_weight.dtype == np.float32
    assert head.triangles.dtype == np.uint32 and head.triangles.max() < v
    assert head.eye_centres_m.shape == (2, 3)
    np.testing.assert_allclose(np.linalg.norm(head.normals, axis=1), 1, atol=1e-4)
    # the face landmarks are the first 468 vertices, unchanged
    np.testing.assert_array_equal(head.positions_m[:468], canonical.astype(np.float32))
    assert (head.region[:468] == FACE).all() and (head.region[468:] != FACE).all()
    assert set(np.unique(head.region)) == {FACE, SCALP, NECK, MOUTH, EYE_LEFT,
                                          EYE_RIGHT, EYE_SOCKET}
    assert 1500 < v < 5000 and len(head.triangles) < 10000
    assert ((head.color >= 0) & (head.color <= 1)).all() and (head.color[:, 3] == 1).all()
    print(f"\nhead: {v} vertices, {len(head.triangles)} triangles; per region "
          + ", ".join(f"{REGION_NAMES[r]} {np.sum(head.region == r)}" for r in REGION_NAMES))


def _check_closed_and_outward(head):
    skin = skin_mesh(head)
    assert skin.is_winding_consistent
    # the only open boundary is the neck base ring: eyes are sealed by the sockets, the mouth by
    # the mouth bag, and the scalp meets the face oval edge for edge
    boundary = boundary_vertex_sets(skin)
    assert set(boundary.ravel().tolist()) == set(head.neck_base_ids.tolist())
    assert len(boundary) == len(head.neck_base_ids)
    capped = skin_mesh(head, cap_neck=True)
    assert capped.is_watertight and capped.is_winding_consistent
    assert capped.volume > 0.003                       # outward normals; a head is ~4-5 litres
    # eyeballs: closed, outward, spheres of the stated radius
    for reg, c in ((EYE_LEFT, head.eye_centres_m[0]), (EYE_RIGHT, head.eye_centres_m[1])):
        t = head.triangles[(head.region[head.triangles] == reg).all(1)].astype(np.int64)
        ball = trimesh.Trimesh(head.positions_m.astype(np.float64), t, process=False)
        ball.remove_unreferenced_vertices()
        assert ball.is_watertight and ball.is_winding_consistent
        assert ball.volume == pytest.approx(4 / 3 * np.pi * head.eye_radius_m ** 3, rel=0.05)
        np.testing.assert_allclose(np.linalg.norm(ball.vertices - c, axis=1), head.eye_radius_m,
                                   rtol=1e-4)
    # no degenerate triangles; no needles among the added ones (the face's own triangles are
    # MediaPipe's, and thin around the lids and lips). The eye sockets' flange from the eyelid
    # to the sphere around the eyeball can hold slim triangles where the lid corners reach out
    # beyond the eyeball; they are hidden behind the lids.
    allm = trimesh.Trimesh(head.positions_m.astype(np.float64), head.triangles.astype(np.int64),
                           process=False)
    assert allm.area_faces.min() > 1e-9
    added = (head.triangles >= 468).any(1)
    socket = (head.region[head.triangles] == EYE_SOCKET).any(1)
    angles = np.degrees(allm.face_angles.min(1))
    assert angles[added & ~socket].min() > 5.0
    assert angles[socket].min() > 1.0
    # no triangle crosses another (scalp, neck, face, sockets, mouth bag and eyeballs); with a
    # noisy input the face triangles themselves may cross each other: only the added parts count
    pairs = self_intersections(head.positions_m, head.triangles.astype(np.int64), head.source_id)
    assert [(a, b) for a, b in pairs if added[a] or added[b]] == []


def test_closed_consistent_outward(head):
    _check_closed_and_outward(head)


def test_outward_normals(head):
    t = head.triangles.astype(np.int64)
    p = head.positions_m.astype(np.float64)
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    face_tris = (t < 468).all(1)
    assert fn[face_tris].sum(0)[2] > 0.5 * np.linalg.norm(fn[face_tris], axis=1).sum()
    # scalp and neck normals point away from the head's axis
    c = np.array([0.0, 0.0, -0.035])
    for reg in (SCALP, NECK):
        ids = head.region_ids(reg)
        radial = p[ids] - c
        radial[:, 1] = np.where(head.neck_weight[ids] > 0, 0, radial[:, 1])
        assert ((head.normals[ids] * radial).sum(1) > 0).mean() > 0.97
    assert head.normals[1, 2] > 0.8          # nose tip faces forward
    assert head.normals[10, 1] > 0.2         # forehead top tilts up


def test_seam_normals_are_welded(head):
    copies = np.flatnonzero((head.source_id != np.arange(len(head.source_id)))
                            & np.isin(head.region, [SCALP, NECK]))
    assert len(copies) == 36
    np.testing.assert_array_equal(head.positions_m[copies], head.positions_m[head.source_id[copies]])
    np.testing.assert_allclose(head.normals[copies], head.normals[head.source_id[copies]], atol=1e-6)


def test_eyes(head):
    # subject's left (+X) first
    assert head.eye_centres_m[0, 0] > 0 > head.eye_centres_m[1, 0]
    assert 0.010 < head.eye_radius_m < 0.014
    p = head.positions_m.astype(np.float64)
    t = head.triangles.astype(np.int64)
    tri_region = np.where(np.isin(head.region[t], [EYE_LEFT, EYE_RIGHT]).all(1),
                          head.region[t[:, 0]], head.region[t].min(1))
    for side, reg in (("left", EYE_LEFT), ("right", EYE_RIGHT)):
        ids = eye_vertex_ids(head, side)
        assert (head.region[ids] == reg).all() and len(ids) > 100
        c = head.eye_centres_m[0 if side == "left" else 1].astype(np.float64)
        # looking at the eye from the front, the eyeball is hit first (the lids are open) ...
        for dx, dy in ((0, 0), (0.003, 0), (-0.003, 0), (0, 0.001)):
            hits = ray_hits(c + [dx, dy, 0.1], np.array([0, 0, -1.0]), p, t)
            assert tri_region[np.argmin(hits)] == reg
        # ... and the pupil faces +Z: dark at the front pole, white sclera around it
        front = ids[np.argmax(p[ids, 2])]
        assert head.color[front, :3].max() < 0.05
        side_v = ids[np.argmax(p[ids, 0] * (1 if side == "left" else -1))]
        assert head.color[side_v, :3].min() > 0.6
        # no skin within the eyeball's reach, so it can turn freely
        skin = np.flatnonzero(~np.isin(head.region, [EYE_LEFT, EYE_RIGHT]))
        assert np.linalg.norm(p[skin] - c, axis=1).min() > head.eye_radius_m
        # the eyeball sits in its socket, just behind the lids: its front is within 4 mm of the
        # eyelid contour's frontmost points
        ring = list(LEFT_EYE_RING if side == "left" else RIGHT_EYE_RING)
        assert abs(p[ids, 2].max() - p[ring, 2].max()) < 0.004


def test_eye_can_turn(head):
    """Eyeballs rotated 25 degrees about their centres still cross no other triangle."""
    p = head.positions_m.astype(np.float64).copy()
    for e, reg in ((0, EYE_LEFT), (1, EYE_RIGHT)):
        ids = head.region_ids(reg)
        c = head.eye_centres_m[e].astype(np.float64)
        a = np.radians(25)
        rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        rot = rot @ np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        p[ids] = (p[ids] - c) @ rot.T + c
    assert self_intersections(p, head.triangles.astype(np.int64), head.source_id) == []


def test_mouth_cavity(head):
    p = head.positions_m.astype(np.float64)
    t = head.triangles.astype(np.int64)
    bag = head.region_ids(MOUTH)
    ring = np.array(MOUTH_RING)
    # lip ring copies first, at the lip positions; the cavity is dark and behind the lips
    np.testing.assert_array_equal(head.source_id[bag[:20]], ring)
    np.testing.assert_array_equal(p[bag[:20]], p[ring])
    deep = bag[20:]
    assert (p[deep, 2] < p[ring, 2].max()).all()
    assert p[deep, 2].min() < p[ring, 2].min() - 0.02          # a real pocket, >2 cm deep
    assert head.color[bag, :3].max() < 0.35 and (head.color[bag, 0] >= head.color[bag, 1]).all()
    # a ray into the (slightly open) canonical mouth hits the mouth bag, not the back of the head
    mc = p[ring].mean(0)
    hits = ray_hits(mc + [0, 0, 0.1], np.array([0, 0, -1.0]), p, t)
    first = t[np.argmin(hits)]
    assert (head.region[first] == MOUTH).all()


def test_extend_deltas(head):
    d = jaw_open_deltas(head)
    assert np.abs(d).max() > 0.01                   # the chin moves a couple of centimetres
    out = extend_deltas(head, np.stack([d, 0.5 * d]))
    assert out.shape == (2, head.n_vertices, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1], 0.5 * out[0], atol=1e-7)   # linear
    D = out[0]
    np.testing.assert_array_equal(D[:468], d)
    np.testing.assert_array_equal(extend_deltas(head, d), D)  # (468, 3) accepted too
    # every seam copy moves exactly like its face vertex: the seams cannot tear
    copies = np.flatnonzero(head.source_id != np.arange(head.n_vertices))
    np.testing.assert_allclose(D[copies], D[head.source_id[copies]], atol=1e-7)
    # eyeballs stay (they move with their joints); the back of the head and the neck base stay
    eyes = np.isin(head.region, [EYE_LEFT, EYE_RIGHT])
    assert not D[eyes].any()
    p = head.positions_m
    back = p[:, 2] < p[:468, 2].min() - 0.06
    assert back.sum() > 100 and not D[back].any()
    assert not D[head.neck_base_ids].any()
    # the scalp/neck next to the chin follows it, fading with distance: continuous across the
    # seam (every skin edge stretches by less than its length, so nothing folds)
    t = head.triangles.astype(np.int64)
    skin_t = t[~np.isin(head.region[t], [EYE_LEFT, EYE_RIGHT]).any(1)]
    e = np.concatenate([skin_t[:, [0, 1]], skin_t[:, [1, 2]], skin_t[:, [2, 0]]])
    shell_e = e[np.isin(head.region[e], [SCALP, NECK]).any(1)]
    ratio = (np.linalg.norm(D[shell_e[:, 0]] - D[shell_e[:, 1]], axis=1)
             / np.linalg.norm(p[shell_e[:, 0]] - p[shell_e[:, 1]], axis=1))
    assert ratio.max() < 1.0
    under_chin = head.region_ids(NECK)
    near = under_chin[np.linalg.norm(p[under_chin] - p[152], axis=1) < 0.02]
    assert len(near) and (np.linalg.norm(D[near], axis=1) > 0.3 * np.linalg.norm(d[152])).all()
    # the mouth bag follows the lower lip, less with depth
    bag = head.region_ids(MOUTH)
    lower = bag[np.isin(head.source_id[bag], LIP_LOWER_INNER[1:-1])]
    assert np.allclose(D[lower], d[head.source_id[lower]])
    mags = np.linalg.norm(D[bag[20:]], axis=1).reshape(-1)
    assert mags.max() < np.linalg.norm(d[list(LIP_LOWER_INNER)], axis=1).max()
    # the deformed head is still free of self-intersections (dark mouth, no torn seam)
    assert self_intersections(p + D, t, head.source_id) == []
    with pytest.raises(ValueError):
        extend_deltas(head, np.zeros((2, 467, 3)))


def test_neck_weight_and_rings(head):
    w = head.neck_weight
    assert ((w >= 0) & (w <= 1)).all()
    assert (w[head.neck_base_ids] == 1).all()
    assert (w[head.neck_top_ids] == 0).all()
    assert (w[head.region != NECK] == 0).all()
    p = head.positions_m
    # the base ring is the lowest part, about 8 cm below the chin, around the neck
    assert p[head.neck_base_ids, 1].max() < p[152, 1] - 0.06
    assert p[head.neck_base_ids, 1].max() <= p[:, 1].min() + 0.01
    # weights grow going down the neck
    neck = np.flatnonzero(w > 0)
    order = np.argsort(p[neck, 1])
    assert np.corrcoef(p[neck, 1], w[neck])[0, 1] < -0.9 and len(order) > 50


def test_uv_layout(head):
    cf = load_canonical_face()
    uv = head.uv.astype(np.float64)
    np.testing.assert_allclose(uv[:468], cf.uv, atol=1e-6)
    assert ((uv >= 0) & (uv <= 1)).all()
    from matplotlib.path import Path
    oval = Path(cf.uv[[int(i) for i in head_template().face_loop]])
    other = np.arange(468, head.n_vertices)
    assert not oval.contains_points(uv[other]).any()
    tiles = UV_TILES
    names = {MOUTH: ["mouth"], EYE_LEFT: ["eye_left"], EYE_RIGHT: ["eye_right"],
             EYE_SOCKET: ["socket_left", "socket_right"], SCALP: ["scalp_neck"],
             NECK: ["scalp_neck"]}
    for reg, tnames in names.items():
        ids = head.region_ids(reg)
        inside = np.zeros(len(ids), bool)
        for n in tnames:
            u0, v0, u1, v1 = tiles[n]
            inside |= ((uv[ids, 0] >= u0) & (uv[ids, 0] <= u1) & (uv[ids, 1] >= v0) & (uv[ids, 1] <= v1))
        assert inside.all(), REGION_NAMES[reg]
    # tiles do not overlap each other
    boxes = list(tiles.values())
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    # the scalp chart does not fold: its triangles keep one orientation in UV
    t = head.triangles.astype(np.int64)
    st = t[np.isin(head.region[t], [SCALP, NECK]).all(1)]
    a = uv[st]
    signed = ((a[:, 1, 0] - a[:, 0, 0]) * (a[:, 2, 1] - a[:, 0, 1])
              - (a[:, 2, 0] - a[:, 0, 0]) * (a[:, 1, 1] - a[:, 0, 1]))
    assert (signed > 0).all() or (signed < 0).all()


def test_vertex_normals_helper(head):
    np.testing.assert_allclose(vertex_normals(head), head.normals, atol=1e-4)
    moved = head.positions_m + extend_deltas(head, jaw_open_deltas(head))
    n = vertex_normals(head, moved)
    assert n.shape == head.normals.shape and np.isfinite(n).all()


def test_varied_faces(canonical):
    """Other face shapes: scaled, stretched and smoothly bent (a few millimetres over several
    centimetres, like real faces differ), with a little per-landmark noise."""
    rng = np.random.default_rng(0)
    for scale, bend, noise in ((0.9, 0.002, 0.0002), (1.12, 0.002, 0.0002), (1.0, 0.003, 0.0)):
        f = canonical * np.array([scale, scale * 1.03, scale])
        for _ in range(3):
            k = rng.normal(size=3)
            k *= 2 * np.pi / rng.uniform(0.06, 0.12) / np.linalg.norm(k)
            f = f + bend * np.sin(f @ k + rng.uniform(0, 2 * np.pi))[:, None] * rng.normal(size=3)
        f = f + rng.normal(0, noise, f.shape)
        h = build_head(f)
        np.testing.assert_array_equal(h.positions_m[:468], f.astype(np.float32))
        assert h.eye_radius_m == pytest.approx(0.012 * scale, rel=0.08)
        _check_closed_and_outward(h)


def test_real_landmarks(real_face, real_head):
    h = real_head
    np.testing.assert_array_equal(h.positions_m[:468], real_face[:468].astype(np.float32))
    _check_closed_and_outward(h)
    # eyes placed behind the tracked irises (468 = subject's right, 473 = left in MediaPipe)
    for e, iris in ((0, 473), (1, 468)):
        assert np.linalg.norm(h.eye_centres_m[e, :2] - real_face[iris, :2]) < 0.002
        assert h.eye_centres_m[e, 2] < real_face[iris, 2]
    d = jaw_open_deltas(h)
    moved = h.positions_m + extend_deltas(h, d)
    assert self_intersections(moved, h.triangles.astype(np.int64), h.source_id) == []


def contact_contours(face, tol=3e-4):
    """Points densely along the input's own contours that touch or cross somewhere: the inner
    lip loop if the lips are closer than tol (vertically) anywhere between the corners, an
    eyelid loop if its lids are."""
    loops = []
    up, lo = np.array(LIP_UPPER_INNER[1:-1]), np.array(LIP_LOWER_INNER[1:-1])
    if (face[up, 1] - face[lo, 1] < tol).any():
        loops.append(MOUTH_RING)
    for ring in (LEFT_EYE_RING, RIGHT_EYE_RING):
        r = np.array(ring)
        if (face[r[15:8:-1], 1] - face[r[1:8], 1] < tol).any():   # upper lid k <-> lower 16 - k
            loops.append(ring)
    t = np.linspace(0, 1, 25)[:, None]
    pts = [face[list(lp)][j] + (face[list(lp)][(j + 1) % len(lp)] - face[list(lp)][j]) * t
           for lp in loops for j in range(len(lp))]
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def test_every_real_frame(real_faces):
    """Heads from many real frames (talking, blinking): closed, consistent, outward, and no
    crossings, except where the input's own lips or eyelids touch or cross: there the first band
    of the mouth bag or eye socket hanging from one contour may graze the other, within a
    millimetre of the contour, inside the closed mouth or eye."""
    for face in real_faces[::3]:
        h = build_head(face)
        np.testing.assert_array_equal(h.positions_m[:468], face[:468].astype(np.float32))
        skin = skin_mesh(h)
        assert skin.is_winding_consistent
        assert set(boundary_vertex_sets(skin).ravel().tolist()) == set(h.neck_base_ids.tolist())
        assert skin_mesh(h, cap_neck=True).volume > 0.003
        pairs, pts = self_intersections(h.positions_m, h.triangles.astype(np.int64), h.source_id,
                                        points=True)
        if len(pairs):
            contours = contact_contours(face)
            assert len(contours)
            d = np.linalg.norm(pts[:, None] - contours[None], axis=2).min(1)
            assert (d < 0.001).all()
            regions = {int(r) for a, b in pairs for r in h.region[h.triangles[[a, b]]].ravel()}
            assert regions <= {FACE, MOUTH, EYE_SOCKET}


def test_bad_input():
    with pytest.raises(ValueError):
        build_head(np.zeros((100, 3)))
    bad = load_canonical_face().vertices_m.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError):
        build_head(bad)
    with pytest.raises(ValueError):
        eye_vertex_ids(build_head(load_canonical_face().vertices_m), "middle")


def test_preview_png(head, real_head):
    views = [render(head.positions_m, head.triangles, head.color, head.normals, v)
             for v in ("front", "side", "threequarter", "back")]
    d = extend_deltas(real_head, jaw_open_deltas(real_head))
    moved = real_head.positions_m + d
    n = vertex_normals(real_head, moved)
    views2 = [render(real_head.positions_m, real_head.triangles, real_head.color, real_head.normals, v)
              for v in ("front", "side")]
    views2 += [render(moved, real_head.triangles, real_head.color, n, v) for v in ("front", "threequarter")]
    img = np.concatenate([np.concatenate(views, 1), np.concatenate(views2, 1)], 0)
    assert cv2.imwrite(PREVIEW, (img[..., ::-1] * 255).round().astype(np.uint8))
    # the head fills a sensible part of each view
    bg = np.abs(img - render(head.positions_m[:0], head.triangles[:0], head.color[:0],
                             head.normals[:0])[0, 0]).sum(-1) > 0.02
    for k in range(4):
        cover = bg[:360, k * 360:(k + 1) * 360].mean()
        assert 0.2 < cover < 0.8
    print(f"\npreview written to {PREVIEW}")

"""The canonical face's UV layout rasterised, and how well one view sees each texel.

The face part of the head keeps MediaPipe's canonical UVs (an oval filling most of the unit
square, v = 0 at the top, the face seen from the front: the subject's right eye on the left of
the texture). `uv_raster(S)` rasterises the 898 canonical UV triangles once into an (S, S) map of
triangle index and barycentric coordinates (texel centres).

Visibility of one view (`triangle_visibility`): inputs MediaPipe's (478, 3) normalised landmarks
(x, y in [0, 1] of the image width/height), its (4, 4) face matrix (canonical cm -> camera cm,
the camera looking down -Z) and the image size (w, h) in pixels; output (898,) in [0, 1]: the
triangle's normal against the direction to the camera, times the share of the triangle not
hidden behind nearer triangles (a small depth buffer in the image). `texel_visibility` spreads it
over the (S, S) texels without steps along triangle edges.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pipeline.face.canonical import load_canonical_face

TEXTURE_SIZE = 1024           # texels across the whole UV square (the face oval fills ~85 %)
N_MESH_LANDMARKS = 468        # landmarks that are canonical mesh vertices (the rest: irises)
EYE_OUTER_CORNERS = (33, 263)  # right and left outer eye corners: the face's scale in the image
RASTER_EDGE_TOLERANCE = 1e-4  # barycentric slack: texels on a shared edge belong to a triangle
# Occlusion test: the depth buffer is DEPTH_RES pixels across the face (plus a margin of
# DEPTH_MARGIN_PX), triangles drawn with 2 bits of sub-pixel precision; a sample point is seen when
# no nearer surface is more than DEPTH_TOLERANCE eye-corner distances in front of it.
DEPTH_RES = 192
DEPTH_MARGIN_PX = 2
DEPTH_SUBPIXEL_BITS = 2
DEPTH_TOLERANCE = 0.08
# Barycentric points of each triangle tested against the depth buffer: centre, near each corner,
# near each edge's middle.
VISIBILITY_SAMPLES = np.array([[1 / 3, 1 / 3, 1 / 3], [0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6],
                               [0.45, 0.45, 0.1], [0.1, 0.45, 0.45], [0.45, 0.1, 0.45]])
# A texel's visibility (interpolated from the vertices) is capped at this multiple of its own
# triangle's: a hidden triangle stays hidden.
OWN_TRIANGLE_CAP = 2.0


@dataclass(frozen=True)
class UVRaster:
    """The canonical UV triangles rasterised at texel centres of an (S, S) texture.

    tri:    (S, S) int32 triangle index, -1 outside the face.
    bary:   (S, S, 3) float32 barycentric coordinates in that triangle.
    inside: (S, S) bool, tri >= 0.
    ys, xs: texel coordinates of the inside texels (row-major order); tri_in, bary_in, vid_in:
            their triangle, barycentric coordinates and the triangle's 3 vertex ids.
    """

    size: int
    tri: np.ndarray
    bary: np.ndarray
    inside: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    tri_in: np.ndarray
    bary_in: np.ndarray
    vid_in: np.ndarray


@lru_cache(maxsize=4)
def uv_raster(size: int = TEXTURE_SIZE) -> UVRaster:
    """The canonical UV layout rasterised at (size, size) texels (read-only arrays, cached)."""
    cf = load_canonical_face()
    tris = cf.triangles.astype(np.int64)
    uv = cf.uv * size - 0.5                     # texel-centre pixel coordinates
    tri_map = np.full((size, size), -1, np.int32)
    bary = np.zeros((size, size, 3), np.float32)
    eps = RASTER_EDGE_TOLERANCE
    for t, (a, b, c) in enumerate(tris):
        p = uv[[a, b, c]]
        x0, y0 = np.floor(p.min(0)).astype(int)
        x1, y1 = np.ceil(p.max(0)).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, size - 1), min(y1, size - 1)
        if x1 < x0 or y1 < y0:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        d = p[1] - p[0], p[2] - p[0]
        den = d[0][0] * d[1][1] - d[0][1] * d[1][0]
        if abs(den) < 1e-12:
            continue
        qx, qy = gx - p[0][0], gy - p[0][1]
        l1 = (qx * d[1][1] - qy * d[1][0]) / den
        l2 = (d[0][0] * qy - d[0][1] * qx) / den
        l0 = 1 - l1 - l2
        m = (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
        if not m.any():
            continue
        tri_map[gy[m], gx[m]] = t
        bary[gy[m], gx[m]] = np.stack([l0[m], l1[m], l2[m]], 1)
    inside = tri_map >= 0
    ys, xs = np.nonzero(inside)
    for a in (tri_map, bary, inside):
        a.flags.writeable = False
    tri_in = tri_map[ys, xs]
    return UVRaster(size, tri_map, bary, inside, ys, xs, tri_in, np.clip(bary[ys, xs], 0, 1),
                    tris[tri_in].astype(np.int32))


def face_region(size: int = TEXTURE_SIZE) -> np.ndarray:
    """(S, S) bool: the texels the canonical face triangles cover."""
    return uv_raster(size).inside


@lru_cache(maxsize=1)
def triangle_areas_uv() -> np.ndarray:
    """(898,) area of each canonical triangle in UV space (share of the unit square)."""
    cf = load_canonical_face()
    p = cf.uv[cf.triangles]
    d1, d2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])


def landmark_pixels(landmarks: np.ndarray, image_size) -> np.ndarray:
    """(N, 2) float64 pixel coordinates (pixel centres at integers) of normalised landmarks in an
    image of size (w, h)."""
    w, h = image_size
    return np.stack([landmarks[:, 0] * w - 0.5, landmarks[:, 1] * h - 0.5], 1).astype(np.float64)


def _facing_camera(cam_cm: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(T,) max(0, n . v): each triangle's unit normal against the unit direction to the camera
    (camera cm; the face matrix may hold a scale, normals only need the direction)."""
    p = cam_cm[tris]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    cen = p.mean(1)
    to_cam = -cen / np.maximum(np.linalg.norm(cen, axis=1, keepdims=True), 1e-12)
    return np.clip((n * to_cam).sum(1), 0.0, 1.0)


def _unoccluded_share(px: np.ndarray, cam_cm: np.ndarray, tris: np.ndarray, facing: np.ndarray,
                      depth_res: int) -> np.ndarray:
    """(T,) share of each triangle's sample points in front of a painter's algorithm depth buffer
    of the triangles in the image (landmark pixels px (468, 2), camera distance)."""
    lo, hi = px.min(0), px.max(0)
    scale = depth_res / max(float((hi - lo).max()), 1e-6)
    q = (px - lo) * scale + DEPTH_MARGIN_PX
    size = int(np.ceil(q.max())) + DEPTH_MARGIN_PX + 1
    dist = np.linalg.norm(cam_cm, axis=1)
    buf = np.full((size, size), np.inf, np.float32)
    tri_d = dist[tris].mean(1)
    front = facing > 0
    for t in np.flatnonzero(front)[np.argsort(-tri_d[front])]:   # far to near
        cv2.fillConvexPoly(buf, np.round(q[tris[t]] * (1 << DEPTH_SUBPIXEL_BITS)).astype(np.int32),
                           float(tri_d[t]), cv2.LINE_8, shift=DEPTH_SUBPIXEL_BITS)
    sample_px = np.einsum("sk,tkd->tsd", VISIBILITY_SAMPLES, q[tris])          # (T, 7, 2)
    sample_d = np.einsum("sk,tk->ts", VISIBILITY_SAMPLES, dist[tris])
    ix = np.clip(np.round(sample_px).astype(int), 0, size - 1)
    seen_d = buf[ix[..., 1], ix[..., 0]]
    face_scale = float(np.linalg.norm(cam_cm[EYE_OUTER_CORNERS[0]] - cam_cm[EYE_OUTER_CORNERS[1]]))  # cm
    tol = DEPTH_TOLERANCE * face_scale
    return (sample_d <= seen_d + tol).mean(1)


def triangle_visibility(landmarks: np.ndarray, matrix: np.ndarray, image_size,
                        verts_m: np.ndarray | None = None, depth_res: int = DEPTH_RES) -> np.ndarray:
    """(898,) visibility in [0, 1] of each canonical triangle in one view: max(0, n . v) of the
    triangle normal of the mesh (verts_m, head space metres; default the canonical face) placed
    by the face matrix against the direction to the camera, times the share of points of the
    triangle that a depth buffer (drawn from the landmarks in the image) shows in front."""
    cf = load_canonical_face()
    tris = cf.triangles.astype(np.int64)
    v = (cf.vertices_m if verts_m is None else np.asarray(verts_m, np.float64)[:N_MESH_LANDMARKS]) * 100.0
    m = np.asarray(matrix, np.float64)
    cam = v @ m[:3, :3].T + m[:3, 3]            # camera cm, camera looks down -Z
    cos = _facing_camera(cam, tris)
    px = landmark_pixels(landmarks, image_size)[:N_MESH_LANDMARKS]
    return (cos * _unoccluded_share(px, cam, tris, cos, depth_res)).astype(np.float32)


def texel_visibility(tri_vis: np.ndarray, raster: UVRaster) -> np.ndarray:
    """Per-triangle visibility -> (S, S) per-texel visibility: averaged onto the vertices,
    interpolated with the barycentric coordinates (no steps at triangle edges) and capped by the
    texel's own triangle (a hidden triangle stays hidden)."""
    tris = load_canonical_face().triangles.astype(np.int64)
    acc = np.zeros(N_MESH_LANDMARKS)
    cnt = np.zeros(N_MESH_LANDMARKS)
    for k in range(3):
        np.add.at(acc, tris[:, k], tri_vis)
        np.add.at(cnt, tris[:, k], 1)
    vert = (acc / np.maximum(cnt, 1)).astype(np.float32)
    own = tri_vis.astype(np.float32)[raster.tri_in]
    b, vid = raster.bary_in, raster.vid_in
    interp = vert[vid[:, 0]] * b[:, 0] + vert[vid[:, 1]] * b[:, 1] + vert[vid[:, 2]] * b[:, 2]
    out = np.zeros((raster.size, raster.size), np.float32)
    out[raster.ys, raster.xs] = np.minimum(interp, np.minimum(1.0, OWN_TRIANGLE_CAP * own))
    return out

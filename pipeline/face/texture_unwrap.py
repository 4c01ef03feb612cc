"""Unwrap the face from video frames or photos into the head mesh's UV space.

The face part of the head keeps MediaPipe's canonical UVs (an oval filling most of the unit
square, v = 0 at the top, the face seen from the front: the subject's right eye on the left of
the texture). Every tracked frame gives 478 landmarks in the image, one per canonical vertex, so
each canonical triangle maps affinely from UV space into the image: the texture is a piecewise
affine warp of the frame (`warp_view`). `uv_raster(S)` rasterises the canonical UV triangles once
into an (S, S) map of triangle index and barycentric coordinates; a frame's warp is then one
`cv2.remap` through that frame's landmark positions.

Which texels a frame really sees (`triangle_visibility`): the triangle's normal (the subject's
mesh placed by the face matrix) against the direction to the camera, times the share of the
triangle not hidden behind nearer triangles (a small depth buffer in the image, e.g. the nose
hiding the far cheek of a turned head). Texels get the visibility interpolated over the mesh, so
views blend without steps along triangle edges.

Which frames are used (`select_frames`): no blink (eyeBlink* below 0.35), no strong expression
(jaw open, smile, pucker, ... below per-shape limits: the texture is the neutral face), no motion
blur (the variance of the Laplacian in the face box against the take's
median, and the landmarks' speed), spread over the take and over head poses.

Hands (`hand_masks`): MediaPipe's hand landmarker runs on the selected frames; the pixels of a
hand (the hull of its 21 landmarks, grown to the fingers' width) are masked out of that view, and
a frame whose face is mostly hidden by hands is dropped. Other views or the GAN fill in.

Occluders (`view_agreement`): a hand the detector missed (a hand cut by the frame's edge has no
palm to detect), a mug, hair across the forehead are not the face, yet MediaPipe still tracks
the face under them. Every view is compared, at 128 x 128, with the per-texel median of frames
spread over the whole take (any expression); texels that differ from it by more than AGREE_RGB
beyond what the views commonly differ (after exposure matching) lose their weight, so an
occluder present in fewer than half of the take drops out even if it stays through every
neutral frame.

Blending (`unwrap_views`): views are taken best first, each exposure-matched to the blend so far
(a gain per colour channel on the texels both see) and averaged with weights visibility**4 *
quality, which keeps the best
view of each texel dominant (sharp) while hiding seams. The result: an (S, S, 3) RGB texture, the
best visibility of each texel (0 = never seen) and the seen mask.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from pipeline.core.tracks import BLENDSHAPE_NAMES
from pipeline.face.canonical import load_canonical_face
from pipeline.tracking.mediapipe_tasks import detect_image

TEXTURE_SIZE = 1024           # texels across the whole UV square (the face oval fills ~85 %)
SEEN_THRESHOLD = 0.25         # best visibility below this counts as unseen (grazing, smeared)
BLEND_POWER = 4.0             # weights ** power: the best view of a texel dominates
AGREE_SIZE = 128              # resolution of the occluder test
AGREE_RGB = 28.0              # colour distance (0-255) to the views' median: weight e^-1 there
AGREE_MIN_VIEWS = 3           # a median of fewer views says nothing
BLINK_MAX = 0.35
MAX_SPEED_PER_S = 1.8         # landmark speed (eye-corner distances per second) of a still frame
# Expression limits for a frame to count as neutral: (blendshape, largest score).
EXPRESSION_LIMITS = (
    ("jawOpen", 0.30), ("mouthSmileLeft", 0.55), ("mouthSmileRight", 0.55),
    ("mouthPucker", 0.55), ("mouthFunnel", 0.45), ("mouthStretchLeft", 0.5),
    ("mouthStretchRight", 0.5), ("cheekPuff", 0.5), ("browInnerUp", 0.65),
    ("eyeWideLeft", 0.65), ("eyeWideRight", 0.65), ("mouthRollLower", 0.6),
    ("mouthRollUpper", 0.6), ("noseSneerLeft", 0.5), ("noseSneerRight", 0.5),
)
_BS = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}

# Landmarks whose UVs the tests and the docs check (canonical mesh indices).
KEY_LANDMARKS = {"right_eye_outer": 33, "right_eye_inner": 133, "left_eye_inner": 362,
                 "left_eye_outer": 263, "nose_tip": 1, "mouth_right": 61, "mouth_left": 291,
                 "upper_lip": 13, "lower_lip": 14, "chin": 152, "forehead": 10}


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
    cf = load_canonical_face()
    tris = cf.triangles.astype(np.int64)
    uv = cf.uv * size - 0.5                     # texel-centre pixel coordinates
    tri_map = np.full((size, size), -1, np.int32)
    bary = np.zeros((size, size, 3), np.float32)
    eps = 1e-4
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


@dataclass
class View:
    """One image of the face: BGR uint8 image, MediaPipe's (478, 3) normalised landmarks, its
    (4, 4) face matrix (canonical cm -> camera cm), optionally the 52 blendshape scores, and a
    quality weight in (0, 1] (sharpness, neutrality); mask: (H, W) uint8, 0 on pixels that are
    not the face (a hand over it), or None when all are usable."""

    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    blendshapes: np.ndarray | None = None
    weight: float = 1.0
    name: str = ""
    mask: np.ndarray | None = None


@dataclass
class Unwrap:
    """texture: (S, S, 3) uint8 RGB; visibility: (S, S) float32, the best visibility any view
    had of each texel (geometry, hands and occluders; not the views' quality), 0 = never seen; mask: (S, S) bool, seen well enough
    to keep (visibility >= SEEN_THRESHOLD); stats: what was used."""

    texture: np.ndarray
    visibility: np.ndarray
    mask: np.ndarray
    stats: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Geometry of one view
# ------------------------------------------------------------------------------------------------

def _pixels(landmarks: np.ndarray, image_size) -> np.ndarray:
    w, h = image_size
    return np.stack([landmarks[:, 0] * w - 0.5, landmarks[:, 1] * h - 0.5], 1).astype(np.float64)


def triangle_visibility(landmarks: np.ndarray, matrix: np.ndarray, image_size,
                        verts_m: np.ndarray | None = None, depth_res: int = 192) -> np.ndarray:
    """(898,) visibility in [0, 1] of each canonical triangle in one view: max(0, n . v) of the
    triangle normal of the mesh (verts_m, head space metres; default the canonical face) placed
    by the face matrix against the direction to the camera, times the share of points of the
    triangle that a depth buffer (drawn from the landmarks in the image) shows in front."""
    cf = load_canonical_face()
    tris = cf.triangles.astype(np.int64)
    v = (cf.vertices_m if verts_m is None else np.asarray(verts_m, np.float64)[:468]) * 100.0
    m = np.asarray(matrix, np.float64)
    cam = v @ m[:3, :3].T + m[:3, 3]            # camera cm, camera looks down -Z
    # the face matrix may hold a scale; normals only need the direction
    p = cam[tris]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    cen = p.mean(1)
    to_cam = -cen / np.maximum(np.linalg.norm(cen, axis=1, keepdims=True), 1e-12)
    cos = np.clip((n * to_cam).sum(1), 0.0, 1.0)

    # occlusion: painter's algorithm depth buffer of the triangles in the image (landmark pixels,
    # camera distance), then test points inside each triangle against it
    px = _pixels(landmarks, image_size)[:468]
    lo, hi = px.min(0), px.max(0)
    scale = depth_res / max(float((hi - lo).max()), 1e-6)
    q = (px - lo) * scale + 2
    size = int(np.ceil(q.max())) + 3
    dist = np.linalg.norm(cam, axis=1)
    buf = np.full((size, size), np.inf, np.float32)
    tri_d = dist[tris].mean(1)
    front = cos > 0
    for t in np.flatnonzero(front)[np.argsort(-tri_d[front])]:   # far to near
        cv2.fillConvexPoly(buf, np.round(q[tris[t]] * 4).astype(np.int32), float(tri_d[t]),
                           cv2.LINE_8, shift=2)
    b = np.array([[1 / 3, 1 / 3, 1 / 3], [0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6],
                  [0.45, 0.45, 0.1], [0.1, 0.45, 0.45], [0.45, 0.1, 0.45]])
    sp = np.einsum("sk,tkd->tsd", b, q[tris])                         # (T, 7, 2)
    sd = np.einsum("sk,tk->ts", b, dist[tris])
    ix = np.clip(np.round(sp).astype(int), 0, size - 1)
    seen_d = buf[ix[..., 1], ix[..., 0]]
    face_scale = float(np.linalg.norm(cam[33] - cam[263]))          # eye corner distance, cm
    tol = 0.08 * face_scale
    vis_share = (sd <= seen_d + tol).mean(1)
    return (cos * vis_share).astype(np.float32)


def texel_visibility(tri_vis: np.ndarray, raster: UVRaster) -> np.ndarray:
    """Per-triangle visibility -> (S, S) per-texel visibility: averaged onto the vertices,
    interpolated with the barycentric coordinates (no steps at triangle edges) and capped by the
    texel's own triangle (a hidden triangle stays hidden)."""
    tris = load_canonical_face().triangles.astype(np.int64)
    acc = np.zeros(468)
    cnt = np.zeros(468)
    for k in range(3):
        np.add.at(acc, tris[:, k], tri_vis)
        np.add.at(cnt, tris[:, k], 1)
    vert = (acc / np.maximum(cnt, 1)).astype(np.float32)
    own = tri_vis.astype(np.float32)[raster.tri_in]
    b, vid = raster.bary_in, raster.vid_in
    interp = vert[vid[:, 0]] * b[:, 0] + vert[vid[:, 1]] * b[:, 1] + vert[vid[:, 2]] * b[:, 2]
    out = np.zeros((raster.size, raster.size), np.float32)
    out[raster.ys, raster.xs] = np.minimum(interp, np.minimum(1.0, 2.0 * own))
    return out


def warp_maps(landmarks: np.ndarray, image_size, raster: UVRaster) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) float32 map_x, map_y: the image pixel each texel samples (piecewise affine through
    the landmarks); -1e4 outside the face."""
    px = _pixels(landmarks, image_size).astype(np.float32)
    b, vid = raster.bary_in, raster.vid_in
    mx = np.full((raster.size, raster.size), -1e4, np.float32)
    my = np.full((raster.size, raster.size), -1e4, np.float32)
    for k, out in ((0, mx), (1, my)):
        c = px[:, k]
        out[raster.ys, raster.xs] = c[vid[:, 0]] * b[:, 0] + c[vid[:, 1]] * b[:, 1] + c[vid[:, 2]] * b[:, 2]
    return mx, my


def warp_view(image: np.ndarray, landmarks: np.ndarray, raster: UVRaster,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The image warped into UV space: ((S, S, 3) float32 RGB in [0, 255], (S, S) bool inside the
    image and not masked out by `mask`, (H, W) uint8, 0 = unusable). Area-filtered first when the
    face is much larger in the image than in the texture."""
    h, w = image.shape[:2]
    mx, my = warp_maps(landmarks, (w, h), raster)
    src = image
    px = _pixels(landmarks, (w, h))[:468]
    face_px = float((px.max(0) - px.min(0)).max())
    shrink = face_px / (0.85 * raster.size)
    if shrink > 1.5:                        # pre-filter: avoid aliasing when minifying
        k = int(2 * round(shrink / 2) + 1)
        src = cv2.GaussianBlur(image, (k, k), shrink / 2.5)
    out = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ok = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)   # bilinear never reads the border
    if mask is not None:
        ok &= cv2.remap(mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32), ok


# ------------------------------------------------------------------------------------------------
# Frame quality and selection
# ------------------------------------------------------------------------------------------------

def expression_score(blendshapes: np.ndarray | None) -> float:
    """Largest score / limit over EXPRESSION_LIMITS and the blinks: <= 1 is neutral enough."""
    if blendshapes is None:            # a photo without scores: nothing to judge
        return 0.0
    if not np.isfinite(blendshapes).all():
        return float("inf")
    s = [blendshapes[_BS[n]] / lim for n, lim in EXPRESSION_LIMITS]
    s.append(max(blendshapes[_BS["eyeBlinkLeft"]], blendshapes[_BS["eyeBlinkRight"]]) / BLINK_MAX)
    return float(max(s))


def sharpness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the Laplacian in the face box, resampled to 160 px wide (comparable between
    frames of different face sizes)."""
    h, w = image.shape[:2]
    px = _pixels(landmarks, (w, h))[:468]
    x0, y0 = np.clip(px.min(0), 0, [w - 1, h - 1]).astype(int)
    x1, y1 = np.clip(px.max(0), 0, [w - 1, h - 1]).astype(int)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    crop = cv2.cvtColor(image[y0:y1 + 1, x0:x1 + 1], cv2.COLOR_BGR2GRAY)
    s = 160.0 / crop.shape[1]
    crop = cv2.resize(crop, (160, max(8, int(round(crop.shape[0] * s)))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(crop, cv2.CV_32F).var())


def head_yaw_pitch_deg(matrix: np.ndarray) -> tuple[float, float]:
    """Yaw (turn, + = towards the subject's left) and pitch (+ = up) of the face matrix."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    r = r / np.cbrt(max(abs(np.linalg.det(r)), 1e-12))
    z = r[:, 2]                              # the face's +Z (out of the face) in the camera frame
    return float(np.degrees(np.arctan2(z[0], z[2]))), float(np.degrees(np.arcsin(np.clip(z[1], -1, 1))))


def select_frames(tracks, max_frames: int = 40, min_frames: int = 3) -> tuple[np.ndarray, dict]:
    """Candidate frames of a take for the texture: tracked (not gap-filled), no blink or strong
    expression, landmarks not moving fast; spread over time and head poses. Returns frame
    indices (at most 2 * max_frames: sharpness is judged later on the images) and counts of
    what was rejected."""
    ok = tracks.face_valid & ~tracks.face_filled & np.isfinite(tracks.face_landmarks).all((1, 2))
    idx = np.flatnonzero(ok)
    stats = {"tracked_frames": int(len(idx))}
    if len(idx) == 0:
        return idx, stats
    expr = np.array([expression_score(tracks.blendshapes[i]) for i in idx])
    scale = np.array(tracks.image_size, np.float32)
    t = np.asarray(tracks.t_s, np.float64)
    speed = np.zeros(len(idx))
    for k, i in enumerate(idx):        # landmark speed, eye-corner distances per second
        px = tracks.face_landmarks[i, :468, :2] * scale
        face_w = max(float(np.linalg.norm(px[33] - px[263])), 1e-6)
        d = [np.median(np.linalg.norm(tracks.face_landmarks[j, :468, :2] * scale - px, axis=1))
             / max(abs(t[j] - t[i]), 1e-3)
             for j in (i - 1, i + 1) if 0 <= j < tracks.n_frames and ok[j]]
        speed[k] = np.mean(d) / face_w if d else 0.0
    neutral = expr <= 1.0
    still = speed <= MAX_SPEED_PER_S
    stats.update(rejected_expression_or_blink=int((~neutral).sum()),
                 rejected_motion=int((neutral & ~still).sum()))
    keep = neutral & still
    if keep.sum() < min_frames:        # relax: the most neutral, stillest frames of the take
        order = np.argsort(expr + 10 * speed / MAX_SPEED_PER_S * 0.06)
        keep = np.zeros(len(idx), bool)
        keep[order[:max(min_frames, 1)]] = True
        stats["relaxed"] = True
    cand = idx[keep]
    q = (1 - 0.5 * np.clip(expr[keep], 0, 1)) / (1 + 20 * 0.06 * speed[keep] / MAX_SPEED_PER_S)
    # spread over time: best frame of each of n_seg segments; plus the best of each pose bin
    n_seg = min(len(cand), 2 * max_frames)
    chosen = set()
    for seg in np.array_split(np.arange(len(cand)), n_seg):
        if len(seg):
            chosen.add(int(seg[np.argmax(q[seg])]))
    yp = np.array([head_yaw_pitch_deg(tracks.face_matrix[i]) for i in cand])
    bins = {}
    for k in range(len(cand)):
        key = (int(np.floor(yp[k, 0] / 10)), int(np.floor(yp[k, 1] / 10)))
        if key not in bins or q[k] > q[bins[key]]:
            bins[key] = k
    chosen |= set(bins.values())
    sel = np.array(sorted(chosen), int)
    if len(sel) > 2 * max_frames:
        sel = sel[np.argsort(-q[sel])[:2 * max_frames]]
    return np.sort(cand[sel]), stats


def _pick_views(views: list[View], max_views: int) -> list[View]:
    """Among quality-weighted views, keep at most max_views, round-robin over head-pose bins so
    turned views (which see the sides of the face) are not crowded out by frontal ones."""
    if len(views) <= max_views:
        return views
    bins: dict = {}
    for v in views:
        yaw, pitch = head_yaw_pitch_deg(v.matrix)
        bins.setdefault((int(np.floor(yaw / 10)), int(np.floor(pitch / 15))), []).append(v)
    for b in bins.values():
        b.sort(key=lambda v: -v.weight)
    out = []
    while len(out) < max_views:
        for b in sorted(bins.values(), key=lambda b: -b[0].weight if b else 0):
            if b and len(out) < max_views:
                out.append(b.pop(0))
        if not any(bins.values()):
            break
    return out


# ------------------------------------------------------------------------------------------------
# Blending
# ------------------------------------------------------------------------------------------------

def view_agreement(views: list[View], tri_vis: list[np.ndarray], reference: list[View] | None = None,
                   verts_m: np.ndarray | None = None, size: int = AGREE_SIZE) -> np.ndarray:
    """(n_views, size, size) float32 in [0, 1]: how well each view's texels agree with the face's
    usual colour there (see the module docstring); 1 where fewer than AGREE_MIN_VIEWS views see a
    texel.

    The usual colour is the per-texel median of `reference` (frames spread over the whole take,
    whatever their expression: an occluder that stays through the neutral frames is still a
    minority of the take) or, without it, of the views themselves. A view's distance to it is
    counted above the lower quartile of all views' distances there, so texels that every view
    shows differently from the take (the lips of a take that mostly smiles) are not lost."""
    raster = uv_raster(size)
    pool = list(reference or [])
    if len(pool) < AGREE_MIN_VIEWS:
        pool = []
    everything = list(views) + pool
    n = len(everything)
    rgb = np.zeros((n, size, size, 3), np.float32)
    seen = np.zeros((n, size, size), bool)
    tvs = list(tri_vis) + [None] * len(pool)
    for k, (v, tv) in enumerate(zip(everything, tvs)):
        h, w = v.image.shape[:2]
        if tv is None:
            tv = triangle_visibility(v.landmarks, v.matrix, (w, h), verts_m)
        rgb[k], ok = warp_view(v.image, v.landmarks, raster, v.mask)
        seen[k] = (texel_visibility(tv, raster) >= 0.5) & ok
    ref = slice(len(views), n) if pool else slice(0, len(views))
    enough = seen[ref].sum(0) >= AGREE_MIN_VIEWS
    stack = np.where(seen[..., None], rgb, np.nan)
    for _ in range(2):                       # median, exposure match to it, median again
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN texels: nobody sees them
            med = np.nanmedian(stack[ref], 0)
        for k in range(n):
            both = seen[k] & enough
            if both.sum() > 50:
                g = np.clip(np.median(med[both], 0) / np.maximum(np.median(stack[k][both], 0), 1), 0.6, 1.6)
                stack[k] *= g.astype(np.float32)
    d = np.linalg.norm(stack[:len(views)] - med[None], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(d, 0.25, axis=0)
    excess = np.maximum(np.nan_to_num(d - np.nan_to_num(q)[None], nan=0.0), 0.0)
    agree = np.exp(-(excess / AGREE_RGB) ** 2).astype(np.float32)
    agree[:, ~enough] = 1.0
    # an occluder's outline is fuzzy: take the worse of a texel and its neighbours
    return np.stack([cv2.erode(cv2.GaussianBlur(a, (3, 3), 0), np.ones((3, 3), np.uint8)) for a in agree])


def unwrap_views(views: list[View], size: int = TEXTURE_SIZE, verts_m: np.ndarray | None = None,
                 power: float = BLEND_POWER, gain_match: bool = True, reject_occluders: bool = True,
                 reference: list[View] | None = None) -> Unwrap:
    """Blend several views of one face into one UV texture (see the module docstring).
    reference: frames of the whole take for the occluder test (`view_agreement`)."""
    raster = uv_raster(size)
    if not views:
        z = np.zeros((size, size), np.float32)
        return Unwrap(np.zeros((size, size, 3), np.uint8), z, z > 0, {"views": 0})
    area = _triangle_areas_uv()
    prepared = []
    for v in views:
        h, w = v.image.shape[:2]
        tv = triangle_visibility(v.landmarks, v.matrix, (w, h), verts_m)
        prepared.append((float((tv * area).sum()) * v.weight, tv, v))
    prepared.sort(key=lambda p: -p[0])          # the view seeing most of the face first
    agree = None
    if reject_occluders and len(prepared) >= AGREE_MIN_VIEWS:
        agree = view_agreement([p[2] for p in prepared], [p[1] for p in prepared], reference, verts_m)
    num = np.zeros((size, size, 3), np.float32)
    den = np.zeros((size, size), np.float32)
    best = np.zeros((size, size), np.float32)
    gains = []
    for k, (_, tv, v) in enumerate(prepared):
        rgb, ok = warp_view(v.image, v.landmarks, raster, v.mask)
        # what the view really shows of each texel; its quality weighs the blend, not the mask
        vis = texel_visibility(tv, raster) * ok
        if agree is not None:
            vis = vis * cv2.resize(agree[k], (size, size), interpolation=cv2.INTER_LINEAR)
        if gain_match and k > 0:
            ref = den > 1e-6
            both = ref & (vis > 0.5 * max(float(vis.max()), 1e-6))
            g = np.ones(3)
            if both.sum() > 200:
                cur = num[both] / den[both, None]
                mine = rgb[both]
                g = np.clip(np.median(cur, 0) / np.maximum(np.median(mine, 0), 1.0), 0.6, 1.6)
                rgb = rgb * g.astype(np.float32)
            gains.append([round(float(x), 3) for x in g])
        wk = vis.astype(np.float32) ** power * float(v.weight)
        num += wk[..., None] * rgb
        den += wk
        best = np.maximum(best, vis)
    tex = np.where(den[..., None] > 1e-12, num / np.maximum(den, 1e-12)[..., None], 0.0)
    del num
    tex = np.clip(np.round(tex), 0, 255).astype(np.uint8)
    mask = best >= SEEN_THRESHOLD
    tex[~mask] = 0
    stats = {"views": len(prepared), "size": size,
             "seen_fraction_of_face": round(float(mask[raster.inside].mean()), 4),
             "gains": gains}
    if agree is not None:
        stats["occluded_share"] = round(float((agree < 0.5).mean(axis=(1, 2)).mean() / max(
            float(uv_raster(AGREE_SIZE).inside.mean()), 1e-6)), 4)
    return Unwrap(tex, best, mask, stats)


@lru_cache(maxsize=1)
def _triangle_areas_uv() -> np.ndarray:
    cf = load_canonical_face()
    p = cf.uv[cf.triangles]
    d1, d2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])


# ------------------------------------------------------------------------------------------------
# Entry points: a take (tracks + frames) or photos
# ------------------------------------------------------------------------------------------------

CROP_MARGIN = 0.15            # of the face box, kept around it when a view is cropped


def crop_view(v: View, margin: float = CROP_MARGIN) -> View:
    """The view cut down to its face box (grown by `margin`), landmarks re-normalised to the
    crop: what unwrapping needs, without holding whole frames (a 4K take's 80 candidates)."""
    h, w = v.image.shape[:2]
    px = _pixels(v.landmarks, (w, h))[:468]
    lo, hi = px.min(0), px.max(0)
    pad = margin * float((hi - lo).max()) + 2
    x0, y0 = (int(max(np.floor(lo[0] - pad), 0)), int(max(np.floor(lo[1] - pad), 0)))
    x1, y1 = (int(min(np.ceil(hi[0] + pad), w)), int(min(np.ceil(hi[1] + pad), h)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return v
    cw, ch = x1 - x0, y1 - y0
    lm = np.asarray(v.landmarks, np.float32).copy()
    lm[:, 0] = (lm[:, 0] * w - x0) / cw
    lm[:, 1] = (lm[:, 1] * h - y0) / ch
    lm[:, 2] = lm[:, 2] * w / cw                 # MediaPipe's z is in units of the image width
    return View(np.ascontiguousarray(v.image[y0:y1, x0:x1]), lm, v.matrix, v.blendshapes, v.weight,
                v.name, None if v.mask is None else np.ascontiguousarray(v.mask[y0:y1, x0:x1]))


def views_from_take(tracks, frame_at, max_views: int = 40, log=None) -> tuple[list[View], dict]:
    """Read the selected frames of a take (hands masked, cropped to the face) and weight them
    by quality: frames blurrier than 0.6 x the median sharpness of the candidates are dropped."""
    idx, stats = select_frames(tracks, max_views)
    views, sharp, covered = [], [], []
    for i in idx:
        img = frame_at(int(i))
        if img is None:
            continue
        v = View(img, tracks.face_landmarks[i], tracks.face_matrix[i], tracks.blendshapes[i], 1.0,
                 f"frame {i}")
        covered.append(float(hand_masks([v])[0]))        # on the whole frame: the palm shows
        v = crop_view(v)
        views.append(v)
        sharp.append(sharpness(v.image, v.landmarks))
    if not views:
        stats["views"] = 0
        return [], stats
    covered = np.array(covered)
    stats["hand_over_face"] = int((covered > 0).sum())
    stats["rejected_hand"] = int((covered > HAND_MAX_COVER).sum())
    sharp = np.array(sharp)
    med = float(np.median(sharp)) or 1.0
    rel = sharp / med
    keep = rel >= 0.6 if (rel >= 0.6).sum() >= 1 else rel >= rel.max()
    stats["rejected_blur"] = int((~keep).sum())
    if (keep & (covered <= HAND_MAX_COVER)).any():
        keep &= covered <= HAND_MAX_COVER
    kept = []
    for v, r, k, c in zip(views, rel, keep, covered):
        if k:
            v.weight = float(np.clip(r, 0.6, 1.3) / 1.3 * (1 - 0.4 * min(expression_score(v.blendshapes), 1))
                             * (1 - 0.5 * c))
            kept.append(v)
    kept = _pick_views(kept, max_views)
    stats["views"] = len(kept)
    return kept, stats


def reference_views(tracks, frame_at, n: int = 48) -> list[View]:
    """Up to n tracked (not filled) frames spread evenly over the whole take, any expression:
    the take's usual face colours for the occluder test."""
    ok = np.flatnonzero(tracks.face_valid & ~tracks.face_filled & np.isfinite(tracks.face_landmarks).all((1, 2)))
    if len(ok) == 0:
        return []
    out = []
    for i in ok[np.unique(np.linspace(0, len(ok) - 1, min(n, len(ok))).round().astype(int))]:
        img = frame_at(int(i))
        if img is not None:
            out.append(crop_view(View(img, tracks.face_landmarks[i], tracks.face_matrix[i],
                                      tracks.blendshapes[i], 1.0, f"frame {i}")))
    return out


def unwrap_take(tracks, frame_at, size: int = TEXTURE_SIZE, verts_m: np.ndarray | None = None,
                max_views: int = 40, extra_views: list[View] | None = None) -> Unwrap:
    """The face texture of a take: select, read, weight and blend its frames (plus any views of
    other cameras given in extra_views)."""
    views, stats = views_from_take(tracks, frame_at, max_views)
    res = unwrap_views(views + list(extra_views or []), size, verts_m,
                       reference=reference_views(tracks, frame_at))
    res.stats = {**stats, **res.stats}
    return res


HAND_MAX_COVER = 0.5          # a frame whose face box is more than this share hand is dropped
HAND_GROW = 0.25              # of the hand's size: the hull of the joints -> the fingers' outline


def hand_masks(views: list[View]) -> np.ndarray:
    """Find hands in the views' images (MediaPipe hand landmarker, IMAGE mode, two hands); set
    each view's `mask` to 0 on the hands' pixels. Returns (n_views,) the share of each face box
    the hands cover."""
    cover = np.zeros(len(views))
    for k, v in enumerate(views):
        h, w = v.image.shape[:2]
        r = detect_image("hand", v.image)
        if not r.hand_landmarks:
            continue
        mask = np.full((h, w), 255, np.uint8)
        for hand in r.hand_landmarks:
            px = np.array([(p.x * w, p.y * h) for p in hand], np.float32)
            size = float((px.max(0) - px.min(0)).max())
            hole = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(hole, cv2.convexHull(px).astype(np.int32), 255)
            grow = max(int(HAND_GROW * size), 1)   # each hand grown by its own size
            hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
            mask[hole > 0] = 0
        face = _pixels(v.landmarks, (w, h))[:468]
        x0, y0 = np.clip(face.min(0), 0, [w - 1, h - 1]).astype(int)
        x1, y1 = np.clip(face.max(0), 0, [w - 1, h - 1]).astype(int)
        box = mask[y0:y1 + 1, x0:x1 + 1]
        cover[k] = float((box == 0).mean()) if box.size else 0.0
        if cover[k] > 0:
            v.mask = mask
    return cover


def detect_face(image_bgr: np.ndarray) -> View | None:
    """MediaPipe's face landmarker (IMAGE mode) on one photo: a View, or None without a face."""
    r = detect_image("face", image_bgr)
    if not r.face_landmarks:
        return None
    return View(image_bgr, np.array([(p.x, p.y, p.z) for p in r.face_landmarks[0]], np.float32),
                np.asarray(r.facial_transformation_matrixes[0], np.float32),
                np.array([c.score for c in r.face_blendshapes[0]], np.float32))


def unwrap_image(image_bgr: np.ndarray, size: int = TEXTURE_SIZE) -> Unwrap:
    """The face texture of one photo (InputError when no face is found)."""
    from pipeline.core.errors import InputError
    v = detect_face(image_bgr)
    if v is None:
        raise InputError("no face found in the image")
    return unwrap_views([v], size)

"""Warping views into the UV layout and blending them into one face texture.

Warping (`warp_view`): every tracked view gives 478 landmarks in the image, one per canonical
vertex, so each canonical triangle maps affinely from UV space into the image: the texture is a
piecewise affine warp of the image, one `cv2.remap` through the view's landmark positions
(RGB float32 in [0, 255], plus which texels the image really holds).

Occluders (`view_agreement`): a hand the detector missed (a hand cut by the frame's edge has no
palm to detect), a mug, hair across the forehead are not the face, yet MediaPipe still tracks
the face under them. Every view is compared, at AGREE_SIZE x AGREE_SIZE, with the per-texel
median of frames spread over the whole take (any expression); texels that differ from it by more
than AGREE_RGB beyond what the views commonly differ (after exposure matching) lose their weight,
so an occluder present in fewer than half of the take drops out even if it stays through every
neutral frame.

Blending (`unwrap_views`): views are taken best first, each exposure-matched to the blend so far
(a gain per colour channel on the texels both see) and averaged with weights visibility**4 *
quality, which keeps the best view of each texel dominant (sharp) while hiding seams. The result
(`Unwrap`): an (S, S, 3) uint8 RGB texture, the best visibility of each texel (0 = never seen) and
the seen mask.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.face.texture_raster import (
    N_MESH_LANDMARKS,
    TEXTURE_SIZE,
    UVRaster,
    landmark_pixels,
    texel_visibility,
    triangle_areas_uv,
    triangle_visibility,
    uv_raster,
)
from pipeline.face.texture_views import View

SEEN_THRESHOLD = 0.25         # best visibility below this counts as unseen (grazing, smeared)
BLEND_POWER = 4.0             # weights ** power: the best view of a texel dominates
AGREE_SIZE = 128              # resolution of the occluder test
AGREE_RGB = 28.0              # colour distance (0-255) to the views' median: weight e^-1 there
AGREE_MIN_VIEWS = 3           # a median of fewer views says nothing
AGREE_MIN_VISIBILITY = 0.5    # texels a view sees less well than this do not vote for the median
AGREE_MIN_TEXELS = 50         # texels a view must share with the median to be exposure-matched
AGREE_ROUNDS = 2              # median, exposure match to it, median again
AGREE_BASELINE_QUANTILE = 0.25  # distances are counted above this quantile of all views' there
OCCLUDED_BELOW = 0.5          # texels agreeing less than this count as occluded (stats only)
GAIN_RANGE = (0.6, 1.6)       # exposure-matching gains per colour channel stay in this range
GAIN_MIN_TEXELS = 200         # texels a view must share with the blend so far to be gain-matched
GAIN_VISIBILITY_SHARE = 0.5   # ... seeing them at least this share of its best visibility
OUTSIDE_UV = -1e4             # warp map value (pixels) of texels outside the face: samples nothing
# The face oval fills about this share of the texture's width: a face larger than the texture by
# more than PREFILTER_MIN_SHRINK is blurred first (sigma = shrink / PREFILTER_SHRINK_PER_SIGMA px).
FACE_SHARE_OF_TEXTURE = 0.85
PREFILTER_MIN_SHRINK = 1.5
PREFILTER_SHRINK_PER_SIGMA = 2.5


@dataclass
class Unwrap:
    """texture: (S, S, 3) uint8 RGB; visibility: (S, S) float32, the best visibility any view
    had of each texel (geometry, hands and occluders; not the views' quality), 0 = never seen;
    mask: (S, S) bool, seen well enough to keep (visibility >= SEEN_THRESHOLD); stats: what was
    used."""

    texture: np.ndarray
    visibility: np.ndarray
    mask: np.ndarray
    stats: dict = field(default_factory=dict)


def warp_maps(landmarks: np.ndarray, image_size, raster: UVRaster) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) float32 map_x, map_y: the image pixel each texel samples (piecewise affine through
    the landmarks); OUTSIDE_UV outside the face."""
    px = landmark_pixels(landmarks, image_size).astype(np.float32)
    b, vid = raster.bary_in, raster.vid_in
    mx = np.full((raster.size, raster.size), OUTSIDE_UV, np.float32)
    my = np.full((raster.size, raster.size), OUTSIDE_UV, np.float32)
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
    px = landmark_pixels(landmarks, (w, h))[:N_MESH_LANDMARKS]
    face_px = float((px.max(0) - px.min(0)).max())
    shrink = face_px / (FACE_SHARE_OF_TEXTURE * raster.size)
    if shrink > PREFILTER_MIN_SHRINK:         # pre-filter: avoid aliasing when minifying
        k = int(2 * round(shrink / 2) + 1)
        src = cv2.GaussianBlur(image, (k, k), shrink / PREFILTER_SHRINK_PER_SIGMA)
    out = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ok = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)   # bilinear never reads the border
    if mask is not None:
        ok &= cv2.remap(mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32), ok


def _exposure_gain(reference_rgb: np.ndarray, own_rgb: np.ndarray) -> np.ndarray:
    """(3,) per-channel gain taking the median of own_rgb (N, 3) to that of reference_rgb,
    limited to GAIN_RANGE."""
    return np.clip(np.median(reference_rgb, 0) / np.maximum(np.median(own_rgb, 0), 1), *GAIN_RANGE)


def _warped_stack(views: list[View], tri_vis: list, verts_m, raster: UVRaster):
    """(n, S, S, 3) float32 warped RGB and (n, S, S) bool texels each view sees well
    (visibility >= AGREE_MIN_VISIBILITY, inside the image, not masked). tri_vis[k] None: computed."""
    n, size = len(views), raster.size
    rgb = np.zeros((n, size, size, 3), np.float32)
    seen = np.zeros((n, size, size), bool)
    for k, (v, tv) in enumerate(zip(views, tri_vis)):
        h, w = v.image.shape[:2]
        if tv is None:
            tv = triangle_visibility(v.landmarks, v.matrix, (w, h), verts_m)
        rgb[k], ok = warp_view(v.image, v.landmarks, raster, v.mask)
        seen[k] = (texel_visibility(tv, raster) >= AGREE_MIN_VISIBILITY) & ok
    return rgb, seen


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
    rgb, seen = _warped_stack(everything, list(tri_vis) + [None] * len(pool), verts_m, raster)
    ref = slice(len(views), n) if pool else slice(0, len(views))
    enough = seen[ref].sum(0) >= AGREE_MIN_VIEWS
    stack = np.where(seen[..., None], rgb, np.nan)
    for _ in range(AGREE_ROUNDS):            # median, exposure match to it, median again
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN texels: nobody sees them
            med = np.nanmedian(stack[ref], 0)
        for k in range(n):
            both = seen[k] & enough
            if both.sum() > AGREE_MIN_TEXELS:
                stack[k] *= _exposure_gain(med[both], stack[k][both]).astype(np.float32)
    dist = np.linalg.norm(stack[:len(views)] - med[None], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline = np.nanquantile(dist, AGREE_BASELINE_QUANTILE, axis=0)
    excess = np.maximum(np.nan_to_num(dist - np.nan_to_num(baseline)[None], nan=0.0), 0.0)
    agree = np.exp(-(excess / AGREE_RGB) ** 2).astype(np.float32)
    agree[:, ~enough] = 1.0
    # an occluder's outline is fuzzy: take the worse of a texel and its neighbours
    return np.stack([cv2.erode(cv2.GaussianBlur(a, (3, 3), 0), np.ones((3, 3), np.uint8)) for a in agree])


def _ranked_views(views: list[View], verts_m) -> list[tuple[float, np.ndarray, View]]:
    """(score, triangle visibility, view), the view seeing most of the face (UV area times
    visibility times its weight) first."""
    area = triangle_areas_uv()
    prepared = []
    for v in views:
        h, w = v.image.shape[:2]
        tv = triangle_visibility(v.landmarks, v.matrix, (w, h), verts_m)
        prepared.append((float((tv * area).sum()) * v.weight, tv, v))
    prepared.sort(key=lambda p: -p[0])
    return prepared


def unwrap_views(views: list[View], size: int = TEXTURE_SIZE, verts_m: np.ndarray | None = None,
                 power: float = BLEND_POWER, gain_match: bool = True, reject_occluders: bool = True,
                 reference: list[View] | None = None) -> Unwrap:
    """Blend several views of one face into one UV texture (see the module docstring).
    verts_m: the subject's (468, 3) face in head space, metres (default the canonical face);
    reference: frames of the whole take for the occluder test (`view_agreement`)."""
    raster = uv_raster(size)
    if not views:
        zeros = np.zeros((size, size), np.float32)
        return Unwrap(np.zeros((size, size, 3), np.uint8), zeros, zeros > 0, {"views": 0})
    prepared = _ranked_views(views, verts_m)
    agree = None
    if reject_occluders and len(prepared) >= AGREE_MIN_VIEWS:
        agree = view_agreement([p[2] for p in prepared], [p[1] for p in prepared], reference, verts_m)
    num = np.zeros((size, size, 3), np.float32)
    den = np.zeros((size, size), np.float32)
    best = np.zeros((size, size), np.float32)
    gains = []
    for k, (_, tri_vis, view) in enumerate(prepared):
        rgb, ok = warp_view(view.image, view.landmarks, raster, view.mask)
        # what the view really shows of each texel; its quality weighs the blend, not the mask
        vis = texel_visibility(tri_vis, raster) * ok
        if agree is not None:
            vis = vis * cv2.resize(agree[k], (size, size), interpolation=cv2.INTER_LINEAR)
        if gain_match and k > 0:
            blended = den > 1e-6
            both = blended & (vis > GAIN_VISIBILITY_SHARE * max(float(vis.max()), 1e-6))
            gain = np.ones(3)
            if both.sum() > GAIN_MIN_TEXELS:
                gain = _exposure_gain(num[both] / den[both, None], rgb[both])
                rgb = rgb * gain.astype(np.float32)
            gains.append([round(float(x), 3) for x in gain])
        weight = vis.astype(np.float32) ** power * float(view.weight)
        num += weight[..., None] * rgb
        den += weight
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
        stats["occluded_share"] = round(float((agree < OCCLUDED_BELOW).mean(axis=(1, 2)).mean() / max(
            float(uv_raster(AGREE_SIZE).inside.mean()), 1e-6)), 4)
    return Unwrap(tex, best, mask, stats)

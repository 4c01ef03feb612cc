"""The head's base colour texture: unwrapped from the take, completed by the texture GAN, the rest
of the head painted around it.

    result = build_head_texture(tracks, frame_at, head)      # TextureResult
    result.image                                              # (S, S, 3) uint8 RGB, S = 1024

1. Face (`pipeline.face.texture_unwrap`): the selected frames warped into the canonical
   UV layout through their landmarks and blended by visibility (sharp, neutral, exposure-matched,
   hands and occluders kept out). Frames that show less than MIN_SEEN_FRACTION of the face
   clearly give no texture (`skipped` says why): the GAN would be guessing a whole face.
2. Completion (`models.texture_gan.complete`): the GAN fills the face texels no frame saw well
   (the sides of the face the subject never turned, the under-side of the nose and chin, the
   hairline), seen texels keep their full-resolution values (a feathered seam of S/256 texels).
   Optional per-subject fine-tuning on the take's own texture (`finetune_seconds`).
3. The rest of the head (`HeadMesh` UV tiles, see `pipeline.face.head_mesh.UV_TILES`):
   * scalp and neck: the colour of the face's rim where they meet it (so the seam does not
     show), fading into the subject's skin tone (the median of the cheeks and forehead), with
     the fine skin detail of a cheek patch tiled over it;
   * eyeballs: sclera, the iris in the colour measured inside the tracked irises of the selected
     frames, limbus ring and pupil, painted in the eyeball chart (polar around the gaze axis);
   * eye sockets and mouth bag: the head mesh's shading (darker with depth) on the skin tone and
     on dark red.
4. Padding: every texel no triangle uses takes the colour of the nearest used texel, so mipmaps
   and bilinear filtering never pull black into the seams.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial import cKDTree

from models.texture_gan import complete, load_checkpoint
from models.threads import torch_threads
from pipeline.core.assets import TEXTURE_GAN, model_path
from pipeline.core.atomic import write_image
from pipeline.core.colour import linear_to_srgb, sample_uv, srgb_to_linear
from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_eyes import IRIS_DEG, LIMBUS_DEG, PUPIL_DEG
from pipeline.face.head_layout import (
    CHART_RIM,
    EYE_SOCKET,
    MOUTH,
    N_FACE,
    N_LANDMARKS_WITH_IRISES,
    NECK,
    SCALP,
    SKIN_RGB,
    UV_TILES,
)
from pipeline.face.head_mesh import HeadMesh
from pipeline.face.texture_blend import Unwrap, unwrap_views
from pipeline.face.texture_gan_training import finetune_on_texture
from pipeline.face.texture_raster import TEXTURE_SIZE, face_region
from pipeline.face.texture_views import REFERENCE_VIEWS, View, reference_views, views_from_take

# Canonical landmarks around which the skin tone is measured (cheeks, forehead, chin).
SKIN_SAMPLE_LANDMARKS = (50, 280, 101, 330, 108, 337, 151, 199, 205, 425)
SKIN_SAMPLE_DIVISOR = 64         # the skin tone's sample squares: S / this texels from the landmark (>= 2)
DETAIL_PATCH_LANDMARK = 50       # right cheek: the skin detail tiled over the scalp and neck
DETAIL_PATCH_SHARE = 0.012       # the cheek patch's half-size, share of the texture (>= 4 texels)
DETAIL_SIGMAS_PER_HALF = 3       # the patch's high-pass: minus its blur of sigma half-size / this
DETAIL_GAIN = 0.5
RIM_BLUR_DIVISOR = 200           # the face rim colour is sampled from the face blurred by S / this texels
SEAM_FALLOFF_M = 0.035           # scalp/neck colour goes from the face rim's to the skin tone
DEFAULT_IRIS_RGB = (92, 64, 45)  # sRGB, when no iris was measured
MIN_SEEN_FRACTION = 0.15         # of the face's texels seen clearly, or no texture at all
RASTER_SLACK_TEXELS = 0.7        # triangles are painted this far past their edges (no cracks)
# Iris colour: sampled between these shares of each tracked iris's radius (no pupil, no limbus),
# irises smaller than MIN_IRIS_RADIUS_PX in the image are not measured.
IRIS_SAMPLE_RING = (0.35, 0.85)
MIN_IRIS_RADIUS_PX = 2.5
IRIS_RINGS = ((468, range(469, 473)), (473, range(474, 478)))   # (centre, contour) landmark ids
# Painted eyeball (sRGB 0-255, polar angles in degrees as head_eyes): the sclera reddens towards
# the back from SCLERA_FADE_START_DEG over SCLERA_FADE_DEG; the iris darkens towards the pupil
# (IRIS_SHADE_MIN + IRIS_SHADE_RANGE * angle / IRIS_DEG) and has radial streaks.
SCLERA_SRGB = (225, 220, 210)
EYEBALL_BACK_SRGB = (200, 160, 150)
LIMBUS_SRGB = (40, 30, 25)
PUPIL_SRGB = (8, 6, 5)
SCLERA_FADE_START_DEG = 60
SCLERA_FADE_DEG = 100
IRIS_SHADE_MIN = 0.75
IRIS_SHADE_RANGE = 0.5
IRIS_STREAK_DEPTH = 0.18
IRIS_STREAK_FREQUENCIES = (23, 7)     # periods around the iris of the two streak patterns
STREAK_PHASE_MAX = 6                  # random phases of the streaks, radians in [0, this)
FINETUNE_STEPS = 1000                 # per-subject fine-tuning: step limit (the time limit rules)
MAX_TORCH_THREADS = 2                 # the GAN runs on at most this many threads (shared machines)
MIN_VIEWS_PER_CAMERA = 4              # with several cameras, views per camera at least
MIN_REFERENCE_VIEWS_PER_CAMERA = 12   # and reference views for the occluder test at least


@dataclass
class TextureResult:
    """image: (S, S, 3) uint8 RGB, the head's base colour (sRGB); seen: (S, S) bool, texels
    taken from the frames; visibility: (S, S) float32, the best view's visibility of each face
    texel; used: (S, S) bool, texels some head triangle covers; stats: for the manifest.
    skipped: why there is no texture (then image, seen, visibility and used are None)."""

    image: np.ndarray | None
    seen: np.ndarray | None
    visibility: np.ndarray | None
    used: np.ndarray | None
    stats: dict = field(default_factory=dict)
    skipped: str = ""

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if self.image is None:
            raise ValueError(f"no texture to save: {self.skipped}")
        return write_image(path, cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))  # OutputError if refused


def raster_vertex_colours(image: np.ndarray, written: np.ndarray, uv: np.ndarray,
                          tris: np.ndarray, colours: np.ndarray) -> None:
    """Paint triangles (in UV space) with barycentric interpolation of per-vertex colours into
    image (S, S, 3) float32; marks written (S, S) bool."""
    S = image.shape[0]
    p_all = np.asarray(uv, np.float64) * S - 0.5
    for a, b, c in np.asarray(tris, np.int64):
        p = p_all[[a, b, c]]
        x0, y0 = np.maximum(np.floor(p.min(0) - 1).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(p.max(0) + 1).astype(int), S - 1)
        if x1 < x0 or y1 < y0:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        d1, d2 = p[1] - p[0], p[2] - p[0]
        den = d1[0] * d2[1] - d1[1] * d2[0]
        if abs(den) < 1e-12:
            continue
        qx, qy = gx - p[0, 0], gy - p[0, 1]
        l1 = (qx * d2[1] - qy * d2[0]) / den
        l2 = (d1[0] * qy - d1[1] * qx) / den
        l0 = 1 - l1 - l2
        # half a texel of slack: edge texels are painted by both neighbours (no cracks)
        tol = RASTER_SLACK_TEXELS / max(np.abs(den) ** 0.5, 1e-6)
        m = (l0 >= -tol) & (l1 >= -tol) & (l2 >= -tol)
        if not m.any():
            continue
        w = np.clip(np.stack([l0[m], l1[m], l2[m]], 1), 0, None)
        w /= w.sum(1, keepdims=True)
        image[gy[m], gx[m]] = w @ colours[[a, b, c]]
        written[gy[m], gx[m]] = True


def skin_tone(face_rgb: np.ndarray) -> np.ndarray:
    """Median sRGB (0-255) of the completed face around cheeks, forehead and chin."""
    uv = load_canonical_face().uv[list(SKIN_SAMPLE_LANDMARKS)]
    S = face_rgb.shape[0]
    r = max(2, S // SKIN_SAMPLE_DIVISOR)
    samples = []
    for u, v in uv:
        x, y = int(u * S), int(v * S)
        samples.append(face_rgb[max(0, y - r):y + r, max(0, x - r):x + r].reshape(-1, 3))
    return np.median(np.concatenate(samples), 0).astype(np.float32)


def iris_colour(views: list[View]) -> np.ndarray | None:
    """Median sRGB (0-255) inside the tracked irises (between 35 % and 85 % of their radius, to
    skip the pupil and the limbus) over the views; None when no iris is measurable."""
    cols = []
    inner, outer = IRIS_SAMPLE_RING
    for v in views:
        h, w = v.image.shape[:2]
        lm = v.landmarks[:, :2] * np.array([w, h], np.float32)
        if len(lm) < N_LANDMARKS_WITH_IRISES:
            continue
        for c, ring in IRIS_RINGS:
            centre = lm[c]
            radius = float(np.mean(np.linalg.norm(lm[list(ring)] - centre, axis=1)))
            if radius < MIN_IRIS_RADIUS_PX:
                continue
            x0, y0 = np.floor(centre - radius).astype(int)
            x1, y1 = np.ceil(centre + radius).astype(int) + 1
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                continue
            gy, gx = np.mgrid[y0:y1, x0:x1]
            d = np.hypot(gx - centre[0], gy - centre[1]) / radius
            px = v.image[y0:y1, x0:x1][(d >= inner) & (d <= outer)]
            cols.append(px[:, ::-1].astype(np.float32))
    if not cols:
        return None
    return np.median(np.concatenate(cols), 0)


def _paint_eye(image: np.ndarray, written: np.ndarray, tile, iris_rgb: np.ndarray, rng) -> None:
    """Eyeball chart: radius CHART_RIM * polar angle / 180 degrees around the gaze axis; sclera,
    limbus, iris (iris_rgb, sRGB 0-255, shaded and streaked; two draws from rng) and pupil."""
    S = image.shape[0]
    u0, v0, u1, v1 = tile
    x0, x1 = int(np.floor(u0 * S)), int(np.ceil(u1 * S))
    y0, y1 = int(np.floor(v0 * S)), int(np.ceil(v1 * S))
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    cx, cy = (u0 + u1) / 2 * S - 0.5, (v0 + v1) / 2 * S - 0.5
    half = (u1 - u0) / 2 * S
    r = np.hypot(gx - cx, gy - cy) / half
    ang = np.clip(r / CHART_RIM, 0, 1) * 180.0
    phi = np.arctan2(gy - cy, gx - cx)
    sclera = np.array(SCLERA_SRGB, np.float64)
    back = np.array(EYEBALL_BACK_SRGB, np.float64)
    col = sclera + (back - sclera) * np.clip((ang - SCLERA_FADE_START_DEG) / SCLERA_FADE_DEG, 0, 1)[..., None]
    f1, f2 = IRIS_STREAK_FREQUENCIES
    streak = 1 + IRIS_STREAK_DEPTH * np.sin(phi * f1 + rng.uniform(0, STREAK_PHASE_MAX)) * np.sin(
        phi * f2 + rng.uniform(0, STREAK_PHASE_MAX))
    iris = iris_rgb * (IRIS_SHADE_MIN + IRIS_SHADE_RANGE * np.clip(ang / IRIS_DEG, 0, 1))[..., None] * streak[..., None]
    col = np.where((ang <= LIMBUS_DEG)[..., None], np.array(LIMBUS_SRGB, np.float64), col)
    col = np.where((ang <= IRIS_DEG)[..., None], iris, col)
    col = np.where((ang <= PUPIL_DEG)[..., None], np.array(PUPIL_SRGB, np.float64), col)
    image[y0:y1, x0:x1] = np.clip(col, 0, 255)
    written[y0:y1, x0:x1] = True


def _pad(image: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Every texel outside `used` takes the colour of the nearest used texel."""
    if used.all() or not used.any():
        return image
    _, labels = cv2.distanceTransformWithLabels((~used).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(used)
    # labels number the zero (used) pixels in scan order, starting at 1
    lut = np.zeros((labels.max() + 1, 3), image.dtype)
    order = np.argsort(labels[ys, xs])
    lut[labels[ys, xs][order]] = image[ys[order], xs[order]]
    return lut[labels]


def _scalp_neck_colours(head: HeadMesh, face_rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(V, 3) float64 sRGB (0-255) vertex colours for the scalp and neck: the colour of the face's
    rim where they meet it (sampled from the blurred face at the seam copies' canonical UVs),
    fading into the skin tone with the distance (metres) from the seam."""
    S = face_rgb.shape[0]
    sn = (head.region == SCALP) | (head.region == NECK)
    seam = np.flatnonzero(sn & (head.source_id < N_FACE) & (head.source_id != np.arange(head.n_vertices)))
    blurred = cv2.GaussianBlur(face_rgb.astype(np.float32), (0, 0), S / RIM_BLUR_DIVISOR)
    seam_col = sample_uv(blurred, load_canonical_face().uv[head.source_id[seam]]) if len(seam) else np.zeros((0, 3))
    cols = np.tile(skin, (head.n_vertices, 1)).astype(np.float64)
    if len(seam):
        dist, nearest = cKDTree(head.positions_m[seam]).query(head.positions_m[sn])
        f = np.exp(-(dist / SEAM_FALLOFF_M) ** 2)[:, None]
        cols[sn] = f * seam_col[nearest] + (1 - f) * skin
    return cols


def _skin_detail(face_rgb: np.ndarray) -> np.ndarray | None:
    """(S, S, 3) float32: the high-pass of a cheek patch, tiled (mirrored) over the texture; None
    when the patch is not inside the texture."""
    S = face_rgb.shape[0]
    uvc = load_canonical_face().uv[DETAIL_PATCH_LANDMARK]
    half = max(4, int(DETAIL_PATCH_SHARE * S))
    cx, cy = int(uvc[0] * S), int(uvc[1] * S)
    patch = face_rgb[cy - half:cy + half, cx - half:cx + half].astype(np.float32)
    if patch.shape[:2] != (2 * half, 2 * half):
        return None
    hp = patch - cv2.GaussianBlur(patch, (0, 0), half / DETAIL_SIGMAS_PER_HALF)
    quad = np.concatenate([np.concatenate([hp, hp[:, ::-1]], 1),
                           np.concatenate([hp[::-1], hp[::-1, ::-1]], 1)], 0)
    reps = (S // quad.shape[0] + 1, S // quad.shape[1] + 1, 1)
    return np.tile(quad, reps)[:S, :S]


def _paint_scalp_neck(img: np.ndarray, written: np.ndarray, head: HeadMesh, face_rgb: np.ndarray,
                      skin: np.ndarray, tris: np.ndarray, tri_reg: np.ndarray) -> np.ndarray:
    """img (S, S, 3) float32 with the scalp and neck triangles painted (rim colour fading into the
    skin tone, plus the cheek's fine detail); marks them in written. Returns the new image."""
    cols = _scalp_neck_colours(head, face_rgb, skin)
    sn_tris = tris[(tri_reg == SCALP) | (tri_reg == NECK)]
    sn_img = np.zeros_like(img)
    sn_written = np.zeros(written.shape, bool)
    raster_vertex_colours(sn_img, sn_written, head.uv, sn_tris, cols)
    detail = _skin_detail(face_rgb)
    if detail is not None:
        sn_img = np.where(sn_written[..., None], sn_img + DETAIL_GAIN * detail, sn_img)
    img = np.where(sn_written[..., None], sn_img, img)
    written |= sn_written
    return img


def _paint_sockets_and_mouth(img: np.ndarray, written: np.ndarray, head: HeadMesh, skin: np.ndarray,
                             tris: np.ndarray, tri_reg: np.ndarray) -> None:
    """Sockets: the head mesh's shading relative to its reference skin (SKIN_RGB), on the
    subject's skin tone (sRGB 0-255); the mouth bag: its own vertex colours (linear -> sRGB)."""
    skin_lin = srgb_to_linear(skin / 255)
    base_lin = np.asarray(SKIN_RGB, np.float64)     # head.color's skin (linear; build_head's default)
    ratio = head.color[:, :3] / np.maximum(base_lin, 1e-6)
    sock_col = linear_to_srgb(np.clip(ratio * skin_lin, 0, 1)) * 255
    raster_vertex_colours(img, written, head.uv, tris[tri_reg == EYE_SOCKET], sock_col)
    raster_vertex_colours(img, written, head.uv, tris[tri_reg == MOUTH], linear_to_srgb(head.color[:, :3]) * 255)


def paint_head(head: HeadMesh, face_rgb: np.ndarray, iris_rgb=None,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Paint everything but the face into a texture whose face region holds the completed face
    (face_rgb: (S, S, 3) uint8 sRGB; iris_rgb: sRGB 0-255 or None for DEFAULT_IRIS_RGB; seed: the
    eyes' streak phases). Returns (image uint8 (S, S, 3), used mask (S, S) bool, stats)."""
    S = face_rgb.shape[0]
    rng = np.random.default_rng(seed)
    face_rgb = _pad(np.asarray(face_rgb, np.uint8), face_region(S))   # nothing from outside the face
    img = face_rgb.astype(np.float32).copy()
    written = face_region(S).copy()
    skin = skin_tone(face_rgb)
    tris = head.triangles.astype(np.int64)
    tri_reg = head.region[tris[:, 0]]
    img = _paint_scalp_neck(img, written, head, face_rgb, skin, tris, tri_reg)
    _paint_sockets_and_mouth(img, written, head, skin, tris, tri_reg)
    iris = np.asarray(DEFAULT_IRIS_RGB if iris_rgb is None else iris_rgb, np.float64)
    for name in ("eye_left", "eye_right"):
        _paint_eye(img, written, UV_TILES[name], iris, rng)
    used = written.copy()
    out = _pad(np.clip(np.round(img), 0, 255).astype(np.uint8), used)
    stats = {"skin_rgb": [int(x) for x in skin], "iris_rgb": [int(x) for x in iris],
             "iris_measured": iris_rgb is not None}
    return out, used, stats


def complete_face(unwrap: Unwrap, checkpoint=None, finetune_seconds: float = 0.0) -> tuple[np.ndarray, dict]:
    """The GAN fill of the unwrapped face -> ((S, S, 3) uint8 with the whole face region filled,
    stats)."""
    # the shipped checkpoint is checked against SHA256SUMS first (AssetError naming it if altered);
    # a checkpoint the caller names is their own
    path = Path(checkpoint) if checkpoint else model_path(TEXTURE_GAN)
    gen, meta = load_checkpoint(path)
    stats = {"checkpoint": path.name, "finetune_s": 0.0}
    with torch_threads(min(MAX_TORCH_THREADS, torch.get_num_threads())):   # shared machines
        if finetune_seconds > 0 and unwrap.mask.any():
            t0 = time.perf_counter()
            gen = finetune_on_texture(gen, unwrap.texture, unwrap.mask, steps=FINETUNE_STEPS,
                                      seconds=finetune_seconds)
            stats["finetune_s"] = round(time.perf_counter() - t0, 1)
        return complete(unwrap.texture, unwrap.mask, gen), stats


def _views_of_cameras(pairs: list, max_views: int) -> tuple[list[View], list[View], dict]:
    """Each camera's (tracks, frame_at) -> (its selected views, reference views for the occluder
    test, the selection counts summed over the cameras)."""
    views, refs, sel = [], [], {}
    per_cam = max(MIN_VIEWS_PER_CAMERA, max_views // max(len(pairs), 1))
    for tr, fa in pairs:
        v, st = views_from_take(tr, fa, per_cam)
        views += v
        if v:
            refs += reference_views(tr, fa, max(MIN_REFERENCE_VIEWS_PER_CAMERA, REFERENCE_VIEWS // len(pairs)))
        for key, val in st.items():
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                sel[key] = sel.get(key, 0) + val
    return views, refs, sel


def build_head_texture(tracks, frame_at, head: HeadMesh, size: int = TEXTURE_SIZE,
                       max_views: int = 40, checkpoint=None, finetune_seconds: float = 0.0,
                       cameras: list | None = None,
                       extra_views: list[View] | None = None) -> TextureResult:
    """The head's texture from a take (see the module docstring). When no frame shows a usable
    face the result has image None and `skipped` says why (the head keeps its vertex colours).

    tracks, frame_at: the take's (gap-filled) Tracks and frame_at(i) -> BGR frame i or None.
    head:    the HeadMesh the texture is for (its face vertices place the visibility test).
    cameras: for a take seen by several calibrated cameras, [(tracks_c, frame_at_c), ...] of
             each camera's own tracks and frames; then tracks/frame_at are not used (fused
             tracks mix the cameras' landmarks frame by frame, so they cannot be matched with
             one camera's frames). Without it, fused (multiview) tracks are skipped.
    extra_views: more views (View objects), e.g. photos of the subject.
    AssetError when the GAN checkpoint is missing or corrupt."""
    t0 = time.perf_counter()
    if cameras is None and getattr(tracks, "multiview", False):
        return TextureResult(None, None, None, None, {"views": 0}, skipped=(
            "fused multi-camera tracks without the cameras' own tracks and frames"))
    pairs = list(cameras) if cameras is not None else [(tracks, frame_at)]
    views, refs, sel = _views_of_cameras(pairs, max_views)
    views += list(extra_views or [])
    sel["views"] = len(views)
    if len(pairs) > 1:
        sel["cameras"] = len(pairs)
    if not views:
        return TextureResult(None, None, None, None, sel, skipped=(
            "no frame shows a usable face (tracked, not blinking or grimacing, sharp)"))
    unwrap = unwrap_views(views, size, head.positions_m[:N_FACE], reference=refs)
    t_unwrap = time.perf_counter() - t0
    seen = sel["seen_fraction_of_face"] = unwrap.stats["seen_fraction_of_face"]
    if seen < MIN_SEEN_FRACTION:
        # too little real skin to complete from: a texture would be the GAN's guess of a face
        return TextureResult(None, None, None, None, sel, skipped=(
            f"the frames show only {100 * seen:.0f} % of the face clearly (hands, occluders, "
            f"profile views); at least {100 * MIN_SEEN_FRACTION:.0f} % is needed"))
    face, gstats = complete_face(unwrap, checkpoint, finetune_seconds)
    t_gan = time.perf_counter() - t0 - t_unwrap
    image, used, pstats = paint_head(head, face, iris_colour(views))
    stats = {"size": size, **sel, **gstats, **pstats,
             **{k: unwrap.stats[k] for k in ("occluded_share",) if k in unwrap.stats},
             "timings_s": {"unwrap": round(t_unwrap, 2), "complete": round(t_gan, 2),
                           "paint": round(time.perf_counter() - t0 - t_unwrap - t_gan, 2)}}
    return TextureResult(image, unwrap.mask, unwrap.visibility, used, stats)


def texture_from_unwrap(unwrap: Unwrap, head: HeadMesh, checkpoint=None, iris_rgb=None) -> TextureResult:
    """The same from an existing unwrap (e.g. of photos): complete, paint, pad."""
    face, gstats = complete_face(unwrap, checkpoint)
    image, used, pstats = paint_head(head, face, iris_rgb)
    return TextureResult(image, unwrap.mask, unwrap.visibility, used,
                         {**unwrap.stats, **gstats, **pstats})

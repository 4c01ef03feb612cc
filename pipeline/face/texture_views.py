"""Views of the face for the texture: which frames of a take are used, read, cropped, weighted,
with the hands masked out.

A `View` is one image of the face: a BGR uint8 image, MediaPipe's (478, 3) normalised landmarks,
its (4, 4) face matrix (canonical cm -> camera cm), optionally the 52 blendshape scores, a
quality weight and a mask of unusable pixels.

Which frames are used (`select_frames`, on a take's `Tracks`): no blink (eyeBlink* below
BLINK_MAX), no strong expression (jaw open, smile, pucker, ... below per-shape limits: the texture
is the neutral face), no motion blur (the landmarks' speed here; `views_from_take` then drops
frames whose variance of the Laplacian in the face box is well below the candidates' median),
spread over the take and over head poses.

Hands (`hand_masks`): MediaPipe's hand landmarker runs on the selected frames; the pixels of a
hand (the hull of its 21 landmarks, grown to the fingers' width) are masked out of that view, and
a frame whose face is mostly hidden by hands is dropped. Other views or the GAN fill in.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.core.tracks import BLENDSHAPE_NAMES
from pipeline.face.texture_raster import EYE_OUTER_CORNERS, N_MESH_LANDMARKS, landmark_pixels
from pipeline.tracking.mediapipe_tasks import detect_image

BLINK_MAX = 0.35
NEUTRAL_SCORE = 1.0           # expression_score at or below this is neutral enough
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

# Frame quality in select_frames: speed counts as SPEED_TO_SCORE expression-score units per
# MAX_SPEED_PER_S, weighted RELAX_SPEED_WEIGHT when ranking frames for the relaxed pick and
# QUALITY_SPEED_WEIGHT in the quality q = (1 - QUALITY_EXPRESSION_WEIGHT * expression) /
# (1 + QUALITY_SPEED_WEIGHT * speed term).
SPEED_TO_SCORE = 0.06
RELAX_SPEED_WEIGHT = 10
QUALITY_SPEED_WEIGHT = 20
QUALITY_EXPRESSION_WEIGHT = 0.5
MIN_SPEED_DT_S = 1e-3         # neighbouring frames closer in time than this count as this far
CANDIDATES_PER_VIEW = 2       # select_frames returns up to this many candidates per wanted view
POSE_BIN_DEG = 10             # select_frames: the best frame of each yaw x pitch bin is kept
PICK_YAW_BIN_DEG = 10         # _pick_views: round-robin over yaw x pitch bins of this size
PICK_PITCH_BIN_DEG = 15
# Sharpness: the face box resampled to this width (px) before the variance of the Laplacian.
SHARPNESS_WIDTH_PX = 160
MIN_FACE_BOX_PX = 8           # smaller face boxes (or crops) are not judged / not cropped
# views_from_take: frames below MIN_RELATIVE_SHARPNESS x the median sharpness are dropped; a view's
# weight is its relative sharpness (capped at MAX_SHARPNESS_CREDIT, / it), times
# (1 - EXPRESSION_PENALTY x its expression score (at most 1)), times (1 - HAND_PENALTY x the share
# of its face box a hand covers).
MIN_RELATIVE_SHARPNESS = 0.6
MAX_SHARPNESS_CREDIT = 1.3
EXPRESSION_PENALTY = 0.4
HAND_PENALTY = 0.5
REFERENCE_VIEWS = 48          # frames of the whole take for the occluder test
CROP_MARGIN = 0.15            # of the face box, kept around it when a view is cropped
CROP_PAD_PX = 2               # and this many pixels more
HAND_MAX_COVER = 0.5          # a frame whose face box is more than this share hand is dropped
HAND_GROW = 0.25              # of the hand's size: the hull of the joints -> the fingers' outline


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


def _face_box(landmarks: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (inclusive pixels) of the face's landmarks, clipped to the image."""
    px = landmark_pixels(landmarks, (w, h))[:N_MESH_LANDMARKS]
    x0, y0 = np.clip(px.min(0), 0, [w - 1, h - 1]).astype(int)
    x1, y1 = np.clip(px.max(0), 0, [w - 1, h - 1]).astype(int)
    return x0, y0, x1, y1


def sharpness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the Laplacian in the face box, resampled to SHARPNESS_WIDTH_PX wide
    (comparable between frames of different face sizes)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = _face_box(landmarks, w, h)
    if x1 - x0 < MIN_FACE_BOX_PX or y1 - y0 < MIN_FACE_BOX_PX:
        return 0.0
    crop = cv2.cvtColor(image[y0:y1 + 1, x0:x1 + 1], cv2.COLOR_BGR2GRAY)
    s = SHARPNESS_WIDTH_PX / crop.shape[1]
    crop = cv2.resize(crop, (SHARPNESS_WIDTH_PX, max(MIN_FACE_BOX_PX, int(round(crop.shape[0] * s)))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(crop, cv2.CV_32F).var())


def head_yaw_pitch_deg(matrix: np.ndarray) -> tuple[float, float]:
    """Yaw (turn, + = towards the subject's left) and pitch (+ = up) of the face matrix."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    r = r / np.cbrt(max(abs(np.linalg.det(r)), 1e-12))
    z = r[:, 2]                              # the face's +Z (out of the face) in the camera frame
    return float(np.degrees(np.arctan2(z[0], z[2]))), float(np.degrees(np.arcsin(np.clip(z[1], -1, 1))))


def _landmark_speeds(tracks, idx: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(len(idx),) landmark speed of each frame, eye-corner distances per second: the median
    landmark displacement to its usable neighbouring frames over the time between them."""
    scale = np.array(tracks.image_size, np.float32)
    t = np.asarray(tracks.t_s, np.float64)
    speed = np.zeros(len(idx))
    right, left = EYE_OUTER_CORNERS
    for k, i in enumerate(idx):
        px = tracks.face_landmarks[i, :N_MESH_LANDMARKS, :2] * scale
        face_w = max(float(np.linalg.norm(px[right] - px[left])), 1e-6)
        d = [np.median(np.linalg.norm(tracks.face_landmarks[j, :N_MESH_LANDMARKS, :2] * scale - px, axis=1))
             / max(abs(t[j] - t[i]), MIN_SPEED_DT_S)
             for j in (i - 1, i + 1) if 0 <= j < tracks.n_frames and ok[j]]
        speed[k] = np.mean(d) / face_w if d else 0.0
    return speed


def _spread_over_time_and_pose(cand: np.ndarray, quality: np.ndarray, face_matrix: np.ndarray,
                               max_frames: int) -> np.ndarray:
    """Indices into cand: the best frame (by quality) of each of up to 2 * max_frames time
    segments, plus the best of each head-pose bin, at most 2 * max_frames of them."""
    n_max = CANDIDATES_PER_VIEW * max_frames
    n_seg = min(len(cand), n_max)
    chosen = set()
    for seg in np.array_split(np.arange(len(cand)), n_seg):
        if len(seg):
            chosen.add(int(seg[np.argmax(quality[seg])]))
    yp = np.array([head_yaw_pitch_deg(face_matrix[i]) for i in cand])
    bins = {}
    for k in range(len(cand)):
        key = (int(np.floor(yp[k, 0] / POSE_BIN_DEG)), int(np.floor(yp[k, 1] / POSE_BIN_DEG)))
        if key not in bins or quality[k] > quality[bins[key]]:
            bins[key] = k
    chosen |= set(bins.values())
    sel = np.array(sorted(chosen), int)
    if len(sel) > n_max:
        sel = sel[np.argsort(-quality[sel])[:n_max]]
    return sel


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
    speed = _landmark_speeds(tracks, idx, ok)
    neutral = expr <= NEUTRAL_SCORE
    still = speed <= MAX_SPEED_PER_S
    stats.update(rejected_expression_or_blink=int((~neutral).sum()),
                 rejected_motion=int((neutral & ~still).sum()))
    keep = neutral & still
    if keep.sum() < min_frames:        # relax: the most neutral, stillest frames of the take
        order = np.argsort(expr + RELAX_SPEED_WEIGHT * speed / MAX_SPEED_PER_S * SPEED_TO_SCORE)
        keep = np.zeros(len(idx), bool)
        keep[order[:max(min_frames, 1)]] = True
        stats["relaxed"] = True
    cand = idx[keep]
    quality = ((1 - QUALITY_EXPRESSION_WEIGHT * np.clip(expr[keep], 0, 1))
               / (1 + QUALITY_SPEED_WEIGHT * SPEED_TO_SCORE * speed[keep] / MAX_SPEED_PER_S))
    sel = _spread_over_time_and_pose(cand, quality, tracks.face_matrix, max_frames)
    return np.sort(cand[sel]), stats


def _pick_views(views: list[View], max_views: int) -> list[View]:
    """Among quality-weighted views, keep at most max_views, round-robin over head-pose bins so
    turned views (which see the sides of the face) are not crowded out by frontal ones."""
    if len(views) <= max_views:
        return views
    bins: dict = {}
    for v in views:
        yaw, pitch = head_yaw_pitch_deg(v.matrix)
        bins.setdefault((int(np.floor(yaw / PICK_YAW_BIN_DEG)), int(np.floor(pitch / PICK_PITCH_BIN_DEG))),
                        []).append(v)
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
# Reading views: crop, hands, photos
# ------------------------------------------------------------------------------------------------

def crop_view(v: View, margin: float = CROP_MARGIN) -> View:
    """The view cut down to its face box (grown by `margin`), landmarks re-normalised to the
    crop: what unwrapping needs, without holding whole frames (a 4K take's 80 candidates)."""
    h, w = v.image.shape[:2]
    px = landmark_pixels(v.landmarks, (w, h))[:N_MESH_LANDMARKS]
    lo, hi = px.min(0), px.max(0)
    pad = margin * float((hi - lo).max()) + CROP_PAD_PX
    x0, y0 = (int(max(np.floor(lo[0] - pad), 0)), int(max(np.floor(lo[1] - pad), 0)))
    x1, y1 = (int(min(np.ceil(hi[0] + pad), w)), int(min(np.ceil(hi[1] + pad), h)))
    if x1 - x0 < MIN_FACE_BOX_PX or y1 - y0 < MIN_FACE_BOX_PX:
        return v
    cw, ch = x1 - x0, y1 - y0
    lm = np.asarray(v.landmarks, np.float32).copy()
    lm[:, 0] = (lm[:, 0] * w - x0) / cw
    lm[:, 1] = (lm[:, 1] * h - y0) / ch
    lm[:, 2] = lm[:, 2] * w / cw                 # MediaPipe's z is in units of the image width
    return View(np.ascontiguousarray(v.image[y0:y1, x0:x1]), lm, v.matrix, v.blendshapes, v.weight,
                v.name, None if v.mask is None else np.ascontiguousarray(v.mask[y0:y1, x0:x1]))


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
        x0, y0, x1, y1 = _face_box(v.landmarks, w, h)
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


def _weigh_views(views: list[View], sharp: np.ndarray, covered: np.ndarray, stats: dict) -> list[View]:
    """Drop blurred views and those mostly hidden by hands (unless that leaves none); weight the
    rest by relative sharpness, neutrality and the hands' cover (sets v.weight)."""
    stats["hand_over_face"] = int((covered > 0).sum())
    stats["rejected_hand"] = int((covered > HAND_MAX_COVER).sum())
    med = float(np.median(sharp)) or 1.0
    rel = sharp / med
    keep = rel >= MIN_RELATIVE_SHARPNESS if (rel >= MIN_RELATIVE_SHARPNESS).sum() >= 1 else rel >= rel.max()
    stats["rejected_blur"] = int((~keep).sum())
    if (keep & (covered <= HAND_MAX_COVER)).any():
        keep &= covered <= HAND_MAX_COVER
    kept = []
    for v, r, k, c in zip(views, rel, keep, covered):
        if k:
            v.weight = float(np.clip(r, MIN_RELATIVE_SHARPNESS, MAX_SHARPNESS_CREDIT) / MAX_SHARPNESS_CREDIT
                             * (1 - EXPRESSION_PENALTY * min(expression_score(v.blendshapes), 1))
                             * (1 - HAND_PENALTY * c))
            kept.append(v)
    return kept


def views_from_take(tracks, frame_at, max_views: int = 40, log=None) -> tuple[list[View], dict]:
    """Read the selected frames of a take (hands masked, cropped to the face) and weight them
    by quality: frames blurrier than MIN_RELATIVE_SHARPNESS x the median sharpness of the
    candidates are dropped. frame_at(i) -> BGR frame i or None."""
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
    kept = _pick_views(_weigh_views(views, np.array(sharp), np.array(covered), stats), max_views)
    stats["views"] = len(kept)
    return kept, stats


def reference_views(tracks, frame_at, n: int = REFERENCE_VIEWS) -> list[View]:
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

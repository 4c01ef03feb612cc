"""Realistic occlusion masks over the face UV layout, for training and measuring texture completion.

A texel of a real take goes unseen because the head never turned that way (the far cheek, the
side of the nose and the area under the jaw of a turned head), because hair hangs over the
forehead or a cheek, or because a hand or an object was in front of the face. Each generator
returns an (R, R) bool mask, True = hidden, over the canonical face UV layout (v = 0 at the top,
the subject's right on the left):

* `pose_mask`: the texels a camera does *not* see well when the head is turned by (yaw, pitch,
  roll): the same visibility as the unwrap (normals against the view direction, a depth buffer
  for the nose and cheek occlusions), computed on the canonical face placed in MediaPipe's
  virtual camera and projected with it;
* `fringe_mask`: hair over the forehead, a wavy lower edge, sometimes parted or swept to one side;
* `side_hair_mask`: hair hanging down one side of the face;
* `hand_mask`: one or two blobs (hand, phone, cup) with irregular outlines;
* `random_mask(rng, R, kind=None)`: one of the above or a union of two, hiding 5-60 % of the face;
* `real_view_masks(items)`: the texels real unwrapped frames did not see (their visibility below
  SEEN_THRESHOLD), for `random_mask`'s bank.

Inputs are numpy random generators (every draw comes from the one given), the mask size R and
head angles in degrees. The texture GAN's training (`models.texture_training`) receives
`face_region(R)`, `random_mask` and the bank from here.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_space import MEDIAPIPE_VERTICAL_FOV_DEG
from pipeline.face.texture_blend import SEEN_THRESHOLD
from pipeline.face.texture_raster import face_region, texel_visibility, triangle_visibility, uv_raster

KINDS = ("side_view", "fringe", "side_hair", "hand", "mixed")
KIND_PROBABILITIES = (0.35, 0.15, 0.15, 0.15, 0.2)   # of each of KINDS in random_mask
MIN_HIDDEN_SHARE = 0.05       # random_mask hides at least this share of the face's texels
MAX_HIDDEN_SHARE = 0.6        # and at most this
MASK_ATTEMPTS = 20            # draws tried for a mask within those shares
SYNTHETIC_IMAGE_SIZE = (640, 480)   # the virtual camera's image (w, h), pixels
SYNTHETIC_DISTANCE_CM = 55.0        # the canonical face's distance from the virtual camera
POSE_HIDDEN_BELOW = 0.3       # pose_mask: texels seen less well than this are hidden


def synthetic_view(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0,
                   distance_cm: float = SYNTHETIC_DISTANCE_CM,
                   image_size=SYNTHETIC_IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(478, 3) normalised landmarks (iris rows copy the eye corners) and the (4, 4) face matrix of
    the canonical face turned by yaw (towards the subject's left), pitch (up) and roll, in front
    of MediaPipe's virtual camera."""
    r = Rotation.from_euler("yxz", [yaw_deg, -pitch_deg, roll_deg], degrees=True).as_matrix()
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = (0.0, 0.0, -distance_cm)
    v = load_canonical_face().vertices_m * 100.0
    cam = v @ r.T + m[:3, 3]
    w, h = image_size
    t = np.tan(np.radians(MEDIAPIPE_VERTICAL_FOV_DEG) / 2)
    x_ndc = cam[:, 0] / (-cam[:, 2] * t * (w / h))
    y_ndc = cam[:, 1] / (-cam[:, 2] * t)
    lm = np.zeros((478, 3), np.float32)
    lm[:468, 0] = (x_ndc + 1) / 2
    lm[:468, 1] = (1 - y_ndc) / 2
    lm[:468, 2] = (cam[:, 2] - cam[:, 2].mean()) / (w * 0.05)
    lm[468:] = lm[[33] * 5 + [263] * 5]
    return lm, m.astype(np.float32)


def pose_visibility(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0, size: int = 256) -> np.ndarray:
    """(size, size) float32 texel visibility of the canonical face in that head pose."""
    lm, m = synthetic_view(yaw_deg, pitch_deg, roll_deg)
    tv = triangle_visibility(lm, m, SYNTHETIC_IMAGE_SIZE)
    return texel_visibility(tv, uv_raster(size))


def pose_mask(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0, size: int = 256,
              threshold: float = POSE_HIDDEN_BELOW) -> np.ndarray:
    """(size, size) bool: the face texels seen less well than threshold in that head pose."""
    return face_region(size) & (pose_visibility(yaw_deg, pitch_deg, roll_deg, size) < threshold)


def _noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Smooth 1-D noise of n samples with features about `scale` samples wide, std ~1."""
    k = max(2, int(n / max(scale, 1)) + 2)
    x = np.interp(np.arange(n), np.linspace(0, n - 1, k), rng.normal(size=k))
    return cv2.GaussianBlur(x.reshape(1, -1).astype(np.float32), (0, 0), max(scale / 4, 1)).ravel()


def fringe_mask(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Hair over the forehead: hidden above a wavy edge between the hairline and the brows."""
    u = np.arange(size)
    depth = rng.uniform(0.17, 0.36)                         # v of the edge's mean
    tilt = rng.uniform(-0.12, 0.12)                         # swept to one side
    edge = depth + tilt * (u / size - 0.5) + 0.025 * _noise(rng, size, size / 6)
    if rng.random() < 0.35:                                 # parted: a gap somewhere
        c = rng.uniform(0.3, 0.7) * size
        edge -= 0.12 * np.exp(-((u - c) / (0.06 * size)) ** 2)
    hidden = np.arange(size)[:, None] < (edge * size)[None, :]
    return hidden & face_region(size)


def side_hair_mask(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Hair hanging down one side of the face from the temple."""
    v = np.arange(size)
    width = rng.uniform(0.12, 0.3) * (1 - 0.5 * np.clip((v / size - 0.2) / 0.8, 0, 1))
    edge = width + 0.02 * _noise(rng, size, size / 5)
    start = rng.uniform(0.0, 0.25)
    hidden = (np.arange(size)[None, :] < (edge * size)[:, None]) & (v[:, None] > start * size)
    if rng.random() < 0.5:
        hidden = hidden[:, ::-1]
    return hidden & face_region(size)


def hand_mask(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """One or two irregular blobs, 8-25 % of the texture wide, somewhere on the lower 3/4 of the
    face (a hand on the cheek or chin, a phone, a cup)."""
    img = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 3)):
        c = np.array([rng.uniform(0.15, 0.85), rng.uniform(0.35, 0.9)]) * size
        r = rng.uniform(0.08, 0.25) * size / 2
        ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        rad = r * (1 + 0.25 * _noise(rng, 48, 8)) * ((1 + rng.uniform(0.6, 1.6)) / 2)
        aspect = rng.uniform(0.6, 1.7)
        rot = rng.uniform(0, np.pi)
        x, y = rad * np.cos(ang) * aspect, rad * np.sin(ang)
        pts = np.stack([c[0] + x * np.cos(rot) - y * np.sin(rot),
                        c[1] + x * np.sin(rot) + y * np.cos(rot)], 1)
        cv2.fillPoly(img, [np.round(pts).astype(np.int32)], 1)
        if rng.random() < 0.5:                              # an arm/finger leaving the blob
            end = c + rng.normal(size=2) * size * 0.3
            cv2.line(img, tuple(int(a) for a in c), tuple(int(a) for a in end), 1,
                     max(2, int(r * rng.uniform(0.4, 0.8))))
    return img.astype(bool) & face_region(size)


def side_view_mask(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A single turned view: yaw 20-55 degrees either way, pitch and roll small."""
    yaw = rng.uniform(20, 55) * rng.choice([-1, 1])
    return pose_mask(yaw, rng.uniform(-20, 20), rng.uniform(-10, 10), size)


def random_mask(rng: np.random.Generator, size: int = 256, kind: str | None = None,
                bank: list[np.ndarray] | None = None, min_frac: float = MIN_HIDDEN_SHARE,
                max_frac: float = MAX_HIDDEN_SHARE) -> np.ndarray:
    """A realistic occlusion (True = hidden) hiding min_frac..max_frac of the face. `bank`: extra
    real visibility masks (e.g. turned frames of real takes), used for some side views."""
    face = face_region(size)
    gens = {"side_view": side_view_mask, "fringe": fringe_mask, "side_hair": side_hair_mask,
            "hand": hand_mask}
    for _ in range(MASK_ATTEMPTS):
        k = kind or rng.choice(KINDS, p=list(KIND_PROBABILITIES))
        if k == "side_view" and bank and rng.random() < 0.5:
            m = bank[rng.integers(len(bank))] & face
        elif k == "mixed":
            a, b = rng.choice(list(gens), 2, replace=False)
            m = gens[a](rng, size) | gens[b](rng, size)
        else:
            m = gens[k](rng, size)
        frac = m[face].mean()
        if min_frac <= frac <= max_frac:
            return m
    return m


def real_view_masks(items) -> list[np.ndarray]:
    """The (R, R) bool texels each unwrapped texture's views did not see (visibility below
    SEEN_THRESHOLD) inside the face, for the items (with .texture (R, R, 3) and .visibility
    (R, R); others are skipped) whose hidden share lies within MIN_HIDDEN_SHARE..MAX_HIDDEN_SHARE:
    real turned-view occlusions for `random_mask`'s bank."""
    bank = []
    for it in items:
        vis = getattr(it, "visibility", None)
        if vis is None:
            continue
        region = face_region(it.texture.shape[0])
        hidden = region & (vis < SEEN_THRESHOLD)
        if MIN_HIDDEN_SHARE <= hidden[region].mean() <= MAX_HIDDEN_SHARE:
            bank.append(hidden)
    return bank

"""The body's colours from the take's frames: skin, upper garment, lower garment, shoes, and whether
the sleeves and trouser legs are short (the forearms and shins show skin).

Input: one or more views [(tracks, frame_at)], each a camera's `Tracks` (its pose image
landmarks, normalised x right, y down; face landmarks) and `frame_at(i)` -> frame i (BGR uint8) or
None. Output: `BodyColours` (linear RGBA in [0, 1] per region, pipeline.body.mesh), with the
defaults for any region no frame shows, and the share of sampled frames each region was seen in.

How: in up to SAMPLE_FRAMES frames spread over the take, pixels are read at points inside each
body part, placed from the pose's image landmarks where both ends of the part are visible and in
the frame: along the middle of the upper arms, forearms, thighs and shins, on a grid inside the
torso (shoulders to hips; below the shoulders only, when the hips are out of view), on the feet
between heel and toes, and the skin on the cheeks of the tracked face and
on the backs of the hands; for a desk webcam whose shoulders are below the frame, the chest and
shoulders below the face, and when even those are out of the frame (a close-up) the pixels of
MediaPipe's person mask below the chin and beside the neck. Each point is the median of
a small patch; each region's colour is the per-channel median of its points over all frames (a
person's clothes keep their colour through a take; the median ignores the samples that fell on
an arm crossing the torso or the background). A forearm (shin) closer to the skin's colour than to
the upper (lower) garment's, in CIEDE2000, means short sleeves (short trousers).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.body.mesh import BodyColours
from pipeline.body.silhouette import subject_mask
from pipeline.core.colour import ciede2000, linear_to_lab, srgb_to_linear
from pipeline.core.tracks import POSE, Tracks

SAMPLE_FRAMES = 24          # frames read per view
MIN_VISIBILITY = 0.6        # both ends of a part at least this visible
EDGE_MARGIN = 0.02          # points this close to the frame's edge (fraction of its size) are not read
PATCH_RADIUS_PX = 2         # a point reads the median of a (2r + 1)^2 patch
LIMB_FRACTIONS = (0.35, 0.5, 0.65)    # points along a limb segment, from its root joint
TORSO_ACROSS = (0.3, 0.5, 0.7)        # torso grid: shoulder-to-shoulder fraction
TORSO_DOWN = (0.2, 0.4, 0.6)          # and shoulders-to-hips fraction
TORSO_DOWN_NO_HIPS = (0.25, 0.5)      # without hips: shoulder widths below the shoulder line
FOOT_FRACTIONS = (0.4, 0.6)           # heel to toe tip
HAND_FRACTIONS = (0.5,)               # wrist to index knuckle: the back of the hand (skin)
CHEEKS = (50, 280, 101, 330, 205, 425)  # face mesh points on the cheeks (skin, rarely hair)
CHIN = 152                  # face mesh point at the bottom of the chin
# Below the face, as (across, down) fractions of the face's width and height from the chin: the
# shoulders beside the neck and the middle of the chest.
BELOW_FACE = ((-0.8, 0.35), (0.8, 0.35), (-0.6, 0.5), (0.6, 0.5), (0.0, 0.7))
MIN_POINTS = 9              # a region needs this many points over the take to be coloured
MASK_FRAME_STEP = 4         # the person-mask fallback looks at every 4th sampled frame
MASK_BELOW_CHIN = 0.0       # its pixels start this far below the chin (fraction of the face height)
MASK_BESIDE_NECK = 0.4      # and this far to either side of it (fraction of the face width)
MIN_MASK_PIXELS = 50

_SIDES = tuple((side, *(POSE[f"{side}_{k}"] for k in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle",
                                                      "heel", "foot_index", "index")))
               for side in ("left", "right"))
REGIONS = ("skin", "upper", "forearm", "lower", "shin", "shoes")


@dataclass
class SampledColours:
    """The colours found (`colours`) and, per region, how many samples were read (`points`: patches
    at landmark-placed points; for a close-up's upper garment, person-mask pixels)."""

    colours: BodyColours
    points: dict = field(default_factory=dict)
    short_sleeves: bool = False
    short_legs: bool = False

    def summary(self) -> dict:
        """For the manifest: each region's colour as sRGB hex (None: not seen) and its points."""
        def hexed(name):
            rgba = getattr(self.colours, name, None)
            return None if rgba is None or self.points.get(name, 0) < MIN_POINTS else _hex(rgba)
        return {"regions": {r: hexed(r) for r in ("skin", "upper", "lower", "shoes")},
                "points": self.points, "short_sleeves": self.short_sleeves, "short_legs": self.short_legs}


def _hex(rgba) -> str:
    srgb = np.clip(np.asarray(rgba[:3]), 0, 1) ** (1 / 2.4)  # close enough for a label
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in srgb)


def _seen(tracks: Tracks, i: int, *points: int) -> bool:
    return bool(np.all(tracks.pose_visibility[i, list(points)] >= MIN_VISIBILITY))


def _along(a: np.ndarray, b: np.ndarray, fractions) -> list[np.ndarray]:
    return [a + t * (b - a) for t in fractions]


def _torso_points(tracks: Tracks, i: int, px: np.ndarray) -> list[np.ndarray]:
    """Grid points inside the torso (pixels) of frame i, or [] when the shoulders are not seen."""
    ls, rs, lh, rh = (POSE[k] for k in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    if not _seen(tracks, i, ls, rs):
        return []
    if _seen(tracks, i, lh, rh):
        tops, bottoms = _along(px[rs], px[ls], TORSO_ACROSS), _along(px[rh], px[lh], TORSO_ACROSS)
        return [p for top, bottom in zip(tops, bottoms) for p in _along(top, bottom, TORSO_DOWN)]
    across = px[ls] - px[rs]
    down = np.array([-across[1], across[0]])  # the shoulder line turned 90 degrees, toward the hips
    down = down if down[1] > 0 else -down
    return [px[rs] + u * across + v * down for u in TORSO_ACROSS for v in TORSO_DOWN_NO_HIPS]


def _chin_and_face_size(tracks: Tracks, i: int, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the chin (2,), the face landmarks' width and height (2,)), pixels, of frame i."""
    face = tracks.face_landmarks[i, :, :2] * size
    return face[CHIN], face.max(0) - face.min(0)


def _below_face_points(tracks: Tracks, i: int, size: np.ndarray) -> list[np.ndarray]:
    """Points on the chest and shoulders placed from the face (pixels): the upper garment of a
    desk webcam take, whose shoulder landmarks are below the frame."""
    if not tracks.face_valid[i]:
        return []
    chin, face_size = _chin_and_face_size(tracks, i, size)
    return [chin + np.array([dx, dy]) * face_size for dx, dy in BELOW_FACE]


def _frame_points(tracks: Tracks, i: int) -> dict[str, list[np.ndarray]]:
    """Image points (pixels) of each region in frame i that are inside the frame."""
    size = np.asarray(tracks.image_size, np.float64)
    px = tracks.pose_image[i, :, :2] * size
    pts = {r: [] for r in REGIONS}
    pts["upper"] += _torso_points(tracks, i, px) + _below_face_points(tracks, i, size)
    for _, sh, el, wr, hip, kn, an, heel, toe, index in _SIDES:
        for region, a, b, fr in (("upper", sh, el, LIMB_FRACTIONS), ("forearm", el, wr, LIMB_FRACTIONS),
                                 ("lower", hip, kn, LIMB_FRACTIONS), ("shin", kn, an, LIMB_FRACTIONS),
                                 ("shoes", heel, toe, FOOT_FRACTIONS), ("skin", wr, index, HAND_FRACTIONS)):
            if _seen(tracks, i, a, b):
                pts[region] += _along(px[a], px[b], fr)
    if tracks.face_valid[i]:
        pts["skin"] += list(tracks.face_landmarks[i, list(CHEEKS), :2] * size)
    lo, hi = EDGE_MARGIN * size, (1 - EDGE_MARGIN) * size
    return {r: [p for p in v if np.all((p > lo) & (p < hi))] for r, v in pts.items()}


def _read(frame: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    """Linear RGB (P, 3) of image points (pixels): each the median of its patch."""
    out = []
    for x, y in points:
        cx, cy = int(round(x)), int(round(y))
        patch = frame[max(cy - PATCH_RADIUS_PX, 0):cy + PATCH_RADIUS_PX + 1,
                      max(cx - PATCH_RADIUS_PX, 0):cx + PATCH_RADIUS_PX + 1]
        if patch.size:
            out.append(np.median(patch.reshape(-1, 3), axis=0)[::-1] / 255.0)  # BGR -> RGB
    return srgb_to_linear(np.array(out)) if out else np.zeros((0, 3))


def _view_samples(tracks: Tracks, frame_at, samples: dict[str, list]) -> None:
    """Add the linear RGB samples of one view's frames to `samples` (region -> list of (P, 3))."""
    frames = np.flatnonzero(tracks.pose_valid | tracks.face_valid)
    if len(frames) == 0:
        return
    upper_before = sum(len(x) for x in samples["upper"])
    chosen = frames[np.linspace(0, len(frames) - 1, min(SAMPLE_FRAMES, len(frames))).round().astype(int)]
    for i in chosen:
        frame = frame_at(int(i))
        if frame is None:
            continue
        for region, pts in _frame_points(tracks, int(i)).items():
            if pts:
                samples[region].append(_read(frame, pts))
    if sum(len(x) for x in samples["upper"]) - upper_before < MIN_POINTS:
        _below_face_mask_samples(tracks, frame_at, chosen[::MASK_FRAME_STEP], samples["upper"])


def _below_face_mask_samples(tracks: Tracks, frame_at, frames: np.ndarray, out: list) -> None:
    """Add the frames' person pixels below the face and beside the neck to `out` (linear RGB,
    (P, 3) per frame): the garment of a close-up whose landmarks place no point on it."""
    size = np.asarray(tracks.image_size, np.float64)
    for i in frames:
        frame = frame_at(int(i)) if tracks.face_valid[i] else None
        mask = None if frame is None else subject_mask(frame, tracks, int(i))
        if mask is None:
            continue
        chin, (face_w, face_h) = _chin_and_face_size(tracks, int(i), size)
        ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
        below = (ys > chin[1] + MASK_BELOW_CHIN * face_h) & (np.abs(xs - chin[0]) > MASK_BESIDE_NECK * face_w)
        pixels = frame[mask & below]
        if len(pixels) >= MIN_MASK_PIXELS:
            out.append(srgb_to_linear(pixels[:, ::-1] / 255.0))  # BGR -> RGB


def _closer_to_skin(part, skin, garment) -> bool:
    lab = linear_to_lab(np.array([part, skin, garment]))
    return bool(ciede2000(lab[0], lab[1]) < ciede2000(lab[0], lab[2]))


def sample_body_colours(views: list[tuple[Tracks, object]]) -> SampledColours:
    """The body's colours seen in the views' frames (see the module docstring)."""
    samples: dict[str, list] = {r: [] for r in REGIONS}
    for tracks, frame_at in views:
        _view_samples(tracks, frame_at, samples)
    points = {r: int(sum(len(s) for s in samples[r])) for r in REGIONS}
    median = {r: np.median(np.concatenate(samples[r]), axis=0) for r in REGIONS if points[r] >= MIN_POINTS}
    default = BodyColours()
    rgb = {r: median.get(r, np.asarray(getattr(default, r))[:3]) for r in ("skin", "upper", "lower", "shoes")}
    seen = "skin" in median
    short_sleeves = seen and "forearm" in median and _closer_to_skin(median["forearm"], rgb["skin"], rgb["upper"])
    short_legs = seen and "shin" in median and _closer_to_skin(median["shin"], rgb["skin"], rgb["lower"])
    colours = BodyColours(*(tuple(np.r_[rgb[r], 1.0]) for r in ("skin", "upper", "lower", "shoes")),
                          short_sleeves=short_sleeves, short_legs=short_legs)
    return SampledColours(colours, points, short_sleeves, short_legs)

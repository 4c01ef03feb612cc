"""The hair style and colour from the frames: which of MakeHuman's styles (or none) makes the
avatar's head cover the person's head as MediaPipe's person mask does, and the colour of the hair
pixels.

Inputs: a single camera's `Tracks` and `frame_at`, the `Skeleton` and `BodyMotion`, the head (its
`HeadMesh` and its `SkinnedMesh`) and the body's and clothes' meshes. Output: `HairFit`: the
style (None: bald), its `Hair` (pipeline.face.hair), the colour (linear RGB), and per candidate
the mean head-and-hair IoU.

How, in up to FIT_FRAMES frames (`pipeline.body.silhouette`: camera posed by the avatar's own
joints and face points, the person mask of the pose landmarker, the head's area: its silhouette
grown by a quarter of its size):
  1. Each candidate (bald, then STYLES) is drawn with the head and the body; its IoU against the
     mask inside the head's area. The best style wins; bald only when it beats every style.
  2. The colour: pixels of the person mask (eroded by EDGE_PX, away from the background) where
     the chosen hair is the nearest surface, median over all sampled frames (linear RGB); per
     frame, CIEDE2000 between that colour and the frame's own median there is reported.
With no comparable frame (no mask, no camera, several cameras) the hair is not seen: the neutral
short style in a neutral brown, said in `HairFit.seen`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from pipeline.body.silhouette import frame_views, iou, label_image, pose_meshes, sample_frames, silhouette
from pipeline.body.skeleton import Skeleton
from pipeline.body.solve import BodyMotion
from pipeline.core.colour import ciede2000, linear_to_lab, srgb_to_linear
from pipeline.core.mesh import SkinnedMesh
from pipeline.core.tracks import Tracks
from pipeline.face.hair import NEUTRAL_STYLE, STYLES, Hair, fit_hair, hm08_to_head, strand_texture
from pipeline.face.head_mesh import HeadMesh

FIT_FRAMES = 6
FIT_SHIFT = 0.25               # another grid than the girth's and the reported frames'
EDGE_PX = 2                    # the mask's edge pixels mix in the background
MIN_HAIR_PX = 30               # a frame needs this many hair pixels to tell the colour
NEUTRAL_BROWN = (0.06, 0.035, 0.02)  # linear RGB of hair never seen
DRAW_COLOUR = (0.1, 0.1, 0.1)  # candidates are drawn in this colour (only their shape counts)
HAIR_LABEL, OTHER_LABEL = 1, 0


@dataclass
class HairFit:
    """The chosen style (None: bald), its hair on the head, colour (linear RGB), whether the
    hair was seen, each candidate's mean IoU ("bald" or the style), the frames used, and the
    per-frame CIEDE2000 of the colour against the frame's hair pixels."""

    style: str | None
    hair: Hair | None
    colour: tuple
    seen: bool
    candidates: dict = field(default_factory=dict)
    frames: list = field(default_factory=list)
    delta_e: list = field(default_factory=list)

    def summary(self) -> dict:
        return {"style": self.style or "bald", "seen": self.seen,
                "colour_linear_rgb": [round(float(c), 4) for c in self.colour],
                "head_and_hair_iou_by_candidate": self.candidates, "frames": self.frames,
                "colour_delta_e_by_frame": [round(d, 2) for d in self.delta_e],
                **({} if self.seen else {"note": f"hair never seen: the neutral {NEUTRAL_STYLE} style"})}


def hair_part(hair: Hair, skel: Skeleton) -> SkinnedMesh:
    """The hair in model space, following the head joint alone (rigid with the skull); its
    strand texture's alpha cuts the cards out."""
    n = len(hair.positions_m)
    joints = np.zeros((n, 4), np.uint16)
    joints[:, 0] = skel.index("head")
    weights = np.zeros((n, 4), np.float32)
    weights[:, 0] = 1.0
    return SkinnedMesh(name="Hair", positions=(hair.positions_m + skel.head_space_origin_m).astype(np.float32),
                       normals=hair.normals, triangles=hair.triangles, joints=joints, weights=weights,
                       uv=hair.uv, texture=hair.texture)


def _labels(view, frame, skel, motion, meshes: list[SkinnedMesh], hair: SkinnedMesh | None) -> np.ndarray:
    """Label image: -1 background, OTHER_LABEL the avatar, HAIR_LABEL the hair where nearest (right
    inside the head's area, the only place the hair is looked for)."""
    parts = meshes + ([hair] if hair is not None else [])
    posed, _ = pose_meshes(skel, motion, view.k, parts)
    offsets = np.cumsum([0] + [len(p) for p in posed])
    tris = [m.triangles.astype(np.int64) + o for m, o in zip(parts, offsets)]
    if hair is not None:  # cards: both sides
        tris.append(hair.triangles.astype(np.int64)[:, ::-1] + offsets[-2])
    label = np.full(offsets[-1], OTHER_LABEL)
    if hair is not None:
        label[offsets[-2]:] = HAIR_LABEL
    return label_image(np.vstack(posed), np.vstack(tris), label, view.camera, frame.shape[:2], view.head_area)


def _drawn(view, frame, skel, motion, mesh: SkinnedMesh, both_sides: bool = False) -> np.ndarray:
    """(H, W) bool: the mesh posed at the view's frame, filled (cards: both sides)."""
    (posed,), _ = pose_meshes(skel, motion, view.k, [mesh])
    tris = mesh.triangles.astype(np.int64)
    if both_sides:
        tris = np.vstack([tris, tris[:, ::-1]])
    return silhouette(posed, tris, view.camera, frame.shape[:2])


def head_ious(views, skel, motion, meshes, styles: dict) -> tuple[float, dict]:
    """(bald's mean IoU, {style: mean IoU}) of the avatar with each hair inside the head's area;
    the avatar without hair is drawn once per frame."""
    bald, scores = [], {s: [] for s in styles}
    for frame, view in views:
        base = np.logical_or.reduce([_drawn(view, frame, skel, motion, m) for m in meshes])
        bald.append(iou(base, view.person, view.head_area))
        for s, hair in styles.items():
            drawn = base | _drawn(view, frame, skel, motion, hair, both_sides=True)
            scores[s].append(iou(drawn, view.person, view.head_area))
    return float(np.mean(bald)), {s: float(np.mean(v)) for s, v in scores.items()}


def hair_pixels(view, frame, skel, motion, meshes, hair: SkinnedMesh) -> np.ndarray | None:
    """(P, 3) linear RGB of the person's pixels (the mask eroded by EDGE_PX) where the hair is the
    nearest surface of the avatar; None when fewer than MIN_HAIR_PX."""
    person = cv2.erode(view.person.astype(np.uint8), np.ones((2 * EDGE_PX + 1,) * 2, np.uint8)) > 0
    m = person & view.head_area & (_labels(view, frame, skel, motion, meshes, hair) == HAIR_LABEL)
    return srgb_to_linear(frame[m][:, ::-1] / 255.0) if m.sum() >= MIN_HAIR_PX else None


def hair_colour(views, skel, motion, meshes, hair: SkinnedMesh) -> tuple[tuple, list[float]]:
    """(median linear RGB of the hair pixels over the frames, per-frame CIEDE2000 against it)."""
    per_frame = [p for f, v in views if (p := hair_pixels(v, f, skel, motion, meshes, hair)) is not None]
    if not per_frame:
        return NEUTRAL_BROWN, []
    colour = np.median(np.vstack(per_frame), axis=0)
    lab = linear_to_lab(colour)
    return tuple(colour), [float(ciede2000(linear_to_lab(np.median(p, axis=0)), lab)) for p in per_frame]


def fit_hair_to_frames(tracks: Tracks, frame_at, skel: Skeleton, motion: BodyMotion, head: HeadMesh,
                       head_sk: SkinnedMesh, body_meshes: list[SkinnedMesh]) -> HairFit:
    """The style and colour the frames show (see the module docstring)."""
    views = frame_views(tracks, frame_at, skel, motion, head_sk, sample_frames(tracks, motion, FIT_FRAMES, FIT_SHIFT))
    if not views:
        return not_seen(head)
    meshes = [*body_meshes, head_sk]
    to_head = hm08_to_head(head)  # one skull fit for every style
    hairs = {s: fit_hair(head, s, DRAW_COLOUR, to_head) for s in STYLES}
    styles = {s: hair_part(h, skel) for s, h in hairs.items()}
    bald, scores = head_ious(views, skel, motion, meshes, styles)
    best = max(scores, key=scores.get)
    candidates = {"bald": round(bald, 4), **{s: round(v, 4) for s, v in scores.items()}}
    frames = [v.k for _, v in views]
    if bald > scores[best]:
        return HairFit(None, None, NEUTRAL_BROWN, True, candidates, frames)
    colour, delta_e = hair_colour(views, skel, motion, meshes, styles[best])
    return HairFit(best, replace(hairs[best], texture=strand_texture(colour)), colour, True, candidates, frames,
                   delta_e)


def not_seen(head: HeadMesh) -> HairFit:
    """The hair of a take whose frames cannot show it: the neutral style in a neutral brown."""
    return HairFit(NEUTRAL_STYLE, fit_hair(head, NEUTRAL_STYLE, NEUTRAL_BROWN), NEUTRAL_BROWN, False)

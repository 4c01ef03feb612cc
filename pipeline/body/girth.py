"""The body's build from the person's silhouette: Anny's weight, muscle and sex (gender) phenotypes
chosen so the avatar covers the person as MediaPipe's person mask does.

Inputs: a single camera's `Tracks` and `frame_at`, the `Skeleton`, its `BodyMotion`, the head as a
`SkinnedMesh` (its face points place the camera with the joints) and the `BodyShape` fitted to
the skeleton (lengths). Output: `GirthFit`: the shape with the chosen weight, muscle and sex, and
the mean body IoU (outside the head's area: hair is not the body's) of every candidate.

How: in up to FIT_FRAMES frames (another set than the ones `pipeline.body.silhouette.compare_take`
reports on, so the reported IoU is not the fitted one), each candidate body is posed, drawn
through the frame's camera (posed by the skeleton's joints, the same for every candidate) and
compared with the mask; the candidate with the best mean IoU wins, the average body
(AVERAGE_GIRTH) on a tie within IOU_TIE, or when the torso (shoulders and hips) is seen in fewer
than MIN_TORSO_SEEN of the frames. Then, at that girth, the sexes of GENDERS are compared the
same way (a woman's chest, waist and hips against a man's broader shoulders); the androgynous
middle stays on a tie. Frames of several cameras are not fitted (their tracks
are fused; each camera's own would need its own motion): the average girth is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.body.mesh import BodyShape, build_body_mesh
from pipeline.body.silhouette import frame_views, iou, pose_meshes, sample_frames, silhouette
from pipeline.body.skeleton import Skeleton
from pipeline.body.solve import BodyMotion
from pipeline.core.mesh import SkinnedMesh
from pipeline.core.tracks import POSE, Tracks

FIT_FRAMES = 6
FIT_SHIFT = 0.5               # half a step off the reported frames' grid
WEIGHTS = (0.3, 0.5, 0.7, 0.9)  # Anny's weight phenotype (0 thin, 1 heavy)
MUSCLES = (0.2, 0.5)            # and muscle (0 soft, 1 muscular; more is rarely what a mask says)
AVERAGE_GIRTH = (0.5, 0.5)
GENDERS = (0.0, 1.0)            # Anny's gender phenotype: 0 female, 1 male (0.5, the default, in between)
IOU_TIE = 0.005
MIN_TORSO_SEEN = 0.2          # share of frames with shoulders and hips seen for the silhouette to tell girth
SEEN_VISIBILITY = 0.6


@dataclass
class GirthFit:
    """The shape chosen, the frames used and each candidate's mean body IoU ("weight/muscle")."""

    shape: BodyShape
    frames: list = field(default_factory=list)
    candidates: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"weight": self.shape.phenotype["weight"], "muscle": self.shape.phenotype["muscle"],
                "gender": self.shape.phenotype["gender"],
                "frames": self.frames, "body_iou_by_candidate": self.candidates}


def _with_girth(shape: BodyShape, weight: float, muscle: float) -> BodyShape:
    return replace(shape, phenotype=dict(shape.phenotype, weight=weight, muscle=muscle))


def _with_gender(shape: BodyShape, gender: float) -> BodyShape:
    return replace(shape, phenotype=dict(shape.phenotype, gender=gender))


def _body_iou(skel: Skeleton, motion: BodyMotion, views: list, shape: BodyShape) -> float:
    """Mean IoU, outside the head's area, of the body of `shape` drawn in each view against its mask."""
    mesh = build_body_mesh(skel, None, shape)
    per_frame = []
    for frame, view in views:
        (posed,), _ = pose_meshes(skel, motion, view.k, [mesh])
        drawn = silhouette(posed, mesh.triangles, view.camera, frame.shape[:2])
        per_frame.append(iou(drawn, view.person, ~view.head_area))
    return float(np.mean(per_frame))


def _best(scores: dict, default):
    """The key of the best score; `default` unless it is beaten by more than IOU_TIE."""
    best = max(scores, key=scores.get)
    return default if scores[best] - scores.get(default, -1.0) < IOU_TIE else best


def torso_seen_share(tracks: Tracks) -> float:
    """Share of the take's frames whose shoulders and hips are all seen (visibility)."""
    torso = [POSE[k] for k in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    seen = tracks.pose_valid & np.all(tracks.pose_visibility[:, torso] >= SEEN_VISIBILITY, axis=1)
    return float(seen.mean()) if len(seen) else 0.0


def fit_girth(tracks: Tracks, frame_at, skel: Skeleton, motion: BodyMotion, head: SkinnedMesh,
              shape: BodyShape) -> GirthFit:
    """The weight and muscle whose body best covers the person (see the module docstring); the
    average girth when the torso is seen in fewer than MIN_TORSO_SEEN of the frames (a face or a
    desk webcam: the silhouette shows too little of the body to tell)."""
    if torso_seen_share(tracks) < MIN_TORSO_SEEN:
        return GirthFit(_with_girth(shape, *AVERAGE_GIRTH))
    views = frame_views(tracks, frame_at, skel, motion, head, sample_frames(tracks, motion, FIT_FRAMES, FIT_SHIFT))
    if not views:
        return GirthFit(_with_girth(shape, *AVERAGE_GIRTH))
    scores = {(w, m): _body_iou(skel, motion, views, _with_girth(shape, w, m)) for w in WEIGHTS for m in MUSCLES}
    chosen = _best(scores, AVERAGE_GIRTH)
    girth = _with_girth(shape, *chosen)
    middle = girth.phenotype["gender"]
    by_sex = {middle: scores[chosen]}
    by_sex.update({g: _body_iou(skel, motion, views, _with_gender(girth, g)) for g in GENDERS})
    candidates = {f"{w}/{m}": round(v, 4) for (w, m), v in scores.items()}
    candidates.update({f"gender {g}": round(v, 4) for g, v in by_sex.items()})
    return GirthFit(_with_gender(girth, _best(by_sex, middle)), [v.k for _, v in views], candidates)

"""How well the avatar covers the person in the frames: silhouette IoU against MediaPipe's person
mask, and the colour difference (CIEDE2000) per region between the avatar and the frame.

Inputs: a single camera's `Tracks` (pose image landmarks and visibility, face landmarks) and
`frame_at(i)` -> frame i (BGR) or None; the `Skeleton`, its `BodyMotion`, the head `SkinnedMesh`
(its rows 0..467 are the face landmarks) and the body's and the clothes' meshes, each with its
vertices' regions (`pipeline.body.mesh.body_regions`, `pipeline.body.clothes.Garment.region`).
Output: `SilhouetteReport` (per sampled frame: IoU, and per region the CIEDE2000 between the
avatar's colour and the median frame colour).

How, in up to SAMPLE_FRAMES frames spread over those where the body is tracked:
  1. The avatar posed by the motion (glTF model space, metres; the hips at the motion's root).
  2. The camera: a pinhole of the take's assumed focal length (`image_lift.focal_px`), principal
     point at the image centre, posed by PnP on the avatar's joints matched to the pose's image
     landmarks (shoulders, elbows, wrists, hips, knees, ankles; visible and in the frame) and its
     face points to the tracked face landmarks: the avatar is placed by its own skeleton, never by
     its silhouette, so a wrong build or pose shows in the IoU.
  3. The reference: the segmentation mask of MediaPipe's pose landmarker (IMAGE mode, its own
     detection, a different output than the landmarks the avatar was solved from) in a square
     crop around the subject (small people are found too) for the person whose landmarks lie
     nearest the tracked subject's; person where the mask exceeds MASK_LEVEL.
  4. IoU of the rendered avatar (every triangle filled) and the mask, inside the frame.
  5. Colour: the avatar drawn with its region labels (far to near); for each region of the body,
     the median frame colour over the pixels that are both that region and the person, against
     the region's vertex colour (the head, textured from the frames, is not a region here).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.body.image_lift import focal_px
from pipeline.body.kinematics import joint_world_matrices, skin
from pipeline.body.mesh import REGIONS
from pipeline.body.skeleton import Skeleton
from pipeline.body.solve import BodyMotion
from pipeline.core.colour import ciede2000, linear_to_lab, srgb_to_linear
from pipeline.core.mesh import SkinnedMesh
from pipeline.core.tracks import POSE, Tracks
from pipeline.tracking.mediapipe_tasks import person_masks

SAMPLE_FRAMES = 16
MASK_LEVEL = 0.5             # person probability above which a pixel is the person's
MIN_VISIBILITY = 0.6         # landmarks used for the camera
MIN_POINTS = 6               # PnP needs at least this many correspondences
FACE_POINTS = tuple(range(0, 468, 12))  # face mesh points given to PnP (spread over the face)
MIN_REGION_PX = 50           # a region needs this many pixels in a frame to be compared
MAX_SUBJECT_DISTANCE = 0.1   # fraction of the crop: mask landmarks this far from the subject's are someone else
HEAD_MARGIN = 0.25           # the head's area: its silhouette grown by this fraction of its size
NEAR_M = 0.05                # triangles nearer the camera than this (or behind it) are not drawn
MAX_DRAW_PX = 1e5            # projected points beyond this (behind or beside the camera) are not drawn
CROP_SCALE = 1.5             # the mask is found in a square crop this much larger than the subject
MIN_CROP_PX = 256
JOINT_LANDMARKS = {"leftUpperArm": "left_shoulder", "rightUpperArm": "right_shoulder",
                   "leftLowerArm": "left_elbow", "rightLowerArm": "right_elbow",
                   "leftHand": "left_wrist", "rightHand": "right_wrist",
                   "leftUpperLeg": "left_hip", "rightUpperLeg": "right_hip",
                   "leftLowerLeg": "left_knee", "rightLowerLeg": "right_knee",
                   "leftFoot": "left_ankle", "rightFoot": "right_ankle"}
# MediaPipe pose landmarks on the face (nose, left eye inner and outer corners, right eye inner
# and outer corners, mouth left and right) and the face mesh point (a head vertex) at the same place.
POSE_FACE_POINTS = {0: 1, 1: 362, 3: 263, 4: 133, 6: 33, 9: 291, 10: 61}
HEAD_LABEL = len(REGIONS)    # the head: in the silhouette, not in the regions' colours (its texture's)


@dataclass
class SilhouetteReport:
    """frames: the frame indices compared; iou: (F,) IoU per frame; body_iou: (F,) IoU outside the
    area around the head (FrameView.head_area); delta_e: region -> (F,) CIEDE2000 (NaN where the
    region was not seen in that frame)."""

    frames: list = field(default_factory=list)
    iou: list = field(default_factory=list)
    body_iou: list = field(default_factory=list)
    delta_e: dict = field(default_factory=lambda: {r: [] for r in REGIONS})

    def summary(self) -> dict:
        def med(v):
            v = np.asarray(v, float)
            return None if not np.isfinite(v).any() else round(float(np.nanmedian(v)), 2)
        def mean(v):
            return None if not v else round(float(np.mean(v)), 3)
        return {"frames": len(self.frames), "mean_iou": mean(self.iou), "mean_body_iou": mean(self.body_iou),
                "median_delta_e": {r: med(v) for r, v in self.delta_e.items()}}


def pose_meshes(skel: Skeleton, motion: BodyMotion, k: int,
                meshes: list[SkinnedMesh]) -> tuple[list[np.ndarray], np.ndarray]:
    """The meshes posed by frame k of the motion ([(V, 3)], model space, metres) and the joints (J, 3)."""
    world = joint_world_matrices(skel.parents, skel.rest_local_m, motion.local_rotations[k],
                                 motion.root_translation_m[k])
    return [skin(m, world, skel.rest_world_m) for m in meshes], world[:, :3, 3]


def _correspondences(tracks: Tracks, k: int, skel: Skeleton, joints: np.ndarray,
                     head_posed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3D model points (P, 3), image points (P, 2) pixels) for the camera of frame k."""
    size = np.asarray(tracks.image_size, np.float64)
    obj, img = [], []
    for joint, landmark in JOINT_LANDMARKS.items():
        i = POSE[landmark]
        xy = tracks.pose_image[k, i, :2]
        if tracks.pose_visibility[k, i] >= MIN_VISIBILITY and np.all((xy > 0) & (xy < 1)):
            obj.append(joints[skel.index(joint)])
            img.append(xy * size)
    if tracks.face_valid[k]:
        obj += list(head_posed[list(FACE_POINTS)])
        img += list(tracks.face_landmarks[k, list(FACE_POINTS), :2] * size)
    else:  # the pose's own face points (a face too small or blurred for the face landmarker)
        for i, point in POSE_FACE_POINTS.items():
            xy = tracks.pose_image[k, i, :2]
            if tracks.pose_visibility[k, i] >= MIN_VISIBILITY and np.all((xy > 0) & (xy < 1)):
                obj.append(head_posed[point])
                img.append(xy * size)
    return np.array(obj, np.float64).reshape(-1, 3), np.array(img, np.float64).reshape(-1, 2)


def _camera(obj: np.ndarray, img: np.ndarray, size: np.ndarray):
    """(rvec, tvec, K) posing the model points on the image points, or None."""
    f = focal_px(tuple(int(s) for s in size))
    K = np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1]])
    # glTF (Y up, facing +Z toward the camera) to OpenCV's camera axes (Y down, Z forward) is
    # a rotation; PnP finds the rest, starting from the subject facing the camera.
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    return (rvec, tvec, K) if ok else None


def _depth(points: np.ndarray, camera) -> np.ndarray:
    """(V,) distance of points in front of the camera along its axis, metres."""
    return (cv2.Rodrigues(camera[0])[0] @ points.T)[2] + float(camera[1].ravel()[2])


def _project(points: np.ndarray, camera) -> np.ndarray:
    rvec, tvec, K = camera
    return cv2.projectPoints(points, rvec, tvec, K, None)[0].reshape(-1, 2)


def _draw(shape: tuple, tris_2d: np.ndarray, labels: np.ndarray, depth: np.ndarray,
          in_front: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """Label image (H, W) int16: -1 background, else the label of the nearest triangle (of those
    wholly in front of the camera); within: (H, W) bool, only triangles reaching its bounding box
    are drawn (the rest of the picture is left as if empty)."""
    out = np.full(shape, -1, np.int16)
    drawable = (np.abs(tris_2d) < MAX_DRAW_PX).all(axis=(1, 2)) & in_front
    if within is not None:
        ys, xs = np.nonzero(within)
        if not len(ys):
            return out
        lo, hi = tris_2d.min(axis=1), tris_2d.max(axis=1)
        drawable &= (hi[:, 0] >= xs.min()) & (lo[:, 0] <= xs.max()) & (hi[:, 1] >= ys.min()) & (lo[:, 1] <= ys.max())
    for t in np.flatnonzero(drawable)[np.argsort(-depth[drawable])]:  # far to near
        cv2.fillConvexPoly(out, np.round(tris_2d[t] * 16).astype(np.int32), int(labels[t]), cv2.LINE_8, shift=4)
    return out


def label_image(points: np.ndarray, triangles: np.ndarray, vertex_label: np.ndarray, camera,
                shape: tuple, within: np.ndarray | None = None) -> np.ndarray:
    """(H, W) int16: -1 background, else the label (of its first vertex) of the nearest triangle
    of the mesh (points (V, 3) model space), every triangle drawn whichever way it faces; within:
    only there (its bounding box) is the picture right."""
    depth = _depth(points, camera)[triangles]
    return _draw(shape, _project(points, camera)[triangles], vertex_label[triangles[:, 0]], depth.mean(1),
                 depth.min(1) > NEAR_M, within)


def _subject_crop(tracks: Tracks, k: int) -> tuple[int, int, int]:
    """(x0, y0, side) pixels of a square around the subject's pose landmarks in frame k, CROP_SCALE
    times their extent (the detector misses people that are small in the frame)."""
    size = np.asarray(tracks.image_size, np.float64)
    px = np.clip(tracks.pose_image[k, :, :2], 0, 1) * size
    centre = (px.min(0) + px.max(0)) / 2
    side = max(CROP_SCALE * float(np.max(px.max(0) - px.min(0))), MIN_CROP_PX)
    x0, y0 = np.round(centre - side / 2).astype(int)
    return int(x0), int(y0), int(round(side))


def subject_mask(frame: np.ndarray, tracks: Tracks, k: int) -> np.ndarray | None:
    """The person mask (H, W) bool of the body nearest the tracked subject, or None."""
    x0, y0, side = _subject_crop(tracks, k)
    h, w = frame.shape[:2]
    crop = np.zeros((side, side, 3), np.uint8)  # black beyond the frame's edges
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    crop[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    size = np.asarray(tracks.image_size, np.float64)
    seen = tracks.pose_visibility[k] >= MIN_VISIBILITY
    subject = tracks.pose_image[k, seen, :2] * size
    best, best_d = None, MAX_SUBJECT_DISTANCE * side
    for mask, lm in person_masks(crop) if seen.any() else []:
        d = float(np.median(np.linalg.norm(lm[seen] * side + (x0, y0) - subject, axis=1)))
        if d < best_d:
            best, best_d = mask, d
    if best is None:
        return None
    out = np.zeros((h, w), bool)
    out[fy0:fy1, fx0:fx1] = best[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] > MASK_LEVEL
    return out


def _region_delta_e(frame: np.ndarray, person: np.ndarray, labels: np.ndarray,
                    colours: dict[int, np.ndarray]) -> dict[int, float]:
    out = {}
    for label, rgb in colours.items():
        m = person & (labels == label)
        if m.sum() >= MIN_REGION_PX:
            seen = srgb_to_linear(np.median(frame[m], axis=0)[::-1] / 255.0)
            out[label] = float(ciede2000(linear_to_lab(seen), linear_to_lab(rgb)))
    return out


@dataclass
class FrameView:
    """One sampled frame ready to compare: its index, the subject's person mask (H, W) bool, the
    camera (rvec, tvec, K) posing the avatar on it, the area around the head (H, W) bool (the
    head's silhouette grown by HEAD_MARGIN: hair is not the body's), the posed head."""

    k: int
    person: np.ndarray
    camera: tuple
    head_area: np.ndarray
    head_posed: np.ndarray


def frame_view(frame: np.ndarray, tracks: Tracks, k: int, skel: Skeleton, motion: BodyMotion,
               head: SkinnedMesh) -> FrameView | None:
    """The FrameView of frame k, or None when no mask or camera is found."""
    person = subject_mask(frame, tracks, k)
    if person is None:
        return None
    (head_p,), joints = pose_meshes(skel, motion, k, [head])
    obj, img = _correspondences(tracks, k, skel, joints, head_p)
    camera = _camera(obj, img, np.asarray(tracks.image_size, np.float64)) if len(obj) >= MIN_POINTS else None
    if camera is None:
        return None
    head_sil = silhouette(head_p, head.triangles, camera, frame.shape[:2])
    ys, xs = np.nonzero(head_sil)
    grow = int(HEAD_MARGIN * max(np.ptp(ys), np.ptp(xs))) if len(ys) else 0
    area = cv2.dilate(head_sil.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
    return FrameView(k, person, camera, area, head_p)


def silhouette(points: np.ndarray, triangles: np.ndarray, camera, shape: tuple) -> np.ndarray:
    """(H, W) bool: the mesh (points (V, 3) model space) filled, as seen: its triangles that face
    the camera (counter-clockwise outward faces)."""
    triangles = np.asarray(triangles, np.int64)
    tris = _project(points, camera)[triangles]
    in_front = (_depth(points, camera)[triangles] > NEAR_M).all(axis=1)
    e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    facing = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0  # outward faces turn clockwise in the image (y down)
    ok = (np.abs(tris) < MAX_DRAW_PX).all(axis=(1, 2)) & facing & in_front  # a closed body's outline: its front faces

    out = np.zeros(shape, np.uint8)
    for tri in np.round(tris[ok] * 16).astype(np.int32):  # one at a time: fillPoly's even-odd rule
        cv2.fillConvexPoly(out, tri, 1, cv2.LINE_8, shift=4)  # would cut overlapping triangles out
    return out > 0


def iou(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> float:
    """Intersection over union of two masks, only where `keep` (default everywhere)."""
    if keep is not None:
        a, b = a & keep, b & keep
    return float((a & b).sum() / max((a | b).sum(), 1))


def compare_frame(frame: np.ndarray, view: FrameView, skel: Skeleton, motion: BodyMotion,
                  parts: list[tuple[SkinnedMesh, np.ndarray]], head: SkinnedMesh):
    """(IoU, body IoU (outside the head's area), {region index: CIEDE2000}) of a frame view; parts:
    the body and its clothes, each with its vertices' regions (indices into REGIONS)."""
    posed, _ = pose_meshes(skel, motion, view.k, [m for m, _ in parts])
    points = np.vstack([*posed, view.head_posed])
    offsets = np.cumsum([0] + [len(p) for p in posed])
    tris = np.vstack([m.triangles.astype(np.int64) + o for (m, _), o in zip(parts, offsets)]
                     + [head.triangles.astype(np.int64) + offsets[-1]])
    vertex_label = np.r_[np.concatenate([r for _, r in parts]), np.full(len(view.head_posed), HEAD_LABEL)]
    colour = np.vstack([m.color[:, :3] for m, _ in parts]).astype(np.float64)
    labels = label_image(points, tris, vertex_label, view.camera, frame.shape[:2])
    avatar = labels >= 0
    body_label = vertex_label[:len(colour)]
    colours = {r: colour[body_label == r][0] for r in range(len(REGIONS)) if (body_label == r).any()}
    return (iou(avatar, view.person), iou(avatar, view.person, ~view.head_area),
            _region_delta_e(frame, view.person, labels, colours))


def sample_frames(tracks: Tracks, motion: BodyMotion, n: int, shift: float = 0.0) -> np.ndarray:
    """Up to n frame indices spread evenly over the frames where the body is tracked; shift (0-1)
    moves the grid by that fraction of its step (another set of frames than shift 0)."""
    frames = np.flatnonzero(tracks.pose_valid & motion.valid)
    if len(frames) == 0:
        return frames
    m = min(n, len(frames))
    pos = (np.arange(m) + shift) * (len(frames) - 1) / max(m - (0 if shift else 1), 1)
    return frames[np.unique(np.clip(np.round(pos), 0, len(frames) - 1).astype(int))]


def frame_views(tracks: Tracks, frame_at, skel: Skeleton, motion: BodyMotion, head: SkinnedMesh,
                frames: np.ndarray) -> list[tuple[np.ndarray, FrameView]]:
    """[(frame, FrameView)] of the given frames that can be compared."""
    out = []
    for k in frames:
        frame = frame_at(int(k))
        view = None if frame is None else frame_view(frame, tracks, int(k), skel, motion, head)
        if view is not None:
            out.append((frame, view))
    return out


def compare_take(tracks: Tracks, frame_at, skel: Skeleton, motion: BodyMotion,
                 parts: list[tuple[SkinnedMesh, np.ndarray]], head: SkinnedMesh,
                 n: int = SAMPLE_FRAMES) -> SilhouetteReport:
    """Silhouette IoU and region colours over up to n frames where the body is tracked; parts:
    the body and its clothes, each with its vertices' regions (indices into REGIONS)."""
    report = SilhouetteReport()
    for frame, view in frame_views(tracks, frame_at, skel, motion, head, sample_frames(tracks, motion, n)):
        whole, body_only, delta_e = compare_frame(frame, view, skel, motion, parts, head)
        report.frames.append(view.k)
        report.iou.append(whole)
        report.body_iou.append(body_only)
        for r, name in enumerate(REGIONS):
            report.delta_e[name].append(delta_e.get(r, np.nan))
    return report

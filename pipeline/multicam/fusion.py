"""Several cameras' tracks of one take + their calibration -> one `Tracks` for the body solve.

`fuse_views` produces tracks the single-camera stages consume unchanged, in four steps, each in its
own module:

  1. Timeline (pipeline.multicam.view_sampling): the reference camera's frames (default the first).
     Every other camera is sampled at the same instants, shifted by its time offset
     (pipeline.multicam.time_offset's convention: an event at t in the reference is at t + offset_s
     in that camera), linearly between its two nearest frames.
  2. Body (pipeline.multicam.body_fusion, with pipeline.multicam.left_right_swaps): the 33 MediaPipe
     landmarks of every camera, in pixels, weighted by their visibility, are triangulated
     (pipeline.multicam.triangulation: weighted DLT, outlier cameras dropped by reprojection error)
     after undoing left/right swaps, and expressed in the pose frame: a level virtual camera looking
     at the subject's front, so body_solve's MediaPipe -> glTF map makes the avatar face +Z with Y
     up, and its root motion is the triangulated hips (`pose_root_m`), metric.
  3. Face (pipeline.multicam.face_fusion): blendshapes averaged over the cameras, weighted toward
     the most frontal one; landmarks and transform from one camera per frame, with the rotation to
     the pose frame (`face_view_rotation`); landmarks seen twice or more triangulated.
  4. Report (pipeline.multicam.fusion_report): the JSON summary, in tracks.meta["multiview"].

The output's image (image_size, pose_image) is the preview camera's (default: the reference):
pose_image is the fused 3D body projected into it, so the contact sheet shows the triangulated
body over that camera's video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.tracks import Tracks
from pipeline.multicam.body_fusion import FusedBody, fuse_body, project_into_preview
from pipeline.multicam.calibration import SIZE_TOLERANCE_PX, Calibration, Camera
from pipeline.multicam.face_fusion import FusedFace, fuse_face
from pipeline.multicam.fusion_report import fusion_report
from pipeline.multicam.triangulation import DEFAULT_MAX_ERROR_PX, DEFAULT_MIN_WEIGHT
from pipeline.multicam.view_sampling import sample_view


@dataclass(eq=False)
class Fusion:
    """tracks:   the fused Tracks (see pipeline.core.tracks for the multi-view fields).
    points_m: (N, 33, 3) float64 body landmarks triangulated in the calibration's world frame
              (NaN where not triangulated), for diagnostics and tests.
    pose_frame: (3, 3) rotation world -> pose frame (rows: its x, y, z axes in the world).
    report:   JSON-ready summary (also in tracks.meta["multiview"]).
    view_blendshapes: (C, N, 52) float32, each camera's own blendshape scores on the reference
              timeline where it sees the face within face_fusion.FACE_PROFILE_DEG of frontal (or
              is the only one that sees it), NaN elsewhere: for the expression rig, which fuses
              the cameras by encoding each view (pipeline.face.latent_rig)."""

    tracks: Tracks
    points_m: np.ndarray
    pose_frame: np.ndarray
    report: dict
    view_blendshapes: np.ndarray | None = None


def _check_image_sizes(tracks: list[Tracks], cams: list[Camera], names: list[str]) -> None:
    """ValueError when a camera's video is not the size it was calibrated at. A video a few pixels
    smaller (e.g. 1080 coded as 1088, cropped) keeps its pixel grid; a different resolution would
    need scaled intrinsics."""
    for c, (tr, cam) in enumerate(zip(tracks, cams)):
        if tuple(tr.image_size) != tuple(cam.size):
            w, h = tr.image_size
            if abs(w - cam.size[0]) > SIZE_TOLERANCE_PX or abs(h - cam.size[1]) > SIZE_TOLERANCE_PX:
                raise ValueError(f"{names[c]}: video is {w}x{h} but camera {cam.name} was calibrated "
                                 f"at {cam.size[0]}x{cam.size[1]}")


def _fused_tracks(ref: Tracks, t: np.ndarray, image_size: tuple[int, int], source: str, body: FusedBody,
                  pose_image: np.ndarray, face: FusedFace, report: dict) -> Tracks:
    """The fused body and face as one `Tracks` on the reference's timeline t (N,) seconds."""
    n_frames = len(t)
    pose_valid = body.pose_valid
    return Tracks(
        t_s=t.copy(), fps=float(ref.fps), duration_s=float(ref.duration_s), image_size=image_size,
        face_valid=face.valid, face_filled=np.zeros(n_frames, bool),
        face_landmarks=face.landmarks.astype(np.float32), blendshapes=face.blendshapes.astype(np.float32),
        face_matrix=face.matrix.astype(np.float32),
        pose_valid=pose_valid, pose_filled=np.zeros(n_frames, bool),
        pose_image=np.where(pose_valid[:, None, None], pose_image, np.nan).astype(np.float32),
        pose_world_m=body.world_pose.astype(np.float32), pose_visibility=body.visibility.astype(np.float32),
        source=source, meta={"multiview": report},
        pose_root_m=body.root_m.astype(np.float32),
        pose_reproj_px=np.where(body.n_views >= 2, body.error_px, np.nan).astype(np.float32),
        pose_n_views=np.where(pose_valid[:, None], body.n_views, 0).astype(np.int8),
        face_view=face.view.astype(np.int8), face_view_rotation=face.rotation.astype(np.float32),
        face_world_m=face.world_m, face_reproj_px=face.reproj_px)


def fuse_views(tracks: list[Tracks], calibration: Calibration, cameras: list[int] | None = None,
               offsets_s: list[float] | None = None, reference: int = 0, preview: int | None = None,
               max_error_px: float = DEFAULT_MAX_ERROR_PX, min_weight: float = DEFAULT_MIN_WEIGHT,
               names: list[str] | None = None) -> Fusion:
    """Fuse the tracks of C cameras of one take (see the module docstring).

    tracks:    per camera, as pipeline.tracking gives them.
    cameras:   index into calibration.cameras for each tracks (default: in order).
    offsets_s: per camera, time offset relative to the reference, seconds (default 0: synchronised).
    reference: which tracks gives the timeline; preview: whose image the output's is (default
               the reference).
    max_error_px: reprojection error (pixels) above which a camera's landmark is left out.
    min_weight: visibility below which a camera's body landmark is not used.
    names:     per camera, for messages and the report (default: the calibration's camera names).
    """
    n_cams = len(tracks)
    if n_cams < 2:
        raise ValueError("fuse_views needs at least two cameras")
    cameras = list(range(n_cams)) if cameras is None else list(cameras)
    offsets = np.zeros(n_cams) if offsets_s is None else np.asarray(offsets_s, np.float64)
    preview = reference if preview is None else preview
    cams = [calibration.cameras[k] for k in cameras]
    names = names or [cams[c].name for c in range(n_cams)]
    _check_image_sizes(tracks, cams, names)

    ref = tracks[reference]
    t = np.asarray(ref.t_s, np.float64)
    views = [sample_view(tr, t - offsets[reference] + offsets[c]) for c, tr in enumerate(tracks)]
    body = fuse_body(cams, views, calibration.up, max_error_px, min_weight)
    width, height = tracks[preview].image_size
    image_size = (width, height)
    pose_image = project_into_preview(body, cams[preview], image_size)
    face = fuse_face(cams, views, [tr.image_size for tr in tracks], body.pose_frame, image_size, max_error_px)
    report = fusion_report(names, cams, cameras, offsets, reference, preview, views, body, face,
                           calibration.up is not None, max_error_px)
    source = " + ".join(str(tr.source) for tr in tracks)
    out = _fused_tracks(ref, t, image_size, source, body, pose_image, face, report)
    return Fusion(out, body.points_m, body.pose_frame, report, face.view_blendshapes)

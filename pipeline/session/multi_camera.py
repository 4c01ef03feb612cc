"""Several recorded videos of one take + their calibration -> the same session folder as one video.

`process_multiview(videos, calibration, out_dir)` tracks every video (pipeline.tracking), puts them
on one clock, fuses them (pipeline.multicam) and hands the fused tracks to
`pipeline.session.stages.finish_session`, so avatar.glb, tracks.npz, preview.png and manifest.json
are made exactly as for one camera. The manifest gains a "multiview" section: the cameras, their
time offsets and how each was found, and the reprojection errors per camera.

Clock, per video:
  * timestamps: a capture recording's `<stem>_frames.csv` (capture/recorder.py) next to the video
    gives each frame's time on the take's shared clock; without one, every video starts at 0;
  * motion: the offset to the reference video from the cross-correlation of landmark motion
    (pipeline.multicam.time_offset), used when there are no timestamps or they disagree with the
    motion by more than a frame and a half (then a warning says so), and only when it is reliable;
  * calibration: then the offsets are refined within +-50 ms by the reprojection error of the
    triangulated body (pipeline.multicam.fusion.reprojection_sync), which resolves fractions of a frame.
`offsets="none"` keeps the timestamps (or 0) as they are; a list of seconds imposes them.

Per-camera tracks are kept in the session as views/<name>.npz, so a take can be fused again
without tracking it again.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from capture.video import VideoInfo, frame_count_warning, frame_reader, probe
from pipeline.core.assets import verified_models
from pipeline.core.atomic import cause
from pipeline.core.errors import InputError, OutputError
from pipeline.core.session_folder import safe_stem, staged_session, write_manifest
from pipeline.multicam.calibration import Calibration, load_calibration
from pipeline.multicam.fusion import Fusion, fuse_views
from pipeline.multicam.synchronise import _timestamps_sidecar, synchronise
from pipeline.multicam.triangulation import DEFAULT_MAX_ERROR_PX
from pipeline.session.stages import Stopwatch, finish_session
from pipeline.tracking.subject import AUTO
from pipeline.tracking.video import track_video


@dataclass
class Views:
    """The videos of one take and the calibrated cameras that filmed them, in the same order."""

    videos: list[Path]
    infos: list[VideoInfo]
    names: list[str]         # per video: its file name (numbered when two are the same)
    calibration: Calibration
    cameras: list[int]       # per video: its camera's index in the calibration


def process_multiview(videos: Sequence[str | Path], calibration_path: str | Path, out_dir: str | Path,
                      max_gap_s: float = 0.25, progress: bool = True, reference: int = 0,
                      offsets: str | Sequence[float] = "auto", max_error_px: float | None = None,
                      tracks: Sequence | None = None, subject: str | int = AUTO,
                      overwrite: bool = False, face_calibration: str | Path | None = None) -> dict:
    """Run every stage on several videos of one take (see the module docstring); write the session
    folder; return the manifest.

    reference: index of the video whose timeline and picture the session takes.
    offsets:   "auto", "none" or seconds per video (see the module docstring).
    tracks:    the videos' tracks when already made (e.g. a session's views/*.npz): not tracked again.
    subject:   who to follow when several people are in view ("auto" or N, pipeline.tracking.subject),
               chosen in each camera's own view (the N-th from the left of each picture).
    overwrite: replace a session already in out_dir whole (else InputError). The session is
               written in a temporary sibling folder that becomes out_dir only once it is whole
               (pipeline.core.session_folder.staged_session).
    face_calibration: None, "auto" or a face_calibration.json applied to the expression.
    """
    videos = [Path(v) for v in videos]
    if len(videos) < 2:
        raise InputError("several videos are needed for a calibrated multi-camera take; "
                         "give one video without --calib")
    if not 0 <= reference < len(videos):
        raise InputError(f"reference {reference} is not one of the {len(videos)} videos")
    sw = Stopwatch()
    t0 = time.perf_counter()
    views = match_cameras(videos, calibration_path)
    list(verified_models())  # a corrupt model stops the run now, not after the tracking
    with staged_session(out_dir, overwrite) as out:
        t0 = sw.lap("setup", t0)
        own_tracks = track_views(views, tracks, progress, out, subject)  # each camera's, on its own frames
        t0 = sw.lap("tracking", t0)
        short = [w for w in map(frame_count_warning, views.infos, [t.n_frames for t in own_tracks]) if w]
        stamps = [_timestamps_sidecar(v, tr.n_frames) for v, tr in zip(videos, own_tracks)]
        synced, off, sync_rep, warnings = synchronise(list(own_tracks), views.calibration, views.cameras,
                                                      views.names, stamps, reference, offsets)
        t0 = sw.lap("synchronisation", t0)
        fusion = fuse_views(synced, views.calibration, views.cameras, list(off), reference,
                            max_error_px=max_error_px or DEFAULT_MAX_ERROR_PX, names=views.names)
        sw.lap("fusion", t0)

        manifest = finish_fused(views, fusion, own_tracks, reference, calibration_path, out, sw, max_gap_s,
                                face_calibration)
        manifest["multiview"] = multiview_section(views, fusion, sync_rep, calibration_path)
        manifest["outputs"]["views"] = [f"views/{n}.npz" for n in views.names]
        manifest["warnings"] = short + list(manifest.get("warnings", [])) + warnings
        return write_manifest(out, manifest)


def match_cameras(videos: list[Path], calibration_path: str | Path) -> Views:
    """Load the calibration, probe every video (one-line errors for missing or broken files, before
    tracking) and give each video its calibrated camera, intrinsics scaled to a resized recording;
    InputError when a video's size does not fit its camera's."""
    calib = load_calibration(calibration_path)
    infos = [probe(v) for v in videos]
    names = [safe_stem(v.stem) for v in videos]  # views/<name>.npz stays inside views/
    if len(set(names)) != len(names):
        names = [f"{n}_{i + 1}" for i, n in enumerate(names)]
    cameras = calib.match([v.stem for v in videos])
    for v, info, k in zip(videos, infos, cameras):
        cam = calib.cameras[k]
        fit = cam.for_size((info.width, info.height))
        if fit is None:
            raise InputError(f"{v}: {info.width}x{info.height} video, but calibration camera "
                             f"{cam.name} is {cam.size[0]}x{cam.size[1]}; is it the right camera?")
        calib.cameras[k] = fit
    return Views(videos, infos, names, calib, cameras)


def track_views(views: Views, tracks: Sequence | None, progress: bool, out: Path,
                subject: str | int = AUTO) -> list:
    """Each video's Tracks (tracked now unless given, one per video; subject: see
    pipeline.tracking.subject), saved as views/<name>.npz."""
    if tracks is None:
        tracks = [track_video(v, progress, subject=subject) for v in views.videos]
    elif len(tracks) != len(views.videos):
        raise InputError(f"{len(tracks)} tracks given for {len(views.videos)} videos")
    tracks = list(tracks)
    try:
        (out / "views").mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out / 'views'}: {cause(e)}") from None
    for n, tr in zip(views.names, tracks):
        tr.save(out / "views" / f"{n}.npz")
    return tracks


def finish_fused(views: Views, fusion: Fusion, own_tracks: list, reference: int, calibration_path: str | Path,
                 out: Path, sw: Stopwatch, max_gap_s: float, face_calibration: str | Path | None = None) -> dict:
    """Every stage after tracking on the fused tracks, the reference video's frames for the preview,
    each camera's own tracks and frames for the texture, each camera's blendshape scores for the
    expression; returns the manifest."""
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(frame_reader(v)) for v in views.videos]
        return finish_session(
            fusion.tracks, out, views.names[reference], readers[reference], sw, max_gap_s,
            input_info={"videos": [str(v.resolve()) for v in views.videos],
                        "calibration": str(Path(calibration_path).resolve()),
                        "width": views.infos[reference].width, "height": views.infos[reference].height},
            tool="pipeline.process (multiview)", texture_cameras=list(zip(own_tracks, readers)),
            expression_views=list(fusion.view_blendshapes), face_calibration=face_calibration)


def multiview_section(views: Views, fusion: Fusion, sync_rep: dict, calibration_path: str | Path) -> dict:
    """The manifest's "multiview" section: the fusion's report, the calibration, and per camera
    how its clock was found and where its own tracks are."""
    calib = views.calibration
    mv = dict(fusion.report)
    mv["calibration"] = {"file": str(Path(calibration_path).resolve()),
                         "cameras": calib.names, "up_known": calib.up is not None,
                         "floor": calib.floor}
    for cam_rep, s in zip(mv["cameras"], sync_rep["cameras"]):
        cam_rep.update({k: v for k, v in s.items() if k != "name"})
        cam_rep["tracks"] = f"views/{cam_rep['name']}.npz"
    if "reprojection_sync" in sync_rep:
        mv["reprojection_sync"] = sync_rep["reprojection_sync"]
    return mv

"""Several recorded videos of one take + their calibration -> the same session folder as one video.

`process_multiview(videos, calibration, out_dir)` tracks every video (pipeline.tracking), puts them
on one clock, fuses them (pipeline.multiview) and hands the fused tracks to
`pipeline.process.finish_session`, so avatar.glb, tracks.npz, preview.png and manifest.json are
made exactly as for one camera. The manifest gains a "multiview" section: the cameras, their
time offsets and how each was found, and the reprojection errors per camera.

Clock, per video:
  * timestamps: a capture recording's `<stem>_frames.csv` (capture/recorder.py) next to the video
    gives each frame's time on the take's shared clock; without one, every video starts at 0;
  * motion: the offset to the reference video from the cross-correlation of landmark motion
    (pipeline.time_offset), used when there are no timestamps or they disagree with the motion by
    more than a frame and a half (then a warning says so), and only when it is reliable;
  * calibration: then the offsets are refined within +-50 ms by the reprojection error of the
    triangulated body (pipeline.multiview.reprojection_sync), which resolves fractions of a frame.
`offsets="none"` keeps the timestamps (or 0) as they are; a list of seconds imposes them.

Per-camera tracks are kept in the session as views/<name>.npz, so a take can be fused again
without tracking it again.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Sequence

from pipeline.core.errors import InputError
from pipeline.multicam.synchronise import _timestamps_sidecar, synchronise
from pipeline.tracking.video import track_video


def process_multiview(videos: Sequence[str | Path], calibration_path: str | Path, out_dir: str | Path,
                      max_gap_s: float = 0.25, progress: bool = True, reference: int = 0,
                      offsets: str | Sequence[float] = "auto", max_error_px: float | None = None,
                      tracks: Sequence | None = None) -> dict:
    """Run every stage on several videos of one take (see the module docstring); write the session
    folder; return the manifest.

    reference: index of the video whose timeline and picture the session takes.
    offsets:   "auto", "none" or seconds per video (see the module docstring).
    tracks:    the videos' tracks when already made (e.g. a session's views/*.npz): not tracked again.
    """
    from capture.video import frame_reader, probe
    from pipeline.multicam.calibration import load_calibration
    from pipeline.multicam.fusion import fuse_views
    from pipeline.multicam.triangulation import DEFAULT_MAX_ERROR_PX
    from pipeline.session.stages import Stopwatch, finish_session, make_session_dir

    videos = [Path(v) for v in videos]
    if len(videos) < 2:
        raise InputError("several videos are needed for a calibrated multi-camera take; "
                         "give one video without --calib")
    if not 0 <= reference < len(videos):
        raise InputError(f"reference {reference} is not one of the {len(videos)} videos")
    sw = Stopwatch()
    t0 = time.perf_counter()
    calib = load_calibration(calibration_path)
    infos = [probe(v) for v in videos]  # one-line errors for missing or broken files, before tracking
    names = [v.stem for v in videos]
    if len(set(names)) != len(names):
        names = [f"{v.stem}_{i + 1}" for i, v in enumerate(videos)]
    cameras = calib.match([v.stem for v in videos])
    for v, info, k in zip(videos, infos, cameras):
        cam = calib.cameras[k]
        fit = cam.for_size((info.width, info.height))
        if fit is None:
            raise InputError(f"{v}: {info.width}x{info.height} video, but calibration camera "
                             f"{cam.name} is {cam.size[0]}x{cam.size[1]}; is it the right camera?")
        calib.cameras[k] = fit  # a resized recording: intrinsics scaled
    out = make_session_dir(out_dir)
    t0 = sw.lap("setup", t0)

    if tracks is None:
        tracks = [track_video(v, progress) for v in videos]
    elif len(tracks) != len(videos):
        raise InputError(f"{len(tracks)} tracks given for {len(videos)} videos")
    tracks = list(tracks)
    (out / "views").mkdir(exist_ok=True)
    for n, tr in zip(names, tracks):
        tr.save(out / "views" / f"{n}.npz")
    t0 = sw.lap("tracking", t0)

    own_tracks = list(tracks)  # each camera's, on its own frames (for the texture)
    stamps = [_timestamps_sidecar(v, tr.n_frames) for v, tr in zip(videos, tracks)]
    tracks, off, sync_rep, warnings = synchronise(tracks, calib, cameras, names, stamps, reference, offsets)
    t0 = sw.lap("synchronisation", t0)
    fusion = fuse_views(tracks, calib, cameras, list(off), reference,
                        max_error_px=max_error_px or DEFAULT_MAX_ERROR_PX, names=names)
    sw.lap("fusion", t0)

    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(frame_reader(v)) for v in videos]
        manifest = finish_session(
            fusion.tracks, out, names[reference], readers[reference], sw, max_gap_s,
            input_info={"videos": [str(v.resolve()) for v in videos],
                        "calibration": str(Path(calibration_path).resolve()),
                        "width": infos[reference].width, "height": infos[reference].height},
            tool="pipeline.process (multiview)", texture_cameras=list(zip(own_tracks, readers)),
            expression_views=list(fusion.view_blendshapes))
    mv = dict(fusion.report)
    mv["calibration"] = {"file": str(Path(calibration_path).resolve()),
                         "cameras": calib.names, "up_known": calib.up is not None,
                         "floor": calib.floor}
    for cam_rep, s in zip(mv["cameras"], sync_rep["cameras"]):
        cam_rep.update({k: v for k, v in s.items() if k != "name"})
        cam_rep["tracks"] = f"views/{cam_rep['name']}.npz"
    if "reprojection_sync" in sync_rep:
        mv["reprojection_sync"] = sync_rep["reprojection_sync"]
    manifest["multiview"] = mv
    manifest["outputs"]["views"] = [f"views/{n}.npz" for n in names]
    manifest["warnings"] = list(manifest.get("warnings", [])) + warnings
    import json
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest

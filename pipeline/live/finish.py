"""Live capture from one or more cameras to a session folder with recordings, tracks and avatar.glb.

    python -m pipeline.capture --cams 0 1 [--out DIR] [--width W --height H --fps F]
                               [--no-preview] [--seconds S] [--tolerance-ms T]

--cams takes device indices, video files (a file stands in for a camera: it is played at its own
frame rate in real time) or stream URLs. Ctrl-C, SIGTERM, q in the preview, --seconds, a file that
ends or a camera that stops delivering for --lost-after seconds end the take; the recordings are
finalised, then the primary camera (the one that saw a face most often) goes through the same
stages as `python -m pipeline.process`. The session folder holds, besides tracks.npz, avatar.glb,
preview.png and manifest.json (with a "capture" section):
  cam<i>.avi          every frame camera i delivered (MJPEG; see capture/recorder.py)
  cam<i>_frames.csv   per recorded frame: frame, segment, t_monotonic_s, t_take_s
  tracks_cam<i>.npz   camera i's live tracking (frames the live tracker skipped are invalid)

Exit codes: 0 take recorded and exported (also when a camera was lost or a file ended: the manifest
says which and when), 2 usage, 3 camera or file unusable, 4 nothing tracked (recordings kept),
6 recording failed, e.g. disk full (what was recorded is kept), 130 interrupted during the export.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.core.errors import NothingTrackedError, PipelineError


def _lat(lat_s: list) -> dict:
    if not lat_s:
        return {"median": None, "p95": None, "max": None}
    a = 1e3 * np.asarray(lat_s)
    return {"median": round(float(np.median(a)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "max": round(float(a.max()), 1)}


def capture_section(res, primary: int | None, stop_t: float | None) -> dict:
    """The manifest's account of the take: what each camera delivered, recorded and tracked."""
    cams = []
    total_tracked = 0
    for ct in res.cameras:
        s, rec = ct.stats, ct.recording
        t = np.array([t for _, t in ct.rows])
        span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
        total_tracked += s.tracked
        cams.append({
            "camera": ct.camera, **ct.info.as_dict(),
            "fps_achieved": round((len(t) - 1) / span, 2) if span > 0 else None,
            "tracked_fps": round(s.tracked / res.duration_s, 2) if res.duration_s > 0 else None,
            "frames": {"captured": ct.captured, "recorded": rec.frames, "tracked": s.tracked,
                       "face": s.face_frames, "body": s.body_frames,
                       "dropped": {"queue": ct.dropped_queue, "unmatched": s.dropped_unmatched,
                                   "tracker_busy": s.dropped_busy, "recorder": rec.dropped}},
            "latency_ms": _lat(s.latency_s),
            "tracker_ms_per_frame": round(1e3 * s.track_busy_s / s.tracked, 2) if s.tracked else None,
            "ended": ct.ended, "ended_at_s": ct.ended_t_take_s,
            "recording": {"video": rec.video, "segments": rec.segments,
                          "segments_written": rec.segments_written, "timestamps": rec.timestamps,
                          "bytes": rec.bytes, "fps_measured": rec.fps_measured,
                          "codec": f"MJPEG (JPEG quality {res.options.jpeg_quality}) in AVI",
                          "error": rec.error},
            "tracks": f"tracks_cam{ct.camera}.npz" if len(ct.rows) else None,
        })
    return {
        "started_utc": res.started_utc,
        "duration_s": res.duration_s,
        "end": {"reason": res.reason, "camera": res.end_camera,
                "at_s": None if stop_t is None else round(stop_t - res.t0, 3)},
        "error": res.error,
        "primary_camera": primary,
        "grouping": {"tolerance_ms": round(1e3 * res.tolerance_s, 2), "groups_formed": res.groups_formed,
                     "groups_tracked": res.groups_tracked},
        "queue": {"policy": "drop-oldest", "frames_per_camera": res.options.queue_frames,
                  "groups": "the tracker takes the newest complete group; older ones are dropped"},
        "track_max_side": res.options.track_max_side,
        "cpu_s": res.cpu_s,
        "cpu_ms_per_tracked_frame": round(1e3 * res.cpu_s / total_tracked, 2) if total_tracked else None,
        "cameras": cams,
        **({"vmc": res.vmc} if res.vmc else {}),
    }


def choose_primary(tracks: list) -> int | None:
    """The camera with the most face frames (then body frames; then the first)."""
    cand = [(int(t.face_valid.sum()), int(t.pose_valid.sum()), -c) for c, t in enumerate(tracks)
            if t is not None and t.n_frames >= 2]
    return -max(cand)[2] if cand else None


def finish_take(res, max_gap_s: float = 0.25) -> tuple[dict, PipelineError | None]:
    """Per-camera tracks, then every batch stage on the primary camera; returns the manifest and
    the error that ended the take, if any (the manifest is written in every case)."""
    from capture.recorder import RecordingError, RecordingReader
    from pipeline.live.take import build_tracks
    from pipeline.session.stages import Stopwatch, finish_session

    out = res.session
    failure = RecordingError(f"recording failed: {res.error}; what was recorded is kept in {out}") \
        if res.error else None
    tracks = []
    for ct in res.cameras:
        if len(ct.rows) == 0:
            tracks.append(None)
            continue
        tr = build_tracks(ct, res.t0)
        try:
            tr.save(out / f"tracks_cam{ct.camera}.npz")
        except OSError as e:
            if failure is None:
                raise PipelineError(f"cannot write {out}/tracks_cam{ct.camera}.npz: {e.strerror or e}") from None
        tracks.append(tr)
    primary = choose_primary(tracks)
    section = capture_section(res, primary, res.stop_t)
    base = {"tool": "dhcap pipeline.capture", "capture": section}
    if primary is None:
        manifest = {**base, "status": "nothing captured"}
        _write(out, manifest)
        return manifest, failure or NothingTrackedError(
            f"nothing was captured (the take ended: {res.reason}); see {out}/manifest.json")
    _write(out, {**base, "status": "exporting"})  # the take is described even if the export dies
    ct = res.cameras[primary]
    sw = Stopwatch({"capture": res.duration_s})
    rec_path = ct.recording.video or (ct.recording.segments[0] if ct.recording.segments else None)
    try:
        with RecordingReader(out, ct.recording) as rr:
            manifest = finish_session(
                tracks[primary], out, out.name, rr.frame_at, sw, max_gap_s,
                input_info={"cameras": [c.info.spec for c in res.cameras], "primary_camera": primary,
                            "video": str(out / rec_path) if rec_path else None,
                            "width": ct.info.width, "height": ct.info.height},
                tool="pipeline.capture")
    except NothingTrackedError:
        faces = sum(int(t.face_valid.sum()) for t in tracks if t is not None)
        bodies = sum(int(t.pose_valid.sum()) for t in tracks if t is not None)
        frames = sum(t.n_frames for t in tracks if t is not None)
        manifest = {**base, "status": "nothing tracked"}
        _write(out, manifest)
        return manifest, failure or NothingTrackedError(
            f"nothing was tracked: no face and no person in {frames} recorded frames "
            f"({faces} face, {bodies} body detections) of {len(res.cameras)} camera(s); "
            f"recordings kept in {out}")
    except (OSError, PipelineError) as e:
        if failure is None:
            raise
        manifest = {**base, "status": f"export failed: {e}"}
        _write(out, manifest)
        return manifest, failure
    manifest["capture"] = section
    manifest["status"] = "ok" if failure is None else "recording failed"
    manifest["outputs"].update({
        f"cam{c.camera}": {k: v for k, v in (("video", c.recording.video), ("segments", c.recording.segments),
                                             ("timestamps", c.recording.timestamps),
                                             ("tracks", f"tracks_cam{c.camera}.npz")) if v}
        for c in res.cameras})
    _write(out, manifest)
    return manifest, failure


def _write(out: Path, manifest: dict):
    try:
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    except OSError:
        pass  # a full disk: the recordings and CSVs already say what was captured



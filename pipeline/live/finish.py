"""The end of a live take: its recordings and live results -> the session folder.

`finish_take(result)` (a pipeline.live.take.TakeResult) saves each camera's live tracking as
tracks_cam<i>.npz, picks the primary camera (the one that saw a face most often), runs every stage
of a recorded take on it (`pipeline.session.stages.finish_session`, its frames read back from its
recording) and writes manifest.json with a "capture" section (`capture_section`: what each camera
delivered, recorded and tracked; latencies in ms, times in s). It returns the manifest and the
error that ended the take, if any; the manifest is written in every case, also when the export
fails or nothing was tracked (then the recordings are what the take leaves).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from capture.recorder import RecordingError, RecordingReader
from pipeline.core.errors import NothingTrackedError, OutputError, PipelineError
from pipeline.core.tracks import Tracks
from pipeline.live.manifest_place import write_take_manifest
from pipeline.live.take import CameraTake, TakeResult, build_tracks
from pipeline.session.stages import Stopwatch, finish_session

MS_PER_S = 1e3  # the manifest gives latencies and per-frame times in milliseconds


def _lat(lat_s: list) -> dict:
    """Median, 95th percentile and maximum of latencies given in seconds, in ms (None: no frames)."""
    if not lat_s:
        return {"median": None, "p95": None, "max": None}
    a = MS_PER_S * np.asarray(lat_s)
    return {"median": round(float(np.median(a)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "max": round(float(a.max()), 1)}


def capture_section(res: TakeResult, primary: int | None, stop_t: float | None) -> dict:
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
            "tracker_errors": {"frames": s.tracker_errors, "last": s.last_tracker_error},
            "latency_ms": _lat(s.latency_s),
            "tracker_ms_per_frame": round(MS_PER_S * s.track_busy_s / s.tracked, 2) if s.tracked else None,
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
        "grouping": {"tolerance_ms": round(MS_PER_S * res.tolerance_s, 2), "groups_formed": res.groups_formed,
                     "groups_tracked": res.groups_tracked},
        "queue": {"policy": "drop-oldest", "frames_per_camera": res.options.queue_frames,
                  "groups": "the tracker takes the newest complete group; older ones are dropped"},
        "track_max_side": res.options.track_max_side,
        "cpu_s": res.cpu_s,
        "cpu_ms_per_tracked_frame": round(MS_PER_S * res.cpu_s / total_tracked, 2) if total_tracked else None,
        "cameras": cams,
        **({"vmc": res.vmc} if res.vmc else {}),
    }


def choose_primary(tracks: list) -> int | None:
    """The camera with the most face frames (then body frames; then the first)."""
    cand = [(int(t.face_valid.sum()), int(t.pose_valid.sum()), -c) for c, t in enumerate(tracks)
            if t is not None and t.n_frames >= 2]
    return -max(cand)[2] if cand else None


def finish_take(res: TakeResult, max_gap_s: float = 0.25) -> tuple[dict, PipelineError | None]:
    """Per-camera tracks, then every batch stage on the primary camera; returns the manifest and
    the error that ended the take, if any (the manifest is written in every case)."""
    out = res.session
    failure = RecordingError(f"recording failed: {res.error}; what was recorded is kept in {out}") \
        if res.error else None
    tracks = save_camera_tracks(res, failure)
    primary = choose_primary(tracks)
    section = capture_section(res, primary, res.stop_t)
    base = {"tool": "dhcap pipeline.capture", "capture": section}
    if primary is None:
        manifest = {**base, "status": "nothing captured"}
        _write(out, manifest)
        return manifest, failure or NothingTrackedError(
            f"nothing was captured (the take ended: {res.reason}); see {out}/manifest.json")
    _write(out, {**base, "status": "exporting"}, warn=False)  # the take is described even if the export dies
    try:
        manifest = export_primary(res, tracks[primary], primary, max_gap_s)
    except NothingTrackedError:
        manifest = {**base, "status": "nothing tracked"}
        _write(out, manifest)
        return manifest, failure or _nothing_tracked(res, tracks)
    except (OSError, PipelineError) as e:
        if failure is None:
            raise
        manifest = {**base, "status": f"export failed: {e}"}
        _write(out, manifest)
        return manifest, failure
    manifest["capture"] = section
    manifest["status"] = "ok" if failure is None else "recording failed"
    manifest["outputs"].update(camera_outputs(res))
    _write(out, manifest)
    return manifest, failure


def save_camera_tracks(res: TakeResult, failure: PipelineError | None) -> list[Tracks | None]:
    """Each camera's Tracks over its recorded frames (None for a camera that recorded nothing),
    saved as tracks_cam<i>.npz; a file that cannot be written is an error unless the take has
    already failed (a full disk: what was recorded is kept)."""
    out = res.session
    tracks = []
    for ct in res.cameras:
        if len(ct.rows) == 0:
            tracks.append(None)
            continue
        tr = build_tracks(ct, res.t0)
        try:
            tr.save(out / f"tracks_cam{ct.camera}.npz")  # OutputError naming the file and the cause
        except OutputError:
            if failure is None:
                raise
        tracks.append(tr)
    return tracks


def export_primary(res: TakeResult, tracks: Tracks, primary: int, max_gap_s: float) -> dict:
    """Every stage of a recorded take on the primary camera's tracks, its frames read back from its
    recording; returns finish_session's manifest."""
    out = res.session
    ct: CameraTake = res.cameras[primary]
    sw = Stopwatch({"capture": res.duration_s})
    rec_path = ct.recording.video or (ct.recording.segments[0] if ct.recording.segments else None)
    with RecordingReader(out, ct.recording) as rr:
        return finish_session(
            tracks, out, out.name, rr.frame_at, sw, max_gap_s,
            input_info={"cameras": [c.info.spec for c in res.cameras], "primary_camera": primary,
                        "video": str(out / rec_path) if rec_path else None,
                        "width": ct.info.width, "height": ct.info.height},
            tool="pipeline.capture")


def _nothing_tracked(res: TakeResult, tracks: list[Tracks | None]) -> NothingTrackedError:
    """The error of a take where no camera tracked a face or a person, with what was seen."""
    seen = [t for t in tracks if t is not None]
    faces = sum(int(t.face_valid.sum()) for t in seen)
    bodies = sum(int(t.pose_valid.sum()) for t in seen)
    frames = sum(t.n_frames for t in seen)
    return NothingTrackedError(
        f"nothing was tracked: no face and no person in {frames} recorded frames "
        f"({faces} face, {bodies} body detections) of {len(res.cameras)} camera(s); "
        f"recordings kept in {res.session}")


def camera_outputs(res: TakeResult) -> dict:
    """The manifest's outputs of each camera: its video or segments, timestamps and tracks."""
    return {
        f"cam{c.camera}": {k: v for k, v in (("video", c.recording.video), ("segments", c.recording.segments),
                                             ("timestamps", c.recording.timestamps),
                                             ("tracks", f"tracks_cam{c.camera}.npz")) if v}
        for c in res.cameras}


def _write(out: Path, manifest: dict, warn: bool = True):
    """manifest.json into the session folder, listing every file in it; on a full disk in the
    next place with room, saying so on stderr unless not `warn` (the interim manifest of a take
    being exported: the final one says it once; pipeline.live.manifest_place)."""
    try:
        write_take_manifest(out, manifest, (lambda line: print(line, file=sys.stderr)) if warn else None)
    except OutputError:
        pass  # no place at all: the recordings and CSVs already say what was captured



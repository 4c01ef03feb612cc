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

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

from pipeline.errors import InputError, NothingTrackedError, PipelineError, interrupted, report


class Interrupted(PipelineError):
    """A signal outside the take itself (while loading the models, or a second one during the export)."""

    exit_code = 130


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
    from pipeline.live import build_tracks
    from pipeline.process import Stopwatch, finish_session

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


def open_sources(specs: list[str], width=None, height=None, fps=None) -> list:
    from capture.cameras import CameraSource, CameraSpec
    sources = []
    try:
        for text in specs:
            src = CameraSource(CameraSpec.parse(text), width, height, fps)
            src.open()
            sources.append(src)
    except BaseException:
        for s in sources:
            s.close()
        raise
    return sources


def run_capture(a, stream=None) -> int:
    """The CLI after argument parsing (also called by tests and the benchmark, in-process)."""
    from capture.recorder import check_free_space
    from pipeline.live import ConsoleMonitor, LiveOptions, LiveTake, PreviewWindow, StopRequest, display_available
    from pipeline.process import make_session_dir

    stream = stream or sys.stdout
    say = (lambda *x: None) if a.quiet else (lambda msg: print(msg, file=stream, flush=True))
    specs = [str(c) for c in a.cams]
    if len(set(specs)) != len(specs):
        raise InputError(f"--cams lists the same camera twice: {' '.join(specs)}")
    out = Path(a.out or Path("sessions") / datetime.now().strftime("capture_%Y%m%d-%H%M%S"))
    if out.exists() and (any(out.glob("cam*_frames.csv")) or (out / "manifest.json").exists()):
        raise InputError(f"{out} already holds a take; choose another --out")
    sources = open_sources(specs, a.width, a.height, a.fps)
    try:
        out = make_session_dir(out)
        check_free_space(out)
        opts = LiveOptions(seconds=a.seconds, tolerance_s=None if a.tolerance_ms is None else a.tolerance_ms / 1e3,
                           track_max_side=a.track_max_side, lost_after_s=a.lost_after,
                           segment_s=a.segment_s, keep_segments=a.keep_segments, vmc=a.vmc)
        stop = StopRequest()
        take = LiveTake(sources, out, opts, stop)
        for c, i in enumerate(take.infos):
            say(f"cam{c}: {i.spec} ({i.kind}) {i.width}x{i.height} at {i.fps:g} fps")
        say("loading the face and pose models ...")
        take.load()
    except KeyboardInterrupt:
        for s in sources:
            s.close()
        raise Interrupted("interrupted before the take started; nothing recorded") from None
    except BaseException:
        for s in sources:
            s.close()
        raise
    finishing = [False]

    def on_signal(signum, _frame):
        if not stop.is_set():
            stop.request(f"interrupted ({signal.Signals(signum).name})")
        elif finishing[0]:
            raise KeyboardInterrupt  # a second signal during the export aborts it
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        preview = not a.no_preview and display_available()
        if not a.no_preview and not preview:
            say("no display: running without the preview window (counters below)")
        monitor = None
        if preview:
            try:
                monitor = PreviewWindow(stop, stream, a.quiet)
            except Exception:  # a display that cannot be used: counters instead
                monitor = None
        monitor = monitor or ConsoleMonitor(stream, a.quiet)
        say(f"recording to {out}; Ctrl-C to stop" + (f" (or after {a.seconds:g} s)" if a.seconds else ""))
        res = take.run(monitor)
        finishing[0] = True
        say(f"take ended after {res.duration_s:.1f} s: {res.reason}; exporting ...")
        manifest, failure = finish_take(res, a.max_gap)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted during the export; the recordings are kept in {out}, "
                          "no avatar written") from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    cap = manifest["capture"]
    for c in cap["cameras"]:
        fr = c["frames"]
        say(f"cam{c['camera']}: {fr['recorded']} frames recorded ({c['recording']['video'] or 'segments'}), "
            f"{fr['tracked']} tracked ({fr['face']} face, {fr['body']} body), "
            f"{sum(fr['dropped'].values())} dropped by the tracker queue, latency median "
            f"{c['latency_ms']['median']} ms, p95 {c['latency_ms']['p95']} ms")
    if failure is not None:
        raise failure
    say(f"{out}/avatar.glb: primary camera {cap['primary_camera']}, {manifest['input']['frames']} frames, "
        f"{manifest['animation']['duration_s']:.2f} s")
    for w in manifest.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if res.end_camera is not None and "lost" in res.reason:
        print(f"warning: {res.reason} after {cap['end']['at_s']} s; the take ended there", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline.capture",
                                 description="Live capture from cameras (or video files standing in for "
                                             "them) to a session folder with recordings and avatar.glb")
    ap.add_argument("--cams", nargs="+", required=True, metavar="CAM",
                    help="device indices (0 1), video files (played at their own rate) or stream URLs")
    ap.add_argument("--out", help="session folder (default: sessions/capture_<date-time>)")
    ap.add_argument("--width", type=int, help="frame width asked of devices (files and streams are resized)")
    ap.add_argument("--height", type=int, help="frame height, likewise")
    ap.add_argument("--fps", type=float, help="frame rate asked of devices (files: at most their own rate)")
    ap.add_argument("--seconds", type=float, help="end the take after this many seconds")
    ap.add_argument("--tolerance-ms", type=float,
                    help="frames of different cameras within this much of each other are tracked as one "
                         "group (default: half a frame period of the slowest camera)")
    ap.add_argument("--no-preview", action="store_true", help="no window: counters on the console")
    ap.add_argument("--quiet", action="store_true", help="no counters or progress lines")
    ap.add_argument("--lost-after", type=float, default=1.0,
                    help="a camera that delivers nothing for this many seconds ends the take (default 1)")
    ap.add_argument("--segment-s", type=float, default=2.0,
                    help="recording segment length in seconds (default 2); after a crash every segment "
                         "stays playable up to its last whole frame")
    ap.add_argument("--keep-segments", action="store_true", help="keep the segments after joining them")
    ap.add_argument("--track-max-side", type=int, default=1280,
                    help="frames larger than this are scaled down for tracking only (default 1280)")
    ap.add_argument("--vmc", nargs="?", const="", metavar="[HOST:]PORT",
                    help="stream blendshapes and bones over the VMC protocol (OSC/UDP) while "
                         "capturing; default 127.0.0.1:39539 (localhost unless a host is named)")
    ap.add_argument("--max-gap", type=float, default=0.25,
                    help="fill tracking gaps up to this many seconds (flagged in tracks.npz); default 0.25")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    for name in ("width", "height", "fps", "seconds", "tolerance_ms", "lost_after", "segment_s", "track_max_side"):
        v = getattr(a, name)
        if v is not None and v <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")  # exit code 2
    from pipeline.quiet import send_native_stderr_to_devnull
    send_native_stderr_to_devnull()
    try:
        return run_capture(a)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt:
        return interrupted()


if __name__ == "__main__":
    sys.exit(main())

"""Live capture from one or more cameras to a session folder with recordings, tracks and avatar.glb.

    python -m pipeline.capture --cams 0 1 [--out DIR] [--width W --height H --fps F]
                               [--no-preview] [--seconds S] [--tolerance-ms T] [--subject auto|N]
    python -m pipeline.capture --recover SESSION [--avatar]     # a take that was killed

--cams takes device indices, video files (a file stands in for a camera: it is played at its own
frame rate in real time) or stream URLs. Ctrl-C, SIGTERM, q in the preview, --seconds, a file that
ends or a camera that stops delivering for --lost-after seconds end the take; the recordings are
finalised, then the primary camera (the one that saw a face most often) goes through the same
stages as `python -m pipeline.process`. The session folder holds, besides tracks.npz, avatar.glb,
preview.png and manifest.json (with a "capture" section):
  cam<i>.avi          every frame camera i delivered (MJPEG; see capture/recorder.py)
  cam<i>_frames.csv   per recorded frame: frame, segment, t_monotonic_s, t_take_s
  tracks_cam<i>.npz   camera i's live tracking (frames the live tracker skipped are invalid)

A full disk (or file-size limit) mid-take ends it cleanly: the frames recorded so far stay playable
and agree with their timestamps, manifest.json is written (when the session's disk has no room,
to the next place that has: its parent folder, $TMPDIR or the home folder, saying so on stderr),
and the one-line error names the file and the cause (exit code 6).
--recover SESSION, after a take was killed (`kill -9`, a crash, power loss): joins each camera's
segments into cam<i>.avi (every frame its cam<i>_frames.csv lists, in order), writes the manifest
and, with --avatar, tracks the recordings again and writes the avatar as a finished take would
(pipeline.live.recover). Exit codes as below (3: no take in that folder).

Exit codes: 0 take recorded and exported (also when a camera was lost or a file ended: the manifest
says which and when), 2 usage, 3 camera or file unusable, 4 nothing tracked (recordings kept),
6 recording failed or an output cannot be written, e.g. disk full (what was recorded is kept),
130 interrupted during the export, 143 terminated (SIGTERM) during it.
The take itself: pipeline.live (run_capture).
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import PipelineError, install_cli_signals, interrupted, report
from pipeline.core.quiet import send_native_stderr_to_devnull
from pipeline.face.calibration import live_calibration
from pipeline.live.options import CaptureOptions, LiveOptions
from pipeline.live.recover import recover_take
from pipeline.live.run import run_capture
from pipeline.tracking.subject import AUTO, SUBJECT_HELP, parse_subject

MS_PER_S = 1e3  # --tolerance-ms is in milliseconds, the take's options in seconds
# options that must be positive when given (else a usage error, exit code 2)
POSITIVE = ("width", "height", "fps", "seconds", "tolerance_ms", "lost_after", "segment_s", "track_max_side")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline.capture",
                                 description="Live capture from cameras (or video files standing in for "
                                             "them) to a session folder with recordings and avatar.glb")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--cams", nargs="+", metavar="CAM",
                      help="device indices (0 1), video files (played at their own rate) or stream URLs")
    what.add_argument("--recover", metavar="SESSION",
                      help="join the recordings of a take that was killed (kill -9, crash, power loss) into "
                           "cam<i>.avi, every frame its timestamps list, and write its manifest.json")
    ap.add_argument("--avatar", action="store_true",
                    help="with --recover: also track the recordings again and write the avatar, as a "
                         "finished take would")
    ap.add_argument("--out", help="session folder (default: sessions/capture_<date-time>)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a take already in --out: it is removed whole before the new take starts "
                         "(without it such a folder is refused); the recordings go straight into --out, "
                         "and manifest.json, written last, lists every file with its size and SHA-256")
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
    ap.add_argument("--face-calibration", metavar="SECONDS|FILE|SECONDS,FILE",
                    help="with --vmc: subtract the resting face from the streamed blendshapes: measured over "
                         "the first SECONDS (relax your face), or the face_calibration.json of an earlier "
                         "session (its gains too), or both")
    ap.add_argument("--max-gap", type=float, default=0.25,
                    help="fill tracking gaps up to this many seconds (flagged in tracks.npz); default 0.25")
    ap.add_argument("--subject", type=parse_subject, default=AUTO, metavar="auto|N",
                    help=SUBJECT_HELP + " (in every camera's view)")
    return ap


def capture_options(a: argparse.Namespace) -> CaptureOptions:
    """The parsed arguments as the take's options (milliseconds to seconds)."""
    live = LiveOptions(seconds=a.seconds, tolerance_s=None if a.tolerance_ms is None else a.tolerance_ms / MS_PER_S,
                       track_max_side=a.track_max_side, lost_after_s=a.lost_after,
                       segment_s=a.segment_s, keep_segments=a.keep_segments, vmc=a.vmc, subject=a.subject,
                       face_calibration=a.face_calibration)
    return CaptureOptions(out=a.out, overwrite=a.overwrite,
                          width=a.width, height=a.height, fps=a.fps, preview=not a.no_preview,
                          quiet=a.quiet, max_gap_s=a.max_gap, live=live)


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    for name in POSITIVE:
        v = getattr(a, name)
        if v is not None and v <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")  # exit code 2
    if a.avatar and not a.recover:
        ap.error("--avatar goes with --recover")  # exit code 2
    install_cli_signals()
    send_native_stderr_to_devnull()
    try:
        if a.recover:
            return recover(a)
        live_calibration(a.face_calibration)  # a bad value stops here, before any camera opens
        return run_capture(a.cams, capture_options(a))
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM before the take started: nothing recorded
        return interrupted("nothing recorded", e)


def recover(a: argparse.Namespace) -> int:
    """--recover SESSION [--avatar]: the killed take made whole (pipeline.live.recover); 0."""
    say = (lambda *x: None) if a.quiet else print
    m = recover_take(a.recover, avatar=a.avatar, max_gap_s=a.max_gap, keep_segments=a.keep_segments, say=say)
    if a.avatar:
        say(f"{a.recover}/avatar.glb: primary camera {m['capture']['primary_camera']}, "
            f"{m['input']['frames']} frames, {m['animation']['duration_s']:.2f} s")
    say(f"{a.recover}/manifest.json: {m['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

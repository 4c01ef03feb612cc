"""Recorded video -> session folder with tracks, manifest and an animated avatar.glb.

    python -m pipeline.process VIDEO [--out DIR] [--subject auto|N]
    python -m pipeline.process CAM1 CAM2 ... --calib CALIBRATION [--offsets auto|none|S1,S2,...]
    python -m pipeline.process VIDEO1 VIDEO2 ... | FOLDER | GLOB    # a batch: python -m pipeline.batch

The session folder holds tracks.npz, avatar.glb, texture.png, preview.png, the engine formats and
manifest.json (see pipeline.session.stages), written whole or not at all: built in a temporary
sibling folder, renamed into place at the end (an existing session only with --overwrite).
On success one line on stdout says what was made and warnings follow on stderr; an error is one
line on stderr and a non-zero exit code (the error's, see pipeline.core.errors: 3 unusable input
or --out holds a session, 4 nothing tracked, 5 model files, 6 an output cannot be written;
130 interrupted, 143 terminated).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.batch import main as batch_main
from pipeline.core.errors import PipelineError, install_cli_signals, interrupted, report
from pipeline.core.quiet import send_native_stderr_to_devnull
from pipeline.core.session_folder import OVERWRITE_HELP, safe_stem
from pipeline.session.recorded_take import process_take
from pipeline.tracking.subject import AUTO, SUBJECT_HELP, parse_subject


def _is_batch(a: argparse.Namespace) -> bool:
    """Several videos without a calibration, a folder or a glob: separate takes, not one."""
    return not a.calib and (len(a.videos) > 1 or Path(a.videos[0]).is_dir()
                            or any(c in a.videos[0] for c in "*?["))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.process",
                                 description="Recorded video -> session folder with tracks, manifest and avatar.glb")
    ap.add_argument("videos", nargs="+", metavar="VIDEO",
                    help="video file (anything FFmpeg reads: mp4, mov, webm, ...); several videos, a "
                         "folder or a glob: a batch of takes, one session each (python -m pipeline.batch); "
                         "with --calib, several videos of one take, one per calibrated camera")
    ap.add_argument("--calib", help="calibration of the cameras (anipose/Pose2Sim .toml or Qualisys "
                                    ".qca.txt): the videos are one take seen by several cameras")
    ap.add_argument("--offsets", default="auto",
                    help="with --calib: 'auto' (timestamps, else the motion itself), 'none', or "
                         "comma-separated seconds per video")
    ap.add_argument("--out", help="session folder (default: sessions/<first video name>, the name made safe); "
                                  "for a batch, the folder of the session folders (default: sessions)")
    ap.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    ap.add_argument("--max-gap", type=float, default=0.25,
                    help="fill tracking gaps up to this many seconds (flagged in tracks.npz); default 0.25")
    ap.add_argument("--subject", type=parse_subject, default=AUTO, metavar="auto|N", help=SUBJECT_HELP)
    ap.add_argument("--face-calibration", metavar="auto|FILE",
                    help="subtract the resting face and stretch each shape to its full range: 'auto' "
                         "(measured on this take) or a face_calibration.json of an earlier session of the "
                         "same person (every session writes its own)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    if _is_batch(a):
        return batch_main([*a.videos, "--out", a.out or "sessions", "--max-gap", str(a.max_gap),
                           "--subject", str(a.subject)] + (["--quiet"] if a.quiet else [])
                          + (["--overwrite"] if a.overwrite else []))
    install_cli_signals()
    send_native_stderr_to_devnull()
    out = a.out or str(Path("sessions") / safe_stem(Path(a.videos[0]).stem))
    try:
        offsets = a.offsets if a.offsets in ("auto", "none") else [float(x) for x in a.offsets.split(",")]
    except ValueError:
        print(f"error: --offsets must be auto, none or comma-separated seconds, not {a.offsets!r}",
              file=sys.stderr)
        return 2
    try:
        m = process_take(a.videos, out, a.calib, offsets, a.max_gap, progress=not a.quiet, subject=a.subject,
                         overwrite=a.overwrite, face_calibration=a.face_calibration)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the unfinished session folder was removed
        return interrupted(f"no session written, {out} left as it was", e)
    tr, rig = m["tracking"], m["face_rig"]
    print(f"{out}/avatar.glb: {m['input']['frames']} frames, {m['animation']['duration_s']:.2f} s; "
          f"face in {tr['face_frames']}, body in {tr['body_frames']} frames; "
          f"rig held-out error {rig['heldout_landmark_error_mm']} mm")
    for w in m["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

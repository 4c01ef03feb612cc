"""Calibrate cameras from recordings (or live cameras) of a board: intrinsics, extrinsics, floor.

    python -m pipeline.calibrate cam1.mp4 cam2.mp4 cam3.mp4 --board board.json --out calib.toml
    python -m pipeline.calibrate 0 2 --board board.json --seconds 90          # live cameras
    python -m pipeline.calibrate 'left*.jpg' 'right*.jpg' --board checkerboard:9x6:25mm
    python -m pipeline.calibrate int_cam01_img int_cam02_img --intrinsics-only --board checkerboard:4x7:60mm

Sources, all of one kind: video files of one take (started together: frame times are matched),
folders or glob patterns of images (matched by order after a natural sort), or camera indices.
How to record: first lay the board flat on the floor, printed side up, where every camera sees it,
for a second (that frame becomes the floor, Z = 0, Z up, `--floor auto`); then walk it around the
room, turning it toward the cameras, slowly (motion blur spoils corners), so that every camera sees
it across its whole image and, often, together with another camera. Live cameras are read one
after the other, not at the same instant: hold the board still for a moment in each place.

Writes the calibration in the anipose / Pose2Sim TOML format (see pipeline/multicam/calibration.py) and
<out>.report.json: per camera the views with the board, the reprojection error of its intrinsics
and of the bundle adjustment, its height above the floor; which cameras saw the board together.
Exit codes: 3 unreadable input, 6 calibration impossible (the message says what to record again).
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import PipelineError, interrupted, report
from pipeline.multicam.board_views import DEFAULT_EVERY_S
from pipeline.multicam.calibration_job import calibrate_recordings


def _stage(message: str) -> None:
    print(f"... {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline.calibrate",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:4]))
    ap.add_argument("sources", nargs="+", help="video files, image folders / glob patterns, or camera indices")
    ap.add_argument("--board", required=True,
                    help="board.json from python -m pipeline.board, or charuco:7x5:32mm:24mm[:DICT] "
                         "(squares), or checkerboard:9x6:25mm (inner corners)")
    ap.add_argument("--out", default="calib.toml", help="calibration file to write (default calib.toml)")
    ap.add_argument("--every", type=float, default=DEFAULT_EVERY_S,
                    help=f"videos and live cameras: look for the board every this many seconds "
                         f"(default {DEFAULT_EVERY_S})")
    ap.add_argument("--seconds", type=float, default=60.0, help="live cameras: record views this long "
                    "(Ctrl-C ends earlier); default 60")
    ap.add_argument("--floor", default="auto",
                    help="'auto' (the first frame where the most cameras see the board lies on the floor), "
                         "a frame-set number, or 'none' (world = first camera)")
    ap.add_argument("--intrinsics", help="calibration file whose intrinsics to keep (only the poses are solved)")
    ap.add_argument("--intrinsics-only", action="store_true",
                    help="calibrate each source on its own (unsynchronised views); no extrinsics")
    ap.add_argument("--refine-intrinsics", action="store_true",
                    help="let the bundle adjustment refine focal lengths, principal points and distortion")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        run = calibrate_recordings(a.sources, a.board, a.out, a.every, a.seconds, a.floor, a.intrinsics,
                                   a.intrinsics_only, a.refine_intrinsics, progress_bar=not a.quiet,
                                   say=None if a.quiet else _stage)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt:
        return interrupted("no calibration written")
    print(run.report.summary(run.sizes))
    print(f"wrote {run.toml_path} (anipose / Pose2Sim TOML) and {run.report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

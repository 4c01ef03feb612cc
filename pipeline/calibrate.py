"""TODO docstring."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402

from pipeline.core.errors import PipelineError, interrupted, report  # noqa: E402
from pipeline.multicam.board_views import DEFAULT_EVERY_S, Sources, collect
from pipeline.multicam.calibration import Calibration, load_calibration, save_toml  # noqa: E402
from pipeline.multicam.calibration_board import BoardSpec  # noqa: E402
from pipeline.multicam.calibration_solver import RigReport, calibrate_intrinsics, calibrate_rig  # noqa: E402


def print_report(report: RigReport, calib: Calibration, sizes, file=None) -> None:
    file = file or sys.stdout
    head = f"{'camera':<12}{'size':>11}{'views':>7}{'intr. RMS':>11}{'BA RMS':>9}{'corners':>9}" \
           f"{'outliers':>10}{'height':>9}"
    print(head, file=file)
    for r, size in zip(report.cameras, sizes):
        def px(v):
            return f"{v:.2f} px" if v is not None and np.isfinite(v) else "-"
        h = f"{r.height_m:.2f} m" if np.isfinite(r.height_m) else "-"
        print(f"{r.name:<12}{f'{size[0]}x{size[1]}':>11}{r.views:>7}{px(r.intrinsic_rms_px):>11}"
              f"{px(r.rms_px):>9}{r.observations:>9}{r.outliers:>10}{h:>9}", file=file)
    if len(report.cameras) > 1 and np.isfinite(report.rms_px):
        print("frames where both cameras saw the board:", file=file)
        print(report.covisibility_table(), file=file)
    if np.isfinite(report.rms_px):
        print(f"bundle adjustment: {report.frames_used} frames, RMS {report.rms_px:.3f} px"
              + (f"; floor from frame {report.floor_frame}" if report.floor_frame is not None else
                 "; no floor: the world is the first camera's frame"), file=file)
    for w in report.warnings:
        print(f"warning: {w}", file=file)


def run(a) -> int:
    board = BoardSpec.parse(a.board)
    sources = Sources(a.sources, a.every, a.seconds)
    t0 = time.perf_counter()
    dets = collect(board, sources, progress=not a.quiet)
    sizes = sources.sizes
    intr = None
    if a.intrinsics:
        known = load_calibration(a.intrinsics)
        idx = known.match(sources.names)
        intr = [known.cameras[i] for i in idx]
    if a.intrinsics_only:
        cams = []
        from pipeline.multicam.calibration_solver import CameraReport
        reps = []
        for c, name in enumerate(sources.names):
            cam, used = calibrate_intrinsics(board, dets[c], sizes[c], name)
            cams.append(cam)
            reps.append(CameraReport(name, sum(d is not None for d in dets[c]), used, cam.error_px))
        calib = Calibration(cams, None, False, {"board": board.text(), "intrinsics_only": True})
        report = RigReport(reps, np.diag([r.views for r in reps]))
    else:
        floor = None if a.floor == "none" else ("auto" if a.floor == "auto" else int(a.floor))
        calib, report = calibrate_rig(board, dets, sizes, sources.names, intr, a.refine_intrinsics, floor,
                                      progress=None if a.quiet else (lambda s: print(f"... {s}", file=sys.stderr)))
    calib.metadata["dhcap_sources"] = [str(s) for s in a.sources]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_toml(calib, out)
    rep_path = out.with_name(out.stem + ".report.json")
    rep = report.as_dict() | {"board": board.to_dict(), "sources": a.sources, "names": sources.names,
                              "frames": len(dets[0]) if dets else 0,
                              "seconds": round(time.perf_counter() - t0, 2)}
    rep_path.write_text(json.dumps(rep, indent=2))
    print_report(report, calib, sizes)
    print(f"wrote {out} (anipose / Pose2Sim TOML) and {rep_path}")
    return 0


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
        return run(a)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt:
        return interrupted("no calibration written")


if __name__ == "__main__":
    sys.exit(main())

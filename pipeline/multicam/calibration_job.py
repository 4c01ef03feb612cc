"""A whole calibration run, as `python -m pipeline.calibrate` does it: recordings of a board -> files.

In:  sources (video files of one take, image folders or glob patterns, or live camera indices), a
     board spec (text or board.json), and the options of the command line.
Out: the calibration written as an anipose / Pose2Sim TOML (pipeline.multicam.calibration) and
     <out>.report.json next to it; a `CalibrationRun` with what was written, for the caller to print.

Steps: open the sources and find the board in their frames (pipeline.multicam.board_views), solve
the intrinsics of each camera alone or the whole rig with its floor
(pipeline.multicam.calibration_solver), write the files. The other calibration modules hold the
pieces: calibration (the Calibration / Camera types and their files), calibration_board (the
board: spec, detection, printable page), board_views (frames -> detections), calibration_solver
(detections -> Calibration).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.core.atomic import cause, write_text
from pipeline.core.errors import OutputError
from pipeline.multicam.board_views import Sources, collect
from pipeline.multicam.calibration import Calibration, load_calibration, save_toml
from pipeline.multicam.calibration_board import BoardSpec
from pipeline.multicam.calibration_solver import RigReport, calibrate_each_camera, calibrate_rig

REPORT_SECONDS_DECIMALS = 2  # the run's duration in the report, seconds


@dataclass(eq=False)
class CalibrationRun:
    """calibration: what was written; report: its diagnostics; sizes: each source's image
    (width, height) pixels; toml_path, report_path: the files written."""

    calibration: Calibration
    report: RigReport
    sizes: list[tuple[int, int]]
    toml_path: Path
    report_path: Path


def _floor_frame(floor: str) -> int | str | None:
    """--floor's value as calibrate_rig takes it: "auto", None for "none", else a frame number."""
    return None if floor == "none" else ("auto" if floor == "auto" else int(floor))


def calibrate_recordings(sources: list[str], board: str, out: str | Path, every_s: float, seconds: float | None,
                         floor: str = "auto", intrinsics: str | None = None, intrinsics_only: bool = False,
                         refine_intrinsics: bool = False, progress_bar: bool = True,
                         say: Callable[[str], None] | None = None) -> CalibrationRun:
    """Calibrate the cameras of `sources` from their views of `board` and write the files (see the
    module docstring).

    every_s:   videos and live cameras: look for the board every this many seconds.
    seconds:   live cameras: record views this long.
    floor:     "auto", "none" or the number of the frame set where the board lies on the floor.
    intrinsics: a calibration file whose intrinsics to keep (only the poses are solved).
    intrinsics_only: each camera on its own, no extrinsics.
    progress_bar: show the board search's progress bar; say: stage messages, or None.
    Raises InputError (unreadable input) or CalibrationError (calibration impossible).
    """
    spec = BoardSpec.parse(board)
    frames = Sources(sources, every_s, seconds)
    t0 = time.perf_counter()
    dets = collect(spec, frames, progress=progress_bar)
    sizes = frames.sizes
    known = None
    if intrinsics:
        given = load_calibration(intrinsics)
        known = [given.cameras[i] for i in given.match(frames.names)]
    if intrinsics_only:
        calib, report = calibrate_each_camera(spec, dets, sizes, frames.names)
    else:
        calib, report = calibrate_rig(spec, dets, sizes, frames.names, known, refine_intrinsics,
                                      _floor_frame(floor), progress=say)
    calib.metadata["dhcap_sources"] = [str(s) for s in sources]
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out.parent}: {cause(e)}") from None
    save_toml(calib, out)
    report_path = out.with_name(out.stem + ".report.json")
    summary = report.as_dict() | {"board": spec.to_dict(), "sources": sources, "names": frames.names,
                                  "frames": len(dets[0]) if dets else 0,
                                  "seconds": round(time.perf_counter() - t0, REPORT_SECONDS_DECIMALS)}
    write_text(report_path, json.dumps(summary, indent=2))  # atomic; OutputError when refused
    return CalibrationRun(calib, report, sizes, out, report_path)

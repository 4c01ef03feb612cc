"""Engine-ready files of a processed session, written beside its avatar.glb:

  avatar.vrm             VRM 1.0 avatar (UniVRM, Blender's VRM add-on, three-vrm, VSeeFace...),
                         see pipeline/export/vrm.py
  take.vrma              VRM Animation 1.0 of the take, for any VRM 1.0 avatar, see
                         pipeline/export/vrma.py
  take.bvh               body motion as BVH (centimetres, Y up), see pipeline/export/bvh.py
  take_blendshapes.csv   the 52 ARKit blendshapes per frame, Live Link Face CSV layout,
                         see pipeline/export/livelink_csv.py

    python -m pipeline.engine_export SESSION_DIR [--formats vrm,vrma,bvh,csv] [--vrm-author NAME]

Everything is read back from the session's avatar.glb (and tracks.npz for the frame count), so the
files carry exactly what the .glb animates. `ENGINE_FORMATS` is the one table of the formats:
name -> file name and writer (each writer lives in its format's module and takes the session's
take, the output path and the `EngineOptions`).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pipeline.core.session_folder import read_manifest, write_manifest
from pipeline.export import bvh, livelink_csv, vrm, vrma
from pipeline.export.session_take import EngineOptions, SessionTake, load_session_take

SECONDS_DECIMALS = 3  # the manifest's per-format timings, rounded to milliseconds


class EngineFormat(NamedTuple):
    """file: its name in the session folder; write(take, path, options) -> path."""

    file: str
    write: Callable[[SessionTake, Path, EngineOptions], Path]


ENGINE_FORMATS: dict[str, EngineFormat] = {
    "vrm": EngineFormat("avatar.vrm", vrm.write_session_vrm),
    "vrma": EngineFormat("take.vrma", vrma.write_session_vrma),
    "bvh": EngineFormat("take.bvh", bvh.write_session_bvh),
    "csv": EngineFormat("take_blendshapes.csv", livelink_csv.write_session_csv),
}
FORMATS = tuple(ENGINE_FORMATS)
FILES = {name: fmt.file for name, fmt in ENGINE_FORMATS.items()}


def export_formats(session_dir: str | Path, formats=FORMATS, *, vrm_meta: dict | None = None,
                   vrma_expressions: str = "custom", finished: bool = True) -> dict:
    """Write the engine files of a session folder (one that holds avatar.glb and tracks.npz).

    formats: any of "vrm", "vrma", "bvh", "csv". vrm_meta: VRMC_vrm.meta overrides (e.g.
    {"authors": ["Ada"], "commercialUsage": "personalProfit"}); vrma_expressions: "custom"
    (ARKit names, default), "preset" or "both" (see pipeline/export/vrma.py).
    finished: the session is complete, so its files are checked against its manifest first and
    the manifest's list of files is brought up to date afterwards (False only while the session
    is being written, before it has a manifest).
    Returns {"files": {format: file name}, "seconds": {format: s}} for the manifest. Raises
    InputError for a missing, unreadable or altered session, OutputError when a file cannot be
    written, ValueError for an unknown format.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}: choose from {', '.join(FORMATS)}")
    out = Path(session_dir)
    st = load_session_take(out, verify=finished)
    options = EngineOptions(vrm_meta=vrm_meta, vrma_expressions=vrma_expressions)
    files, seconds = {}, {}
    for name in formats:
        t0 = time.perf_counter()
        fmt = ENGINE_FORMATS[name]
        fmt.write(st, out / fmt.file, options)  # atomic; OutputError naming the file when refused
        files[name] = fmt.file
        seconds[name] = round(time.perf_counter() - t0, SECONDS_DECIMALS)
    if finished:  # the new files' sizes and digests, so the session still matches its manifest
        write_manifest(out, read_manifest(out))
    return {"files": files, "seconds": seconds}


def parse_formats(text: str) -> tuple[str, ...]:
    """argparse type of --formats: "vrm,bvh" -> ("vrm", "bvh"); ArgumentTypeError for an
    unknown or empty list."""
    fs = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fs if f not in FORMATS]
    if bad or not fs:
        raise argparse.ArgumentTypeError(f"choose from {','.join(FORMATS)} (got {text!r})")
    return fs

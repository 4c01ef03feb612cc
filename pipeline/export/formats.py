"""Engine-ready files of a processed session, written beside its avatar.glb:

  avatar.vrm             VRM 1.0 avatar (UniVRM, Blender's VRM add-on, three-vrm, VSeeFace...),
                         see pipeline/vrm_export.py
  take.vrma              VRM Animation 1.0 of the take, for any VRM 1.0 avatar
  take.bvh               body motion as BVH (centimetres, Y up), see pipeline/bvh.py
  take_blendshapes.csv   the 52 ARKit blendshapes per frame, Live Link Face CSV layout,
                         see pipeline/livelink_csv.py

    python -m pipeline.engine_export SESSION_DIR [--formats vrm,vrma,bvh,csv] [--vrm-author NAME]

Everything is read back from the session's avatar.glb (and tracks.npz for the frame count), so the
files carry exactly what the .glb animates.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.body.kinematics import global_rotations
from pipeline.core.errors import PipelineError
from pipeline.export.session_take import SessionTake, load_session_take

FORMATS = ("vrm", "vrma", "bvh", "csv")
FILES = {"vrm": "avatar.vrm", "vrma": "take.vrma", "bvh": "take.bvh", "csv": "take_blendshapes.csv"}


def write_bvh(st: SessionTake, out: Path) -> Path:
    from pipeline.export import bvh
    _, rot, root = st.sample()
    return bvh.write_bvh(out, st.names, st.parents, st.rest_local_m, rot, root, st.fps)


def write_csv(st: SessionTake, out: Path) -> Path:
    from pipeline.export.livelink_csv import write_llf_csv
    w, rot, _ = st.sample()
    head = global_rotations(st.parents, rot)[:, st.index("head")]
    eyes = rot[:, [st.index("leftEye"), st.index("rightEye")]]
    return write_llf_csv(out, w, st.target_names, st.fps, head, eyes)


def export_formats(session_dir: str | Path, formats=FORMATS, *, vrm_meta: dict | None = None,
                   vrma_expressions: str = "custom") -> dict:
    """Write the engine files of a session folder (one that holds avatar.glb and tracks.npz).

    formats: any of "vrm", "vrma", "bvh", "csv". vrm_meta: VRMC_vrm.meta overrides (e.g.
    {"authors": ["Ada"], "commercialUsage": "personalProfit"}); vrma_expressions: "custom"
    (ARKit names, default), "preset" or "both" (see pipeline/vrm_export.py).
    Returns {"files": {format: file name}, "seconds": {format: s}} for the manifest. Raises
    InputError for a missing or unreadable session, ValueError for an unknown format.
    """
    from pipeline.export import vrm, vrma

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}: choose from {', '.join(FORMATS)}")
    out = Path(session_dir)
    st = load_session_take(out)
    files, seconds = {}, {}
    for fmt in formats:
        t0 = time.perf_counter()
        path = out / FILES[fmt]
        try:
            if fmt == "vrm":
                meta = vrm.default_meta(st.name, **(vrm_meta or {}))
                vrm.write_vrm(st, path, meta)
            elif fmt == "vrma":
                vrma.write_vrma(st, path, vrma_expressions)
            elif fmt == "bvh":
                write_bvh(st, path)
            else:
                write_csv(st, path)
        except OSError as e:
            raise PipelineError(f"cannot write {path}: {e.strerror or e}") from None
        files[fmt] = FILES[fmt]
        seconds[fmt] = round(time.perf_counter() - t0, 3)
    return {"files": files, "seconds": seconds}


def _formats(text: str) -> tuple[str, ...]:
    fs = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fs if f not in FORMATS]
    if bad or not fs:
        raise argparse.ArgumentTypeError(f"choose from {','.join(FORMATS)} (got {text!r})")
    return fs



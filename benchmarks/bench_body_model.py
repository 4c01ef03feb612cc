"""Benchmark of the avatar's body (issue 15): how well it covers the person and matches their
colours, before (the procedural mannequin) and after (the Anny body model shaped and coloured from
the take).

    .venv/bin/python benchmarks/bench_body_model.py [--before COMMIT] [--frames N]

For each take: tracked once (cached in ~/.cache/dhcap/bench_tracks by the video's and the tracking
code's SHA-256), gaps filled, then the stages of `pipeline.process` (face rig and head, skeleton,
body solve, body shape, girth and colours: `pipeline.session.stages.fit_face` / `fit_body`), and
`pipeline.body.silhouette.compare_take` on N frames (default 16; the girth fit uses others):
  * IoU: the avatar (body and head) drawn through a camera posed by its joints on the pose's
    image landmarks, against MediaPipe's person mask of the tracked subject; body IoU: the same
    outside the area around the head (hair is issue 16's);
  * CIEDE2000 per region (skin, upper garment, lower garment, shoes): the avatar's colour against
    the median frame colour over the pixels that are both that region of the avatar and the person;
    median over frames.
"After" is the body with its clothes (pipeline.body.clothes). "Before" is the mannequin of
COMMIT (default 9c2a0cf, the last commit with it; its pipeline/body/mesh.py read with `git show`),
on the same skeleton, motion, head, cameras and masks. Results: benchmarks/results/body_model.json and body_model.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import framing_clips as fc  # noqa: E402
from bench_tracks import tracked  # noqa: E402

from capture.video import frame_reader  # noqa: E402
from pipeline.body.mesh import REGIONS  # noqa: E402
from pipeline.body.silhouette import compare_take  # noqa: E402
from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.tracks import fill_short_gaps  # noqa: E402
from pipeline.export.avatar import head_part  # noqa: E402
from pipeline.session.stages import fit_body, fit_face  # noqa: E402

TAKES = {  # name: (framing, kind): "sample" (pipeline.core.samples) or "clip" (tests/framing_clips.py)
    "p2s_cam01": ("full body", "sample"), "p2s_cam02": ("full body", "sample"),
    "sports2d": ("full body, two people", "sample"),
    "p2s_half_body": ("half body", "clip"), "p2s_head_shoulders": ("head and shoulders", "clip"),
    "s2d_seated": ("desk webcam (head to chest)", "clip"), "webcam_close_up": ("close-up face", "clip"),
}
BEFORE_COMMIT = "9c2a0cf"
RESULTS = ROOT / "benchmarks" / "results"


def video_path(name: str) -> Path:
    return Path(fetch(name)) if TAKES[name][1] == "sample" else Path(fc.clip_path(name))


def mannequin(commit: str) -> types.ModuleType:
    """The procedural body of `commit` (its pipeline/body/mesh.py) as a module."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:pipeline/body/mesh.py"],
                         check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("mannequin")
    exec(compile(src, f"{commit}:pipeline/body/mesh.py", "exec"), module.__dict__)
    return module


def mannequin_regions(module: types.ModuleType, mesh) -> np.ndarray:
    """Region index (REGIONS order) of each mannequin vertex, from its flat part colours."""
    colours = {"skin": module.SKIN, "upper": module.SHIRT, "lower": module.TROUSERS, "shoes": module.SHOES}
    out = np.zeros(mesh.n_vertices, np.int64)
    for r, name in enumerate(REGIONS):
        out[np.all(np.isclose(mesh.color, colours[name], atol=1e-6), axis=1)] = r
    return out


def measure(name: str, old: types.ModuleType, frames: int) -> dict:
    path = video_path(name)
    tracks = fill_short_gaps(tracked(name, path))
    face = fit_face(tracks)
    t0 = time.perf_counter()
    with frame_reader(path) as frame_at:
        body = fit_body(tracks, face, [(tracks, frame_at)])
        body_s = time.perf_counter() - t0
        head = head_part(face.head, face.deltas_m, body.skel)
        after = compare_take(tracks, frame_at, body.skel, body.motion, body.parts(), head, frames)
        old_mesh = old.build_body_mesh(body.skel)
        before = compare_take(tracks, frame_at, body.skel, body.motion, [(old_mesh, mannequin_regions(old, old_mesh))],
                              head, frames)
    return {"framing": TAKES[name][0], "frames": tracks.n_frames, "before": before.summary(),
            "after": after.summary(), "body_stage_s": round(body_s, 2),
            "shape": body.shape.phenotype, "girth": None if body.girth is None else body.girth.summary(),
            "colours": body.colours.summary(), "clothes": [g.name for g in body.clothes],
            "body_vertices": {"before": int(old_mesh.n_vertices), "after": int(body.mesh.n_vertices)}}


def _cell(take: dict, key: str, region: str | None = None) -> str:
    def get(side):
        v = take[side][key] if region is None else take[side][key][region]
        return "-" if v is None else f"{v:.2f}" if region is None else f"{v:.1f}"
    return f"{get('before')} / {get('after')}"


def markdown(results: dict) -> str:
    lines = ["# Body model (issue 15): before (mannequin) / after (Anny, shaped and coloured)", "",
             f"`{results['command']}` on {results['date']}, {results['frames']} frames per take.", "",
             "| take | framing | IoU | body IoU | ΔE skin | ΔE upper | ΔE lower | ΔE shoes | frames compared |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, t in results["takes"].items():
        lines.append(f"| {name} | {t['framing']} | {_cell(t, 'mean_iou')} | {_cell(t, 'mean_body_iou')} | "
                     + " | ".join(_cell(t, "median_delta_e", r) for r in REGIONS)
                     + f" | {t['after']['frames']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE_COMMIT)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--takes", nargs="*", default=list(TAKES))
    args = ap.parse_args(argv)
    old = mannequin(args.before)
    results = {"command": "benchmarks/bench_body_model.py " + " ".join(argv or sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d"), "frames": args.frames, "before_commit": args.before, "takes": {}}
    for name in args.takes:
        results["takes"][name] = measure(name, old, args.frames)
        print(name, json.dumps({k: results["takes"][name][k] for k in ("before", "after")}), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "body_model.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "body_model.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

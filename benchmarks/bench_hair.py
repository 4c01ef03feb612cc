"""Benchmark of the avatar's hair (issue 16): how well the head and its hair cover the person's head,
before (bald, as every avatar was) and after (the style and colour chosen from the frames).

    .venv/bin/python benchmarks/bench_hair.py [--frames N] [--takes ...]

For each take: tracked once (cached, see bench_tracks.py), gaps filled, the face and body stages
of `pipeline.process` (which choose the hair on their own frames), then on N other frames
(default 12; `pipeline.body.silhouette` cameras and person masks):
  * head-and-hair IoU: the avatar drawn with and without its hair against MediaPipe's person
    mask, inside the head's area (the head's silhouette grown by a quarter of its size);
  * hair colour: CIEDE2000 between the hair's colour and each frame's median over the person's
    pixels where the hair is the nearest surface (median over frames).
Results: benchmarks/results/hair.json and hair.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import framing_clips as fc  # noqa: E402
from bench_tracks import tracked  # noqa: E402

from capture.video import frame_reader  # noqa: E402
from pipeline.body.hair_fit import hair_part, hair_pixels, head_ious  # noqa: E402
from pipeline.body.silhouette import frame_views, sample_frames  # noqa: E402
from pipeline.core.colour import ciede2000, linear_to_lab  # noqa: E402
from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.tracks import fill_short_gaps  # noqa: E402
from pipeline.export.avatar import head_part  # noqa: E402
from pipeline.session.stages import fit_body, fit_face  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TAKES = {"single_face": "close-up face", "webcam_close_up": "close-up face (cropped)",
         "wolfgang": "face, long hair", "carphone": "face in a car", "s2d_seated": "desk webcam",
         "p2s_cam01": "full body, a small head"}
REPORT_SHIFT = 0.75  # frames between the hair fit's


def _path(name: str) -> Path:
    try:
        return Path(fetch(name))
    except Exception:  # a framing clip made from the samples
        return fc.clip_path(name)


def bench_take(name: str, n: int) -> dict:
    path = _path(name)
    tracks = fill_short_gaps(tracked(name, path))
    face = fit_face(tracks)
    with frame_reader(path) as frame_at:
        body = fit_body(tracks, face, [(tracks, frame_at)])
        head = head_part(face.head, face.deltas_m, body.skel)
        meshes = [body.mesh, *(g.mesh for g in body.clothes), head]
        views = frame_views(tracks, frame_at, body.skel, body.motion, head,
                            sample_frames(tracks, body.motion, n, REPORT_SHIFT))
        fit = body.hair
        row = {"framing": TAKES.get(name, ""), "style": fit.style or "bald", "seen": fit.seen, "frames": len(views),
               "colour_linear_rgb": [round(float(c), 4) for c in fit.colour]}
        if not views or fit.hair is None:
            return row
        hair = hair_part(fit.hair, body.skel)
        bald, with_hair = head_ious(views, body.skel, body.motion, meshes, {"hair": hair})
        pixels = [hair_pixels(v, f, body.skel, body.motion, meshes, hair) for f, v in views]
    colour_lab = linear_to_lab(np.asarray(fit.colour))
    delta_e = [float(ciede2000(linear_to_lab(np.median(p, axis=0)), colour_lab)) for p in pixels if p is not None]
    row.update({"iou_bald": round(bald, 3), "iou_hair": round(with_hair["hair"], 3),
                "delta_e_median": round(float(np.median(delta_e)), 2) if delta_e else None})
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--takes", nargs="+", default=list(TAKES))
    a = ap.parse_args()
    t0 = time.perf_counter()
    rows = {}
    for name in a.takes:
        rows[name] = bench_take(name, a.frames)
        print(name, rows[name], flush=True)
    out = {"date": time.strftime("%Y-%m-%d"), "frames": a.frames, "takes": rows,
           "seconds": round(time.perf_counter() - t0, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hair.json").write_text(json.dumps(out, indent=1))
    lines = ["# Hair (issue 16): head-and-hair IoU before (bald) / after, hair colour\n",
             f"`benchmarks/bench_hair.py` on {out['date']}, {a.frames} frames per take (not the hair fit's).\n",
             "| take (framing) | style | IoU bald / with hair | hair ΔE (median) | frames |",
             "|---|---|---|---|---|"]
    for name, r in rows.items():
        iou = f"{r['iou_bald']:.2f} / {r['iou_hair']:.2f}" if "iou_hair" in r else "-"
        de = f"{r['delta_e_median']:.1f}" if r.get("delta_e_median") is not None else "-"
        lines.append(f"| {name} ({r['framing']}) | {r['style']} | {iou} | {de} | {r['frames']} |")
    (RESULTS / "hair.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the per-user expression calibration (issue 16): does a relaxed face give weights
near 0 and does a full expression reach 1, before (MediaPipe's scores as they are) and after
(pipeline.face.calibration, calibrated on the first half of the take, measured on the second)?

    .venv/bin/python benchmarks/bench_face_calibration.py [--takes wolfgang single_face carphone franck cap13]

Reference for "relaxed", not the scores themselves: the frames whose expressive landmarks (lips,
eyelids, brows; head space) lie nearest the take's median face, the quietest REST_SHARE of them.
Figures per take (second half): the mean weight of the non-gaze shapes over those frames (before /
after), and for the shapes the first half shows (pipeline.face.calibration.MIN_SPAN) the median
of their PEAK_QUANTILE weight (before / after). Results: benchmarks/results/face_calibration.json/.md.
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

from bench_tracks import tracked  # noqa: E402

from pipeline.face.calibration import GAZE, MIN_SPAN, PEAK_QUANTILE, REST_SHARE, calibrate_face  # noqa: E402
from pipeline.face.head_space import face_points_m  # noqa: E402
from pipeline.face.rig import BROW_INNER, BROW_OUTER, EYE_LOWER, EYE_UPPER, LOWER_LIP, UPPER_LIP  # noqa: E402
from pipeline.face.weights import morph_weights  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EXPRESSIVE = sorted({*UPPER_LIP, *LOWER_LIP, *(i for s in ("Left", "Right") for i in
                     EYE_UPPER[s] + EYE_LOWER[s] + BROW_INNER[s] + BROW_OUTER[s])})


def geometric_rest(tracks, frames: np.ndarray) -> np.ndarray:
    """The quietest REST_SHARE of `frames` by their expressive landmarks' distance to the median face."""
    pts = face_points_m(tracks)[frames][:, EXPRESSIVE]
    dev = np.linalg.norm(pts - np.median(pts, axis=0), axis=2).mean(axis=1)
    return frames[dev <= np.quantile(dev, REST_SHARE)]


def bench_take(name: str) -> dict:
    tr = tracked(name)
    w = morph_weights(tr.blendshapes, tr.face_valid)
    valid = np.flatnonzero(tr.face_valid)
    first, second = valid[:len(valid) // 2], valid[len(valid) // 2:]
    cal = calibrate_face(w[first])
    after = cal.apply(w)
    rest = geometric_rest(tr, second)
    shown = np.flatnonzero(~GAZE & (np.quantile(w[first], PEAK_QUANTILE, axis=0) - cal.neutral >= MIN_SPAN))
    peak = lambda x: float(np.median(np.quantile(x[second][:, shown], PEAK_QUANTILE, axis=0))) if len(shown) else None  # noqa: E731
    return {"frames": int(len(valid)), "rest_frames": int(len(rest)),
            "rest_mean_before": round(float(w[rest][:, ~GAZE].mean()), 4),
            "rest_mean_after": round(float(after[rest][:, ~GAZE].mean()), 4),
            "shown_shapes": int(len(shown)),
            "peak_before": None if peak(w) is None else round(peak(w), 3),
            "peak_after": None if peak(after) is None else round(peak(after), 3)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--takes", nargs="+", default=["wolfgang", "single_face", "carphone", "franck", "cap13"])
    a = ap.parse_args()
    rows = {n: bench_take(n) for n in a.takes}
    out = {"date": time.strftime("%Y-%m-%d"), "takes": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "face_calibration.json").write_text(json.dumps(out, indent=1))
    lines = ["# Expression calibration (issue 16): relaxed face and full expressions\n",
             f"`benchmarks/bench_face_calibration.py` on {out['date']}: calibrated on the first half of each "
             "take, measured on the second.\n",
             "| take | frames | mean weight at rest before / after | shapes shown | their peak before / after |",
             "|---|---|---|---|---|"]
    for n, r in rows.items():
        pk = f"{r['peak_before']:.2f} / {r['peak_after']:.2f}" if r["peak_after"] is not None else "-"
        lines.append(f"| {n} | {r['frames']} | {r['rest_mean_before']:.3f} / {r['rest_mean_after']:.3f} "
                     f"| {r['shown_shapes']} | {pk} |")
    (RESULTS / "face_calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

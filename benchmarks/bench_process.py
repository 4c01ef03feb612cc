"""Benchmark of `pipeline.process`: frames per second on 720p real video, peak memory, and how both
grow with the length of the video.

    .venv/bin/python benchmarks/bench_process.py [--repeats 1 2 4] [--samples sports2d wolfgang]

Each sample (real footage from the package registries) is scaled to 1280x720 and looped 1, 2 and
4 times into a longer video; every length is processed in a fresh process, which reports its own
peak resident memory (ru_maxrss). Results go to stdout and benchmarks/results/process.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from pipeline.session.single_camera import process_video
t = time.perf_counter()
m = process_video(sys.argv[1], sys.argv[2], progress=False)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "frames": m["input"]["frames"], "timings_s": m["timings_s"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_720p(src: Path, dst: Path, repeats: int) -> int:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1280, 720))
    n = 0
    for _ in range(repeats):
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while True:
            ok, f = cap.read()
            if not ok:
                break
            out.write(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_AREA))
            n += 1
    out.release()
    cap.release()
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--samples", nargs="+", default=["sports2d", "wolfgang"])
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pipeline.core.samples import fetch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.samples:
            for r in a.repeats:
                video = Path(tmp) / f"{name}_x{r}.mp4"
                n = make_720p(fetch(name), video, r)
                p = subprocess.run([sys.executable, "-c", CHILD, str(video), str(Path(tmp) / f"s_{name}_{r}")],
                                   capture_output=True, text=True, cwd=ROOT)
                if p.returncode:
                    print(p.stderr[-2000:], file=sys.stderr)
                    return 1
                res = json.loads(p.stdout.strip().splitlines()[-1])
                row = {"sample": name, "repeats": r, "frames": n, "resolution": "1280x720",
                       "fps_end_to_end": round(n / res["wall_s"], 1),
                       "fps_tracking": round(n / res["timings_s"]["tracking"], 1),
                       "wall_s": round(res["wall_s"], 1), "peak_rss_mb": round(res["peak_rss_mb"]),
                       "timings_s": res["timings_s"]}
                rows.append(row)
                print(f"{name:9s} x{r}: {n:5d} frames 720p  {row['fps_end_to_end']:5.1f} fps end to end "
                      f"({row['fps_tracking']:5.1f} fps tracking)  peak RSS {row['peak_rss_mb']:5d} MB  "
                      f"stages {res['timings_s']}", flush=True)
    out = ROOT / "benchmarks" / "results" / "process.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

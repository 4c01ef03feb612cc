"""TODO docstring."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import interrupted
from pipeline.session.batch_runner import EXECUTORS, expand_inputs, run_batch, summary_table, write_summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.batch",
                                 description="Process many takes in parallel, one session folder each")
    ap.add_argument("inputs", nargs="+", metavar="VIDEO|FOLDER|GLOB",
                    help="video files, folders of videos, or glob patterns ('takes/*.mp4')")
    ap.add_argument("--out", default="sessions", help="folder for the session folders (default: sessions)")
    ap.add_argument("--workers", type=int, help="parallel takes (default: min(cores, takes))")
    ap.add_argument("--executor", choices=EXECUTORS, default="local",
                    help="local process pool (default), or a dask / ray cluster")
    ap.add_argument("--address", help="cluster address for dask (tcp://host:8786) or ray (ray://host:10001, auto)")
    ap.add_argument("--max-gap", type=float, default=0.25, help="fill tracking gaps up to this many seconds")
    ap.add_argument("--quiet", action="store_true", help="no line per finished take")
    a = ap.parse_args(argv)
    videos = expand_inputs(a.inputs)
    if not videos:
        print(f"error: no video files in {' '.join(a.inputs)}", file=sys.stderr)
        return 3
    if not a.quiet:
        print(f"{len(videos)} takes, executor {a.executor}, writing to {a.out}/", file=sys.stderr)
    done = [0]

    def progress(r):
        done[0] += 1
        if not a.quiet:
            what = "ok" if r["status"] == "ok" else f"FAILED: {r['error']}"
            print(f"[{done[0]}/{len(videos)}] {r['take']}: {what} ({r['seconds']:.1f} s)", file=sys.stderr)

    try:
        results = run_batch(a.inputs, a.out, a.workers, a.executor, a.address, a.max_gap, progress)
    except KeyboardInterrupt:
        return interrupted()
    print(summary_table(results))
    write_summary(results, Path(a.out))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""TODO docstring."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.core.tracks import ARKIT_NAMES
from pipeline.face.rig import PRIOR_PATH, build_prior


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.face_rig")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-prior", help="rebuild assets/face/arkit_prior.npz from real training takes")
    b.add_argument("--samples", nargs="+", default=["franck", "cap13"],
                   help="names from `python -m pipeline.samples list` (default: franck cap13)")
    b.add_argument("--out", type=Path, default=PRIOR_PATH)
    a = ap.parse_args(argv)
    from capture.video import probe, read_frames
    from pipeline.core.samples import fetch
    from pipeline.tracking.video import track_stream
    takes = []
    for name in a.samples:
        info = probe(fetch(name))
        print(f"tracking {name} ({info.frame_count} frames)", flush=True)
        takes.append(track_stream(read_frames(info), info.fps, (info.width, info.height),
                                  info.frame_count, info.path))
    prior = build_prior(takes)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, deltas_m=prior.astype(np.float32), names=np.array(ARKIT_NAMES),
                        sources=np.array(a.samples))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
